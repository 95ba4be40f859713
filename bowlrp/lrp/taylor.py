"""Decomposition of a non-decomposable kernel SVM from a root point (Eqs. 2.75-2.76, A.5, A.7; Section 2.4.2).

For kernels that do not split over dimensions (exp chi2, RBF) there are two methods, both starting
from a root point x~ on the decision boundary (found as below):

* ``"path"`` (the default): the gradient is integrated along the straight segment from x~ to x,
  the path-integral ("integrated gradients") form of the expansion::

      R_d = (x - x~)_d · ∫_0^1 df/dx_d (x~ + t (x - x~)) dt

  By the fundamental theorem of calculus ``sum_d R_d = f(x) - f(x~)`` exactly; what remains in
  ``residual`` is the quadrature error. The integral is taken by Gauss-Legendre quadrature whose
  node count starts at :data:`PATH_START_NODES` and doubles until
  ``|residual| <= path_tolerance · |f(x)|`` or :data:`PATH_MAX_NODES` is reached. The gradient of
  the expansion at all nodes of one rule is one Gram evaluation of the nodes against the support
  vectors (:meth:`~bowlrp.svm.kernels.Kernel.expansion_gradient`).
* ``"first-order"`` (the thesis' method, Eq. 2.76): f is expanded to first order at x~::

      R_d = (x - x~)_d · sum_i alpha_i y_i dk(x_i, .)/dx_d (x~)

  whose residual is the whole higher-order remainder (19-42 % of f(x) for RBF on FV, issue 16).

Root-point search: from the reference samples of the class opposite to x (by label when known,
as for support vectors, else by prediction), the ``n_candidates`` nearest to x are taken; on each
segment ``x~(g) = g x + (1 - g) x_s`` the sign change of f is bracketed and narrowed (regula falsi
with the Illinois modification, bisection as the fallback), all candidates at once, until
``|f(x~)| <= tolerance``. f along the segments comes from
:meth:`BinarySvm.segment_scores`: affine for linear machines, a quadratic exponent in g for the RBF
kernel (one GEMM up front, then O(candidates x support vectors) per step), Gram rows otherwise. The root point nearest to x wins. What the first-order terms miss
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

DEFAULT_CANDIDATES = 50
DEFAULT_TOLERANCE = 1e-5
MAX_STEPS = 80

#: Decompositions of a non-decomposable kernel: the path integral (default) or the thesis' first order.
TAYLOR_METHODS = ("path", "first-order")
DEFAULT_TAYLOR = "path"
#: Default bound on |residual| / |f(x)| at which the path quadrature stops refining.
DEFAULT_PATH_TOLERANCE = 1e-3
PATH_START_NODES = 4
#: The node count doubles at most up to this; the residual says how far from closed the books are then.
PATH_MAX_NODES = 256


@dataclass
class RootPoint:
    """Result of the root-point search: the point, its score, and whether it is a real root."""

    point: np.ndarray
    score: float
    found: bool
    n_candidates: int


def find_root_point(machine: BinarySvm, x: np.ndarray, reference: np.ndarray,
                    n_candidates: int = DEFAULT_CANDIDATES, tolerance: float = DEFAULT_TOLERANCE,
                    reference_labels: np.ndarray | None = None) -> RootPoint:
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
    reference_labels : (M,) {+1, -1}, optional
        Classes of the references (for support vectors the signs of their dual coefficients). With
        them only the chosen candidates are scored; without them f is evaluated on all references
        to find the opposite class. Candidates whose f turns out to have the sign of f(x) are dropped.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    reference = np.asarray(reference, dtype=np.float64)
    if reference.ndim != 2 or reference.shape[1] != x.size or len(reference) == 0:
        raise BowlrpError(f"root-point search needs reference samples of shape (M, {x.size})")
    f_x = float(machine.decision_function(x[None, :])[0])
    if abs(f_x) <= tolerance:  # x itself is a root
        return RootPoint(x.copy(), f_x, True, 0)
    if reference_labels is not None:
        opposite = np.flatnonzero(np.sign(np.asarray(reference_labels)) != np.sign(f_x))
    else:
        opposite = np.flatnonzero(np.sign(machine.decision_function(reference)) != np.sign(f_x))
    candidates = reference[opposite]
    distance2 = np.einsum("ij,ij->i", candidates, candidates) - 2.0 * (candidates @ x)  # + ||x||^2, same for all
    chosen = opposite[np.argsort(distance2, kind="stable")[:n_candidates]]
    segment = machine.segment_scores(x, reference[chosen])
    f_start = segment(np.zeros(len(chosen)), np.arange(len(chosen)))
    keep = np.flatnonzero(np.sign(f_start) != np.sign(f_x))
    if keep.size == 0:
        if reference_labels is not None:  # labels and predictions disagree everywhere: ask f itself
            return find_root_point(machine, x, reference, n_candidates, tolerance)
        f_ref = machine.decision_function(reference)
        best = int(np.argmin(np.abs(f_ref)))
        return RootPoint(reference[best].copy(), float(f_ref[best]), False, 0)
    # Regula falsi with the Illinois modification on every bracket at once: superlinear for the
    # smooth f along a segment (a handful of Gram evaluations instead of ~20 bisections), while a
    # bisection step whenever one end has been kept three times keeps the bracket halving at worst.
    lo = np.zeros(len(keep))                     # g with sign(f) != sign(f(x)); g = 0 is the reference
    hi = np.ones(len(keep))                      # g with sign(f) == sign(f(x))
    f_lo = f_start[keep].astype(np.float64)
    f_hi = np.full(len(keep), f_x)
    moved = np.zeros(len(keep), dtype=np.int64)  # +n: hi moved n times in a row, -n: lo did
    best_g = np.full(len(keep), np.nan)
    best_f = np.full(len(keep), np.inf)
    for _ in range(MAX_STEPS):
        open_ = np.flatnonzero(np.isnan(best_g))
        if not open_.size:
            break
        l, h, fl, fh = lo[open_], hi[open_], f_lo[open_], f_hi[open_]
        with np.errstate(divide="ignore", invalid="ignore"):
            g = (l * fh - h * fl) / (fh - fl)
        bisect = (np.abs(moved[open_]) >= 3) | ~((g > l) & (g < h))
        g = np.where(bisect, 0.5 * (l + h), g)
        f_mid = segment(g, keep[open_])
        done = np.abs(f_mid) <= tolerance
        best_g[open_[done]] = g[done]
        best_f[open_[done]] = f_mid[done]
        same = np.sign(f_mid) == np.sign(f_x)
        up, down = open_[~done & same], open_[~done & ~same]
        hi[up], f_hi[up] = g[~done & same], f_mid[~done & same]
        lo[down], f_lo[down] = g[~done & ~same], f_mid[~done & ~same]
        moved[up] = np.maximum(moved[up], 0) + 1
        moved[down] = np.minimum(moved[down], 0) - 1
        f_lo[up[moved[up] >= 2]] *= 0.5      # Illinois: the end kept twice counts half
        f_hi[down[moved[down] <= -2]] *= 0.5
        moved[open_[bisect]] = 0
    # candidates that never met the tolerance end at their bracket's x-side end, flagged by |f|
    unresolved = np.flatnonzero(np.isnan(best_g))
    if unresolved.size:
        best_g[unresolved] = hi[unresolved]
        best_f[unresolved] = segment(hi[unresolved], keep[unresolved])
    starts = reference[chosen[keep]]
    points = best_g[:, None] * x + (1.0 - best_g[:, None]) * starts
    ok = np.abs(best_f) <= tolerance
    pool = np.flatnonzero(ok) if ok.any() else np.arange(len(points))
    nearest = pool[int(np.argmin(np.linalg.norm(points[pool] - x, axis=1)))]
    return RootPoint(points[nearest], float(best_f[nearest]), bool(ok.any()), len(keep))


def model_gradient(machine: BinarySvm, point: np.ndarray) -> np.ndarray:
    """``df/dx`` at ``point``: ``sum_i alpha_i y_i dk(x_i, .)/dx``, (D,) float64."""
    if machine.support_vectors_ is None:
        raise BowlrpError("this machine has no support vectors (a linear model from a file); it is decomposed exactly")
    return machine.dual_coef_ @ machine.kernel_.gradient(machine.support_vectors_, point)


def model_gradients(machine: BinarySvm, points: np.ndarray) -> np.ndarray:
    """``df/dx`` at every row of ``points`` (n, D) -> (n, D) float64, one batched Gram evaluation."""
    if machine.support_vectors_ is None:
        raise BowlrpError("this machine has no support vectors (a linear model from a file); it is decomposed exactly")
    return machine.kernel_.expansion_gradient(machine.support_vectors_float64(), machine.dual_coef_, points)


def gauss_legendre_unit(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes (n,) in (0, 1) and weights (n,) summing to 1, for integrals over [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return 0.5 * (nodes + 1.0), 0.5 * weights


def path_integrated_relevance(machine: BinarySvm, x: np.ndarray, start: np.ndarray, n_nodes: int) -> np.ndarray:
    """``R_d = (x - start)_d · ∫_0^1 df/dx_d (start + t (x - start)) dt`` by ``n_nodes``-point
    Gauss-Legendre quadrature: x, start (D,) -> (D,) float64, summing to ``f(x) - f(start)`` up to the
    quadrature error."""
    x = np.asarray(x, dtype=np.float64).ravel()
    start = np.asarray(start, dtype=np.float64).ravel()
    t, w = gauss_legendre_unit(n_nodes)
    step = x - start
    mean_gradient = w @ model_gradients(machine, start + t[:, None] * step)
    return step * mean_gradient


@dataclass
class TaylorRelevance:
    """A decomposition of f from a root point: ``relevance`` (D,) float64 (the first-order terms, or
    the path integral), ``score`` f(x), ``zero_order`` f(x~) (0 when spread, see the module
    docstring), ``residual`` ``f(x) - sum relevance - zero_order``, ``root_point`` x~ (D,),
    ``method`` (``"path"`` or ``"first-order"``) and ``n_nodes``, the quadrature nodes the path
    integral used (1 for first order: one gradient)."""

    relevance: np.ndarray
    score: float
    zero_order: float
    residual: float
    root_point: np.ndarray
    method: str = "first-order"
    n_nodes: int = 1

    @property
    def bias_relevance(self) -> float:
        """The zero-order term takes the bias' place in the SVM layer's books."""
        return self.zero_order


def check_taylor(method: str, path_tolerance: float) -> None:
    """One-line errors for a bad decomposition method or path tolerance."""
    if method not in TAYLOR_METHODS:
        raise BowlrpError(f"unknown Taylor method {method!r}; choose one of {', '.join(TAYLOR_METHODS)}")
    if not (np.isfinite(path_tolerance) and path_tolerance > 0):
        raise BowlrpError(f"the path tolerance must be a positive number, got {path_tolerance!r}")


def taylor_relevance(machine: BinarySvm, x: np.ndarray, reference: np.ndarray | None = None,
                     n_candidates: int = DEFAULT_CANDIDATES, tolerance: float = DEFAULT_TOLERANCE,
                     method: str = DEFAULT_TAYLOR, path_tolerance: float = DEFAULT_PATH_TOLERANCE,
                     max_nodes: int = PATH_MAX_NODES) -> TaylorRelevance:
    """Relevance of ``f(x)`` from the nearest root point: the path integral (``method="path"``) or
    the first-order expansion there (``"first-order"``, Eq. 2.76); see the module docstring.

    ``reference`` defaults to the machine's support vectors. ``path_tolerance`` bounds
    ``|residual| / |f(x)|`` for the path method, whose Gauss-Legendre node count doubles from
    :data:`PATH_START_NODES` up to ``max_nodes`` until the bound holds.
    """
    check_taylor(method, path_tolerance)
    x = np.asarray(x, dtype=np.float64).ravel()
    if reference is None:
        if machine.support_vectors_ is None:
            raise BowlrpError("no reference samples for the root-point search")
        reference = machine.support_vectors_float64()
        labels = np.sign(machine.dual_coef_)  # a support vector's class is the sign of alpha_i y_i
    else:
        labels = None
    root = find_root_point(machine, x, reference, n_candidates, tolerance, reference_labels=labels)
    score = float(machine.decision_function(x[None, :])[0])
    n_nodes = 1
    if method == "first-order":
        relevance = (x - root.point) * model_gradient(machine, root.point)
    else:
        # books to close: f(x) - f(x~); the bound is relative to |f(x)| (not below the root tolerance,
        # which is all f(x) is when x lies on the boundary)
        target, bound = score - root.score, path_tolerance * max(abs(score), tolerance)
        n_nodes = PATH_START_NODES
        while True:
            relevance = path_integrated_relevance(machine, x, root.point, n_nodes)
            if abs(target - float(relevance.sum())) <= bound or 2 * n_nodes > max_nodes:
                break
            n_nodes *= 2
    zero_order = root.score
    if not root.found:  # no root on any segment: spread f(x~) evenly (Eq. 2.19)
        relevance = relevance + zero_order / x.size
        zero_order = 0.0
    residual = score - float(relevance.sum()) - zero_order
    return TaylorRelevance(relevance, score, zero_order, residual, root.point, method, n_nodes)
