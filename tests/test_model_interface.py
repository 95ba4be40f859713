"""A third model family needs the model interface and nothing else.

The family below is defined here and nowhere in the package: a linear model on raw pixels,
``f_k(x) = mean_p (w_k . x_p) + b_k``, whose exact relevance is known in closed form,
``R_p = (w_k . x_p) / (H W)`` with ``b_k`` kept apart. Registered, it runs through the same
``evaluate``, ``explain`` and ``explain --store`` commands as the BoW and DNN families.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bowlrp.cli import main
from bowlrp.data import load_image, open_dataset
from bowlrp.explanation import Explanation
from bowlrp.model import Model, load_model, register_family, unregister_family
from bowlrp.store import RelevanceStore
from bowlrp.svm.metrics import evaluation_summary

FORMAT = "test.pixel-linear"
CLASSES = ["horse", "boat"]
WEIGHTS = np.array([[0.9, -0.4, 0.2], [-0.3, 0.1, 1.1]])   # (classes, RGB)
BIAS = np.array([-0.25, -0.4])


@dataclass(frozen=True)
class ExactPixels:
    def settings(self) -> dict:
        return {"method": "exact"}

    def describe(self) -> str:
        return "exact"


class PixelLinear(Model):
    family = "pixels"
    model_files = ("model.json",)

    def __init__(self, weights: np.ndarray, bias: np.ndarray, class_names: list[str]):
        self.weights, self.bias, self.class_names = weights, bias, class_names

    def score_files(self, paths, skips, parallel=None):
        rows, ok = [], np.zeros(len(paths), dtype=bool)
        for i, path in enumerate(paths):
            rows.append(self.score_images([load_image(path)])[0])
            ok[i] = True
        return np.array(rows), ok

    def score_images(self, images):
        return np.array([image.reshape(-1, 3).astype(np.float64).mean(0) @ self.weights.T + self.bias
                         for image in images]).reshape(len(images), -1)

    def explanation_method(self) -> ExactPixels:
        return ExactPixels()

    def explain(self, image, class_name, method):
        k = self.class_index(class_name)
        relevance = image.astype(np.float64) @ self.weights[k] / (image.shape[0] * image.shape[1])
        score = float(image.reshape(-1, 3).astype(np.float64).mean(0) @ self.weights[k] + self.bias[k])
        return Explanation(relevance=relevance.astype(np.float32), score=score, bias_relevance=float(self.bias[k]),
                           absorbed=0.0, residual=0.0, descriptor_relevance=np.zeros(0, np.float32),
                           descriptor_frames=np.zeros((0, 4), np.float32), feature_relevance=np.zeros(0, np.float32),
                           class_name=class_name, settings=method.settings())


def _load(directory: Path, device) -> PixelLinear:
    meta = json.loads((directory / "model.json").read_text())
    return PixelLinear(np.array(meta["weights"]), np.array(meta["bias"]), meta["classes"])


def stub_family(directory: Path, family: str, meta: dict, loader):
    """A model directory whose ``model.json`` is ``meta`` (with a ``format`` key), loaded by ``loader``
    through a family registered for the test's duration (a generator for fixtures to yield from)."""
    directory.mkdir()
    (directory / "model.json").write_text(json.dumps(meta))
    register_family(family, lambda found: found.get("format") == meta["format"], loader)
    yield directory
    unregister_family(family)


@pytest.fixture
def pixel_model(tmp_path):
    yield from stub_family(tmp_path / "pixel-model", "pixels", {"format": FORMAT, "classes": CLASSES,
                                                                "weights": WEIGHTS.tolist(), "bias": BIAS.tolist()},
                           _load)


def _expected(path, k: int) -> tuple[np.ndarray, float]:
    image = load_image(path).astype(np.float64)
    return image @ WEIGHTS[k] / (image.shape[0] * image.shape[1]), float(image.reshape(-1, 3).mean(0) @ WEIGHTS[k] + BIAS[k])


