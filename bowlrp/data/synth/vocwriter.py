"""Byte-stable writers for the synthetic sets: images, VOC XML and split files.

Same inputs give the same bytes: PNGs without time or text chunks at a fixed zlib level, JPEGs
at a fixed quality and chroma subsampling without EXIF, XML built as text in a fixed order, and
JSON with sorted keys (:func:`bowlrp.persistence.atomic_write_json`).
"""
from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from ...persistence import atomic_write_bytes

PNG_COMPRESS_LEVEL = 6
JPEG_QUALITY = 90
JPEG_SUBSAMPLING = 2  # 4:2:0, as most camera JPEGs (and VOC's)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] -> uint8, rounded (not truncated), clipped."""
    return np.clip(np.rint(np.asarray(img, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def write_png(path: Path, pixels: np.ndarray) -> None:
    """Lossless PNG of a uint8 (H, W) grey or (H, W, 3) RGB array."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    atomic_write_bytes(path, buf.getvalue())


def write_jpeg(path: Path, pixels: np.ndarray) -> None:
    """JPEG of a uint8 (H, W, 3) array at :data:`JPEG_QUALITY`, baseline, no metadata."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(
        buf, format="JPEG", quality=JPEG_QUALITY, subsampling=JPEG_SUBSAMPLING, optimize=False, progressive=False
    )
    atomic_write_bytes(path, buf.getvalue())


def voc_xml(
    folder: str, filename: str, width: int, height: int, depth: int, objects: list[dict]
) -> bytes:
    """A Pascal VOC annotation document.

    ``objects``: dicts with ``name``, ``box`` (xmin, ymin, xmax, ymax; 1-based inclusive ints),
    optional ``pose`` ("Unspecified"), ``truncated`` (bool), ``difficult`` (bool).
    """
    parts = [
        "<annotation>",
        f"\t<folder>{escape(folder)}</folder>",
        f"\t<filename>{escape(filename)}</filename>",
        "\t<source><database>bowlrp synthetic</database></source>",
        f"\t<size><width>{width}</width><height>{height}</height><depth>{depth}</depth></size>",
        "\t<segmented>0</segmented>",
    ]
    for obj in objects:
        xmin, ymin, xmax, ymax = (int(v) for v in obj["box"])
        parts += [
            "\t<object>",
            f"\t\t<name>{escape(obj['name'])}</name>",
            f"\t\t<pose>{escape(obj.get('pose', 'Unspecified'))}</pose>",
            f"\t\t<truncated>{int(bool(obj.get('truncated', False)))}</truncated>",
            f"\t\t<difficult>{int(bool(obj.get('difficult', False)))}</difficult>",
            f"\t\t<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>",
            "\t</object>",
        ]
    parts.append("</annotation>\n")
    return "\n".join(parts).encode("utf-8")


def write_image_sets(main: Path, splits: dict[str, list[str]], class_labels: dict[str, dict[str, int]]) -> None:
    """``<split>.txt`` for each split and ``<class>_<split>.txt`` ("<id> <±1>") for each class.

    ``class_labels``: class -> {image id -> label}, covering every id of every split.
    """
    for split, ids in splits.items():
        atomic_write_bytes(main / f"{split}.txt", "".join(f"{i}\n" for i in ids).encode())
        for cls, table in sorted(class_labels.items()):
            text = "".join(f"{i} {table[i]:2d}\n" for i in ids)
            atomic_write_bytes(main / f"{cls}_{split}.txt", text.encode())


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """VOC box (1-based inclusive xmin, ymin, xmax, ymax) of a boolean (H, W) mask, None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]) + 1, int(rows[0]) + 1, int(cols[-1]) + 1, int(rows[-1]) + 1
