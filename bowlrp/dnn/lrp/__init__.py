"""LRP for PyTorch networks: rules, composites, canonizers and the hook context manager (the layer rules of
dissertation Sections 2.2.6 and 2.3.1, the modified backward pass of Section 2.3.2, the thesis composite and
decomposition depth of Sections 5.4.1 and 5.4.2)."""
from .attributor import RuleHooks
from .canonizers import MergeBatchNorm, ResidualSum, default_canonizers
from .composites import (THESIS, Composite, composite_names, make_composite, register_composite,
                         unregister_composite)
from .errors import ExplainError
from .rules import (AlphaBeta, Epsilon, Flat, FlatPool, LayerRule, LocalRenormalization, Norm, Pass, WSquare, ZBox,
                    ZPlus)

__all__ = ["RuleHooks", "MergeBatchNorm", "ResidualSum", "default_canonizers", "THESIS", "Composite",
           "composite_names", "make_composite", "register_composite", "unregister_composite", "ExplainError",
           "AlphaBeta", "Epsilon", "Flat", "FlatPool", "LayerRule", "LocalRenormalization", "Norm", "Pass", "WSquare",
           "ZBox", "ZPlus"]
