"""Dense SIFT: the VLFeat wrapper against direct cyvlfeat calls, the OpenCV backend against VLFeat."""
from __future__ import annotations

import logging
import math

import cv2
import numpy as np
import pytest
import skimage.data
from scipy.ndimage import gaussian_filter

from bowlrp.errors import BowlrpError, ImageError
from bowlrp.features import DenseSift, DescriptorSet, available_backends, resolve_backend
from bowlrp.features import dsift as dsift_module
from bowlrp.features._opencv import flat_window_mass
from bowlrp.features._vlfeat import dense_frame_origins
from bowlrp.persistence import load_stages, save_stages

from conftest import require_cyvlfeat

cyvlfeat_sift = require_cyvlfeat("cyvlfeat.sift")

# MATLAB rgb2gray weights (documented values), the reference for the RGB -> grey step
MATLAB_RGB2GRAY = np.array([0.2989, 0.5870, 0.1140])


def _rgb_image(rows: int, cols: int) -> np.ndarray:
    """A natural RGB image, area-resized to ``(rows, cols)``, float32 in [0, 1]."""
    rgb = skimage.data.astronaut()[40:440, 60:460].astype(np.float32) / 255
    return cv2.resize(rgb, (cols, rows), interpolation=cv2.INTER_AREA)


def _grey_image(rows: int, cols: int) -> np.ndarray:
    grey = skimage.data.camera().astype(np.float32) / 255
    return cv2.resize(grey, (cols, rows), interpolation=cv2.INTER_AREA)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


@pytest.fixture(scope="module")
def natural_pair():
    """The same grey image through both backends (default vl_phow parameters, no resize)."""
    image = _grey_image(96, 128)
    vl = DenseSift(backend="vlfeat", max_rows=None).extract(image)
    cv = DenseSift(backend="opencv", max_rows=None).extract(image)
    return vl, cv


# -- smoothing and the VLFeat wrapper ----------------------------------------------------------
@pytest.mark.parametrize("sigma", [4 / 6, 1.0, 10 / 6])
def test_vl_imsmooth_matches_scipy_gaussian(sigma):
    # for these sigmas scipy's truncation radius int(4 sigma + 0.5) equals vl_imsmooth's ceil(4 sigma)
    assert int(4 * sigma + 0.5) == math.ceil(4 * sigma)
    image = _grey_image(40, 50)
    ours = dsift_module.vl_imsmooth(image, sigma)
    ref = gaussian_filter(image.astype(np.float64), sigma, mode="nearest", truncate=4.0)
    np.testing.assert_allclose(ours, ref, atol=2e-6)


def test_vlfeat_backend_is_a_plain_dsift_call_per_scale():
    image = _grey_image(70, 90)
    sizes = (4, 6, 8, 10)
    out = DenseSift(bin_sizes=sizes, backend="vlfeat", max_rows=None).extract(image)
    assert out.values.dtype == np.float32 and out.values.shape[1] == 128
    for index, size in enumerate(sizes):
        smoothed = dsift_module.vl_imsmooth(image, size / 6.0)
        off = math.floor(1 + 1.5 * (max(sizes) - size)) - 1  # vl_phow's 1-based offset, made 0-based
        frames, descrs = cyvlfeat_sift.dsift(
            smoothed, step=3, size=size, bounds=[off, off, image.shape[0] - 1, image.shape[1] - 1],
            window_size=1.5, norm=True, fast=True, float_descriptors=True,
        )
        descrs = descrs.copy()
        descrs[frames[:, 2] < 0.005] = 0
        mine = out.scales == index
        assert mine.sum() == len(frames) > 0
        np.testing.assert_array_equal(out.values[mine], descrs)
        np.testing.assert_array_equal(out.centers[mine], frames[:, [1, 0]])  # cyvlfeat gives (y, x)
        np.testing.assert_array_equal(out.bin_sizes[mine], size)
        # documented geometry: first centre = bounds min + 1.5 B, along x and y
        assert tuple(out.centers[mine][0]) == (off + 1.5 * size, off + 1.5 * size)
        # the next frame is one step to the right (row-major order)
        assert tuple(out.centers[mine][1]) == (off + 1.5 * size + 3, off + 1.5 * size)
    # VLFeat's float descriptors are unit vectors times 512
    norms = np.linalg.norm(out.values, axis=1)
    assert np.allclose(norms[norms > 0], 512, rtol=1e-3)


