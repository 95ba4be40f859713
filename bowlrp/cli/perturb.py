"""``bowlrp perturb``: faithfulness curves of a model's explanations (region perturbation, Section 3.4;
descriptor replacement for Fisher-vector models, Appendix C.2)."""
from __future__ import annotations

import argparse
import math

from ..analysis.descriptor_replacement import RANDOM, RULE_ORDERS, DescriptorCurves
from ..analysis.perturbation import curve_split, plot_curves
from ..analysis.region_perturbation import ORDER_KINDS, PerturbationConfig, RegionCurves
from ..errors import BowlrpError
from ..model import load_model
from ..runs import labelled_split
from .common import (add_data_source, add_device, add_model, add_parallel, csv_list, data_settings, non_negative_int,
                     parallel_options, positive_int, report_skips, skip_log)


def _fill(text: str) -> str | float:
    if text == "uniform":
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'uniform' or a finite number, got {text!r}")
    return value


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    perturb = sub.add_parser(
        "perturb", parents=[common], help="faithfulness curves and AOPC: pixel regions (any model) or FV descriptors",
        description="Replace parts of each image step by step, in the order an explanation ranks them, and record "
                    "how the class score falls (MoRF, dissertation Section 3.4); the area over the curve is AOPC "
                    "(Eq. 3.7), averaged over repetitions and images, against a random order. --mode regions: a "
                    "fixed grid of REGION x REGION squares ranked by summed relevance, replaced by uniform random "
                    "values; any model directory (BoW/FV or DNN). --mode descriptors (Fisher-vector models, "
                    "Appendix C.2): local descriptors ranked by their relevance under each LRP rule, replaced "
                    "--per-step at a time by samples of the model's GMM, the Fisher vector updated incrementally. "
                    "Resumable: re-run the same command after an interruption and finished images are kept.")
    add_model(perturb)
    add_data_source(perturb)
    perturb.add_argument("--split", default="test", help="split to run on (default test)")
    perturb.add_argument("--class", dest="class_name", required=True, metavar="NAME", help="class whose score is followed")
    perturb.add_argument("--mode", choices=("regions", "descriptors"), default="regions",
                         help="what is perturbed: pixel regions (default) or, for FV models, local descriptors")
    perturb.add_argument("--orders", nargs="+", default=None, metavar="ORDER",
                         help=f"orders to compare, separated by spaces (or commas). regions: {', '.join(ORDER_KINDS)} "
                              "(lrp = most relevant first by the model's default explanation, lerf = least relevant "
                              "first); lrp and lerf take explanation options, e.g. lrp:eps=1 "
                              "lrp:rule=alphabeta,alpha=2 (default: lrp random). descriptors: "
                              f"{', '.join([*RULE_ORDERS, RANDOM])} (epsilon 1 and 100, alpha 2 / beta 1, |z|; "
                              "default: all five)")
    perturb.add_argument("--images", choices=("positives", "all"), default="positives",
                         help="which images of the split: those labelled with the class (default) or all")
    perturb.add_argument("--n-images", type=positive_int, metavar="N", help="only the first N of them")
    perturb.add_argument("--region", type=positive_int, default=9, help="side of the square regions in pixels (default 9)")
    perturb.add_argument("--steps", type=positive_int, default=100,
                         help="perturbation steps L: regions, or batches of descriptors (default 100)")
    perturb.add_argument("--repetitions", type=positive_int, default=None,
                         help="random draws averaged per image (default 10 for regions, 5 for descriptors)")
    perturb.add_argument("--per-step", type=positive_int, default=100, metavar="N",
                         help="descriptors replaced per step (default 100: 10,000 over 100 steps, Appendix C.2; "
                              "fewer on images with fewer descriptors)")
    perturb.add_argument("--fill", type=_fill, default="uniform",
                         help="replacement values: 'uniform' in [0, 1] (default) or a constant")
    perturb.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    perturb.add_argument("--batch-size", type=positive_int, default=64, help="perturbed images scored at once (default 64)")
    add_device(perturb, None)
    perturb.add_argument("--json", required=True, metavar="OUT.json", help="curves and AOPC per order (and per image)")
    perturb.add_argument("--plot", metavar="OUT.png", help="plot of the mean curves")
    add_parallel(perturb)
    perturb.set_defaults(handler=run_perturb, outputs={"json": "file", "plot": "file"})


def _order_list(values: list[str] | None) -> list[str] | None:
    """Orders as given, a comma-separated list split up (an order with options keeps its commas)."""
    if values is None:
        return None
    return [part for value in values for part in ([value] if ":" in value else csv_list(value))]


def _curve_source(args: argparse.Namespace, model):
    orders = _order_list(args.orders)
    if args.mode == "descriptors":
        return DescriptorCurves.for_model(model, orders or (*RULE_ORDERS, RANDOM), steps=args.steps,
                                          batch=args.per_step, repetitions=args.repetitions or 5, seed=args.seed)
    config = PerturbationConfig(region=args.region, steps=args.steps, repetitions=args.repetitions or 10,
                                fill=args.fill, seed=args.seed, batch_size=args.batch_size)
    return RegionCurves.for_model(model, orders or ["lrp", "random"], config)


def run_perturb(args: argparse.Namespace) -> int:
    model = load_model(args.model, args.device)
    k = model.class_index(args.class_name)
    dataset, samples, labels = labelled_split(args.data, args.split, args.format, model.class_names, args.strict)
    if args.images == "positives":
        samples = [s for s, row in zip(samples, labels) if row[k] == 1]
    if args.n_images is not None:
        samples = samples[:max(args.n_images, 0)]
    if not samples:
        raise BowlrpError(f"no {args.images} images of {args.class_name!r} in split {args.split!r}")
    source = _curve_source(args, model)
    skips = skip_log(args, dataset.skips)
    result = curve_split(model, samples, args.class_name, source, args.json, skips, parallel_options(args),
                         extra_settings={**data_settings(args), "images": args.images})
    steps = len(next(iter(result["orders"].values()))["curve_mean"]) - 1
    print(f"{args.mode} perturbation of {args.class_name!r} on {result['n_images']} image(s) of {args.split} "
          f"({result['n_resumed']} kept from an interrupted run); AOPC (Eq. 3.7) over {steps} steps:")
    for name, row in result["orders"].items():
        print(f"  {name:<20} {row['aopc_mean']:+.4f} ± {row['aopc_std']:.4f} (std over images)")
    report_skips(skips)
    if args.plot:
        plot_curves(result, args.plot)
    print(f"written to {args.json}" + (f" and {args.plot}" if args.plot else ""))
    return 0
