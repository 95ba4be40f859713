"""The local descriptors of one image together with their geometry.

Geometry conventions (shared by feature extraction, encoding and the LRP pixel layer):

* pixel ``(x, y)`` has its centre at integer coordinates, 0-based, ``x`` = column, ``y`` = row;
* descriptors are computed on a *work image* (the original, resized so that it has at most
  ``max_rows`` rows); ``centers`` and ``bin_sizes`` are in work-image pixels and
  ``scale_factor`` maps them to the original image (``original = work / scale_factor``);
* a SIFT descriptor with bin size ``B`` centred at ``c`` has a 4×4 grid of spatial bins whose
  centres lie at ``c + (i - 1.5)·B``, ``i = 0..3``; bilinear binning lets each bin see pixels
  closer than ``B`` to its centre, so the descriptor's pixel support along each axis is
  ``[c - 2.5B + 1, c + 2.5B - 1]``: ``5B - 1`` pixels;
* a rotation-normalised descriptor (``angles`` ≠ 0) has the same grid turned by its angle ``theta``
  about ``c`` (from ``+x`` towards ``+y``, i.e. clockwise on screen); bin ``(i, j)`` is centred at
  ``c + R(theta) · ((i - 1.5)·B, (j - 1.5)·B)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class DescriptorSet:
    """Descriptors of one image.

    Attributes
    ----------
    values : (N, D) float32
        Descriptor vectors (D = 128 for SIFT in VLFeat's scale).
    centers : (N, 2) float32
        Descriptor centres ``(x, y)`` in work-image pixels.
    bin_sizes : (N,) float32
        Spatial bin width ``B`` of each descriptor, work-image pixels.
    scales : (N,) int16
        Index of the extraction scale each descriptor came from.
    work_shape : (int, int)
        ``(rows, cols)`` of the work image.
    image_shape : (int, int)
        ``(rows, cols)`` of the original image.
    angles : (N,) float32, optional
        Orientation of each descriptor's grid in radians (zeros, the default, for upright SIFT).
    """

    values: np.ndarray
    centers: np.ndarray
    bin_sizes: np.ndarray
    scales: np.ndarray
    work_shape: tuple[int, int]
    image_shape: tuple[int, int]
    angles: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.values)
        if self.angles is None:
            self.angles = np.zeros(n, dtype=np.float32)
        if len(self.angles) != n:
            raise ValueError("angles must have one entry per descriptor")
        if not (len(self.centers) == len(self.bin_sizes) == len(self.scales) == n):
            raise ValueError("values, centers, bin_sizes and scales must have the same length")
        self.work_shape = (int(self.work_shape[0]), int(self.work_shape[1]))
        self.image_shape = (int(self.image_shape[0]), int(self.image_shape[1]))

    def __len__(self) -> int:
        return len(self.values)

    @property
    def scale_factor(self) -> float:
        """Work-image pixels per original-image pixel (≤ 1 when the image was shrunk)."""
        return self.work_shape[0] / self.image_shape[0]

    def normalized_positions(self) -> np.ndarray:
        """Descriptor centres as fractions of the work image, ``(N, 2)`` in ``[0, 1)``, (x, y).

        Used to assign descriptors to spatial-pyramid cells.
        """
        rows, cols = self.work_shape
        pos = (self.centers + 0.5) / np.array([cols, rows], dtype=np.float32)
        return np.clip(pos, 0.0, np.nextafter(np.float32(1.0), np.float32(0.0))).astype(np.float32)

    def support_boxes(self) -> np.ndarray:
        """Inclusive pixel support ``[x0, y0, x1, y1]`` of each descriptor in work-image pixels, ``(N, 4)``.

        For a rotated descriptor this is the axis-aligned box around its turned support square.
        Not clipped to the image: callers clip where they need to.
        """
        turn = np.abs(np.cos(self.angles)) + np.abs(np.sin(self.angles))  # 1 when upright
        half = 2.5 * self.bin_sizes * turn - 1.0
        x, y = self.centers[:, 0], self.centers[:, 1]
        return np.stack([x - half, y - half, x + half, y + half], axis=1).astype(np.float32)

    def subset(self, index: np.ndarray) -> "DescriptorSet":
        """The descriptors selected by a boolean mask or an index array."""
        return DescriptorSet(
            values=self.values[index],
            centers=self.centers[index],
            bin_sizes=self.bin_sizes[index],
            scales=self.scales[index],
            work_shape=self.work_shape,
            image_shape=self.image_shape,
            angles=self.angles[index],
        )
