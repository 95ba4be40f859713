"""The ``bowlrp`` command line: synthesise data, train, evaluate and predict.

Every sub-command has ``--help``. Errors print one line (``bowlrp: error: ...``) and exit 1;
usage errors exit 2; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _csv(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


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


def _add_parallel(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("parallel work")
    group.add_argument("--n-jobs", type=int, default=1, metavar="N",
                       help="worker processes for feature extraction (default 1; -1 = all cores)")
    group.add_argument("--backend", choices=("loky", "threading", "dask"), default="loky",
                       help="joblib backend; 'dask' runs on a Dask cluster (default loky)")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask scheduler address (tcp://host:port); without it --backend dask "
                            "starts a local cluster of --n-jobs workers on 127.0.0.1")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_data_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset root (VOC devkit or image folders)")
    parser.add_argument("--format", choices=("voc", "folder"), default="voc",
                        help="voc: VOCdevkit layout (ImageSets/Main, Annotations, JPEGImages); "
                             "folder: one sub-folder per class (default voc)")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first unusable file instead of skipping and counting it")


def add_explain_targets(parser: argparse.ArgumentParser) -> None:
    """What an explain command explains: image files into ``--out``, or a whole split into ``--store``
    (shared by ``explain`` and ``dnn explain``, so both read the same)."""
    parser.add_argument("--out", metavar="DIR", help="output folder for per-image files (with IMAGE...)")
    parser.add_argument("images", nargs="*", metavar="IMAGE")
    whole = parser.add_argument_group("a whole split instead of single images (resumable: re-run the same "
                                      "command after an interruption and finished images are kept)")
    whole.add_argument("--data", metavar="DIR", help="dataset root")
    whole.add_argument("--format", choices=("voc", "folder"), default="voc", help="dataset layout (default voc)")
    whole.add_argument("--split", default="test", help="split to explain (default test)")
    whole.add_argument("--store", metavar="OUT.h5", help="HDF5 store to write")
    parser.add_argument("--strict", action="store_true", help="stop at the first unusable image")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Model, data, split and JSON output of an evaluate command (``evaluate`` and ``dnn evaluate``)."""
    parser.add_argument("--model", required=True, metavar="MODEL")
    add_data_source(parser)
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument("--json", metavar="OUT.json", help="write {ap, map, n_images, skipped} here")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bowlrp",
        description="Train Bag-of-Words / Fisher-vector image classifiers with kernel SVMs, and PyTorch networks "
                    "on the same data ('bowlrp dnn ...'), and explain both with Layer-wise Relevance Propagation: "
                    "heatmaps in original image coordinates, per image or for a whole split.",
        epilog="example, on the embedded synthetic data:\n"
               "  bowlrp data synth-voc --out data/toyvoc\n"
               "  bowlrp train --data data/toyvoc --encoder fisher --kernel linear --out models/fv\n"
               "  bowlrp evaluate --model models/fv --data data/toyvoc --split test --json ap.json\n"
               "  bowlrp explain --model models/fv --class horse --out maps/ data/toyvoc/JPEGImages/000046.jpg\n"
               "  bowlrp dnn train --data data/toyvoc --arch smallcnn --out models/cnn\n"
               "'bowlrp COMMAND --help' explains each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    # the same two flags after the sub-command (`bowlrp train ... --debug`); SUPPRESS keeps a
    # flag given before the sub-command from being reset by the sub-parser's default
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log progress messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="synthesise or inspect datasets",
                          description="Synthesise the embedded datasets or inspect a dataset.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    voc = data_sub.add_parser("synth-voc", parents=[common], help="write the toyvoc dataset (VOC format + ground_truth.json)",
                              description="Write toyvoc: a VOC-format multi-label dataset with planted "
                                          "artefacts (horse watermark, boats on water, aeroplanes in sky) "
                                          "recorded in ground_truth.json. Same seed, same bytes.")
    voc.add_argument("--out", required=True, metavar="DIR")
    voc.add_argument("--overwrite", action="store_true", help="replace a dataset generated there before")
    voc.add_argument("--seed", type=int, default=0)
    voc.add_argument("--size", choices=("small", "default", "large"), default="default",
                     help="small: ~60 tiny images (tests); default: ~600 images; large: ~2000 VOC-size images")
    shapes = data_sub.add_parser("synth-shapes", parents=[common], help="write the polygon-vs-round shapes task (Section 2.4.3)",
                                 description="Write the shapes task: 102x102 tiles (VOC format, class "
                                             "'polygon') cut from large images, with pixel masks.")
    shapes.add_argument("--out", required=True, metavar="DIR")
    shapes.add_argument("--overwrite", action="store_true", help="replace a dataset generated there before")
    shapes.add_argument("--seed", type=int, default=0)
    inspect = data_sub.add_parser("inspect", parents=[common], help="summarise a dataset: splits, classes, positives per class")
    add_data_source(inspect)

    train = sub.add_parser("train", parents=[common], help="train a BoW/FV + kernel SVM model",
                           description="Extract dense SIFT, fit PCA and the vocabulary on a descriptor "
                                       "sample, encode every training image and train one SVM per class "
                                       "(C chosen on a validation split unless --C is given).")
    add_data_source(train)
    train.add_argument("--split", default="trainval", help="training split (default trainval)")
    train.add_argument("--out", required=True, metavar="MODEL", help="model directory to write")
    train.add_argument("--encoder", choices=("fisher", "rankbow", "vq"), default="fisher",
                       help="fisher: improved Fisher vector; rankbow: rank-mapped soft BoW (p=2, n=4); "
                            "vq: hard vector quantisation (default fisher)")
    train.add_argument("--kernel", choices=("linear", "hik", "chi2", "additive-chi2", "rbf"), default="linear",
                       help="SVM kernel; chi2 is the exponential chi-squared kernel (default linear)")
    train.add_argument("--gmm-k", type=int, default=256, metavar="K", help="GMM components for fisher (default 256)")
    train.add_argument("--vocab-size", type=int, default=None, metavar="K",
                       help="k-means words for rankbow/vq (default 128 per block)")
    train.add_argument("--pca-dims", type=int, default=None, metavar="D",
                       help="descriptor PCA dimensions (default 80 for fisher, none for BoW); 0 = no PCA")
    train.add_argument("--bin-sizes", type=_ints, default=(4, 6, 8, 10), metavar="B,B,...",
                       help="SIFT spatial bin sizes in pixels, one scale each (default 4,6,8,10)")
    train.add_argument("--step", type=int, default=3, help="descriptor grid step in pixels (default 3)")
    train.add_argument("--sift-backend", choices=("auto", "vlfeat", "opencv"), default="auto",
                       help="dense SIFT implementation (default auto: vlfeat when cyvlfeat is installed)")
    train.add_argument("--sift-orientation", choices=("upright", "dominant"), default="upright",
                       help="upright: vl_dsift descriptors at angle 0 (VOC setup); dominant: each frame "
                            "turned to its main gradient orientation (the shapes task, Section 2.4.3)")
    train.add_argument("--max-rows", type=int, default=480, help="images are shrunk to at most this many rows")
    train.add_argument("--per-scale", action="store_true",
                       help="one vocabulary and one kernel per SIFT scale, kernels summed (Eq. 2.67)")
    train.add_argument("--no-pyramid", action="store_true", help="no 1x1+2x2+3x1 spatial pyramid")
    train.add_argument("--pooling", type=_pooling, default="sum",
                       help="BoW pooling: sum, max or a p-means exponent p >= 1 (Eq. 2.65; default sum)")
    train.add_argument("--max-descriptors", type=int, default=200_000, metavar="N",
                       help="random descriptor sample for PCA and vocabulary (default 200000; "
                            "fitting time grows linearly with it)")
    train.add_argument("--C", type=float, default=None, help="SVM C (default: chosen on a validation split)")
    train.add_argument("--classes", type=_csv, default=None, metavar="a,b,...", help="train only these classes")
    train.add_argument("--seed", type=int, default=0)
    _add_parallel(train)

    evaluate = sub.add_parser("evaluate", parents=[common], help="per-class average precision of a model on a split",
                              description="Score every image of a split and report VOC 11-point AP per "
                                          "class (and area AP) as a table and as JSON.")
    add_evaluate_arguments(evaluate)
    _add_parallel(evaluate)

    predict = sub.add_parser("predict", parents=[common], help="per-class scores f(x) for image files",
                             description="Print (and optionally write as JSON) each class' SVM score for "
                                         "every image; unusable images are skipped and named.")
    predict.add_argument("--model", required=True, metavar="MODEL")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--json", metavar="OUT.json")
    predict.add_argument("--strict", action="store_true")
    _add_parallel(predict)

    explain = sub.add_parser("explain", parents=[common], help="LRP heatmaps of a model's class score",
                             description="Explain the SVM score f(x) of one class down to pixels with LRP "
                                         "(SVM layer exact for linear/HIK/additive-chi2, Taylor at a root "
                                         "point for exp-chi2/RBF; encoder rule; flat rule to pixels). Per "
                                         "image writes DIR/<stem>.npz (relevance H x W in original image "
                                         "coordinates, score, bias_relevance, residual, absorbed, "
                                         "descriptor_relevance, descriptor_frames), DIR/<stem>.png and "
                                         "DIR/<stem>_overlay.png.")
    explain.add_argument("--model", required=True, metavar="MODEL")
    explain.add_argument("--class", dest="class_name", required=True, metavar="NAME", help="class to explain")
    explain.add_argument("--rule", choices=("epsilon", "alphabeta", "absz"), default="epsilon",
                         help="encoder-layer rule: epsilon (Eq. 2.22), alpha-beta (Eq. 2.26) or the |z| "
                              "counter-example (default epsilon)")
    explain.add_argument("--eps", type=float, default=0.0,
                         help="epsilon stabiliser, on the summed FV contributions (Chapter 4 uses 1 and 100; "
                              "default 0, which conserves relevance exactly)")
    explain.add_argument("--alpha", type=float, default=2.0, help="alpha of the alpha-beta rule, beta = 1 - alpha "
                                                                   "(default 2)")
    explain.add_argument("--bias", choices=("keep", "uniform", "weighted"), default="keep",
                         help="SVM bias: kept apart (default), spread evenly (Eq. 2.73) or along w (Eq. 2.74, "
                              "linear models)")
    explain.add_argument("--depth", choices=("descriptors", "bins"), default="descriptors",
                         help="descriptors: each descriptor's relevance spread evenly over its support (default); "
                              "bins: FV models only, relevance per descriptor dimension through the PCA to each "
                              "SIFT spatial bin's support (Appendix D.1), 16x finer")
    add_explain_targets(explain)
    _add_parallel(explain)

    merge = sub.add_parser("merge-tiles", parents=[common], help="merge tile heatmaps into their large images",
                           description="Average the relevance maps of overlapping tiles (a store written by "
                                       "'explain --store' on a tiled set such as 'shapes') back into the large "
                                       "images they were cut from (Fig. 2.13). Writes <name>.npz, <name>.png and "
                                       "<name>_overlay.png per large image and, where pixel masks exist, the mean "
                                       "relevance and positive-relevance share per mask class.")
    merge.add_argument("--store", required=True, metavar="STORE.h5")
    merge.add_argument("--data", required=True, metavar="DIR", help="the tiled dataset (its ground_truth.json)")
    merge.add_argument("--out", required=True, metavar="DIR")
    merge.add_argument("--json", metavar="OUT.json", help="write the per-image and overall mask statistics here")
    __import__("bowlrp.dnn.cli").dnn.cli.add_parser(sub, common)  # bowlrp dnn train|evaluate|explain (dnn/cli.py)
    return parser


