"""Composites: which rule every layer of a model gets, by layer type and by module name.

A :class:`Composite` is an ordered list of ``(matcher, rule)``; a matcher is a module type (or tuple of
types) or a name pattern (``fnmatch`` syntax on the dotted module name, e.g. ``"features.0"``,
``"classifier.*"``). The first entry that matches a module decides its rule; modules matching nothing
keep the plain gradient (max pooling: the winner takes all; reshapes, dropout in eval mode: identity).

Named composites are factories in a registry (:func:`register_composite`, :func:`composite_names`,
:func:`make_composite`), each building the composite for a given model. Registered here, in this order:

* ``epsilon``, ``zplus``, ``alpha2beta1``, ``alpha1beta0``, ``flat``, ``wsquare``: one rule for every
  Conv/Linear (the single-rule maps, e.g. for comparisons with zennit).
* ``epsilon-alpha2beta1``: epsilon (0.01) on dense layers, alpha=2/beta=1 on convolutions.
* ``epsilon-alpha2beta1-flat``: the thesis composite (dissertation Sections 5.4.1 and 5.4.2), the above
  plus the flat rule (Eqs. 2.27 and 5.1) for the lowest ``flat_depth`` Conv/Linear layers (default 1, the
  input layer, as zennit's ``EpsilonAlpha2Beta1Flat``) and for the pooling layers between them, which then
  spread relevance uniformly over their windows (VGG-16 with ``flat_depth=4`` is flat from conv4 down,
  pool1 included).
* ``epsilon-zplus-flat``: as the thesis composite with z+ on convolutions.
* ``epsilon-alpha2beta1-zbox``: z^B on the input layer (bounds ``low``/``high``), otherwise as
  ``epsilon-alpha2beta1``.

Common to all: activations and unfolded BatchNorm pass relevance through (Eq. 2.37); local response
normalisation uses its Taylor-based rule (Eq. 2.46); average pooling and residual sums use the epsilon
rule on their own mapping (``Norm``, Eq. 2.39).
"""
from __future__ import annotations

import fnmatch
import math
from numbers import Integral, Real
from typing import Callable, Sequence, Union

from torch import nn

from . import rules as R
from .errors import ExplainError

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
    """Rules by layer type and name; see the module docstring.

    Parameters
    ----------
    mapping : sequence of (matcher, LayerRule)
        The first matching entry decides a module's rule.
    name : str
        Recorded with the explanation (:func:`make_composite` sets the registered name).
    flat_depth : int, optional
        The decomposition depth the mapping was built for (the ``*-flat`` composites); recorded by
        :meth:`settings`. None for composites without a flat region.
    """

    def __init__(self, mapping: Sequence[tuple[Matcher, R.LayerRule]], name: str = "custom",
                 flat_depth: int | None = None):
        self.mapping = list(mapping)
        self.name = name
        self.flat_depth = flat_depth

    def settings(self) -> dict:
        """The parameters of the rules in the mapping, merged, plus ``flat_depth`` where the composite has
        one: exactly what its explanations depend on (``zplus`` gives ``{}``).

        Raises ExplainError when two rules give one parameter different values (say epsilon 0.01 on dense
        layers and 1e-6 on convolutions): one key cannot record both truthfully.
        """
        merged: dict = {}
        for _, rule in self.mapping:
            for key, value in rule.settings().items():
                if key in merged and merged[key] != value:
                    raise ExplainError(f"composite {self.name!r} uses {key}={merged[key]!r} and {key}={value!r}; "
                                       "its settings cannot be recorded as one value per parameter")
                merged[key] = value
        if self.flat_depth is not None:
            merged["flat_depth"] = int(self.flat_depth)
        return merged

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
        raise ExplainError(f"flat_depth {depth} exceeds the model's {count} Conv/Linear layers")
    return names


# ---------------------------------------------------------------------------------------------------------
# The registry of named composites

#: ``factory(model, *, flat_depth=None, epsilon=None, low=0.0, high=1.0) -> Composite``
CompositeFactory = Callable[..., Composite]

_FACTORIES: dict[str, CompositeFactory] = {}  # insertion order is the order of composite_names()


