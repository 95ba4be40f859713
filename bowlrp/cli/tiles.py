"""``bowlrp merge-tiles``: tile heatmaps of a store merged back into their large images (Fig. 2.13)."""
from __future__ import annotations

import argparse

from ..analysis.tiles import merge_store_to_folder
from ..persistence import atomic_write_json


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    merge = sub.add_parser("merge-tiles", parents=[common], help="merge tile heatmaps into their large images",
                           description="Average the relevance maps of overlapping tiles (a store written by "
                                       "'explain --store' on a tiled set such as 'shapes') back into the large "
                                       "images they were cut from (Fig. 2.13). Writes <name>.npz, <name>.png and "
                                       "<name>_overlay.png per large image and, where pixel masks exist, the mean "
                                       "relevance and positive-relevance share per mask class.")
    merge.add_argument("--store", required=True, metavar="STORE.h5", help="relevance store of the tiles")
    merge.add_argument("--data", required=True, metavar="DIR", help="the tiled dataset (its ground_truth.json)")
    merge.add_argument("--out", required=True, metavar="DIR", help="folder for the merged maps")
    merge.add_argument("--json", metavar="OUT.json", help="write the per-image and overall mask statistics here")
    merge.set_defaults(handler=run_merge_tiles, outputs={"out": "folder", "json": "file"})


def run_merge_tiles(args: argparse.Namespace) -> int:
    result = merge_store_to_folder(args.store, args.data, args.out)
    for item in result.merged:
        print(f"{item.name}: {item.n_tiles} tiles merged")
    for name, row in (result.overall or {}).items():
        print(f"  {name:<12} mean relevance {row['mean']:+.3e}   share of positive relevance "
              f"{row['positive_share']:.3f}   ({row['pixels']} px)")
    if args.json:
        atomic_write_json(args.json, result.as_json())
    print(f"{len(result.merged)} merged map(s) written to {args.out}/")
    return 0
