"""``bowlrp spray``: Spectral Relevance Analysis per class over relevance stores (Chapter 6, Algorithm 3)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.spray import NORMALIZATIONS, POOL_SIZES
from ..analysis.spray_classes import read_annotations, spray_stores
from ..errors import BowlrpError
from ..store import RelevanceStore
from .common import non_negative_int, note, positive_float, positive_int


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    spray = sub.add_parser(
        "spray", parents=[common], help="find prediction strategies without labels: SpRAy per class (Chapter 6)",
        description="Spectral Relevance Analysis (dissertation Algorithm 3) on the relevance maps of each store "
                    "(one store per class; BoW/FV and DNN stores alike): maps sum-pooled to PxP, a binary "
                    "symmetric kNN graph with k = ceil(ln n), the smallest 20 eigenvalues of its normalised "
                    "symmetric Laplacian and their eigengap, spectral clustering for k = 2..10, t-SNE (perplexity "
                    "7, early exaggeration 6) on hop distances of the same graph; classes ranked by lambda_2 "
                    "(Fig. 6.5). Writes OUT/spray.json and figures: spectra.png, tsne_<class>.png (coloured by "
                    "the eigengap's clustering) and clusters_<class>.png (each cluster's most central images "
                    "beside their heatmaps). NaN and all-zero maps are counted and left out.",
        epilog="example: bowlrp spray --store maps/fv --data data/toyvoc --out spray-fv --virelay   "
               "(a folder stands for all its *.h5 stores; then: virelay spray-fv/virelay/project.yaml)")
    spray.add_argument("--store", action="append", required=True, metavar="STORE",
                       help="a relevance store (.h5) or a folder of them, one store per class; repeat for more")
    spray.add_argument("--data", metavar="DIR",
                       help="the dataset the stores were made from: only images whose annotations contain the "
                            "store's class are analysed, and images are read from it (default: every image of "
                            "the store, files as the store recorded them)")
    spray.add_argument("--format", choices=("voc", "folder"), default="voc", help="layout of --data (default voc)")
    spray.add_argument("--out", required=True, metavar="DIR", help="output folder (spray.json, PNG figures)")
    spray.add_argument("--pool", type=int, choices=POOL_SIZES, default=20,
                       help="sum-pool every map to PxP cells (default 20)")
    spray.add_argument("--sigma", type=positive_float, default=None, metavar="S",
                       help="Gaussian low-pass on the pooled map, S in pooled cells (default: none)")
    spray.add_argument("--normalize", choices=NORMALIZATIONS, default="l1",
                       help="divide each pooled map by its total absolute relevance (l1, default: compare where "
                            "relevance lies, not how much), its Euclidean norm (l2), or not at all (none, as the "
                            "dissertation)")
    spray.add_argument("--seed", type=non_negative_int, default=0, help="seed of the eigensolver start, k-means and t-SNE "
                                                           "(default 0; same seed, same output)")
    spray.add_argument("--central", type=positive_int, default=6, metavar="N",
                       help="most central images per cluster in the strips and the JSON (default 6)")
    spray.add_argument("--virelay", action="store_true",
                       help="also export OUT/virelay/ (project.yaml, label map, dataset, attribution and analysis "
                            "HDF5 files) for the ViRelAy viewer")
    spray.add_argument("--no-progress", action="store_true", help="no progress bars")
    spray.set_defaults(handler=run_spray, outputs={"out": "folder"})


def run_spray(args: argparse.Namespace) -> int:
    from ..analysis.spray_plots import write_spray_outputs

    if args.central < 1:
        raise BowlrpError(f"--central must be at least 1, got {args.central}")
    annotations = read_annotations(args.data, args.format) if args.data else None
    results = spray_stores(args.store, annotations, pool=args.pool, sigma=args.sigma, normalize=args.normalize, seed=args.seed,
                           progress=not args.no_progress)
    out = Path(args.out)
    write_spray_outputs(results, out, central=args.central)
    print(f"{'rank':>4}  {'class':<14}{'family':<8}{'maps':>6}{'left out':>10}{'lambda_2':>10}{'gap k':>7}")
    for r in sorted(results, key=lambda r: r.rank):
        left_out = r.excluded["nan"] + r.excluded["zero"]
        print(f"{r.rank:>4}  {r.class_name:<14}{r.family:<8}{len(r.image_ids):>6}{left_out:>10}"
              f"{r.analysis.eigenvalues[1]:>10.4f}{r.analysis.eigengap_k:>7}")
    for r in results:
        if r.excluded["nan"] or r.excluded["zero"]:
            note(f"{r.class_name}: left out {r.excluded['nan']} map(s) with NaN/inf and {r.excluded['zero']} "
                 "all-zero map(s)")
    if args.virelay:
        from ..analysis.virelay import export_virelay

        classes = annotations.classes if annotations else sorted(r.class_name for r in results)
        with_stores = {r.store: RelevanceStore(r.store) for r in results}
        try:
            attrs = next(iter(with_stores.values())).attrs
            project = export_virelay(
                results, out / "virelay", classes, annotations.labels if annotations else None,
                relevance=lambda r, i: with_stores[r.store].relevance(i),
                score=lambda r, i: float(with_stores[r.store].image_attrs(i)["score"]),
                model=f"{results[0].family} {str(attrs.get('model_sha256', ''))[:12]}".strip(),
                attribution_method=_method_name(attrs))
        finally:
            for store in with_stores.values():
                store.close()
        print(f"ViRelAy project: {project}  (open it with: virelay {project})")
    print(f"written to {out}/ (spray.json, spectra.png, tsne_*.png, clusters_*.png)")
    return 0


def _method_name(attrs: dict) -> str:
    """A short label of the explanation settings a store recorded (e.g. ``lrp epsilon eps=1``)."""
    parts = [str(attrs.get("method", "lrp"))]
    for key in ("rule", "composite"):
        if key in attrs:
            parts.append(str(attrs[key]))
    for key in ("eps", "epsilon", "alpha", "beta"):
        if key in attrs:
            parts.append(f"{key}={float(attrs[key]):g}")
    return " ".join(parts)
