"""``bowlrp dnn train | evaluate | predict | explain``: PyTorch networks on the same data as the BoW/FV models.

``bowlrp dnn train`` is the networks' training entry point (``bowlrp train --family dnn`` is the same
command); ``evaluate``, ``predict`` and ``explain`` are the model-independent handlers of :mod:`.models`
for networks only, with the names of the DNN options (architectures, attribution methods, composites)
listed as choices, read from the registries of :mod:`bowlrp.dnn`
(:func:`~bowlrp.dnn.lrp.composites.composite_names`, :func:`~bowlrp.dnn.attribution.method_names`).
``dnn explain --arch A --weights FILE.pth`` explains a torchvision-layout state dict without a model
directory.

Those registries live in modules that import PyTorch (about 190 MB of memory and a second of start-up),
so they are imported only when a ``dnn`` command line is built (:func:`add_parsers`); every other
command gets :func:`add_stub`, the same ``dnn`` entry in ``bowlrp --help`` without them. The
architecture names come from the torch-free :mod:`bowlrp.dnn.archs`, so ``bowlrp train`` offers
``--arch`` without PyTorch.
"""
from __future__ import annotations

import argparse
import logging

from ..dnn.archs import ARCH_NAMES, TORCHVISION_ARCHS
from ..errors import BowlrpError
from ..runs import classes_with_positives, labelled_split
from .common import (add_data_source, add_device, add_explain_targets, csv_list, family_specific, non_negative_int, note,
                     positive_float, positive_int, report_skips, skip_log)
from .models import (DNN_OPTIONS, EXPLAIN_FILES, EXPLAIN_OUTPUTS, add_dnn_explain_options,
                     add_evaluate_parser, add_predict_parser, run_explain)

DNN_HELP = "train PyTorch networks; evaluate, predict and explain them (as the commands of any model do)"
#: ``bowlrp train`` options that only a network takes
DNN_TRAIN_OPTIONS = ("arch", "epochs", "batch_size", "lr", "weights", "size", "crop", "device")
log = logging.getLogger("bowlrp.dnn.train")


def add_stub(sub, common: argparse.ArgumentParser) -> None:
    """The ``dnn`` command's entry without its actions, for a command line that does not use it."""
    sub.add_parser("dnn", help=DNN_HELP)


def add_train_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options only a network's training takes (``bowlrp dnn train``, ``bowlrp train --family dnn``)."""
    group = parser.add_argument_group("DNN models (bowlrp dnn train, or bowlrp train --family dnn)")
    group.add_argument("--arch", choices=ARCH_NAMES, default="smallcnn",
                       help="smallcnn trains on a CPU in minutes; alexnet is CaffeNet-style with LRN "
                            "(default smallcnn)")
    group.add_argument("--epochs", type=positive_int, default=20,
                       help="passes over all 10 crops of every image (default 20)")
    group.add_argument("--batch-size", type=positive_int, default=32, help="images per step (default 32)")
    group.add_argument("--lr", type=positive_float, default=2e-3,
                       help="AdamW learning rate, cosine schedule (default 2e-3)")
    group.add_argument("--weights", metavar="FILE", help="start from a torchvision-layout state dict "
                                                         "(weights_only load; the 1000-way classifier is replaced)")
    group.add_argument("--size", type=positive_int, default=None, metavar="PX",
                       help="longest side after resizing (default 256; 96 for smallcnn)")
    group.add_argument("--crop", type=positive_int, default=None, metavar="PX",
                       help="square crop fed to the network (default 224, alexnet 227, smallcnn 80)")
    add_device(group)
    return parser


