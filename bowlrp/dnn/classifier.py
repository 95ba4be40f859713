"""A saved network as a :class:`bowlrp.model.Model`: the ``"dnn"`` family.

Scores are those of the centre crop (Appendix C.1); an explanation attributes the class score of
the centre crop with LRP or a baseline (:func:`bowlrp.dnn.attribution.attribute`) and maps the
relevance back through crop, padding and resize to the original image
(:func:`bowlrp.dnn.preprocess.to_original`), so the map lies on the same pixels as a BoW/FV map.
A network has no descriptors and splits no bias off: ``bias_relevance`` and ``residual`` are 0,
``absorbed`` is ``score - sum(relevance)`` (what the rules left in biases and stabilisers; for the
gradient baselines simply the difference), ``descriptor_relevance`` ``(0,)`` and
``descriptor_frames`` ``(0, 4)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..data.images import load_image
from ..errors import BowlrpError, SkipLog
from ..explanation import Explanation
from ..model import Model
from ..parallel import ParallelOptions
from ..progress import progress
from .attribution import attribute, explanation_settings
from .io import MODEL_JSON, WEIGHTS, load_network, load_torchvision
from .lrp.composites import THESIS
from .preprocess import centre_input, to_original


@dataclass(frozen=True)
class DnnAttribution:
    """How a network is explained: an attribution ``method`` (``"lrp"`` with a ``composite`` and its
    ``flat_depth``, or a baseline) with its ``params``; ``recorded`` holds what it uses, for the record."""

    method: str
    composite: str | None
    flat_depth: int | None
    params: dict = field(default_factory=dict)
    recorded: dict = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        return dict(self.recorded)

    def describe(self) -> str:
        """e.g. ``"lrp, epsilon-alpha2beta1-flat (epsilon=0.01, alpha=2, beta=1, flat_depth=1)"``: the
        parameters as recorded, beta in the project's sign (alpha - beta = 1, beta >= 0)."""
        used = {k: v for k, v in self.recorded.items() if k not in ("method", "composite")}
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in used.items())
        name = f"lrp, {self.composite}" if self.method == "lrp" else self.method
        return f"{name} ({params})" if params else name


class DnnClassifier(Model):
    """A network loaded with :func:`bowlrp.dnn.io.load_network` (``network.meta`` is its ``model.json``)."""

    family = "dnn"
    explains_uint8 = True  # 8-bit images explained as uint8: 4x less memory while a photo is explained
    model_files = (MODEL_JSON, WEIGHTS)
    scoring_note = "centre crop"

    def __init__(self, network: nn.Module, source: str | Path | None = None,
                 files: tuple[str, ...] | None = None) -> None:
        self.network = network
        self.meta = network.meta
        self.class_names = list(self.meta["classes"])
        self.source = None if source is None else Path(source)
        if files is not None:  # a network read from other files than a model directory's (torchvision's)
            self.model_files = files

    def score_files(self, paths: Sequence[str | Path], skips: SkipLog,
                    parallel: ParallelOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
        # batches on the model's device (worker processes would each hold a copy of the network);
        # images are loaded a batch at a time, so a split never sits in memory whole
        # progress as the BoW/FV family shows it (bowlrp.progress, "scoring"), per image
        batch_size = 32
        rows, ok, pending = [np.zeros((0, len(self.class_names)))], np.zeros(len(paths), dtype=bool), []
        with progress(len(paths), "scoring", parallel is not None and parallel.progress, unit="img") as bar:
            for i, path in enumerate(paths):
                try:
                    pending.append(load_image(path))
                    ok[i] = True
                except BowlrpError as exc:
                    skips.add(str(path), str(exc))
                if len(pending) == batch_size or (i == len(paths) - 1 and pending):
                    rows.append(self.score_images(pending, batch_size))
                    pending = []
                bar.update()
        return np.concatenate(rows), ok

    def score_images(self, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Centre-crop scores, ``batch_size`` images per forward pass."""
        size, crop = self.meta["size"], self.meta["crop"]
        device = next(self.network.parameters()).device
        rows = [np.zeros((0, len(self.class_names)))]
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = torch.cat([centre_input(image, size, crop) for image in images[start:start + batch_size]])
                rows.append(self.network(batch.to(device)).double().cpu().numpy())
        return np.concatenate(rows)

    def explanation_method(self, method: str = "lrp", composite: str = THESIS, flat_depth: int | None = None,
                           **params: Any) -> DnnAttribution:
        """``method`` of :func:`bowlrp.dnn.attribution.method_names`; for ``"lrp"`` a registered
        ``composite`` and its ``flat_depth``; ``params`` as :func:`~bowlrp.dnn.attribution.attribute` takes them."""
        recorded = explanation_settings(self.network, method, composite, flat_depth, **params)
        return DnnAttribution(method, composite if method == "lrp" else None, flat_depth, dict(params), recorded)

    def explain(self, image: np.ndarray, class_name: str, method: DnnAttribution) -> Explanation:
        size, crop = self.meta["size"], self.meta["crop"]
        k = self.class_index(class_name)
        x = centre_input(image, size, crop)
        options = {"composite": method.composite} if method.method == "lrp" else {}
        r, out = attribute(self.network, x, k, method=method.method, flat_depth=method.flat_depth, **options,
                           **method.params)
        pixel = r[0].sum(0).detach().cpu().double()
        relevance = to_original(pixel, image.shape[:2], size, crop)
        score = float(out[0, k])
        return Explanation(relevance=relevance, score=score, bias_relevance=0.0,
                           absorbed=score - float(np.sum(relevance, dtype=np.float64)), residual=0.0,
                           descriptor_relevance=np.zeros(0, np.float32),
                           descriptor_frames=np.zeros((0, 4), np.float32),
                           feature_relevance=np.zeros(0, np.float32), class_name=class_name,
                           settings=method.settings())


def check_device(device: str | None) -> str:
    """``device`` (default ``"cpu"``) if torch can use it here; a one-line error otherwise."""
    device = device or "cpu"
    if not (device == "cpu" or device.startswith("cuda")):
        raise BowlrpError(f"device must be cpu or cuda[:N], got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BowlrpError(f"device {device}: no CUDA device is available here (torch {torch.__version__})")
    return device


def load_dnn_classifier(directory: str | Path, device: str | None = None) -> DnnClassifier:
    """The ``"dnn"`` family's loader for :func:`bowlrp.model.load_model`."""
    return DnnClassifier(load_network(directory, check_device(device)), directory)


def load_torchvision_classifier(weights: str | Path, arch: str, classes: str | Path | None = None,
                                device: str | None = None) -> DnnClassifier:
    """A torchvision-layout state dict as a :class:`DnnClassifier` (:func:`bowlrp.dnn.io.load_torchvision`);
    a store made with it is pinned to the weights file and the class list file."""
    network = load_torchvision(weights, arch, classes, check_device(device))
    files = (Path(weights).name,) + ((str(Path(classes).resolve()),) if classes is not None else ())
    return DnnClassifier(network, Path(weights).resolve().parent, files)
