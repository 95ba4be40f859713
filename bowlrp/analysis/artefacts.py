"""What the artefact experiments share (dissertation Sections 6.2-6.3, SPEC §6.4): the class score of
edited images through the model interface, the statistics of score changes, and the bar charts.

The experiments themselves are :mod:`.watermark` (remove a copyright tag by inpainting, paste it onto
other images) and :mod:`.padding` (six ways of making an image square, Section 6.3.1). Both compare a
model's decision value ``f_c(x)`` for one class ``c`` on an original and an edited image; they touch a
model only through :meth:`bowlrp.model.Model.score_images`, so FV/BoW models and networks are measured
by the same code.

Interval: the 95 % interval of a mean change is Student's t-interval,
``mean ± t_{0.975, n-1} · s / sqrt(n)`` with ``s`` the sample standard deviation (ddof 1). It assumes
roughly normal means, which holds for the few dozen to few thousand images these experiments use
unless the changes are very skewed; with one image it is undefined (written as null).
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats

from ..model import Model

#: images scored per call of :meth:`Model.score_images` (the DNN family batches them into one forward pass)
SCORE_BATCH = 32


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean of ``values`` and its Student t-interval (module docstring).

    NaN for the bounds with fewer than two values, NaN everywhere with none; an all-equal sample has
    the zero-width interval ``(mean, mean)``.
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN: undefined numbers are written as null."""
    return float(value) if math.isfinite(value) else None


def change_summary(before: np.ndarray, after: np.ndarray) -> dict[str, Any]:
    """Statistics of the class score change ``after - before`` over images (arrays ``(n,)``).

    ``delta_mean`` and ``ci95`` (t-interval), ``n``, ``flip_share``: the share of images whose
    decision changes sign (``f > 0`` before and not after, or the reverse), with ``n_flipped``, and
    the share predicted positive before and after.
    """
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    delta = after - before
    mean, lo, hi = mean_interval(delta)
    flipped = (before > 0) != (after > 0)
    n = len(delta)
    return {"delta_mean": finite_or_none(mean), "ci95": [finite_or_none(lo), finite_or_none(hi)], "n": n,
            "flip_share": finite_or_none(flipped.mean() if n else math.nan), "n_flipped": int(flipped.sum()),
            "positive_before": finite_or_none((before > 0).mean() if n else math.nan),
            "positive_after": finite_or_none((after > 0).mean() if n else math.nan),
            "score_before_mean": finite_or_none(before.mean() if n else math.nan),
            "score_after_mean": finite_or_none(after.mean() if n else math.nan)}


def class_scores(model: Model, images: Sequence[np.ndarray], column: int, batch: int = SCORE_BATCH) -> np.ndarray:
    """``f_c`` of every image ``(H, W, 3)`` in [0, 1]: ``(n,)`` float64, ``batch`` images per
    :meth:`Model.score_images` call."""
    out = [np.asarray(model.score_images(list(images[i:i + batch])), np.float64)[:, column]
           for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros(0)


def save_figure(fig, out: str | Path) -> None:
    """Write a matplotlib figure as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt

    from ..persistence import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())


def interval_bars(ax, labels: Sequence[str], groups: Sequence[tuple[str, Callable[[str], dict | None]]]) -> None:
    """Grouped bars of ``delta_mean`` with their 95 % interval as whiskers (Fig. 6.8 style).

    ``groups`` are ``(legend name, summary of a label or None)``; summaries are :func:`change_summary`
    rows (``delta_mean``, ``ci95``).
    """
    width = 0.8 / max(1, len(groups))
    for j, (name, summary_of) in enumerate(groups):
        x = np.arange(len(labels)) + (j - (len(groups) - 1) / 2) * width
        rows = [summary_of(label) for label in labels]
        means = [np.nan if r is None or r["delta_mean"] is None else r["delta_mean"] for r in rows]
        lo = [np.nan if r is None or r["ci95"][0] is None else m - r["ci95"][0] for r, m in zip(rows, means)]
        hi = [np.nan if r is None or r["ci95"][1] is None else r["ci95"][1] - m for r, m in zip(rows, means)]
        ax.bar(x, means, width, yerr=[lo, hi], capsize=3, label=name)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=20, ha="right")
