"""LRP for the SVM layer: f(x) = b + sum_i alpha_i y_i k(x_i, x) → relevance R_d per feature dimension.

The backward step of :mod:`bowlrp.svm` (layer (4) → (3) of Fig. 2.11).

* Sum-decomposable kernels (linear, HIK, additive chi2, and weighted sums of them, Eq. 2.67):
  exactly ``R_d = sum_i alpha_i y_i k^(d)(x_i(d), x(d))`` (Eq. 2.72); for the linear kernel
  ``R_d = w_d x_d`` (Eq. A.1), which with x the normalised Fisher vector is Eq. 4.8: the FV
  normalisation is part of the kernel map. Then ``sum_d R_d + b = f(x)``.
* The bias ``b`` is kept apart (``bias="keep"``, ``R_b = b``), spread uniformly
  (``"uniform"``, Eq. 2.73: ``R_d += b / D``) or along w (``"weighted"``, Eq. 2.74:
  ``R_d += w_d / ||w||_2 · b``, linear machines only). Eq. 2.74 does not sum to b, so whatever of
  b it does not hand out stays in ``bias_relevance``: ``sum_d R_d + bias_relevance = f(x)`` in all
  three cases.
* Other kernels (exp chi2, RBF) are decomposed from a root point, see :mod:`.taylor`: by default
  the gradient integrated along the segment from the root point to x (``taylor="path"``), or the
  thesis' first-order expansion at the root point (``taylor="first-order"``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import BowlrpError
from ..parallel import single_thread_blas
from ..svm.classifier import BinarySvm
from .taylor import taylor_relevance

BIAS_MODES = ("keep", "uniform", "weighted")


@dataclass
class SvmRelevance:
    """What the SVM layer hands down.

    Attributes
    ----------
    relevance : (D,) float64
        ``R_d`` per feature dimension.
    score : float
        ``f(x)``.
    bias_relevance : float
        Relevance left with the bias (``b`` for ``bias="keep"``, 0 for ``"uniform"``).
    residual : float
        ``f(x) - sum_d R_d - bias_relevance``: 0 up to rounding for exact decompositions, the
        Taylor remainder (``f(x~)`` plus higher-order terms) otherwise.
    root_point : (D,) float64 or None
        The Taylor root point x~ (None for exact decompositions).
    n_nodes : int
        Gradient evaluations of the Taylor decomposition (quadrature nodes of the path integral, 1 for
        first order, 0 for exact decompositions).
    """

    relevance: np.ndarray
    score: float
    bias_relevance: float
    residual: float = 0.0
    root_point: np.ndarray | None = None
    n_nodes: int = 0


def is_exactly_decomposable(machine: BinarySvm) -> bool:
    """True when ``machine`` is decomposed exactly (Eq. 2.72), False when it needs a Taylor root point."""
    return machine.is_linear or machine.kernel_.sum_decomposable


def decomposable_relevance(machine: BinarySvm, x: np.ndarray) -> np.ndarray:
    """``R_d`` of Eq. 2.72 for a sum-decomposable kernel, before any bias redistribution.

    Parameters
    ----------
    machine : BinarySvm
        A fitted machine with a linear kernel, a sum-decomposable kernel, or a sum of those.
    x : (D,) float
        The feature vector the SVM sees (normalised FV or BoW histogram).

    Returns
    -------
    (D,) float64, summing to ``f(x) - b``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if machine.is_linear:
        return machine.coef_ * x  # Eq. A.1 / 4.8
    if not machine.kernel_.sum_decomposable:
        raise BowlrpError(f"kernel {machine.kernel_.name!r} is not sum-decomposable; use a Taylor decomposition")
    # sum over support vectors, in blocks so that (S, D) stays small for long feature vectors
    out = np.zeros_like(x)
    step = max(1, (32 * 2**20) // (8 * max(len(x), 1)))
    for i in range(0, len(machine.dual_coef_), step):
        terms = machine.kernel_.per_dimension(machine.support_vectors_[i:i + step], x)
        out += machine.dual_coef_[i:i + step] @ terms
    return out


def distribute_bias(relevance: np.ndarray, bias: float, mode: str,
                    machine: BinarySvm | None = None) -> tuple[np.ndarray, float]:
    """Apply the bias option; returns ``(R_d, bias_relevance)`` with their sum unchanged.

    ``"keep"``: R_b = b stays apart. ``"uniform"``: b / D to every dimension (Eq. 2.73).
    ``"weighted"``: ``w_d / ||w||_2 · b`` to dimension d (Eq. 2.74), the rest of b stays apart.
    """
    if mode not in BIAS_MODES:
        raise BowlrpError(f"unknown bias mode {mode!r}; choose one of {', '.join(BIAS_MODES)}")
    relevance = np.asarray(relevance, dtype=np.float64).copy()
    if mode == "keep":
        return relevance, float(bias)
    if mode == "uniform":
        return relevance + bias / relevance.size, 0.0
    if machine is None or not machine.is_linear:
        raise BowlrpError("bias mode 'weighted' needs a linear SVM (w in feature space, Eq. 2.74)")
    w = machine.coef_
    norm = float(np.linalg.norm(w))
    if norm == 0:
        return relevance, float(bias)
    share = w / norm * bias
    return relevance + share, float(bias - share.sum())


def explain_svm(machine: BinarySvm, x: np.ndarray, bias: str = "keep", reference: np.ndarray | None = None,
                **taylor_options) -> SvmRelevance:
    """Relevance of every feature dimension for ``f(x)`` of one binary machine.

    Parameters
    ----------
    machine : BinarySvm
    x : (D,) float
        The feature vector the SVM sees.
    bias : {"keep", "uniform", "weighted"}
    reference : (M, D) float, optional
        Candidate samples for the Taylor root-point search (non-decomposable kernels only); by
        default the machine's support vectors.
    **taylor_options
        Passed to :func:`bowlrp.lrp.taylor.taylor_relevance` (``method="path"|"first-order"``,
        ``path_tolerance``, ``n_candidates``, ``tolerance``).

    BLAS runs on one thread here, so the score, relevance and root point of an image do not depend on
    how many BLAS threads the process has (a joblib worker has fewer than the main process).
    """
    with single_thread_blas():
        return _explain_svm(machine, x, bias, reference, **taylor_options)


def _explain_svm(machine: BinarySvm, x: np.ndarray, bias: str, reference: np.ndarray | None,
                 **taylor_options) -> SvmRelevance:
    x = np.asarray(x, dtype=np.float64).ravel()
    score = float(machine.decision_function(x[None, :])[0])
    if is_exactly_decomposable(machine):
        relevance = decomposable_relevance(machine, x)
        relevance, bias_relevance = distribute_bias(relevance, machine.intercept_, bias, machine)
        residual = score - float(relevance.sum()) - bias_relevance
        return SvmRelevance(relevance, score, bias_relevance, residual)
    if bias == "weighted":
        raise BowlrpError("bias mode 'weighted' needs a linear SVM; a Taylor decomposition has no bias term")
    taylor = taylor_relevance(machine, x, reference=reference, **taylor_options)
    return SvmRelevance(taylor.relevance, taylor.score, taylor.zero_order, taylor.residual,
                        root_point=taylor.root_point, n_nodes=taylor.n_nodes)
