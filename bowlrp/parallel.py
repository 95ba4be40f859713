"""Ordered parallel map over dataset items: joblib locally, or a Dask cluster through joblib.

Workers never raise for a bad item: the mapped function returns an :class:`ItemResult` that is
either a value or a one-line skip reason, so a 5,000-image run survives one broken file and the
caller can count and name what was left out.

Worker processes leave with the process that started them: each watches its parent and exits
within :data:`PARENT_POLL_S` seconds of its death (:func:`exit_with_parent`). Killed runs used to
leave loky workers behind for many minutes, writing part files nobody would assemble.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import joblib
import numba
from threadpoolctl import ThreadpoolController

from .errors import BowlrpError
from .progress import progress

log = logging.getLogger(__name__)

BACKENDS = ("loky", "threading", "dask")
T = TypeVar("T")
CHUNK_SPREAD = 16      # row ranges enough to keep this many threads busy, when there are rows enough
MIN_CHUNK_ROWS = 1024  # ... but no range shorter than this only to spread the work
PARENT_POLL_S = 0.2    # how often a worker process looks whether its parent is still there
EXIT_ORPHANED = 70     # a worker's exit status when it leaves because its parent died


@cache
def _thread_pools() -> ThreadpoolController:
    """The process's BLAS/OpenMP pools, looked up once (a fresh lookup per image is a visible cost)."""
    return ThreadpoolController()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """BLAS and numba's kernels on one thread in this block (both restored after).

    For loops of many small steps (an incremental update per perturbation step): waking thread
    pools for a few hundred rows costs more than the work, and far more on a busy machine.
    """
    threads = numba.get_num_threads()
    numba.set_num_threads(1)  # the calling thread's setting only
    try:
        with single_thread_blas():
            yield
    finally:
        numba.set_num_threads(threads)


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """BLAS on one thread in this block (restored after); numba's threads and our own stay free.

    For step loops whose parallel parts are ours (:func:`map_row_chunks`, a thread working ahead):
    BLAS pools woken for a few hundred rows cost more than they save, and their idle threads spin.
    """
    with _thread_pools().limit(limits=1, user_api="blas"):
        yield


def map_threads(func: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """``[func(item) for item in items]`` spread over the process's compute threads (numba's thread
    count: 1 inside joblib workers and inside :func:`one_thread`). For independent pieces of work
    that release the GIL (numba ``nogil`` kernels); the results do not depend on the thread count."""
    workers = max(1, min(numba.get_num_threads(), len(items)))
    if workers == 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(func, items))


def map_row_chunks(func: Callable[[int, int], T], n: int, chunk_rows: int) -> list[T]:
    """``func(start, stop)`` over consecutive row ranges covering ``0..n``, results in row order.

    The ranges are spread over the process's compute threads (numba's thread count: 1 inside joblib
    workers), each thread running whole ranges with BLAS held to one thread. Why: a GEMM's rounding
    depends on how many BLAS threads share it, and on where a row falls in the GEMM's blocking
    (OpenBLAS, seen on AMD EPYC), so without the limit the same image encoded in the main process
    and in a worker got features differing in the last bits. The ranges depend on ``n`` and
    ``chunk_rows`` only (at most ``chunk_rows`` rows each, and enough of them to keep up to
    :data:`CHUNK_SPREAD` threads busy), never on the thread count, so neither do the results.
    It is also faster: idle BLAS threads spinning after a GEMM starve a numba kernel that follows.
    """
    chunk_rows = max(int(chunk_rows), 1)
    n_chunks = max(math.ceil(n / chunk_rows), min(CHUNK_SPREAD, math.ceil(n / MIN_CHUNK_ROWS)), 1)
    step = max(1, math.ceil(n / n_chunks))
    starts = range(0, n, step)
    with single_thread_blas():
        return map_threads(lambda start: func(start, min(start + step, n)), starts)


