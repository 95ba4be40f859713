"""``make demo``: the whole study on the embedded synthetic data, from nothing.

Synthesises toyvoc, trains a Fisher-vector + linear SVM model and a rank-BoW + histogram
intersection model, and prints their per-class AP tables. Everything goes through the same CLI
a user would call, so the demo doubles as a walk-through (run with ``--help`` for options).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .main import main as bowlrp_main

MODELS = {
    "fv-linear": ["--encoder", "fisher", "--kernel", "linear"],
    "rankbow-hik": ["--encoder", "rankbow", "--kernel", "hik"],
}


def _same_toyvoc(root: Path, seed: int, size: str) -> bool:
    """True when ``root`` holds a complete toyvoc set of this seed and size (its sidecar is written last)."""
    try:
        meta = json.loads((root / "ground_truth.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("generator") == "toyvoc" and meta.get("seed") == seed and meta.get("size") == size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bowlrp.cli.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    parser.add_argument("--size", choices=("small", "default", "large"), default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gmm-k", default="64", help="GMM components of the FV model (default 64)")
    parser.add_argument("--n-jobs", default="2", help="worker processes for feature extraction (default 2)")
    parser.add_argument("--max-descriptors", default="100000",
                        help="descriptor sample for PCA and vocabularies (default 100000)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    data = out / "toyvoc"

    def run(*argv: str) -> None:
        print("$ bowlrp " + " ".join(argv), flush=True)
        code = bowlrp_main(list(argv))
        if code != 0:
            raise SystemExit(code)

    start = time.perf_counter()
    if _same_toyvoc(data, args.seed, args.size):
        print(f"reusing toyvoc ({args.size}, seed {args.seed}) in {data}")
    else:
        run("data", "synth-voc", "--out", str(data), "--seed", str(args.seed), "--size", args.size, "--overwrite")
    summary = {}
    for name, options in MODELS.items():
        model_dir = out / "models" / name
        extra = ["--gmm-k", args.gmm_k] if "fisher" in options else []
        extra += ["--max-descriptors", args.max_descriptors]
        run("train", "--data", str(data), "--out", str(model_dir), *options, *extra,
            "--seed", str(args.seed), "--n-jobs", args.n_jobs, "--no-progress")
        result_json = out / f"evaluate-{name}.json"
        run("evaluate", "--model", str(model_dir), "--data", str(data), "--split", "test",
            "--json", str(result_json), "--n-jobs", args.n_jobs, "--no-progress")
        summary[name] = json.loads(result_json.read_text())["map"]
    print("\nmean AP on the toyvoc test split:")
    for name, value in summary.items():
        print(f"  {name:<14} {value:6.3f}")
    print(f"demo finished in {time.perf_counter() - start:.0f} s; outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
