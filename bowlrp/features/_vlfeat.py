"""VLFeat dense-SIFT geometry and the cyvlfeat backend.

Geometry of one VLFeat dense-SIFT scale (``vl_dsift``, 0-based pixel coordinates):

* a descriptor has ``4 × 4`` spatial bins of ``B`` pixels; its *frame origin* is the centre of its
  top-left bin, and its bin centres are ``origin + (i·B, j·B)``, ``i, j = 0..3`` (integers);
* origins run over ``bound_min + k·step`` while the last bin centre ``origin + 3B`` stays
  ``≤ bound_max`` (the last pixel index), so the descriptor centre is ``origin + 1.5·B``;
* frames are enumerated row-major: ``y`` in the outer loop, ``x`` in the inner loop;
* with ``fast=True`` each bin accumulates gradients with bilinear (triangular) spatial weights of
  half-width ``B`` and no per-pixel window; afterwards the whole bin is multiplied by the mean of a
  Gaussian window (``sigma = window_size · B``, centred on the descriptor) over that bin;
* the raw descriptor's *mass* (returned as the ``norm`` of the frame, used for the contrast
  threshold) is the sum of its 128 raw entries divided by ``(3B + 1)²``;
* the raw vector is L2-normalised, clamped at 0.2, L2-normalised again; cyvlfeat's float
  descriptors carry VLFeat's ×512 scale (unit vectors times 512);
* layout of the 128 entries: ``index = t + 8·bx + 32·by``, ``bx``/``by`` the spatial bin along
  ``x``/``y``; orientation bin ``t`` covers gradient angle ``t·45°`` measured from ``+x`` towards
  ``+y`` (image rows grow downwards, so this turns clockwise on screen).
"""
from __future__ import annotations

import numpy as np

NUM_SPATIAL_BINS = 4
NUM_ORIENTATIONS = 8
DESCRIPTOR_SIZE = NUM_SPATIAL_BINS * NUM_SPATIAL_BINS * NUM_ORIENTATIONS


def cyvlfeat_available() -> bool:
    """True if ``cyvlfeat.sift.dsift`` can be imported."""
    try:
        from cyvlfeat.sift import dsift  # noqa: F401
    except Exception:  # a broken build raises more than ImportError
        return False
    return True


