"""Composites: which rule every layer of a model gets, by layer type and by module name.

A :class:`Composite` is an ordered list of ``(matcher, rule)``; a matcher is a module type (or tuple of
types) or a name pattern (``fnmatch`` syntax on the dotted module name, e.g. ``"features.0"``,
``"classifier.*"``). The first entry that matches a module decides its rule; modules matching nothing
keep the plain gradient (max pooling: the winner takes all; reshapes, dropout in eval mode: identity).

Named composites (:func:`make_composite`), built for a given model:

* ``epsilon``, ``zplus``, ``alpha2beta1``, ``alpha1beta0``, ``flat``, ``wsquare``: one rule for every
  Conv/Linear (the single-rule maps, e.g. for comparisons with zennit).
* ``epsilon-alpha2beta1``: epsilon (0.01) on dense layers, alpha=2/beta=1 on convolutions.
* ``epsilon-alpha2beta1-flat``: the thesis composite (Section 5.4.1 and 5.4.2), the above plus the flat
  rule for the lowest ``flat_depth`` Conv/Linear layers (default 1, the input layer, as zennit's
  ``EpsilonAlpha2Beta1Flat``) and for the pooling layers between them, which then spread relevance
  uniformly over their windows (VGG-16 with ``flat_depth=4`` is flat from conv4 down, pool1 included).
* ``epsilon-zplus-flat``: as the thesis composite with z+ on convolutions.
* ``epsilon-alpha2beta1-zbox``: z^B on the input layer (bounds ``low``/``high``), otherwise as above.

Common to all: activations and unfolded BatchNorm pass relevance through; local response normalisation
uses its Taylor-based rule (Eq. 2.46); average pooling and residual sums use the epsilon rule on their own mapping (``Norm``).
"""
from __future__ import annotations

import fnmatch
from typing import Sequence, Union

from torch import nn

from . import rules as R

Matcher = Union[type, tuple, str]

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.GELU, nn.SiLU)
PASS_THROUGH = ACTIVATIONS + (nn.BatchNorm1d, nn.BatchNorm2d)
WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
AVERAGE_POOLING = (nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)

THESIS = "epsilon-alpha2beta1-flat"
THESIS_EPSILON = 0.01


def _sum_types() -> tuple:
    from ..models import Add

    return (Add,)


class Composite:
    """Rules by layer type and name; see the module docstring."""

    def __init__(self, mapping: Sequence[tuple[Matcher, R.LayerRule]], name: str = "custom"):
        self.mapping = list(mapping)
        self.name = name

    def rule_for(self, name: str, module: nn.Module) -> R.LayerRule | None:
        for matcher, rule in self.mapping:
            if isinstance(matcher, str):
                if fnmatch.fnmatchcase(name, matcher):
                    return rule
            elif isinstance(module, matcher):
                return rule
        return None

    def assign(self, model: nn.Module) -> dict[str, tuple[nn.Module, R.LayerRule]]:
        """``{name: (module, rule)}`` for every module of ``model`` that gets a rule."""
        out = {}
        for name, module in model.named_modules():
            if name == "" and list(module.children()):
                continue
            rule = self.rule_for(name, module)
            if rule is not None:
                out[name] = (module, rule)
        return out


def base_mapping() -> list[tuple[Matcher, R.LayerRule]]:
    """Rules for parameter-free layers, shared by every LRP composite."""
    return [(PASS_THROUGH, R.Pass()), (nn.LocalResponseNorm, R.LocalRenormalization()), (_sum_types(), R.Norm()),
            (AVERAGE_POOLING, R.Norm())]


def weighted_layers(model: nn.Module) -> list[str]:
    """Names of the Conv/Linear modules in registration order (input side first for the project's models)."""
    return [name for name, m in model.named_modules() if isinstance(m, WEIGHTED)]


def flat_region(model: nn.Module, depth: int) -> list[str]:
    """Names of the modules the flat rule covers at decomposition depth ``depth``: the lowest ``depth``
    Conv/Linear layers (registration order) and the pooling layers between them."""
    names: list[str] = []
    pending: list[str] = []
    count = 0
    if depth <= 0:
        return names
    for name, module in model.named_modules():
        if isinstance(module, WEIGHTED):
            if count == depth:
                break
            count += 1
            names += pending + [name]
            pending = []
        elif isinstance(module, POOLING) and count > 0:
            pending.append(name)
    if count < depth:
        raise ValueError(f"flat depth {depth} exceeds the model's {count} Conv/Linear layers")
    return names


SINGLE_RULES = {
    "epsilon": lambda eps: R.Epsilon(eps),
    "zplus": lambda eps: R.ZPlus(),
    "alpha2beta1": lambda eps: R.AlphaBeta(2.0, 1.0),
    "alpha1beta0": lambda eps: R.AlphaBeta(1.0, 0.0),
    "flat": lambda eps: R.Flat(),
    "wsquare": lambda eps: R.WSquare(),
}
COMPOSITES = tuple(SINGLE_RULES) + ("epsilon-alpha2beta1", THESIS, "epsilon-zplus-flat", "epsilon-alpha2beta1-zbox")


def make_composite(name: str, model: nn.Module, flat_depth: int | None = None, epsilon: float | None = None,
                   low: float = 0.0, high: float = 1.0) -> Composite:
    """The named composite (see the module docstring) for ``model``.

    ``flat_depth`` applies to the ``*-flat`` composites (default 1; 0 = no flat layer); ``epsilon`` is the
    stabiliser of the epsilon rule on dense layers (default 0.01, the thesis value; for the single-rule
    ``epsilon`` composite it applies to every layer, default 1e-6); ``low``/``high`` bound the input for z^B.
    """
    if name not in COMPOSITES:
        raise ValueError(f"unknown composite {name!r}; choose one of {', '.join(COMPOSITES)}")
    mapping = base_mapping()
    if name in SINGLE_RULES:
        if flat_depth:
            raise ValueError(f"--flat-depth applies to the *-flat composites, not to {name!r}")
        rule = SINGLE_RULES[name](1e-6 if epsilon is None else epsilon)
        return Composite(mapping + [(WEIGHTED, rule)], name)
    eps = THESIS_EPSILON if epsilon is None else epsilon
    conv_rule = R.ZPlus() if name == "epsilon-zplus-flat" else R.AlphaBeta(2.0, 1.0)
    if name.endswith("-flat"):
        depth = 1 if flat_depth is None else int(flat_depth)
        region = flat_region(model, depth)
        flat = [(n, R.Flat() if isinstance(m, WEIGHTED) else R.FlatPool())
                for n, m in model.named_modules() if n in set(region)]
        mapping = flat + mapping
    elif flat_depth:
        raise ValueError(f"--flat-depth applies to the *-flat composites, not to {name!r}")
    if name == "epsilon-alpha2beta1-zbox":
        first = weighted_layers(model)[0]
        mapping = [(first, R.ZBox(low, high))] + mapping
    return Composite(mapping + [(CONV, conv_rule), (nn.Linear, R.Epsilon(eps))], name)
