"""LRP for the feature-extraction layer: R_l per descriptor → R_p per pixel (Eqs. 2.84-2.85).

The backward step of :mod:`bowlrp.features` (layer (2) → (1) of Fig. 2.11), in two parts:

1. The flat rule on the work image: each descriptor's relevance spread evenly over the pixels of its
   support (or, at depth "bins", each SIFT spatial bin's relevance over the bin's support) (:meth:`DescriptorSet.support_boxes`: the 4×4 bins with bilinear spill, ``5B - 1`` px a
   side; for a rotated descriptor the axis-aligned box around its turned support), clipped to the
   image. A pixel belongs to a box when its centre lies inside. Computed with a summed-area
   difference array: linear in descriptors + pixels, whatever the box sizes.
2. The resize back to the original image. The work image is the original shrunk by area averaging
   (``work = A_y · original · A_x^T``, rows of A summing to 1); the flat rule through that linear
   map gives ``R_original = A_y^T · R_work · A_x``: each work pixel's relevance goes to the original
   pixels it averaged, in proportion to their weights. Both parts conserve relevance exactly.

Memory: the map at the original size is the only full-size array made. It is filled a band of rows
at a time (``(A_y^T)[band] · R_work · A_x``), and A is built from its non-zero band, so an 81 MP
photo costs its float32 map (324 MB) and a few MB besides, not the float64 product and its copy.
"""
from __future__ import annotations

import numpy as np

from ..features.descriptors import DescriptorSet


def flat_rule_map(descriptors: DescriptorSet, relevance: np.ndarray) -> np.ndarray:
    """Pixel relevance on the work image, ``(rows, cols)`` float64, summing to ``relevance.sum()``.

    Parameters
    ----------
    descriptors : DescriptorSet
    relevance : (N,) float
        ``R_l`` of every descriptor.
    """
    return spread_over_boxes(descriptors.work_shape, descriptors.support_boxes(), descriptors.centers, relevance)


def bin_boxes(descriptors: DescriptorSet) -> tuple[np.ndarray, np.ndarray]:
    """Supports and centres of the 16 spatial bins of every descriptor, ``(N * 16, 4)`` and ``(N * 16, 2)``.

    Bin ``(bx, by)`` (row ``by * 4 + bx``, the order of the descriptor layout ``t + 8 bx + 32 by``) is
    centred at ``c + R(theta) ((bx - 1.5) B, (by - 1.5) B)`` and, with bilinear binning, sees the pixels
    closer than B to its centre: ``2B - 1`` px a side (the axis-aligned box around it when turned).
    """
    offsets = np.arange(4) - 1.5
    by, bx = np.meshgrid(offsets, offsets, indexing="ij")  # (4, 4) [by, bx]
    B = descriptors.bin_sizes.astype(np.float64)[:, None]
    cos, sin = np.cos(descriptors.angles)[:, None], np.sin(descriptors.angles)[:, None]
    u, v = bx.ravel()[None, :] * B, by.ravel()[None, :] * B
    cx = descriptors.centers[:, 0:1] + cos * u - sin * v
    cy = descriptors.centers[:, 1:2] + sin * u + cos * v
    half = B * (np.abs(cos) + np.abs(sin)) - 1.0
    boxes = np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1).reshape(-1, 4)
    return boxes, np.stack([cx, cy], axis=-1).reshape(-1, 2)


def bin_rule_map(descriptors: DescriptorSet, relevance: np.ndarray) -> np.ndarray:
    """Pixel relevance on the work image from relevance per SIFT dimension (Appendix D.1.2).

    ``relevance`` (N, 128) is summed over the 8 orientations of each spatial bin and every bin's
    share spread evenly over the bin's support; (rows, cols) float64, summing to ``relevance.sum()``.
    """
    R = np.asarray(relevance, dtype=np.float64).reshape(len(descriptors), 4, 4, 8).sum(axis=3)  # [by, bx]
    boxes, centres = bin_boxes(descriptors)
    return spread_over_boxes(descriptors.work_shape, boxes, centres, R.reshape(-1))


