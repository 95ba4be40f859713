"""Run every benchmark and write the records as JSON (``make bench``)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bowlrp.persistence import atomic_write_json

from . import (bench_dnn, bench_dsift, bench_extract, bench_fisher, bench_gmm, bench_lrp, bench_memory, bench_perturb,
               bench_region_fv, bench_replacement, bench_root, bench_spray, bench_taylor, bench_train)

BENCHMARKS = {"dsift": bench_dsift.run, "fisher_encode": bench_fisher.run, "fisher_lrp": bench_fisher.run_lrp,
              "explain_image": bench_lrp.run, "root_point": bench_root.run, "extract_parallel": bench_extract.run,
              "dnn_lrp": bench_dnn.run, "perturb_regions_dnn": bench_perturb.run,
              "perturb_descriptors_fv": bench_replacement.run,
              "perturb_regions_fv": bench_region_fv.run, "spray": bench_spray.run,
              "explain_memory": bench_memory.run, "explain_store_memory": bench_memory.run_store,
              "taylor_path": bench_taylor.run,
              "gmm_fit": bench_gmm.run, "kmeans_fit": bench_gmm.run_kmeans, "train_default_small": bench_train.run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/latest.json", help="JSON file to write")
    parser.add_argument("--only", default=None, help="comma-separated benchmark names (default all)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement (median)")
    parser.add_argument("--update", action="store_true",
                        help="keep the records of --out that this run does not remeasure (same name: replaced)")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    results = []
    for name in names:
        for row in BENCHMARKS[name](repeats=args.repeats):
            ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}"
            anchor = "n/a" if row["anchor_s"] is None else f"{row['anchor_s']:.3f} s"
            print(f"{row['name']:<16} ours {row['ours_s']:.3f} s   anchor {anchor}   ratio {ratio}", flush=True)
            results.append(row)
    out = Path(args.out)
    if args.update and out.exists():
        fresh = {row["name"] for row in results}
        results = [row for row in json.loads(out.read_text()) if row["name"] not in fresh] + results
    atomic_write_json(out, results)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