def _parallel(args: argparse.Namespace):
    from bowlrp.pipeline import ParallelOptions

    return ParallelOptions(n_jobs=args.n_jobs, backend=args.backend, scheduler=args.scheduler,
                           progress=not args.no_progress)


def report_skips(skips, stream=None) -> None:
    stream = stream or sys.stderr  # looked up at call time, so redirections (and tests) see it
    if len(skips):
        print(f"skipped {len(skips)} file(s):", file=stream)
        for entry in skips.as_list():
            print(f"  {entry['file']}: {entry['reason']}", file=stream)


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "synth-voc":
        from bowlrp.data.synth import generate_toyvoc

        root = generate_toyvoc(args.out, seed=args.seed, size=args.size, overwrite=args.overwrite)
        print(f"toyvoc ({args.size}, seed {args.seed}) written to {root}")
    elif args.data_command == "synth-shapes":
        from bowlrp.data.synth import generate_shapes

        root = generate_shapes(args.out, seed=args.seed, overwrite=args.overwrite)
        print(f"shapes task (seed {args.seed}) written to {root}")
    else:
        from bowlrp.data import open_dataset

        dataset = open_dataset(args.data, format=args.format, strict=args.strict)
        for split in dataset.splits():
            samples = dataset.split(split)
            print(f"{split}: {len(samples)} images")
            if samples:
                import numpy as np

                labels = np.stack([s.labels for s in samples])
                for c, name in enumerate(dataset.classes):
                    n_pos = int((labels[:, c] == 1).sum())
                    if n_pos:
                        print(f"  {name:<14} {n_pos:5d} positive")
        report_skips(dataset.skips)
    return EXIT_OK


