"""Dense SIFT of an image under local pixel changes: recompute only the descriptors a changed box touches.

A region perturbation curve (dissertation Section 3.4) changes one pixel region per step. Upright
dense SIFT (:class:`~bowlrp.features.dsift.DenseSift`) is local: the descriptor of bin size ``B`` with
frame origin ``o`` (top-left bin centre, work-image pixels) reads

* gradients at ``[o - B + 1, o + 4B - 1]`` (the triangular bin weights reach ``B - 1`` px past the
  outer bin centres ``o`` and ``o + 3B``),
* hence smoothed values at ``[o - B, o + 4B]`` (central differences),
* hence grey values at ``[o - B - h, o + 4B + h]``, ``h = ceil(4 sigma)``, ``sigma = B / magnif``
  (the taps of :func:`~bowlrp.features.dsift.vl_imsmooth`),

per axis. With ``m = B + h + 1`` (one pixel to spare) the *dependency footprint* is
``[o - m, o + 3B + m]``: a descriptor whose footprint misses the changed pixels keeps its value.
The touched descriptors are recomputed by the same code on a crop of the current work image that
holds every recomputed descriptor's footprint (or reaches the image border, where the border
continuation of the smoothing and the one-sided gradients are the full image's), with the crop's
frame grid aligned to the full image's grid. Equal to a full :meth:`DenseSift.extract` up to float
rounding (VLFeat's triangular filter runs on prefix sums, so a crop rounds slightly differently).

In VLFeat's fast mode (the default) the descriptors are not recomputed on crops at all:
:class:`PatchedSift` keeps the image's per-pixel SIFT planes (:class:`~bowlrp.features.sift_planes.SiftPlanes`),
updates them in the changed box's neighbourhood and reads the touched descriptors back, several
times cheaper than a crop that must hold whole descriptors.

Only upright SIFT with the VLFeat backend on an unshrunk image is supported (:func:`patchable`): a
dominant orientation or an area-averaging shrink couples pixels otherwise, and the OpenCV backend's
descriptor window (a turned square with a Gaussian weight) reaches past the footprint above, so the
crop would not reproduce it; callers recompute such images in full.

Measured on a 160 x 213 image: a full extraction of the perturbed image moves even the *untouched*
descriptors by up to ~1e-3 (of their norm 512, ~2e-6 relative) against the base image's, because
VLFeat's prefix sums run over the whole image; the patched descriptors lie as close (~7e-4).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import BowlrpError
from ..parallel import map_threads
from ._vlfeat import frame_origins, vlfeat_dsift
from .descriptors import DescriptorSet
from .dsift import DenseSift, phow_bound_min, vl_imsmooth, work_shape_for
from .sift_planes import SiftPlanes

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), half-open pixel ranges


def patchable(sift: DenseSift, shape: tuple[int, int]) -> bool:
    """True when the descriptors of an ``(H, W)`` image can be patched locally: upright orientation
    and no shrink to the work image (the work image is the grey image itself)."""
    if not hasattr(sift, "backend_"):
        sift.fit()
    return (sift.backend_ == "vlfeat" and sift.orientation == "upright"
            and work_shape_for(shape, sift.max_rows) == tuple(shape))


def dependency_margin(sift: DenseSift, bin_size: int) -> int:
    """``m``: pixels beyond the bin-centre span ``[o, o + 3B]`` a descriptor depends on, per side
    (module docstring)."""
    sigma = bin_size / sift.magnif
    radius = int(math.ceil(4.0 * sigma)) if sigma >= 0.01 else 0
    return int(bin_size) + radius + 1


class DenseSiftPatcher:
    """Which descriptors of an image's :meth:`DenseSift.extract` a changed pixel box touches, and
    their values recomputed on the current image.

    Parameters
    ----------
    sift : DenseSift
        The extractor (fitted or not); must be :func:`patchable` for ``shape``.
    shape : (int, int)
        ``(H, W)`` of the image (= the work image).
    """

    def __init__(self, sift: DenseSift, shape: tuple[int, int]) -> None:
        if not patchable(sift, shape):
            raise BowlrpError("dense SIFT can be patched only upright, with the VLFeat backend, on an unshrunk image")
        self.sift = sift
        self.shape = (int(shape[0]), int(shape[1]))
        sizes = [int(b) for b in sift.bin_sizes]
        step = int(sift.step)
        self.scales = []  # per scale: (B, m, ys (ny,), xs (nx,), first row in the DescriptorSet)
        start = 0
        for size in sizes:
            bound = phow_bound_min(size, max(sizes))
            ys = frame_origins(self.shape[0], bound, size, step)
            xs = frame_origins(self.shape[1], bound, size, step)
            self.scales.append((size, dependency_margin(sift, size), ys, xs, start))
            start += len(ys) * len(xs)  # extract's layout: scales in order, each row-major (y outer)
        self.n = start

    def touched(self, box: tuple[int, int, int, int]) -> list[tuple[int, slice, slice]]:
        """Grid ranges of the descriptors whose footprint meets ``box = (y0, y1, x0, x1)`` (half-open,
        pixels): per scale with any, ``(scale, rows of ys, columns of xs)``."""
        y0, y1, x0, x1 = box
        out = []
        for s, (size, m, ys, xs, _) in enumerate(self.scales):
            # footprint [o - m, o + 3B + m] meets [a, b - 1]  <=>  a - 3B - m <= o <= b - 1 + m
            rows = slice(np.searchsorted(ys, y0 - 3 * size - m), np.searchsorted(ys, y1 - 1 + m, side="right"))
            cols = slice(np.searchsorted(xs, x0 - 3 * size - m), np.searchsorted(xs, x1 - 1 + m, side="right"))
            if rows.stop > rows.start and cols.stop > cols.start:
                out.append((s, rows, cols))
        return out

    def indices(self, scale: int, rows: slice, cols: slice) -> np.ndarray:
        """Rows in the image's DescriptorSet of a grid range of one scale, ``(n,)`` int64, row-major."""
        _, _, _, xs, start = self.scales[scale]
        grid_rows = np.arange(rows.start, rows.stop)[:, None]
        return (start + grid_rows * len(xs) + np.arange(cols.start, cols.stop)[None, :]).ravel()

    def recompute(self, grey: np.ndarray, scale: int, rows: slice, cols: slice) -> np.ndarray:
        """Descriptors of a grid range of one scale on the current grey (= work) image.

        Parameters
        ----------
        grey : (H, W) float32
            The current image, as :func:`~bowlrp.features.dsift.to_grey` gives it.

        Returns
        -------
        (n, 128) float32, in :meth:`indices` order, contrast threshold applied.
        """
        size, m, ys, xs, _ = self.scales[scale]
        step = int(self.sift.step)
        oy0, oy1 = int(ys[rows.start]), int(ys[rows.stop - 1])
        ox0, ox1 = int(xs[cols.start]), int(xs[cols.stop - 1])
        # the crop holds every footprint [o - m, o + 3B + m] of the range, clipped to the image
        cy0, cx0 = max(0, oy0 - m), max(0, ox0 - m)
        cy1, cx1 = min(self.shape[0], oy1 + 3 * size + m + 1), min(self.shape[1], ox1 + 3 * size + m + 1)
        smoothed = vl_imsmooth(grey[cy0:cy1, cx0:cx1], size / self.sift.magnif)
        ny, nx = rows.stop - rows.start, cols.stop - cols.start
        # the crop's grid starts at the range's first origin; it may run past the range's last
        # origin (those extra frames are not exact and are dropped)
        _, values, mass = vlfeat_dsift(smoothed, size, step, (oy0 - cy0, ox0 - cx0), self.sift.window_size,
                                       self.sift.fast)
        crop_nx = len(frame_origins(cx1 - cx0, ox0 - cx0, size, step))
        keep = (np.arange(ny)[:, None] * crop_nx + np.arange(nx)[None, :]).ravel()
        values, mass = values[keep], mass[keep]
        values = np.array(values, dtype=np.float32)
        values[mass < self.sift.contrast_threshold] = 0.0
        return values


