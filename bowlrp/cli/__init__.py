"""The ``bowlrp`` command line (also ``python -m bowlrp``): thin — parse, call the package, print.

Every sub-command has ``--help``. Errors print one line (``bowlrp: error: ...``) and exit 1;
usage errors exit 2; ``--debug`` shows the traceback instead. One module per command group
(:mod:`.data`, :mod:`.train`, :mod:`.models`, :mod:`.tiles`, :mod:`.dnn`), :mod:`.main` puts
them together; :mod:`.demo` is ``make demo``. Nothing outside this folder imports it.
"""
from .main import build_parser, main

__all__ = ["build_parser", "main"]
