"""Faithfulness curves of explanations (dissertation Section 3.4, Eq. 3.7; Appendix C.2), the parts
every kind of perturbation shares: AOPC, dataset statistics, plots, and the resumable split run.

A kind of perturbation is a :class:`CurveSource`: pixel regions
(:class:`bowlrp.analysis.region_perturbation.RegionCurves`, any model family) or Fisher-vector
descriptors (:class:`bowlrp.analysis.descriptor_replacement.DescriptorCurves`). For one image it
returns, per order, the scores ``f(x^(k))``, ``k = 0..L``, of each repetition.

:func:`curve_split` runs a source over a split resumably, like ``explain --store``: each finished
image is an atomic part file under ``OUT.json.parts/`` (:class:`bowlrp.store.SplitParts`), a re-run
with the same settings keeps them, and the JSON is written once all images are done. An image that
fails is a counted, named skip.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from ..data.dataset import Sample
from ..data.images import load_image
from ..errors import BowlrpError, SkipLog
from ..model import Model
from ..parallel import ItemResult, ParallelOptions, guarded
from ..persistence import atomic_write_json
from ..runs import run_pending, run_settings
from ..store import SplitParts, image_digest, part_name, write_part

log = logging.getLogger(__name__)

STEP_UNITS = {"regions": "regions replaced", "descriptors": "descriptor batches replaced"}


class CurveSource(Protocol):
    """One kind of perturbation with its orders and settings."""

    mode: str

    @property
    def order_names(self) -> list[str]:
        """The orders compared, as the results name them."""

    def settings(self) -> dict[str, Any]:
        """Everything the curves depend on (JSON values): a resumed run must match them."""

    def image_curves(self, model: Model, image: np.ndarray, class_name: str, index: int) -> dict[str, np.ndarray]:
        """``{order: (repetitions, L+1) float64}`` for one image; ``index`` (its position in the run) seeds
        its draws, so results do not depend on workers or resuming."""


def aopc(curves: np.ndarray) -> np.ndarray:
    """Eq. 3.7 for each curve of ``curves`` ``(..., L+1)`` (scores ``f(x^(0)) .. f(x^(L))``) before the
    average over images: the mean over ``k = 0..L`` of ``f(x^(0)) - f(x^(k))``; shape ``(...)``."""
    curves = np.asarray(curves, np.float64)
    return (curves[..., :1] - curves).mean(-1)


def summarise(per_image: dict[str, np.ndarray]) -> dict[str, Any]:
    """Dataset statistics of one order from its per-image curves ``(n_images, L+1)`` (each already
    averaged over repetitions): ``aopc_mean`` (Eq. 3.7), ``aopc_std`` (over images), ``aopc_sem``,
    ``curve_mean`` and ``curve_std`` (``f(x^(k))`` over images)."""
    curves = np.asarray(per_image["curves"], np.float64)
    values = aopc(curves)
    n = len(values)
    return {"aopc_mean": float(values.mean()), "aopc_std": float(values.std()),
            "aopc_sem": float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "curve_mean": curves.mean(0).tolist(), "curve_std": curves.std(0).tolist()}


def _image_worker(index: int, image_id: str, path: str, model: Model, class_name: str, source: CurveSource,
                  parts: str) -> ItemResult:
    def one() -> None:
        digest = image_digest(path)  # before reading it (see bowlrp.store.write_part)
        curves = source.image_curves(model, load_image(path), class_name, index)
        write_part(parts, index, {f"curve/{name}": c for name, c in curves.items()}, image_id, path, digest)

    return guarded(one, str(path))


def curve_split(model: Model, samples: Sequence[Sample], class_name: str, source: CurveSource, out: str | Path,
                skips: SkipLog | None = None, parallel: ParallelOptions | None = None,
                extra_settings: dict | None = None) -> dict[str, Any]:
    """``source``'s curves of ``class_name`` on every sample, written to the JSON file ``out``.

    Returns (and writes) ``{"mode", "class", "n_images", "orders": {name: {"aopc_mean", "aopc_std",
    "aopc_sem", "curve_mean", "curve_std"}}, "images": [{"image_id", "path", "aopc": {name: value},
    "curves": {name: [f(x^(k)), k = 0..L]}}], "settings", "skipped", "n_resumed"}``; per-image curves
    are averaged over repetitions. Resumable (module docstring).
    """
    model.class_index(class_name)
    names = source.order_names
    skips = skips if skips is not None else SkipLog()
    settings = run_settings(model, class_name, source.settings(), samples, extra_settings)
    with SplitParts(out, len(samples), settings) as parts:  # a second run on ``out`` refuses here
        todo = parts.pending()
        log.info("%s perturbation of %s on %d image(s), %d kept from an interrupted run", source.mode, class_name,
                 len(todo), len(samples) - len(todo))
        run_pending(parts, todo, samples, _image_worker, (model, class_name, source), skips, parallel,
                    f"perturbing {class_name}")
        images = []
        for i in range(len(samples)):
            part = parts.folder / part_name(i)
            if not part.is_file():
                continue
            with np.load(part, allow_pickle=False) as npz:
                curves = {name: npz[f"curve/{name}"].mean(0) for name in names}
                images.append({"image_id": str(npz["image_id"]), "path": str(npz["path"]),
                               "aopc": {name: float(aopc(c)) for name, c in curves.items()},
                               "curves": {name: c.tolist() for name, c in curves.items()}})
        if not images:
            raise BowlrpError(f"no image could be perturbed ({len(skips)} skipped)")
        result = {"mode": source.mode, "class": class_name, "n_images": len(images),
                  "orders": {name: summarise({"curves": [im["curves"][name] for im in images]}) for name in names},
                  "images": images, "settings": {k: v for k, v in settings.items() if k != "image_ids"},
                  "skipped": skips.as_list(), "n_resumed": len(samples) - len(todo)}
        atomic_write_json(out, result)
        parts.remove()
    return result


def plot_curves(result: dict[str, Any], path: str | Path) -> None:
    """Mean score ``f(x^(k))`` against step ``k`` per order, +- one standard deviation over images
    (matplotlib, Agg backend), with each order's AOPC in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, row in result["orders"].items():
        mean, std = np.asarray(row["curve_mean"]), np.asarray(row["curve_std"])
        steps = np.arange(len(mean))
        ax.plot(steps, mean, label=f"{name} (AOPC {row['aopc_mean']:.3g} ± {row['aopc_std']:.2g})")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.15)
    ax.set_xlabel(f"perturbation step k ({STEP_UNITS.get(result['mode'], 'steps')})")
    ax.set_ylabel(f"f(x) of {result['class']}")
    ax.set_title(f"{result['mode']} perturbation, {result['n_images']} image(s)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
