"""LRP as a modified backward pass (Section 2.3.2): forward hooks swap each ruled module's backward.

Inside ``with RuleHooks(model, composite):`` every module that the composite gives a rule returns its
usual output, but wrapped in an autograd node whose backward is the rule (``R_out -> R_in``) instead of
the gradient. ``torch.autograd.grad(output, x, R_start)`` then yields the relevance of ``x``. On leaving
the block the hooks are removed and the canonizers undone, also when an exception is raised, so the
model computes exactly what it did before (outputs and gradients, bit for bit).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .canonizers import Canonizer
from .composites import Composite
from .rules import LayerRule


class _RuleNode(torch.autograd.Function):
    """Identity in the forward pass; the rule's map in the backward pass."""

    @staticmethod
    def forward(ctx, rule: LayerRule, module: nn.Module, output: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        ctx.rule, ctx.module = rule, module
        ctx.save_for_backward(output, *inputs)
        return output.clone()

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        output, *inputs = ctx.saved_tensors
        with torch.no_grad():
            result = ctx.rule.backward(ctx.module, inputs, output, relevance)
        return (None, None, None, *result)


class RuleHooks:
    """Context manager: canonizers applied, then a forward hook per ruled module; all undone on exit.

    Parameters
    ----------
    model : nn.Module
        In eval mode.
    composite : Composite
        Which rule each module gets.
    canonizers : sequence of Canonizer
        Applied in order on entry (before the rules are assigned), undone in reverse on exit.
    """

    def __init__(self, model: nn.Module, composite: Composite, canonizers: Sequence[Canonizer] = ()):
        self.model, self.composite, self.canonizers = model, composite, list(canonizers)
        self._handles: list = []
        self._applied: list[Canonizer] = []

    def __enter__(self) -> "RuleHooks":
        try:
            for canonizer in self.canonizers:
                canonizer.apply(self.model)
                self._applied.append(canonizer)
            for name, (module, rule) in self.composite.assign(self.model).items():
                self._handles.append(module.register_forward_hook(_make_hook(rule)))
        except BaseException:
            self._undo()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._undo()

    def _undo(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for canonizer in reversed(self._applied):
            canonizer.remove()
        self._applied = []


def _make_hook(rule: LayerRule):
    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor):
        if not torch.is_grad_enabled() or not isinstance(output, torch.Tensor):
            return None
        tensors = [x for x in inputs if isinstance(x, torch.Tensor)]
        if len(tensors) != len(inputs) or not any(x.requires_grad for x in tensors):
            return None
        return _RuleNode.apply(rule, module, output.detach(), *tensors)

    return hook