def spread_over_boxes(shape: tuple[int, int], boxes: np.ndarray, centres: np.ndarray, relevance: np.ndarray) -> np.ndarray:
    """Each value spread evenly over the pixels of its box, summed: the flat rule for any boxes.

    ``boxes`` (M, 4) are ``x0, y0, x1, y1`` (inclusive, pixel centres inside count) and are clipped to
    the image; a box that misses the image keeps its relevance at its centre pixel.
    """
    rows, cols = shape
    R = np.asarray(relevance, dtype=np.float64).ravel()
    out = np.zeros((rows + 1, cols + 1))
    if len(R) == 0:
        return out[:rows, :cols]
    boxes = np.asarray(boxes, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    # pixels whose centre lies in [x0, x1] (tolerance for float32 boxes of integer corners)
    x0 = np.maximum(np.ceil(boxes[:, 0] - 1e-4), 0).astype(np.int64)
    y0 = np.maximum(np.ceil(boxes[:, 1] - 1e-4), 0).astype(np.int64)
    x1 = np.minimum(np.floor(boxes[:, 2] + 1e-4), cols - 1).astype(np.int64)
    y1 = np.minimum(np.floor(boxes[:, 3] + 1e-4), rows - 1).astype(np.int64)
    # a box that misses the image entirely (not produced by the dense grids) keeps its centre pixel
    cx = np.clip(np.rint(centres[:, 0]), 0, cols - 1).astype(np.int64)
    cy = np.clip(np.rint(centres[:, 1]), 0, rows - 1).astype(np.int64)
    empty = (x1 < x0) | (y1 < y0)
    x0, x1 = np.where(empty, cx, x0), np.where(empty, cx, x1)
    y0, y1 = np.where(empty, cy, y0), np.where(empty, cy, y1)
    density = R / ((x1 - x0 + 1) * (y1 - y0 + 1))
    width = cols + 1
    index = np.concatenate([y0 * width + x0, y0 * width + x1 + 1, (y1 + 1) * width + x0, (y1 + 1) * width + x1 + 1])
    weight = np.concatenate([density, -density, -density, density])
    out = np.bincount(index, weights=weight, minlength=(rows + 1) * width).reshape(rows + 1, width)
    return np.cumsum(np.cumsum(out, axis=0), axis=1)[:rows, :cols]


def area_weights(n_original: int, n_work: int, work_rows: slice = slice(None)) -> np.ndarray:
    """The 1-D area-averaging matrix A, ``(n_work, n_original)``: work pixel i averages the original
    pixels overlapping ``[i f, (i + 1) f)``, ``f = n_original / n_work``, by overlap; rows sum to 1.

    ``work_rows`` selects rows of A (default all). Only the at most ``ceil(f) + 1`` pixels each work
    pixel overlaps are computed (no temporaries of A's size); the rest of A is zero."""
    f = n_original / n_work
    i = np.arange(n_work)[work_rows]
    lo = i[:, None] * f
    hi = lo + f
    j = np.floor(lo).astype(np.int64) + np.arange(int(np.ceil(f)) + 2)[None, :]  # (rows, band)
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None)
    inside = j < n_original
    out = np.zeros((len(i), n_original))
    out[np.broadcast_to(np.arange(len(i))[:, None], j.shape)[inside], j[inside]] = overlap[inside] / f
    return out


def to_original(work_map: np.ndarray, image_shape: tuple[int, int], dtype=np.float64,
                band_bytes: int = 8 << 20) -> np.ndarray:
    """Relevance on the work image mapped to the original image's pixels, conserving the sum.

    Returns ``(H, W)`` of ``dtype`` (float32 for a stored map: half the memory). Computed in float64
    a band of about ``band_bytes`` at a time, each band from the few work rows it overlaps, and
    written into the result.
    """
    rows, cols = work_map.shape
    shape = (int(image_shape[0]), int(image_shape[1]))
    if (rows, cols) == shape:
        return np.array(work_map, dtype=dtype)
    work_map = np.asarray(work_map, dtype=np.float64)
    a_x = area_weights(shape[1], cols)
    f = shape[0] / rows
    out = np.empty(shape, dtype=dtype)
    step = max(1, band_bytes // (8 * shape[1]))
    for start in range(0, shape[0], step):
        stop = min(shape[0], start + step)
        # the work rows whose area overlaps original rows [start, stop); the other rows of A_y are 0 there
        first, last = max(0, int(start / f) - 1), min(rows, int(np.ceil(stop / f)) + 1)
        a_y = area_weights(shape[0], rows, slice(first, last))[:, start:stop]
        out[start:stop] = (a_y.T @ work_map[first:last]) @ a_x
    return out


def original_frames(descriptors: DescriptorSet) -> np.ndarray:
    """Descriptor frames in original-image pixels, ``(N, 4)`` float32: x, y, bin size, angle.

    A work pixel i spans ``[i f, (i + 1) f)`` of the original, so a position c maps to
    ``(c + 0.5) f - 0.5``; lengths scale by f (separately per axis; the bin size uses the x factor).
    """
    rows, cols = descriptors.work_shape
    fy = descriptors.image_shape[0] / rows
    fx = descriptors.image_shape[1] / cols
    x = (descriptors.centers[:, 0] + 0.5) * fx - 0.5
    y = (descriptors.centers[:, 1] + 0.5) * fy - 0.5
    return np.stack([x, y, descriptors.bin_sizes * fx, descriptors.angles], axis=1).astype(np.float32)


def pixel_relevance(descriptors: DescriptorSet, relevance: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The flat rule and the resize together: ``(H, W)`` of ``dtype`` in original-image pixels.

    ``relevance`` is (N,) per descriptor (flat over each support) or (N, 128) per SIFT dimension
    (flat over each spatial bin's support, Appendix D.1). The rules run in float64 on the work image;
    ``dtype`` is that of the full-size result (:func:`to_original`).
    """
    R = np.asarray(relevance)
    work = bin_rule_map(descriptors, R) if R.ndim == 2 else flat_rule_map(descriptors, R)
    return to_original(work, descriptors.image_shape, dtype=dtype)
