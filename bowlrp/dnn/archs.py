"""What the command line needs to know of the network architectures without importing PyTorch: their
names, input geometry and classifier layer (:mod:`bowlrp.dnn.models` builds them from these names).

Kept apart from :mod:`bowlrp.dnn.models` so that ``bowlrp train --help`` and every BoW/FV command can
name the architectures while PyTorch (about 190 MB) stays unloaded.
"""
from __future__ import annotations

#: the architectures :func:`bowlrp.dnn.models.build` knows, in the order the help lists them
ARCH_NAMES = ("smallcnn", "alexnet", "vgg16", "resnet18", "resnet50")

#: (longest side after resizing, square crop) per architecture; the thesis' 256/227 for CaffeNet.
INPUT_GEOMETRY = {"smallcnn": (96, 80), "alexnet": (256, 227), "vgg16": (256, 224),
                  "resnet18": (256, 224), "resnet50": (256, 224)}

#: the classifier layer replaced when torchvision weights (1000 classes) are loaded for another task
HEAD = {"smallcnn": "classifier.3", "alexnet": "classifier.6", "vgg16": "classifier.6",
        "resnet18": "fc", "resnet50": "fc"}

#: the architectures whose layout is torchvision's (``--weights FILE.pth`` of a torchvision model)
TORCHVISION_ARCHS = ("alexnet", "vgg16", "resnet18", "resnet50")
