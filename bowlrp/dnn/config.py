"""A network training's settings, without importing PyTorch: ``bowlrp dnn train``, the study and the
faces models build a :class:`TrainConfig` before they need :mod:`bowlrp.dnn.train` (and torch)."""
from __future__ import annotations

from dataclasses import dataclass

from .archs import INPUT_GEOMETRY


@dataclass
class TrainConfig:
    """What :func:`bowlrp.dnn.train.train` trains and how (AdamW on the summed hinge loss)."""

    arch: str = "smallcnn"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    size: int | None = None   # longest side after resizing (default per architecture)
    crop: int | None = None   # square crop (default per architecture)
    weights: str | None = None  # torchvision-layout state dict to start from

    def geometry(self) -> tuple[int, int]:
        """``(size, crop)`` in px: the given ones, else the architecture's."""
        size, crop = INPUT_GEOMETRY[self.arch]
        return self.size or size, self.crop or crop
