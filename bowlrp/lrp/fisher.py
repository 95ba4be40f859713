"""LRP for the Fisher-vector encoder: R_d per FV dimension and cell → R_l per descriptor (Section 4.3).

The backward step of :mod:`bowlrp.encoding.fisher`. The FV normalisation is part of the kernel map
(Eq. 4.8), so R_d, computed for the normalised vector, is shared by the contributions ``z_ld`` of
Eq. 4.10 to the *unnormalised, summed* vector ``x_d = sum_l z_ld`` (Eq. 4.9; summed, not averaged,
so that eps = 1 or 100 means what it means in Chapter 4). With ``gamma = gamma_k(l)`` (VLFeat's
posteriors, cut at 1e-6) and ``t_r = (l_r - mu_kr) / sigma_kr``::

    pi-dimension k:        z = (gamma - pi_k) / sqrt(pi_k)                  (only with the weight gradient)
    mu-dimension (k, r):   z = gamma t_r / sqrt(pi_k)
    sigma-dimension (k, r): z = gamma (t_r^2 - 1) / sqrt(2 pi_k)

A descriptor contributes to the cell it lies in at every pyramid level. With the per-dimension
multipliers of the rule (:mod:`.rules`)::

    R_l = sum_levels sum_k sum_r  z_{l,(k,r)} · c[cell, k, r]   (c_pos or c_neg by the sign of z)

The descriptor × dimension matrix is never built: two compiled passes visit only the few
(descriptor, component) pairs that survive the posterior cut, the first summing the positive and
negative contributions per dimension (the rule's denominators), the second forming R_l — each of
the cost of encoding. Pairs below the cut have gamma = 0 and contribute only ``-sqrt(pi_k)`` to the
pi-dimensions, which is added in closed form.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from ..encoding.fisher import VL_FISHER_MIN_POSTERIOR, FisherEncoder, near_posteriors
from ..encoding.vocabulary import VL_GMM_MIN_PRIOR
from .rules import Rule, multipliers

_SQRT2 = math.sqrt(2.0)


@njit(cache=True)
def _signed_sums(X, logp, cells, means, inv_sigma, inv_sqrt_w, threshold,
                 mu_pos, mu_neg, sig_pos, sig_neg, pi_pos, pi_neg, near_count):  # pragma: no cover
    """Add the positive and negative parts of every z_ld to per-(cell, k[, r]) sums; count near pairs."""
    n, d = X.shape
    k_total = logp.shape[1]
    near = np.empty(k_total, dtype=np.int64)
    gamma = np.empty(k_total)
    for i in range(n):
        n_near = near_posteriors(logp[i], threshold, near, gamma)
        for j in range(n_near):
            k = near[j]
            g = gamma[j]
            a = g * inv_sqrt_w[k]
            z_pi = (g - 1.0 / (inv_sqrt_w[k] * inv_sqrt_w[k])) * inv_sqrt_w[k] if inv_sqrt_w[k] > 0 else 0.0
            for lev in range(cells.shape[1]):
                c = cells[i, lev]
                near_count[c, k] += 1
                if z_pi > 0:
                    pi_pos[c, k] += z_pi
                else:
                    pi_neg[c, k] += z_pi
                for r in range(d):
                    t = (X[i, r] - means[k, r]) * inv_sigma[k, r]
                    z_mu = a * t
                    z_sig = a * (t * t - 1.0) / _SQRT2
                    if z_mu > 0:
                        mu_pos[c, k, r] += z_mu
                    else:
                        mu_neg[c, k, r] += z_mu
                    if z_sig > 0:
                        sig_pos[c, k, r] += z_sig
                    else:
                        sig_neg[c, k, r] += z_sig


@njit(cache=True)
def _descriptor_relevance(X, logp, cells, means, inv_sigma, inv_sqrt_w, threshold,
                          mu_cp, mu_cn, sig_cp, sig_cn, pi_cp, pi_cn, out):  # pragma: no cover
    """Sum over levels, near components and dimensions of z · multiplier, into ``out``.

    ``out`` is (n, 1) for one value per descriptor or (n, D) to keep the descriptor dimension r
    of each mu/sigma term apart (Eq. D.3); pi terms, which belong to no single dimension, are
    then shared evenly by the D columns.
    """
    n, d = X.shape
    per_dim = out.shape[1] > 1
    k_total = logp.shape[1]
    near = np.empty(k_total, dtype=np.int64)
    gamma = np.empty(k_total)
    for i in range(n):
        n_near = near_posteriors(logp[i], threshold, near, gamma)
        acc = 0.0
        for j in range(n_near):
            k = near[j]
            g = gamma[j]
            a = g * inv_sqrt_w[k]
            z_pi = (g - 1.0 / (inv_sqrt_w[k] * inv_sqrt_w[k])) * inv_sqrt_w[k] if inv_sqrt_w[k] > 0 else 0.0
            far_pi = -1.0 / inv_sqrt_w[k] if inv_sqrt_w[k] > 0 else 0.0  # z of this pi-dimension when gamma = 0
            for lev in range(cells.shape[1]):
                c = cells[i, lev]
                # the pi-dimension of k: replace the far-pair term (added for all k below) by the real one
                acc += z_pi * (pi_cp[c, k] if z_pi > 0 else pi_cn[c, k]) - far_pi * pi_cn[c, k]
                for r in range(d):
                    t = (X[i, r] - means[k, r]) * inv_sigma[k, r]
                    z_mu = a * t
                    z_sig = a * (t * t - 1.0) / _SQRT2
                    term = z_mu * (mu_cp[c, k, r] if z_mu > 0 else mu_cn[c, k, r])
                    term += z_sig * (sig_cp[c, k, r] if z_sig > 0 else sig_cn[c, k, r])
                    if per_dim:
                        out[i, r] += term
                    else:
                        acc += term
        if per_dim:
            for r in range(d):
                out[i, r] += acc / d
        else:
            out[i, 0] += acc


def _chunks(encoder: FisherEncoder, values: np.ndarray, cells: np.ndarray):
    joint = encoder.gmm.log_joint()
    step = max(int(encoder.chunk_rows), 1)
    for start in range(0, len(values), step):
        chunk = values[start:start + step]
        yield start, chunk, joint.log_joint(chunk), np.ascontiguousarray(cells[start:start + step])


def fisher_relevance(encoder: FisherEncoder, values: np.ndarray, positions: np.ndarray | None,
                     relevance: np.ndarray, rule: Rule, per_dimension: bool = False) -> tuple[np.ndarray, float]:
    """Relevance of every descriptor (or every descriptor dimension) for the FV block's ``R_d``.

    Parameters
    ----------
    encoder : FisherEncoder
    values : (N, D) float
        Descriptors in the GMM's space (after PCA).
    positions : (N, 2) float or None
        Normalised positions (pyramid cells).
    relevance : (encoder.dim,) float
        R_d for this encoder's part of the feature vector, in its layout (cells, then
        ``[pi | mu | sigma]`` per cell).
    rule : Rule
    per_dimension : bool
        Keep the descriptor dimensions apart (Eq. D.3): ``R_l`` becomes (N, D); relevance that belongs
        to no single dimension (pi terms, the uniform fallback) is shared evenly by the D dimensions.

    Returns
    -------
    R_l : (N,) or (N, D) float64
    absorbed : float
        Relevance of reached dimensions not handed on by the rule (eps share, alpha-beta imbalance).
    """
    values = encoder._values(values)
    n = len(values)
    cells = encoder.cell_index(positions, n)
    n_cells, k, d = encoder.n_cells, encoder.n_components, encoder.n_features
    R = np.asarray(relevance, dtype=np.float64).reshape(n_cells, encoder.dim_per_cell)
    blocks = encoder.block_slices()
    R_mu = R[:, blocks["mu"]].reshape(n_cells, k, d)
    R_sig = R[:, blocks["sigma"]].reshape(n_cells, k, d)
    R_pi = R[:, blocks["pi"]] if encoder.weight_gradient else np.zeros((n_cells, k))

    weights = encoder.gmm.weights_.astype(np.float64)
    present = weights >= VL_GMM_MIN_PRIOR
    inv_sqrt_w = np.where(present, 1.0 / np.sqrt(np.where(present, weights, 1.0)), 0.0)
    means = encoder.gmm.means_.astype(np.float64)
    inv_sigma = 1.0 / np.sqrt(encoder.gmm.variances_.astype(np.float64))
    threshold = VL_FISHER_MIN_POSTERIOR

    sums = [np.zeros((n_cells, k, d)) for _ in range(4)] + [np.zeros((n_cells, k)) for _ in range(2)]
    near_count = np.zeros((n_cells, k), dtype=np.int64)
    for _, chunk, logp, chunk_cells in _chunks(encoder, values, cells):
        _signed_sums(chunk, logp, chunk_cells, means, inv_sigma, inv_sqrt_w, threshold, *sums, near_count)
    mu_pos, mu_neg, sig_pos, sig_neg, pi_pos, pi_neg = sums
    counts = np.bincount(cells.ravel(), minlength=n_cells).astype(np.float64)
    if encoder.weight_gradient:
        # pairs below the cut: gamma = 0, z = -sqrt(pi_k) (negative), one per descriptor of the cell
        far = counts[:, None] - near_count
        pi_neg = pi_neg - far * np.where(present, np.sqrt(weights), 0.0)[None, :]
    else:
        pi_pos = pi_neg = np.zeros((n_cells, k))

    m_mu = multipliers(rule, R_mu, mu_pos, mu_neg)
    m_sig = multipliers(rule, R_sig, sig_pos, sig_neg)
    m_pi = multipliers(rule, R_pi, pi_pos, pi_neg)
    out = np.zeros((n, d if per_dimension else 1))
    # without the weight gradient R_pi is zero, so are its multipliers: the pi terms vanish
    for start, chunk, logp, chunk_cells in _chunks(encoder, values, cells):
        _descriptor_relevance(chunk, logp, chunk_cells, means, inv_sigma, inv_sqrt_w, threshold,
                              m_mu.pos, m_mu.neg, m_sig.pos, m_sig.neg, m_pi.pos, m_pi.neg,
                              out[start:start + len(chunk)])
    shared = np.zeros(n)  # relevance of no single descriptor dimension
    if encoder.weight_gradient:
        # every descriptor's far-pair term for all k, per level: sum_k -sqrt(pi_k) c_neg[cell, k]
        far_term = -(np.where(present, np.sqrt(weights), 0.0)[None, :] * m_pi.neg).sum(axis=1)  # (n_cells,)
        shared += far_term[cells].sum(axis=1)

    # Eq. 2.79: unreached dimensions go evenly to the descriptors of their cell; empty cells to all
    unreached = np.array([R_mu[c][~m_mu.reached[c]].sum() + R_sig[c][~m_sig.reached[c]].sum()
                          + R_pi[c][~m_pi.reached[c]].sum() for c in range(n_cells)])
    empty = counts == 0
    per_descriptor = np.divide(unreached, counts, out=np.zeros(n_cells), where=~empty)
    shared += per_descriptor[cells].sum(axis=1)
    if n:
        shared += unreached[empty].sum() / n
    out += shared[:, None] / out.shape[1]
    absorbed = m_mu.absorbed + m_sig.absorbed + m_pi.absorbed
    return (out if per_dimension else out[:, 0]), absorbed
