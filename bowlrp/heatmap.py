"""Relevance maps as pictures (dissertation Section 2.3.3, Fig. 2.5).

* :func:`colorize`: ``R / max|R|`` (zero stays zero, values in [-1, 1]) through a symmetric,
  diverging colour map: white at 0, red for positive, blue for negative relevance.
* :func:`overlay`: the heatmap over a grey copy of the image, opaque where |R| is large, so an
  image region without relevance shows the image.
* :func:`merge_tiles`: relevance maps of overlapping tiles averaged back into one large map
  (Fig. 2.13), each pixel the mean over the tiles that cover it.
* :func:`write_png`: an RGB uint8 array to a PNG, atomically; :func:`write_png_bands` the same from
  bands of rows, so a picture of a large image is never held whole.

Memory: colours are computed a band of rows at a time (:func:`colorize_bands`,
:func:`overlay_bands`), so the float64 temporaries stay a few MB whatever the image size; the
band functions give the same pixels as the whole-image ones.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from .persistence import atomic_writer

_BAND_PIXELS = 1 << 18  # pixels per band of rows: float64 temporaries of 2 MB each


def max_abs(relevance: np.ndarray) -> float:
    """``max|R|`` (0 for an empty map), without the full-size copy ``np.abs`` would make."""
    R = np.asarray(relevance)
    return float(max(R.max(), -R.min())) if R.size else 0.0


def normalize_symmetric(relevance: np.ndarray, top: float | None = None) -> np.ndarray:
    """``R / max|R|`` in float64 (an all-zero map stays zero); ``top`` is ``max|R|`` if known
    (a band of a larger map is scaled by the whole map's)."""
    R = np.asarray(relevance, dtype=np.float64)
    top = max_abs(R) if top is None else top
    return R / top if top > 0 else np.zeros_like(R)


def _bands(shape: tuple[int, ...]) -> Iterator[slice]:
    """Bands of rows over the first axis of ``shape``, about :data:`_BAND_PIXELS` pixels each."""
    rows = shape[0] if len(shape) else 1
    width = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    step = max(1, _BAND_PIXELS // max(1, width))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def _colours(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, -1.0, 1.0)
    pos, neg = np.clip(v, 0, None), np.clip(-v, 0, None)
    rgb = np.stack([1.0 - neg, 1.0 - pos - neg, 1.0 - pos], axis=-1)
    return np.rint(rgb * 255).astype(np.uint8)


def colorize_bands(relevance: np.ndarray) -> Iterator[np.ndarray]:
    """:func:`colorize` of an ``(H, W)`` map a band of rows at a time: ``(rows, W, 3)`` uint8 bands, top down."""
    R = np.asarray(relevance)
    top = max_abs(R)
    for band in _bands(R.shape):
        yield _colours(normalize_symmetric(R[band], top))


def colorize(relevance: np.ndarray) -> np.ndarray:
    """``(H, W)`` relevance → ``(H, W, 3)`` uint8 RGB: blue (-max) … white (0) … red (+max)."""
    R = np.asarray(relevance)
    if R.ndim == 0:
        return _colours(normalize_symmetric(R))
    out = np.empty(R.shape + (3,), dtype=np.uint8)
    for band, rgb in zip(_bands(R.shape), colorize_bands(R)):
        out[band] = rgb
    return out


def overlay_bands(image: np.ndarray, relevance: np.ndarray, strength: float = 0.85) -> Iterator[np.ndarray]:
    """:func:`overlay` a band of rows at a time: ``(rows, W, 3)`` uint8 bands, top down."""
    img = np.asarray(image)
    R = np.asarray(relevance)
    if img.shape[:2] != R.shape:
        raise ValueError(f"image {img.shape[:2]} and relevance {R.shape} differ in size")
    top = max_abs(R)
    for band in _bands(R.shape):
        part = img[band]
        part = part.astype(np.float64) / 255.0 if part.dtype == np.uint8 else part.astype(np.float64)
        grey = part if part.ndim == 2 else part @ np.array([0.299, 0.587, 0.114])
        base = np.repeat(grey[..., None], 3, axis=2)
        v = normalize_symmetric(R[band], top)
        heat = _colours(v).astype(np.float64) / 255.0
        alpha = strength * np.abs(v)[..., None]
        yield np.rint((base * (1 - alpha) + heat * alpha) * 255).astype(np.uint8)


def overlay(image: np.ndarray, relevance: np.ndarray, strength: float = 0.85) -> np.ndarray:
    """The coloured map blended over a grey copy of ``image`` ((H, W) or (H, W, 3), floats in [0, 1]
    or uint8), with opacity ``strength * |R| / max|R|``; returns (H, W, 3) uint8."""
    R = np.asarray(relevance)
    out = np.empty(R.shape + (3,), dtype=np.uint8)
    for band, rgb in zip(_bands(R.shape), overlay_bands(image, R, strength)):
        out[band] = rgb
    return out


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
    rgb = np.asarray(rgb, dtype=np.uint8)
    write_png_bands(path, rgb.shape[1], rgb.shape[0], (rgb[band] for band in _bands(rgb.shape)))


def write_png_bands(path: str | Path, width: int, height: int, bands: Iterable[np.ndarray], level: int = 6) -> None:
    """Write an RGB PNG of ``width x height`` from ``bands`` of ``(rows, width, 3)`` uint8, top down,
    atomically; each band is filtered ("Up", which suits smooth maps), compressed and written as it
    comes, so neither the picture nor its compressed bytes are held whole."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with atomic_writer(path) as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        compressor = zlib.compressobj(level)
        previous = np.zeros((1, width * 3), dtype=np.uint8)
        written = 0
        for band in bands:
            rows = np.ascontiguousarray(band, dtype=np.uint8).reshape(len(band), width * 3)
            filtered = np.empty((len(rows), width * 3 + 1), dtype=np.uint8)
            filtered[:, 0] = 2  # filter type Up: each byte minus the one above, modulo 256
            np.subtract(rows, np.concatenate([previous, rows[:-1]]), out=filtered[:, 1:])
            previous = rows[-1:]
            written += len(rows)
            data = compressor.compress(filtered.tobytes())
            if data:
                fh.write(chunk(b"IDAT", data))
        if written != height:
            raise ValueError(f"{path}: {written} rows given for a PNG of {height}")
        fh.write(chunk(b"IDAT", compressor.flush()))
        fh.write(chunk(b"IEND", b""))
