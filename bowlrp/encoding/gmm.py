"""EM for the diagonal GMM of the Fisher vector on the encoder's own kernels (backend ``"bowlrp"``).

One EM iteration over N descriptors is the Fisher encoder's forward pass over them, summed:

* E-step: the log-joints by one float32 GEMM per row chunk and the softmax with VLFeat's 1e-6 cut
  (:func:`~.posteriors.sparse_posteriors`), which also gives each row's ``log p(l)``;
* M-step: the zeroth, first and second moments of the kept pairs
  (:func:`~.posteriors.component_moments`), accumulated in float64 about the *current* means and
  scaled by the current standard deviations, so ``var = sigma^2 (E[t^2] - E[t]^2)`` does not cancel
  the way ``E[l^2] - mu^2`` does in float32.

Both run in fixed row chunks and fixed accumulator blocks, with BLAS on one thread per chunk, so a
fit is a function of the data and the seed alone, bit for bit, whatever the thread count.

Convergence is scikit-learn's rule: stop when the mean log-likelihood per descriptor changes by
less than ``tol`` (default 1e-3, as ``GaussianMixture``), or after ``max_iter`` iterations.

Initialisation (:func:`initial_parameters`): k-means++ seeds (scikit-learn's ``kmeans_plusplus``,
seeded, on a random subset of 40 rows per component), then every descriptor to its nearest seed and each cluster's mean, variance and share as
the start, i.e. one hard-assignment step where ``GaussianMixture`` runs k-means to convergence.

Every variance is bounded below by :func:`variance_floor` (``1e-4`` of the largest per-dimension
variance of the data, the convention of VLFeat's recognition code, whose ``vl_gmm`` takes the same
kind of bound), on every backend, so no component collapses onto a point. A component that loses
all its descriptors keeps its mean and variance and gets (almost) no weight.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..parallel import map_row_chunks, single_thread_blas
from ..progress import progress
from .posteriors import VL_FISHER_MIN_POSTERIOR, LogJoint, SparsePosteriors, component_moments, sparse_posteriors

#: the floor of every variance, as a fraction of the data's largest per-dimension variance
VARIANCE_FLOOR_FRACTION = 1e-4
#: scikit-learn's default tolerance on the change of the mean log-likelihood
DEFAULT_TOL = 1e-3
#: posteriors below this are left out of the M-step, as out of the Fisher vector
EM_MIN_POSTERIOR = VL_FISHER_MIN_POSTERIOR
#: k-means++ seeds are drawn from a random subset of this many rows per component (at least
#: SEED_SAMPLE_MIN): the seeding's cost grows with N K, and its seeds need no more rows than this
SEED_SAMPLE_PER_COMPONENT = 40
SEED_SAMPLE_MIN = 10_000


def variance_floor(X: np.ndarray) -> float:
    """``1e-4 * max_r var(X[:, r])`` of descriptors ``X`` (N, D), as the float32 value it is applied as."""
    return float(np.float32(VARIANCE_FLOOR_FRACTION * float(np.asarray(X, dtype=np.float64).var(axis=0).max())))


@dataclass(frozen=True)
class GmmParameters:
    """``means (K, D)``, ``variances (K, D)``, ``weights (K,)`` float64 of a diagonal GMM."""

    means: np.ndarray
    variances: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class GmmFit:
    """An EM result: the parameters (float32), the iterations run, the mean log-likelihood per
    descriptor of the parameters the last iteration started from (as scikit-learn reports
    ``lower_bound_``), and whether the change fell below ``tol``."""

    means: np.ndarray
    variances: np.ndarray
    weights: np.ndarray
    n_iter: int
    log_likelihood: float
    converged: bool


def _m_step(S0: np.ndarray, S1: np.ndarray, S2: np.ndarray, centre: np.ndarray, scale: np.ndarray,
            floor: float) -> GmmParameters:
    """New parameters from moments about ``centre`` in units of ``scale`` (K, D): ``mu = centre +
    scale E[t]``, ``var = max(scale^2 (E[t^2] - E[t]^2), floor)``, ``pi = S0 / sum S0``."""
    present = S0 > 0.0
    n = np.where(present, S0, 1.0)[:, None]
    mean_t = S1 / n
    means = np.where(present[:, None], centre + scale * mean_t, centre)
    spread = np.maximum(S2 / n - mean_t * mean_t, 0.0) * scale * scale
    variances = np.maximum(np.where(present[:, None], spread, scale * scale), floor)
    return GmmParameters(means, variances, S0 / S0.sum())


def _nearest(X: np.ndarray, centres: np.ndarray, chunk_rows: int = 16384) -> np.ndarray:
    """Index of the nearest of ``centres`` (K, D) for every row of ``X`` (N, D), (N,) int32."""
    C = centres.astype(np.float32)
    c2 = np.einsum("ij,ij->i", C, C)

    def chunk(start: int, stop: int) -> np.ndarray:
        return np.argmin(c2 - 2.0 * (X[start:stop] @ C.T), axis=1).astype(np.int32)

    parts = map_row_chunks(chunk, len(X), chunk_rows)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)


def initial_parameters(X: np.ndarray, n_components: int, random_state: int, floor: float) -> GmmParameters:
    """The EM start for descriptors ``X`` (N, D) float32: k-means++ seeds drawn from a random subset
    of the rows (:data:`SEED_SAMPLE_PER_COMPONENT`), then every row to its nearest seed, each
    cluster's mean, variance (floored) and share.

    Deterministic per ``random_state`` and independent of the thread count (the seeding runs with
    BLAS on one thread; the assignment in fixed chunks).
    """
    from sklearn.cluster import kmeans_plusplus

    rng = np.random.default_rng(random_state)
    n_seed = min(len(X), max(SEED_SAMPLE_MIN, SEED_SAMPLE_PER_COMPONENT * n_components))
    subset = X if n_seed == len(X) else X[np.sort(rng.choice(len(X), size=n_seed, replace=False))]
    with single_thread_blas():
        seeds, _ = kmeans_plusplus(subset, n_components, random_state=random_state)
    seeds = seeds.astype(np.float64)
    labels = _nearest(X, seeds)
    hard = SparsePosteriors(np.arange(len(X) + 1, dtype=np.int64), labels, np.ones(len(X)), n_components)
    ones = np.ones_like(seeds)
    return _m_step(*component_moments(X, hard, seeds, ones), seeds, ones, floor)


def fit_em(X: np.ndarray, start: GmmParameters, max_iter: int = 100, tol: float = DEFAULT_TOL, floor: float = 0.0,
           show_progress: bool = False) -> GmmFit:
    """EM for a diagonal GMM on descriptors ``X`` (N, D) from ``start``.

    Parameters
    ----------
    X : (N, D) float32
    start : GmmParameters
        Initial means, variances, weights (:func:`initial_parameters`, or given, as in the tests).
    max_iter : int
        EM iterations at most.
    tol : float
        Stop when the mean log-likelihood (nats per descriptor) changes by less than this; 0 runs
        ``max_iter`` iterations.
    floor : float
        Lower bound of every variance after each M-step (:func:`variance_floor`).
    show_progress : bool
        One progress step per iteration, with the log-likelihood and its change (:mod:`bowlrp.progress`).
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    params = start
    previous, log_likelihood, converged, n_iter = -np.inf, -np.inf, False, 0
    with progress(max_iter, f"GMM EM (K={len(start.weights)}, {len(X)} descriptors)", show_progress) as bar:
        for n_iter in range(1, max_iter + 1):
            joint = LogJoint(params.means, params.variances, params.weights)
            posteriors = sparse_posteriors(joint, X, EM_MIN_POSTERIOR)
            log_likelihood = float(posteriors.log_density.sum() / len(X))
            sigma = np.sqrt(params.variances)
            params = _m_step(*component_moments(X, posteriors, params.means, 1.0 / sigma), params.means, sigma, floor)
            change = log_likelihood - previous
            bar.set_postfix_str(f"log-likelihood {log_likelihood:.4f}, change {change:.2e}", refresh=False)
            bar.update()
            if abs(change) < tol:
                converged = True
                break
            previous = log_likelihood
    f32 = np.float32(floor)
    return GmmFit(params.means.astype(np.float32), np.maximum(params.variances.astype(np.float32), f32),
                  (params.weights / params.weights.sum()).astype(np.float32), n_iter, log_likelihood, converged)
