"""The parser and entry point of the ``bowlrp`` command line (see :mod:`bowlrp.cli`)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from .. import __version__
from ..errors import BowlrpError
from . import artefacts, context, data, demo, dnn, models, perturb, spray, study, tiles, train

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
COMMAND_GROUPS = (data, train, models, tiles, dnn, context, perturb, spray, artefacts, study, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bowlrp",
        description="Train Bag-of-Words / Fisher-vector image classifiers with kernel SVMs, and PyTorch networks "
                    "on the same data ('bowlrp dnn ...'), and explain both with Layer-wise Relevance Propagation: "
                    "heatmaps in original image coordinates, per image or for a whole split.",
        epilog="example, on the embedded synthetic data:\n"
               "  bowlrp data synth-voc --out data/toyvoc\n"
               "  bowlrp train --data data/toyvoc --encoder fisher --kernel linear --out models/fv\n"
               "  bowlrp evaluate --model models/fv --data data/toyvoc --split test --json ap.json\n"
               "  bowlrp explain --model models/fv --class horse --out maps/ data/toyvoc/JPEGImages/000046.jpg\n"
               "  bowlrp dnn train --data data/toyvoc --arch smallcnn --out models/cnn\n"
               "  bowlrp explain --model models/fv --class boat --eps 100 --data data/toyvoc --store maps/fv/boat.h5\n"
               "  bowlrp dnn explain --model models/cnn --class boat --data data/toyvoc --store maps/cnn/boat.h5\n"
               "  bowlrp context --store maps/fv --store maps/cnn --data data/toyvoc --plot context.png\n"
               "  bowlrp perturb --model models/fv --data data/toyvoc --class boat --mode descriptors --json p.json\n"
               "  bowlrp artefacts watermark --model models/fv --data data/toyvoc --class horse --json wm.json\n"
               "  bowlrp spray --store maps/fv --data data/toyvoc --out spray-fv --virelay\n"
               "  bowlrp study --data data/toyvoc --out study   (all of it, resumable, ending in study/report/index.html)\n"
               "'bowlrp COMMAND --help' explains each command.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"bowlrp {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    # the same two flags after the sub-command (`bowlrp train ... --debug`); SUPPRESS keeps a
    # flag given before the sub-command from being reset by the sub-parser's default
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log progress messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if sys.stderr.isatty():
        # at a terminal, say what the long stages are doing (the progress bars show there too)
        logging.getLogger("bowlrp").setLevel(logging.INFO)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("bowlrp: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        if args.debug:
            raise
        message = str(exc) if isinstance(exc, BowlrpError) else f"{type(exc).__name__}: {exc}"
        print(f"bowlrp: error: {' '.join(message.split())}", file=sys.stderr)
        return EXIT_ERROR
