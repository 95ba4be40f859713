"""The faces study's figures (matplotlib, Agg backend, PNG written atomically)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from ..persistence import atomic_write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def accuracy_figure(rows: Sequence[dict], swaps: Sequence[dict], path: Path) -> None:
    """Grouped bars: accuracy per task x alignment x initialisation, and own vs swapped test set (networks;
    rows of another ``family`` are left out)."""
    plt = _pyplot()
    rows = [r for r in rows if r.get("family", "dnn") == "dnn"]
    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, 2 * len(tasks), figsize=(4.2 * 2 * len(tasks), 3.2), squeeze=False)
    for t, task in enumerate(tasks):
        ax = axes[0, 2 * t]
        for k, init in enumerate(("random", "pretrained")):
            sel = [r for r in rows if r["task"] == task and r["init"] == init]
            ax.bar(np.arange(len(sel)) + 0.4 * k, [100 * r["accuracy"] for r in sel], 0.4, label=init)
            ax.set_xticks(np.arange(len(sel)) + 0.2, [f"[{r['align'][0]}]" for r in sel])
        ax.set_title(f"{task}: held-out fold")
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=7)
        ax = axes[0, 2 * t + 1]
        sel = [s for s in swaps if s["task"] == task]
        x = np.arange(len(sel))
        ax.bar(x, [100 * s["own_accuracy"] for s in sel], 0.4, label="own alignment")
        ax.bar(x + 0.4, [100 * s["accuracy"] for s in sel], 0.4, label="swapped")
        ax.set_xticks(x + 0.2, [f"[{s['trained'][0]}]->[{s['tested'][0]}]\n{s['init']}" for s in sel], fontsize=7)
        ax.set_title(f"{task}: test-set swapping")
        ax.legend(fontsize=7)
    _save(fig, path)


def maps_figure(images: Sequence[np.ndarray], maps: Sequence[np.ndarray], classes: Sequence[str],
                truths: Sequence[str], path: Path) -> None:
    """One row per face: the face, then the relevance map of every class (red positive, blue negative), each
    map on its own symmetric scale: the outputs' scores differ by an order of magnitude, and on one scale
    per face the weaker outputs' maps (often the true class') would be blank."""
    plt = _pyplot()
    n, c = len(images), len(classes)
    fig, axes = plt.subplots(n, c + 1, figsize=(1.3 * (c + 1), 1.4 * n), squeeze=False)
    for i, (img, m) in enumerate(zip(images, maps)):
        axes[i, 0].imshow(np.clip(img, 0, 1))
        axes[i, 0].set_title(f"true {truths[i]}", fontsize=7)
        for k in range(c):
            scale = float(np.abs(m[k]).max()) or 1.0
            axes[i, k + 1].imshow(m[k], cmap="bwr", vmin=-scale, vmax=scale)
            if i == 0:
                axes[i, k + 1].set_title(classes[k], fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    _save(fig, path)


def regions_figure(result: dict, path: Path) -> None:
    """Mouth density per age output on smiling faces (with the bootstrap interval), and the density of each
    region in the true class' map per age group."""
    plt = _pyplot()
    age = result["models"].get("age")
    if age is None:
        fig = plt.figure(figsize=(3, 1))
        _save(fig, path)
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    names = list(age["smile"]["mouth_density_by_output"])
    smiles = [("network", age)] + [("FV", m) for m in result["models"].values()
                                   if m.get("family") == "fisher" and m.get("smile")]
    width = 0.8 / len(smiles)
    for k, (label, model) in enumerate(smiles):  # the network's bars, beside them the FV model's, hatched
        by_output = model["smile"]["mouth_density_by_output"]
        means = np.array([by_output[c]["mean"] for c in names])
        err = np.array([[by_output[c]["mean"] - by_output[c]["lo"], by_output[c]["hi"] - by_output[c]["mean"]]
                        for c in names]).T
        colours = ["tab:red" if c in age["smile"]["inside_classes"] else "tab:grey" for c in names]
        axes[0].bar(np.arange(len(names)) + k * width, means, width, yerr=err, color=colours, label=label,
                    hatch="//" if k else None, edgecolor="k" if k else None)
    axes[0].set_xticks(np.arange(len(names)) + width * (len(smiles) - 1) / 2, names)
    if len(smiles) > 1:
        axes[0].legend(fontsize=7)
    axes[0].tick_params(axis="x", labelrotation=45, labelsize=7)
    axes[0].axhline(1.0, color="k", lw=0.6)
    axes[0].set_title("smiling faces: mouth relevance density per age output", fontsize=9)
    axes[0].set_ylabel("density / image mean")
    regions = [r for r in result["regions"] if r not in ("void",)]
    groups = list(age["by_group"])
    table = np.array([[age["by_group"][g][r]["density"]["mean"] for r in regions] for g in groups])
    im = axes[1].imshow(table, cmap="viridis", aspect="auto")
    axes[1].set_xticks(range(len(regions)), regions, rotation=45, fontsize=7)
    axes[1].set_yticks(range(len(groups)), groups, fontsize=7)
    axes[1].set_title("true-class map: region density per age group", fontsize=9)
    fig.colorbar(im, ax=axes[1])
    _save(fig, path)
