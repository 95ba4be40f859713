"""``bowlrp render``: one figure per store image, symmetric colour scale, panels, the books as the store has them."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from bowlrp.analysis.render import draw, figure_pixels, parse_books_text, relevance_colormap, render_store
from bowlrp.cli import main
from bowlrp.data import open_dataset
from bowlrp.heatmap import colorize
from bowlrp.model import load_model
from bowlrp.parallel import ParallelOptions
from bowlrp.runs import explain_split
from bowlrp.store import RelevanceStore


@pytest.fixture(scope="module")
def store(tiny_fv_model, small_toyvoc, tmp_path_factory) -> Path:
    """A store of 3 test images explained by the tiny FV model (epsilon 1: nonzero absorbed)."""
    model = load_model(tiny_fv_model)
    samples = open_dataset(small_toyvoc).split("test")[:3]
    out = tmp_path_factory.mktemp("render") / "horse.h5"
    explain_split(model, samples, "horse", out, model.explanation_method(eps=1.0),
                  parallel=ParallelOptions(progress=False))
    return out


def _ids(path: Path) -> list[str]:
    with RelevanceStore(path) as s:
        return list(s.ids)


def test_one_png_per_image_of_the_expected_size(store, tmp_path):
    assert main(["render", "--store", str(store), "--out", str(tmp_path / "fig"), "--no-progress"]) == 0
    pngs = sorted((tmp_path / "fig").glob("*.png"))
    assert [p.name for p in pngs] == [f"horse_{i}.png" for i in _ids(store)]
    for p in pngs:
        with Image.open(p) as im:
            assert im.size == figure_pixels(False) == (720, 600)


def test_colour_scale_is_symmetric_at_max_abs_relevance(store, tmp_path):
    summary = render_store(store, tmp_path, show_progress=False)
    with RelevanceStore(store) as s:
        for fig in summary.figures:
            top = float(np.abs(s.relevance(fig.image_id).astype(np.float64)).max())
            assert top > 0
            assert fig.vmin == -top and fig.vmax == top
    # the colour bar drawn in the figure carries the same limits, and its colours are colorize's
    with RelevanceStore(store) as s:
        image_id = s.ids[0]
        relevance, attrs = s.relevance(image_id), s.image_attrs(image_id)
    figure, vmin, vmax, *_ = draw(relevance, attrs, "horse")
    bars = [a for a in figure.axes if a.get_label() == "<colorbar>"]
    assert len(bars) == 1
    lo, hi = bars[0].get_ylim()
    assert lo == pytest.approx(-np.abs(relevance).max()) and hi == pytest.approx(np.abs(relevance).max())
    cmap = relevance_colormap()
    for value in (-1.0, 0.0, 0.5, 1.0):
        expected = colorize(np.array([[value, -1.0, 1.0]]))[0, 0] / 255.0  # -1, 1 fix the scale to [-1, 1]
        np.testing.assert_allclose(cmap((value + 1) / 2)[:3], expected, atol=1 / 255)
    np.testing.assert_array_equal(np.asarray(figure.axes[0].images[0].get_array()), colorize(relevance))


def test_panel_has_three_axes_and_a_missing_image_is_a_counted_skip(store, tmp_path, capsys):
    summary = render_store(store, tmp_path / "a", panel=True, show_progress=False)
    assert [f.n_axes for f in summary.figures] == [3] * len(_ids(store)) and not summary.skips.entries
    with Image.open(summary.figures[0].path) as im:
        assert im.size == figure_pixels(True)
    # a copy of the store whose first image path points nowhere: that one is skipped, the rest drawn
    copy = tmp_path / "copy.h5"
    shutil.copy(store, copy)
    with h5py.File(copy, "r+") as h5:
        first = sorted(h5["images"])[0]
        h5["images"][first].attrs["path"] = str(tmp_path / "gone.jpg")
    code = main(["render", "--store", str(copy), "--out", str(tmp_path / "b"), "--panel", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0 and "skipped 1 file(s)" in err and "gone.jpg" in err
    assert len(list((tmp_path / "b").glob("*.png"))) == len(_ids(store)) - 1


def test_books_text_equals_the_store(store, tmp_path):
    summary = render_store(store, tmp_path, show_progress=False)
    with RelevanceStore(store) as s:
        for fig in summary.figures:
            attrs = s.image_attrs(fig.image_id)
            expected = {"score": attrs["score"], "sum_R": float(s.relevance(fig.image_id).astype(np.float64).sum()),
                        "bias_relevance": attrs["bias_relevance"], "absorbed": attrs["absorbed"],
                        "residual": attrs["residual"]}
            assert fig.books == expected
            shown = parse_books_text(fig.text)
            assert set(shown) == set(expected)
            for key, value in expected.items():
                assert shown[key] == pytest.approx(value, rel=1e-3, abs=1e-12), key
            # the books close: f = sum R + bias + absorbed + residual
            assert sum(v for k, v in expected.items() if k != "score") == pytest.approx(expected["score"], abs=1e-4)
    assert any(abs(f.books["absorbed"]) > 0 for f in summary.figures)  # epsilon leaves something absorbed


def test_ids_limit_the_images_and_an_unknown_id_is_one_line_exit_1(store, tmp_path, capsys):
    ids = _ids(store)
    assert main(["render", "--store", str(store), "--out", str(tmp_path / "one"), "--ids", ids[1],
                 "--no-progress"]) == 0
    assert [p.name for p in (tmp_path / "one").glob("*.png")] == [f"horse_{ids[1]}.png"]
    capsys.readouterr()
    code = main(["render", "--store", str(store), "--out", str(tmp_path / "bad"), "--ids", ids[0], "no-such-id",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "no-such-id" in err and err.startswith("bowlrp: error:")
    assert not list((tmp_path / "bad").glob("*.png"))  # refused before drawing anything


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    out = capsys.readouterr().out
    for flag in ("--store", "--out", "--ids", "--panel", "--no-progress"):
        assert flag in out
    assert "symmetric" in out and "overlay" in out


def _grid_power(R: np.ndarray, period: int) -> float:
    """Power of ``R`` at the frequencies of a checkerboard of ``period`` px (1/period along both axes)."""
    spectrum = np.abs(np.fft.fft2(R)) ** 2
    u, v = R.shape[0] // period, R.shape[1] // period
    return float(spectrum[u, v] + spectrum[-u, v] + spectrum[u, -v] + spectrum[-u, -v])


def test_smoothing_keeps_the_sum_and_removes_a_bin_grid():
    from bowlrp.analysis.render import smooth_keeping_sum

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :128]
    blob = np.exp(-((yy - 40) ** 2 + (xx - 70) ** 2) / 300.0)
    grid = np.where(((yy // 4) + (xx // 4)) % 2, 1.0, -1.0)  # opposite signs on 4-px bins: period 8
    R = blob + 0.5 * grid * rng.random((96, 128))
    R[0, :] += 3.0  # mass at the border must stay in the picture
    S = smooth_keeping_sum(R, 4.0)
    assert S.shape == R.shape
    assert S.sum() == pytest.approx(R.sum(), rel=1e-12, abs=1e-9)
    assert _grid_power(S, 8) < 1e-3 * _grid_power(R, 8)
    assert np.unravel_index(np.argmax(S[10:]), S[10:].shape) == pytest.approx((30, 70), abs=3)  # the blob stays
    assert np.array_equal(smooth_keeping_sum(R, 0.0), R)


def test_a_bins_store_is_drawn_smoothed_with_the_books_of_the_store(tiny_fv_model, small_toyvoc, tmp_path):
    from bowlrp.analysis.render import BINS_SIGMA, smooth_keeping_sum

    model = load_model(tiny_fv_model)
    samples = open_dataset(small_toyvoc).split("test")[:2]
    bins = tmp_path / "bins.h5"
    explain_split(model, samples, "horse", bins, model.explanation_method(eps=1.0, depth="bins"),
                  parallel=ParallelOptions(progress=False))
    summary = render_store(bins, tmp_path / "fig", show_progress=False)
    assert summary.sigma == BINS_SIGMA and len(summary.figures) == 2
    with RelevanceStore(bins) as s:
        for figure in summary.figures:
            stored = s.relevance(figure.image_id).astype(np.float64)
            drawn = smooth_keeping_sum(stored, BINS_SIGMA)
            assert figure.books["sum_R"] == pytest.approx(stored.sum(), rel=1e-12)
            assert drawn.sum() == pytest.approx(stored.sum(), rel=1e-9, abs=1e-12)
            assert figure.vmax == pytest.approx(np.abs(drawn).max())  # the colour scale is the drawn map's
            # the speckle is gone: the fine-scale share of the spectrum (periods under 4 px) drops
            fine = lambda R: float(np.sum(np.abs(np.fft.fft2(R - R.mean()))[_fine_mask(R.shape)] ** 2))
            assert fine(drawn) < 0.01 * fine(stored)
    # --smooth 0 draws a bins map as stored
    assert render_store(bins, tmp_path / "raw", show_progress=False, smooth=0).sigma == 0
    first = summary.figures[0].image_id
    with RelevanceStore(bins) as s:
        top = float(np.abs(s.relevance(first)).max())
    assert render_store(bins, tmp_path / "raw", ids=[first], show_progress=False, smooth=0).figures[0].vmax \
        == pytest.approx(top)


def _fine_mask(shape) -> np.ndarray:
    fy, fx = np.meshgrid(np.fft.fftfreq(shape[0]), np.fft.fftfreq(shape[1]), indexing="ij")
    return np.maximum(np.abs(fy), np.abs(fx)) > 0.25


def test_other_stores_are_drawn_as_stored(store, tmp_path):
    assert render_store(store, tmp_path / "fig", show_progress=False).sigma == 0
