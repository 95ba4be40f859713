"""How much a model decides from context: the outside-inside relevance ratio mu per image and class
(dissertation Section 4.4, Eq. 4.11; Fig. 4.6 compares FV and DNN per class).

For one image and its class, mu is the mean positive relevance on pixels outside all boxes of that
class over the mean inside them (:func:`bowlrp.analysis.regions.context_ratio`); mu > 1: the evidence
lies more densely outside the object. Per class, mu is summarised over the images whose annotations
hold at least one box of the class. Any relevance store works — BoW/FV and DNN stores share one
layout — so one table puts the model families side by side, each with its AP on the same images
(from the scores the store records).

An image whose mu is undefined (no positive relevance inside the boxes, or boxes covering the whole
image) is counted in ``n_undefined`` and left out of the statistics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..data import open_dataset
from ..data.dataset import Dataset, Sample
from ..errors import BowlrpError, DataError
from ..store import RelevanceStore
from ..svm.metrics import voc_ap_11point
from .regions import box_mask, context_ratio


@dataclass
class ClassContext:
    """mu of one class from one store.

    Attributes
    ----------
    class_name : str
    store : str
        The store's path.
    family : str
        ``"fv"``, ``"bow"`` or ``"dnn"`` (the store's ``model_variant``).
    per_image : dict
        ``{image id: mu}`` over the images with a box of the class and a defined mu.
    n_undefined : int
        Images with a box of the class whose mu is undefined (see the module docstring).
    ap : float
        11-point AP of the store's scores for the class on all its images (NaN without positives).
    """

    class_name: str
    store: str
    family: str
    per_image: dict[str, float] = field(default_factory=dict)
    n_undefined: int = 0
    ap: float = float("nan")

    @property
    def values(self) -> np.ndarray:
        return np.array(list(self.per_image.values()), dtype=np.float64)

    @property
    def mu_mean(self) -> float:
        return float(self.values.mean()) if self.per_image else float("nan")

    @property
    def mu_median(self) -> float:
        return float(np.median(self.values)) if self.per_image else float("nan")

    @property
    def mu_std(self) -> float:
        return float(self.values.std()) if self.per_image else float("nan")

    def row(self) -> dict:
        """One row of ``bowlrp context --json`` (NaN written as null)."""
        def number(value: float) -> float | None:
            return value if math.isfinite(value) else None

        return {"class": self.class_name, "store": self.store, "family": self.family,
                "mu_mean": number(self.mu_mean), "mu_median": number(self.mu_median), "mu_std": number(self.mu_std),
                "n_images": len(self.per_image), "n_undefined": self.n_undefined, "ap": number(self.ap),
                "per_image": {k: number(v) for k, v in self.per_image.items()}}


def class_boxes(sample: Sample, class_name: str) -> list[tuple[float, float, float, float]]:
    """Every box of ``class_name`` in the sample's annotations (difficult ones too: they are the object)."""
    return [obj.box for obj in sample.objects if obj.name == class_name]


def store_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The stores named: files as given, folders as their ``*.h5`` files in name order."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.h5"))
            if not found:
                raise BowlrpError(f"{path}: a folder without relevance stores (*.h5)")
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise BowlrpError(f"{path}: no such store or folder")
    return out


def _samples_by_id(dataset: Dataset) -> dict[str, Sample]:
    samples: dict[str, Sample] = {}
    for split in dataset.splits():
        for sample in dataset.split(split):
            samples.setdefault(sample.image_id, sample)
    if not any(sample.objects for sample in samples.values()):
        raise DataError(f"{dataset.root}: no bounding-box annotations (VOC Annotations/*.xml with objects); "
                        "the context ratio needs the boxes of the target class")
    return samples


def store_context(store: RelevanceStore, samples: dict[str, Sample], classes: Sequence[str]) -> ClassContext:
    """mu per image of the store's class, its summary and the AP of the store's scores.

    ``samples`` maps image ids to the dataset's samples (annotations and labels over ``classes``).
    """
    class_name = str(store.attrs["class_name"])
    if class_name not in classes:
        raise DataError(f"{store.path}: class {class_name!r} is not a class of the dataset")
    column = list(classes).index(class_name)
    family = str(store.attrs.get("model_variant", store.attrs.get("model_family", store.attrs.get("model_kind", "bow"))))
    result = ClassContext(class_name, str(store.path), family)
    scores, labels = [], []
    for image_id, item in store.items():
        sample = samples.get(image_id)
        if sample is None:
            raise DataError(f"{store.path}: image {image_id!r} is not in the dataset; give the --data the store "
                            "was made from")
        scores.append(float(item["score"]))
        labels.append(int(sample.labels[column]))
        boxes = class_boxes(sample, class_name)
        if not boxes:
            continue
        relevance = item["relevance"]
        mu = context_ratio(relevance, box_mask(relevance.shape, boxes))
        if math.isfinite(mu):
            result.per_image[image_id] = mu
        else:
            result.n_undefined += 1
    if scores:
        result.ap = voc_ap_11point(np.array(scores), np.array(labels))
    return result


