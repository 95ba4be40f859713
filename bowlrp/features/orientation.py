"""Dominant gradient orientation of a keypoint, as VLFeat's ``vl_sift_calc_keypoint_orientations``.

Rotation-normalised SIFT (the shapes task of Section 2.4.3 rotates "the SIFT descriptor mask
relative to the main gradient") needs one angle per frame. For a frame at ``(x, y)`` with scale
``sigma`` (bin size ``3 sigma``) on an image already smoothed to about ``sigma``:

* gradients by central differences (one-sided at the border), angle ``atan2(gy, gx)`` in
  ``[0, 2 pi)``, measured from ``+x`` towards ``+y`` (rows grow downwards: clockwise on screen);
* a 36-bin histogram of the angles over the pixels within radius ``W = max(floor(3 sigma_w), 1)``
  of the rounded centre, ``sigma_w = 1.5 sigma``, weighted by magnitude times
  ``exp(-r^2 / (2 sigma_w^2))`` and split linearly between the two nearest bins (bin ``i``
  centred at ``(i + 0.5) * 10 deg``);
* the histogram smoothed six times with a circular ``[1, 1, 1] / 3`` box, in place, in VLFeat's order;
* the highest bin's peak, refined by a parabola through it and its neighbours.

VLFeat keeps every peak above 80 % of the highest (up to four angles per frame); here a frame gets
only the main one, so every grid frame stays exactly one descriptor. A frame without any gradient
gets angle 0.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

N_ORIENTATION_BINS = 36
WINDOW_FACTOR = 1.5  # sigma_w = 1.5 sigma
SMOOTHING_PASSES = 6


@njit(cache=True)
def _histograms(magnitude, angle, centers, sigma):  # pragma: no cover - compiled
    rows, cols = magnitude.shape
    n = centers.shape[0]
    hist = np.zeros((n, N_ORIENTATION_BINS))
    sigma_w = WINDOW_FACTOR * sigma
    half = max(int(math.floor(3.0 * sigma_w)), 1)
    for f in range(n):
        x, y = centers[f, 0], centers[f, 1]
        xi, yi = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
        for ys in range(max(-half, -yi), min(half, rows - 1 - yi) + 1):
            for xs in range(max(-half, -xi), min(half, cols - 1 - xi) + 1):
                dx, dy = xi + xs - x, yi + ys - y
                r2 = dx * dx + dy * dy
                if r2 >= half * half + 0.6:
                    continue
                weight = math.exp(-r2 / (2.0 * sigma_w * sigma_w)) * magnitude[yi + ys, xi + xs]
                fbin = N_ORIENTATION_BINS * angle[yi + ys, xi + xs] / (2.0 * math.pi)
                b = int(math.floor(fbin - 0.5))
                rbin = fbin - b - 0.5
                hist[f, b % N_ORIENTATION_BINS] += (1.0 - rbin) * weight
                hist[f, (b + 1) % N_ORIENTATION_BINS] += rbin * weight
    return hist


def _smooth(hist: np.ndarray) -> np.ndarray:
    """VLFeat's in-place circular box filter, applied ``SMOOTHING_PASSES`` times to every row."""
    h = hist.copy()
    for _ in range(SMOOTHING_PASSES):
        prev = h[:, -1].copy()
        first = h[:, 0].copy()
        for i in range(N_ORIENTATION_BINS - 1):
            new = (prev + h[:, i] + h[:, i + 1]) / 3.0
            prev = h[:, i].copy()
            h[:, i] = new
        h[:, -1] = (prev + h[:, -1] + first) / 3.0
    return h


def dominant_orientations(smoothed: np.ndarray, centers: np.ndarray, sigma: float) -> np.ndarray:
    """Main gradient orientation of every frame.

    Parameters
    ----------
    smoothed : (H, W) float
        Grey image smoothed to about ``sigma``.
    centers : (N, 2) float
        Frame centres ``(x, y)``, pixels.
    sigma : float
        Keypoint scale (the SIFT bin size is ``3 sigma``).

    Returns
    -------
    (N,) float32
        Angles in radians, ``[0, 2 pi)``, from ``+x`` towards ``+y``.
    """
    centers = np.ascontiguousarray(centers, dtype=np.float64).reshape(-1, 2)
    if len(centers) == 0:
        return np.zeros(0, dtype=np.float32)
    gy, gx = np.gradient(np.asarray(smoothed, dtype=np.float64))
    magnitude = np.hypot(gx, gy)
    angle = np.mod(np.arctan2(gy, gx), 2.0 * np.pi)
    hist = _smooth(_histograms(magnitude, angle, centers, float(sigma)))
    top = np.argmax(hist, axis=1)
    rows = np.arange(len(hist))
    h0 = hist[rows, top]
    hm = hist[rows, (top - 1) % N_ORIENTATION_BINS]
    hp = hist[rows, (top + 1) % N_ORIENTATION_BINS]
    curvature = hp + hm - 2.0 * h0
    offset = np.where(curvature < 0, -0.5 * (hp - hm) / np.where(curvature < 0, curvature, -1.0), 0.0)
    theta = 2.0 * np.pi * (top + offset + 0.5) / N_ORIENTATION_BINS
    theta = np.where(h0 > 0, np.mod(theta, 2.0 * np.pi), 0.0)
    return theta.astype(np.float32)
