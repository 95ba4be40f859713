"""Progress of long work, the same in every command: a tqdm bar at a terminal, a one-line update at
most every few seconds when stderr is piped (CI logs, ``| tee``), nothing with ``--no-progress``.

Every long stage (descriptor extraction, vocabulary fitting, SVM training, explaining a split, the
analyses) reports through :func:`progress`, so a user sees the same thing whichever family or
command runs::

    with progress(len(items), "explain horse", enabled=not args.no_progress) as bar:
        for item in items:
            ...
            bar.update()

Stages without a known length (an EM loop stopping at convergence) pass ``total=None`` and say
where they are with :meth:`Progress.set_postfix_str` (e.g. the log-likelihood and its change).
One blocking call without hooks (a scikit-learn fit) runs inside :func:`running`, which shows its
elapsed time while it runs.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Iterator, TextIO

#: Seconds between two piped update lines; ``BOWLRP_PROGRESS_INTERVAL`` overrides it (tests use 0).
DEFAULT_INTERVAL_S = 5.0


def _interval() -> float:
    try:
        return max(float(os.environ.get("BOWLRP_PROGRESS_INTERVAL", DEFAULT_INTERVAL_S)), 0.0)
    except ValueError:
        return DEFAULT_INTERVAL_S


class LineProgress:
    """Progress written as plain lines, ``desc: done/total (pct) elapsed[, postfix]``, at most one
    per ``interval`` seconds plus a closing line; the piped counterpart of a tqdm bar."""

    def __init__(self, total: int | None, desc: str, stream: TextIO, interval: float) -> None:
        self.total, self.desc, self.stream, self.interval = total, desc, stream, interval
        self.n = 0
        self.postfix = ""
        self.start = self.last = time.monotonic()
        self.closed = False

    def _line(self, final: bool = False) -> str:
        elapsed = time.monotonic() - self.start
        done = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        pct = f" ({100.0 * self.n / self.total:.0f} %)" if self.total else ""
        tail = f", {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {'done ' if final else ''}{done}{pct} in {elapsed:.1f} s{tail}"

    def _maybe_emit(self) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            print(self._line(), file=self.stream, flush=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        self._maybe_emit()

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix = text
        if refresh:
            self._maybe_emit()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            # a stage shorter than one interval stays silent: piped logs show only long work
            if time.monotonic() - self.start >= self.interval:
                print(self._line(final=True), file=self.stream, flush=True)

    def __enter__(self) -> "LineProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class NoProgress:
    """Progress that shows nothing (``--no-progress``)."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "NoProgress":
        return self

    def __exit__(self, *exc) -> None:
        pass


def progress(total: int | None, desc: str, enabled: bool = True, unit: str = "it",
             stream: TextIO | None = None):
    """Progress of a stage of ``total`` steps (``None``: unknown) named ``desc``.

    Returns an object with ``update(n=1)``, ``set_postfix_str(text)``, ``close()`` and the context
    manager protocol: a tqdm bar when ``stream`` (default stderr) is a terminal, a
    :class:`LineProgress` when it is not, a :class:`NoProgress` when ``enabled`` is false.
    """
    if not enabled:
        return NoProgress()
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=False, file=stream)
    return LineProgress(total, desc, stream, _interval())


#: Seconds between two looks of :func:`running` at a blocking call (the shown lines keep their own interval).
TICK_S = 1.0


@contextlib.contextmanager
def running(desc: str, enabled: bool = True, stream: TextIO | None = None) -> Iterator[None]:
    """Progress of one blocking call without hooks (PCA, scikit-learn's k-means): a one-step stage
    whose elapsed time a helper thread shows while the call runs (at a terminal a bar, piped a
    line at most every interval), done when the block ends; nothing when ``enabled`` is false::

        with running("k-means (128 words)", enabled):
            km.fit(X)
    """
    bar = progress(1, desc, enabled, stream=stream)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(TICK_S):
            bar.set_postfix_str("running")

    thread = threading.Thread(target=tick, name="bowlrp-progress", daemon=True) if enabled else None
    if thread is not None:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        bar.set_postfix_str("", refresh=False)
        bar.update()
        bar.close()
