"""LRP rules for single layers, as backward maps ``R_out -> R_in`` (dissertation Sections 2.2.6, 2.3, 5.4).

Every rule is an object with ``backward(module, inputs, output, relevance) -> tuple of input relevances``.
Shapes: ``inputs`` are the module's positional tensor inputs (for Conv2d ``(B, C_in, H, W)``),
``output`` its output ``(B, C_out, H', W')``, ``relevance`` is shaped like ``output`` and every
returned relevance like its input.

Rules for layers with weights (``Conv1d/2d``, ``Linear``), with ``z_ij = x_i w_ij``,
``z_j = sum_i z_ij + b_j`` and ``stab(z) = z + eps * sign(z)`` (``sign(0) = 1``):

* :class:`Epsilon`  ``R_i = sum_j z_ij / stab(z_j) R_j`` (Eq. 2.22; eps -> 0 is the z-rule, Eq. 2.31).
* :class:`AlphaBeta` ``R_i = sum_j (alpha z+_ij / z+_j - beta z-_ij / z-_j) R_j`` with ``alpha - beta = 1``
  (Eq. 2.26; the thesis writes the same rule with beta = -1, here beta is the positive weight of the
  subtracted part as in zennit). Positive contributions are ``x+ w+`` and ``x- w-``, the positive bias
  goes to ``z+`` and the negative one to ``z-``.
* :class:`ZPlus`  alpha = 1, beta = 0.
* :class:`Flat`  ``z_ij = 1`` (Eq. 2.27 / 5.1): R_j spread uniformly over its receptive field.
* :class:`WSquare`  ``z_ij = w_ij^2`` (no bias).
* :class:`ZBox`  z^B for inputs bounded by ``low <= x <= high``.

Parameter-free layers: :class:`Pass` (identity, for element-wise activations and unfolded batch
norm, Eq. 2.37), :class:`LocalRenormalization` (the Taylor-based decomposition of Eqs. 2.42-2.46), :class:`Norm` (the epsilon rule on the module's own
mapping: average pooling, residual sums, Eq. 2.39), :class:`FlatPool` (pooling spread uniformly over the
window, for pooling layers inside the flat decomposition depth). Max pooling without a rule keeps the
plain gradient (Eq. 2.33, the winner takes all).

Baseline backward maps for ReLUs: :class:`DeconvReLU` and :class:`GuidedReLU`.

Every rule reports the parameters that shape its result with :meth:`LayerRule.settings` (what an
explanation records). The small stabilisers that only keep a denominator away from zero are not
reported: they are fixed and do not change a map beyond rounding.
"""
from __future__ import annotations

from numbers import Real
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ExplainError

Tensor = torch.Tensor
DEFAULT_STABILIZER = 1e-6


def stabilize(z: Tensor, eps: float) -> Tensor:
    """``z + eps * sign(z)`` with ``sign(0) = +1`` (so a zero denominator becomes ``eps``)."""
    return z + eps * ((z >= 0).to(z.dtype) * 2 - 1)


def _safe_divide(relevance: Tensor, z: Tensor, eps: float) -> Tensor:
    return relevance / stabilize(z, eps)


class _WeightedOp:
    """The linear mapping of a Conv/Linear module with replaceable weights, and its transpose.

    ``forward(x, w, b)`` computes the module's pre-activation with ``w, b``; ``transpose(s, w, shape)`` is
    ``J^T s``, the gradient of ``<forward(x, w, 0), s>`` with respect to ``x`` (which does not depend on x).
    """

    def __init__(self, module: nn.Module):
        self.module = module
        if isinstance(module, nn.Linear):
            self.forward = lambda x, w, b: F.linear(x, w, b)
            self.transpose = lambda s, w, shape: (s @ w).reshape(shape)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.padding_mode == "zeros" \
                and not isinstance(module.padding, str):
            conv = F.conv1d if isinstance(module, nn.Conv1d) else F.conv2d
            grad = torch.nn.grad.conv1d_input if isinstance(module, nn.Conv1d) else torch.nn.grad.conv2d_input
            m = module
            self.forward = lambda x, w, b: conv(x, w, b, m.stride, m.padding, m.dilation, m.groups)
            self.transpose = lambda s, w, shape: grad(shape, w, s, m.stride, m.padding, m.dilation, m.groups)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            self.forward = lambda x, w, b: module._conv_forward(x, w, b)
            self.transpose = self._autograd_transpose
        else:
            raise TypeError(f"no weighted-layer rule for {type(module).__name__}")

    def _autograd_transpose(self, s: Tensor, w: Tensor, shape: Sequence[int]) -> Tensor:
        with torch.enable_grad():
            x = torch.zeros(shape, dtype=s.dtype, device=s.device, requires_grad=True)
            z = self.forward(x, w, None)
            return torch.autograd.grad(z, x, s)[0]


