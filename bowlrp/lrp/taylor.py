"""Taylor decomposition of a kernel SVM at a root point (Eqs. 2.75-2.76, A.5, A.7; Section 2.4.2).

For kernels that do not split over dimensions (exp chi2, RBF), f is expanded to first order at a
root point x~ on the decision boundary::

    R_d = (x - x~)_d · sum_i alpha_i y_i dk(x_i, .)/dx_d (x~)

Root-point search: from the reference samples predicted as the class opposite to x, the
``n_candidates`` nearest to x are taken; on each segment ``x~(g) = g x + (1 - g) x_s`` the sign
change of f is bracketed by bisection, all candidates at once (one Gram evaluation per step),
until ``|f(x~)| <= tolerance``. The root point nearest to x wins. What the first-order terms miss
is reported, never hidden: ``bias_relevance`` holds the zero-order term f(x~) (0 up to the
tolerance) and ``residual = f(x) - sum_d R_d - f(x~)``.

Without any opposite-class reference there is no root on those segments: the reference with the
smallest |f| serves as x~ and f(x~) is spread evenly over the dimensions (the zero-order share of
Eq. 2.19); ``root_found`` is then False.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BowlrpError
from ..svm.classifier import BinarySvm
from .svm import SvmRelevance

DEFAULT_CANDIDATES = 50
DEFAULT_TOLERANCE = 1e-5
MAX_BISECTIONS = 80


@dataclass
class RootPoint:
    """Result of the root-point search: the point, its score, and whether it is a real root."""

    point: np.ndarray
    score: float
    found: bool
    n_candidates: int


def find_root_point(machine: BinarySvm, x: np.ndarray, reference: np.ndarray,
                    n_candidates: int = DEFAULT_CANDIDATES, tolerance: float = DEFAULT_TOLERANCE) -> RootPoint:
    """Nearest point on the decision boundary along segments from x to opposite-class references.

    Parameters
    ----------
    machine : BinarySvm
    x : (D,) float
    reference : (M, D) float
        Samples to search from (the opposite-class ones among them are used).
    n_candidates : int
        How many opposite-class references, nearest to x first, are searched.
    tolerance : float
        Accept ``|f(x~)| <= tolerance``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    reference = np.asarray(reference, dtype=np.float64)
    if reference.ndim != 2 or reference.shape[1] != x.size or len(reference) == 0:
        raise BowlrpError(f"root-point search needs reference samples of shape (M, {x.size})")
    f_x = float(machine.decision_function(x[None, :])[0])
    if abs(f_x) <= tolerance:  # x itself is a root
        return RootPoint(x.copy(), f_x, True, 0)
    f_ref = machine.decision_function(reference)
    opposite = np.flatnonzero(np.sign(f_ref) != np.sign(f_x))
    if opposite.size == 0:
        best = int(np.argmin(np.abs(f_ref)))
        return RootPoint(reference[best].copy(), float(f_ref[best]), False, 0)
    distance = np.linalg.norm(reference[opposite] - x, axis=1)
    chosen = opposite[np.argsort(distance, kind="stable")[:n_candidates]]
    start = reference[chosen]                    # g = 0: opposite sign
    lo = np.zeros(len(chosen))                   # g with sign(f) != sign(f(x))
    hi = np.ones(len(chosen))                    # g with sign(f) == sign(f(x))
    best_g = np.full(len(chosen), np.nan)
    best_f = np.full(len(chosen), np.inf)
    for _ in range(MAX_BISECTIONS):
        open_ = np.isnan(best_g)
        if not open_.any():
            break
        g = 0.5 * (lo[open_] + hi[open_])
        points = g[:, None] * x + (1.0 - g[:, None]) * start[open_]
        f_mid = machine.decision_function(points)
        idx = np.flatnonzero(open_)
        done = np.abs(f_mid) <= tolerance
        best_g[idx[done]] = g[done]
        best_f[idx[done]] = f_mid[done]
        same = np.sign(f_mid) == np.sign(f_x)
        hi[idx[~done & same]] = g[~done & same]
        lo[idx[~done & ~same]] = g[~done & ~same]
    # candidates that never met the tolerance end at their bracket's x-side end, flagged by |f|
    unresolved = np.isnan(best_g)
    if unresolved.any():
        g = hi[unresolved]
        best_g[unresolved] = g
        best_f[unresolved] = machine.decision_function(g[:, None] * x + (1.0 - g[:, None]) * start[unresolved])
    points = best_g[:, None] * x + (1.0 - best_g[:, None]) * start
    ok = np.abs(best_f) <= tolerance
    pool = np.flatnonzero(ok) if ok.any() else np.arange(len(points))
    nearest = pool[int(np.argmin(np.linalg.norm(points[pool] - x, axis=1)))]
    return RootPoint(points[nearest], float(best_f[nearest]), bool(ok.any()), len(chosen))


def model_gradient(machine: BinarySvm, point: np.ndarray) -> np.ndarray:
    """``df/dx`` at ``point``: ``sum_i alpha_i y_i dk(x_i, .)/dx``, (D,) float64."""
    if machine.support_vectors_ is None:
        raise BowlrpError("this machine has no support vectors (a linear model from a file); it is decomposed exactly")
    return machine.dual_coef_ @ machine.kernel_.gradient(machine.support_vectors_, point)


def taylor_relevance(machine: BinarySvm, x: np.ndarray, reference: np.ndarray | None = None,
                     n_candidates: int = DEFAULT_CANDIDATES, tolerance: float = DEFAULT_TOLERANCE) -> SvmRelevance:
    """First-order Taylor relevance of ``f(x)`` at the nearest root point (Eq. 2.76).

    ``reference`` defaults to the machine's support vectors. Returns an :class:`SvmRelevance` whose
    ``bias_relevance`` is f(x~) and ``residual`` the remainder of the expansion.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if reference is None:
        if machine.support_vectors_ is None:
            raise BowlrpError("no reference samples for the root-point search")
        reference = machine.support_vectors_
    root = find_root_point(machine, x, reference, n_candidates, tolerance)
    relevance = (x - root.point) * model_gradient(machine, root.point)
    zero_order = root.score
    if not root.found:  # no root on any segment: spread f(x~) evenly (Eq. 2.19)
        relevance = relevance + zero_order / x.size
        zero_order = 0.0
    score = float(machine.decision_function(x[None, :])[0])
    residual = score - float(relevance.sum()) - zero_order
    return SvmRelevance(relevance, score, zero_order, residual, root_point=root.point)
