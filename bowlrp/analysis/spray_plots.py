"""Figures of a SpRAy run (:mod:`.spray`): what a person looks at to name a strategy.

* :func:`plot_spectra`: the smallest eigenvalues of every class (Figs. 6.3 and 6.5), legend in
  rank order;
* :func:`plot_embedding`: one class' t-SNE coordinates coloured by the eigengap's clustering (Fig. 6.4);
* :func:`plot_cluster_strips`: per cluster, its most central images beside their heatmaps.

Every figure is written as PNG through a temporary file and a rename.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from ..heatmap import colorize, overlay
from ..persistence import atomic_write_bytes, atomic_write_json
from ..store import RelevanceStore
from .spray import central_members
from .spray_classes import ClassSpray


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: str | Path) -> None:
    plt = _figure()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out, buffer.getvalue())


def plot_spectra(results: Sequence[ClassSpray], out: str | Path) -> None:
    """Eigenvalues lambda_1..lambda_m of ``L_sym`` per class, classes in rank order."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for r in sorted(results, key=lambda r: (r.rank or 0, r.class_name)):
        values = r.analysis.eigenvalues
        ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3,
                label=f"{r.rank}. {r.class_name} (gap k={r.analysis.eigengap_k}, n={len(r.image_ids)})")
    ax.set_xlabel("index i")
    ax.set_ylabel("eigenvalue λ_i of L_sym")
    ax.set_xticks(range(1, max(len(r.analysis.eigenvalues) for r in results) + 1))
    ax.set_title("SpRAy eigenvalue spectra (classes ranked by λ_2)")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, out)


def plot_embedding(result: ClassSpray, out: str | Path) -> None:
    """t-SNE scatter of one class, colours = clusters of the eigengap's k."""
    plt = _figure()
    a = result.analysis
    k = a.shown_k
    labels = a.labels[k]
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    cmap = plt.get_cmap("tab10")
    for c in range(k):
        points = a.embedding[labels == c]
        ax.scatter(points[:, 0], points[:, 1], s=12, color=cmap(c % 10), label=f"cluster {c} ({len(points)})")
    ax.set_title(f"{result.class_name} ({result.family}): t-SNE, spectral clusters k={k}")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    _save(fig, out)


def _image_or_none(path: str, shape: tuple[int, int]) -> np.ndarray | None:
    from ..data import load_image

    try:
        image = load_image(path)
    except Exception:  # a moved or unreadable file: the strip shows the heatmap alone
        return None
    return image if image.shape[:2] == shape else None


def plot_cluster_strips(result: ClassSpray, relevance, out: str | Path, count: int = 6) -> None:
    """Per cluster of the eigengap's k, a row of its ``count`` most central images, each as the
    image with the heatmap over it (:func:`bowlrp.heatmap.overlay`) beside the heatmap alone
    (:func:`bowlrp.heatmap.colorize`). ``relevance(image_id)`` returns a map at image size."""
    plt = _figure()
    a = result.analysis
    labels = a.labels[a.shown_k]
    rows = central_members(a.eigenvectors, labels, count)
    width = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), 2 * width, figsize=(1.6 * 2 * width, 1.7 * len(rows)), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for c, members in enumerate(rows):
        for j, i in enumerate(members):
            R = relevance(result.image_ids[i])
            image = _image_or_none(result.paths[i], R.shape)
            left, right = axes[c, 2 * j], axes[c, 2 * j + 1]
            left.imshow(overlay(image, R) if image is not None else np.full((*R.shape, 3), 255, np.uint8))
            right.imshow(colorize(R))
            left.set_title(result.image_ids[i], fontsize=6)
        axes[c, 0].text(-0.1, 0.5, f"cluster {c}\n({int((labels == c).sum())} maps)", transform=axes[c, 0].transAxes,
                        ha="right", va="center", fontsize=8)
    fig.suptitle(f"{result.class_name} ({result.family}): most central maps per cluster (k={a.shown_k})", fontsize=9)
    fig.tight_layout()
    _save(fig, out)


def file_name(class_name: str) -> str:
    """A class name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", class_name)


def write_spray_outputs(results: Sequence[ClassSpray], out: str | Path, central: int = 6) -> None:
    """What ``bowlrp spray`` writes into ``out``: ``spray.json`` (per class: :meth:`ClassSpray.row`)
    and the figures ``spectra.png``, ``tsne_<class>.png`` and ``clusters_<class>.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "spray.json", {"classes": {r.class_name: r.row(central) for r in results}})
    plot_spectra(results, out / "spectra.png")
    for r in results:
        name = file_name(r.class_name)
        plot_embedding(r, out / f"tsne_{name}.png")
        with RelevanceStore(r.store) as store:
            plot_cluster_strips(r, store.relevance, out / f"clusters_{name}.png", count=central)
