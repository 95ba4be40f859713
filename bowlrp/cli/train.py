"""``bowlrp train``: a BoW / Fisher-vector model with one kernel SVM per class."""
from __future__ import annotations

import argparse

from ..encoding.vocabulary import GMM_BACKENDS
from ..pipeline import PipelineConfig, train_model
from ..runs import classes_with_positives, labelled_split
from .common import (FAMILY_LABELS, add_parallel, apply_family, family_specific, non_negative_int, note,
                     parallel_options, positive_float, positive_int, positive_ints, report_skips, skip_log)
from .dnn import DNN_TRAIN_OPTIONS, add_shared_train_options, add_train_options
from .dnn import run_train as run_dnn_train


def _pooling(text: str) -> str | float:
    if text in ("sum", "max"):
        return text
    try:
        p = float(text)
    except ValueError:
        p = float("nan")
    if not p >= 1:
        raise argparse.ArgumentTypeError(f"pooling is 'sum', 'max' or a p-means exponent >= 1, got {text!r}")
    return p


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    train = sub.add_parser("train", parents=[common], help="train a BoW/FV + kernel SVM model (or, with --family "
                                                           "dnn, a network)",
                           description="Extract dense SIFT, fit PCA and the vocabulary on a descriptor "
                                       "sample, encode every training image and train one SVM per class "
                                       "(C chosen on a validation split unless --C is given). With --family dnn: "
                                       "train a PyTorch network instead, as 'bowlrp dnn train' does.")
    add_shared_train_options(train)
    train.add_argument("--family", choices=tuple(FAMILY_LABELS), default="bow",
                       help="bow: a BoW/FV model with kernel SVMs, the options below (default); dnn: a PyTorch "
                            "network, the 'DNN models' options (the same as 'bowlrp dnn train'). An option of the "
                            "other family is refused")
    train.add_argument("--encoder", choices=("fisher", "rankbow", "vq"), default="fisher",
                       help="fisher: improved Fisher vector; rankbow: rank-mapped soft BoW (p=2, n=4); "
                            "vq: hard vector quantisation (default fisher)")
    train.add_argument("--kernel", choices=("linear", "hik", "chi2", "additive-chi2", "rbf"), default="linear",
                       help="SVM kernel; chi2 is the exponential chi-squared kernel (default linear)")
    train.add_argument("--gmm-k", type=positive_int, default=256, metavar="K", help="GMM components for fisher (default 256)")
    train.add_argument("--gmm-backend", choices=GMM_BACKENDS, default="bowlrp",
                       help="who fits the GMM: bowlrp (EM on the Fisher encoder's own kernels, 5-6x "
                            "scikit-learn's speed), sklearn (GaussianMixture) or vlfeat (vl_gmm via cyvlfeat); "
                            "all floor the variances at 1e-4 of the largest data variance (default bowlrp)")
    train.add_argument("--vocab-size", type=positive_int, default=None, metavar="K",
                       help="k-means words for rankbow/vq (default 128 per block)")
    train.add_argument("--pca-dims", type=non_negative_int, default=None, metavar="D",
                       help="descriptor PCA dimensions (default 80 for fisher, none for BoW); 0 = no PCA")
    train.add_argument("--bin-sizes", type=positive_ints, default=(4, 6, 8, 10), metavar="B,B,...",
                       help="SIFT spatial bin sizes in pixels, one scale each (default 4,6,8,10)")
    train.add_argument("--step", type=positive_int, default=3, help="descriptor grid step in pixels (default 3)")
    train.add_argument("--sift-backend", choices=("auto", "vlfeat", "opencv"), default="auto",
                       help="dense SIFT implementation (default auto: vlfeat when cyvlfeat is installed)")
    train.add_argument("--sift-orientation", choices=("upright", "dominant"), default="upright",
                       help="upright: vl_dsift descriptors at angle 0 (VOC setup); dominant: each frame "
                            "turned to its main gradient orientation (the shapes task, Section 2.4.3)")
    train.add_argument("--max-rows", type=positive_int, default=480, help="images are shrunk to at most this many rows")
    train.add_argument("--per-scale", action="store_true",
                       help="one vocabulary and one kernel per SIFT scale, kernels summed (Eq. 2.67)")
    train.add_argument("--no-pyramid", action="store_true", help="no 1x1+2x2+3x1 spatial pyramid")
    train.add_argument("--pooling", type=_pooling, default="sum",
                       help="BoW pooling: sum, max or a p-means exponent p >= 1 (Eq. 2.65; default sum)")
    train.add_argument("--max-descriptors", type=positive_int, default=200_000, metavar="N",
                       help="random descriptor sample for PCA and vocabulary (default 200000; "
                            "fitting time grows linearly with it)")
    train.add_argument("--C", type=positive_float, default=None, help="SVM C (default: chosen on a validation split)")
    add_parallel(train)
    add_train_options(train)
    family_specific(train, "dnn", DNN_TRAIN_OPTIONS)
    family_specific(train, "bow", bow_only(train))
    train.set_defaults(handler=run_train, outputs={"out": "folder"})


SHARED_TRAIN_OPTIONS = ("data", "format", "strict", "split", "out", "classes", "seed", "family", "no_progress",
                        "debug", "verbose", "help")


def bow_only(parser: argparse.ArgumentParser) -> list[str]:
    """Every option of ``bowlrp train`` that is neither shared nor a network's: the BoW/FV pipeline's."""
    marked = parser.get_default("family_options") or {}
    return [a.dest for a in parser._actions if a.option_strings and a.dest not in SHARED_TRAIN_OPTIONS
            and a.dest not in marked]


def run_train(args: argparse.Namespace) -> int:
    what = ("--family dnn trains a network" if args.family == "dnn"
            else "'bowlrp train' trains a BoW/FV model unless --family dnn is given")
    apply_family(args, args.family, what)
    if args.family == "dnn":
        return run_dnn_train(args)
    dataset, samples, labels = labelled_split(args.data, args.split, args.format, args.classes, args.strict)
    present, absent = classes_with_positives(labels, dataset.classes)
    if absent and args.classes is None:
        note(f"no positive training image for {', '.join(absent)}; those classes are left out")
    class_names = [dataset.classes[c] for c in present]
    config = PipelineConfig.with_defaults(
        encoder=args.encoder, n_words=args.gmm_k if args.encoder == "fisher" else args.vocab_size,
        pca_dims=args.pca_dims, kernel=args.kernel, bin_sizes=args.bin_sizes, step=args.step,
        sift_backend=args.sift_backend, sift_orientation=args.sift_orientation, max_rows=args.max_rows,
        per_scale=args.per_scale, pyramid=not args.no_pyramid, pooling=args.pooling,
        max_descriptors=args.max_descriptors, gmm_backend=args.gmm_backend, C=args.C, seed=args.seed)
    skips = skip_log(args, dataset.skips)
    model = train_model(config, [s.path for s in samples], labels[:, present], class_names, skips,
                        parallel_options(args))
    model.training["skipped"] = skips.as_list()
    model.training["split"] = args.split
    model.save(args.out)
    print(f"model written to {args.out}: {len(class_names)} classes, {model.training['n_images']} images, "
          f"feature dim {model.features.dim}, C per class {dict(zip(class_names, model.classifier.chosen_C_))}")
    report_skips(skips)
    return 0
