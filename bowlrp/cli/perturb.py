"""``bowlrp perturb``: faithfulness curves of a model's explanations (region perturbation, Section 3.4)."""
from __future__ import annotations

import argparse

from ..analysis.region_perturbation import ORDER_KINDS, PerturbationConfig, perturb_split, plot_curves
from ..errors import BowlrpError
from ..model import load_model
from ..runs import labelled_split
from .common import add_data_source, add_model, add_parallel, data_settings, parallel_options, report_skips, skip_log


def _fill(text: str) -> str | float:
    if text == "uniform":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'uniform' or a number, got {text!r}") from None


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    perturb = sub.add_parser(
        "perturb", parents=[common], help="region perturbation curves and AOPC of a model's explanations",
        description="Replace image regions step by step, in the order an explanation ranks them, and record how "
                    "the class score falls (MoRF, dissertation Section 3.4). Regions: a fixed grid of REGION x "
                    "REGION squares ranked by summed relevance, replaced by uniform random values; the area over "
                    "the curve is AOPC (Eq. 3.7), averaged over repetitions and images, against a random order. "
                    "Any model directory (BoW/FV or DNN). Resumable: re-run the same command after an "
                    "interruption and finished images are kept.")
    add_model(perturb)
    add_data_source(perturb)
    perturb.add_argument("--split", default="test", help="split to run on (default test)")
    perturb.add_argument("--class", dest="class_name", required=True, metavar="NAME", help="class whose score is followed")
    perturb.add_argument("--mode", choices=("regions",), default="regions",
                         help="what is perturbed: pixel regions (default; the only mode so far)")
    perturb.add_argument("--orders", nargs="+", default=["lrp", "random"], metavar="ORDER",
                         help=f"orders to compare: {', '.join(ORDER_KINDS)} (lrp = most relevant first by the "
                              "model's default explanation, lerf = least relevant first); lrp and lerf take "
                              "explanation options, e.g. lrp:eps=1 lrp:rule=alphabeta,alpha=2 (default: lrp random)")
    perturb.add_argument("--images", choices=("positives", "all"), default="positives",
                         help="which images of the split: those labelled with the class (default) or all")
    perturb.add_argument("--n-images", type=int, metavar="N", help="only the first N of them")
    perturb.add_argument("--region", type=int, default=9, help="side of the square regions in pixels (default 9)")
    perturb.add_argument("--steps", type=int, default=100, help="regions replaced, L (default 100)")
    perturb.add_argument("--repetitions", type=int, default=10, help="random draws averaged per image (default 10)")
    perturb.add_argument("--fill", type=_fill, default="uniform",
                         help="replacement values: 'uniform' in [0, 1] (default) or a constant")
    perturb.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    perturb.add_argument("--batch-size", type=int, default=64, help="perturbed images scored at once (default 64)")
    perturb.add_argument("--device", default=None, help="device of a DNN model (cpu, cuda, cuda:N)")
    perturb.add_argument("--json", required=True, metavar="OUT.json", help="curves and AOPC per order (and per image)")
    perturb.add_argument("--plot", metavar="OUT.png", help="plot of the mean curves")
    add_parallel(perturb)
    perturb.set_defaults(handler=run_perturb)


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
    config = PerturbationConfig(region=args.region, steps=args.steps, repetitions=args.repetitions, fill=args.fill,
                                seed=args.seed, batch_size=args.batch_size)
    skips = skip_log(args, dataset.skips)
    result = perturb_split(model, samples, args.class_name, args.orders, args.json, config, skips,
                           parallel_options(args), extra_settings={**data_settings(args), "images": args.images})
    print(f"region perturbation of {args.class_name!r} on {result['n_images']} image(s) of {args.split} "
          f"({result['n_resumed']} kept from an interrupted run); AOPC (Eq. 3.7) over {len(result['orders'][args.orders[0]]['curve_mean']) - 1} steps:")
    for name, row in result["orders"].items():
        print(f"  {name:<20} {row['aopc_mean']:+.4f} ± {row['aopc_std']:.4f} (std over images)")
    report_skips(skips)
    if args.plot:
        plot_curves(result, args.plot)
    print(f"written to {args.json}" + (f" and {args.plot}" if args.plot else ""))
    return 0
