"""``bowlrp evaluate | predict | explain``: any saved model, whatever its family.

The model directory's ``model.json`` says the family (:func:`bowlrp.model.family_of`, which imports
nothing of the family, so a BoW/FV command never loads PyTorch); each family's options are marked with
:func:`~.common.family_specific` and refused, one line naming the flag, for a model of the other family.
The handlers here also serve ``bowlrp dnn evaluate | predict | explain`` (:mod:`.dnn`), which take
networks only and list the DNN option values (composites, methods) in their help.
"""
from __future__ import annotations

import argparse

from ..errors import BowlrpError
from ..model import Model, family_of, load_model, method_for
from ..persistence import atomic_write_json
from ..runs import evaluate, explain_files, explain_split, labelled_split
from ..svm.metrics import format_ap_table
from .common import (FAMILY_LABELS, add_device, add_evaluate_arguments, add_explain_targets, add_model, add_parallel, add_strict, apply_family,
                     data_settings, exit_status, explain_form, family_specific, float_at_least, non_negative_float,
                     non_negative_int, parallel_options, positive_float, report_skips, skip_log)

# family-specific explanation flags default to SUPPRESS: only what the user gave reaches the model's
# explanation_method, so each family fills in its own defaults and refuses options it does not know
BOW_OPTIONS = ("rule", "eps", "alpha", "bias", "depth", "taylor", "path_tolerance")
DNN_OPTIONS = ("method", "composite", "flat_depth")
PARALLEL_OPTIONS = ("n_jobs", "backend", "scheduler")  # worker processes: the BoW/FV feature extraction
#: ``--eps`` of the epsilon rule on a Fisher-vector model when it is not given (the value the thesis'
#: Chapter 4 and the README use). It is on the scale of the summed FV contributions; a BoW histogram's
#: entries are fractions of 1, which an eps of 1 would swamp (the shapes task's polygons then came out
#: negative), so BoW models keep 0, as does the Python API: it conserves relevance exactly
DEFAULT_EPS = 1.0
EXPLAIN_OUTPUTS = {"out": "folder", "store": "file"}  # checked before the model is loaded (.common.check_outputs)
METHOD_HELP = {"lrp": "the composite's LRP rules", "gradient": "sensitivity", "gradxinput": "gradient x input",
               "deconvnet": "deconvnet", "guided": "guided backprop", "smoothgrad": "SmoothGrad",
               "ig": "integrated gradients from a black image"}
THESIS_HELP = ("epsilon 0.01 on dense layers, alpha=2, beta=1 on convolutions, flat on the lowest --flat-depth "
               "layers")


def add_evaluate_parser(actions, common: argparse.ArgumentParser, help: str, description: str,
                        networks_only: bool = False) -> argparse.ArgumentParser:
    """An ``evaluate`` command (``bowlrp evaluate``, ``bowlrp dnn evaluate``) run by :func:`run_evaluate`."""
    parser = actions.add_parser("evaluate", parents=[common], help=help, description=description)
    add_evaluate_arguments(parser)
    _family_options(parser, networks_only)
    parser.set_defaults(handler=run_evaluate, outputs={"json": "file"})
    return parser


def add_predict_parser(actions, common: argparse.ArgumentParser, networks_only: bool = False) -> argparse.ArgumentParser:
    """A ``predict`` command (``bowlrp predict``, ``bowlrp dnn predict``) run by :func:`run_predict`."""
    predict = actions.add_parser("predict", parents=[common], help="per-class scores f(x) for image files",
                                 description="Print (and optionally write as JSON) each class' score for every "
                                             "image (a network scores the centre crop); unusable images are "
                                             "skipped and named, and a run where all were skipped exits 1.")
    add_model(predict)
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files to score (JPEG, PNG, ...)")
    predict.add_argument("--json", metavar="OUT.json", help="write {classes, scores: {image: {class: f}}, skipped}")
    add_strict(predict)
    _family_options(predict, networks_only)
    predict.set_defaults(handler=run_predict, outputs={"json": "file"})
    return predict


def _family_options(parser: argparse.ArgumentParser, networks_only: bool) -> None:
    """The device of a network, and (unless ``networks_only``) the BoW/FV worker processes."""
    add_device(parser)
    if networks_only:
        parser.add_argument("--no-progress", action="store_true", help="no progress bar or lines")
        parser.set_defaults(families=("dnn",))
    else:
        add_parallel(parser)
        family_specific(parser, "bow", PARALLEL_OPTIONS)
    family_specific(parser, "dnn", ("device",))


