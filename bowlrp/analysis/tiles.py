"""Tile-wise relevance maps merged back into the large images they were cut from (Fig. 2.13).

For a tiled dataset (the synthetic ``shapes`` set: ``ground_truth.json`` records each tile's source
image and offset), the maps of overlapping tiles are averaged per pixel
(:func:`bowlrp.heatmap.merge_tiles`). Where the generator also wrote pixel masks
(``masks/<large image>.png``: 0 background, 1 polygon, 2 round), :func:`mask_statistics` says where
the relevance went: the mean relevance per pixel class and the share of all positive relevance
that lies on each class.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..heatmap import merge_tiles


@dataclass
class MergedMap:
    """One large image's merged relevance, ``(H, W)`` float64, and how many tiles went into it."""

    name: str
    relevance: np.ndarray
    n_tiles: int


def tile_layout(dataset_root: str | Path) -> dict:
    """The generator's sidecar: ``{"images": {tile id: {"source", "offset", ...}}, "large_images": ...}``."""
    path = Path(dataset_root) / "ground_truth.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the tile layout ({exc})") from None
    if "large_images" not in meta or not all("offset" in v and "source" in v for v in meta["images"].values()):
        raise DataError(f"{path}: no tile layout (a tiled synthetic set such as 'shapes' has one)")
    return meta


def merge_store(store, layout: dict) -> list[MergedMap]:
    """Average the tile maps of a :class:`~bowlrp.store.RelevanceStore` per source image."""
    groups: dict[str, list[tuple[np.ndarray, tuple[int, int]]]] = {}
    for tile_id, item in store.items():
        info = layout["images"].get(tile_id)
        if info is None:
            continue
        groups.setdefault(info["source"], []).append((item["relevance"].astype(np.float64), tuple(info["offset"])))
    merged = []
    for name in sorted(groups):
        side = layout["large_images"][name]["size"]
        maps, offsets = zip(*groups[name])
        merged.append(MergedMap(name, merge_tiles(maps, offsets, (side[1], side[0])), len(maps)))
    return merged


def mask_statistics(relevance: np.ndarray, mask: np.ndarray, labels: dict[str, int]) -> dict:
    """Per pixel class: mean relevance and share of the positive relevance mass.

    ``labels`` maps names to mask values (e.g. ``{"background": 0, "polygon": 1, "round": 2}``).
    Returns ``{name: {"pixels", "mean", "positive_share"}}``.
    """
    R = np.asarray(relevance, dtype=np.float64)
    positive = np.clip(R, 0, None)
    total = positive.sum()
    out = {}
    for name, value in labels.items():
        where = mask == value
        out[name] = {"pixels": int(where.sum()),
                     "mean": float(R[where].mean()) if where.any() else float("nan"),
                     "positive_share": float(positive[where].sum() / total) if total > 0 else float("nan")}
    return out
