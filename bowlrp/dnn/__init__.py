"""PyTorch models and their LRP explanations (SPEC section 5).

>>> from bowlrp.dnn import load_model, explain            # doctest: +SKIP
>>> model = load_model("models/smallcnn")           # eval mode
>>> R = explain(model, x, target=3)                 # (B, 3, H, W), like x

Attributes are imported on first use, so ``import bowlrp.dnn`` (and the CLI's parser) does not load torch.
"""
from __future__ import annotations

__all__ = ["load_model", "explain", "attribute"]


def __getattr__(name: str):
    if name == "load_model":
        from .io import load_model

        return load_model
    if name in ("explain", "attribute"):
        from . import attribution as module

        return getattr(module, name)
    raise AttributeError(f"module 'dnn' has no attribute {name!r}")