@dataclass
class ItemResult:
    """What one worker call produced: ``value`` on success, else ``skip_reason``."""

    item: str
    value: Any = None
    skip_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.skip_reason is None


def guarded(func: Callable[..., Any], item: str, *args: Any, **kwargs: Any) -> ItemResult:
    """Call ``func(*args, **kwargs)`` and turn any exception into a skip record for ``item``.

    Our own errors carry a user-facing message; anything else is reported with its type so an
    unexpected failure is still visible in the skip list.
    """
    try:
        return ItemResult(item, value=func(*args, **kwargs))
    except BowlrpError as exc:
        return ItemResult(item, skip_reason=str(exc))
    except MemoryError:
        raise
    except Exception as exc:  # one bad image must not end a dataset run
        return ItemResult(item, skip_reason=f"{type(exc).__name__}: {exc}")


_watched_parents: set[int] = set()
_watch_lock = threading.Lock()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(EXIT_ORPHANED)  # no clean-up: the run it worked for is gone, and its parts stay resumable


def exit_with_parent(parent: int) -> None:
    """In a worker process that ``parent`` (a pid) started: exit at once if ``parent`` is gone, and
    start a daemon thread that ends this process within :data:`PARENT_POLL_S` seconds of its death,
    even while an item is running or the worker waits for the next one. Nothing happens in
    ``parent`` itself.

    Only for pools whose workers are the parent's own children (loky): a parent's death re-parents
    them, which ``os.getppid()`` shows. Polling it rather than Linux's ``PR_SET_PDEATHSIG``: that
    signal follows the death of the *thread* that started the worker, and loky starts workers from
    its manager thread, which may end while the process lives on.
    """
    if os.getpid() == parent or parent in _watched_parents:
        return
    with _watch_lock:
        if parent in _watched_parents:
            return
        if os.getppid() != parent:  # gone before this worker's first item
            os._exit(EXIT_ORPHANED)
        _watched_parents.add(parent)
        threading.Thread(target=_watch_parent, args=(parent,), name="bowlrp-parent-watch", daemon=True).start()


@dataclass(frozen=True)
class _LeavesWithParent:
    """``func`` for a loky worker process, which exits when the process mapping the items dies
    (:func:`exit_with_parent`)."""

    func: Callable[..., Any]
    parent: int

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        exit_with_parent(self.parent)
        return self.func(*args, **kwargs)


