"""DNN model directories: ``model.json`` (architecture, classes, input geometry, training record) and
``weights.pt`` (a state dict, read with ``torch.load(weights_only=True)``: loading cannot run code).
Both are written atomically, weights first, so a directory with a ``model.json`` is complete; the JSON
records the weights' SHA-256 (``weights_sha256``), so a save killed between the two files, which leaves
new weights beside the old JSON, is refused at load instead of predicting with a mix of two models.

Loading checks what both files hold before the network is used: a known architecture, distinct
class names, an input geometry that can be cut, weights of the architecture's names, shapes and
dtypes (the output layer as wide as the class list), all finite, batch-norm variances non-negative.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from ..model import read_model_json
from ..model_schema import Field
from ..persistence import MODEL_JSON, atomic_write_bytes, atomic_write_json, check_file_digest

from .models import ARCHITECTURES, HEAD, build

FORMAT = "bowlrp.dnn"
WEIGHTS = "weights.pt"
WEIGHTS_DIGEST = "weights_sha256"


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
    data = tensor_bytes({k: v.detach().cpu() for k, v in model.state_dict().items()})
    atomic_write_bytes(directory / WEIGHTS, data)
    atomic_write_json(directory / MODEL_JSON, {"format": FORMAT, **meta,
                                               WEIGHTS_DIGEST: hashlib.sha256(data).hexdigest()})


def read_meta(directory: str | Path) -> dict:
    """The ``model.json`` of a network directory, its fields checked; a one-line error for any other file."""
    meta = read_model_json(directory)
    path = Path(directory) / MODEL_JSON
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not a bowlrp DNN model (format {meta.get('format')!r})")
    root = Field(meta, path)
    root["arch"].choice(tuple(ARCHITECTURES))
    root["classes"].names()
    size = root["size"].integer(minimum=1)
    root["crop"].integer(minimum=1, maximum=size)  # a crop x crop window of the size x size square
    return meta


def check_weights_digest(directory: Path, meta: dict) -> None:
    """:func:`~bowlrp.persistence.check_file_digest` of ``weights.pt``."""
    check_file_digest(directory, meta, WEIGHTS_DIGEST, WEIGHTS, "weights")


def check_weights(state, model: nn.Module, meta: dict, directory: Path) -> None:
    """``state`` (read from ``weights.pt``) against the freshly built ``model``: the same names, shapes
    and kinds of dtype, finite values, non-negative batch-norm variances."""
    path, arch = directory / WEIGHTS, meta["arch"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: not a state dict of tensors")
    expected = model.state_dict()
    for key in state:
        if key not in expected:
            raise ModelError(f"{path}: {key}: not a parameter of {arch}")
    head = HEAD.get(arch, "") + "."
    for key, want in expected.items():
        if key not in state:
            raise ModelError(f"{path}: {key}: missing")
        got = state[key]
        if got.is_floating_point() != want.is_floating_point() or got.is_complex():
            raise ModelError(f"{path}: {key}: dtype {got.dtype} where {arch} has {want.dtype}")
        if got.shape != want.shape:
            if key.startswith(head) and got.shape[:1] != want.shape[:1]:
                raise ModelError(f"{directory / MODEL_JSON}: field classes: {len(meta['classes'])} classes, but "
                                 f"{path}: {key} has {got.shape[0]} outputs")
            raise ModelError(f"{path}: {key}: shape {tuple(got.shape)} where {arch} has {tuple(want.shape)}")
        if got.is_floating_point():
            bad = int(got.numel() - torch.isfinite(got).sum())
            if bad:
                raise ModelError(f"{path}: {key}: {bad} NaN or infinite value(s)")
            if key.endswith("running_var") and bool((got < 0).any()):
                raise ModelError(f"{path}: {key}: negative variance(s)")


def load_network(directory: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The model saved in ``directory``, in eval mode on ``device``; ``model.meta`` holds its ``model.json``."""
    directory = Path(directory)
    meta = read_meta(directory)
    state = load_tensors(directory / WEIGHTS)  # a pickle payload is refused as such, digest or not
    check_weights_digest(directory, meta)
    model = build(meta["arch"], len(meta["classes"]))
    check_weights(state, model, meta, directory)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{directory}: weights do not fit {meta['arch']} ({' '.join(str(exc).split())[:200]})") \
            from None
    model.meta = meta
    return model.to(device).eval()
