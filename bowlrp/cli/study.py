"""``bowlrp study`` and ``bowlrp report``: the whole FV-vs-DNN comparison on one dataset, resumably, and
its static HTML page (SPEC §6.6)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..study import run_study
from ..study.plan import SIZES
from ..study.report import REPORT_DIR, build_report
from .common import csv_list, n_jobs_arg, non_negative_int


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    study = sub.add_parser(
        "study", parents=[common], help="the whole comparison on one dataset, ending in an HTML report",
        description="Train the Fisher-vector model (and a rank-BoW + HIK model) and a network, evaluate all three, "
                    "explain every class on its test images with the FV model and the network (relevance stores), "
                    "then the heatmap gallery, context ratios, region perturbation on a few images per class, SpRAy "
                    "(when installed) and the watermark (horse) and padding (aeroplane) experiments, and write "
                    "STUDY/report/index.html. Each step records the digest of its inputs under STUDY/steps and is "
                    "skipped when it is up to date, so an interrupted study (even killed) continues where it "
                    "stopped when the same command is run again, and a changed setting reruns only what depends "
                    "on it. A study folder is pinned to its data and settings: other data or settings are refused "
                    "unless --overwrite is given.",
        epilog="example: bowlrp data synth-voc --out data/toyvoc && "
               "bowlrp study --data data/toyvoc --out study --size quick")
    study.add_argument("--data", required=True, metavar="DIR", help="dataset root (VOC devkit layout, e.g. toyvoc)")
    study.add_argument("--out", required=True, metavar="STUDY", help="study folder to write (or continue)")
    study.add_argument("--size", choices=tuple(SIZES), default="default",
                       help="quick: tiny vocabularies, 2 epochs, few images per analysis (minutes; CI); "
                            "default: the demo's sizes (GMM 64, 20 epochs, 100-step curves)")
    study.add_argument("--classes", type=csv_list, default=None, metavar="a,b,...",
                       help="only these classes (default: every class with positive images in trainval and test)")
    study.add_argument("--seed", type=non_negative_int, default=0, help="seed of every random choice (default 0)")
    study.add_argument("--overwrite", action="store_true",
                       help="continue a study folder made with other data or settings: the steps whose inputs "
                            "changed run again, the others are kept")
    study.add_argument("--n-jobs", type=n_jobs_arg, default=None, metavar="N",
                       help="worker processes (default: the machine's cores, at most 4)")
    study.add_argument("--no-progress", action="store_true", help="no progress bars inside the steps")
    study.set_defaults(handler=run_study_command, outputs={"out": "folder"})

    report = sub.add_parser(
        "report", parents=[common], help="(re)write a study's HTML report from its JSON files",
        description="Write STUDY/report/index.html (and data.json, figures/ beside it) from the study's JSON files: "
                    "data, accuracy (FV vs BoW vs DNN), heatmap gallery, context, perturbation, SpRAy, artefacts, "
                    "faces (from STUDY/faces or --faces), provenance. A static page: open it in any browser, no "
                    "server.")
    report.add_argument("--study", required=True, metavar="STUDY",
                        help="study folder written by 'bowlrp study' (or a faces study folder of 'bowlrp faces "
                             "study' alone: a page of its faces section)")
    report.add_argument("--faces", metavar="FACES", default=None,
                        help="faces study folder ('bowlrp faces study --out FACES') whose tables, maps and region "
                             "measures make the report's faces section (default: STUDY/faces when it holds one)")
    report.set_defaults(handler=run_report_command)


def run_study_command(args: argparse.Namespace) -> int:
    run_study(args.data, args.out, args.size, args.classes, args.seed, args.overwrite, args.n_jobs,
              progress=not args.no_progress)
    print(f"report: {Path(args.out).resolve() / REPORT_DIR / 'index.html'}")
    return 0


def run_report_command(args: argparse.Namespace) -> int:
    summary = build_report(args.study, args.faces)
    print(f"report: {Path(summary['page']).resolve()}")
    return 0
