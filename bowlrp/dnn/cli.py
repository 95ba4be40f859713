"""``bowlrp dnn train | evaluate | explain``: the DNN side of the command line.

``cli.py`` registers these with :func:`add_parser` and dispatches to :func:`run`; errors follow its
conventions (a :class:`~bowlrp.errors.BowlrpError` becomes one line, exit 1).
"""
from __future__ import annotations

import argparse
import sys

# the main parser's shared argument sets and reports, so `bowlrp dnn ...` reads like `bowlrp ...`
from cli import (add_data_source, add_evaluate_arguments, add_explain_targets, explain_files, format_ap_table,
                 print_store_summary, report_skips)

# names only, so building the parser does not import torch (tests check them against dnn.lrp and dnn.models)
ARCHITECTURES = ("smallcnn", "alexnet", "vgg16", "resnet18", "resnet50")
COMPOSITES = ("epsilon", "zplus", "alpha2beta1", "alpha1beta0", "flat", "wsquare", "epsilon-alpha2beta1",
              "epsilon-alpha2beta1-flat", "epsilon-zplus-flat", "epsilon-alpha2beta1-zbox")
THESIS = "epsilon-alpha2beta1-flat"

METHOD_HELP = ("lrp: the composite's LRP rules; gradient; gradxinput; deconvnet; guided (guided backprop); "
               "smoothgrad; ig (integrated gradients from a black image)")


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    """Add ``dnn`` with its three actions to the sub-parsers ``sub`` of the main parser."""

    dnn = sub.add_parser("dnn", help="train, evaluate and explain PyTorch networks",
                         description="PyTorch networks on the same data as the BoW/FV models, explained with LRP "
                                     "rules and composites (or gradient baselines) into maps in the same file "
                                     "contract as 'bowlrp explain'.")
    actions = dnn.add_subparsers(dest="dnn_command", required=True, metavar="ACTION")

    train = actions.add_parser("train", parents=[common], help="train a network (multi-label hinge loss)",
                               description="Train on a VOC-format split with the summed multi-label hinge loss: "
                                           "images resized to the longest side (256; 96 for smallcnn), padded to "
                                           "a square by copying the border, 10 crops per image (4 corners, centre, "
                                           "mirrored). Resumable: re-run the same command after an interruption.")
    add_data_source(train)
    train.add_argument("--split", default="trainval", help="training split (default trainval)")
    train.add_argument("--arch", choices=tuple(ARCHITECTURES), default="smallcnn",
                       help="smallcnn trains on a CPU in minutes; alexnet is CaffeNet-style with LRN (default smallcnn)")
    train.add_argument("--out", required=True, metavar="MODEL", help="model directory to write")
    train.add_argument("--epochs", type=int, default=20, help="passes over all 10 crops of every image (default 20)")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=2e-3, help="AdamW learning rate, cosine schedule (default 2e-3)")
    train.add_argument("--weights", metavar="FILE", help="start from a torchvision-layout state dict (weights_only "
                                                          "load; the 1000-way classifier is replaced)")
    train.add_argument("--size", type=int, default=None, metavar="PX",
                       help="longest side after resizing (default 256; 96 for smallcnn)")
    train.add_argument("--crop", type=int, default=None, metavar="PX",
                       help="square crop fed to the network (default 224, alexnet 227, smallcnn 80)")
    train.add_argument("--seed", type=int, default=0)
    _device(train)

    evaluate = actions.add_parser("evaluate", parents=[common], help="per-class AP on a split (centre crop)",
                                  description="Score the centre crop of every image of a split and report VOC "
                                              "11-point AP per class, as 'bowlrp evaluate' does.")
    add_evaluate_arguments(evaluate)
    _device(evaluate)

    explain = actions.add_parser(
        "explain", parents=[common], help="relevance maps of a network's class score",
        description="Explain the class score of the centre crop and map the relevance back through crop, padding "
                    "and resize to the original image. Per image writes DIR/<stem>.npz (relevance H x W float32 "
                    "in original coordinates, score, bias_relevance, absorbed, residual, ...), DIR/<stem>.png "
                    "and DIR/<stem>_overlay.png, as 'bowlrp explain' does; or a whole split into an HDF5 store.")
    explain.add_argument("--model", required=True, metavar="MODEL")
    explain.add_argument("--class", dest="class_name", required=True, metavar="NAME", help="class to explain")
    explain.add_argument("--method", choices=("lrp", "gradient", "gradxinput", "deconvnet", "guided", "smoothgrad",
                                              "ig"), default="lrp", help=METHOD_HELP + " (default lrp)")
    explain.add_argument("--composite", choices=COMPOSITES, default=THESIS,
                         help=f"LRP rules per layer (default {THESIS}: epsilon 0.01 on dense layers, alpha=2/beta=1 "
                              "on convolutions, flat on the lowest --flat-depth layers)")
    explain.add_argument("--flat-depth", type=int, default=None, metavar="N",
                         help="decomposition depth: the lowest N Conv/Linear layers use the flat rule (default 1)")
    add_explain_targets(explain)
    _device(explain)


