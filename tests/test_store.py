"""The dataset-split relevance store: contents, resumption after SIGKILL, refusal to mix runs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bowlrp.cli import main
from bowlrp.data import open_dataset
from bowlrp.errors import BowlrpError, SkipLog
from bowlrp.lrp import EncoderRule, explain_path
from bowlrp.model import load_model
from bowlrp.parallel import ParallelOptions
from bowlrp.pipeline import PipelineConfig, train_model
from bowlrp.runs import explain_split
from bowlrp.store import RelevanceStore

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(small_toyvoc, tmp_path_factory) -> Path:
    ds = open_dataset(small_toyvoc, classes=["horse", "boat"])
    train = ds.split("trainval")
    labels = np.stack([s.labels for s in train])
    model = train_model(PipelineConfig(encoder="fisher", kernel="linear", n_words=4, max_descriptors=20000),
                        [s.path for s in train], labels, ["horse", "boat"], SkipLog(), ParallelOptions(progress=False))
    out = tmp_path_factory.mktemp("store-model") / "model"
    model.save(out)
    return out


def _contents(path: Path) -> dict:
    with RelevanceStore(path) as store:
        return {"attrs": {k: v for k, v in store.attrs.items()}, "skipped": store.skipped,
                "items": {i: store[i] for i in store.ids}}


def _assert_same(a: dict, b: dict) -> None:
    assert a["attrs"] == b["attrs"] and a["skipped"] == b["skipped"]
    assert list(a["items"]) == list(b["items"])
    for image_id in a["items"]:
        x, y = a["items"][image_id], b["items"][image_id]
        assert set(x) == set(y)
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=f"{image_id}/{key}")


def test_store_holds_what_explain_gives(model_dir, small_toyvoc, tmp_path):
    model = load_model(model_dir)
    samples = open_dataset(small_toyvoc).split("test")[:5]
    summary = explain_split(model, samples, "horse", tmp_path / "s.h5", model.explanation_method(eps=1.0),
                            parallel=ParallelOptions(progress=False))
    assert summary.n_explained == 5 and summary.n_resumed == 0
    assert not (tmp_path / "s.h5.parts").exists()
    with RelevanceStore(tmp_path / "s.h5") as store:
        assert store.ids == [s.image_id for s in samples]
        assert store.attrs["class_name"] == "horse" and store.attrs["eps"] == 1.0
        assert store.attrs["rule"] == "epsilon" and store.attrs["model_family"] == "bow"
        assert "alpha" not in store.attrs and "beta" not in store.attrs  # only what the rule used
        direct = explain_path(model, samples[2].path, "horse", rule=EncoderRule("epsilon", 1.0))
        item = store[samples[2].image_id]
        np.testing.assert_array_equal(item["relevance"], direct.relevance)
        np.testing.assert_array_equal(item["descriptor_relevance"], direct.descriptor_relevance)
        assert item["score"] == direct.score and item["absorbed"] == direct.absorbed


def _cli(model_dir, data, store, *extra):
    return [sys.executable, "-m", "bowlrp", "explain", "--model", str(model_dir), "--class", "horse", "--data",
            str(data), "--split", "test", "--store", str(store), "--no-progress", *extra]


@pytest.mark.slow
def test_sigkill_and_restart_give_the_same_store(model_dir, small_toyvoc, tmp_path):
    reference = tmp_path / "reference.h5"
    subprocess.run(_cli(model_dir, small_toyvoc, reference), cwd=ROOT, check=True, capture_output=True)

    store = tmp_path / "interrupted.h5"
    parts = Path(str(store) + ".parts")
    proc = subprocess.Popen(_cli(model_dir, small_toyvoc, store), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("*.npz"))) < 2 and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = len(list(parts.glob("*.npz")))
    assert finished_before >= 2 and not store.exists()

    again = subprocess.run(_cli(model_dir, small_toyvoc, store), cwd=ROOT, check=True, capture_output=True, text=True)
    assert f"{finished_before} kept from an interrupted run)" in again.stdout
    _assert_same(_contents(store), _contents(reference))
    assert not parts.exists()


def test_a_run_with_other_settings_does_not_mix_with_leftover_parts(model_dir, small_toyvoc, tmp_path):
    model = load_model(model_dir)
    samples = open_dataset(small_toyvoc).split("test")[:3]
    parts = tmp_path / "s.h5.parts"
    parts.mkdir()
    (parts / "settings.json").write_text('{"class_name": "boat"}')
    with pytest.raises(BowlrpError, match="interrupted run with other settings"):
        explain_split(model, samples, "horse", tmp_path / "s.h5", model.explanation_method(),
                      parallel=ParallelOptions(progress=False))


def test_scores_of_images_in_memory_equal_those_of_their_files(model_dir, small_toyvoc):
    from bowlrp.data import load_image

    model = load_model(model_dir)
    assert model.variant == "fv"
    paths = [s.path for s in open_dataset(small_toyvoc).split("test")[:3]]
    from_files, ok = model.score_files(paths, SkipLog(), ParallelOptions(progress=False))
    assert ok.all()
    np.testing.assert_array_equal(model.score_images([load_image(p) for p in paths]), from_files)


HOLD_LOCK = """
import sys, time
from pathlib import Path
from bowlrp.store import lock_parts
lock = lock_parts(Path(sys.argv[1] + ".parts"), Path(sys.argv[1]))  # what a run takes first
print("held", flush=True)
time.sleep(120)
"""


def test_a_second_run_on_a_store_refuses_until_the_holder_is_killed(model_dir, small_toyvoc, tmp_path, capsys):
    """Two runs on one store ended in a crash, an unreadable store or a store missing images; now the
    second refuses at once with one line naming the store and the pid holding it, and a SIGKILL of
    the holder frees the store for the next run (the OS drops a dead process' flock)."""
    store = tmp_path / "s.h5"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(store)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["explain", "--model", str(model_dir), "--class", "horse", "--data", str(small_toyvoc),
                     "--split", "test", "--store", str(store), "--no-progress"]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1
        assert str(store) in err and f"pid {holder.pid}" in err and "another run" in err
        assert not store.exists()
    finally:
        holder.kill()
        holder.wait()
    model = load_model(model_dir)
    samples = open_dataset(small_toyvoc).split("test")[:3]
    summary = explain_split(model, samples, "horse", store, model.explanation_method(),
                            parallel=ParallelOptions(progress=False))
    assert summary.n_explained == 3
    assert not Path(str(store) + ".parts").exists()
    with RelevanceStore(store) as done:
        assert done.ids == [s.image_id for s in samples]


def test_a_failed_run_lets_go_of_the_store(model_dir, small_toyvoc, tmp_path, monkeypatch):
    """A run that fails in this process keeps its parts but not the lock: the retry in the same process
    (as the study runner and a resumed test do) is not refused by its own earlier attempt."""
    model = load_model(model_dir)
    samples = open_dataset(small_toyvoc).split("test")[:2]
    method = model.explanation_method()
    real = model.explain
    monkeypatch.setattr(model, "explain", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        explain_split(model, samples, "horse", tmp_path / "s.h5", method, parallel=ParallelOptions(progress=False))
    assert (tmp_path / "s.h5.parts" / "lock").is_file()
    monkeypatch.setattr(model, "explain", real)
    summary = explain_split(model, samples, "horse", tmp_path / "s.h5", method, parallel=ParallelOptions(progress=False))
    assert summary.n_explained == 2 and not (tmp_path / "s.h5.parts").exists()
