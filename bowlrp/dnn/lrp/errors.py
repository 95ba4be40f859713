"""The error type of the DNN explanation code.

It lives in its own module because both :mod:`.composites` (unknown composite names, bad ``flat_depth``)
and :mod:`bowlrp.dnn.attribution` (unknown methods and parameters, bad targets) raise it, and the latter
imports the former.
"""
from __future__ import annotations

from bowlrp.errors import BowlrpError


class ExplainError(BowlrpError, ValueError):
    """A request that cannot be explained (model in training mode, bad target, unknown method, composite
    or parameter).

    A :class:`~bowlrp.errors.BowlrpError`, so the command line prints it as one line; also a
    ``ValueError``, so callers that caught the bad-argument errors of earlier versions still do.
    """