def _params(module: nn.Module) -> tuple[Tensor, Tensor | None]:
    bias = getattr(module, "bias", None)
    return module.weight.detach(), None if bias is None else bias.detach()


class LayerRule:
    """Base class: a backward map for one module call."""

    def backward(self, module: nn.Module, inputs: Sequence[Tensor], output: Tensor,
                 relevance: Tensor) -> tuple[Tensor | None, ...]:
        raise NotImplementedError

    def settings(self) -> dict:
        """The rule's parameters as plain values (str, int, float, bool, or a list of floats); ``{}`` for a
        parameter-free rule. Required of every rule, so that a new rule cannot be recorded as parameter-free
        by omission."""
        raise NotImplementedError(f"{type(self).__name__} does not report its settings; define settings()")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class _ParameterFree(LayerRule):
    """A rule without parameters of its own."""

    def settings(self) -> dict:
        return {}


class Epsilon(LayerRule):
    """Epsilon rule (Eq. 2.22) for Conv/Linear; ``eps=0`` is the plain z-rule (Eq. 2.31)."""

    def __init__(self, eps: float = 1e-6):
        self.eps = float(eps)

    def settings(self) -> dict:
        return {"epsilon": self.eps}

    def backward(self, module, inputs, output, relevance):
        (x,) = inputs
        op = _WeightedOp(module)
        w, _ = _params(module)
        s = _safe_divide(relevance, output, self.eps)  # the output is z_j, bias included
        return (x * op.transpose(s, w, x.shape),)


class AlphaBeta(LayerRule):
    """Alpha-beta rule (Eq. 2.26) with ``alpha - beta = 1``; defaults alpha=2, beta=1 (the thesis' beta=-1)."""

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, stabilizer: float = DEFAULT_STABILIZER):
        if alpha < 0 or beta < 0 or abs(alpha - beta - 1.0) > 1e-12:
            raise ExplainError(f"alpha-beta needs alpha, beta >= 0 and alpha - beta = 1, got alpha={alpha}, "
                               f"beta={beta}")
        self.alpha, self.beta, self.stabilizer = float(alpha), float(beta), float(stabilizer)

    def settings(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta}

    def backward(self, module, inputs, output, relevance):
        (x,) = inputs
        op = _WeightedOp(module)
        w, b = _params(module)
        wp, wn = w.clamp(min=0), w.clamp(max=0)
        bp = None if b is None else b.clamp(min=0)
        bn = None if b is None else b.clamp(max=0)
        xp = x.clamp(min=0)
        # After a ReLU (the common case) x has no negative part: two of the four products vanish exactly.
        has_negative = bool((x < 0).any())
        xn = x.clamp(max=0) if has_negative else None
        z_pos = op.forward(xp, wp, bp)
        z_neg = op.forward(xp, wn, bn)
        if has_negative:
            z_pos = z_pos + op.forward(xn, wn, None)
            z_neg = z_neg + op.forward(xn, wp, None)
        s_pos = self.alpha * _safe_divide(relevance, z_pos, self.stabilizer)
        s_neg = self.beta * _safe_divide(relevance, z_neg, self.stabilizer) if self.beta else None
        shape = x.shape
        r = xp * op.transpose(s_pos, wp, shape)
        if s_neg is not None:
            r = r - xp * op.transpose(s_neg, wn, shape)
        if has_negative:
            r = r + xn * op.transpose(s_pos, wn, shape)
            if s_neg is not None:
                r = r - xn * op.transpose(s_neg, wp, shape)
        return (r,)