def _labelled_split(args: argparse.Namespace, classes: list[str] | None):
    import numpy as np

    from bowlrp.data import open_dataset

    dataset = open_dataset(args.data, format=args.format, classes=classes, strict=args.strict)
    samples = dataset.split(args.split)
    if not samples:
        from bowlrp.errors import BowlrpError

        raise BowlrpError(f"split {args.split!r} of {args.data} has no images")
    labels = np.stack([s.labels for s in samples]).astype(np.int8)
    return dataset, samples, labels


def cmd_train(args: argparse.Namespace) -> int:
    from bowlrp.errors import SkipLog
    from bowlrp.pipeline import PipelineConfig, train_model

    dataset, samples, labels = _labelled_split(args, args.classes)
    # Classes without a single positive training image cannot get a classifier: say so, train the rest.
    present = [c for c in range(len(dataset.classes)) if (labels[:, c] == 1).any()]
    absent = [dataset.classes[c] for c in range(len(dataset.classes)) if c not in present]
    if absent and args.classes is None:
        print(f"note: no positive training image for {', '.join(absent)}; those classes are left out",
              file=sys.stderr)
    class_names = [dataset.classes[c] for c in present]
    pca_dims = args.pca_dims if args.pca_dims is not None else (80 if args.encoder == "fisher" else None)
    config = PipelineConfig(
        encoder=args.encoder, kernel=args.kernel,
        n_words=args.gmm_k if args.encoder == "fisher" else (args.vocab_size or 128),
        pca_dims=pca_dims or None, bin_sizes=args.bin_sizes, step=args.step, sift_backend=args.sift_backend,
        sift_orientation=args.sift_orientation,
        max_rows=args.max_rows, per_scale=args.per_scale, pyramid=not args.no_pyramid,
        pooling=args.pooling, max_descriptors=args.max_descriptors, C=args.C, seed=args.seed)
    skips = SkipLog(strict=args.strict)
    skips.extend(dataset.skips)
    model = train_model(config, [s.path for s in samples], labels[:, present], class_names, skips, _parallel(args))
    model.training["skipped"] = skips.as_list()
    model.training["split"] = args.split
    model.save(args.out)
    print(f"model written to {args.out}: {len(class_names)} classes, {model.training['n_images']} images, "
          f"feature dim {model.features.dim}, C per class {dict(zip(class_names, model.classifier.chosen_C_))}")
    report_skips(skips)
    return EXIT_OK