def test_vlfeat_descriptors_are_capped_at_255_like_vl_dsift():
    """vl_dsift (and cyvlfeat's float output) caps each value of 512 x the unit descriptor at 255: a
    descriptor dominated by one bin (> 255/512) has a norm below 512. The astronaut's face and suit have
    such descriptors (0.27 % of the non-zero ones on the whole photo); the others are 512-norm vectors."""
    out = DenseSift(backend="vlfeat", max_rows=None).extract(_rgb_image(200, 200))
    values = out.values
    norms = np.linalg.norm(values, axis=1)
    capped = values.max(axis=1) >= 255
    assert values.max() == 255 and 0 < capped.sum() < 0.01 * (norms > 0).sum()
    assert np.all(norms[capped] < 511) and np.allclose(norms[~capped & (norms > 0)], 512, rtol=1e-3)


def test_all_scales_share_one_centre_grid():
    image = _grey_image(80, 100)
    for backend in ("vlfeat", "opencv"):
        out = DenseSift(backend=backend, max_rows=None).extract(image)
        grids = []
        for index in range(4):
            c = out.centers[out.scales == index]
            xs, ys = np.unique(c[:, 0]), np.unique(c[:, 1])
            # every scale starts at 1.5 * max(bin_sizes) = 15 and steps by 3
            assert xs[0] == ys[0] == 15
            assert np.all(np.diff(xs) == 3) and np.all(np.diff(ys) == 3)
            assert len(c) == len(xs) * len(ys)
            grids.append({tuple(p) for p in c.tolist()})
        # smaller bins fit further into the image: each larger scale's grid is a subset
        for small, large in zip(grids[:-1], grids[1:]):
            assert large <= small


def test_frame_grid_matches_vlfeat_for_odd_bins():
    image = _grey_image(45, 61)
    for size, bound_min in [(3, 0), (5, 2), (7, 1)]:
        smoothed = dsift_module.vl_imsmooth(image, size / 6)
        frames, _ = cyvlfeat_sift.dsift(smoothed, step=2, size=size, bounds=[bound_min, bound_min, 44, 60],
                                        window_size=1.5, fast=True, float_descriptors=True)
        origins = dense_frame_origins(image.shape, bound_min, size, 2)
        np.testing.assert_array_equal(origins + 1.5 * size, frames[:, [1, 0]])


# -- OpenCV backend ------------------------------------------------------------------------------
def test_flat_window_mass_equals_vlfeat_norm():
    image = _grey_image(60, 75)
    for size in (4, 5, 10):
        smoothed = dsift_module.vl_imsmooth(image, size / 6)
        frames, _ = cyvlfeat_sift.dsift(smoothed, step=3, size=size, bounds=[1, 1, 59, 74], window_size=1.5,
                                        norm=True, fast=True, float_descriptors=True)
        mass = flat_window_mass(smoothed, dense_frame_origins(image.shape, 1, size, 3), size, 1.5)
        # VLFeat uses a fast sqrt approximation for gradient magnitudes
        np.testing.assert_allclose(mass, frames[:, 2], rtol=2e-3)


@pytest.mark.parametrize("backend", ["vlfeat", "opencv"])
def test_orientation_and_spatial_layout_on_synthetic_gradients(backend):
    y, x = np.mgrid[0:80, 0:80].astype(np.float32)
    sift = DenseSift(bin_sizes=(6,), backend=backend, max_rows=None, contrast_threshold=0.0)
    for k in range(8):
        angle = k * np.pi / 4  # gradient direction, measured from +x towards +y (rows grow downwards)
        ramp = (np.cos(angle) * x + np.sin(angle) * y) / 300 + 0.5
        out = sift.extract(ramp)
        hist = out.values.reshape(-1, 4, 4, 8).sum(axis=(0, 1, 2))
        assert np.argmax(hist) == k, (backend, k, hist)
        assert hist[k] > 0.9 * hist.sum()
    # gradients only left of the descriptor centre: energy only in the spatial columns bx = 0, 1
    image = np.where(x < 30, x / 80, 30 / 80).astype(np.float32)
    out = DenseSift(bin_sizes=(6,), backend=backend, max_rows=None, magnif=1e9, contrast_threshold=0.0).extract(image)
    centre_39 = np.flatnonzero((out.centers[:, 0] == 39) & (out.centers[:, 1] == 39))
    assert len(centre_39) == 1
    cells = out.values[centre_39[0]].reshape(4, 4, 8).sum(axis=2)  # [by, bx]
    # bin centres at x = 30, 36, 42, 48: column 0 sees gradients, column >= 2 sees none
    assert cells[:, 0].min() > 0 and cells[:, 2:].max() == 0


