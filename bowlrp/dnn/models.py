"""Network architectures: CaffeNet and VGG-16 as compared in dissertation Section 5.3.1, ResNets (the
non-sequential models Section 5.6 leaves open), and a small CNN; written here because torchvision cannot be
assumed.

State-dict keys and shapes follow torchvision's files (``vgg16``, ``resnet18``, ``resnet50``, ``alexnet``),
so ``model.load_state_dict(torch.load(path, weights_only=True))`` takes their weights (the 1000-way
classifier is then replaced by the caller). Differences that do not touch the state dict:

* ReLUs are not in-place and residual sums go through an :class:`Add` module (its own LRP rule).
* ``alexnet(lrn=True)`` is CaffeNet-style: local response normalisation (size 5, alpha 1e-4, beta 0.75,
  k 1) after the first two pooling layers, placed inside the pooling slot (``features.2`` and
  ``features.5`` are ``Sequential(MaxPool2d, LocalResponseNorm)``) so the parameter keys stay torchvision's.

``smallcnn`` is the project's own net that trains on a CPU in minutes (4 conv+BN+ReLU stages, global
average pooling, two dense layers).

All models map ``(B, 3, H, W)`` float images (normalised with :data:`IMAGENET_MEAN`/``STD``) to ``(B, n_classes)``
scores.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .archs import ARCH_NAMES, HEAD, INPUT_GEOMETRY  # noqa: F401  (HEAD, INPUT_GEOMETRY: re-exported)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Add(nn.Module):
    """``a + b`` as a module, so residual sums can carry an LRP rule (Eq. 2.38/2.39)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def residual_forward(self, x: torch.Tensor) -> torch.Tensor:
    """Forward of a torchvision-layout BasicBlock/Bottleneck with the sum through ``self.add``."""
    identity = x if self.downsample is None else self.downsample(x)
    out = self.relu(self.bn1(self.conv1(x)))
    if hasattr(self, "conv3"):
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
    else:
        out = self.bn2(self.conv2(out))
    return self.relu(self.add(out, identity))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.add = Add()

    forward = residual_forward


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # stride on the 3x3 (torchvision v1.5)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample
        self.add = Add()

    forward = residual_forward


class ResNet(nn.Module):
    """torchvision's ResNet layout: conv1, bn1, relu, maxpool, layer1..4, avgpool, fc."""

    def __init__(self, block: type, layers: list[int], num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class _Classic(nn.Module):
    """features -> avgpool -> flatten -> classifier (VGG, AlexNet, the small CNN)."""

    def __init__(self, features: nn.Sequential, avgpool: nn.Module, classifier: nn.Sequential):
        super().__init__()
        self.features, self.avgpool, self.classifier = features, avgpool, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def vgg16(num_classes: int = 1000) -> nn.Module:
    """VGG-16 (configuration D, no batch norm), torchvision keys ``features.{0..28}``, ``classifier.{0,3,6}``."""
    layers: list[nn.Module] = []
    channels = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU()]
            channels = v
    classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 4096),
                               nn.ReLU(), nn.Dropout(), nn.Linear(4096, num_classes))
    return _init(_Classic(nn.Sequential(*layers), nn.AdaptiveAvgPool2d((7, 7)), classifier))


def alexnet(num_classes: int = 1000, lrn: bool = True) -> nn.Module:
    """AlexNet in torchvision's layout; ``lrn=True`` adds CaffeNet's local response normalisation."""
    def pool() -> nn.Module:
        mp = nn.MaxPool2d(3, 2)
        return nn.Sequential(mp, nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)) if lrn else mp

    features = nn.Sequential(
        nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), pool(),
        nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), pool(),
        nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
    classifier = nn.Sequential(nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Dropout(),
                               nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, num_classes))
    return _init(_Classic(features, nn.AdaptiveAvgPool2d((6, 6)), classifier))


def smallcnn(num_classes: int = 20, width: int = 16) -> nn.Module:
    """Four conv(3x3)+BN+ReLU stages (width, 2w, 4w, 8w channels; max pooling between), global average
    pooling, Linear(8w, 8w) + ReLU + Dropout + Linear(8w, num_classes)."""
    layers: list[nn.Module] = []
    channels = 3
    for i, out in enumerate((width, 2 * width, 4 * width, 8 * width)):
        if i:
            layers.append(nn.MaxPool2d(2, 2))
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU()]
        channels = out
    classifier = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Dropout(0.3),
                               nn.Linear(channels, num_classes))
    return _init(_Classic(nn.Sequential(*layers), nn.AdaptiveAvgPool2d((1, 1)), classifier))


def _init(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return model


ARCHITECTURES: dict[str, Callable[..., nn.Module]] = dict(zip(ARCH_NAMES, (
    smallcnn,
    alexnet,
    vgg16,
    lambda num_classes=1000: ResNet(BasicBlock, [2, 2, 2, 2], num_classes),
    lambda num_classes=1000: ResNet(Bottleneck, [3, 4, 6, 3], num_classes),
)))


def build(arch: str, num_classes: int) -> nn.Module:
    """A freshly initialised model of architecture ``arch`` (a key of :data:`ARCHITECTURES`)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](num_classes=num_classes)