def format_ap_table(result: dict, title: str = "") -> str:
    """Per-class AP (11-point) and sign accuracy as an aligned text table."""
    def cell(value):
        return "   n/a" if value is None else f"{value:6.3f}"

    lines = [title] if title else []
    lines.append(f"  {'class':<14} {'AP':>6} {'acc':>6}")
    for name, value in result["ap"].items():
        lines.append(f"  {name:<14} {cell(value)} {cell(result['accuracy'][name])}")
    lines.append(f"  {'mAP':<14} {cell(result['map'])}")
    return "\n".join(lines)


def evaluate_model(model, samples, labels, skips, parallel) -> dict:
    """Scores of ``model`` on labelled samples, summarised as ``evaluate --json`` writes them."""
    from bowlrp.svm.metrics import evaluation_summary

    scores, ok = model.score_files([s.path for s in samples], skips, parallel)
    # labels come from a dataset opened with classes=model.class_names, so columns line up.
    result = evaluation_summary(scores, labels[ok], model.class_names)
    return {**result, "n_images": int(ok.sum()), "skipped": skips.as_list()}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bowlrp.errors import SkipLog
    from bowlrp.persistence import atomic_write_json
    from bowlrp.pipeline import BowModel

    model = BowModel.load(args.model)
    dataset, samples, labels = _labelled_split(args, model.class_names)
    skips = SkipLog(strict=args.strict)
    skips.extend(dataset.skips)
    result = evaluate_model(model, samples, labels, skips, _parallel(args))
    print(format_ap_table(result, f"AP (VOC 11-point) and accuracy (sign of f) on {args.split}, "
                                  f"{result['n_images']} images:"))
    report_skips(skips)
    if args.json:
        atomic_write_json(args.json, result)
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    from bowlrp.errors import SkipLog
    from bowlrp.persistence import atomic_write_json
    from bowlrp.pipeline import BowModel

    model = BowModel.load(args.model)
    skips = SkipLog(strict=args.strict)
    scores, ok = model.score_files(args.images, skips, _parallel(args))
    kept = [p for p, good in zip(args.images, ok) if good]
    result = {"classes": model.class_names,
              "scores": {p: dict(zip(model.class_names, map(float, row))) for p, row in zip(kept, scores)},
              "skipped": skips.as_list()}
    for path, row in result["scores"].items():
        best = max(row, key=row.get)
        print(f"{path}: " + " ".join(f"{c}={v:+.3f}" for c, v in row.items()) + f"  (top: {best})")
    report_skips(skips)
    if args.json:
        atomic_write_json(args.json, result)
    return EXIT_OK


