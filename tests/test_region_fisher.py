"""Incremental region perturbation of a Fisher-vector model (Section 3.4; Appendix C.2): patched dense
SIFT equals a full extraction, and incremental curves equal full-recompute curves."""
from __future__ import annotations

import numpy as np
import pytest

from bowlrp.analysis.region_perturbation import PerturbationConfig, perturbation_curves, region_grid
from bowlrp.data import load_image, open_dataset
from bowlrp.errors import SkipLog
from bowlrp.features._vlfeat import frame_origins
from bowlrp.features.dsift import DenseSift, available_backends, phow_bound_min, to_grey
from bowlrp.features.dsift_patch import DenseSiftPatcher, PatchedSift, patchable
from bowlrp.features.sift_planes import SiftPlanes
from bowlrp.parallel import ParallelOptions
from bowlrp.pipeline import PipelineConfig, train_model

pytestmark = pytest.mark.skipif("vlfeat" not in available_backends(), reason="patching needs the VLFeat backend")

CLASSES = ["horse", "boat"]
# VLFeat's triangular filter runs on prefix sums over the whole image, so a full extraction of the
# perturbed image moves even untouched descriptors by ~1e-3 of their norm 512: compare relative to it
NORM = 512.0


@pytest.fixture(scope="module")
def fv_model(small_toyvoc):
    ds = open_dataset(small_toyvoc, classes=CLASSES)
    train = ds.split("trainval")
    labels = np.stack([s.labels for s in train])
    config = PipelineConfig(encoder="fisher", kernel="linear", n_words=4, max_descriptors=20000, per_scale=True)
    return train_model(config, [s.path for s in train], labels, CLASSES, SkipLog(), ParallelOptions(progress=False))


@pytest.fixture(scope="module")
def image(small_toyvoc):
    """The first test image showing a boat: the "boat" curves below must have something to lose."""
    ds = open_dataset(small_toyvoc, classes=CLASSES)
    return load_image(next(s for s in ds.split("test") if s.labels[CLASSES.index("boat")] == 1).path)


