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


@dataclass
class TileMerge:
    """What :func:`merge_store_to_folder` wrote: the merged maps, and the mask statistics per large image
    and over all of them (``{}`` / None where the dataset has no pixel masks)."""

    merged: list[MergedMap]
    per_image: dict[str, dict]
    overall: dict | None

    def as_json(self) -> dict:
        out: dict = {"images": self.per_image}
        if self.overall is not None:
            out["overall"] = self.overall
        return out


def merge_store_to_folder(store_path: str | Path, dataset_root: str | Path, out: str | Path) -> TileMerge:
    """Merge the tile maps of a store into their large images and write, per large image,
    ``<name>.npz`` (``relevance`` float32), ``<name>.png`` and, where the large image exists,
    ``<name>_overlay.png``; with pixel masks, the :func:`mask_statistics` of each and of all pooled."""
    from PIL import Image

    from ..data.images import load_image
    from ..heatmap import colorize, overlay, write_png
    from ..persistence import atomic_write_bytes, npz_bytes
    from ..store import RelevanceStore

    layout = tile_layout(dataset_root)
    data, out = Path(dataset_root), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    labels = layout.get("mask_values")
    per_image: dict[str, dict] = {}
    pooled_relevance, pooled_mask = [], []
    with RelevanceStore(store_path) as store:
        merged = merge_store(store, layout)
    for item in merged:
        atomic_write_bytes(out / f"{item.name}.npz", npz_bytes({"relevance": item.relevance.astype(np.float32)}))
        write_png(out / f"{item.name}.png", colorize(item.relevance))
        large = data / "large" / f"{item.name}.png"
        if large.is_file():
            write_png(out / f"{item.name}_overlay.png", overlay(load_image(large), item.relevance))
        mask_path = data / "masks" / f"{item.name}.png"
        if labels and mask_path.is_file():
            mask = np.asarray(Image.open(mask_path))
            per_image[item.name] = mask_statistics(item.relevance, mask, labels)
            pooled_relevance.append(item.relevance.ravel())
            pooled_mask.append(mask.ravel())
    overall = None
    if pooled_relevance:
        overall = mask_statistics(np.concatenate(pooled_relevance), np.concatenate(pooled_mask), labels)
    return TileMerge(merged, per_image, overall)