def _explain_split(args: argparse.Namespace) -> int:
    from bowlrp.data import open_dataset
    from bowlrp.errors import BowlrpError, SkipLog
    from bowlrp.lrp import EncoderRule
    from bowlrp.lrp.store import explain_split
    from bowlrp.pipeline import BowModel

    if not (args.data and args.store) or args.images or args.out:
        raise BowlrpError("the split form takes --data DIR --split NAME --store OUT.h5 and no IMAGE/--out")
    model = BowModel.load(args.model)
    if args.class_name not in model.class_names:
        raise BowlrpError(f"unknown class {args.class_name!r}; the model knows {', '.join(model.class_names)}")
    dataset = open_dataset(args.data, format=args.format, strict=args.strict)
    samples = dataset.split(args.split)
    skips = SkipLog(strict=args.strict)
    skips.extend(dataset.skips)
    summary = explain_split(model, args.model, samples, args.class_name, args.store,
                            rule=EncoderRule(args.rule, eps=args.eps, alpha=args.alpha), bias=args.bias, depth=args.depth,
                            skips=skips, parallel=_parallel(args),
                            extra_settings={"data": str(Path(args.data).resolve()), "split": args.split})
    print_store_summary(summary, args)
    report_skips(skips)
    return EXIT_OK


def cmd_explain(args: argparse.Namespace) -> int:
    from bowlrp.errors import BowlrpError
    from bowlrp.lrp import EncoderRule, explain_image
    from bowlrp.pipeline import BowModel

    if args.data or args.store:
        return _explain_split(args)
    model = BowModel.load(args.model)
    if args.class_name not in model.class_names:
        raise BowlrpError(f"unknown class {args.class_name!r}; the model knows {', '.join(model.class_names)}")
    rule = EncoderRule(args.rule, eps=args.eps, alpha=args.alpha)
    explain_files(
        args, lambda image: explain_image(model, image, args.class_name, rule=rule, bias=args.bias, depth=args.depth),
        lambda r: f"f={r.score:+.4f}  sum R={float(r.relevance.sum()):+.4f}  bias={r.bias_relevance:+.4f}  "
                  f"absorbed={r.absorbed:+.4f}  residual={r.residual:+.2e}",
        f"explanation(s) of {args.class_name!r} ({rule.describe()}, bias {args.bias})")
    return EXIT_OK


