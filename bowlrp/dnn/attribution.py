"""``explain(model, x, target, method=...)``: LRP and the baseline attribution methods on a batch.

Methods (all return a tensor shaped like ``x``), registered with :func:`register_method` in this order
(:func:`method_names`), with their parameters and defaults:

* ``lrp`` (``epsilon``, ``canonizers``; and ``composite``, ``flat_depth``): the composite's rules
  (:mod:`bowlrp.dnn.lrp.composites`) as a modified backward pass (dissertation Section 2.3.2), started with
  ``R = f_k(x)`` at the target output, after folding BatchNorm and routing residual sums.
* ``gradient``: ``d f_k / d x`` (sensitivity, Section 3.2.1); ``gradxinput``: ``x * d f_k / d x``.
* ``deconvnet`` / ``guided``: ReLUs pass ``relu(grad)`` / ``relu(grad) * (x > 0)`` backwards (deconvolution,
  Section 3.2.2, and guided backprop).
* ``smoothgrad`` (``n_samples=20``, ``noise=0.1``, ``seed=0``): mean gradient over ``n_samples`` copies of x
  with Gaussian noise of standard deviation ``noise * (max x - min x)`` (per image), drawn from a generator
  seeded with ``seed``.
* ``ig`` (``steps=32``): integrated gradients from a black baseline (all zeros), ``steps`` midpoint Riemann
  steps: ``(x - x0) * mean_k grad(x0 + (k + 1/2)/steps (x - x0))``.

A method refuses parameters it does not take (``ExplainError`` naming the parameter), so a setting is never
accepted and then ignored; :func:`explanation_settings` reports what an explanation with given arguments
uses, for the record stored next to the maps.

``target`` selects the start of the backward pass: an ``int`` (the same output for every image), a list
of ints (one per image), or a tensor shaped like the output (any relevance vector, used as given). For
LRP an int/list starts with the output's value ``f_k(x)`` there (so relevance sums to ``f_k(x)`` for a
conserving composite); for the gradient methods it starts with 1.

The model must be in eval mode. Explaining inside ``torch.no_grad()`` works: gradients are switched on
for the explanation only. Inputs are moved to the model's device (CPU or CUDA).
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Callable, Sequence, Union

import torch
from torch import nn

from .lrp import rules as R
from .lrp.attributor import RuleHooks
from .lrp.canonizers import default_canonizers
from .lrp.composites import ACTIVATIONS, THESIS, Composite, make_composite
from .lrp.errors import ExplainError

Target = Union[int, Sequence[int], torch.Tensor]

__all__ = ["ExplainError", "Target", "attribute", "explain", "explanation_settings", "method_names",
           "register_method"]


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


# ---------------------------------------------------------------------------------------------------------
# The method registry

#: ``compute(model, x, target, **params) -> (attribution like x, model output (B, C))``
Compute = Callable[..., tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class _Method:
    """A registered attribution method; see :func:`register_method`."""

    compute: Compute
    defaults: dict[str, Any]
    prepare: Callable[[nn.Module, dict], dict] | None
    describe: Callable[[dict], dict] | None


_METHODS: dict[str, _Method] = {}  # insertion order is the order of method_names()


def register_method(name: str, defaults: dict, *, prepare: Callable[[nn.Module, dict], dict] | None = None,
                    describe: Callable[[dict], dict] | None = None) -> Callable[[Compute], Compute]:
    """Decorator: make ``compute`` the attribution method ``name`` of :func:`attribute`.

    Parameters
    ----------
    name : str
        The method's name (``attribute(..., method=name)``).
    defaults : dict
        Every parameter the method takes, with its default; :func:`attribute` refuses any other. The
        parameters ``composite`` and ``flat_depth`` are :func:`attribute`'s own arguments and are passed on
        only to methods that list them here.
    prepare : callable, optional
        ``prepare(model, params) -> params``: checks the parameters (raising :class:`ExplainError`) and
        turns them into what ``compute`` takes; run by :func:`attribute` and :func:`explanation_settings`
        alike, so both refuse the same requests.
    describe : callable, optional
        ``describe(prepared params) -> dict``: the settings an explanation records (plain values); default:
        the parameters themselves.

    ``compute(model, x, target, **prepared params)`` returns ``(attribution like x, model output (B, C))``;
    ``x`` is already on the model's device and the model checked to be in eval mode.
    """
    if not isinstance(name, str) or not name.strip():
        raise ExplainError(f"a method name must be a non-empty string, got {name!r}")

    def decorator(compute: Compute) -> Compute:
        if name in _METHODS:
            raise ExplainError(f"method {name!r} is already registered")
        _METHODS[name] = _Method(compute, dict(defaults), prepare, describe)
        return compute

    return decorator


def method_names() -> tuple[str, ...]:
    """The registered attribution methods, in registration order."""
    return tuple(_METHODS)


def _resolve(model: nn.Module, method: str, composite: str | Composite, flat_depth: int | None,
             params: dict) -> tuple[_Method, dict]:
    """The method and its checked, prepared parameters (defaults filled in): one validation for
    :func:`attribute` and :func:`explanation_settings`."""
    spec = _METHODS.get(method) if isinstance(method, str) else None
    if spec is None:
        raise ExplainError(f"unknown method {method!r}; choose one of {', '.join(method_names())}")
    for key in params:
        if key not in spec.defaults or key in ("composite", "flat_depth"):
            takes = ", ".join(k for k in spec.defaults if k not in ("composite", "flat_depth")) or "none"
            raise ExplainError(f"method {method!r} takes no parameter {key!r} (it takes: {takes})")
    if flat_depth is not None and "flat_depth" not in spec.defaults:
        users = [n for n, m in _METHODS.items() if "flat_depth" in m.defaults]
        raise ExplainError(f"flat_depth applies to method{'s' if len(users) != 1 else ''} "
                           f"{', '.join(repr(n) for n in users)} only")
    resolved = {**spec.defaults, **params}
    # composite has a default, so for a method without composites it cannot be told from "not given": ignored
    if "composite" in spec.defaults:
        resolved["composite"] = composite
    if "flat_depth" in spec.defaults:
        resolved["flat_depth"] = flat_depth
    return spec, (spec.prepare(model, resolved) if spec.prepare else resolved)


def _plain(method: str, settings: dict) -> dict:
    """``settings`` with Python scalars only (str, int, float, bool, lists of floats), as JSON and HDF5
    attributes take them; anything else (None included) is a bug in a method's ``describe``."""
    out: dict = {}
    for key, value in settings.items():
        if isinstance(value, (bool, str)):
            out[key] = value
        elif isinstance(value, Integral):
            out[key] = int(value)
        elif isinstance(value, Real):
            out[key] = float(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, Real) for v in value):
            out[key] = [float(v) for v in value]
        else:
            raise ExplainError(f"method {method!r} reports setting {key!r} = {value!r}, which is not a plain value")
    return out