def context_table(stores: Iterable[str | Path], data: str | Path, format: str = "voc",
                  classes: Sequence[str] | None = None) -> list[ClassContext]:
    """:class:`ClassContext` of every store (files, or folders of ``*.h5``), in class then store order.

    ``classes`` keeps only the stores of these classes; naming a class no store holds is an error.
    """
    dataset = open_dataset(data, format=format)
    samples = _samples_by_id(dataset)
    results = []
    for path in store_paths(stores):
        with RelevanceStore(path) as store:
            if classes is not None and str(store.attrs["class_name"]) not in classes:
                continue
            results.append(store_context(store, samples, dataset.classes))
    held = {r.class_name for r in results}
    missing = [c for c in (classes or ()) if c not in held]
    if missing:
        raise BowlrpError(f"no store holds class {', '.join(map(repr, missing))}")
    if not results:
        raise BowlrpError("no relevance store to measure")
    order = {name: i for i, name in enumerate(dataset.classes)}
    return sorted(results, key=lambda r: order.get(r.class_name, len(order)))


def format_context_table(results: Sequence[ClassContext]) -> str:
    """Classes as rows, stores side by side: mean (median) mu, n images, AP."""
    labels = _store_labels(results)
    columns = list(dict.fromkeys(labels[r.store] for r in results))
    by_class: dict[str, dict[str, ClassContext]] = {}
    for r in results:
        by_class.setdefault(r.class_name, {})[labels[r.store]] = r
    width = 30
    lines = [f"  {'class':<14}" + "".join(f"{c:>{width}}" for c in columns),
             f"  {'':<14}" + "".join(f"{'mu mean (median)   n    AP':>{width}}" for _ in columns)]
    for name, row in by_class.items():
        cells = []
        for c in columns:
            r = row.get(c)
            cells.append(f"{'—':>{width}}" if r is None else
                         f"{r.mu_mean:>7.3f} ({r.mu_median:6.3f}) {len(r.per_image):4d} {r.ap:5.3f}".rjust(width))
        lines.append(f"  {name:<14}" + "".join(cells))
    return "\n".join(lines)


def _store_labels(results: Sequence[ClassContext]) -> dict[str, str]:
    """A column name per store: the model variant, with the store's folder when several share one."""
    variants: dict[str, set[str]] = {}
    for r in results:
        variants.setdefault(r.family, set()).add(str(Path(r.store).parent))
    return {r.store: r.family if len(variants[r.family]) == 1 else f"{r.family} ({Path(r.store).parent.name})"
            for r in results}


def plot_context(results: Sequence[ClassContext], out: str | Path) -> None:
    """Fig. 4.6-style bars: mean mu per class, one bar per store column, the spread as error bars and the
    median as a diamond; written to ``out`` (PNG), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    from ..persistence import atomic_write_bytes

    labels = _store_labels(results)
    columns = list(dict.fromkeys(labels[r.store] for r in results))
    classes = list(dict.fromkeys(r.class_name for r in results))
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(classes) * len(columns) + 2), 4.0))
    for j, column in enumerate(columns):
        rows = {r.class_name: r for r in results if labels[r.store] == column}
        x = np.arange(len(classes)) + (j - (len(columns) - 1) / 2) * width
        means = [rows[c].mu_mean if c in rows else np.nan for c in classes]
        spread = [rows[c].mu_std if c in rows else np.nan for c in classes]
        medians = [rows[c].mu_median if c in rows else np.nan for c in classes]
        ax.bar(x, means, width, yerr=spread, capsize=2, label=column)
        ax.plot(x, medians, linestyle="none", marker="D", markersize=5, color="white", markeredgecolor="black",
                label="median" if j == len(columns) - 1 else None)
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xticks(np.arange(len(classes)), classes, rotation=45, ha="right")
    ax.set_ylabel("outside / inside relevance ratio μ")
    ax.set_title("Use of context (Eq. 4.11): mean ± std over images, ◇ median")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())
