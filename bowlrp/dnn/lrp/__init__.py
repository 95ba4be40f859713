"""LRP for PyTorch networks: rules, composites, canonizers and the hook context manager (SPEC 5.1)."""
from .attributor import RuleHooks
from .canonizers import MergeBatchNorm, ResidualSum, default_canonizers
from .composites import COMPOSITES, THESIS, Composite, make_composite
from .rules import AlphaBeta, Epsilon, Flat, FlatPool, LocalRenormalization, Norm, Pass, WSquare, ZBox, ZPlus

__all__ = ["RuleHooks", "MergeBatchNorm", "ResidualSum", "default_canonizers", "COMPOSITES", "THESIS", "Composite",
           "make_composite", "AlphaBeta", "Epsilon", "Flat", "FlatPool", "LocalRenormalization", "Norm", "Pass", "WSquare", "ZBox", "ZPlus"]