class ZPlus(AlphaBeta):
    """z+ rule: alpha-beta with alpha=1, beta=0 (negative inputs allowed, paired with negative weights)."""

    def __init__(self, stabilizer: float = DEFAULT_STABILIZER):
        super().__init__(1.0, 0.0, stabilizer)

    def settings(self) -> dict:
        return {}  # z+ is a rule of its own, not a choice of alpha and beta


class _InputFree(_ParameterFree):
    """Rules whose contributions do not depend on the input: ``R_i = sum_j m_ij / sum_i' m_i'j R_j``."""

    stabilizer = DEFAULT_STABILIZER

    def weights(self, w: Tensor) -> Tensor:
        raise NotImplementedError

    def backward(self, module, inputs, output, relevance):
        (x,) = inputs
        op = _WeightedOp(module)
        m = self.weights(module.weight.detach())
        z = op.forward(torch.ones_like(x), m, None)
        return (op.transpose(_safe_divide(relevance, z, self.stabilizer), m, x.shape),)


class Flat(_InputFree):
    """Flat rule (Eq. 2.27 / 5.1): ``z_ij = 1``, R_j spread uniformly over the receptive field of j."""

    def __init__(self, stabilizer: float = DEFAULT_STABILIZER):
        self.stabilizer = float(stabilizer)

    def weights(self, w):
        return torch.ones_like(w)


class WSquare(_InputFree):
    """w²-rule (Montavon et al. 2017): ``z_ij = w_ij^2``, no bias: ``R_i = sum_j w_ij^2 / sum_i' w_i'j^2 R_j``.

    Convention: the bias takes no part, as in Montavon et al.'s definition, so every layer under this
    rule conserves relevance. zennit's ``WSquare`` squares the bias too by default (``b_j^2`` joins the
    denominator and absorbs a share); ``zennit.rules.WSquare(zero_params=["bias"])`` is this rule
    (tests/test_dnn_rules.py compares against exactly that).
    """

    def __init__(self, stabilizer: float = DEFAULT_STABILIZER):
        self.stabilizer = float(stabilizer)

    def weights(self, w):
        return w * w


class ZBox(LayerRule):
    """z^B rule for inputs bounded by ``low <= x <= high`` (scalars or tensors broadcastable to x)."""

    def __init__(self, low: float | Tensor, high: float | Tensor, stabilizer: float = DEFAULT_STABILIZER):
        self.low, self.high, self.stabilizer = low, high, float(stabilizer)

    def settings(self) -> dict:
        return {"low": _plain_bound(self.low), "high": _plain_bound(self.high)}

    def backward(self, module, inputs, output, relevance):
        (x,) = inputs
        op = _WeightedOp(module)
        w, _ = _params(module)
        wp, wn = w.clamp(min=0), w.clamp(max=0)
        low = torch.as_tensor(self.low, dtype=x.dtype, device=x.device).expand_as(x)
        high = torch.as_tensor(self.high, dtype=x.dtype, device=x.device).expand_as(x)
        z = op.forward(x, w, None) - op.forward(low, wp, None) - op.forward(high, wn, None)
        s = _safe_divide(relevance, z, self.stabilizer)
        shape = x.shape
        return (x * op.transpose(s, w, shape) - low * op.transpose(s, wp, shape) - high * op.transpose(s, wn, shape),)


def _plain_bound(bound: float | Tensor) -> float | list[float]:
    """A z^B bound as a float, or a flat list of floats for a per-pixel/per-channel tensor."""
    if isinstance(bound, Real):
        return float(bound)
    values = torch.as_tensor(bound).detach().cpu().double().flatten()
    return float(values[0]) if values.numel() == 1 else values.tolist()


class Pass(_ParameterFree):
    """Identity: the relevance of the output is the relevance of the (single) input (Eq. 2.37)."""

    def backward(self, module, inputs, output, relevance):
        return (relevance,) + (None,) * (len(inputs) - 1)


