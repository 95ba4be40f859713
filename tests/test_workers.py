"""Worker processes: they leave with a killed run, and the number of them never changes a result."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bowlrp.data import open_dataset
from bowlrp.model import load_model
from bowlrp.parallel import ParallelOptions
from bowlrp.runs import explain_split
from bowlrp.store import RelevanceStore
from bowlrp.svm.classifier import BinarySvm
from bowlrp.svm.kernels import make_kernel

ROOT = Path(__file__).resolve().parents[1]


def _ppid_and_state(pid: int) -> tuple[int, str] | None:
    """``(parent pid, state letter)`` of a live process from /proc, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (command name)"
    return int(fields[1]), fields[0]


def _descendants(root: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _ppid_and_state(int(entry.name))) is not None:
            parents[int(entry.name)] = info[0]
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _running(pids: set[int]) -> set[int]:
    return {pid for pid in pids if (info := _ppid_and_state(pid)) is not None and info[1] != "Z"}


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads the process table from /proc (Linux)")
def test_workers_exit_when_their_run_is_killed(tiny_fv_model, small_toyvoc, tmp_path):
    store = tmp_path / "s.h5"
    parts = Path(str(store) + ".parts")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bowlrp", "explain", "--model", str(tiny_fv_model), "--class", "horse", "--data",
         str(small_toyvoc), "--split", "test", "--store", str(store), "--no-progress", "--n-jobs", "2"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(parts.glob("*.npz")) and proc.poll() is None:
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be killed"
        workers = _descendants(proc.pid)
        assert len(workers) >= 2, "the run has no worker processes to orphan"
        proc.send_signal(signal.SIGKILL)  # the parent alone, as a crash or the OOM killer would
        proc.wait()
        deadline = time.time() + 5
        while _running(workers) and time.time() < deadline:
            time.sleep(0.05)
        assert not _running(workers), f"processes of the killed run still running: {sorted(_running(workers))}"
    finally:
        for pid in _running(workers):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _store_contents(path: Path) -> tuple[dict, dict]:
    with RelevanceStore(path) as store:
        return dict(store.attrs), {image_id: store[image_id] for image_id in store.ids}


def test_worker_count_does_not_change_the_store(tiny_fv_model, small_toyvoc, tmp_path):
    model = load_model(tiny_fv_model)
    samples = open_dataset(small_toyvoc).split("test")[:6]
    contents = []
    for n_jobs in (1, 2):
        out = tmp_path / f"jobs{n_jobs}.h5"
        explain_split(model, samples, "horse", out, model.explanation_method(),
                      parallel=ParallelOptions(n_jobs=n_jobs, progress=False))
        contents.append(_store_contents(out))
    (attrs1, items1), (attrs2, items2) = contents
    assert attrs1 == attrs2 and list(items1) == list(items2)
    for image_id, one in items1.items():
        two = items2[image_id]
        assert set(one) == set(two)
        for key in one:  # bit for bit: scores were 1e-16..1e-15 apart between one and two jobs
            np.testing.assert_array_equal(one[key], two[key], err_msg=f"{image_id}/{key}")


def test_linear_scores_do_not_depend_on_blas_threads():
    """A worker runs BLAS on fewer threads than the main process; OpenBLAS splits a long dot product
    over its threads, so scores differed in the last bits between the two."""
    rng = np.random.default_rng(0)
    d = 300_000
    svm = BinarySvm()
    svm.kernel_, svm.coef_, svm.intercept_ = make_kernel("linear"), rng.standard_normal(d), 0.25
    X = rng.random((3, d))
    scores = {}
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            scores[threads] = np.concatenate([svm.decision_function(X[i:i + 1]) for i in range(len(X))])
    np.testing.assert_array_equal(scores[1], scores[2])