def test_opencv_matches_vlfeat_on_a_natural_image(natural_pair):
    vl, cv = natural_pair
    np.testing.assert_array_equal(vl.centers, cv.centers)
    np.testing.assert_array_equal(vl.scales, cv.scales)
    vl_zero = ~vl.values.any(axis=1)
    cv_zero = ~cv.values.any(axis=1)
    np.testing.assert_array_equal(vl_zero, cv_zero)  # same contrast decision
    corr = _pearson_rows(vl.values[~vl_zero].astype(np.float64), cv.values[~cv_zero].astype(np.float64))
    assert corr.mean() > 0.99, corr.mean()
    for index in range(4):
        assert corr[vl.scales[~vl_zero] == index].mean() > 0.985
    # same output scale: unit vectors times 512
    np.testing.assert_allclose(np.linalg.norm(cv.values[~cv_zero], axis=1), 512, rtol=1e-4)


def test_window_correction_brings_opencv_closer_to_vlfeat(natural_pair, monkeypatch):
    vl, cv = natural_pair
    keep = vl.values.any(axis=1)
    corrected = _pearson_rows(vl.values[keep].astype(np.float64), cv.values[keep].astype(np.float64)).mean()
    from bowlrp.features import _opencv

    monkeypatch.setattr(_opencv, "window_ratio", lambda bin_size, window_size: np.ones((4, 4)))
    raw = DenseSift(backend="opencv", max_rows=None).extract(_grey_image(96, 128))
    uncorrected = _pearson_rows(vl.values[keep].astype(np.float64), raw.values[keep].astype(np.float64)).mean()
    assert corrected > uncorrected + 0.002, (corrected, uncorrected)


# -- contrast, resizing, degenerate images, inputs ----------------------------------------------
@pytest.mark.parametrize("backend", ["vlfeat", "opencv"])
def test_contrast_threshold_zeroes_low_contrast_descriptors(backend):
    rng = np.random.default_rng(0)
    image = 0.5 + 0.2 * rng.standard_normal((60, 120)).astype(np.float32)
    yy, xx = np.mgrid[0:60, 0:60]
    image[:, :60] = 0.3 + 0.002 * (xx + yy)  # a faint ramp on the left half (8-bit OpenCV still sees it)
    kept = DenseSift(bin_sizes=(4,), backend=backend, max_rows=None, contrast_threshold=0.0).extract(image)
    zeroed = DenseSift(bin_sizes=(4,), backend=backend, max_rows=None).extract(image)
    support = zeroed.support_boxes()
    left = support[:, 2] < 58  # support ends well inside the faint half
    right = support[:, 0] > 62
    assert left.sum() > 10 and right.sum() > 10
    assert kept.values[left].any(axis=1).all()  # without the threshold they exist ...
    assert not zeroed.values[left].any()  # ... and the threshold zeroes them, keeping the rows
    assert zeroed.values[right].any(axis=1).all()
    assert len(zeroed) == len(kept)


def test_resize_to_max_rows_is_an_area_average_and_geometry_is_consistent():
    rng = np.random.default_rng(1)
    big = rng.random((120, 84)).astype(np.float32)
    big = gaussian_filter(big, 1.0)
    block_mean = big.reshape(60, 2, 42, 2).mean(axis=(1, 3))  # exact area average for a factor 2
    out = DenseSift(backend="vlfeat", max_rows=60).extract(big)
    ref = DenseSift(backend="vlfeat", max_rows=None).extract(block_mean)
    assert out.image_shape == (120, 84) and out.work_shape == (60, 42)
    assert out.scale_factor == pytest.approx(0.5)
    np.testing.assert_array_equal(out.centers, ref.centers)
    np.testing.assert_allclose(out.values, ref.values, atol=0.05)
    # centres lie on the work image; a descriptor's bin centres stay inside it
    half = 1.5 * out.bin_sizes
    assert (out.centers[:, 0] - half >= 0).all() and (out.centers[:, 0] + half <= 41).all()
    assert (out.centers[:, 1] - half >= 0).all() and (out.centers[:, 1] + half <= 59).all()
    # never enlarged
    small = DenseSift(backend="vlfeat", max_rows=480).extract(block_mean)
    assert small.work_shape == small.image_shape == (60, 42) and small.scale_factor == 1.0
    # non-integer factor keeps the aspect ratio
    odd = DenseSift(backend="vlfeat", max_rows=50).extract(big)
    assert odd.work_shape == (50, round(84 * 50 / 120))