def test_evaluate_runs_on_a_family_defined_outside_the_package(pixel_model, small_toyvoc, tmp_path):
    assert isinstance(load_model(pixel_model), PixelLinear)
    out = tmp_path / "ap.json"
    assert main(["evaluate", "--model", str(pixel_model), "--data", str(small_toyvoc), "--split", "test",
                 "--json", str(out), "--no-progress"]) == 0
    samples = open_dataset(small_toyvoc, classes=CLASSES).split("test")
    scores = np.array([[_expected(s.path, k)[1] for k in range(2)] for s in samples])
    expected = evaluation_summary(scores, np.stack([s.labels for s in samples]), CLASSES)
    result = json.loads(out.read_text())
    assert result["n_images"] == len(samples)
    assert result["ap"] == pytest.approx(expected["ap"]) and result["map"] == pytest.approx(expected["map"])


def test_explain_writes_the_known_exact_relevance(pixel_model, small_toyvoc, tmp_path, capsys):
    paths = [str(s.path) for s in open_dataset(small_toyvoc).split("test")[:3]]
    assert main(["explain", "--model", str(pixel_model), "--class", "boat", "--out", str(tmp_path / "maps"),
                 *paths]) == 0
    assert "3 explanation(s) of 'boat' (exact)" in capsys.readouterr().out
    for path in paths:
        relevance, score = _expected(path, 1)
        with np.load(tmp_path / "maps" / f"{Path(path).stem}.npz", allow_pickle=False) as npz:
            np.testing.assert_allclose(npz["relevance"], relevance, rtol=1e-6, atol=1e-9)
            assert float(npz["score"]) == pytest.approx(score, abs=1e-12)
            assert float(npz["bias_relevance"]) == BIAS[1]
            # conservation: the map and the bias make up the score
            assert float(npz["relevance"].astype(np.float64).sum()) + BIAS[1] == pytest.approx(score, abs=1e-6)
        assert (tmp_path / "maps" / f"{Path(path).stem}_overlay.png").is_file()


def test_explain_store_records_the_family_and_only_its_settings(pixel_model, small_toyvoc, tmp_path):
    store = tmp_path / "boat.h5"
    assert main(["explain", "--model", str(pixel_model), "--class", "boat", "--data", str(small_toyvoc),
                 "--split", "test", "--store", str(store), "--no-progress"]) == 0
    samples = open_dataset(small_toyvoc).split("test")
    with RelevanceStore(store) as s:
        assert s.ids == [x.image_id for x in samples]
        assert s.attrs["model_family"] == "pixels" and s.attrs["method"] == "exact"
        assert not {"rule", "eps", "alpha", "beta", "bias", "depth", "composite"} & set(s.attrs)
        for sample in samples[:4]:
            np.testing.assert_allclose(s[sample.image_id]["relevance"], _expected(sample.path, 1)[0],
                                       rtol=1e-6, atol=1e-9)


def test_options_of_another_family_are_refused_in_one_line(pixel_model, small_toyvoc, tmp_path, capsys):
    path = str(open_dataset(small_toyvoc).split("test")[0].path)
    assert main(["explain", "--model", str(pixel_model), "--class", "boat", "--rule", "alphabeta",
                 "--out", str(tmp_path), path]) == 1
    err = capsys.readouterr().err
    assert "a pixels model does not take 'rule'" in err and len(err.strip().splitlines()) == 1
    assert main(["explain", "--model", str(pixel_model), "--class", "zebra", "--out", str(tmp_path), path]) == 1
    assert "unknown class 'zebra'; the model knows horse, boat" in capsys.readouterr().err


def test_a_directory_of_no_known_family_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "model.json").write_text(json.dumps({"format": "someone-else"}))
    assert main(["predict", "--model", str(tmp_path), str(tmp_path / "x.png")]) == 1
    assert "not a model of a known family" in capsys.readouterr().err
