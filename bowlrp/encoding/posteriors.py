"""The diagonal GMM's kernels, shared by the Fisher encoder, its relevance step and the EM fit
(:mod:`.gmm`): log-joints by one GEMM, sparse posteriors, posterior-weighted moments.

GMM posteriors as the Fisher vector sees them, kept sparse so that LRP can reuse the forward pass.

``vl_fisher`` drops every (descriptor, component) pair whose posterior ``gamma_k(l)`` is below
1e-6 (without renormalising the row); for a trained GMM only a few components per descriptor
survive. :func:`sparse_posteriors` computes exactly those pairs once, in CSR form, and both the
encoder (moments) and its relevance step (:mod:`bowlrp.lrp.fisher`) read them, as a DNN's
backward pass reads the activations of its forward pass.

Computation per block of rows: the log-joints by one float32 GEMM (:class:`LogJoint`), each
row's maximum, numpy's SIMD exponential of the differences, then a compiled kernel that sums each
row and moves the survivors of the cut to its front, and a second one that copies just those into
the CSR arrays. Chunks of blocks run on as many threads as numba may use (one in a joblib worker).
The same pass gives every row's log-density ``log p(l)`` (what EM's convergence test sums).

:func:`accumulate_moments` then adds ``gamma``, ``gamma t`` and ``gamma t^2`` (``t`` the whitened
deviation from a component's mean) over the kept pairs: the Fisher vector's statistics and, summed
over all descriptors, EM's M-step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from ..parallel import map_row_chunks

# VLFeat (gmm.c) treats a mixture component with a prior below this as absent: its log
# weight is -inf, so it gets no posterior mass, and vl_fisher leaves its block at zero.
VL_GMM_MIN_PRIOR = 1e-6

# vl_fisher ignores a descriptor/component pair whose posterior is below this.
VL_FISHER_MIN_POSTERIOR = 1e-6

# A component whose quadratic form is badly conditioned in float32 is evaluated in float64.
# Expanding sum_r (l_r - mu_kr)^2 / s_kr around a common origin costs about
# cond_k = sum_r mu'_kr^2 / s_kr in relative float32 precision (eps ~ 6e-8); 1000 keeps the
# log-density error below ~1e-4. Real SIFT data needs this: low-contrast descriptors are zeroed,
# all map to one PCA point, and the GMM puts a near-zero-variance component there (cond ~ 1e11).
FLOAT32_MAX_CONDITION = 1000.0


class LogJoint:
    """``log(pi_k N(l | mu_k, diag(s_k)))`` for all k, evaluated as one GEMM.

    With ``l' = l - center`` and ``center = sum_k pi_k mu_k`` (keeps ``l'`` and ``mu'`` small)::

        log_joint(l)_k = [l', l'^2] @ W[:, k] + c[k],    W = [B; A]  (2D, K)
        A[r, k] = -1 / (2 s_kr)
        B[r, k] = mu'_kr / s_kr                      (mu' = mu - center)
        c[k]    = log pi_k - 1/2 sum_r (mu'_kr^2 / s_kr + log(2 pi s_kr))

    Components with ``pi_k < 1e-6`` get ``c[k] = -inf`` (VLFeat's convention: no posterior
    mass). Components whose ``cond_k = sum_r mu'_kr^2 / s_kr`` exceeds
    :data:`FLOAT32_MAX_CONDITION` (``exact``; typically a handful) are evaluated instead from
    explicit differences ``(l - mu_k)^2 / s_k``, which do not cancel.

    Parameters
    ----------
    means, variances : (K, D) arrays; weights : (K,) array
    """

    def __init__(self, means: np.ndarray, variances: np.ndarray, weights: np.ndarray):
        var = np.asarray(variances, dtype=np.float64)
        w = np.asarray(weights, dtype=np.float64)
        self.means = np.asarray(means, dtype=np.float64)
        self.center = w @ self.means
        mu = self.means - self.center
        inv = 1.0 / var
        with np.errstate(divide="ignore"):
            logw = np.where(w >= VL_GMM_MIN_PRIOR, np.log(np.maximum(w, 1e-300)), -np.inf)
        self.W = np.vstack([(mu * inv).T, (-0.5 * inv).T]).astype(np.float32)
        self.c = (logw - 0.5 * np.sum(mu * mu * inv + np.log(2.0 * np.pi * var), axis=1)).astype(np.float32)
        self.exact = np.flatnonzero(np.sum(mu * mu * inv, axis=1) > FLOAT32_MAX_CONDITION)
        self._exact_means = self.means[self.exact].astype(np.float32)
        self._exact_inv = inv[self.exact].astype(np.float32)
        self._exact_c = (logw[self.exact] - 0.5 * np.sum(np.log(2.0 * np.pi * var[self.exact]), axis=1)).astype(np.float32)

    def log_joint(self, X: np.ndarray) -> np.ndarray:
        """``log(pi_k N(l | k))`` of descriptors ``X`` (N, D), (N, K) float32."""
        X = np.asarray(X, dtype=np.float32)
        n, d = X.shape
        Z = np.empty((n, 2 * d), dtype=np.float32)
        np.subtract(X, self.center.astype(np.float32), out=Z[:, :d])
        np.square(Z[:, :d], out=Z[:, d:])
        logp = Z @ self.W
        logp += self.c
        if len(self.exact):
            # explicit differences do not cancel, so float32 suffices here
            block = max(1, 8_000_000 // max(n * d, 1))  # keeps the (N, block, D) temporary near 32 MB
            for start in range(0, len(self.exact), block):
                sel = slice(start, start + block)
                diff = X[:, None, :] - self._exact_means[sel]
                np.square(diff, out=diff)
                diff *= self._exact_inv[sel]
                logp[:, self.exact[sel]] = self._exact_c[sel] - 0.5 * diff.sum(axis=2)
        return logp

    def posteriors(self, X: np.ndarray) -> np.ndarray:
        """Row-wise softmax of :meth:`log_joint` (max subtracted first), (N, K) float32."""
        logp = self.log_joint(X)
        logp -= logp.max(axis=1, keepdims=True)
        np.exp(logp, out=logp)
        logp /= logp.sum(axis=1, keepdims=True)
        return logp



@dataclass(frozen=True)
class SparsePosteriors:
    """The posteriors ``gamma_k(l) >= threshold`` of N descriptors, CSR by descriptor.

    Attributes
    ----------
    indptr : (N + 1,) int64
        Descriptor ``i``'s pairs are ``indptr[i]:indptr[i + 1]``.
    component : (nnz,) int32
        Component ``k`` of each pair, increasing within a descriptor.
    gamma : (nnz,) float64
        Its posterior (normalised over all K components, not over the survivors).
    n_components : int
        K.
    log_density : (N,) float64 or None
        ``log p(l) = log sum_k pi_k N(l | k)`` of each descriptor (nats).
    """

    indptr: np.ndarray
    component: np.ndarray
    gamma: np.ndarray
    n_components: int
    log_density: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def to_dense(self) -> np.ndarray:
        """``(N, K)`` float64 with zeros for the dropped pairs."""
        out = np.zeros((len(self), self.n_components))
        rows = np.repeat(np.arange(len(self)), np.diff(self.indptr))
        out[rows, self.component] = self.gamma
        return out


#: lanes of the row reductions: independent partial results (a fixed pattern, so the same bits on
#: every machine) let the compiled loops run as SIMD instead of one dependent add or compare at a time
_LANES = 8

#: rows whose log-joints, exponentials and survivor indices are processed together: 2048 x K=256
#: float32 is 2 MB, so the passes after the GEMM (max, exp, sum, cut) find the block in cache
SOFTMAX_BLOCK_ROWS = 2048


@njit(cache=True, nogil=True)
def _row_max(logp, tops):  # pragma: no cover - compiled
    """``tops[i] = max_k logp[i, k]``, eight lanes at a time."""
    n, k_total = logp.shape
    lanes = min(_LANES, k_total)
    acc = np.empty(lanes, dtype=logp.dtype)
    for i in range(n):
        for j in range(lanes):
            acc[j] = logp[i, j]
        k = lanes
        while k + lanes <= k_total:
            for j in range(lanes):
                v = logp[i, k + j]
                acc[j] = v if v > acc[j] else acc[j]
            k += lanes
        top = acc[0]
        for j in range(1, lanes):
            top = acc[j] if acc[j] > top else top
        for r in range(k, k_total):
            top = logp[i, r] if logp[i, r] > top else top
        tops[i] = top


@njit(cache=True, nogil=True)
def _cut_survivors(e, threshold, counts, totals, kept):  # pragma: no cover - compiled
    """Row-wise, in place, on ``e = exp(logp - max)``: the denominator and VLFeat's cut.

    ``totals[i] = sum_k e[i, k]`` (float64, eight lanes), ``counts[i]`` how many ``e[i, k]`` reach
    ``threshold * totals[i]``; those move to the front of the row in increasing ``k``, their
    components into ``kept[i, :counts[i]]``. The move is branch-free (every entry is written at the
    survivor count so far, which only a survivor advances): survivors sit at random places, and a
    branch on each would be mispredicted at each of them.
    """
    n, k_total = e.shape
    acc = np.empty(_LANES)
    for i in range(n):
        acc[:] = 0.0
        k = 0
        while k + _LANES <= k_total:
            for j in range(_LANES):
                acc[j] += e[i, k + j]
            k += _LANES
        total = 0.0
        for j in range(_LANES):
            total += acc[j]
        for r in range(k, k_total):
            total += e[i, r]
        cut = threshold * total
        c = 0
        for k in range(k_total):  # c <= k: the front is overwritten only after it was read
            v = e[i, k]
            e[i, c] = v
            kept[i, c] = k
            c += (v >= cut) & (v > 0.0)
        counts[i] = c
        totals[i] = total


@njit(cache=True, nogil=True)
def _gather_survivors(e, kept, counts, totals, indptr, component, gamma):  # pragma: no cover - compiled
    for i in range(len(counts)):
        j = indptr[i]
        for c in range(counts[i]):
            component[j + c] = kept[i, c]
            gamma[j + c] = e[i, c] / totals[i]


def _posterior_block(joint: LogJoint, values: np.ndarray, threshold: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Counts, components, posteriors and ``log p(l)`` of one block of rows (see :func:`sparse_posteriors`)."""
    logp = joint.log_joint(values)
    n = len(logp)
    tops = np.empty(n, dtype=np.float32)
    _row_max(logp, tops)
    logp -= tops[:, None]
    np.exp(logp, out=logp)  # numpy's SIMD float32 exp: numba calls the scalar one
    counts = np.empty(n, dtype=np.int64)
    totals = np.empty(n)
    kept = np.empty(logp.shape, dtype=np.int32)
    _cut_survivors(logp, threshold, counts, totals, kept)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    component = np.empty(indptr[-1], dtype=np.int32)
    gamma = np.empty(indptr[-1])
    _gather_survivors(logp, kept, counts, totals, indptr, component, gamma)
    return counts, component, gamma, tops + np.log(totals)


def sparse_posteriors(joint: LogJoint, values: np.ndarray, threshold: float = VL_FISHER_MIN_POSTERIOR,
                      chunk_rows: int = 16384) -> SparsePosteriors:
    """The posteriors ``gamma_k(l) >= threshold`` of every row of ``values``.

    Parameters
    ----------
    joint : LogJoint
        The GMM's log-joint evaluator.
    values : (N, D) float32
        Descriptors in the GMM's space.
    threshold : float
        VLFeat's cut (1e-6).
    chunk_rows : int
        At most this many rows per worker task; a task works through its rows in blocks of
        :data:`SOFTMAX_BLOCK_ROWS`, holding one block's ``(rows, K)`` float32 log-joints and int32
        survivor indices at a time.
    """
    k_total = int(joint.W.shape[1])

    def chunk(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        blocks = [_posterior_block(joint, values[b:min(b + SOFTMAX_BLOCK_ROWS, stop)], threshold)
                  for b in range(start, stop, SOFTMAX_BLOCK_ROWS)]
        counts = np.concatenate([b[0] for b in blocks])
        indptr = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return (indptr, np.concatenate([b[1] for b in blocks]), np.concatenate([b[2] for b in blocks]),
                np.concatenate([b[3] for b in blocks]))

    # each thread runs whole chunks: its GEMMs and the GIL-free kernels
    parts = map_row_chunks(chunk, len(values), chunk_rows)
    if not parts:
        return SparsePosteriors(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0), k_total,
                                np.zeros(0))
    if len(parts) == 1:
        indptr, component, gamma, log_density = parts[0]
        return SparsePosteriors(indptr, component, gamma, k_total, log_density)
    sizes = np.array([p[0][-1] for p in parts])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    indptr = np.concatenate([[0]] + [p[0][1:] + off for p, off in zip(parts, offsets)]).astype(np.int64)
    return SparsePosteriors(indptr, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]),
                            k_total, np.concatenate([p[3] for p in parts]))


