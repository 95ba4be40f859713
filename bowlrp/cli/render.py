"""``bowlrp render``: a relevance store's maps as PNG figures (colour bar, class, score, books; panels)."""
from __future__ import annotations

import argparse

from ..analysis.render import BINS_SIGMA, figure_pixels, render_store
from .common import exit_status, non_negative_float, report_skips


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    w, h = figure_pixels(False)
    pw, ph = figure_pixels(True)
    render = sub.add_parser(
        "render", parents=[common], help="draw a relevance store's maps as PNG figures",
        description="Draw the maps of a relevance store (written by 'explain --store' or 'dnn explain --store'; "
                    "BoW/FV and DNN stores alike) as one PNG per image, OUT/<class>_<image id>.png: the map in "
                    "the red (positive) / white (0) / blue (negative) colour map with a colour bar on the "
                    "symmetric scale -max|R| .. +max|R| of that image, a title with class, image id and score "
                    f"f(x), and the books f = sum R + bias + absorbed + residual as text ({w}x{h} px; "
                    f"panels {pw}x{ph} px).",
        epilog="example: bowlrp render --store maps/fv/horse.h5 --out figures/fv --ids 000046 000120 --panel")
    render.add_argument("--store", required=True, metavar="S.h5", help="the relevance store (.h5) to draw")
    render.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the PNGs (created if need be; existing figures of the same names are "
                             "replaced)")
    render.add_argument("--ids", nargs="+", metavar="ID", default=None,
                        help="only these image ids (default: every image in the store); an id the store does "
                             "not hold is an error naming it")
    render.add_argument("--panel", action="store_true",
                        help="draw image | map | overlay side by side; the image is read from the path the store "
                             "recorded, and an image file that is gone or changed is skipped (and counted)")
    render.add_argument("--smooth", type=non_negative_float, default=None, metavar="PX",
                        help=f"draw each map blurred by a Gaussian of PX pixels that keeps its sum (the colour bar is "
                             f"that of the map drawn, the books the store's); default {BINS_SIGMA:g} for stores of "
                             f"'explain --depth bins', whose per-SIFT-bin maps are a speckle of opposite signs on the "
                             f"bins' grid: smoothed they show where the relevance lies at the scale of a few bins; "
                             f"0 (the default for other stores) draws the map as stored")
    render.add_argument("--no-progress", action="store_true", help="no progress bar")
    render.set_defaults(handler=run_render, outputs={"out": "folder"})


def run_render(args: argparse.Namespace) -> int:
    summary = render_store(args.store, args.out, ids=args.ids, panel=args.panel, show_progress=not args.no_progress,
                           smooth=args.smooth)
    smoothed = f" (maps smoothed, Gaussian {summary.sigma:g} px, sums kept)" if summary.sigma > 0 else ""
    print(f"{len(summary.figures)} figure(s) written to {args.out}{smoothed}")
    report_skips(summary.skips)
    return exit_status(len(summary.figures), summary.skips)
