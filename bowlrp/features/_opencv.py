"""OpenCV backend: VLFeat-layout fast dense SIFT from ``cv2.SIFT.compute``.

How OpenCV's SIFT descriptor geometry maps to VLFeat's (``calcSIFTDescriptor``, OpenCV ≥ 4.4):

* keypoints at octave 0 make ``compute`` use ``firstOctave = 0``: no internal upsampling; the
  image is only blurred by ``sqrt(sigma² - 0.5²)``, which ``sigma = 0.5`` turns into a no-op
  (OpenCV falls back to a 0.1 px blur, i.e. a 3-tap kernel with ~1e-22 side taps);
* bin width = ``3 · size / 2`` pixels, so ``size = 2B/3`` gives bins of ``B`` pixels; bins are
  centred at ``round(centre) + (i - 1.5)·B`` with bilinear spatial weights, as VLFeat's;
* angle 0 (keypoint angle 0, *not* the default -1, which would rotate by 1°); OpenCV measures
  gradient angles with ``y`` pointing up, VLFeat with ``y`` pointing down, so OpenCV orientation
  bin ``(-t) mod 8`` is VLFeat bin ``t``; the spatial layout ``t + 8·bx + 32·by`` is the same;
* OpenCV weights every pixel by a Gaussian of sigma 2 bins; VLFeat's fast mode weights bins by
  the mean of a Gaussian of sigma ``window_size`` bins. The spatial bins are rescaled by the ratio
  of the two window weights and renormalised (see :func:`window_ratio`);
* OpenCV ignores pixels outside the image (and its outermost rows/columns), VLFeat extends the
  gradient field by continuity. Padding the image by an odd (point-symmetric) reflection makes
  gradients outside mirror those inside, close to VLFeat's continuation;
* OpenCV needs 8-bit input: the padded image is stretched affinely to 0..255 (descriptors are
  invariant to an affine intensity change, apart from rounding);
* descriptors are unit vectors times 512, clamped at 0.2 before renormalising, as VLFeat's.

The raw descriptor mass that VLFeat uses as contrast is computed here in numpy
(:func:`flat_window_mass`), since OpenCV returns only normalised descriptors.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

from ._vlfeat import DESCRIPTOR_SIZE, NUM_ORIENTATIONS, NUM_SPATIAL_BINS, bin_window_means

# OpenCV's descriptor window: exp(-(u² + v²) / (d² / 2)) with u, v in bins and d = 4, i.e. sigma = 2 bins
_OPENCV_WINDOW_SIGMA_BINS = NUM_SPATIAL_BINS / 2.0
# VLFeat orientation bin t is OpenCV bin (-t) mod 8 (OpenCV's y axis points up)
_VL_FROM_CV_ORIENTATION = (-np.arange(NUM_ORIENTATIONS)) % NUM_ORIENTATIONS
# keypoint size that makes OpenCV's bin width (SIFT_DESCR_SCL_FCTR · size / 2) equal B
_SIZE_PER_BIN = 2.0 / 3.0


def opencv_available() -> bool:
    """True if OpenCV with ``SIFT_create`` can be imported."""
    try:
        import cv2
    except Exception:
        return False
    return hasattr(cv2, "SIFT_create")


def triangle_sum(image: np.ndarray, bin_size: int) -> np.ndarray:
    """Separable correlation with the unit-height triangle ``1 - |d|/B``, ``|d| < B``.

    Border pixels are continued outwards (VLFeat's ``VL_PAD_BY_CONTINUITY``). Same shape as ``image``.
    """
    offsets = np.arange(-bin_size + 1, bin_size, dtype=np.float32)
    tri = 1.0 - np.abs(offsets) / np.float32(bin_size)
    out = correlate1d(image, tri, axis=0, mode="nearest")
    return correlate1d(out, tri, axis=1, mode="nearest")


def flat_window_mass(smoothed: np.ndarray, origins: np.ndarray, bin_size: int, window_size: float) -> np.ndarray:
    """VLFeat's fast-mode raw descriptor mass (its frame ``norm``), computed in numpy.

    The raw fast descriptor entry for orientation ``t`` and bin ``(i, j)`` is
    ``w_i w_j · Σ_p tri(p - bin centre) · g_t(p)``, where ``g_t`` is the gradient magnitude's
    share in orientation ``t``; the shares sum to the magnitude, so the mass (sum of the 128
    entries over ``(3B + 1)²``) needs the triangle-filtered magnitude only.

    Parameters
    ----------
    smoothed : (H, W) float32
        The smoothed grey image of this scale.
    origins : (N, 2) int
        Frame origins (top-left bin centres) ``(x, y)``, pixels.
    bin_size : int
        ``B``, pixels.
    window_size : float
        Gaussian window sigma in bins.

    Returns
    -------
    (N,) float32
    """
    if len(origins) == 0:
        return np.zeros(0, dtype=np.float32)
    # np.gradient: central differences inside, one-sided at the border, as vl_dsift_process
    gy, gx = np.gradient(smoothed.astype(np.float32))
    binned = triangle_sum(np.hypot(gx, gy), bin_size)
    w = bin_window_means(bin_size, window_size).astype(np.float32)
    bins = bin_size * np.arange(NUM_SPATIAL_BINS)
    ys = origins[:, 1, None] + bins  # (N, 4)
    xs = origins[:, 0, None] + bins
    samples = binned[ys[:, :, None], xs[:, None, :]]  # (N, 4 by, 4 bx)
    mass = np.einsum("nij,i,j->n", samples, w, w)
    return (mass / np.float32((3 * bin_size + 1) ** 2)).astype(np.float32)


def window_ratio(bin_size: int, window_size: float) -> np.ndarray:
    """Per-bin factor from OpenCV's window to VLFeat's fast window, ``(4, 4)`` float64 (``[by, bx]``).

    OpenCV's per-pixel Gaussian (sigma 2 bins) is summarised per bin by its mean under the bin's
    triangular spatial weights; VLFeat's by :func:`bin_window_means`.
    """
    reach = NUM_SPATIAL_BINS * bin_size
    offsets = np.arange(-reach, reach + 1, dtype=np.float64)
    centres = bin_size * (np.arange(NUM_SPATIAL_BINS) - 0.5 * (NUM_SPATIAL_BINS - 1))
    tri = np.maximum(0.0, 1.0 - np.abs(offsets[None, :] - centres[:, None]) / bin_size)
    gauss = np.exp(-0.5 * (offsets / (_OPENCV_WINDOW_SIGMA_BINS * bin_size)) ** 2)
    opencv = (tri * gauss).sum(axis=1) / tri.sum(axis=1)
    ratio = bin_window_means(bin_size, window_size) / opencv
    return np.outer(ratio, ratio)


def opencv_dsift(
    smoothed: np.ndarray, origins: np.ndarray, bin_size: int, window_size: float
) -> np.ndarray:
    """Fast dense SIFT descriptors in VLFeat's layout and scale, computed by OpenCV.

    Parameters
    ----------
    smoothed : (H, W) float32
        The smoothed grey image of this scale.
    origins : (N, 2) int
        Frame origins ``(x, y)`` (top-left bin centres); descriptor centres are ``origins + 1.5B``
        (rounded by OpenCV when ``B`` is odd).
    bin_size : int
        ``B``, pixels.
    window_size : float
        VLFeat window sigma in bins that the output imitates.

    Returns
    -------
    (N, 128) float32, L2 norm 512 (or 0 for a flat patch).
    """
    n = len(origins)
    if n == 0:
        return np.zeros((0, DESCRIPTOR_SIZE), dtype=np.float32)
    pad = int(bin_size)  # bilinear support reaches B - 1 px past the outer bin centres
    padded = np.pad(smoothed.astype(np.float64), pad, mode="reflect", reflect_type="odd")
    centres = origins.astype(np.float64) + 1.5 * bin_size + pad
    desc = _compute_in_vl_layout(padded, centres, _SIZE_PER_BIN * bin_size, np.zeros(n))
    # entries OpenCV clamped at 0.2 all carry the descriptor's maximum; VLFeat would clamp them to one
    # common value too, so keep them equal after reweighting (their mean weight) instead of letting
    # the window ratio spread them apart
    saturated = desc >= desc.max(axis=1, keepdims=True) * (1.0 - 1e-6)
    ratio = np.repeat(window_ratio(bin_size, window_size).ravel(), NUM_ORIENTATIONS)[None, :]
    reweighted = desc * ratio
    n_sat = saturated.sum(axis=1, keepdims=True)
    sat_mean = (reweighted * saturated).sum(axis=1, keepdims=True) / np.maximum(n_sat, 1)
    reweighted = np.where(saturated & (desc > 0), sat_mean, reweighted)
    norm = np.linalg.norm(reweighted, axis=1, keepdims=True)
    out = np.where(norm > 0, reweighted * (512.0 / np.where(norm > 0, norm, 1.0)), 0.0)
    return out.astype(np.float32)


def _compute_in_vl_layout(image: np.ndarray, centres: np.ndarray, size: float, degrees: np.ndarray) -> np.ndarray:
    """OpenCV SIFT descriptors of keypoints at ``centres`` (``(N, 2)`` x, y) with keypoint ``size``
    and angles in degrees, reordered to VLFeat's orientation bins: ``(N, 128)`` float64.

    OpenCV needs 8-bit input, so ``image`` is first stretched affinely to 0..255 (descriptors are
    invariant to an affine intensity change, apart from rounding). Keypoints are built one by one:
    ``cv2.KeyPoint_convert`` would be loop-free but sets angle -1 (a 1° rotation).
    """
    import cv2

    n = len(centres)
    lo, hi = float(image.min()), float(image.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    grey8 = np.clip(np.rint((image.astype(np.float64) - lo) * scale), 0, 255).astype(np.uint8)
    keypoints = [cv2.KeyPoint(x, y, float(size), a) for (x, y), a in zip(centres.tolist(), np.asarray(degrees).tolist())]
    kept, raw = cv2.SIFT_create(nOctaveLayers=1, sigma=0.5).compute(grey8, keypoints)
    if raw is None or len(kept) != n:
        raise RuntimeError(f"OpenCV SIFT returned {0 if raw is None else len(kept)} descriptors for {n} keypoints")
    desc = raw.reshape(n, NUM_SPATIAL_BINS, NUM_SPATIAL_BINS, NUM_ORIENTATIONS)[..., _VL_FROM_CV_ORIENTATION]
    return desc.reshape(n, DESCRIPTOR_SIZE).astype(np.float64)


def opencv_sift_oriented(smoothed: np.ndarray, centers: np.ndarray, sigma: float, angles: np.ndarray) -> np.ndarray:
    """Rotated SIFT descriptors of given frames, by OpenCV, in ``vl_sift``'s layout and scale.

    Parameters
    ----------
    smoothed : (H, W) float32
        The work image smoothed to the frames' scale.
    centers : (N, 2) float
        Frame centres ``(x, y)``, pixels.
    sigma : float
        Frame scale; bins are ``3 sigma`` wide, as VLFeat's (keypoint size ``2 sigma``).
    angles : (N,) float
        Orientations in radians from ``+x`` towards ``+y``. OpenCV's keypoint angle is the same
        angle in degrees: ``calcSIFTDescriptor`` rotates by ``360 - angle`` in its ``y``-up frame,
        which is ``+angle`` in the ``y``-down frame VLFeat uses (checked against ``vl_sift``).

    Returns
    -------
    (N, 128) float32, L2 norm 512 (or 0 for a flat patch).

    Both libraries weight pixels by a Gaussian of 2 bins here, so unlike the fast-mode path no window
    correction is needed; pixels outside the image are ignored by both.
    """
    n = len(centers)
    if n == 0:
        return np.zeros((0, DESCRIPTOR_SIZE), dtype=np.float32)
    degrees = np.mod(np.degrees(np.asarray(angles, dtype=np.float64)), 360.0)
    desc = _compute_in_vl_layout(smoothed, np.asarray(centers, dtype=np.float64), 2.0 * sigma, degrees)
    norm = np.linalg.norm(desc, axis=1, keepdims=True)
    return np.where(norm > 0, desc * (512.0 / np.where(norm > 0, norm, 1.0)), 0.0).astype(np.float32)
