"""PyTorch networks and their LRP explanations (dissertation Sections 2.3, 5.4).

>>> from bowlrp.dnn import load_network, explain     # doctest: +SKIP
>>> network = load_network("models/cnn")             # torch.nn.Module in eval mode
>>> R = explain(network, x, target=3)                # (B, 3, H, W), like x

As a :class:`bowlrp.model.Model` (scoring files, explaining into maps and stores like every family),
a network directory is opened with :func:`bowlrp.model.load_model`.

Attributes are imported on first use, so ``import bowlrp.dnn`` (and the CLI's parser) does not load torch.
"""
from __future__ import annotations

__all__ = ["load_network", "explain", "attribute"]


def __getattr__(name: str):
    if name == "load_network":
        from .io import load_network

        return load_network
    if name in ("explain", "attribute"):
        from . import attribution as module

        return getattr(module, name)
    raise AttributeError(f"module 'bowlrp.dnn' has no attribute {name!r}")