@pytest.mark.parametrize("backend", ["vlfeat", "opencv"])
def test_too_small_images(backend):
    tiny = DenseSift(backend=backend).extract(np.full((5, 5), 0.3, dtype=np.float32))
    assert isinstance(tiny, DescriptorSet) and len(tiny) == 0
    assert tiny.values.shape == (0, 128) and tiny.centers.shape == (0, 2)
    assert tiny.bin_sizes.shape == (0,) and tiny.scales.shape == (0,)
    assert tiny.work_shape == tiny.image_shape == (5, 5)
    # 25 x 25, last bin centre <= 24: bin size 4 has origins 9, 12 (centres 15, 18); bin size 6 has
    # origin 6 only (centre 15); bin size 8 (origin 3, 3 + 24 > 24) and 10 (0 + 30 > 24) have none
    rng = np.random.default_rng(2)
    partial = DenseSift(backend=backend).extract(rng.random((25, 25)).astype(np.float32))
    assert partial.scales.tolist() == [0, 0, 0, 0, 1]
    assert partial.centers.tolist() == [[15, 15], [18, 15], [15, 18], [18, 18], [15, 15]]
    assert partial.bin_sizes.tolist() == [4, 4, 4, 4, 6]


def test_grey_rgb_and_uint8_inputs():
    rgb = _rgb_image(60, 70)
    sift = DenseSift(backend="vlfeat", max_rows=None)
    from_rgb = sift.extract(rgb)
    from_grey = sift.extract((rgb.astype(np.float64) @ MATLAB_RGB2GRAY).astype(np.float32))
    np.testing.assert_array_equal(from_rgb.centers, from_grey.centers)
    np.testing.assert_allclose(from_rgb.values, from_grey.values, atol=0.5)
    grey = _grey_image(50, 50)
    np.testing.assert_array_equal(sift.extract(grey[..., None]).values, sift.extract(grey).values)
    as_uint8 = np.round(grey * 255).astype(np.uint8)
    np.testing.assert_allclose(sift.extract(as_uint8).values, sift.extract(as_uint8 / np.float32(255)).values, atol=1e-4)
    for bad in (np.zeros((10, 10, 4)), np.zeros((0, 10)), np.zeros(10), np.full((20, 20), np.nan)):
        with pytest.raises(ImageError):
            sift.extract(bad)


# -- backends and state ----------------------------------------------------------------------
def test_backend_resolution(monkeypatch, caplog):
    assert available_backends() == ["vlfeat", "opencv"]
    assert resolve_backend("auto") == "vlfeat"
    assert resolve_backend("opencv") == "opencv"
    with pytest.raises(BowlrpError):
        resolve_backend("sift-gpu")
    monkeypatch.setattr(dsift_module, "cyvlfeat_available", lambda: False)
    monkeypatch.setattr(dsift_module, "_fallback_notice_given", False)
    with caplog.at_level(logging.WARNING, logger=dsift_module.__name__):
        assert resolve_backend("auto") == "opencv"
        assert resolve_backend("auto") == "opencv"
    notices = [r for r in caplog.records if r.name == dsift_module.__name__]
    assert len(notices) == 1 and "\n" not in notices[0].getMessage()
    with pytest.raises(BowlrpError):
        resolve_backend("vlfeat")
    sift = DenseSift().fit()
    assert sift.backend_ == "opencv"


@pytest.mark.parametrize("backend", ["vlfeat", "opencv"])
def test_state_round_trip(tmp_path, backend):
    sift = DenseSift(bin_sizes=(4, 8), step=4, backend="auto" if backend == "vlfeat" else backend, max_rows=64,
                     contrast_threshold=0.01)
    meta, arrays = sift.get_state()
    assert meta["params"]["backend"] == backend  # the resolved backend is what is stored
    save_stages(tmp_path, meta, arrays)
    loaded_meta, loaded_arrays = load_stages(tmp_path)
    loaded_meta.pop("format_version")
    clone = DenseSift.from_state(loaded_meta, loaded_arrays)
    assert clone.get_params() == {**sift.get_params(), "backend": backend}
    image = _rgb_image(80, 100)
    a, b = sift.extract(image), clone.extract(image)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert a.work_shape == b.work_shape == (64, 80)