class PatchedSift:
    """The current grey image of a region-filling run and what keeps its touched descriptors cheap.

    Made by :meth:`start`; :meth:`fill` changes a box and returns the descriptors that changed.
    In fast mode the per-scale :class:`~bowlrp.features.sift_planes.SiftPlanes` are updated and read;
    otherwise :meth:`DenseSiftPatcher.recompute` runs VLFeat on crops.
    """

    def __init__(self, patcher: DenseSiftPatcher, grey: np.ndarray, planes: list[SiftPlanes] | None) -> None:
        self.patcher, self.grey, self.planes = patcher, grey, planes

    @classmethod
    def start(cls, patcher: DenseSiftPatcher, grey: np.ndarray) -> "PatchedSift":
        """The state of the unchanged image ``grey`` ``(H, W)`` float32 (as :func:`~bowlrp.features.dsift.to_grey` gives it)."""
        sift = patcher.sift
        grey = np.array(grey, dtype=np.float32)
        planes = None
        if sift.fast:
            planes = map_threads(lambda size: SiftPlanes(grey, size, sift.magnif, sift.window_size,
                                                         sift.contrast_threshold),
                                 [size for size, *_ in patcher.scales])
        return cls(patcher, grey, planes)

    def descriptors(self) -> DescriptorSet:
        """All descriptors of the current image, laid out as :meth:`DenseSift.extract` lays them out
        (read from the planes in fast mode, equal to VLFeat's to float rounding; else extracted)."""
        if self.planes is None:
            return self.patcher.sift.extract(self.grey)
        values = np.concatenate(map_threads(lambda s: self.planes[s].descriptors(self.patcher.scales[s][2],
                                                                                 self.patcher.scales[s][3]),
                                            range(len(self.planes))))
        centers, sizes, scales = [], [], []
        for s, (size, _, ys, xs, _) in enumerate(self.patcher.scales):
            yy, xx = np.meshgrid(ys, xs, indexing="ij")
            centers.append(np.stack([xx.ravel(), yy.ravel()], axis=1) + 1.5 * size)
            sizes.append(np.full(yy.size, size))
            scales.append(np.full(yy.size, s))
        return DescriptorSet(values=values, centers=np.concatenate(centers).astype(np.float32),
                             bin_sizes=np.concatenate(sizes).astype(np.float32),
                             scales=np.concatenate(scales).astype(np.int16),
                             work_shape=self.grey.shape, image_shape=self.grey.shape)

    def copy(self) -> "PatchedSift":
        planes = None if self.planes is None else [p.copy() for p in self.planes]
        return PatchedSift(self.patcher, self.grey.copy(), planes)

    def fill(self, source: np.ndarray, box: Box) -> tuple[np.ndarray, np.ndarray]:
        """Copy ``source``'s pixels (grey, ``(H, W)``) in ``box`` into the image.

        Returns
        -------
        which : (n,) int64
            Rows of the image's DescriptorSet whose values may have changed.
        values : (n, 128) float32
            Their values now, contrast threshold applied.
        """
        y0, y1, x0, x1 = box
        self.grey[y0:y1, x0:x1] = source[y0:y1, x0:x1]
        if self.planes is not None:
            for planes in self.planes:  # every scale, touched or not: later boxes read these neighbourhoods
                planes.update(self.grey, box)
        touched = self.patcher.touched(box)
        if not touched:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 128), dtype=np.float32)
        which = np.concatenate([self.patcher.indices(s, r, c) for s, r, c in touched])
        if self.planes is None:
            values = [self.patcher.recompute(self.grey, s, r, c) for s, r, c in touched]
        else:
            values = [self.planes[s].descriptors(self.patcher.scales[s][2][r], self.patcher.scales[s][3][c])
                      for s, r, c in touched]
        return which, np.concatenate(values)
