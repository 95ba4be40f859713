"""Does SpRAy find the planted watermark strategy without labels? (issue 12, Done means 1)

For toyvoc data seeds, runs SpRAy per class on the FV and the DNN relevance stores of the test
split (only images that contain the class, from the annotations), then — using the sidecar only
now, for scoring — reports for horse the adjusted Rand index of every clustering k = 2..10 against
the sidecar's watermark flag (the best over k is the figure of merit), the eigengap, the share of
tagged images, and horse's rank among the classes by lambda_2.

    python -m benchmarks.spray_watermark --fixtures WORK --build --seeds 0,1,2 --json out.json
    python -m benchmarks.spray_watermark --fixtures WORK --seeds 0 --pool 10 --sigma 1   # reuse, other preprocessing

``--build`` makes what is missing under WORK, resumably, per seed: default toyvoc
(``toyvoc-s<seed>``), the FV model of the README's commands at K = 64 (``fv-s<seed>``; the
thesis' linear SVM, C validated per class), the smallcnn (``cnn-s<seed>``, 20 epochs) and the
stores of every class on its test images (``stores-s<seed>/{fv,cnn}/<class>.h5``; FV epsilon = 1,
the network's default composite), about 4 minutes per seed on 2 idle cores.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def watermark_flags(data: Path) -> dict[str, bool]:
    """Per image id of the toyvoc sidecar: does it carry the watermark?"""
    images = json.loads((data / "ground_truth.json").read_text())["images"]
    return {i: any(a.get("kind") == "watermark" for a in v.get("artefacts", [])) for i, v in images.items()}


def build(root: Path, seed: int) -> None:
    """Data, models and per-class stores of positives for one data seed under ``root`` (see the module doc)."""
    from bowlrp import cli
    from bowlrp.data.synth import generate_toyvoc
    from bowlrp.errors import SkipLog
    from bowlrp.model import load_model, method_for
    from bowlrp.parallel import ParallelOptions
    from bowlrp.runs import contains_class, explain_split, labelled_split

    data = root / f"toyvoc-s{seed}"
    if not (data / "ground_truth.json").exists():
        generate_toyvoc(data, seed=seed, size="default", overwrite=True)
    commands = {"fv": ["train", "--data", str(data), "--out", str(root / f"fv-s{seed}"), "--gmm-k", "64"],
                "cnn": ["dnn", "train", "--data", str(data), "--out", str(root / f"cnn-s{seed}")]}
    options = {"fv": {"eps": 1.0}, "cnn": {}}
    for family, command in commands.items():
        model_dir = root / f"{family}-s{seed}"
        trained = (model_dir / "model.json").exists() or cli.main([*command, "--seed", str(seed), "--no-progress"]) == 0
        if not trained:
            raise SystemExit(f"training {model_dir} failed")
        model = load_model(model_dir)
        method = method_for(model, options[family])
        _, samples, labels = labelled_split(data, "test", classes=list(model.class_names))
        for k, class_name in enumerate(model.class_names):
            chosen = [s for s, row in zip(samples, labels) if contains_class(row[k])]
            explain_split(model, chosen, class_name, root / f"stores-s{seed}" / family / f"{class_name}.h5", method,
                          SkipLog(), ParallelOptions(n_jobs=1, progress=False),
                          extra_settings={"data": str(data), "split": "test"})


def measure(stores: Path, data: Path, class_name: str = "horse", pool: int = 20, sigma: float | None = None,
            seed: int = 0, normalize: str = "l1") -> dict:
    from sklearn.metrics import adjusted_rand_score

    from bowlrp.analysis.spray_classes import read_annotations, spray_stores

    results = spray_stores([stores], read_annotations(data), pool=pool, sigma=sigma, seed=seed, normalize=normalize)
    by_class = {r.class_name: r for r in results}
    target = by_class[class_name]
    flags = watermark_flags(data)
    truth = np.array([flags[i] for i in target.image_ids])
    ari = {k: float(adjusted_rand_score(truth, labels)) for k, labels in target.analysis.labels.items()}
    best_k = max(ari, key=ari.get)
    return {"stores": str(stores), "n_maps": len(target.image_ids), "n_tagged": int(truth.sum()),
            "excluded": target.excluded, "ari_per_k": ari, "best_k": best_k, "best_ari": ari[best_k],
            "eigengap_k": target.analysis.eigengap_k, "ari_eigengap_k": ari[target.analysis.shown_k],
            "eigenvalues": target.analysis.eigenvalues[:6].round(4).tolist(), "rank": target.rank,
            "n_classes": len(results),
            "ranking": [(r.class_name, round(float(r.analysis.eigenvalues[1]), 4))
                        for r in sorted(results, key=lambda r: r.rank)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.spray_watermark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", default="/work/fixtures", help="folder with toyvoc-s<seed>, stores-s<seed>/{fv,cnn}")
    parser.add_argument("--build", action="store_true", help="make the missing data, models and stores first")
    parser.add_argument("--seeds", default="0", help="comma-separated data seeds")
    parser.add_argument("--families", default="fv,cnn", help="store folders to analyse")
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--sigma", type=float, default=None)
    parser.add_argument("--normalize", choices=("l1", "l2", "none"), default="l1")
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args(argv)
    root = Path(args.fixtures)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        if args.build:
            build(root, seed)
        for family in args.families.split(","):
            row = {"data_seed": seed, "family": family, "pool": args.pool, "sigma": args.sigma,
                   "normalize": args.normalize,
                   **measure(root / f"stores-s{seed}" / family, root / f"toyvoc-s{seed}", pool=args.pool,
                             sigma=args.sigma, normalize=args.normalize)}
            rows.append(row)
            print(f"seed {seed} {family:<4} pool {args.pool} sigma {args.sigma} {args.normalize}: horse n={row['n_maps']} "
                  f"tagged={row['n_tagged']} best ARI {row['best_ari']:.3f} (k={row['best_k']}), eigengap k "
                  f"{row['eigengap_k']} (ARI {row['ari_eigengap_k']:.3f}), rank {row['rank']}/{row['n_classes']}, "
                  f"lambda {row['eigenvalues']}", flush=True)
    if args.json:
        from bowlrp.persistence import atomic_write_json

        atomic_write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
