"""Canonizers: temporary, exactly undone rewrites of a model into a form LRP rules apply to.

* :class:`MergeBatchNorm` folds every (eval-mode) BatchNorm into the Conv/Linear right before it
  (Eq. 2.47 turned into the layer's weights and bias) and makes the BatchNorm an identity.
* :class:`ResidualSum` routes residual sums of ResNet blocks written with a plain ``+`` through an
  :class:`~bowlrp.dnn.models.Add` module, so the sum gets its own rule (Eq. 2.39). The project's own ResNet
  blocks already use ``Add``; the canonizer is for foreign blocks of the torchvision layout.

Each canonizer is applied with ``apply(model)`` and undone with ``remove()``; :class:`~bowlrp.dnn.lrp.attributor`
does both around every explanation, so parameters and forward functions are bit-for-bit what they were.
"""
from __future__ import annotations

import torch
from torch import nn

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d)
_FOLDABLE = (nn.Conv1d, nn.Conv2d, nn.Linear)


class Canonizer:
    """Base class."""

    def apply(self, model: nn.Module) -> None:
        raise NotImplementedError

    def remove(self) -> None:
        raise NotImplementedError


def batchnorm_pairs(model: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """(linear layer, BatchNorm) pairs where the BatchNorm directly follows the layer in registration order
    and normalises its output channels (how Sequential stacks and torchvision's ResNets are written)."""
    pairs = []
    previous = None
    for module in model.modules():
        if isinstance(module, _BATCHNORM) and isinstance(previous, _FOLDABLE):
            channels = previous.out_features if isinstance(previous, nn.Linear) else previous.out_channels
            if channels == module.num_features:
                pairs.append((previous, module))
        if isinstance(module, _FOLDABLE + _BATCHNORM):
            previous = module
    return pairs


class MergeBatchNorm(Canonizer):
    """Fold eval-mode BatchNorm into the preceding Conv/Linear: ``w' = w * s``, ``b' = (b - mu) * s + beta``
    with ``s = gamma / sqrt(var + eps)``; the BatchNorm becomes the identity."""

    def __init__(self) -> None:
        self._saved: list = []

    def apply(self, model: nn.Module) -> None:
        for layer, bn in batchnorm_pairs(model):
            if bn.training:
                raise RuntimeError("BatchNorm folding needs the model in eval mode (model.eval())")
            saved = {"layer": layer, "bn": bn, "weight": layer.weight.data.clone(), "had_bias": layer.bias is not None,
                     "bn_state": {k: v.data.clone() for k, v in bn.state_dict().items()
                                  if k != "num_batches_tracked"}, "bn_eps": bn.eps}
            if saved["had_bias"]:
                saved["bias"] = layer.bias.data.clone()
            with torch.no_grad():
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else \
                    1.0 / torch.sqrt(bn.running_var + bn.eps)
                shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
                bias = layer.bias.data if saved["had_bias"] else torch.zeros_like(bn.running_mean)
                new_bias = (bias - bn.running_mean) * scale + shift
                layer.weight.data = layer.weight.data * scale.reshape(-1, *([1] * (layer.weight.dim() - 1)))
                if saved["had_bias"]:
                    layer.bias.data = new_bias
                else:
                    layer.bias = nn.Parameter(new_bias, requires_grad=layer.weight.requires_grad)
                # identity BatchNorm: mean 0, var + eps = 1, gamma 1, beta 0
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0)
                bn.eps = 0.0
                if bn.affine:
                    bn.weight.data = torch.ones_like(bn.weight.data)
                    bn.bias.data = torch.zeros_like(bn.bias.data)
            self._saved.append(saved)

    def remove(self) -> None:
        for saved in reversed(self._saved):
            layer, bn = saved["layer"], saved["bn"]
            layer.weight.data = saved["weight"]
            if saved["had_bias"]:
                layer.bias.data = saved["bias"]
            else:
                del layer.bias
                layer.register_parameter("bias", None)
            state = saved["bn_state"]
            bn.running_mean.copy_(state["running_mean"])
            bn.running_var.copy_(state["running_var"])
            bn.eps = saved["bn_eps"]
            if bn.affine:
                bn.weight.data = state["weight"]
                bn.bias.data = state["bias"]
        self._saved = []


def _is_residual_block(module: nn.Module) -> bool:
    names = {"conv1", "bn1", "conv2", "bn2", "relu"}
    return names <= set(dict(module.named_children())) and hasattr(module, "downsample") \
        and not hasattr(module, "add")


class ResidualSum(Canonizer):
    """Give torchvision-layout BasicBlock/Bottleneck modules (``out + identity`` written inline) an ``Add``
    module for the residual sum, by overriding their ``forward`` until :meth:`remove`."""

    def __init__(self) -> None:
        self._blocks: list[nn.Module] = []

    def apply(self, model: nn.Module) -> None:
        from ..models import Add, residual_forward

        for module in model.modules():
            if _is_residual_block(module):
                module.add = Add()
                module.forward = residual_forward.__get__(module)
                self._blocks.append(module)

    def remove(self) -> None:
        for module in self._blocks:
            del module.forward  # back to the class' forward
            del module.add
        self._blocks = []


def default_canonizers() -> list[Canonizer]:
    """BatchNorm folding and residual sums: what every explanation of the project's models uses."""
    return [ResidualSum(), MergeBatchNorm()]
