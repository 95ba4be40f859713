"""Pascal VOC classification average precision.

Labels follow the VOC ``<class>_<split>.txt`` convention: 1 positive, -1 negative, 0
"difficult" (ignored: neither a hit nor a false alarm, and not counted as a positive).
Ties in the scores keep the input order (stable sort), as the devkit's MATLAB ``sort`` does.
A class without any positive has no defined AP: the functions return NaN.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import DataError


def _precision_recall(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Precision and recall after each ranked, non-ignored item; None if there is no positive."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise DataError(f"scores and labels differ in length: {scores.shape[0]} vs {labels.shape[0]}")
    if not np.all(np.isin(labels, (-1, 0, 1))):
        raise DataError("labels must be 1 (positive), -1 (negative) or 0 (ignored)")
    if np.isnan(scores).any():
        raise DataError("scores contain NaN")
    keep = labels != 0
    scores, labels = scores[keep], labels[keep]
    n_pos = int((labels > 0).sum())
    if n_pos == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    hits = labels[order] > 0
    tp = np.cumsum(hits)
    fp = np.cumsum(~hits)
    return tp / (tp + fp), tp / n_pos


def voc_ap_11point(scores: np.ndarray, labels: np.ndarray) -> float:
    """VOC2007 AP: mean over recall levels t in {0, 0.1, ..., 1} of max precision at recall >= t.

    scores (n,) real, labels (n,) in {1, -1, 0}; returns a float in [0, 1] (NaN if no positive).
    """
    pr = _precision_recall(scores, labels)
    if pr is None:
        return float("nan")
    precision, recall = pr
    ap = 0.0
    for t in np.linspace(0.0, 1.0, 11):
        reached = recall >= t - 1e-12  # linspace(0, 1, 11) is not exact in binary
        ap += precision[reached].max() if reached.any() else 0.0
    return float(ap / 11.0)


def voc_ap_area(scores: np.ndarray, labels: np.ndarray) -> float:
    """VOC2010+ AP: area under the monotonically decreasing envelope of the precision/recall curve.

    scores (n,) real, labels (n,) in {1, -1, 0}; returns a float in [0, 1] (NaN if no positive).
    """
    pr = _precision_recall(scores, labels)
    if pr is None:
        return float("nan")
    precision, recall = pr
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # precision envelope from the right
    steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))


AP_METHODS = {"11point": voc_ap_11point, "area": voc_ap_area}


def mean_ap(
    scores: np.ndarray, labels: np.ndarray, class_names: Sequence[str], method: str = "11point"
) -> tuple[dict[str, float], float]:
    """Per-class AP and their mean.

    scores (n, C), labels (n, C) in {1, -1, 0}; ``method`` is ``"11point"`` (VOC2007) or ``"area"``.
    The mean is over classes with a defined AP (at least one positive); NaN if there is none.
    """
    if method not in AP_METHODS:
        raise DataError(f"unknown AP method {method!r}; choose one of {', '.join(AP_METHODS)}")
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.ndim != 2 or scores.shape != labels.shape or scores.shape[1] != len(class_names):
        raise DataError(
            f"scores {scores.shape} and labels {labels.shape} must both be (n, {len(class_names)})"
        )
    ap_fn = AP_METHODS[method]
    per_class = {name: ap_fn(scores[:, c], labels[:, c]) for c, name in enumerate(class_names)}
    defined = [v for v in per_class.values() if not np.isnan(v)]
    return per_class, (float(np.mean(defined)) if defined else float("nan"))


def sign_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Share of items whose score sign matches the label (f > 0 for 1, f <= 0 for -1); label 0 ignored.

    scores (n,), labels (n,) in {1, -1, 0}; NaN when no item has a label of 1 or -1.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    keep = labels != 0
    if not keep.any():
        return float("nan")
    return float(np.mean((scores[keep] > 0) == (labels[keep] > 0)))


def _json_number(value: float) -> float | None:
    """NaN (an undefined AP) as None, so the JSON stays standard."""
    return None if np.isnan(value) else float(value)


def evaluation_summary(scores: np.ndarray, labels: np.ndarray, class_names: Sequence[str]) -> dict:
    """Everything ``evaluate --json`` reports about scores against labels.

    scores (n, C), labels (n, C) in {1, -1, 0}. Returns ``{"ap", "map"}`` (VOC 2007 11-point),
    ``{"ap_area", "map_area"}`` (VOC 2010+ area) and ``"accuracy"`` (sign of f per class, as used
    for the shapes task), per class as {name: value}; undefined values are None.
    """
    ap, mean = mean_ap(scores, labels, class_names, method="11point")
    ap_area, mean_area = mean_ap(scores, labels, class_names, method="area")
    accuracy = {name: sign_accuracy(scores[:, c], labels[:, c]) for c, name in enumerate(class_names)}
    as_json = lambda table: {k: _json_number(v) for k, v in table.items()}  # noqa: E731
    return {"ap": as_json(ap), "map": _json_number(mean), "ap_area": as_json(ap_area),
            "map_area": _json_number(mean_area), "accuracy": as_json(accuracy)}


def format_ap_table(result: dict, title: str = "") -> str:
    """Per-class AP (11-point) and sign accuracy of an :func:`evaluation_summary` as an aligned text table."""
    def cell(value):
        return "   n/a" if value is None else f"{value:6.3f}"

    lines = [title] if title else []
    lines.append(f"  {'class':<14} {'AP':>6} {'acc':>6}")
    for name, value in result["ap"].items():
        lines.append(f"  {name:<14} {cell(value)} {cell(result['accuracy'][name])}")
    lines.append(f"  {'mAP':<14} {cell(result['map'])}")
    return "\n".join(lines)
