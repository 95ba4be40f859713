"""Rotation-normalised SIFT (``orientation="dominant"``): angles against VLFeat's own orientation
assignment, descriptors of both backends against ``vl_sift``, and rotation invariance."""
from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import cv2

from bowlrp.features import DenseSift
from bowlrp.features._vlfeat import vlfeat_sift_oriented
from bowlrp.features.dsift import vl_imsmooth
from bowlrp.features.orientation import dominant_orientations

from conftest import require_cyvlfeat

cyvlfeat_sift = require_cyvlfeat("cyvlfeat.sift")


def _camera(side: int = 160) -> np.ndarray:
    return cv2.resize(skimage.data.camera(), (side, side), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _grid(lo: float, hi: float, step: float) -> np.ndarray:
    r = np.arange(lo, hi, step)
    yy, xx = np.meshgrid(r, r, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def _angle_gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(np.angle(np.exp(1j * (np.asarray(a, np.float64) - np.asarray(b, np.float64)))))


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_main_orientation_is_one_of_vlfeats(sigma):
    """VLFeat returns every histogram peak above 80 % of the highest; ours must be one of them."""
    image = _camera()
    centers = _grid(15, 145, 5.0)
    ours = dominant_orientations(vl_imsmooth(image, np.sqrt(sigma**2 - 0.25)), centers, sigma)
    frames = np.column_stack([centers[:, 1], centers[:, 0], np.full(len(centers), sigma),
                              np.zeros(len(centers))]).astype(np.float32)
    vl = cyvlfeat_sift.sift(image, frames=frames, force_orientations=True)
    gaps = []
    for (x, y), angle in zip(centers, ours):
        theirs = vl[(vl[:, 0] == y) & (vl[:, 1] == x), 3]
        gaps.append(_angle_gap(theirs, angle).min())
    gaps = np.degrees(gaps)
    # VLFeat reads gradients from its own scale-space level (sigma 2.02 / 3.2 here), we from sigma
    assert np.median(gaps) < 1.0 and np.mean(gaps < 5.0) > 0.95, (np.median(gaps), np.mean(gaps < 5.0))


def test_orientation_of_a_rotated_edge():
    """A step edge whose gradient points along angle phi (y down) gets angle phi."""
    yy, xx = np.mgrid[0:64, 0:64].astype(np.float64)
    for phi in np.radians([0.0, 30.0, 100.0, 200.0, 290.0]):
        image = 1.0 / (1.0 + np.exp(-((xx - 32) * np.cos(phi) + (yy - 32) * np.sin(phi)) / 1.5))
        angle = dominant_orientations(image, np.array([[32.0, 32.0]]), 2.0)[0]
        assert np.degrees(_angle_gap(angle, phi)) < 2.0, (np.degrees(phi), np.degrees(angle))
    assert dominant_orientations(np.zeros((30, 30)), np.array([[15.0, 15.0]]), 2.0)[0] == 0.0


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_opencv_rotated_descriptors_match_vl_sift(sigma):
    from bowlrp.features._opencv import opencv_sift_oriented

    image = _camera()
    centers = _grid(20, 140, 5.0)
    level = vl_imsmooth(image, np.sqrt(sigma**2 - 0.25))
    angles = dominant_orientations(level, centers, sigma)
    vl = vlfeat_sift_oriented(image, centers, sigma, angles)
    cv = opencv_sift_oriented(level, centers, sigma, angles)
    keep = vl.any(axis=1) & cv.any(axis=1)
    assert keep.mean() > 0.95
    corr = _pearson_rows(vl[keep].astype(np.float64), cv[keep].astype(np.float64))
    assert corr.mean() > 0.99, corr.mean()
    # the wrapper keeps the input order although cyvlfeat sorts frames internally
    flipped = vlfeat_sift_oriented(image, centers[::-1], sigma, angles[::-1])
    np.testing.assert_array_equal(flipped[::-1], vl)


@pytest.mark.parametrize("backend", ["vlfeat", "opencv"])
def test_dominant_mode_is_rotation_invariant(backend):
    """Turning a centred patch by 90 degrees leaves its dominant-mode descriptor (nearly) unchanged,
    while the upright descriptor changes."""
    image = _camera(161)
    turned = np.ascontiguousarray(np.rot90(image))
    centre = 80.0  # the rotation centre; the descriptor at it sees the same pixels, turned
    results = {}
    for orientation in ("upright", "dominant"):
        sift = DenseSift(bin_sizes=(6,), step=1, backend=backend, max_rows=None, orientation=orientation,
                         contrast_threshold=0.0)
        a, b = sift.extract(image), sift.extract(turned)
        ia = np.flatnonzero((a.centers[:, 0] == centre) & (a.centers[:, 1] == centre))
        ib = np.flatnonzero((b.centers[:, 0] == centre) & (b.centers[:, 1] == centre))
        assert len(ia) == len(ib) == 1
        results[orientation] = _pearson_rows(a.values[ia].astype(np.float64), b.values[ib].astype(np.float64))[0]
        if orientation == "dominant":
            # np.rot90 turns the picture anticlockwise on screen: angles (clockwise) drop by 90 degrees
            gap = _angle_gap(a.angles[ia] - np.pi / 2, b.angles[ib])[0]
            assert np.degrees(gap) < 3.0
        else:
            assert not a.angles.any()
    assert results["dominant"] > 0.97 and results["upright"] < 0.8, results


def test_dominant_mode_geometry_and_state():
    sift = DenseSift(bin_sizes=(6, 9), step=6, max_rows=None, orientation="dominant")
    out = sift.extract(_camera(102))
    upright = DenseSift(bin_sizes=(6, 9), step=6, max_rows=None).extract(_camera(102))
    np.testing.assert_array_equal(out.centers, upright.centers)  # same grid, only turned
    assert out.angles.dtype == np.float32 and (out.angles >= 0).all() and (out.angles < 2 * np.pi).all()
    boxes = out.support_boxes()
    half = (boxes[:, 2] - boxes[:, 0]) / 2
    turn = np.abs(np.cos(out.angles)) + np.abs(np.sin(out.angles))
    np.testing.assert_allclose(half, 2.5 * out.bin_sizes * turn - 1, rtol=1e-5)
    assert DenseSift.from_state(*sift.get_state()).get_params()["orientation"] == "dominant"
    with pytest.raises(Exception, match="orientation"):
        DenseSift(orientation="sideways").fit()
