"""DNN model directories: ``model.json`` (architecture, classes, input geometry, training record) and
``weights.pt`` (a state dict, read with ``torch.load(weights_only=True)``: loading cannot run code).
Both are written atomically, weights first, so a directory with a ``model.json`` is complete."""
from __future__ import annotations

import io
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from ..model import read_model_json
from ..persistence import MODEL_JSON, atomic_write_bytes, atomic_write_json

from .models import build

FORMAT = "bowlrp.dnn"
WEIGHTS = "weights.pt"


def tensor_bytes(obj) -> bytes:
    """``torch.save`` of tensors/state dicts into bytes (for atomic writes)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def load_tensors(path: str | Path):
    """``torch.load(path, weights_only=True)`` with a one-line error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelError(f"{path}: missing") from None
    except Exception as exc:  # pickle payloads, truncated files
        raise ModelError(f"{path}: not a plain tensor file ({' '.join(str(exc).split())[:200]})") from None


def save_network(directory: str | Path, model: nn.Module, meta: dict) -> None:
    """Write ``weights.pt`` then ``model.json`` (``meta`` needs ``arch`` and ``classes``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / WEIGHTS, tensor_bytes({k: v.detach().cpu() for k, v in model.state_dict().items()}))
    atomic_write_json(directory / MODEL_JSON, {"format": FORMAT, **meta})


def read_meta(directory: str | Path) -> dict:
    """The ``model.json`` of a network directory; a one-line error for any other file."""
    meta = read_model_json(directory)
    path = Path(directory) / MODEL_JSON
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not a bowlrp DNN model (format {meta.get('format')!r})")
    return meta


def load_network(directory: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The model saved in ``directory``, in eval mode on ``device``; ``model.meta`` holds its ``model.json``."""
    meta = read_meta(directory)
    model = build(meta["arch"], len(meta["classes"]))
    try:
        model.load_state_dict(load_tensors(Path(directory) / WEIGHTS))
    except RuntimeError as exc:
        raise ModelError(f"{directory}: weights do not fit {meta['arch']} ({' '.join(str(exc).split())[:200]})") \
            from None
    model.meta = meta
    return model.to(device).eval()
