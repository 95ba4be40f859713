"""Relevance maps as pictures (dissertation Section 2.3.3, Fig. 2.5).

* :func:`colorize`: ``R / max|R|`` (zero stays zero, values in [-1, 1]) through a symmetric,
  diverging colour map: white at 0, red for positive, blue for negative relevance.
* :func:`overlay`: the heatmap over a grey copy of the image, opaque where |R| is large, so an
  image region without relevance shows the image.
* :func:`merge_tiles`: relevance maps of overlapping tiles averaged back into one large map
  (Fig. 2.13), each pixel the mean over the tiles that cover it.
* :func:`write_png`: an RGB uint8 array to a PNG, atomically.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .persistence import atomic_write_bytes


def normalize_symmetric(relevance: np.ndarray) -> np.ndarray:
    """``R / max|R|`` in float64 (an all-zero map stays zero)."""
    R = np.asarray(relevance, dtype=np.float64)
    top = float(np.abs(R).max()) if R.size else 0.0
    return R / top if top > 0 else np.zeros_like(R)


def colorize(relevance: np.ndarray) -> np.ndarray:
    """``(H, W)`` relevance → ``(H, W, 3)`` uint8 RGB: blue (-max) … white (0) … red (+max)."""
    v = np.clip(normalize_symmetric(relevance), -1.0, 1.0)
    pos, neg = np.clip(v, 0, None), np.clip(-v, 0, None)
    rgb = np.stack([1.0 - neg, 1.0 - pos - neg, 1.0 - pos], axis=-1)
    return np.rint(rgb * 255).astype(np.uint8)


def overlay(image: np.ndarray, relevance: np.ndarray, strength: float = 0.85) -> np.ndarray:
    """The coloured map blended over a grey copy of ``image`` ((H, W) or (H, W, 3), floats in [0, 1]
    or uint8), with opacity ``strength * |R| / max|R|``; returns (H, W, 3) uint8."""
    img = np.asarray(image)
    img = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    grey = img if img.ndim == 2 else img @ np.array([0.299, 0.587, 0.114])
    if grey.shape != np.shape(relevance):
        raise ValueError(f"image {grey.shape} and relevance {np.shape(relevance)} differ in size")
    base = np.repeat(grey[..., None], 3, axis=2)
    heat = colorize(relevance).astype(np.float64) / 255.0
    alpha = strength * np.abs(normalize_symmetric(relevance))[..., None]
    return np.rint((base * (1 - alpha) + heat * alpha) * 255).astype(np.uint8)


def merge_tiles(maps: Sequence[np.ndarray], offsets: Sequence[tuple[int, int]], shape: tuple[int, int]) -> np.ndarray:
    """Average overlapping tile maps into one ``shape`` map; pixels no tile covers are 0.

    ``offsets`` are the tiles' top-left corners ``(x, y)`` in the large image.
    """
    total = np.zeros(shape)
    count = np.zeros(shape)
    for tile, (x, y) in zip(maps, offsets):
        h, w = tile.shape
        total[y:y + h, x:x + w] += tile
        count[y:y + h, x:x + w] += 1
    return np.divide(total, count, out=np.zeros(shape), where=count > 0)


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as PNG via a temporary file and a rename."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