def _device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:N")
    parser.add_argument("--no-progress", action="store_true", help="no progress messages")


def _check_device(name: str) -> str:
    import torch

    from bowlrp.errors import BowlrpError

    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BowlrpError(f"--device {name}: no CUDA device is available here (torch {torch.__version__})")
    if not (name == "cpu" or name.startswith("cuda")):
        raise BowlrpError(f"--device must be cpu or cuda[:N], got {name!r}")
    return name


def run(args: argparse.Namespace) -> int:
    """Dispatch ``bowlrp dnn ACTION``; returns the exit code."""
    return {"train": _train, "evaluate": _evaluate, "explain": _explain}[args.dnn_command](args)


def _split(args, classes=None):
    import numpy as np

    from bowlrp.data import open_dataset
    from bowlrp.errors import BowlrpError

    dataset = open_dataset(args.data, format=args.format, classes=classes, strict=args.strict)
    samples = dataset.split(args.split)
    if not samples:
        raise BowlrpError(f"split {args.split!r} of {args.data} has no images")
    return dataset, samples, np.stack([s.labels for s in samples]).astype(np.int8)


def _train(args) -> int:
    from bowlrp.errors import SkipLog

    from .train import TrainConfig, train

    device = _check_device(args.device)
    dataset, samples, labels = _split(args)
    present = [c for c in range(len(dataset.classes)) if (labels[:, c] == 1).any()]
    classes = [dataset.classes[c] for c in present]
    skips = SkipLog(strict=args.strict)
    skips.extend(dataset.skips)
    config = TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, weights=args.weights, size=args.size, crop=args.crop)
    report = (lambda msg: None) if args.no_progress else (lambda msg: print(msg, file=sys.stderr, flush=True))
    train(config, [s.path for s in samples], labels[:, present], classes, args.out, device, skips, report)
    print(f"model written to {args.out}: {args.arch}, {len(classes)} classes, {len(samples)} images, "
          f"{args.epochs} epochs")
    report_skips(skips)
    return 0


def _evaluate(args) -> int:
    from bowlrp.errors import SkipLog
    from bowlrp.persistence import atomic_write_json
    from bowlrp.svm.metrics import evaluation_summary

    from .io import load_model
    from .train import score_images

    model = load_model(args.model, _check_device(args.device))
    classes = model.meta["classes"]
    dataset, samples, labels = _split(args, classes)
    skips = SkipLog(strict=args.strict)
    skips.extend(dataset.skips)
    scores, ok = score_images(model, [s.path for s in samples], skips)
    result = {**evaluation_summary(scores, labels[ok], classes), "n_images": int(ok.sum()),
              "skipped": skips.as_list()}
    print(format_ap_table(result, f"AP (VOC 11-point) and accuracy (sign of f) on {args.split}, "
                                  f"{result['n_images']} images, centre crop:"))
    report_skips(skips)
    if args.json:
        atomic_write_json(args.json, result)
    return 0


def _explain(args) -> int:
    from bowlrp.errors import BowlrpError

    from .io import load_model

    model = load_model(args.model, _check_device(args.device))
    if args.class_name not in model.meta["classes"]:
        raise BowlrpError(f"unknown class {args.class_name!r}; the model knows {', '.join(model.meta['classes'])}")
    options = {"method": args.method, "composite": args.composite, "flat_depth": args.flat_depth}
    if args.method != "lrp" and args.flat_depth is not None:
        raise BowlrpError("--flat-depth applies to --method lrp only")
    if args.data or args.store:
        from .store import explain_split

        if not (args.data and args.store) or args.images or args.out:
            raise BowlrpError("the split form takes --data DIR --split NAME --store OUT.h5 and no IMAGE/--out")
        print_store_summary(explain_split(model, args.model, args, options), args)
        return 0
    from .store import explain_image

    explain_files(args, lambda image: explain_image(model, image, args.class_name, **options),
                  lambda r: f"f={r.score:+.4f}  sum R={float(r.relevance.sum()):+.4f}  absorbed={r.absorbed:+.4f}",
                  f"explanation(s) of {args.class_name!r} ({args.method}"
                  + (f", {args.composite}" if args.method == "lrp" else "") + ")")
    return 0