@contextlib.contextmanager
def _dask_backend(scheduler: str | None, n_workers: int) -> Iterator[None]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise BowlrpError("the dask backend needs dask[distributed]: pip install 'dask[distributed]'") from None
    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="30s")
    else:
        # A private cluster on loopback only: nothing is exposed beyond this machine.
        cluster = LocalCluster(n_workers=max(1, n_workers), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        with joblib.parallel_config(backend="dask"):
            yield
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@dataclass(frozen=True)
class ParallelOptions:
    """How dataset-scale work is spread over workers.

    Attributes
    ----------
    n_jobs : int
        Worker count; 1 runs in this process (no pickling, easiest to debug); -1 uses every core.
    backend : {"loky", "threading", "dask"}
        joblib backend. ``dask`` uses ``scheduler`` (``tcp://host:port``) or, when it is None, a
        local cluster of ``n_jobs`` workers on 127.0.0.1.
    scheduler : str or None
        Dask scheduler address.
    progress : bool
        Show a progress bar on stderr (only when it is a terminal, so logs stay clean).
    """

    n_jobs: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise BowlrpError(f"unknown parallel backend {self.backend!r}; choose one of {', '.join(BACKENDS)}")
        if self.n_jobs == 0 or self.n_jobs < -1:
            raise BowlrpError(f"n_jobs must be a positive worker count or -1 (every core), got {self.n_jobs}")


_WARNED: set[tuple[int, int]] = set()


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers :func:`parallel_map` starts, and the BLAS/OpenMP threads each may use.

    ``workers == 1`` means the items run in this process. ``inner_threads`` is None where joblib's
    own rule (its cores over the pool size) gives what an uncapped pool would have had.
    """

    workers: int
    inner_threads: int | None = None


def worker_plan(n_jobs: int, n_items: int, backend: str = "loky") -> WorkerPlan:
    """The pool for ``n_jobs`` (-1: every core) over ``n_items``: at most the machine's cores and the items.

    A pool never grows past what it can use: ``--n-jobs 1000`` on two images once started 162
    processes. Capping it at the items must not change results, so two things stay what the
    machine and ``n_jobs`` alone decide: whether items go to workers at all (one pending item of a
    resumed run still goes to a worker, never to this process, whose BLAS runs on other threads),
    and the threads each worker gets (joblib would give a smaller pool more). A cap at the cores is
    logged as a warning (the request cannot be met), a cap at the items as information.
    """
    cores = max(1, joblib.cpu_count())
    if backend == "dask":
        asked = n_jobs if n_jobs > 0 else 2  # a local cluster's size; a scheduler's own workers are its business
    else:
        asked = cores if n_jobs == -1 else n_jobs
    by_cores = min(asked, cores)
    if n_jobs > cores and (n_jobs, cores) not in _WARNED:
        _WARNED.add((n_jobs, cores))  # once, not at every stage of a command
        log.warning("--n-jobs %d capped at the machine's %d core(s)", n_jobs, cores)
    if by_cores == 1:
        return WorkerPlan(1)
    if backend == "dask":
        return WorkerPlan(max(1, min(by_cores, n_items)))
    # two at least: joblib runs a pool of one in this process
    workers = max(2, min(by_cores, n_items))
    if workers == by_cores:
        return WorkerPlan(workers)
    log.info("%d worker(s) for %d item(s) (n_jobs %d)", workers, n_items, n_jobs)
    return WorkerPlan(workers, max(cores // by_cores, 1) if backend == "loky" else None)


def parallel_map(
    func: Callable[..., ItemResult],
    items: Sequence[Any],
    args_of: Callable[[Any], tuple] = lambda item: (item,),
    options: ParallelOptions | None = None,
    desc: str | None = None,
) -> list[ItemResult]:
    """Apply ``func(*args_of(item))`` to every item, in order, spread as ``options`` says.

    ``func`` returns an :class:`ItemResult` and must be picklable (a module-level function) for
    the process and Dask backends.
    """
    options = options or ParallelOptions()
    n_jobs, backend = options.n_jobs, options.backend
    plan = worker_plan(n_jobs, len(items), backend)
    bar = progress(len(items), desc or "images", options.progress, unit="img")
    results: list[ItemResult] = []
    try:
        # workers asked for: even a single item goes to a worker, whose BLAS runs on the threads a worker
        # gets, so a result never depends on how many items were pending (a resumed run has fewer; the
        # last digits of multi-threaded BLAS reductions would differ in this process)
        if backend != "dask" and (plan.workers == 1 or not items):
            for item in items:
                results.append(func(*args_of(item)))
                bar.update()
            return results
        # loky's workers are this process' children: they leave with it (Dask's have a cluster to mind them)
        worker = _LeavesWithParent(func, os.getpid()) if backend == "loky" else func
        calls: Iterable = (joblib.delayed(worker)(*args_of(item)) for item in items)
        if backend == "dask":
            with _dask_backend(options.scheduler, plan.workers):
                for res in joblib.Parallel(n_jobs=-1, return_as="generator")(calls):
                    results.append(res)
                    bar.update()
        else:
            with joblib.parallel_config(backend=backend, inner_max_num_threads=plan.inner_threads):
                for res in joblib.Parallel(n_jobs=plan.workers, return_as="generator")(calls):
                    results.append(res)
                    bar.update()
        return results
    finally:
        bar.close()