TRAIN_DESCRIPTION = ("Train on a VOC-format split with the summed multi-label hinge loss: images resized to the "
                     "longest side (256; 96 for smallcnn), padded to a square by copying the border, 10 crops per "
                     "image (4 corners, centre, mirrored). Resumable: re-run the same command after an "
                     "interruption. The same as 'bowlrp train --family dnn'.")


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    from ..dnn.attribution import method_names
    from ..dnn.lrp.composites import THESIS, composite_names

    dnn = sub.add_parser("dnn", help=DNN_HELP,
                         description="PyTorch networks on the same data as the BoW/FV models, explained with LRP "
                                     "rules and composites (or gradient baselines) into maps in the same file "
                                     "contract as 'bowlrp explain'. 'dnn train' trains a network; 'dnn evaluate', "
                                     "'dnn predict' and 'dnn explain' are 'bowlrp evaluate', 'predict' and "
                                     "'explain' for networks only, listing the DNN option values.")
    actions = dnn.add_subparsers(dest="dnn_command", required=True, metavar="ACTION")

    train_parser = actions.add_parser("train", parents=[common], help="train a network (multi-label hinge loss)",
                                      description=TRAIN_DESCRIPTION)
    add_shared_train_options(train_parser)
    add_train_options(train_parser)
    train_parser.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    train_parser.set_defaults(handler=run_train, outputs={"out": "folder"})

    add_evaluate_parser(actions, common, "per-class AP on a split (centre crop)",
                        "Score the centre crop of every image of a split and report VOC 11-point AP per class, "
                        "as 'bowlrp evaluate' does.", networks_only=True)
    add_predict_parser(actions, common, networks_only=True)

    explain = actions.add_parser(
        "explain", parents=[common], help="relevance maps of a network's class score",
        description="Explain the class score of the centre crop and map the relevance back through crop, padding "
                    "and resize to the original image, as 'bowlrp explain' does for a network. " + EXPLAIN_FILES
                    + " Instead of --model, --arch with --weights explains a torchvision-layout state dict "
                      "directly (e.g. torchvision's vgg16 file).",
        epilog="example: bowlrp dnn explain --arch vgg16 --weights vgg16-397923af.pth --class class_340 "
               "--out maps/ zebra.jpg")
    add_explain_targets(explain, model_required=False)
    add_dnn_explain_options(explain, (method_names(), composite_names(), THESIS))
    explain.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
    weights = explain.add_argument_group("a torchvision-layout state dict instead of --model")
    weights.add_argument("--arch", choices=TORCHVISION_ARCHS, default=None,
                         help="the architecture of --weights (torchvision's names and layout)")
    weights.add_argument("--weights", metavar="FILE.pth",
                         help="torchvision-layout state dict of --arch (read with torch.load(weights_only=True)); "
                              "its classifier's width is the number of classes")
    weights.add_argument("--classes", metavar="FILE",
                         help="class names, one a line, in output order (default: class_0 .. class_N-1, the "
                              "ImageNet indices for a 1000-way file)")
    family_specific(explain, "dnn", DNN_OPTIONS + ("device",))
    explain.set_defaults(handler=run_explain, outputs=EXPLAIN_OUTPUTS, families=("dnn",), opener=open_weights)


def add_shared_train_options(parser: argparse.ArgumentParser) -> None:
    """What every family's training takes: the data, the split, the output, the classes and the seed."""
    add_data_source(parser)
    parser.add_argument("--split", default="trainval", help="training split (default trainval)")
    parser.add_argument("--out", required=True, metavar="MODEL", help="model directory to write")
    parser.add_argument("--classes", type=csv_list, default=None, metavar="a,b,...", help="train only these classes")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the descriptor sample, PCA, vocabulary and validation split (BoW/FV) or of "
                             "the initial weights and batch order (DNN) (default 0)")


def open_weights(args: argparse.Namespace):
    """``dnn explain --arch A --weights FILE``: the network of a torchvision-layout file (None without
    ``--weights``: the command then opens ``--model``)."""
    given = [flag for flag, value in (("--arch", args.arch), ("--weights", args.weights), ("--classes", args.classes))
             if value is not None]
    if args.model is not None:
        if given:
            raise BowlrpError(f"--model and {given[0]} exclude each other: explain a model directory, or a "
                              "torchvision-layout state dict with --arch and --weights")
        return None
    if args.arch is None or args.weights is None:
        raise BowlrpError("give --model MODEL, or --arch ARCH with --weights FILE.pth")
    from ..dnn.classifier import load_torchvision_classifier

    return load_torchvision_classifier(args.weights, args.arch, args.classes, getattr(args, "device", None))


def run_train(args: argparse.Namespace) -> int:
    from ..dnn.classifier import check_device
    from ..dnn.train import TrainConfig, train

    device = check_device(args.device)
    dataset, samples, labels = labelled_split(args.data, args.split, args.format, args.classes, args.strict)
    present, absent = classes_with_positives(labels, dataset.classes)
    if absent and args.classes is None:
        note(f"no positive training image for {', '.join(absent)}; those classes are left out")
    classes = [dataset.classes[c] for c in present]
    skips = skip_log(args, dataset.skips)
    config = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, weights=args.weights, size=args.size, crop=args.crop)
    train(config, [s.path for s in samples], labels[:, present], classes, args.out, device, skips, log.info,
          show_progress=not args.no_progress)
    print(f"model written to {args.out}: {args.arch}, {len(classes)} classes, {len(samples)} images, "
          f"{args.epochs} epochs")
    report_skips(skips)
    return 0
