"""Worker pools: ``--n-jobs`` checked when the arguments are parsed, and pools capped at the machine's
cores and at the number of items (``predict --n-jobs 1000`` on two images once started 162 processes)."""
from __future__ import annotations

import logging
import os

import joblib
import pytest

from bowlrp import parallel
from bowlrp.cli import main
from bowlrp.parallel import ItemResult, ParallelOptions, WorkerPlan, parallel_map, worker_plan


@pytest.fixture
def sixteen_cores(monkeypatch):
    monkeypatch.setattr(parallel.joblib, "cpu_count", lambda *a, **k: 16)
    monkeypatch.setattr(parallel, "_WARNED", set())


def test_pools_are_capped_at_cores_and_items(sixteen_cores, caplog):
    with caplog.at_level(logging.INFO, logger="bowlrp.parallel"):
        # 1000 asked on 16 cores for 2 items: two workers, each with the threads of a 16-worker pool
        assert worker_plan(1000, 2) == WorkerPlan(2, 1)
    assert any("capped at the machine's 16 core(s)" in r.getMessage() and r.levelno == logging.WARNING
               for r in caplog.records)
    caplog.clear()
    worker_plan(1000, 2)
    assert not caplog.records  # said once per process, not at every stage of a command
    assert worker_plan(4, 100) == WorkerPlan(4)          # nothing to cap: joblib's own thread rule
    assert worker_plan(-1, 100) == WorkerPlan(16)
    assert worker_plan(4, 3) == WorkerPlan(3, 4)          # threads of the 4-worker pool asked for
    assert worker_plan(1, 100) == WorkerPlan(1)           # in this process
    # one pending item still goes to a worker (a resumed run must score it as the full run did)
    assert worker_plan(4, 1) == WorkerPlan(2, 4)
    assert worker_plan(1000, 5, "threading") == WorkerPlan(5, None)
    assert worker_plan(1000, 5, "dask") == WorkerPlan(5)


def test_one_core_runs_in_this_process(monkeypatch):
    monkeypatch.setattr(parallel.joblib, "cpu_count", lambda *a, **k: 1)
    assert worker_plan(-1, 10) == WorkerPlan(1)
    assert worker_plan(8, 10) == WorkerPlan(1)


def _pid(item) -> ItemResult:
    return ItemResult(str(item), value=os.getpid())


def test_parallel_map_starts_no_more_workers_than_items(monkeypatch):
    asked = []

    class Recording(joblib.Parallel):
        def __init__(self, n_jobs=None, **kwargs):
            asked.append(n_jobs)
            super().__init__(n_jobs=n_jobs, **kwargs)

    monkeypatch.setattr(parallel.joblib, "Parallel", Recording)
    results = parallel_map(_pid, [0, 1], options=ParallelOptions(n_jobs=1000, backend="threading", progress=False))
    assert [r.item for r in results] == ["0", "1"] and asked == [2]


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_n_jobs_is_a_usage_error_before_anything_is_written(value, small_toyvoc, tmp_path, capsys):
    store = tmp_path / "s.h5"
    with pytest.raises(SystemExit) as stop:
        main(["explain", "--model", str(tmp_path / "none"), "--class", "horse", "--data", str(small_toyvoc),
              "--store", str(store), "--n-jobs", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "--n-jobs" in err and value in err.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_study_refuses_n_jobs_0_instead_of_taking_the_default(small_toyvoc, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["study", "--data", str(small_toyvoc), "--out", str(tmp_path / "study"), "--n-jobs", "0"])
    assert stop.value.code == 2 and "--n-jobs" in capsys.readouterr().err
    assert not (tmp_path / "study").exists()
