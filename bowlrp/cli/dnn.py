"""``bowlrp dnn train | evaluate | explain``: PyTorch networks on the same data as the BoW/FV models.

``evaluate`` and ``explain`` are the model-independent handlers of :mod:`.models` with the DNN
options (device, attribution method, composite); the names offered are read from the registries of
:mod:`bowlrp.dnn` (:func:`~bowlrp.dnn.lrp.composites.composite_names`,
:func:`~bowlrp.dnn.attribution.method_names`, :data:`~bowlrp.dnn.models.ARCHITECTURES`).

Those registries live in modules that import PyTorch (about 190 MB of memory and a second of start-up),
so they are imported only when a ``dnn`` command line is built (:func:`add_parsers`); every other
command gets :func:`add_stub`, the same ``dnn`` entry in ``bowlrp --help`` without them.
"""
from __future__ import annotations

import argparse
import sys

from ..runs import classes_with_positives, labelled_split
from .common import (add_data_source, add_explain_targets, non_negative_int, note, positive_float, positive_int,
                     report_skips, skip_log)
from .models import EXPLAIN_OUTPUTS, add_evaluate_parser, run_explain

DNN_OPTIONS = ("method", "composite", "flat_depth")
METHOD_HELP = {"lrp": "the composite's LRP rules", "gradient": "sensitivity", "gradxinput": "gradient x input",
               "deconvnet": "deconvnet", "guided": "guided backprop", "smoothgrad": "SmoothGrad",
               "ig": "integrated gradients from a black image"}


DNN_HELP = "train, evaluate and explain PyTorch networks"


def add_stub(sub, common: argparse.ArgumentParser) -> None:
    """The ``dnn`` command's entry without its actions, for a command line that does not use it."""
    sub.add_parser("dnn", help=DNN_HELP)


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    from ..dnn.attribution import method_names
    from ..dnn.lrp.composites import THESIS, composite_names
    from ..dnn.models import ARCHITECTURES

    dnn = sub.add_parser("dnn", help=DNN_HELP,
                         description="PyTorch networks on the same data as the BoW/FV models, explained with LRP "
                                     "rules and composites (or gradient baselines) into maps in the same file "
                                     "contract as 'bowlrp explain'.")
    actions = dnn.add_subparsers(dest="dnn_command", required=True, metavar="ACTION")

    train_parser = actions.add_parser(
        "train", parents=[common], help="train a network (multi-label hinge loss)",
        description="Train on a VOC-format split with the summed multi-label hinge loss: images resized to the "
                    "longest side (256; 96 for smallcnn), padded to a square by copying the border, 10 crops per "
                    "image (4 corners, centre, mirrored). Resumable: re-run the same command after an interruption.")
    add_data_source(train_parser)
    train_parser.add_argument("--split", default="trainval", help="training split (default trainval)")
    train_parser.add_argument("--arch", choices=tuple(ARCHITECTURES), default="smallcnn",
                              help="smallcnn trains on a CPU in minutes; alexnet is CaffeNet-style with LRN "
                                   "(default smallcnn)")
    train_parser.add_argument("--out", required=True, metavar="MODEL", help="model directory to write")
    train_parser.add_argument("--epochs", type=positive_int, default=20,
                              help="passes over all 10 crops of every image (default 20)")
    train_parser.add_argument("--batch-size", type=positive_int, default=32, help="images per step (default 32)")
    train_parser.add_argument("--lr", type=positive_float, default=2e-3,
                              help="AdamW learning rate, cosine schedule (default 2e-3)")
    train_parser.add_argument("--weights", metavar="FILE", help="start from a torchvision-layout state dict "
                                                                 "(weights_only load; the 1000-way classifier is replaced)")
    train_parser.add_argument("--size", type=positive_int, default=None, metavar="PX",
                              help="longest side after resizing (default 256; 96 for smallcnn)")
    train_parser.add_argument("--crop", type=positive_int, default=None, metavar="PX",
                              help="square crop fed to the network (default 224, alexnet 227, smallcnn 80)")
    train_parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the initial weights and batch order (default 0)")
    _device(train_parser)
    train_parser.set_defaults(handler=run_train, outputs={"out": "folder"})

    _device(add_evaluate_parser(actions, common, "per-class AP on a split (centre crop)",
                                "Score the centre crop of every image of a split and report VOC 11-point AP per "
                                "class, as 'bowlrp evaluate' does."))

    explain = actions.add_parser(
        "explain", parents=[common], help="relevance maps of a network's class score",
        description="Explain the class score of the centre crop and map the relevance back through crop, padding "
                    "and resize to the original image. Per image writes DIR/<stem>.npz (relevance H x W float32 "
                    "in original coordinates, score, bias_relevance, absorbed, residual, ...), DIR/<stem>.png "
                    "and DIR/<stem>_overlay.png, as 'bowlrp explain' does; or a whole split into an HDF5 store.")
    add_explain_targets(explain)
    methods = method_names()
    # SUPPRESS: only the options given reach the model (see .models.BOW_OPTIONS)
    explain.add_argument("--method", choices=methods, default=argparse.SUPPRESS,
                         help="; ".join(f"{name}: {METHOD_HELP.get(name, name)}" for name in methods)
                         + " (default lrp)")
    explain.add_argument("--composite", choices=composite_names(), default=argparse.SUPPRESS,
                         help=f"LRP rules per layer (default {THESIS}: epsilon 0.01 on dense layers, alpha=2/beta=1 "
                              "on convolutions, flat on the lowest --flat-depth layers)")
    explain.add_argument("--flat-depth", type=non_negative_int, default=argparse.SUPPRESS, metavar="N",
                         help="decomposition depth: the lowest N Conv/Linear layers use the flat rule (default 1)")
    _device(explain)
    explain.set_defaults(handler=lambda args: run_explain(args, DNN_OPTIONS), outputs=EXPLAIN_OUTPUTS)


def _device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress messages")


def run_train(args: argparse.Namespace) -> int:
    from ..dnn.classifier import check_device
    from ..dnn.train import TrainConfig, train

    device = check_device(args.device)
    dataset, samples, labels = labelled_split(args.data, args.split, args.format, strict=args.strict)
    present, absent = classes_with_positives(labels, dataset.classes)
    if absent:
        note(f"no positive training image for {', '.join(absent)}; those classes are left out")
    classes = [dataset.classes[c] for c in present]
    skips = skip_log(args, dataset.skips)
    config = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, weights=args.weights, size=args.size, crop=args.crop)
    report = (lambda msg: None) if args.no_progress else (lambda msg: print(msg, file=sys.stderr, flush=True))
    train(config, [s.path for s in samples], labels[:, present], classes, args.out, device, skips, report)
    print(f"model written to {args.out}: {args.arch}, {len(classes)} classes, {len(samples)} images, "
          f"{args.epochs} epochs")
    report_skips(skips)
    return 0
