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

from .archs import INPUT_GEOMETRY, TORCHVISION_ARCHS
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


def check_weights(state, model: nn.Module, meta: dict, path: Path, classes_from: str) -> None:
    """``state`` (read from ``path``) against the freshly built ``model``: the same names, shapes
    and kinds of dtype, finite values, non-negative batch-norm variances; ``classes_from`` names where
    the class list came from, for the message of an output layer of another width."""
    arch = meta["arch"]
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
                raise ModelError(f"{classes_from}: {len(meta['classes'])} classes, but {path}: {key} has "
                                 f"{got.shape[0]} outputs")
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
    check_weights(state, model, meta, directory / WEIGHTS, f"{directory / MODEL_JSON}: field classes")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"{directory}: weights do not fit {meta['arch']} ({' '.join(str(exc).split())[:200]})") \
            from None
    model.meta = meta
    return model.to(device).eval()


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a text file, one a line (blank lines and surrounding spaces ignored), all distinct."""
    try:
        names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: unreadable class list ({exc})") from None
    if not names:
        raise ModelError(f"{path}: no class names (one a line)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ModelError(f"{path}: class {repeated[0]!r} is named twice")
    return names


def load_torchvision(weights: str | Path, arch: str, classes: str | Path | None = None,
                     device: str | torch.device = "cpu") -> nn.Module:
    """A torchvision-layout state dict ``weights`` of architecture ``arch`` (torchvision's name: ``vgg16``,
    ``alexnet``, ``resnet18``, ``resnet50``) as a network in eval mode on ``device``, built with the
    project's own architectures (:mod:`.models`, whose parameter names are torchvision's), read with
    ``torch.load(weights_only=True)``.

    Class names come from the text file ``classes`` (one a line, in output order), or are
    ``class_0 .. class_{N-1}`` for a classifier of N outputs (for torchvision's files the ImageNet class
    indices). ``model.meta`` is what a model directory's ``model.json`` would hold (architecture, classes,
    torchvision's input geometry: longest side 256, centre crop 224; alexnet 227 is ours, torchvision's
    alexnet takes 224).
    """
    weights = Path(weights)
    if arch not in TORCHVISION_ARCHS:
        raise ModelError(f"--arch {arch}: not a torchvision architecture ({', '.join(TORCHVISION_ARCHS)})")
    state = load_tensors(weights)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{weights}: not a state dict of tensors")
    head = state.get(HEAD[arch] + ".weight")
    if head is None or head.ndim != 2:
        raise ModelError(f"{weights}: no {HEAD[arch]}.weight; not a torchvision {arch} state dict")
    n_outputs = int(head.shape[0])
    names = read_class_names(classes) if classes is not None else [f"class_{i}" for i in range(n_outputs)]
    size, crop = INPUT_GEOMETRY[arch]
    if arch == "alexnet":
        crop = 224  # torchvision's alexnet is trained on 224 x 224 crops
    meta = {"format": FORMAT, "arch": arch, "classes": names, "size": size, "crop": crop,
            "training": {"weights": str(weights)}}
    # torchvision's alexnet has no local response normalisation (CaffeNet's does)
    model = ARCHITECTURES[arch](num_classes=len(names), **({"lrn": False} if arch == "alexnet" else {}))
    check_weights(state, model, meta, weights, str(classes) if classes is not None else f"{weights}: {HEAD[arch]}")
    model.load_state_dict(state)
    model.meta = meta
    return model.to(device).eval()