def add_bow_explain_options(parser: argparse.ArgumentParser) -> None:
    rules = parser.add_argument_group("BoW/FV models")
    rules.add_argument("--rule", choices=("epsilon", "alphabeta", "absz"), default=argparse.SUPPRESS,
                       help="encoder-layer rule: epsilon (Eq. 2.22), alpha-beta (Eq. 2.26) or the |z| "
                            "counter-example (default epsilon)")
    rules.add_argument("--eps", type=non_negative_float, default=argparse.SUPPRESS,
                       help=f"epsilon stabiliser, on the summed FV contributions (Chapter 4 uses 1 and 100; "
                            f"default {DEFAULT_EPS:g} for Fisher-vector models, 0 for BoW histograms, whose "
                            f"entries an eps of 1 would swamp; 0 conserves relevance exactly)")
    rules.add_argument("--alpha", type=float_at_least(1.0), default=argparse.SUPPRESS,
                       help="alpha of the alpha-beta rule; beta = alpha - 1 >= 0 is the weight of the negative "
                            "contributions' share, which is subtracted (default alpha=2, beta=1; the thesis "
                            "writes the same rule as alpha=2, beta=-1)")
    rules.add_argument("--bias", choices=("keep", "uniform", "weighted"), default=argparse.SUPPRESS,
                       help="SVM bias: kept apart (default), spread evenly (Eq. 2.73) or along w (Eq. 2.74, "
                            "linear models)")
    rules.add_argument("--depth", choices=("descriptors", "bins"), default=argparse.SUPPRESS,
                       help="descriptors: each descriptor's relevance spread evenly over its support (default); "
                            "bins: FV models only, relevance per descriptor dimension through the PCA to each "
                            "SIFT spatial bin's support (Appendix D.1), 16x finer ('bowlrp render' draws such "
                            "maps smoothed)")
    rules.add_argument("--taylor", choices=("path", "first-order"), default=argparse.SUPPRESS,
                       help="exp-chi2/RBF models: path integrates the kernel expansion's gradient along the "
                            "segment from the nearest root point to x, refining the quadrature until "
                            "|residual| <= --path-tolerance * |f(x)| (default); first-order is the thesis' "
                            "first-order expansion at the root point (Eq. 2.76), whose residual is the whole "
                            "higher-order remainder")
    rules.add_argument("--path-tolerance", type=positive_float, default=argparse.SUPPRESS,
                       help="--taylor path: bound on |residual| / |f(x)| at which the quadrature stops doubling its "
                            "nodes (default 1e-3; at most 256 nodes, the residual in the books says what is left)")


def add_dnn_explain_options(parser: argparse.ArgumentParser, names: tuple[list[str], list[str], str] | None) -> None:
    """``--method``, ``--composite``, ``--flat-depth``, ``--device``; with ``names`` (method names, composite
    names, the default composite: read from :mod:`bowlrp.dnn`, which imports PyTorch) as argparse choices,
    without them checked by the model once a network is loaded."""
    group = parser.add_argument_group("DNN models")
    if names is None:
        methods, composites, thesis = None, None, "the thesis composite epsilon-alpha2beta1-flat"
        method_help = "attribution method (default lrp; the names: 'bowlrp dnn explain --help')"
        composite_help = "LRP rules per layer (the names: 'bowlrp dnn explain --help')"
    else:
        methods, composites, thesis = names
        method_help = ("; ".join(f"{name}: {METHOD_HELP.get(name, name)}" for name in methods) + " (default lrp)")
        composite_help = "LRP rules per layer"
    # SUPPRESS: only the options given reach the model (see BOW_OPTIONS)
    group.add_argument("--method", choices=methods, default=argparse.SUPPRESS, help=method_help)
    group.add_argument("--composite", choices=composites, default=argparse.SUPPRESS,
                       help=f"{composite_help} (default {thesis}: {THESIS_HELP})")
    group.add_argument("--flat-depth", type=non_negative_int, default=argparse.SUPPRESS, metavar="N",
                       help="decomposition depth: the lowest N Conv/Linear layers use the flat rule (default 1)")
    add_device(group)


