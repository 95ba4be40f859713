"""``explain(model, x, target, method=...)``: LRP and the baseline attribution methods on a batch.

Methods (all return a tensor shaped like ``x``):

* ``lrp``: the composite's rules (:mod:`bowlrp.dnn.lrp.composites`) as a modified backward pass, started with
  ``R = f_k(x)`` at the target output (Section 2.3.2), after folding BatchNorm and routing residual sums.
* ``gradient``: ``d f_k / d x`` (sensitivity); ``gradxinput``: ``x * d f_k / d x``.
* ``deconvnet`` / ``guided``: ReLUs pass ``relu(grad)`` / ``relu(grad) * (x > 0)`` backwards.
* ``smoothgrad``: mean gradient over ``n_samples`` copies of x with Gaussian noise of standard deviation
  ``noise * (max x - min x)`` (per image), drawn from a generator seeded with ``seed``.
* ``ig``: integrated gradients from a black baseline (all zeros), ``steps`` midpoint Riemann steps:
  ``(x - x0) * mean_k grad(x0 + (k + 1/2)/steps (x - x0))``.

``target`` selects the start of the backward pass: an ``int`` (the same output for every image), a list
of ints (one per image), or a tensor shaped like the output (any relevance vector, used as given). For
LRP an int/list starts with the output's value ``f_k(x)`` there (so relevance sums to ``f_k(x)`` for a
conserving composite); for the gradient methods it starts with 1.

The model must be in eval mode. Explaining inside ``torch.no_grad()`` works: gradients are switched on
for the explanation only. Inputs are moved to the model's device (CPU or CUDA).
"""
from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence, Union

import torch
from torch import nn

from .lrp import rules as R
from .lrp.attributor import RuleHooks
from .lrp.canonizers import default_canonizers
from .lrp.composites import ACTIVATIONS, THESIS, Composite, make_composite

Target = Union[int, Sequence[int], torch.Tensor]
METHODS = ("lrp", "gradient", "gradxinput", "deconvnet", "guided", "smoothgrad", "ig")


class ExplainError(ValueError):
    """A request that cannot be explained (model in training mode, bad target, unknown method)."""


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def start_relevance(output: torch.Tensor, target: Target, scale: bool) -> torch.Tensor:
    """The tensor the backward pass starts from, shaped like ``output`` ``(B, C)``; see the module docstring."""
    if isinstance(target, torch.Tensor):
        if target.shape != output.shape:
            raise ExplainError(f"a relevance start must be shaped like the output {tuple(output.shape)}, "
                               f"got {tuple(target.shape)}")
        return target.to(device=output.device, dtype=output.dtype)
    n, c = output.shape[0], output.shape[1]
    index = [int(target)] * n if isinstance(target, int) else [int(t) for t in target]
    if len(index) != n:
        raise ExplainError(f"{len(index)} targets for a batch of {n}")
    if any(not 0 <= k < c for k in index):
        raise ExplainError(f"target out of range 0..{c - 1}: {index}")
    onehot = torch.zeros_like(output)
    onehot[torch.arange(n, device=output.device), torch.tensor(index, device=output.device)] = 1.0
    return onehot * output.detach() if scale else onehot


def _backward(model: nn.Module, x: torch.Tensor, target: Target, scale: bool,
              hooks=None) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad(), (hooks or nullcontext()):
        xr = x.detach().requires_grad_(True)
        out = model(xr)
        start = start_relevance(out, target, scale)
        (grad,) = torch.autograd.grad(out, xr, start)
    return grad.detach(), out.detach()


def attribute(model: nn.Module, x: torch.Tensor, target: Target, method: str = "lrp",
              composite: str | Composite = THESIS, flat_depth: int | None = None, epsilon: float | None = None,
              canonizers: Sequence | None = None, n_samples: int = 20, noise: float = 0.1, steps: int = 32,
              seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`explain`, returning ``(attribution (B, ...) like x, model output (B, C))``."""
    if method not in METHODS:
        raise ExplainError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if model.training:
        raise ExplainError("the model is in training mode; call model.eval() before explaining")
    if x.dim() < 2:
        raise ExplainError(f"x must be a batch (B, ...), got shape {tuple(x.shape)}")
    x = x.to(model_device(model))
    if method == "lrp":
        if not isinstance(composite, Composite):
            composite = make_composite(composite, model, flat_depth=flat_depth, epsilon=epsilon)
        hooks = RuleHooks(model, composite, default_canonizers() if canonizers is None else canonizers)
        return _backward(model, x, target, True, hooks)
    if method in ("deconvnet", "guided"):
        rule = R.DeconvReLU() if method == "deconvnet" else R.GuidedReLU()
        return _backward(model, x, target, False, RuleHooks(model, Composite([(ACTIVATIONS, rule)], method)))
    if method in ("gradient", "gradxinput"):
        grad, out = _backward(model, x, target, False)
        return (grad * x if method == "gradxinput" else grad), out
    if method == "smoothgrad":
        generator = torch.Generator().manual_seed(seed)
        span = (x.flatten(1).max(1).values - x.flatten(1).min(1).values).reshape(-1, *[1] * (x.dim() - 1))
        total = torch.zeros_like(x)
        for _ in range(n_samples):
            eps = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            total += _backward(model, x + eps * noise * span, target, False)[0]
        return total / n_samples, _backward(model, x, target, False)[1]
    # integrated gradients
    baseline = torch.zeros_like(x)
    total = torch.zeros_like(x)
    for k in range(steps):
        grad, _ = _backward(model, baseline + (k + 0.5) / steps * (x - baseline), target, False)
        total += grad
    out = _backward(model, x, target, False)[1]
    return (x - baseline) * total / steps, out


def explain(model: nn.Module, x: torch.Tensor, target: Target, method: str = "lrp",
            composite: str | Composite = THESIS, flat_depth: int | None = None, **options) -> torch.Tensor:
    """Attribution of ``model``'s output ``target`` to the input batch ``x``.

    Parameters
    ----------
    model : nn.Module
        In eval mode, on any device (x is moved there).
    x : (B, C, H, W) float tensor
    target : int, list of int (one per image) or (B, n_outputs) tensor
        Which output to explain, or the relevance vector to start from.
    method : str
        One of :data:`METHODS`.
    composite : str or Composite
        For ``method="lrp"``: a name from :data:`bowlrp.dnn.lrp.composites.COMPOSITES` or a Composite.
    flat_depth : int, optional
        For the ``*-flat`` composites: how many of the lowest Conv/Linear layers use the flat rule (default 1).
    **options
        ``epsilon`` (dense-layer stabiliser), ``canonizers``, ``n_samples``/``noise`` (SmoothGrad),
        ``steps`` (integrated gradients), ``seed``.

    Returns
    -------
    (B, C, H, W) tensor on the model's device.
    """
    return attribute(model, x, target, method, composite, flat_depth, **options)[0]
