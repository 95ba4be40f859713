"""Descriptor replacement (Appendix C.2): the incremental Fisher vector equals a full re-encoding,
curves start at f(x), and the schedule keeps its steps."""
from __future__ import annotations

import numpy as np
import pytest

from bowlrp.analysis.descriptor_replacement import (IncrementalFisher, replacement_curves, replacement_schedule,
                                                    sample_gmm)
from bowlrp.data import load_image, open_dataset
from bowlrp.errors import BowlrpError, SkipLog
from bowlrp.parallel import ParallelOptions
from bowlrp.pipeline import PipelineConfig, train_model

CLASSES = ["horse", "boat"]


@pytest.fixture(scope="module", params=["one block", "per scale"])
def fv_model(small_toyvoc, request):
    ds = open_dataset(small_toyvoc, classes=CLASSES)
    train = ds.split("trainval")
    labels = np.stack([s.labels for s in train])
    config = PipelineConfig(encoder="fisher", kernel="linear", n_words=4, max_descriptors=20000,
                            per_scale=request.param == "per scale")
    return train_model(config, [s.path for s in train], labels, CLASSES, SkipLog(), ParallelOptions(progress=False))


@pytest.fixture(scope="module")
def image(small_toyvoc):
    return load_image(open_dataset(small_toyvoc).split("test")[0].path)


def _recomputed(model, descriptors, replaced: np.ndarray, substitutes: list[np.ndarray]) -> np.ndarray:
    """The image vector with the replaced descriptors' values swapped, encoded from scratch."""
    parts = []
    for block, substitute in zip(model.features.blocks, substitutes):
        index, values, positions = block.prepare(descriptors)
        values = values.copy()
        row_of = {d: r for r, d in enumerate(index)}
        for j, d in enumerate(replaced):
            if d in row_of:
                values[row_of[d]] = substitute[j]
        parts.append(block.encoder.encode(values, positions))
    return np.concatenate(parts)


@pytest.mark.parametrize("normalization", ["enceval", "vlfeat", "none"])
def test_tracked_linear_score_equals_scoring_the_whole_vector(fv_model, image, normalization):
    # "none" has no tracked form: the score then comes from the vector, and must agree all the same
    saved = [b.encoder.normalization for b in fv_model.features.blocks]
    for block in fv_model.features.blocks:
        block.encoder.normalization = normalization
    try:
        descriptors = fv_model.features.descriptors(image)
        machine = fv_model.classifier.estimators_[fv_model.class_index("horse")]
        state = IncrementalFisher(fv_model, descriptors)
        state.track(machine.coef_, machine.intercept_)
        assert all((b.linear is not None) == (normalization != "none") for b in state.blocks)
        rng = np.random.default_rng(2)
        order = rng.permutation(len(descriptors))
        scores = []
        for step in range(6):
            which = order[step * 40:(step + 1) * 40]
            state.replace(which, [sample_gmm(b.encoder.gmm, len(which), rng) for b in fv_model.features.blocks])
            twin = state.copy()  # a copy carries the tracked sums on
            expected = machine.decision_function(state.vector()[None])[0]
            assert state.score() == pytest.approx(expected, rel=1e-6, abs=1e-9)
            assert twin.score() == state.score()
            scores.append(expected)
        assert np.ptp(scores) > 1e-4  # the steps moved the score
    finally:
        for block, value in zip(fv_model.features.blocks, saved):
            block.encoder.normalization = value


def test_incremental_updates_equal_a_full_recompute(fv_model, image):
    descriptors = fv_model.features.descriptors(image)
    rng = np.random.default_rng(0)
    replaced = rng.choice(len(descriptors), size=len(descriptors) // 3, replace=False)
    substitutes = [sample_gmm(b.encoder.gmm, len(replaced), rng) for b in fv_model.features.blocks]
    state = IncrementalFisher(fv_model, descriptors)
    np.testing.assert_allclose(state.vector(), fv_model.features.encode_descriptors(descriptors), atol=1e-6)
    half = len(replaced) // 2  # in two steps, as a curve does
    state.replace(replaced[:half], [s[:half] for s in substitutes])
    state.replace(replaced[half:], [s[half:] for s in substitutes])
    expected = _recomputed(fv_model, descriptors, replaced, substitutes)
    assert np.abs(expected - _recomputed(fv_model, descriptors, replaced[:0], substitutes)).max() > 1e-3  # it moved
    np.testing.assert_allclose(state.vector(), expected, atol=1e-5)


def test_curves_start_at_the_score_and_share_draws_between_orders(fv_model, image):
    descriptors = fv_model.features.descriptors(image)
    n = len(descriptors)
    relevance = np.random.default_rng(1).normal(size=n)
    curves = replacement_curves(fv_model, descriptors, "horse", {"a": relevance, "same": relevance, "random": None},
                                steps=10, batch=50, repeats=2, seed=3)
    score = fv_model.decision_function(fv_model.features.encode_descriptors(descriptors)[None])[0, 0]
    for name, curve in curves.items():
        assert curve.shape == (2, 11)
        np.testing.assert_allclose(curve[:, 0], score, rtol=1e-6)
    np.testing.assert_array_equal(curves["a"], curves["same"])  # the same order sees the same substitutes
    assert not np.array_equal(curves["a"], curves["random"])
    again = replacement_curves(fv_model, descriptors, "horse", {"a": relevance}, steps=10, batch=50, repeats=2, seed=3)
    np.testing.assert_array_equal(again["a"], curves["a"])  # deterministic for a seed


def test_schedule_keeps_its_steps():
    assert replacement_schedule(69000, 100, 100) == (100, 100)   # Appendix C.2: 10,000 in batches of 100
    assert replacement_schedule(5000, 100, 100) == (100, 50)     # small images: smaller batches
    assert replacement_schedule(40, 100, 100) == (40, 1)
    with pytest.raises(BowlrpError):
        replacement_schedule(0, 100, 100)


def test_perturb_command_in_descriptor_mode(fv_model, small_toyvoc, tmp_path, capsys):
    import json

    from bowlrp.cli import main

    fv_model.save(tmp_path / "fv")
    out = tmp_path / "d.json"
    argv = ["perturb", "--model", str(tmp_path / "fv"), "--data", str(small_toyvoc), "--class", "boat",
            "--mode", "descriptors", "--orders", "eps1,ab21,absz", "random", "--steps", "5", "--per-step", "40",
            "--repetitions", "2", "--json", str(out), "--plot", str(tmp_path / "d.png"), "--no-progress"]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert result["mode"] == "descriptors" and set(result["orders"]) == {"eps1", "ab21", "absz", "random"}
    n_boats = sum(s.labels[open_dataset(small_toyvoc).classes.index("boat")] == 1
                  for s in open_dataset(small_toyvoc).split("test"))
    assert result["n_images"] == n_boats
    for row in result["orders"].values():
        assert len(row["curve_mean"]) == 6 and np.isfinite(row["aopc_mean"])
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    assert "descriptors perturbation of 'boat'" in capsys.readouterr().out


def test_descriptor_mode_needs_a_fisher_vector_model(small_toyvoc, tmp_path, capsys):
    from bowlrp.cli import main

    assert main(["dnn", "train", "--data", str(small_toyvoc), "--out", str(tmp_path / "cnn"), "--epochs", "1",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["perturb", "--model", str(tmp_path / "cnn"), "--data", str(small_toyvoc), "--class", "boat",
                 "--mode", "descriptors", "--json", str(tmp_path / "x.json")]) == 1
    assert "needs a Fisher-vector model; this is a dnn model" in capsys.readouterr().err
