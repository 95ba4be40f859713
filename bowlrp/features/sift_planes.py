"""VLFeat's fast dense SIFT as stored per-pixel planes, so a changed pixel box updates only nearby values.

``vl_dsift`` in fast mode (:mod:`._vlfeat` has the geometry) computes, for one scale of bin size ``B``:

1. the smoothed grey image ``S`` (:func:`~bowlrp.features.dsift.vl_imsmooth`, ``sigma = B / magnif``);
2. per pixel the gradient of ``S`` (central differences, one-sided at the border), its angle split
   linearly between the two nearest of 8 orientation bins: the *orientation planes* ``G (8, H, W)``;
3. each plane correlated with the unit-height triangle ``1 - |d| / B`` along both axes, border pixels
   continued: the *binned planes* ``T (8, H, W)``;
4. descriptor entry ``(t, bx, by)`` of the frame with origin ``o`` (top-left bin centre) is
   ``w_bx w_by T[t, o_y + by B, o_x + bx B]`` (``w``: the Gaussian window's mean per bin), then its
   mass, L2 normalisation, clamp at 0.2, normalisation again, ×512, capped at 255 (cyvlfeat's
   ``min(512 x, 255)``: a descriptor with fewer than four strong entries, e.g. on one straight
   axis-aligned edge, saturates there).

:class:`SiftPlanes` keeps ``S``, ``G`` and ``T`` of one scale. Filling a pixel box changes ``S`` in the
box widened by the smoothing radius ``h``, ``G`` one pixel further, ``T`` ``B - 1`` pixels further
still; :meth:`SiftPlanes.update` recomputes exactly those windows, and :meth:`SiftPlanes.descriptors`
reads any frames back. Per region-perturbation step this is a few thousand pixels per plane instead
of a crop wide enough for whole descriptors (what :class:`~bowlrp.features.dsift_patch.DenseSiftPatcher`
would otherwise hand to VLFeat).

The angle and magnitude use VLFeat's own approximations (``vl_fast_atan2_f``: a cubic in the
octant ratio, error up to 6e-3 rad; ``vl_fast_sqrt_f``: two Newton steps on the bit-level initial
guess), so a recomputed descriptor agrees with ``vl_dsift``'s to float rounding (VLFeat sums its
triangles through prefix sums, we through running sums in float64; tests compare the two).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._vlfeat import DESCRIPTOR_SIZE, NUM_ORIENTATIONS, NUM_SPATIAL_BINS, bin_window_means
from .dsift import vl_imsmooth

_PI = math.pi


@njit(cache=True, nogil=True, inline="always")
def _fast_resqrt(x, buf, bits):  # pragma: no cover - compiled
    # vl_fast_resqrt_f: the bit-level initial guess 0x5f3759df - (i >> 1), then two Newton steps
    half = np.float32(0.5) * x
    buf[0] = x
    bits[0] = np.int32(0x5F3759DF) - (bits[0] >> 1)
    y = buf[0]
    y = y * (np.float32(1.5) - half * y * y)
    y = y * (np.float32(1.5) - half * y * y)
    return y


@njit(cache=True, nogil=True, inline="always")
def _fast_sqrt(x, buf, bits):  # pragma: no cover - compiled
    if x < np.float32(1e-8):
        return np.float32(0.0)
    return x * _fast_resqrt(x, buf, bits)


@njit(cache=True, nogil=True, inline="always")
def _fast_atan2(y, x):  # pragma: no cover - compiled
    abs_y = abs(y) + np.float32(1.19209290e-07)
    if x >= 0:
        r = (x - abs_y) / (x + abs_y)
        angle = np.float32(_PI / 4)
    else:
        r = (x + abs_y) / (abs_y - x)
        angle = np.float32(3 * _PI / 4)
    angle += (np.float32(0.1821) * r * r - np.float32(0.9675)) * r
    return -angle if y < 0 else angle


@njit(cache=True, nogil=True)
def _orientation_planes(smoothed, y0, y1, x0, x1, planes):  # pragma: no cover - compiled
    """``planes[:, y0:y1, x0:x1]`` from ``smoothed`` (step 2 of the module docstring)."""
    height, width = smoothed.shape
    buf = np.empty(1, dtype=np.float32)
    bits = buf.view(np.int32)
    two_pi = np.float32(2 * _PI)
    per_radian = NUM_ORIENTATIONS / (2 * _PI)  # a double, as in VLFeat's expression
    for y in range(y0, y1):
        for x in range(x0, x1):
            if y == 0:
                gy = smoothed[1, x] - smoothed[0, x] if height > 1 else np.float32(0.0)
            elif y == height - 1:
                gy = smoothed[y, x] - smoothed[y - 1, x]
            else:
                gy = np.float32(0.5) * (smoothed[y + 1, x] - smoothed[y - 1, x])
            if x == 0:
                gx = smoothed[y, 1] - smoothed[y, 0] if width > 1 else np.float32(0.0)
            elif x == width - 1:
                gx = smoothed[y, x] - smoothed[y, x - 1]
            else:
                gx = np.float32(0.5) * (smoothed[y, x + 1] - smoothed[y, x - 1])
            angle = _fast_atan2(gy, gx)
            mod = _fast_sqrt(gx * gx + gy * gy, buf, bits)
            while angle > two_pi:
                angle -= two_pi
            while angle < np.float32(0.0):
                angle += two_pi
            nt = np.float32(angle * per_radian)
            bint = int(math.floor(nt))
            rbint = nt - np.float32(bint)
            for t in range(NUM_ORIENTATIONS):
                planes[t, y, x] = 0.0
            planes[bint % NUM_ORIENTATIONS, y, x] = (np.float32(1.0) - rbint) * mod
            planes[(bint + 1) % NUM_ORIENTATIONS, y, x] = rbint * mod


@njit(cache=True, nogil=True)
def _triangle_region(src, y0, y1, x0, x1, size, out):  # pragma: no cover - compiled
    """``out[:, y0:y1, x0:x1]``: ``src`` correlated with ``1 - |d| / size`` along both axes, border
    continued (step 3). The triangle is two boxes of ``size`` taps, each a running sum in float64:
    ``(1/size) sum_j b[y - j]`` with ``b[y'] = sum_i src[clamp(y' + i)]``, ``i, j = 0..size-1``."""
    planes, height, width = src.shape
    xa, xb = max(0, x0 - size + 1), min(width, x1 + size - 1)
    tmp = np.empty((planes, y1 - y0, xb - xa), dtype=np.float64)
    ring = np.empty(size, dtype=np.float64)
    scale = 1.0 / size
    for t in range(planes):
        for x in range(xa, xb):  # along y
            first = y0 - size + 1
            b = 0.0
            for i in range(size):
                b += src[t, min(max(first + i, 0), height - 1), x]
            ring[0] = b
            window = b
            for k in range(1, size):  # b at first + k
                y = first + k
                b += src[t, min(max(y + size - 1, 0), height - 1), x] - src[t, min(max(y - 1, 0), height - 1), x]
                ring[k] = b
                window += b
            tmp[t, 0, x - xa] = window * scale
            for y in range(y0 + 1, y1):
                b += src[t, min(max(y + size - 1, 0), height - 1), x] - src[t, min(max(y - 1, 0), height - 1), x]
                slot = (y - first) % size
                window += b - ring[slot]
                ring[slot] = b
                tmp[t, y - y0, x - xa] = window * scale
        for y in range(y0, y1):  # along x, on tmp (holds every column the clamp can reach)
            row = tmp[t, y - y0]
            first = x0 - size + 1
            b = 0.0
            for i in range(size):
                b += row[min(max(first + i, 0), width - 1) - xa]
            ring[0] = b
            window = b
            for k in range(1, size):
                x = first + k
                b += row[min(max(x + size - 1, 0), width - 1) - xa] - row[min(max(x - 1, 0), width - 1) - xa]
                ring[k] = b
                window += b
            out[t, y, x0] = window * scale
            for x in range(x0 + 1, x1):
                b += row[min(max(x + size - 1, 0), width - 1) - xa] - row[min(max(x - 1, 0), width - 1) - xa]
                slot = (x - first) % size
                window += b - ring[slot]
                ring[slot] = b
                out[t, y, x] = window * scale


@njit(cache=True, nogil=True)
def _sample_descriptors(binned, ys, xs, size, window, threshold, out):  # pragma: no cover - compiled
    """Step 4 for the frames ``ys x xs`` (row-major): ``out (len(ys) * len(xs), 128)`` float32,
    zero where the raw mass is under ``threshold``."""
    buf = np.empty(1, dtype=np.float32)
    bits = buf.view(np.int32)
    raw = np.empty(DESCRIPTOR_SIZE, dtype=np.float32)
    norm_constant = np.float32((3 * size + 1) ** 2)
    n = 0
    for oy in ys:
        for ox in xs:
            mass = np.float32(0.0)
            for by in range(NUM_SPATIAL_BINS):
                for bx in range(NUM_SPATIAL_BINS):
                    w = window[by] * window[bx]
                    for t in range(NUM_ORIENTATIONS):
                        v = np.float32(w * binned[t, oy + by * size, ox + bx * size])
                        raw[t + NUM_ORIENTATIONS * bx + NUM_ORIENTATIONS * NUM_SPATIAL_BINS * by] = v
                        mass += v
            if mass / norm_constant < threshold:
                out[n, :] = 0.0
                n += 1
                continue
            for rep in range(2):  # L2 normalise, clamp at 0.2, normalise again (VLFeat's eps in the norm)
                total = np.float32(0.0)
                for d in range(DESCRIPTOR_SIZE):
                    total += raw[d] * raw[d]
                norm = _fast_sqrt(total, buf, bits) + np.float32(1.19209290e-07)
                for d in range(DESCRIPTOR_SIZE):
                    raw[d] = raw[d] / norm
                    if rep == 0 and raw[d] > np.float32(0.2):
                        raw[d] = np.float32(0.2)
            for d in range(DESCRIPTOR_SIZE):
                out[n, d] = min(raw[d] * np.float32(512.0), np.float32(255.0))
            n += 1


class SiftPlanes:
    """The planes ``S``, ``G``, ``T`` of one fast dense-SIFT scale of a changing grey image.

    Parameters
    ----------
    grey : (H, W) float32
        The image (the work image of :class:`~bowlrp.features.dsift.DenseSift`).
    bin_size : int
        ``B``, pixels.
    magnif : float
        Smoothing sigma is ``B / magnif``.
    window_size : float
        Gaussian window sigma in bins.
    contrast_threshold : float
        Descriptors with a raw mass below it come back as zeros.
    """

    def __init__(self, grey: np.ndarray, bin_size: int, magnif: float, window_size: float,
                 contrast_threshold: float) -> None:
        self.size = int(bin_size)
        self.sigma = self.size / float(magnif)
        self.radius = int(math.ceil(4.0 * self.sigma)) if self.sigma >= 0.01 else 0
        self.window = bin_window_means(self.size, window_size).astype(np.float32)
        self.threshold = np.float32(contrast_threshold)
        height, width = grey.shape
        self.shape = (height, width)
        self.smoothed = vl_imsmooth(np.asarray(grey, dtype=np.float32), self.sigma)
        self.gradients = np.empty((NUM_ORIENTATIONS, height, width), dtype=np.float32)
        self.binned = np.empty((NUM_ORIENTATIONS, height, width), dtype=np.float32)
        _orientation_planes(self.smoothed, 0, height, 0, width, self.gradients)
        _triangle_region(self.gradients, 0, height, 0, width, self.size, self.binned)

    def copy(self) -> "SiftPlanes":
        twin = object.__new__(SiftPlanes)
        twin.__dict__.update(self.__dict__)
        twin.smoothed, twin.gradients, twin.binned = self.smoothed.copy(), self.gradients.copy(), self.binned.copy()
        return twin

    def update(self, grey: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """Bring the planes up to date after ``grey`` changed inside ``box = (y0, y1, x0, x1)`` (half-open)."""
        height, width = self.shape
        y0, y1, x0, x1 = box
        h = self.radius
        # S changes within h of the box; smoothing a crop h wider still reads only true neighbours
        # there (or the image border, continued as the full image continues it)
        sy0, sy1, sx0, sx1 = max(0, y0 - h), min(height, y1 + h), max(0, x0 - h), min(width, x1 + h)
        cy0, cy1, cx0, cx1 = max(0, sy0 - h), min(height, sy1 + h), max(0, sx0 - h), min(width, sx1 + h)
        crop = vl_imsmooth(grey[cy0:cy1, cx0:cx1], self.sigma)
        self.smoothed[sy0:sy1, sx0:sx1] = crop[sy0 - cy0:sy1 - cy0, sx0 - cx0:sx1 - cx0]
        gy0, gy1, gx0, gx1 = max(0, sy0 - 1), min(height, sy1 + 1), max(0, sx0 - 1), min(width, sx1 + 1)
        _orientation_planes(self.smoothed, gy0, gy1, gx0, gx1, self.gradients)
        reach = self.size - 1
        _triangle_region(self.gradients, max(0, gy0 - reach), min(height, gy1 + reach),
                         max(0, gx0 - reach), min(width, gx1 + reach), self.size, self.binned)

    def descriptors(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """Descriptors of the frames with origins ``ys x xs`` (row-major), ``(len(ys) * len(xs), 128)``
        float32 in cyvlfeat's layout and scale, contrast threshold applied."""
        out = np.empty((len(ys) * len(xs), DESCRIPTOR_SIZE), dtype=np.float32)
        _sample_descriptors(self.binned, np.asarray(ys, dtype=np.int64), np.asarray(xs, dtype=np.int64),
                            self.size, self.window, self.threshold, out)
        return out
