"""Relevance inside and outside image regions: boxes in VOC convention (1-based, inclusive).

* :func:`box_mask`: the pixels of boxes as a boolean mask;
* :func:`positive_density_ratio`: mean positive relevance inside a region over the image's mean
  positive relevance (how strongly a planted artefact such as a watermark attracts evidence);
* :func:`context_ratio`: mu of Eq. 4.11, mean positive relevance outside the boxes over the mean
  inside (high: the model decides from context).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def box_mask(shape: tuple[int, int], boxes: Iterable[Sequence[float]]) -> np.ndarray:
    """Boolean (H, W) mask of the union of boxes ``[xmin, ymin, xmax, ymax]`` (VOC: 1-based, inclusive)."""
    mask = np.zeros(shape, dtype=bool)
    for xmin, ymin, xmax, ymax in boxes:
        x0, y0 = max(int(round(xmin)) - 1, 0), max(int(round(ymin)) - 1, 0)
        x1, y1 = min(int(round(xmax)), shape[1]), min(int(round(ymax)), shape[0])
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = True
    return mask


def positive_density_ratio(relevance: np.ndarray, region: np.ndarray) -> float:
    """``mean(R+ inside region) / mean(R+ over the whole image)``; NaN for an empty region or no
    positive relevance at all."""
    positive = np.clip(np.asarray(relevance, dtype=np.float64), 0, None)
    region = np.asarray(region, dtype=bool)
    overall = positive.mean() if positive.size else 0.0
    if not region.any() or overall <= 0:
        return float("nan")
    return float(positive[region].mean() / overall)


def context_ratio(relevance: np.ndarray, inside: np.ndarray) -> float:
    """mu of Eq. 4.11: mean positive relevance outside ``inside`` over the mean inside it.

    NaN when either side has no pixels or the inside holds no positive relevance.
    """
    positive = np.clip(np.asarray(relevance, dtype=np.float64), 0, None)
    inside = np.asarray(inside, dtype=bool)
    if inside.all() or not inside.any():
        return float("nan")
    mean_in = positive[inside].mean()
    return float(positive[~inside].mean() / mean_in) if mean_in > 0 else float("nan")