def _fills(h: int, w: int) -> list[tuple[int, int, int, int]]:
    # corners, edges (clipped regions) and the inside
    return [(y0, min(h, y0 + 9), x0, min(w, x0 + 9))
            for y0, x0 in [(0, 0), (h - 5, w - 7), (h // 2, 0), (0, w - 9), (h // 2, w // 2), (h // 3, w // 2 + 4)]]


@pytest.mark.parametrize("fast", [True, False], ids=["planes", "crops"])
def test_patched_descriptors_equal_a_full_extraction(image, fast):
    sift = DenseSift(backend="vlfeat", fast=fast)
    h, w = image.shape[:2]
    base = sift.extract(image)
    state = PatchedSift.start(DenseSiftPatcher(sift, (h, w)), to_grey(image))
    assert (state.planes is not None) == fast  # fast mode reads planes, the Gaussian window crops
    values, current = base.values.copy(), image.copy()
    fill = np.random.default_rng(0).uniform(size=image.shape).astype(image.dtype)
    for y0, y1, x0, x1 in _fills(h, w):
        current[y0:y1, x0:x1] = fill[y0:y1, x0:x1]
        which, new = state.fill(to_grey(fill), (y0, y1, x0, x1))
        values[which] = new
    full = sift.extract(current)
    assert np.abs(full.values - base.values).max() > 10  # the fills changed descriptors
    for scale in range(len(sift.bin_sizes)):  # every scale, each with its own bin size and smoothing
        mine = full.scales == scale
        assert np.abs(full.values[mine] - values[mine]).max() <= 2e-5 * NORM


def test_sift_planes_equal_vlfeat_on_the_whole_image(image):
    sift = DenseSift(backend="vlfeat")
    grey = to_grey(image)
    full = sift.extract(image)
    ours = PatchedSift.start(DenseSiftPatcher(sift, grey.shape), grey).descriptors()
    for field in ("centers", "bin_sizes", "scales"):  # the same frames in the same order
        np.testing.assert_array_equal(getattr(ours, field), getattr(full, field))
    assert ours.work_shape == full.work_shape and ours.image_shape == full.image_shape
    assert np.abs(ours.values - full.values).max() <= 2e-5 * NORM
    for scale, size in enumerate(sift.bin_sizes):
        bound = phow_bound_min(size, max(sift.bin_sizes))
        ys, xs = (frame_origins(n, bound, size, sift.step) for n in grey.shape)
        ours = SiftPlanes(grey, size, sift.magnif, sift.window_size, sift.contrast_threshold).descriptors(ys, xs)
        theirs = full.values[full.scales == scale]
        assert ((ours == 0).all(axis=1) == (theirs == 0).all(axis=1)).all()  # the same contrast cut
        # VLFeat's float32 prefix sums cost low-contrast descriptors ~1e-5 of their norm; ours run in float64
        assert np.abs(ours - theirs).max() <= 2e-5 * NORM


def test_sift_planes_saturate_as_vlfeat_on_a_straight_edge():
    # one axis-aligned edge: a descriptor with few strong entries reaches 255 after the clamp-and-renormalise
    grey = np.zeros((60, 80), dtype=np.float32)
    grey[:, 40:] = 1.0
    sift = DenseSift(backend="vlfeat")
    full = sift.extract(grey)
    assert full.values.max() == 255.0
    ours = PatchedSift.start(DenseSiftPatcher(sift, grey.shape), grey).descriptors()
    assert np.abs(ours.values - full.values).max() <= 2e-5 * NORM


def test_plane_updates_equal_planes_of_the_changed_image(image):
    sift = DenseSift(backend="vlfeat")
    h, w = image.shape[:2]
    grey, fill = to_grey(image), np.random.default_rng(1).uniform(size=(h, w)).astype(np.float32)
    for size in (4, 10):
        planes = SiftPlanes(grey, size, sift.magnif, sift.window_size, sift.contrast_threshold)
        current = grey.copy()
        for y0, y1, x0, x1 in _fills(h, w):
            current[y0:y1, x0:x1] = fill[y0:y1, x0:x1]
            planes.update(current, (y0, y1, x0, x1))
        fresh = SiftPlanes(current, size, sift.magnif, sift.window_size, sift.contrast_threshold)
        np.testing.assert_allclose(planes.smoothed, fresh.smoothed, rtol=0, atol=1e-6)
        np.testing.assert_allclose(planes.gradients, fresh.gradients, rtol=0, atol=1e-6)
        # running sums started elsewhere round differently, nothing more
        np.testing.assert_allclose(planes.binned, fresh.binned, rtol=0, atol=1e-5 * max(1.0, fresh.binned.max()))
        assert np.abs(planes.binned - SiftPlanes(grey, size, sift.magnif, sift.window_size, 0.0).binned).max() > 0.1


def _curves(model, image, incremental: bool) -> dict[str, np.ndarray]:
    config = PerturbationConfig(steps=12, repetitions=2, seed=3)
    _, n = region_grid(image.shape[:2], config.region)
    orders = {"grid": np.arange(n)[::-1].copy(), "random": None}
    return perturbation_curves(model, image, "boat", orders, config, np.random.default_rng(5), incremental)


def test_incremental_curves_equal_full_recomputation(fv_model, image):
    assert fv_model.region_scorer(image) is not None
    fast, slow = _curves(fv_model, image, True), _curves(fv_model, image, False)
    for name in slow:
        assert np.ptp(slow[name]) > 1e-3  # the curve moves
        np.testing.assert_allclose(fast[name], slow[name], rtol=0, atol=1e-5)


def test_shrunk_images_fall_back_to_full_recomputation(fv_model, image):
    sift = fv_model.features.sift
    saved = sift.max_rows
    sift.max_rows = image.shape[0] - 20  # the work image is now smaller than the image
    try:
        assert not patchable(sift, image.shape[:2]) and fv_model.region_scorer(image) is None
        curves = _curves(fv_model, image, True)
        config = PerturbationConfig(steps=12, repetitions=2, seed=3)
        _, n = region_grid(image.shape[:2], config.region)
        # the fallback scores every perturbed image in full: its last step equals score_images of that image
        rng = np.random.default_rng(5)
        fill = rng.uniform(0.0, 1.0, size=image.shape).astype(image.dtype)
        ids, _ = region_grid(image.shape[:2], config.region)
        position = np.empty(n, np.int64)
        position[np.arange(n)[::-1]] = np.arange(n)
        last = np.where((position[ids] < 12)[..., None], fill, image)
        expected = fv_model.score_images([last])[0, fv_model.class_index("boat")]
        np.testing.assert_allclose(curves["grid"][0, -1], expected, atol=1e-9)
    finally:
        sift.max_rows = saved