def register_composite(name: str) -> Callable[[CompositeFactory], CompositeFactory]:
    """Decorator: make ``factory`` the composite called ``name`` for :func:`make_composite` (and so for
    ``attribute(..., composite=name)`` and the command line, which read the registry).

    The factory is called as ``factory(model, *, flat_depth=None, epsilon=None, low=0.0, high=1.0)`` and
    returns a :class:`Composite` for ``model``. ``flat_depth`` and ``epsilon`` arrive already checked for
    type and sign; a factory that has no use for them should raise :class:`ExplainError` when they are
    given (not None), so that a setting is never accepted and then silently ignored.

    >>> @register_composite("epsilon-everywhere")                  # doctest: +SKIP
    ... def _(model, *, flat_depth=None, epsilon=None, low=0.0, high=1.0):
    ...     return Composite(base_mapping() + [(WEIGHTED, R.Epsilon(epsilon or 0.1))])
    """
    if not isinstance(name, str) or not name.strip():
        raise ExplainError(f"a composite name must be a non-empty string, got {name!r}")

    def decorator(factory: CompositeFactory) -> CompositeFactory:
        if name in _FACTORIES:
            raise ExplainError(f"composite {name!r} is already registered")
        _FACTORIES[name] = factory
        return factory

    return decorator


def unregister_composite(name: str) -> None:
    """Remove the composite ``name`` from the registry (for plug-ins and tests that register their own)."""
    if name not in _FACTORIES:
        raise ExplainError(f"composite {name!r} is not registered")
    del _FACTORIES[name]


def composite_names() -> tuple[str, ...]:
    """The registered composite names, in registration order (the built-in ones first)."""
    return tuple(_FACTORIES)


def make_composite(name: str, model: nn.Module, flat_depth: int | None = None, epsilon: float | None = None,
                   low: float = 0.0, high: float = 1.0) -> Composite:
    """The registered composite ``name`` (see the module docstring), built for ``model``.

    ``flat_depth`` applies to the ``*-flat`` composites (default 1; 0 = no flat layer); ``epsilon`` is the
    stabiliser of the epsilon rule on dense layers (default 0.01, the thesis value; for the single-rule
    ``epsilon`` composite it applies to every layer, default 1e-6); ``low``/``high`` bound the input for z^B.
    A composite that does not use ``flat_depth`` or ``epsilon`` rejects it.

    Raises
    ------
    ExplainError
        Unknown name (the message lists the registered ones), ``flat_depth`` not an integer >= 0 or larger
        than the model's number of Conv/Linear layers, ``epsilon`` not a number >= 0, or a parameter the
        composite does not use.
    """
    factory = _FACTORIES.get(name) if isinstance(name, str) else None
    if factory is None:
        raise ExplainError(f"unknown composite {name!r}; choose one of {', '.join(composite_names())}")
    if flat_depth is not None and (isinstance(flat_depth, bool) or not isinstance(flat_depth, Integral)
                                   or flat_depth < 0):
        raise ExplainError(f"flat_depth must be an integer >= 0, got {flat_depth!r}")
    if epsilon is not None and (isinstance(epsilon, bool) or not isinstance(epsilon, Real)
                                or not math.isfinite(epsilon) or epsilon < 0):
        raise ExplainError(f"epsilon must be a finite number >= 0, got {epsilon!r}")
    composite = factory(model, flat_depth=None if flat_depth is None else int(flat_depth),
                        epsilon=None if epsilon is None else float(epsilon), low=low, high=high)
    composite.name = name  # the record names what was asked for, whatever the factory called it
    return composite


def _reject(name: str, parameter: str, value) -> None:
    """A composite that does not use ``parameter`` refuses a value for it instead of ignoring it."""
    if value is not None:
        raise ExplainError(f"composite {name!r} takes no parameter {parameter!r}"
                           + ("; flat_depth applies to the *-flat composites" if parameter == "flat_depth" else ""))