def frame_origins(length: int, bound_min: int, bin_size: int, step: int) -> np.ndarray:
    """Frame origins (top-left bin centres) along one axis of ``length`` pixels, int64.

    ``bound_min + k·step`` for every ``k ≥ 0`` with ``bound_min + k·step + 3·bin_size ≤ length - 1``;
    empty if not even one fits (as ``_vl_dsift_update_buffers`` counts them).
    """
    span = (length - 1) - bound_min - (NUM_SPATIAL_BINS - 1) * bin_size
    if span < 0:
        return np.zeros(0, dtype=np.int64)
    return bound_min + step * np.arange(span // step + 1, dtype=np.int64)


def dense_frame_origins(shape: tuple[int, int], bound_min: int, bin_size: int, step: int) -> np.ndarray:
    """All frame origins ``(x, y)`` of one scale on a ``(rows, cols)`` image, ``(N, 2)`` int64.

    Row-major order (``y`` outer), the order VLFeat returns frames in.
    """
    ys = frame_origins(shape[0], bound_min, bin_size, step)
    xs = frame_origins(shape[1], bound_min, bin_size, step)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


def bin_window_means(bin_size: int, window_size: float) -> np.ndarray:
    """Mean of VLFeat's Gaussian window over each of the 4 bins along one axis, ``(4,)`` float64.

    ``sigma = window_size · B``; bin ``i`` is centred at ``(i - 1.5)·B`` from the descriptor centre
    and averaged over the ``2B - 1`` integer offsets of its triangular support (unweighted, as
    ``_vl_dsift_get_bin_window_mean`` does).
    """
    offsets = np.arange(-bin_size + 1, bin_size, dtype=np.float64)
    sigma = bin_size * window_size
    centres = bin_size * (np.arange(NUM_SPATIAL_BINS) - 0.5 * (NUM_SPATIAL_BINS - 1))
    z = (offsets[None, :] - centres[:, None]) / sigma
    return np.exp(-0.5 * z * z).mean(axis=1)


def vlfeat_dsift(
    smoothed: np.ndarray, bin_size: int, step: int, bound_min: int | tuple[int, int], window_size: float, fast: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scale of dense SIFT with ``cyvlfeat.sift.dsift``.

    Parameters
    ----------
    smoothed : (H, W) float32
        Grey image, already smoothed for this bin size.
    bin_size, step : int
        Spatial bin width ``B`` and grid step, pixels.
    bound_min : int or (int, int)
        First frame origin along both axes, or ``(y, x)`` per axis (0-based); the bounds end at the
        last pixel.
    window_size : float
        Gaussian window sigma in bins.
    fast : bool
        Flat window with per-bin Gaussian reweighting (VLFeat's ``fast`` mode).

    Returns
    -------
    centers : (N, 2) float32
        Descriptor centres ``(x, y)``, pixels.
    values : (N, 128) float32
        Descriptors, VLFeat layout and ×512 scale.
    mass : (N,) float32
        Raw descriptor mass (VLFeat's frame ``norm``), for the contrast threshold.
    """
    from cyvlfeat.sift import dsift

    rows, cols = smoothed.shape
    min_y, min_x = (bound_min, bound_min) if np.isscalar(bound_min) else (int(bound_min[0]), int(bound_min[1]))
    if len(frame_origins(rows, min_y, bin_size, step)) == 0 or len(frame_origins(cols, min_x, bin_size, step)) == 0:
        return _empty()
    # cyvlfeat takes (y, x) bounds and returns (y, x, norm) frames, both 0-based
    frames, values = dsift(
        np.ascontiguousarray(smoothed, dtype=np.float32),
        step=int(step),
        size=int(bin_size),
        bounds=np.array([min_y, min_x, rows - 1, cols - 1]),
        window_size=float(window_size),
        norm=True,
        fast=bool(fast),
        float_descriptors=True,
    )
    frames = np.asarray(frames, dtype=np.float32).reshape(-1, 3)
    centers = np.ascontiguousarray(frames[:, [1, 0]])
    return centers, np.asarray(values, dtype=np.float32).reshape(-1, DESCRIPTOR_SIZE), frames[:, 2].copy()


def _empty() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.zeros((0, 2), dtype=np.float32),
        np.zeros((0, DESCRIPTOR_SIZE), dtype=np.float32),
        np.zeros(0, dtype=np.float32),
    )


def vlfeat_sift_oriented(grey: np.ndarray, centers: np.ndarray, sigma: float, angles: np.ndarray) -> np.ndarray:
    """Rotated SIFT descriptors of given frames with ``cyvlfeat.sift.sift`` (VLFeat's ``vl_sift``).

    Parameters
    ----------
    grey : (H, W) float32
        The work image, *unsmoothed*: ``vl_sift`` builds its own Gaussian scale space (assuming a
        nominal 0.5 px camera blur) and reads each frame's gradients from the level nearest ``sigma``.
    centers : (N, 2) float
        Frame centres ``(x, y)``, pixels.
    sigma : float
        Frame scale; spatial bins are ``3 sigma`` wide (VLFeat's magnification 3), Gaussian window
        of 2 bins, applied per pixel.
    angles : (N,) float
        Frame orientations in radians, from ``+x`` towards ``+y`` (:mod:`.orientation`).

    Returns
    -------
    (N, 128) float32
        Descriptors in input order, layout ``t + 8·bx + 32·by`` in the rotated frame, ×512 scale.
    """
    from cyvlfeat.sift import sift

    n = len(centers)
    if n == 0:
        return np.zeros((0, DESCRIPTOR_SIZE), dtype=np.float32)
    frames = np.column_stack([centers[:, 1], centers[:, 0], np.full(n, sigma), angles]).astype(np.float32)
    key_in = np.lexsort((frames[:, 1], frames[:, 0]))
    # cyvlfeat sorts the frames by scale with C's qsort, in place when the array is already float32
    # (no copy) and not necessarily stably: hand it a copy and restore the input order by position
    out_frames, values = sift(np.ascontiguousarray(grey, dtype=np.float32), frames=frames.copy(),
                              compute_descriptor=True, float_descriptors=True, magnification=3, window_size=2)
    key_out = np.lexsort((out_frames[:, 1], out_frames[:, 0]))
    ordered = np.empty((n, DESCRIPTOR_SIZE), dtype=np.float32)
    ordered[key_in] = np.asarray(values, dtype=np.float32)[key_out]
    return ordered
