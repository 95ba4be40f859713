"""Incremental region perturbation of a Fisher-vector model (Section 3.4; Appendix C.2): patched dense
SIFT equals a full extraction, and incremental curves equal full-recompute curves."""
from __future__ import annotations

import numpy as np
import pytest

from bowlrp.analysis.region_perturbation import PerturbationConfig, perturbation_curves, region_grid
from bowlrp.data import load_image, open_dataset
from bowlrp.errors import SkipLog
from bowlrp.features.dsift import DenseSift, available_backends, to_grey
from bowlrp.features.dsift_patch import DenseSiftPatcher, patchable
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
    return load_image(open_dataset(small_toyvoc).split("test")[0].path)


def test_patched_descriptors_equal_a_full_extraction(image):
    sift = DenseSift(backend="vlfeat")
    h, w = image.shape[:2]
    patcher = DenseSiftPatcher(sift, (h, w))
    base = sift.extract(image)
    values, current = base.values.copy(), image.copy()
    fill = np.random.default_rng(0).uniform(size=image.shape).astype(image.dtype)
    # corners, edges (clipped regions) and the inside
    for y0, x0 in [(0, 0), (h - 5, w - 7), (h // 2, 0), (0, w - 9), (h // 2, w // 2), (h // 3, w // 2 + 4)]:
        box = (y0, min(h, y0 + 9), x0, min(w, x0 + 9))
        current[box[0]:box[1], box[2]:box[3]] = fill[box[0]:box[1], box[2]:box[3]]
        grey = to_grey(current)
        for scale, rows, cols in patcher.touched(box):
            values[patcher.indices(scale, rows, cols)] = patcher.recompute(grey, scale, rows, cols)
    full = sift.extract(current)
    assert np.abs(full.values - base.values).max() > 10  # the fills changed descriptors
    for scale in range(len(sift.bin_sizes)):  # every scale, each with its own bin size and smoothing
        mine = full.scales == scale
        assert np.abs(full.values[mine] - values[mine]).max() <= 1e-5 * NORM


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