EXPLAIN_FILES = ("Per image writes DIR/<stem>.npz (relevance H x W float32 in original image coordinates, score, "
                 "bias_relevance, residual, absorbed, descriptor_relevance, descriptor_frames), DIR/<stem>.png and "
                 "DIR/<stem>_overlay.png; or a whole split into one HDF5 store. A run where every image was "
                 "skipped exits 1.")


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    add_evaluate_parser(sub, common, "per-class average precision of a model on a split",
                        "Score every image of a split and report VOC 11-point AP per class (and area AP) as a "
                        "table and as JSON. Any model directory: BoW/FV or DNN (centre crop).")
    add_predict_parser(sub, common)

    explain = sub.add_parser("explain", parents=[common], help="LRP heatmaps of a model's class score (any family)",
                             description="Explain the score f(x) of one class down to pixels, for any model "
                                         "directory. A BoW/FV model with LRP (SVM layer exact for linear/HIK/"
                                         "additive-chi2, Taylor at a root point for exp-chi2/RBF, by default "
                                         "integrated along the path from the root point; encoder rule; flat rule "
                                         "to pixels); a DNN model with an LRP composite or a gradient baseline "
                                         "(the same as 'bowlrp dnn explain'). Each family's options are refused "
                                         "for the other's models. " + EXPLAIN_FILES)
    add_explain_targets(explain)
    add_bow_explain_options(explain)
    add_dnn_explain_options(explain, None)
    add_parallel(explain)
    family_specific(explain, "bow", BOW_OPTIONS + PARALLEL_OPTIONS)
    family_specific(explain, "dnn", DNN_OPTIONS + ("device",))
    explain.set_defaults(handler=run_explain, outputs=EXPLAIN_OUTPUTS)


def open_model(args: argparse.Namespace) -> Model:
    """The model a command works on: ``args.opener(args)`` where the command has its own way (``dnn explain
    --weights``), else ``--model``, of a family the command takes (``args.families``), with that family's
    options applied (:func:`~.common.apply_family`)."""
    opener = getattr(args, "opener", None)
    model = opener(args) if opener is not None else None
    if model is not None:
        return model
    family = family_of(args.model)
    families = getattr(args, "families", None)
    if families and family not in families:
        raise BowlrpError(f"{args.model} is a {FAMILY_LABELS.get(family, family)} model; 'bowlrp dnn "
                          f"{args.dnn_command}' takes networks, 'bowlrp {args.dnn_command}' takes any model")
    apply_family(args, family, f"{args.model} is a {FAMILY_LABELS.get(family, family)} model")
    return load_model(args.model, getattr(args, "device", None))


def explanation_options(args: argparse.Namespace, model: Model) -> dict:
    """The explanation options given on the command line, with the command line's own defaults
    (``--eps`` 1 for the epsilon rule of a Fisher-vector model, 0 for a BoW histogram's)."""
    options = {name: getattr(args, name) for name in BOW_OPTIONS + DNN_OPTIONS if hasattr(args, name)}
    if model.family == "bow" and options.get("rule", "epsilon") == "epsilon":
        options.setdefault("eps", DEFAULT_EPS if model.features.is_fisher else 0.0)
    return options


def run_evaluate(args: argparse.Namespace) -> int:
    model = open_model(args)
    dataset, samples, labels = labelled_split(args.data, args.split, args.format, model.class_names, args.strict)
    skips = skip_log(args, dataset.skips)
    result = evaluate(model, samples, labels, skips, parallel_options(args))
    note = f", {model.scoring_note}" if model.scoring_note else ""
    print(format_ap_table(result, f"AP (VOC 11-point) and accuracy (sign of f) on {args.split}, "
                                  f"{result['n_images']} images{note}:"))
    report_skips(skips)
    if args.json:
        atomic_write_json(args.json, result)
    return exit_status(result["n_images"], skips)


def run_predict(args: argparse.Namespace) -> int:
    model = open_model(args)
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
    return exit_status(len(kept), skips)


def run_explain(args: argparse.Namespace) -> int:
    """``explain`` and ``dnn explain``: the family's flags the user gave go to the model's explanation
    method; the rest is the same for every family."""
    form = explain_form(args)
    model = open_model(args)
    model.class_index(args.class_name)
    method = method_for(model, explanation_options(args, model))
    if form == "split":
        dataset, samples, _ = labelled_split(args.data, args.split, args.format, strict=args.strict)
        skips = skip_log(args, dataset.skips)
        summary = explain_split(model, samples, args.class_name, args.store, method, skips, parallel_options(args),
                                extra_settings=data_settings(args))
        done = summary.n_explained + summary.n_resumed
        print(f"{summary.path}: {done} image(s) of {args.split} explained for {args.class_name!r} "
              f"({method.describe()}; {summary.n_resumed} kept from an interrupted run)")
        report_skips(skips)
        return exit_status(done, skips)
    skips = skip_log(args)
    done = 0
    for path, explanation in explain_files(model, args.class_name, method, args.images, args.out, skips):
        print(f"{path}: {explanation.summary()}")
        done += 1
    print(f"{done} explanation(s) of {args.class_name!r} ({method.describe()}) written to {args.out}/")
    report_skips(skips)
    return exit_status(done, skips)