def explain_files(args: argparse.Namespace, explain_one: Callable, describe: Callable, what: str) -> None:
    """The per-image form of ``explain`` and ``dnn explain``: for every ``args.images`` file,
    ``explain_one(image)`` and its ``.npz``, colour and overlay PNGs in ``args.out`` (named by the
    file's stem), one ``describe(result)`` line each, then "<count> <what> written to <out>/";
    unusable images are counted skips."""
    from bowlrp.data.images import load_image
    from bowlrp.errors import BowlrpError, SkipLog
    from bowlrp.heatmap import colorize, overlay, write_png

    if not args.images or not args.out:
        raise BowlrpError("give IMAGE... with --out DIR, or --data DIR --split NAME --store OUT.h5")
    stems = [Path(p).stem for p in args.images]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise BowlrpError(f"several images share the file name stem {clash[0]!r}; their outputs would collide")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    skips = SkipLog(strict=args.strict)
    for path, stem in zip(args.images, stems):
        try:
            image = load_image(path)
            result = explain_one(image)
        except BowlrpError as exc:
            skips.add(path, str(exc))
            continue
        result.save_npz(out / f"{stem}.npz")
        write_png(out / f"{stem}.png", colorize(result.relevance))
        write_png(out / f"{stem}_overlay.png", overlay(image, result.relevance))
        print(f"{path}: {describe(result)}")
    print(f"{len(args.images) - len(skips)} {what} written to {out}/")
    report_skips(skips)


def print_store_summary(summary, args: argparse.Namespace) -> None:
    """One line on a finished split store (``explain --store`` and ``dnn explain --store``)."""
    print(f"{summary.path}: {summary.n_explained + summary.n_resumed} image(s) of {args.split} explained for "
          f"{args.class_name!r} ({summary.n_resumed} kept from an interrupted run)")


def cmd_merge_tiles(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from bowlrp.analysis.tiles import mask_statistics, merge_store, tile_layout
    from bowlrp.data.images import load_image
    from bowlrp.heatmap import colorize, overlay, write_png
    from bowlrp.lrp.store import RelevanceStore
    from bowlrp.persistence import atomic_write_bytes, atomic_write_json, npz_bytes

    layout = tile_layout(args.data)
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = layout.get("mask_values")
    per_image, pooled = {}, {}
    with RelevanceStore(args.store) as store:
        merged = merge_store(store, layout)
    for item in merged:
        atomic_write_bytes(out / f"{item.name}.npz", npz_bytes({"relevance": item.relevance.astype(np.float32)}))
        write_png(out / f"{item.name}.png", colorize(item.relevance))
        large = data / "large" / f"{item.name}.png"
        if large.is_file():
            write_png(out / f"{item.name}_overlay.png", overlay(load_image(large), item.relevance))
        mask_path = data / "masks" / f"{item.name}.png"
        if labels and mask_path.is_file():
            mask = np.asarray(Image.open(mask_path))
            per_image[item.name] = mask_statistics(item.relevance, mask, labels)
            pooled.setdefault("relevance", []).append(item.relevance.ravel())
            pooled.setdefault("mask", []).append(mask.ravel())
        print(f"{item.name}: {item.n_tiles} tiles merged")
    result = {"images": per_image}
    if pooled:
        result["overall"] = mask_statistics(np.concatenate(pooled["relevance"]), np.concatenate(pooled["mask"]), labels)
        for name, row in result["overall"].items():
            print(f"  {name:<12} mean relevance {row['mean']:+.3e}   share of positive relevance "
                  f"{row['positive_share']:.3f}   ({row['pixels']} px)")
    if args.json:
        atomic_write_json(args.json, result)
    print(f"{len(merged)} merged map(s) written to {out}/")
    return EXIT_OK


COMMANDS = {"data": cmd_data, "train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict,
            "explain": cmd_explain, "merge-tiles": cmd_merge_tiles, "dnn": lambda a: __import__("bowlrp.dnn.cli").dnn.cli.run(a)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if sys.stderr.isatty():
        # at a terminal, say what the long stages are doing (the progress bars show there too)
        logging.getLogger("bowlrp").setLevel(logging.INFO)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("bowlrp: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        if args.debug:
            raise
        from bowlrp.errors import BowlrpError

        message = str(exc) if isinstance(exc, BowlrpError) else f"{type(exc).__name__}: {exc}"
        print(f"bowlrp: error: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
