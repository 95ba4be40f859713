"""``make demo``: the whole study on the embedded synthetic data, from nothing, ending in a report.

Synthesises toyvoc (or reuses a complete one of the same seed and size), then runs ``bowlrp study``
on it — FV, rank-BoW and network trained and evaluated, every class explained by FV and network,
heatmap gallery, context, perturbation, SpRAy where installed, watermark and padding experiments —
and prints the path of ``report/index.html``. Resumable: run it again after an interruption and the
finished steps are kept.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .main import main as bowlrp_main


def _same_toyvoc(root: Path, seed: int, size: str) -> bool:
    """True when ``root`` holds a complete toyvoc set of this seed and size (its sidecar is written last)."""
    try:
        meta = json.loads((root / "ground_truth.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("generator") == "toyvoc" and meta.get("seed") == seed and meta.get("size") == size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bowlrp.cli.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo-out", help="output folder: toyvoc/ and study/ (default demo-out)")
    parser.add_argument("--data-size", choices=("small", "default", "large"), default="default",
                        help="toyvoc size (default: default, 600 images)")
    parser.add_argument("--study-size", choices=("quick", "default"), default="default",
                        help="study size (default: default; quick takes a minute on small data)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", default=None, help="worker processes (default: the machine's cores, at most 4)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    data = out / "toyvoc"

    def run(*argv: str) -> None:
        print("$ bowlrp " + " ".join(argv), flush=True)
        code = bowlrp_main(list(argv))
        if code != 0:
            raise SystemExit(code)

    start = time.perf_counter()
    if _same_toyvoc(data, args.seed, args.data_size):
        print(f"reusing toyvoc ({args.data_size}, seed {args.seed}) in {data}")
    else:
        run("data", "synth-voc", "--out", str(data), "--seed", str(args.seed), "--size", args.data_size, "--overwrite")
    jobs = ["--n-jobs", args.n_jobs] if args.n_jobs else []
    run("study", "--data", str(data), "--out", str(out / "study"), "--size", args.study_size, "--seed", str(args.seed),
        *jobs)
    print(f"demo finished in {time.perf_counter() - start:.0f} s; open {(out / 'study' / 'report' / 'index.html').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
