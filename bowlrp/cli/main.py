"""The parser and entry point of the ``bowlrp`` command line (see :mod:`bowlrp.cli`)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from .. import __version__
from ..errors import BowlrpError
from . import artefacts, context, data, demo, dnn, faces, models, perturb, render, spray, study, tiles, train
from .common import check_outputs

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a tool that SIGPIPE ended (`seq 1000000 | head -1`)
COMMAND_GROUPS = (data, train, models, tiles, dnn, context, render, perturb, spray, artefacts, study, demo, faces)


class OneLineParser(argparse.ArgumentParser):
    """A parser whose usage errors are one line (exit 2) naming the argument, with a pointer to
    ``--help`` instead of the whole usage block; its sub-command parsers are of this class too."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} (see '{self.prog} --help')\n")


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the ``argv`` it will parse, a command line without the word ``dnn``
    gets the ``dnn`` command as a stub (:func:`bowlrp.cli.dnn.add_stub`), so that PyTorch is not imported
    (nor its ~190 MB held) by a command that does not need it."""
    parser = OneLineParser(
        prog="bowlrp",
        description="Train Bag-of-Words / Fisher-vector image classifiers with kernel SVMs, and PyTorch networks "
                    "on the same data ('bowlrp dnn ...'), and explain both with Layer-wise Relevance Propagation: "
                    "heatmaps in original image coordinates, per image or for a whole split.",
        epilog="example, on the embedded synthetic data:\n"
               "  bowlrp data synth-voc --out data/toyvoc\n"
               "  bowlrp train --data data/toyvoc --encoder fisher --kernel linear --out models/fv\n"
               "  bowlrp evaluate --model models/fv --data data/toyvoc --split test --json ap.json\n"
               "  bowlrp explain --model models/fv --class horse --out maps/ data/toyvoc/JPEGImages/000046.jpg\n"
               "  bowlrp dnn train --data data/toyvoc --arch smallcnn --out models/cnn   (= bowlrp train --family dnn ...)\n"
               "  bowlrp predict --model models/cnn data/toyvoc/JPEGImages/000046.jpg   (any model directory)\n"
               "  bowlrp explain --model models/fv --class boat --eps 100 --data data/toyvoc --store maps/fv/boat.h5\n"
               "  bowlrp dnn explain --model models/cnn --class boat --data data/toyvoc --store maps/cnn/boat.h5\n"
               "  bowlrp render --store maps/fv/boat.h5 --out figures/fv --panel\n"
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
        if group is dnn and argv is not None and "dnn" not in argv:
            dnn.add_stub(sub, common)
        else:
            group.add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if sys.stderr.isatty():
        # at a terminal, say what the long stages are doing (the progress bars show there too)
        logging.getLogger("bowlrp").setLevel(logging.INFO)
    try:
        check_outputs(args)  # an output that cannot be written is refused before any work is done
        return args.handler(args)
    except KeyboardInterrupt:
        print("bowlrp: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        # the reader of our output stopped early (`bowlrp data inspect | head`): stop quietly, as Unix tools do
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if args.debug:
            raise
        print(f"bowlrp: error: {' '.join(_describe(exc).split())}", file=sys.stderr)
        return EXIT_ERROR


def _describe(exc: Exception) -> str:
    """One line for an error: our own message, or the file an operating-system error is about."""
    if isinstance(exc, BowlrpError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        other = f" -> {exc.filename2}" if exc.filename2 is not None else ""
        return f"{exc.filename}{other}: {exc.strerror or type(exc).__name__}"
    return f"{type(exc).__name__}: {exc}"


def _discard_stdout() -> None:
    """Point stdout at the null device, so the interpreter's last flush of what is still buffered does
    not fail on the closed pipe again (with a message on stderr) at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor (tests)
        pass
