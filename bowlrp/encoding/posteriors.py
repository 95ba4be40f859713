"""GMM posteriors as the Fisher vector sees them, kept sparse so that LRP can reuse the forward pass.

``vl_fisher`` drops every (descriptor, component) pair whose posterior ``gamma_k(l)`` is below
1e-6 (without renormalising the row); for a trained GMM only a few components per descriptor
survive. :func:`sparse_posteriors` computes exactly those pairs once, in CSR form, and both the
encoder (moments) and its relevance step (:mod:`bowlrp.lrp.fisher`) read them, as a DNN's
backward pass reads the activations of its forward pass.

Computation per chunk of rows: the log-joints by one float32 GEMM
(:class:`~bowlrp.encoding.vocabulary.LogJoint`), then a compiled kernel that takes the row softmax
with the cut and moves the survivors to the front of each row, and a second one that copies just
those into the CSR arrays. Chunks run on as many threads as numba may use (one in a joblib worker).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from ..parallel import map_row_chunks
from .vocabulary import LogJoint

# vl_fisher ignores a descriptor/component pair whose posterior is below this.
VL_FISHER_MIN_POSTERIOR = 1e-6

# exp(-40) ~ 4e-18: log-joint entries further than this below their row's maximum add less
# than K * 4e-18 to a posterior's denominator, far below float32 resolution, so their exp is skipped.
_NEGLIGIBLE_LOG_RATIO = -40.0


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
    """

    indptr: np.ndarray
    component: np.ndarray
    gamma: np.ndarray
    n_components: int

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def to_dense(self) -> np.ndarray:
        """``(N, K)`` float64 with zeros for the dropped pairs."""
        out = np.zeros((len(self), self.n_components))
        rows = np.repeat(np.arange(len(self)), np.diff(self.indptr))
        out[rows, self.component] = self.gamma
        return out


@njit(cache=True, nogil=True)
def _softmax_with_cut(logp, threshold, counts, totals, kept):  # pragma: no cover - compiled
    """Row-wise, in place: the softmax of ``logp`` with the cut, survivors moved to the row's front.

    Per row ``i``: ``totals[i]`` the softmax denominator ``sum_k exp(logp - max)`` (terms below
    ``exp(-40)`` relative skipped), ``counts[i]`` how many posteriors reach ``threshold``; the
    first ``counts[i]`` entries of ``logp[i]`` become their unnormalised ``exp(logp - max)`` and
    ``kept[i, :counts[i]]`` their components (increasing), so gathering them costs O(kept), not O(K).
    """
    n, k_total = logp.shape
    for i in range(n):
        row = logp[i]
        top = row[0]
        for k in range(1, k_total):
            top = max(top, row[k])
        total = 0.0
        for k in range(k_total):
            z = row[k] - top
            if z > _NEGLIGIBLE_LOG_RATIO:
                e = np.exp(z)
                row[k] = e
                total += e
            else:
                row[k] = 0.0
        cut = threshold * total
        c = 0
        for k in range(k_total):  # c <= k: the front is overwritten only after it was read
            e = row[k]
            if e > 0.0 and e >= cut:
                row[c] = e
                kept[i, c] = k
                c += 1
        counts[i] = c
        totals[i] = total


@njit(cache=True, nogil=True)
def _gather_survivors(logp, kept, counts, totals, indptr, component, gamma):  # pragma: no cover - compiled
    for i in range(len(counts)):
        j = indptr[i]
        for c in range(counts[i]):
            component[j + c] = kept[i, c]
            gamma[j + c] = logp[i, c] / totals[i]


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
        At most this many rows per GEMM; each worker thread holds one chunk's ``(rows, K)`` float32
        log-joints and int32 survivor indices at a time.
    """
    k_total = int(joint.W.shape[1])

    def chunk(start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logp = joint.log_joint(values[start:stop])
        counts = np.empty(len(logp), dtype=np.int64)
        totals = np.empty(len(logp))
        kept = np.empty(logp.shape, dtype=np.int32)
        _softmax_with_cut(logp, threshold, counts, totals, kept)
        indptr = np.zeros(len(logp) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        component = np.empty(indptr[-1], dtype=np.int32)
        gamma = np.empty(indptr[-1])
        _gather_survivors(logp, kept, counts, totals, indptr, component, gamma)
        return indptr, component, gamma

    # each thread runs whole chunks: its GEMM and the GIL-free softmax
    parts = map_row_chunks(chunk, len(values), chunk_rows)
    if not parts:
        return SparsePosteriors(np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int32), np.zeros(0), k_total)
    if len(parts) == 1:
        return SparsePosteriors(*parts[0], k_total)
    sizes = np.array([p[0][-1] for p in parts])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    indptr = np.concatenate([[0]] + [p[0][1:] + off for p, off in zip(parts, offsets)]).astype(np.int64)
    return SparsePosteriors(indptr, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts]),
                            k_total)