class Norm(_ParameterFree):
    """Epsilon rule on a parameter-free mapping (average pooling, sums of several inputs, Eq. 2.39)."""

    def __init__(self, stabilizer: float = DEFAULT_STABILIZER):
        self.stabilizer = float(stabilizer)

    def backward(self, module, inputs, output, relevance):
        s = _safe_divide(relevance, output, self.stabilizer)
        with torch.enable_grad():
            xs = [x.detach().requires_grad_() for x in inputs]
            z = module.forward(*xs)  # .forward, not __call__: the hooks must not see this pass
            grads = torch.autograd.grad(z, xs, s)
        return tuple(x * g for x, g in zip(inputs, grads))


def _pool_as_average(module: nn.Module) -> Callable[[Tensor], Tensor]:
    """Average pooling over the windows of a 2-d pooling module (padding not counted)."""
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return lambda x: F.adaptive_avg_pool2d(x, module.output_size)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        if getattr(module, "dilation", 1) not in (1, (1, 1)):
            raise TypeError("flat pooling of a dilated max pool is not supported")
        return lambda x: F.avg_pool2d(x, module.kernel_size, module.stride, module.padding, module.ceil_mode,
                                      count_include_pad=False)
    raise TypeError(f"no flat pooling rule for {type(module).__name__}")


class FlatPool(_ParameterFree):
    """Flat rule for a pooling layer: R_j spread uniformly over its window (used inside the flat depth)."""

    def backward(self, module, inputs, output, relevance):
        (x,) = inputs
        pool = _pool_as_average(module)
        with torch.enable_grad():
            ones = torch.ones_like(x, requires_grad=True)
            z = pool(ones)  # 1 wherever the window holds at least one input
            (r,) = torch.autograd.grad(z, ones, _safe_divide(relevance, z.detach(), DEFAULT_STABILIZER))
        return (r,)


def _channel_window_sum(v: Tensor, before: int, after: int) -> Tensor:
    """``out[:, j] = sum_{o=-before..after} v[:, j + o]`` along dim 1, zero outside."""
    n = before + after + 1
    padded = F.pad(v.movedim(1, -1), (before, after)).movedim(-1, 1)
    return sum(padded[:, o:o + v.shape[1]] for o in range(n))


class LocalRenormalization(_ParameterFree):
    """Local response normalisation ``z_j = x_j / (k + b sum_{i in W(j)} x_i^2)^c`` (``b = alpha / size``,
    ``c = beta``; Eq. 2.42 with k = 1) decomposed by its first-order expansion (Eqs. 2.43-2.46): neuron j
    keeps ``v_jj = x_j / (k + b x_j^2)^c`` and every other neuron i of its window gets the negative share
    ``v_ij = -2bc x_i^2 x_j / (k + b sum x^2)^(c+1)``; ``R_i = sum_j v_ij / sum_i' v_i'j R_j``.
    As ``b -> 0`` (or ``c -> 0``) this becomes the identity."""

    def __init__(self, stabilizer: float = DEFAULT_STABILIZER):
        self.stabilizer = float(stabilizer)

    def backward(self, module, inputs, output, relevance):
        (x,) = inputs
        n, b, c, k = module.size, module.alpha / module.size, module.beta, module.k
        before, after = n // 2, (n - 1) // 2  # torch's window for output channel j: j - before .. j + after
        x2 = x * x
        total = _channel_window_sum(x2, before, after)
        own = x / (k + b * x2) ** c
        g = -2 * b * c * x / (k + b * total) ** (c + 1)
        z = own + g * (total - x2)  # the expansion of z_j: sum over i of v_ij
        s = _safe_divide(relevance, z, self.stabilizer)
        to_neighbours = _channel_window_sum(g * s, after, before) - g * s  # sum over j != i with i in W(j)
        return (own * s + x2 * to_neighbours,)


class DeconvReLU(_ParameterFree):
    """Deconvnet backward through a ReLU: ``relu(grad)``, ignoring the forward mask."""

    def backward(self, module, inputs, output, relevance):
        return (relevance.clamp(min=0),)


class GuidedReLU(_ParameterFree):
    """Guided backprop through a ReLU: ``relu(grad) * (x > 0)``."""

    def backward(self, module, inputs, output, relevance):
        (x,) = inputs
        return (relevance.clamp(min=0) * (x > 0).to(relevance.dtype),)
