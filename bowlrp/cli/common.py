"""Argument sets and reports that several commands share, so every command reads alike."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from ..errors import BowlrpError, SkipLog
from ..parallel import BACKENDS, ParallelOptions
from ..persistence import check_writable


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def n_jobs_arg(text: str) -> int:
    """``--n-jobs``: a positive worker count or -1 (every core); anything else is a usage error (exit 2),
    raised while the arguments are parsed, so nothing has been written yet."""
    return _parsed(text, int, "a positive worker count or -1 (every core)", lambda v: v >= 1 or v == -1)


def add_parallel(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("parallel work")
    group.add_argument("--n-jobs", type=n_jobs_arg, default=1, metavar="N",
                       help="worker processes for feature extraction (default 1; -1 = all cores; at most the "
                            "machine's cores and the number of images)")
    group.add_argument("--backend", choices=BACKENDS, default="loky",
                       help="joblib backend; 'dask' runs on a Dask cluster (default loky)")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask scheduler address (tcp://host:port); without it --backend dask "
                            "starts a local cluster of --n-jobs workers on 127.0.0.1")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def parallel_options(args: argparse.Namespace) -> ParallelOptions:
    """The :class:`ParallelOptions` of :func:`add_parallel`'s flags (commands without them run serially)."""
    return ParallelOptions(n_jobs=getattr(args, "n_jobs", 1), backend=getattr(args, "backend", "loky"),
                           scheduler=getattr(args, "scheduler", None), progress=not args.no_progress)


# --- options of one model family ----------------------------------------------------------------------------

FAMILY_LABELS = {"bow": "BoW/FV", "dnn": "DNN"}


def family_specific(parser: argparse.ArgumentParser, family: str, dests) -> None:
    """Mark the options ``dests`` of ``parser`` as applying to ``family``'s models only.

    Their defaults become SUPPRESS (so :func:`apply_family` can tell a given option from an unset one) and
    are recorded, with the flag, in the parser's ``family_options`` default; the handler calls
    :func:`apply_family` once it knows the family (from the model directory, or ``--family``).
    """
    options = dict(parser.get_default("family_options") or {})
    wanted = set(dests)
    for action in parser._actions:  # argparse offers no public way to change an action's default
        if action.dest in wanted:
            flag = max(action.option_strings, key=len)
            options[action.dest] = (flag, family, action.default)
            action.default = argparse.SUPPRESS
    missing = wanted - set(options)
    if missing:
        raise ValueError(f"{parser.prog}: no option {', '.join(sorted(missing))}")
    parser.set_defaults(family_options=options)


def apply_family(args: argparse.Namespace, family: str, what: str) -> None:
    """Refuse a given option of another family than ``family`` (one line naming the flag and ``what`` the
    command works on, e.g. ``"models/fv is a BoW/FV model"``), and fill in the defaults of ``family``'s
    own options that were not given (those without a default stay unset: the model's own defaults apply).
    A family the command line does not know (a plug-in registered with :func:`bowlrp.model.register_family`)
    is given what the user gave, and its ``explanation_method`` refuses what it does not take."""
    for dest, (flag, owner, default) in (getattr(args, "family_options", None) or {}).items():
        if owner != family and family in FAMILY_LABELS and hasattr(args, dest):
            raise BowlrpError(f"{flag} applies to {FAMILY_LABELS.get(owner, owner)} models only; {what}")
        if owner == family and not hasattr(args, dest) and default is not argparse.SUPPRESS:
            setattr(args, dest, default)


def add_data_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset root (VOC devkit or image folders)")
    parser.add_argument("--format", choices=("voc", "folder"), default="voc",
                        help="voc: VOCdevkit layout (ImageSets/Main, Annotations, JPEGImages); "
                             "folder: one sub-folder per class (default voc)")
    add_strict(parser, "file instead of skipping and counting it")


def add_device(parser, default: str | None = "cpu") -> None:
    """``--device`` of a network (a parser or argument group); ``None`` leaves it to the command (cpu)."""
    parser.add_argument("--device", default=default, help="DNN models: cpu, cuda or cuda:N (default cpu)")


def add_strict(parser, what: str = "image") -> None:
    """``--strict``: the first unusable ``what`` stops the run instead of being a counted skip."""
    parser.add_argument("--strict", action="store_true", help=f"stop at the first unusable {what}")