def component_moments(values: np.ndarray, posteriors: SparsePosteriors, means: np.ndarray,
                      inv_sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior-weighted moments of all rows about given centres, summed over the rows.

    With ``t_kr(l) = (l_r - means_kr) * inv_sigma_kr``: ``S0_k = sum gamma``, ``S1_kr = sum gamma t``,
    ``S2_kr = sum gamma t^2``, over the kept pairs of :func:`sparse_posteriors` (the same kernel and
    the same fixed row blocks as the Fisher vector, so the sums do not depend on the thread count).

    Parameters
    ----------
    values : (N, D) float32
    posteriors : SparsePosteriors of those rows
    means, inv_sigma : (K, D) float64
        Centres and inverse scales (the current means and ``1 / sigma`` in EM).

    Returns
    -------
    S0 (K,), S1 (K, D), S2 (K, D) float64
    """
    k, d = means.shape
    blocks = MOMENT_BLOCKS if len(values) >= MOMENT_BLOCK_MIN_ROWS else 1
    S0, S1, S2 = np.zeros((blocks, 1, k)), np.zeros((blocks, 1, k, d)), np.zeros((blocks, 1, k, d))
    accumulate_moments(values, posteriors.indptr, posteriors.component, posteriors.gamma,
                       np.zeros(len(values), dtype=np.int64), means, inv_sigma, S0, S1, S2)
    return S0.sum(axis=0)[0], S1.sum(axis=0)[0], S2.sum(axis=0)[0]


#: row blocks accumulated in parallel, each into its own moments; fixed (not the thread count) so
#: that the summation order, and hence every bit of the vector, is the same on every machine
MOMENT_BLOCKS = 4
MOMENT_BLOCK_MIN_ROWS = 4096  # below this one accumulator: still a function of the input alone


@njit(cache=True, parallel=True)
def accumulate_moments(X, indptr, component, gamma, atom_of, means, inv_sigma, s0, s1, s2):  # pragma: no cover
    """``gamma``, ``gamma t`` and ``gamma t^2`` (``t = (l - mu_k) / sigma_k``) of every kept pair added
    into its descriptor's atom: ``s0 (B, A, K)``, ``s1 (B, A, K, D)``, ``s2 (B, A, K, D)``, one
    accumulator per contiguous block ``b`` of rows (summed by the caller).

    X (n, D) float32; (indptr, component, gamma) the CSR posteriors; means and inv_sigma (K, D) float64.
    """
    n, d = X.shape
    n_blocks = s0.shape[0]
    for b in prange(n_blocks):
        for i in range(b * n // n_blocks, (b + 1) * n // n_blocks):
            a = atom_of[i]
            for j in range(indptr[i], indptr[i + 1]):
                k = component[j]
                g = gamma[j]
                s0[b, a, k] += g
                for r in range(d):
                    t = (X[i, r] - means[k, r]) * inv_sigma[k, r]
                    s1[b, a, k, r] += g * t
                    s2[b, a, k, r] += g * (t * t)