def _register_single_rule(name: str, rule: Callable[[float | None], R.LayerRule], uses_epsilon: bool = False) -> None:
    """Register ``name`` as the composite with ``rule(epsilon)`` on every Conv/Linear layer."""

    @register_composite(name)
    def factory(model: nn.Module, *, flat_depth: int | None = None, epsilon: float | None = None,
                low: float = 0.0, high: float = 1.0) -> Composite:
        _reject(name, "flat_depth", flat_depth)
        if not uses_epsilon:
            _reject(name, "epsilon", epsilon)
        return Composite(base_mapping() + [(WEIGHTED, rule(epsilon))], name)


# The single-rule epsilon composite keeps zennit's small default stabiliser, not the thesis' 0.01.
_register_single_rule("epsilon", lambda eps: R.Epsilon(R.DEFAULT_STABILIZER if eps is None else eps), uses_epsilon=True)
_register_single_rule("zplus", lambda eps: R.ZPlus())
_register_single_rule("alpha2beta1", lambda eps: R.AlphaBeta(2.0, 1.0))
_register_single_rule("alpha1beta0", lambda eps: R.AlphaBeta(1.0, 0.0))
_register_single_rule("flat", lambda eps: R.Flat())
_register_single_rule("wsquare", lambda eps: R.WSquare())


def _dense_and_conv(conv_rule: R.LayerRule, epsilon: float | None) -> list[tuple[Matcher, R.LayerRule]]:
    """The upper part of the mixed composites (Section 5.4.1): ``conv_rule`` on convolutions, epsilon on
    dense layers, after the rules for parameter-free layers."""
    eps = THESIS_EPSILON if epsilon is None else epsilon
    return base_mapping() + [(CONV, conv_rule), (nn.Linear, R.Epsilon(eps))]


def _with_flat_region(model: nn.Module, mapping: list, flat_depth: int | None) -> tuple[list, int]:
    """``mapping`` preceded by the flat rule on the lowest ``flat_depth`` (default 1) layers (Section 5.4.2)."""
    depth = 1 if flat_depth is None else flat_depth
    region = set(flat_region(model, depth))
    flat = [(n, R.Flat() if isinstance(m, WEIGHTED) else R.FlatPool())
            for n, m in model.named_modules() if n in region]
    return flat + mapping, depth


@register_composite("epsilon-alpha2beta1")
def _epsilon_alpha2beta1(model: nn.Module, *, flat_depth: int | None = None, epsilon: float | None = None,
                         low: float = 0.0, high: float = 1.0) -> Composite:
    _reject("epsilon-alpha2beta1", "flat_depth", flat_depth)
    return Composite(_dense_and_conv(R.AlphaBeta(2.0, 1.0), epsilon), "epsilon-alpha2beta1")


@register_composite(THESIS)
def _thesis(model: nn.Module, *, flat_depth: int | None = None, epsilon: float | None = None,
            low: float = 0.0, high: float = 1.0) -> Composite:
    mapping, depth = _with_flat_region(model, _dense_and_conv(R.AlphaBeta(2.0, 1.0), epsilon), flat_depth)
    return Composite(mapping, THESIS, flat_depth=depth)


@register_composite("epsilon-zplus-flat")
def _epsilon_zplus_flat(model: nn.Module, *, flat_depth: int | None = None, epsilon: float | None = None,
                        low: float = 0.0, high: float = 1.0) -> Composite:
    mapping, depth = _with_flat_region(model, _dense_and_conv(R.ZPlus(), epsilon), flat_depth)
    return Composite(mapping, "epsilon-zplus-flat", flat_depth=depth)


@register_composite("epsilon-alpha2beta1-zbox")
def _epsilon_alpha2beta1_zbox(model: nn.Module, *, flat_depth: int | None = None, epsilon: float | None = None,
                              low: float = 0.0, high: float = 1.0) -> Composite:
    _reject("epsilon-alpha2beta1-zbox", "flat_depth", flat_depth)
    first = weighted_layers(model)
    if not first:
        raise ExplainError("composite 'epsilon-alpha2beta1-zbox' needs a Conv/Linear input layer; the model has none")
    return Composite([(first[0], R.ZBox(low, high))] + _dense_and_conv(R.AlphaBeta(2.0, 1.0), epsilon),
                     "epsilon-alpha2beta1-zbox")
