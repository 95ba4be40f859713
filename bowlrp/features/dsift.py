"""Multi-scale dense SIFT as ``vl_phow`` computes it for the VOC Fisher-vector baseline.

Per image:

1. RGB → grey with MATLAB's ``rgb2gray`` weights; the grey image is shrunk (area averaging) to at
   most ``max_rows`` rows, never enlarged: this is the *work image*.
2. Per bin size ``B`` (one *scale*): smooth with a Gaussian of ``sigma = B / magnif`` as
   ``vl_imsmooth`` does (taps to ``ceil(4 sigma)``, border continued), then dense SIFT with step
   ``step``, bin size ``B``, window ``window_size`` bins, fast mode, float descriptors.
3. All scales share one grid of centres: the frame origin (top-left bin centre) of scale ``B``
   starts at ``floor(1.5·(B_max - B))`` (0-based; ``vl_phow``'s 1-based ``floor(1 + 3/2 (B_max - B))``),
   so the first centre is ``1.5·B_max`` for every scale whose ``1.5·(B_max - B)`` is an integer
   (all the default sizes, which are even).
4. Descriptors whose raw mass (VLFeat's frame ``norm``) is below ``contrast_threshold`` are set
   to zero and kept.

Descriptors are unit vectors times 512 (VLFeat's float convention) with every value capped at 255,
as ``vl_dsift`` does and cyvlfeat keeps for float output: a descriptor whose largest normalised bin
exceeds 255/512 ≈ 0.498 has a norm below 512 (on scikit-image's astronaut 198 of 91,814 descriptors,
0.27 % of the non-zero ones, with norms down to 443; none on chelsea or rocket). The cap is kept so
that the descriptors stay equal to VLFeat's. Layout
``t + 8·bx + 32·by`` (see :mod:`bowlrp.features._vlfeat`). Geometry conventions of the output
are those of :class:`~bowlrp.features.descriptors.DescriptorSet`.

With ``orientation="dominant"`` (the rotation-normalised SIFT of the shapes task, Section 2.4.3)
step 2 changes: on the same grid, each frame of bin size ``B`` becomes a ``vl_sift`` frame of scale
``sigma = B / 3`` (VLFeat's magnification 3) turned to its main gradient orientation
(:mod:`.orientation`, computed on the work image smoothed to ``sigma``), and its descriptor is
``vl_sift``'s (a per-pixel Gaussian window of 2 bins, not fast mode); ``magnif``, ``window_size``
and ``fast`` then only shape the contrast measure, which is computed as in upright mode.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from scipy.ndimage import correlate1d

from ..errors import BowlrpError, ImageError
from ._opencv import flat_window_mass, opencv_available, opencv_dsift, opencv_sift_oriented
from ._vlfeat import (DESCRIPTOR_SIZE, cyvlfeat_available, dense_frame_origins, vlfeat_dsift,
                      vlfeat_sift_oriented)
from .descriptors import DescriptorSet
from .orientation import dominant_orientations

logger = logging.getLogger(__name__)

BACKENDS = ("vlfeat", "opencv")
ORIENTATIONS = ("upright", "dominant")
#: vl_sift's spatial bin width per unit of keypoint scale
SIFT_MAGNIF = 3.0
#: blur a camera image is assumed to carry already (vl_sift's nominal sigma_n)
NOMINAL_BLUR = 0.5
# MATLAB rgb2gray (ITU-R BT.601 luma) weights, R G B
RGB_TO_GREY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103], dtype=np.float32)

_fallback_notice_given = False


def available_backends() -> list[str]:
    """Names of the dense-SIFT backends that can run here, preferred first."""
    names = []
    if cyvlfeat_available():
        names.append("vlfeat")
    if opencv_available():
        names.append("opencv")
    return names


def resolve_backend(name: str) -> str:
    """Turn a backend request into the backend that will run.

    ``"auto"`` gives ``"vlfeat"`` when cyvlfeat imports, else ``"opencv"`` (with a one-line
    logging notice, once per process). Naming an unavailable or unknown backend raises
    :class:`BowlrpError`.
    """
    global _fallback_notice_given
    if name == "auto":
        if cyvlfeat_available():
            return "vlfeat"
        if opencv_available():
            if not _fallback_notice_given:
                logger.warning("cyvlfeat is not installed: dense SIFT uses the OpenCV backend (VLFeat-compatible layout)")
                _fallback_notice_given = True
            return "opencv"
        raise BowlrpError("no dense-SIFT backend: install cyvlfeat or opencv-python-headless")
    if name == "vlfeat":
        if not cyvlfeat_available():
            raise BowlrpError("dense-SIFT backend 'vlfeat' needs cyvlfeat, which cannot be imported here (backend='opencv' works without it)")
        return name
    if name == "opencv":
        if not opencv_available():
            raise BowlrpError("dense-SIFT backend 'opencv' needs OpenCV with SIFT (opencv-python-headless >= 4.4)")
        return name
    raise BowlrpError(f"unknown dense-SIFT backend {name!r}; choose one of auto, vlfeat, opencv")


def to_grey(image: np.ndarray) -> np.ndarray:
    """Validate an image and return it grey, ``(H, W)`` float32 in [0, 1].

    Accepts ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` RGB; floats are taken as [0, 1], ``uint8``
    is divided by 255. An RGB image is converted a strip of rows at a time, so the only full-size
    array made is the grey result (a float32 RGB copy of a 12 MP photo is 144 MB).
    """
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ImageError(f"expected a (H, W) grey or (H, W, 3) RGB image, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"empty image of shape {arr.shape}")
    if not (arr.dtype == np.uint8 or np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ImageError(f"image dtype {arr.dtype} is not numeric")
    if arr.ndim == 2:
        return np.ascontiguousarray(_as_unit_float(arr), dtype=np.float32)
    grey = np.empty(arr.shape[:2], dtype=np.float32)
    step = max(1, (4 << 20) // (arr.shape[1] * 12))  # about 4 MB of float32 RGB per strip
    for start in range(0, arr.shape[0], step):
        grey[start:start + step] = _as_unit_float(arr[start:start + step]) @ RGB_TO_GREY
    return grey


def _as_unit_float(arr: np.ndarray) -> np.ndarray:
    """``arr`` as float32 in [0, 1] (``uint8`` divided by 255), refusing NaN and infinity."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise ImageError("image contains NaN or infinite values")
    return out


def work_shape_for(shape: tuple[int, int], max_rows: int | None) -> tuple[int, int]:
    """``(rows, cols)`` of the work image for an original of ``shape``: at most ``max_rows`` rows, same aspect."""
    rows, cols = int(shape[0]), int(shape[1])
    if max_rows is None or rows <= max_rows:
        return rows, cols
    return int(max_rows), max(1, int(round(cols * max_rows / rows)))


def shrink_to_rows(grey: np.ndarray, max_rows: int | None) -> np.ndarray:
    """Area-average ``grey`` down to :func:`work_shape_for` (a copy-free no-op if small enough)."""
    rows, cols = work_shape_for(grey.shape, max_rows)
    if (rows, cols) == grey.shape:
        return grey
    import cv2

    return cv2.resize(grey, (cols, rows), interpolation=cv2.INTER_AREA).astype(np.float32, copy=False)


def vl_imsmooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing as MATLAB ``vl_imsmooth(I, sigma)``: ``(H, W)`` float32 → same.

    Separable, normalised taps ``exp(-z²/2)`` at ``z = j / sigma``, ``|j| ≤ ceil(4·sigma)``, border
    pixels continued outwards; ``sigma < 0.01`` returns a copy.
    """
    image = np.asarray(image, dtype=np.float32)
    if sigma < 0.01:
        return image.copy()
    half = int(math.ceil(4.0 * sigma))
    z = np.arange(-half, half + 1, dtype=np.float64) / (sigma + np.finfo(np.float32).eps)
    taps = np.exp(-0.5 * z * z)
    taps = (taps / taps.sum()).astype(np.float32)
    out = correlate1d(image, taps, axis=0, mode="nearest")
    return correlate1d(out, taps, axis=1, mode="nearest")


def phow_bound_min(bin_size: int, max_bin_size: int) -> int:
    """0-based first frame origin of scale ``bin_size``, as ``vl_phow`` aligns the scales."""
    return int(math.floor(1.5 * (max_bin_size - bin_size)))


class DenseSift:
    """Multi-scale fast dense SIFT on a common grid (``vl_phow`` of the VOC FV baseline).

    Parameters
    ----------
    bin_sizes : sequence of int
        Spatial bin widths ``B`` in work-image pixels, one scale each.
    step : int
        Grid step in work-image pixels.
    backend : {"auto", "vlfeat", "opencv"}
        ``"auto"`` picks ``"vlfeat"`` when cyvlfeat is installed, else ``"opencv"``.
    max_rows : int or None
        Images with more rows are shrunk to this many (aspect kept); None never resizes.
    magnif : float
        Smoothing sigma per scale is ``B / magnif`` pixels.
    window_size : float
        Gaussian window sigma in bins (applied per bin in fast mode).
    contrast_threshold : float
        Descriptors with raw mass below this are zeroed (kept). Image intensities are in [0, 1].
    fast : bool
        VLFeat's flat-window mode. The OpenCV backend supports ``fast=True`` only.
    orientation : {"upright", "dominant"}
        ``"upright"``: ``vl_dsift`` descriptors, all at angle 0 (the VOC setup). ``"dominant"``:
        each frame turned to its main gradient orientation, ``vl_sift`` descriptors (see the
        module docstring).

    Attributes
    ----------
    backend_ : str
        The backend that runs (``"vlfeat"`` or ``"opencv"``), set by :meth:`fit`, :meth:`extract`
        or :meth:`get_state`.
    """

    def __init__(
        self,
        bin_sizes=(4, 6, 8, 10),
        step: int = 3,
        backend: str = "auto",
        max_rows: int | None = 480,
        magnif: float = 6.0,
        window_size: float = 1.5,
        contrast_threshold: float = 0.005,
        fast: bool = True,
        orientation: str = "upright",
    ) -> None:
        self.bin_sizes = bin_sizes
        self.step = step
        self.backend = backend
        self.max_rows = max_rows
        self.magnif = magnif
        self.window_size = window_size
        self.contrast_threshold = contrast_threshold
        self.fast = fast
        self.orientation = orientation

    # -- scikit-learn conventions -------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters (JSON-able)."""
        return {
            "bin_sizes": [int(b) for b in self.bin_sizes],
            "step": int(self.step),
            "backend": str(self.backend),
            "max_rows": None if self.max_rows is None else int(self.max_rows),
            "magnif": float(self.magnif),
            "window_size": float(self.window_size),
            "contrast_threshold": float(self.contrast_threshold),
            "fast": bool(self.fast),
            "orientation": str(self.orientation),
        }

    def fit(self, X=None, y=None) -> "DenseSift":
        """Nothing to learn: checks the parameters and resolves the backend."""
        self._check_params()
        self.backend_ = resolve_backend(self.backend)
        if self.backend_ == "opencv" and not self.fast:
            raise BowlrpError("the OpenCV dense-SIFT backend implements fast mode only (fast=True)")
        return self

    def _check_params(self) -> None:
        sizes = list(self.bin_sizes)
        if not sizes or any(int(b) != b or b < 1 for b in sizes):
            raise BowlrpError(f"bin_sizes must be positive integers, got {self.bin_sizes!r}")
        if int(self.step) != self.step or self.step < 1:
            raise BowlrpError(f"step must be a positive integer, got {self.step!r}")
        if self.max_rows is not None and (int(self.max_rows) != self.max_rows or self.max_rows < 1):
            raise BowlrpError(f"max_rows must be a positive integer or None, got {self.max_rows!r}")
        if not (self.magnif > 0 and self.window_size > 0):
            raise BowlrpError("magnif and window_size must be positive")
        if self.orientation not in ORIENTATIONS:
            raise BowlrpError(f"orientation must be one of {', '.join(ORIENTATIONS)}, got {self.orientation!r}")

    # -- extraction ---------------------------------------------------------------------------
    def extract(self, image: np.ndarray) -> DescriptorSet:
        """Dense SIFT descriptors of one image.

        Parameters
        ----------
        image : (H, W) or (H, W, 3) float32 in [0, 1]
            Grey or RGB (``uint8`` is accepted and divided by 255).

        Returns
        -------
        DescriptorSet
            All scales, in ``bin_sizes`` order, each row-major (``y`` outer). Empty (``N = 0``)
            when the work image is too small for a single descriptor.
        """
        if not hasattr(self, "backend_"):
            self.fit()
        grey = to_grey(image)
        work = shrink_to_rows(grey, self.max_rows)
        image_shape = grey.shape
        del grey  # a full-size float32 copy of a large photo: not kept while the descriptors are made
        sizes = [int(b) for b in self.bin_sizes]
        max_size = max(sizes)
        # the grid of every scale is known before any descriptor is computed: allocate the output
        # once and let each scale write its block, instead of holding all scales and a concatenated
        # copy (~40 MB each for a VOC image) at the same time
        origins = [dense_frame_origins(work.shape, phow_bound_min(size, max_size), size, int(self.step)) for size in sizes]
        counts = [len(o) for o in origins]
        ends = np.cumsum(counts)
        n = int(ends[-1])
        out = DescriptorSet(
            values=np.empty((n, DESCRIPTOR_SIZE), dtype=np.float32),
            centers=np.empty((n, 2), dtype=np.float32),
            bin_sizes=np.repeat(np.asarray(sizes, dtype=np.float32), counts),
            scales=np.repeat(np.arange(len(sizes), dtype=np.int16), counts),
            work_shape=work.shape,
            image_shape=image_shape,
            angles=np.zeros(n, dtype=np.float32),
        )
        for size, grid, end in zip(sizes, origins, ends):
            if len(grid) == 0:
                continue
            block = slice(end - len(grid), end)
            smoothed = vl_imsmooth(work, size / self.magnif)
            if self.orientation == "dominant":
                out.centers[block], out.values[block], out.angles[block] = self._oriented(work, grid, size)
                mass = flat_window_mass(smoothed, grid, size, self.window_size)
            elif self.backend_ == "vlfeat":
                bound_min = phow_bound_min(size, max_size)
                # `scale` keeps cyvlfeat's arrays alive until the next scale's call has returned:
                # freed at once, glibc hands their pages back and VLFeat's next ~10 MB buffers fault
                # in fresh ones, a visible share of the extraction time
                scale = vlfeat_dsift(smoothed, size, int(self.step), bound_min, self.window_size, self.fast)
                out.centers[block], out.values[block], mass = scale
            else:
                out.centers[block] = grid + 1.5 * size
                out.values[block] = opencv_dsift(smoothed, grid, size, self.window_size)
                mass = flat_window_mass(smoothed, grid, size, self.window_size)
            out.values[block][mass < self.contrast_threshold] = 0.0
        return out

    def _oriented(self, work: np.ndarray, origins: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Centres, rotated descriptors and angles of one scale in ``orientation="dominant"`` mode."""
        centre = (origins + 1.5 * size).astype(np.float32)
        sigma = size / SIFT_MAGNIF
        level = vl_imsmooth(work, math.sqrt(max(sigma * sigma - NOMINAL_BLUR**2, 0.0)))
        theta = dominant_orientations(level, centre, sigma)
        if self.backend_ == "vlfeat":
            desc = vlfeat_sift_oriented(work, centre, sigma, theta)
        else:
            desc = opencv_sift_oriented(level, centre, sigma, theta)
        return centre, desc, theta

    # -- persistence --------------------------------------------------------------------------
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """State for :mod:`bowlrp.persistence`: the parameters with the resolved backend, no arrays."""
        if not hasattr(self, "backend_"):
            self.fit()
        params = self.get_params()
        params["backend"] = self.backend_
        return {"stage": "DenseSift", "params": params}, {}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "DenseSift":
        """Rebuild from :meth:`get_state`; the stored backend is required, not re-chosen."""
        if meta.get("stage") != "DenseSift":
            raise BowlrpError(f"not a DenseSift state (stage={meta.get('stage')!r})")
        params = dict(meta["params"])
        params["bin_sizes"] = tuple(params["bin_sizes"])
        return cls(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"DenseSift({args})"
