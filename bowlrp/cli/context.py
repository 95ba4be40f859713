"""``bowlrp context``: the outside-inside relevance ratio mu (Eq. 4.11) per class, stores side by side."""
from __future__ import annotations

import argparse

from ..analysis.context import context_table, format_context_table, plot_context
from ..persistence import atomic_write_json
from .common import csv_list


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    context = sub.add_parser(
        "context", parents=[common], help="how much each model decides from context (Eq. 4.11, Fig. 4.6)",
        description="For every relevance store (written by 'explain --store' or 'dnn explain --store'; BoW/FV and "
                    "DNN stores alike) and every image with a box of the store's class: mu, the mean positive "
                    "relevance outside the class' boxes over the mean inside them. Prints one table per class "
                    "with the stores side by side (mean and median mu, images, AP of the store's scores).",
        epilog="example: bowlrp context --store maps/fv --store maps/cnn --data data/toyvoc --json context.json "
               "--plot context.png   (a folder stands for all its *.h5 stores: one per class)")
    context.add_argument("--store", action="append", required=True, metavar="STORE",
                         help="a relevance store (.h5) or a folder of them; repeat for more")
    context.add_argument("--data", required=True, metavar="DIR", help="the dataset the stores were made from "
                                                                        "(its VOC box annotations)")
    context.add_argument("--format", choices=("voc", "folder"), default="voc",
                         help="dataset layout (default voc; 'folder' datasets have no boxes)")
    context.add_argument("--classes", type=csv_list, default=None, metavar="a,b,...",
                         help="only the stores of these classes")
    context.add_argument("--json", metavar="OUT.json", help="write {rows: [{class, store, family, mu_mean, ...}]}")
    context.add_argument("--plot", metavar="OUT.png", help="draw mu per class and store (Fig. 4.6 style)")
    context.set_defaults(handler=run_context, outputs={"json": "file", "plot": "file"})


def run_context(args: argparse.Namespace) -> int:
    results = context_table(args.store, args.data, args.format, args.classes)
    print("outside/inside relevance ratio mu (Eq. 4.11) over the images with a box of the class:")
    print(format_context_table(results))
    undefined = sum(r.n_undefined for r in results)
    if undefined:
        print(f"note: {undefined} image(s) without positive relevance inside their boxes are left out "
              "(n_undefined in the JSON)")
    if args.json:
        atomic_write_json(args.json, {"rows": [r.row() for r in results]})
    if args.plot:
        plot_context(results, args.plot)
    return 0
