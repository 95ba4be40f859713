"""LRP maps of every class of a face and relevance on the landmark regions (dissertation Fig. D.4 and the
smile bias of Appendix D.2).

Maps: the centre crop of the squared face explained with the project's DNN LRP (the thesis composite),
started at the class score ``f_c(x)`` (so evidence for class c is positive whatever the sign of the
score), summed over colour channels and mapped back to image coordinates
(:func:`bowlrp.dnn.preprocess.to_original`). A Fisher-vector faces model is explained on the whole face by
the family's own LRP (:meth:`bowlrp.pipeline.BowModel.explain` with its default method: epsilon with eps 0,
the SVM bias kept out of the map), so its maps conserve: ``sum(map_c) + b_c == f_c(x)`` (the bias is returned).

Region measures, from a region label map (``toyfaces`` ``regions/``; codes
:data:`bowlrp.data.synth.facedraw.REGION_LABELS`), on the positive part ``R+`` of a map:

* mass: ``sum(R+ in region) / sum(R+)``;
* density: ``mean(R+ in region) / mean(R+ over the image)`` — 1 means the region gets its area's share.

Spread: percentile bootstrap over faces (:func:`bootstrap_mean`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..data.images import load_image

FACE_REGIONS = ("eyes", "nose", "mouth", "hair", "skin", "beard", "glasses", "background", "void")


def explain_every_class(model, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relevance maps ``(n_classes, H, W)`` float32 of every class of ``model`` (a loaded network with ``meta``)
    for one ``(H, W, 3)`` image, and the class scores of its centre crop ``(n_classes,)``."""
    import torch

    from ..dnn.attribution import attribute
    from ..dnn.preprocess import centre_input, to_original

    size, crop = model.meta["size"], model.meta["crop"]
    n = len(model.meta["classes"])
    x = centre_input(image, size, crop).repeat(n, 1, 1, 1)
    with torch.no_grad():
        relevance, scores = attribute(model, x, list(range(n)))
    maps = relevance.sum(1).cpu().numpy()
    return (np.stack([to_original(m, image.shape[:2], size, crop) for m in maps]),
            scores[0].cpu().numpy().astype(np.float64))


def fisher_every_class(model, image: np.ndarray,
                       classes: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relevance maps ``(n_classes, H, W)`` float32 of every class of a Fisher-vector ``model``
    (:class:`bowlrp.pipeline.BowModel`) for one ``(H, W, 3)`` image in [0, 1], its class scores ``(n_classes,)``
    and the relevance each class's SVM bias keeps ``(n_classes,)`` (the map plus it is the score); classes in
    the order of ``classes`` (default the model's)."""
    from ..lrp.explain import forward_image

    method = model.explanation_method()
    forward = forward_image(model, image)  # one descriptor extraction and encoding for all classes
    books = [model.explain(None, c, method, forward) for c in (classes or model.class_names)]
    return (np.stack([e.relevance for e in books]).astype(np.float32),
            np.array([e.score for e in books], np.float64), np.array([e.bias_relevance for e in books], np.float64))


def face_explainer(model_dir: str | Path,
                   device: str = "cpu") -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """The maps of every class of the faces model in ``model_dir`` (either family), as a function of one
    ``(H, W, 3)`` image: ``(maps, scores, bias)`` as :func:`fisher_every_class` (classes in ``faces.json``
    order); ``bias`` is None for a network (its rules leave relevance in every layer's biases)."""
    from .models import read_face_model

    record = read_face_model(model_dir)
    if record["family"] == "fisher":
        from ..pipeline import load_bow_model

        fv = load_bow_model(model_dir)
        return lambda image: fisher_every_class(fv, image, record["classes"])
    from ..dnn.io import load_network

    network = load_network(model_dir, device)
    return lambda image: (*explain_every_class(network, image), None)


def region_measures(relevance: np.ndarray, labels: np.ndarray, codes: dict[str, int],
                    regions: Sequence[str] = FACE_REGIONS) -> dict[str, dict[str, float]]:
    """``{region: {"mass", "density"}}`` of the positive relevance of one ``(H, W)`` map on a label map
    (NaN for a region absent from the image or a map without positive relevance)."""
    positive = np.clip(np.asarray(relevance, dtype=np.float64), 0, None)
    total = positive.sum()
    out = {}
    for name in regions:
        mask = labels == codes[name]
        if not mask.any() or total <= 0:
            out[name] = {"mass": float("nan"), "density": float("nan")}
            continue
        mass = positive[mask].sum() / total
        out[name] = {"mass": float(mass), "density": float(mass / mask.mean())}
    return out


def bootstrap_mean(values: Sequence[float], n_boot: int = 2000, seed: int = 0,
                   level: float = 0.95) -> dict[str, float]:
    """Mean of the finite ``values`` with a percentile bootstrap interval: ``{"mean", "lo", "hi", "n"}``."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(1)
    alpha = (1 - level) / 2
    return {"mean": float(v.mean()), "lo": float(np.quantile(means, alpha)),
            "hi": float(np.quantile(means, 1 - alpha)), "n": int(len(v))}


def face_region_table(model_dir: str | Path, items: Sequence[tuple[Path, Path]], codes: dict[str, int],
                      device: str = "cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each (image, region map) pair: region densities ``(n, n_classes, n_regions)``, masses (same shape)
    and class scores ``(n, n_classes)`` of the faces model in ``model_dir`` (either family), regions in
    :data:`FACE_REGIONS` order."""
    explain = face_explainer(model_dir, device)
    densities, masses, scores = [], [], []
    for image_path, region_path in items:
        maps, s, _ = explain(load_image(image_path))
        labels = _labels(region_path)
        per_class = [region_measures(m, labels, codes) for m in maps]
        densities.append([[pc[r]["density"] for r in FACE_REGIONS] for pc in per_class])
        masses.append([[pc[r]["mass"] for r in FACE_REGIONS] for pc in per_class])
        scores.append(s)
    return np.asarray(densities), np.asarray(masses), np.asarray(scores)


def _labels(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img)


def smile_bias(mouth_density: np.ndarray, inside: Sequence[int], seed: int = 0) -> dict:
    """The smile test on smiling faces: ``mouth_density`` ``(n_faces, n_classes)``; per face the mean mouth
    density of the ``inside`` outputs (the 15-43 groups) minus that of the others, bootstrapped over faces.
    Returns ``{"inside": ci, "outside": ci, "difference": ci}``."""
    d = np.asarray(mouth_density, dtype=np.float64)
    mask = np.zeros(d.shape[1], dtype=bool)
    mask[list(inside)] = True
    ins, outs = np.nanmean(d[:, mask], 1), np.nanmean(d[:, ~mask], 1)
    return {"inside": bootstrap_mean(ins, seed=seed), "outside": bootstrap_mean(outs, seed=seed),
            "difference": bootstrap_mean(ins - outs, seed=seed)}
