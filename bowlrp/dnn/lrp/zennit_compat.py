"""Import zennit (the reference our rules are checked and timed against) without torchvision.

zennit's package ``__init__`` imports its torchvision canonizers.

The CI installs zennit with ``--no-deps`` so it does not pull torchvision and a second torch; zennit's
``zennit/torchvision.py`` only needs the two ResNet block classes, which this shim provides from
:mod:`bowlrp.dnn.models` (the project's blocks have torchvision's layout). A missing zennit is an ImportError,
so the tests that need it fail rather than skip.
"""
from __future__ import annotations

import importlib.util
import sys
import types


def import_zennit():
    """``import zennit`` (with ``zennit.attribution/canonizers/composites/rules`` loaded); see the module doc."""
    shim = "torchvision" not in sys.modules and importlib.util.find_spec("torchvision") is None
    if shim:
        from bowlrp.dnn import models

        tv = types.ModuleType("torchvision")
        tv_models = types.ModuleType("torchvision.models")
        tv_resnet = types.ModuleType("torchvision.models.resnet")
        tv_resnet.BasicBlock, tv_resnet.Bottleneck = models.BasicBlock, models.Bottleneck
        tv.models, tv_models.resnet = tv_models, tv_resnet
        sys.modules.update({"torchvision": tv, "torchvision.models": tv_models, "torchvision.models.resnet": tv_resnet})
    try:
        import zennit  # noqa: F401  (raises ImportError when zennit is not installed)
        import zennit.attribution
        import zennit.canonizers
        import zennit.composites
        import zennit.rules
    finally:
        if shim:  # nobody else should mistake the shim for torchvision
            for name in ("torchvision.models.resnet", "torchvision.models", "torchvision"):
                sys.modules.pop(name, None)
    return zennit
