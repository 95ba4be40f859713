"""Redistribution rules for the encoder layer: how ``R_d`` of a pooled dimension is shared among the
local descriptors ``l`` that contribute ``z_ld`` to it (Section 2.2.6, Eqs. 2.21-2.26, 2.78-2.79).

Every rule is written as two per-dimension multipliers, so that the message from d to l is::

    R_{l <- d} = z_ld · c_pos[d]   if z_ld > 0
                 z_ld · c_neg[d]   otherwise

* epsilon (Eq. 2.22): ``c_pos = c_neg = R_d / (z_d + eps · sign(z_d))`` with sign(0) = 1; with
  eps > 0 the share ``R_d · eps · sign(z_d) / (z_d + eps · sign(z_d))`` stays in the stabiliser
  (reported as ``absorbed``);
* alpha-beta (Eq. 2.26): ``c_pos = alpha R_d / z_d^+``, ``c_neg = -beta R_d / z_d^-`` with
  alpha - beta = 1 and beta >= 0, so the share of the negative contributions is subtracted with
  weight beta; a dimension reached only by positive (or only negative) contributions hands on
  alpha R_d (-beta R_d), the difference to R_d is reported as ``absorbed`` (negative when more is
  handed on);
* |z| (Eq. 2.7, the counter-example): ``c_pos = R_d / sum_l |z_ld| = -c_neg``: shares by magnitude,
  blind to the sign of the contribution.

A dimension that no descriptor reaches (all ``z_ld = 0``) hands ``R_d`` evenly to the descriptors of
its cell (Eq. 2.79); that part is conserved and not counted as absorbed.

Sign convention of beta: the whole project (this module and the DNN rules, e.g. ``AlphaBeta(2, 1)``,
as in zennit) uses alpha - beta = 1 with beta >= 0. Eq. 2.26 of the dissertation states the same rule
with the sign inside beta (alpha + beta = 1, so its "alpha = 2, beta = -1" of Sections 2.2.6, 4.5 and
5.4.1 is alpha = 2, beta = 1 here): our beta is minus the dissertation's.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BowlrpError

RULES = ("epsilon", "alphabeta", "absz")


@dataclass(frozen=True)
class EncoderRule:
    """A redistribution rule and its parameters.

    Parameters
    ----------
    name : {"epsilon", "alphabeta", "absz"}
    eps : float
        Stabiliser of the epsilon rule (the FV analyses use 1 and 100), >= 0.
    alpha : float
        alpha of the alpha-beta rule, >= 1; beta = alpha - 1 >= 0 (see the module docstring).
    """

    name: str = "epsilon"
    eps: float = 0.0
    alpha: float = 2.0

    def __post_init__(self) -> None:
        if self.name not in RULES:
            raise BowlrpError(f"unknown rule {self.name!r}; choose one of {', '.join(RULES)}")
        if not self.eps >= 0:
            raise BowlrpError(f"eps must be >= 0, got {self.eps!r}")
        if self.name == "alphabeta" and not self.alpha >= 1:
            raise BowlrpError(f"alpha must be >= 1 (beta = alpha - 1 >= 0), got {self.alpha!r}")

    @property
    def beta(self) -> float:
        """Weight of the negative contributions' share, alpha - 1 >= 0 (subtracted)."""
        return self.alpha - 1.0

    def describe(self) -> str:
        if self.name == "epsilon":
            return f"epsilon (eps={self.eps:g})"
        if self.name == "alphabeta":
            return f"alpha-beta (alpha={self.alpha:g}, beta={self.beta:g})"
        return "|z|"

    def settings(self) -> dict:
        """The rule's name and only the parameters it uses, e.g. for a record of the run."""
        if self.name == "epsilon":
            return {"rule": "epsilon", "eps": self.eps}
        if self.name == "alphabeta":
            return {"rule": "alphabeta", "alpha": self.alpha, "beta": self.beta}
        return {"rule": "absz"}


@dataclass
class Multipliers:
    """Per-dimension multipliers of a rule (see the module docstring), same shape as ``R``."""

    pos: np.ndarray
    neg: np.ndarray
    reached: np.ndarray      # bool: some z_ld != 0
    absorbed: float          # relevance of reached dimensions that the messages do not hand on


def multipliers(rule: EncoderRule, relevance: np.ndarray, z_pos: np.ndarray, z_neg: np.ndarray) -> Multipliers:
    """The multipliers for dimensions with relevance ``R_d`` and contribution sums ``z_d^+ >= 0``,
    ``z_d^- <= 0`` (arrays of one shape, float64)."""
    R = np.asarray(relevance, dtype=np.float64)
    z_pos = np.asarray(z_pos, dtype=np.float64)
    z_neg = np.asarray(z_neg, dtype=np.float64)
    has_pos, has_neg = z_pos > 0, z_neg < 0
    reached = has_pos | has_neg
    if rule.name == "epsilon":
        z = z_pos + z_neg
        denom = z + rule.eps * np.where(z >= 0, 1.0, -1.0)
        c = np.divide(R, denom, out=np.zeros_like(R), where=reached & (denom != 0))
        handed = c * z
        return Multipliers(c, c, reached, float(np.sum(R[reached]) - np.sum(handed[reached])))
    if rule.name == "alphabeta":
        pos = np.divide(rule.alpha * R, z_pos, out=np.zeros_like(R), where=has_pos)
        neg = np.divide(-rule.beta * R, z_neg, out=np.zeros_like(R), where=has_neg)
        handed = pos * z_pos + neg * z_neg
        return Multipliers(pos, neg, reached, float(np.sum(R[reached]) - np.sum(handed[reached])))
    magnitude = z_pos - z_neg
    c = np.divide(R, magnitude, out=np.zeros_like(R), where=reached)
    return Multipliers(c, -c, reached, 0.0)