# ---------------------------------------------------------------------------------------------------------
# Parameter checks shared by the methods

def _positive_int(method: str, key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ExplainError(f"method {method!r}: {key} must be an integer >= 1, got {value!r}")
    return int(value)


def _non_negative(method: str, key: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
        raise ExplainError(f"method {method!r}: {key} must be a finite number >= 0, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------------------
# The methods

def _prepare_lrp(model: nn.Module, params: dict) -> dict:
    """Build the composite for ``model`` (so its settings are those of this model, e.g. the flat region)."""
    composite, flat_depth, epsilon = params["composite"], params["flat_depth"], params["epsilon"]
    if isinstance(composite, Composite):
        # a Composite object carries its own rules: parameters for building one would be ignored
        for key, value in (("flat_depth", flat_depth), ("epsilon", epsilon)):
            if value is not None:
                raise ExplainError(f"{key} applies to a composite given by name, not to a Composite object")
    else:
        composite = make_composite(composite, model, flat_depth=flat_depth, epsilon=epsilon)
    canonizers = params["canonizers"]
    return {"composite": composite, "canonizers": None if canonizers is None else list(canonizers)}


def _describe_lrp(params: dict) -> dict:
    composite: Composite = params["composite"]
    settings = {"composite": composite.name, **composite.settings()}
    if params["canonizers"] is not None:  # only a choice other than the default changes the record
        settings["canonizers"] = ",".join(type(c).__name__ for c in params["canonizers"])
    return settings


@register_method("lrp", {"composite": THESIS, "flat_depth": None, "epsilon": None, "canonizers": None},
                 prepare=_prepare_lrp, describe=_describe_lrp)
def _lrp(model: nn.Module, x: torch.Tensor, target: Target, composite: Composite,
         canonizers: list | None) -> tuple[torch.Tensor, torch.Tensor]:
    hooks = RuleHooks(model, composite, default_canonizers() if canonizers is None else canonizers)
    return _backward(model, x, target, True, hooks)


@register_method("gradient", {})
def _gradient(model: nn.Module, x: torch.Tensor, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
    return _backward(model, x, target, False)


@register_method("gradxinput", {})
def _gradxinput(model: nn.Module, x: torch.Tensor, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
    grad, out = _backward(model, x, target, False)
    return grad * x, out


def _relu_backward(model: nn.Module, x: torch.Tensor, target: Target, rule: R.LayerRule,
                   name: str) -> tuple[torch.Tensor, torch.Tensor]:
    return _backward(model, x, target, False, RuleHooks(model, Composite([(ACTIVATIONS, rule)], name)))


@register_method("deconvnet", {})
def _deconvnet(model: nn.Module, x: torch.Tensor, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
    return _relu_backward(model, x, target, R.DeconvReLU(), "deconvnet")


@register_method("guided", {})
def _guided(model: nn.Module, x: torch.Tensor, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
    return _relu_backward(model, x, target, R.GuidedReLU(), "guided")


def _prepare_smoothgrad(model: nn.Module, params: dict) -> dict:
    return {"n_samples": _positive_int("smoothgrad", "n_samples", params["n_samples"]),
            "noise": _non_negative("smoothgrad", "noise", params["noise"]),
            "seed": _seed(params["seed"])}


def _seed(value) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ExplainError(f"method 'smoothgrad': seed must be an integer, got {value!r}")
    return int(value)


@register_method("smoothgrad", {"n_samples": 20, "noise": 0.1, "seed": 0}, prepare=_prepare_smoothgrad)
def _smoothgrad(model: nn.Module, x: torch.Tensor, target: Target, n_samples: int, noise: float,
                seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)  # on the CPU, so a seed gives the same noise on any device
    span = (x.flatten(1).max(1).values - x.flatten(1).min(1).values).reshape(-1, *[1] * (x.dim() - 1))
    total = torch.zeros_like(x)
    for _ in range(n_samples):
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        total += _backward(model, x + eps * noise * span, target, False)[0]
    return total / n_samples, _backward(model, x, target, False)[1]


@register_method("ig", {"steps": 32},
                 prepare=lambda model, params: {"steps": _positive_int("ig", "steps", params["steps"])},
                 describe=lambda params: {"steps": params["steps"], "baseline": "zeros"})
def _integrated_gradients(model: nn.Module, x: torch.Tensor, target: Target,
                          steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    baseline = torch.zeros_like(x)  # the black image; recorded as baseline "zeros"
    total = torch.zeros_like(x)
    for k in range(steps):
        grad, _ = _backward(model, baseline + (k + 0.5) / steps * (x - baseline), target, False)
        total += grad
    out = _backward(model, x, target, False)[1]
    return (x - baseline) * total / steps, out


# ---------------------------------------------------------------------------------------------------------
# Entry points

def attribute(model: nn.Module, x: torch.Tensor, target: Target, method: str = "lrp",
              composite: str | Composite = THESIS, flat_depth: int | None = None,
              **params) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`explain`, returning ``(attribution (B, ...) like x, model output (B, C))``."""
    spec, prepared = _resolve(model, method, composite, flat_depth, params)
    if model.training:
        raise ExplainError("the model is in training mode; call model.eval() before explaining")
    if x.dim() < 2:
        raise ExplainError(f"x must be a batch (B, ...), got shape {tuple(x.shape)}")
    return spec.compute(model, x.to(model_device(model)), target, **prepared)


def explain(model: nn.Module, x: torch.Tensor, target: Target, method: str = "lrp",
            composite: str | Composite = THESIS, flat_depth: int | None = None, **params) -> torch.Tensor:
    """Attribution of ``model``'s output ``target`` to the input batch ``x``.

    Parameters
    ----------
    model : nn.Module
        In eval mode, on any device (x is moved there).
    x : (B, C, H, W) float tensor
    target : int, list of int (one per image) or (B, n_outputs) tensor
        Which output to explain, or the relevance vector to start from.
    method : str
        One of :func:`method_names`.
    composite : str or Composite
        For ``method="lrp"``: a name from :func:`bowlrp.dnn.lrp.composites.composite_names` or a Composite
        (ignored by the other methods).
    flat_depth : int, optional
        For the ``*-flat`` composites: how many of the lowest Conv/Linear layers use the flat rule (default 1).
        Refused by the other methods and composites.
    **params
        The method's parameters (see the module docstring): ``epsilon`` (dense-layer stabiliser) and
        ``canonizers`` for lrp, ``n_samples``/``noise``/``seed`` for smoothgrad, ``steps`` for ig.

    Returns
    -------
    (B, C, H, W) tensor on the model's device.

    Raises
    ------
    ExplainError
        Unknown method or composite, a parameter the method or composite does not take, a bad parameter
        value or target, a model in training mode.
    """
    return attribute(model, x, target, method, composite, flat_depth, **params)[0]


def explanation_settings(model: nn.Module, method: str = "lrp", composite: str | Composite = THESIS,
                         flat_depth: int | None = None, **params) -> dict:
    """What an explanation of ``model`` with these arguments uses, as plain values for a JSON or HDF5 record.

    ``lrp``: ``{"method": "lrp", "composite": name, **settings of the composite built for model}`` (e.g. the
    thesis composite: epsilon, alpha, beta, flat_depth); other methods: ``{"method": name, **parameters with
    defaults filled in}`` (``gradient``: only the method; ``ig``: steps and ``baseline="zeros"``). Refuses
    exactly what :func:`attribute` refuses (same checks, same :class:`ExplainError`), except that the model
    need not be in eval mode: no forward pass is run.
    """
    spec, prepared = _resolve(model, method, composite, flat_depth, params)
    described = spec.describe(prepared) if spec.describe else prepared
    return _plain(method, {"method": method, **described})
