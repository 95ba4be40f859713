"""``bowlrp evaluate | predict | explain``: any saved model, whatever its family.

The handlers here also serve ``bowlrp dnn evaluate | explain`` (:mod:`.dnn`), which differ only in
the options they offer.
"""
from __future__ import annotations

import argparse

from ..model import load_model, method_for
from ..persistence import atomic_write_json
from ..runs import evaluate, explain_files, explain_split, labelled_split
from ..svm.metrics import format_ap_table
from .common import (add_evaluate_arguments, add_explain_targets, add_model, add_parallel, data_settings,
                     explain_form, float_at_least, non_negative_float, parallel_options, positive_float, report_skips, skip_log)

# family-specific explanation flags default to SUPPRESS: only what the user gave reaches the model's
# explanation_method, so each family fills in its own defaults and refuses options it does not know
BOW_OPTIONS = ("rule", "eps", "alpha", "bias", "depth", "taylor", "path_tolerance")
EXPLAIN_OUTPUTS = {"out": "folder", "store": "file"}  # checked before the model is loaded (.common.check_outputs)


def add_evaluate_parser(actions, common: argparse.ArgumentParser, help: str, description: str) -> argparse.ArgumentParser:
    """An ``evaluate`` command (``bowlrp evaluate``, ``bowlrp dnn evaluate``) run by :func:`run_evaluate`."""
    parser = actions.add_parser("evaluate", parents=[common], help=help, description=description)
    add_evaluate_arguments(parser)
    parser.set_defaults(handler=run_evaluate, outputs={"json": "file"})
    return parser


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    add_parallel(add_evaluate_parser(sub, common, "per-class average precision of a model on a split",
                                     "Score every image of a split and report VOC 11-point AP per class (and area "
                                     "AP) as a table and as JSON. Any model directory: BoW/FV or DNN."))

    predict = sub.add_parser("predict", parents=[common], help="per-class scores f(x) for image files",
                             description="Print (and optionally write as JSON) each class' score for every "
                                         "image; unusable images are skipped and named.")
    add_model(predict)
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--json", metavar="OUT.json", help="write {classes, scores: {image: {class: f}}, skipped}")
    predict.add_argument("--strict", action="store_true", help="stop at the first unusable image")
    add_parallel(predict)
    predict.set_defaults(handler=run_predict, outputs={"json": "file"})

    explain = sub.add_parser("explain", parents=[common], help="LRP heatmaps of a model's class score",
                             description="Explain the score f(x) of one class down to pixels. For a BoW/FV model "
                                         "with LRP (SVM layer exact for linear/HIK/additive-chi2, Taylor at a "
                                         "root point for exp-chi2/RBF, by default integrated along the path from the root point; encoder rule; flat rule to pixels); a "
                                         "DNN model gets its default (the thesis composite; 'bowlrp dnn explain' "
                                         "offers its options). Per image writes DIR/<stem>.npz (relevance H x W "
                                         "in original image coordinates, score, bias_relevance, residual, "
                                         "absorbed, descriptor_relevance, descriptor_frames), DIR/<stem>.png and "
                                         "DIR/<stem>_overlay.png; or a whole split into one HDF5 store.")
    add_explain_targets(explain)
    rules = explain.add_argument_group("BoW/FV explanation")
    rules.add_argument("--rule", choices=("epsilon", "alphabeta", "absz"), default=argparse.SUPPRESS,
                       help="encoder-layer rule: epsilon (Eq. 2.22), alpha-beta (Eq. 2.26) or the |z| "
                            "counter-example (default epsilon)")
    rules.add_argument("--eps", type=non_negative_float, default=argparse.SUPPRESS,
                       help="epsilon stabiliser, on the summed FV contributions (Chapter 4 uses 1 and 100; "
                            "default 0, which conserves relevance exactly)")
    rules.add_argument("--alpha", type=float_at_least(1.0), default=argparse.SUPPRESS,
                       help="alpha of the alpha-beta rule; beta = alpha - 1 weighs the negative contributions "
                            "(default 2, so beta 1)")
    rules.add_argument("--bias", choices=("keep", "uniform", "weighted"), default=argparse.SUPPRESS,
                       help="SVM bias: kept apart (default), spread evenly (Eq. 2.73) or along w (Eq. 2.74, "
                            "linear models)")
    rules.add_argument("--depth", choices=("descriptors", "bins"), default=argparse.SUPPRESS,
                       help="descriptors: each descriptor's relevance spread evenly over its support (default); "
                            "bins: FV models only, relevance per descriptor dimension through the PCA to each "
                            "SIFT spatial bin's support (Appendix D.1), 16x finer")
    rules.add_argument("--taylor", choices=("path", "first-order"), default=argparse.SUPPRESS,
                       help="exp-chi2/RBF models: path integrates the kernel expansion's gradient along the "
                            "segment from the nearest root point to x, refining the quadrature until "
                            "|residual| <= --path-tolerance * |f(x)| (default); first-order is the thesis' "
                            "first-order expansion at the root point (Eq. 2.76), whose residual is the whole "
                            "higher-order remainder")
    rules.add_argument("--path-tolerance", type=positive_float, default=argparse.SUPPRESS,
                       help="--taylor path: bound on |residual| / |f(x)| at which the quadrature stops doubling its "
                            "nodes (default 1e-3; at most 256 nodes, the residual in the books says what is left)")
    add_parallel(explain)
    explain.set_defaults(handler=lambda args: run_explain(args, BOW_OPTIONS), outputs=EXPLAIN_OUTPUTS)


def run_evaluate(args: argparse.Namespace) -> int:
    model = load_model(args.model, getattr(args, "device", None))
    dataset, samples, labels = labelled_split(args.data, args.split, args.format, model.class_names, args.strict)
    skips = skip_log(args, dataset.skips)
    result = evaluate(model, samples, labels, skips, parallel_options(args))
    note = f", {model.scoring_note}" if model.scoring_note else ""
    print(format_ap_table(result, f"AP (VOC 11-point) and accuracy (sign of f) on {args.split}, "
                                  f"{result['n_images']} images{note}:"))
    report_skips(skips)
    if args.json:
        atomic_write_json(args.json, result)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    skips = skip_log(args)
    scores, ok = model.score_files(args.images, skips, parallel_options(args))
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
    return 0


def run_explain(args: argparse.Namespace, option_names: tuple[str, ...]) -> int:
    """``explain`` and ``dnn explain``: the ``option_names`` flags the user gave go to the model's
    explanation method; the rest is the same for every family."""
    form = explain_form(args)
    model = load_model(args.model, getattr(args, "device", None))
    model.class_index(args.class_name)
    method = method_for(model, {name: getattr(args, name) for name in option_names if hasattr(args, name)})
    if form == "split":
        dataset, samples, _ = labelled_split(args.data, args.split, args.format, strict=args.strict)
        skips = skip_log(args, dataset.skips)
        summary = explain_split(model, samples, args.class_name, args.store, method, skips, parallel_options(args),
                                extra_settings=data_settings(args))
        print(f"{summary.path}: {summary.n_explained + summary.n_resumed} image(s) of {args.split} explained for "
              f"{args.class_name!r} ({summary.n_resumed} kept from an interrupted run)")
        report_skips(skips)
        return 0
    skips = skip_log(args)
    for path, explanation in explain_files(model, args.class_name, method, args.images, args.out, skips):
        print(f"{path}: {explanation.summary()}")
    print(f"{len(args.images) - len(skips)} explanation(s) of {args.class_name!r} ({method.describe()}) "
          f"written to {args.out}/")
    report_skips(skips)
    return 0
