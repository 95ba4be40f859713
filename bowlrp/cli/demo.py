"""``make demo``: the whole study on the embedded synthetic data, from nothing, ending in a report.

Synthesises small toyfaces and runs the small faces study into ``study/faces`` (age networks by
preprocessing and initialisation, LRP maps, relevance on facial regions, the smile test), synthesises
toyvoc, then runs ``bowlrp study`` on it — FV, rank-BoW and network trained and evaluated, every class
explained by FV and network, heatmap gallery, context, perturbation, SpRAy where installed, watermark
and padding experiments — and prints the path of ``report/index.html``, which has a faces section.
Each data set is reused when a complete one of the same seed and size is there. Resumable: run it again
after an interruption and the finished steps are kept.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..data.synth import generate_toyfaces, generate_toyvoc
from ..data.synth.faces import FORMAT as TOYFACES_FORMAT
from ..errors import BowlrpError
from ..faces.study import run_faces_study
from ..study import run_study
from ..study.faces_section import FACES_DIR
from .common import n_jobs_arg, non_negative_int


def _same_synth(root: Path, seed: int, size: str, **kind: str) -> bool:
    """True when ``root`` holds a complete synthetic set of this kind (``generator="toyvoc"``,
    ``format="bowlrp.toyfaces"``), seed and size (its sidecar is written last)."""
    try:
        meta = json.loads((root / "ground_truth.json").read_text())
    except (OSError, ValueError):
        return False
    return all(meta.get(k) == v for k, v in kind.items()) and meta.get("seed") == seed and meta.get("size") == size


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo-out", help="output folder: toyvoc/ and study/ (default demo-out)")
    parser.add_argument("--data-size", choices=("small", "default", "large"), default="default",
                        help="toyvoc size (default: default, 600 images)")
    parser.add_argument("--study-size", choices=("quick", "default"), default="default",
                        help="study size (default: default; quick takes a minute on small data)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the data and of the study (default 0)")
    parser.add_argument("--n-jobs", type=n_jobs_arg, default=None, metavar="N",
                        help="worker processes (default: the machine's cores, at most 4)")


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser("demo", parents=[common], help="the whole study on the embedded synthetic data, "
                          "from nothing to report/index.html", description=__doc__.split("\n\n")[0])
    _add_arguments(demo)
    demo.set_defaults(handler=run_demo, outputs={"out": "folder"})


def _faces(out: Path, seed: int) -> None:
    """Small toyfaces in ``out/toyfaces`` and the small faces study in ``out/study/faces`` (about half a minute on
    2 cores), before the study whose report shows it."""
    data, study = out / "toyfaces", out / "study" / FACES_DIR
    if _same_synth(data, seed, "small", format=TOYFACES_FORMAT):
        print(f"reusing toyfaces (small, seed {seed}) in {data}")
    else:
        print(f"$ bowlrp data synth-faces --out {data} --seed {seed} --size small --overwrite", flush=True)
        generate_toyfaces(data, seed=seed, size="small", overwrite=True)
    print(f"$ bowlrp faces study --data {data} --out {study} --size small --seed {seed}", flush=True)
    run_faces_study(data, study, "small", seed=seed)


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    data = out / "toyvoc"
    start = time.perf_counter()
    _faces(out, args.seed)
    if _same_synth(data, args.seed, args.data_size, generator="toyvoc"):
        print(f"reusing toyvoc ({args.data_size}, seed {args.seed}) in {data}")
    else:
        print(f"$ bowlrp data synth-voc --out {data} --seed {args.seed} --size {args.data_size} --overwrite", flush=True)
        generate_toyvoc(data, seed=args.seed, size=args.data_size, overwrite=True)
    jobs = f" --n-jobs {args.n_jobs}" if args.n_jobs else ""
    print(f"$ bowlrp study --data {data} --out {out / 'study'} --size {args.study_size} --seed {args.seed}{jobs}",
          flush=True)
    run_study(data, out / "study", args.study_size, seed=args.seed, n_jobs=args.n_jobs)
    print(f"demo finished in {time.perf_counter() - start:.0f} s; open {(out / 'study' / 'report' / 'index.html').resolve()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m bowlrp.cli.demo`` (what ``make demo`` runs): the same as ``bowlrp demo``."""
    parser = argparse.ArgumentParser(prog="python -m bowlrp.cli.demo", description=__doc__.split("\n\n")[0])
    _add_arguments(parser)
    try:
        return run_demo(parser.parse_args(argv))
    except BowlrpError as exc:
        print(f"bowlrp: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