def add_model(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--model", required=required, metavar="MODEL",
                        help="model directory (any family: written by 'bowlrp train' or 'bowlrp dnn train'; "
                             "its model.json says which)")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Model, data, split and JSON output of an evaluate command (``evaluate`` and ``dnn evaluate``)."""
    add_model(parser)
    add_data_source(parser)
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument("--json", metavar="OUT.json", help="write {ap, map, n_images, skipped} here")


def add_explain_targets(parser: argparse.ArgumentParser, model_required: bool = True) -> None:
    """What an explain command explains: image files into ``--out``, or a whole split into ``--store``."""
    add_model(parser, model_required)
    parser.add_argument("--class", dest="class_name", required=True, metavar="NAME", help="class to explain")
    parser.add_argument("--out", metavar="DIR", help="output folder for per-image files (with IMAGE...)")
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help="image files to explain (JPEG, PNG, ...); an unreadable one is skipped and named")
    whole = parser.add_argument_group("a whole split instead of single images (resumable: re-run the same "
                                      "command after an interruption and finished images are kept)")
    whole.add_argument("--data", metavar="DIR", help="dataset root")
    whole.add_argument("--format", choices=("voc", "folder"), default="voc", help="dataset layout (default voc)")
    whole.add_argument("--split", default="test", help="split to explain (default test)")
    whole.add_argument("--store", metavar="OUT.h5", help="HDF5 store to write")
    add_strict(parser)


def explain_form(args: argparse.Namespace) -> str:
    """``"split"`` or ``"files"``: which of :func:`add_explain_targets`' two forms the arguments use."""
    if args.data or args.store:
        if not (args.data and args.store) or args.images or args.out:
            raise BowlrpError("the split form takes --data DIR --split NAME --store OUT.h5 and no IMAGE/--out")
        return "split"
    if not args.images or not args.out:
        raise BowlrpError("give IMAGE... with --out DIR, or --data DIR --split NAME --store OUT.h5")
    return "files"


def skip_log(args: argparse.Namespace, *earlier: SkipLog) -> SkipLog:
    """A fresh ledger honouring ``--strict``, holding what ``earlier`` ledgers (e.g. the dataset's) recorded."""
    skips = SkipLog(strict=args.strict)
    for other in earlier:
        skips.extend(other)
    return skips


def report_skips(skips: SkipLog, stream=None) -> None:
    stream = stream or sys.stderr  # looked up at call time, so redirections (and tests) see it
    if len(skips):
        print(f"skipped {len(skips)} file(s):", file=stream)
        for entry in skips.as_list():
            print(f"  {entry['file']}: {entry['reason']}", file=stream)


def exit_status(n_done: int, skips: SkipLog) -> int:
    """The exit status of a command over many inputs: 1 when it had some and every one was skipped (a
    run that produced nothing has failed, even though each skip was counted), else 0."""
    return 1 if n_done == 0 and len(skips) else 0


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def data_settings(args: argparse.Namespace) -> dict:
    """What a split store records about where its images came from."""
    return {"data": str(Path(args.data).resolve()), "split": args.split}


def check_outputs(args: argparse.Namespace) -> None:
    """Check the outputs a command declares with ``set_defaults(outputs={"json": "file", "out": "folder"})``
    (argument name to kind) before it starts: one that cannot be written is an
    :class:`~bowlrp.errors.OutputError` naming it now, not after hours of work."""
    for name, kind in getattr(args, "outputs", {}).items():
        value = getattr(args, name, None)
        if value:
            check_writable(value, folder=kind == "folder")


# --- argument types: a bad number is a usage error (exit 2) naming the flag, before any work is done --------

def _parsed(text: str, parse, what: str, ok) -> Any:
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):  # NaN fails every comparison, so it is refused too
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (sizes, counts, steps)."""
    return _parsed(text, int, "a whole number >= 1", lambda v: v >= 1)


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (seeds, depths, margins; 0 where the help says what it means)."""
    return _parsed(text, int, "a whole number >= 0", lambda v: v >= 0)


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return _parsed(text, float, "a finite number > 0", lambda v: math.isfinite(v) and v > 0)


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return _parsed(text, float, "a finite number >= 0", lambda v: math.isfinite(v) and v >= 0)


def finite_float(text: str) -> float:
    """Any finite number (no nan, no inf)."""
    return _parsed(text, float, "a finite number", math.isfinite)


def float_at_least(low: float):
    """An argument type: a finite number >= ``low``."""
    def parse(text: str) -> float:
        return _parsed(text, float, f"a finite number >= {low:g}", lambda v: math.isfinite(v) and v >= low)
    parse.__name__ = f"float_at_least_{low:g}"
    return parse


def positive_ints(text: str) -> tuple[int, ...]:
    """Comma-separated whole numbers >= 1, at least one (e.g. SIFT bin sizes ``4,6,8,10``)."""
    return _parsed(text, lambda t: tuple(int(part) for part in csv_list(t)),
                   "comma-separated whole numbers >= 1", lambda v: len(v) > 0 and min(v) >= 1)
