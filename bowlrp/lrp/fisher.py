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
(descriptor, component) pairs that survive the posterior cut (the forward pass's
:class:`~bowlrp.encoding.posteriors.SparsePosteriors`, so no GMM is evaluated again), the first
summing the positive and negative contributions per dimension (the rule's denominators), the second
forming R_l. A descriptor lies in one cell per level, and its z does not depend on the level, so
both passes work per pyramid atom (:func:`~bowlrp.encoding.pyramid.pyramid_atoms`): pass 1 sums per
atom and the cells add their atoms; pass 2 reads per-atom multipliers, the sums over the atom's
cells. Pairs below the cut have gamma = 0 and contribute only ``-sqrt(pi_k)`` to the
pi-dimensions, which is added in closed form.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ..encoding.fisher import MOMENT_BLOCKS, FisherEncoder, FisherForward
from ..encoding.pyramid import atoms_to_cells, cells_to_atoms
from ..encoding.vocabulary import VL_GMM_MIN_PRIOR
from .rules import EncoderRule, multipliers

_SQRT2 = math.sqrt(2.0)
# descriptor blocks handed to the threads of the per-descriptor pass (more than cores, for balance)
_ROW_BLOCKS = 16


@njit(cache=True, fastmath=True, parallel=True)
def _signed_sums(X, indptr, component, gamma, atom_of, means, inv_sigma, inv_sqrt_w,
                 mu_pos, mu_neg, sig_pos, sig_neg, pi_pos, pi_neg, near_count):  # pragma: no cover
    """Add the positive and negative parts of every z_ld to per-(block, atom, k[, r]) sums; count kept
    pairs. The leading axis holds one accumulator per contiguous block of descriptors
    (:data:`~bowlrp.encoding.fisher.MOMENT_BLOCKS`, summed by the caller)."""
    n, d = X.shape
    n_blocks = mu_pos.shape[0]
    for b in prange(n_blocks):
        for i in range(b * n // n_blocks, (b + 1) * n // n_blocks):
            c = atom_of[i]
            for j in range(indptr[i], indptr[i + 1]):
                k = component[j]
                g = gamma[j]
                a = g * inv_sqrt_w[k]
                near_count[b, c, k] += 1
                if inv_sqrt_w[k] > 0:
                    z_pi = (g - 1.0 / (inv_sqrt_w[k] * inv_sqrt_w[k])) * inv_sqrt_w[k]
                    pi_pos[b, c, k] += max(z_pi, 0.0)
                    pi_neg[b, c, k] += min(z_pi, 0.0)
                for r in range(d):  # branch-free, so the loop vectorises
                    t = (X[i, r] - means[k, r]) * inv_sigma[k, r]
                    z_mu = a * t
                    z_sig = a * (t * t - 1.0) / _SQRT2
                    mu_pos[b, c, k, r] += max(z_mu, 0.0)
                    mu_neg[b, c, k, r] += min(z_mu, 0.0)
                    sig_pos[b, c, k, r] += max(z_sig, 0.0)
                    sig_neg[b, c, k, r] += min(z_sig, 0.0)


@njit(cache=True, fastmath=True, parallel=True)
def _descriptor_relevance(X, indptr, component, gamma, atom_of, means, inv_sigma, inv_sqrt_w,
                          mu_cp, mu_cn, sig_cp, sig_cn, pi_cp, pi_cn, out):  # pragma: no cover
    """Sum over kept components and dimensions of z · multiplier, into ``out``.

    The multipliers are per atom: the sums of the multipliers of the cells (one per level) the
    atom lies in. ``out`` is (n, 1) for one value per descriptor or (n, D) to keep the descriptor
    dimension r of each mu/sigma term apart (Eq. D.3); pi terms, which belong to no single
    dimension, are then shared evenly by the D columns. With ``a = gamma / sqrt(pi_k) >= 0`` the
    sign of ``z_mu`` is that of ``t`` and the sign of ``z_sigma`` that of ``t^2 - 1``.
    """
    n, d = X.shape
    per_dim = out.shape[1] > 1
    n_blocks = _ROW_BLOCKS
    for blk in prange(n_blocks):  # descriptors are independent: each block writes its own rows
        row = np.zeros(d)
        for i in range(blk * n // n_blocks, (blk + 1) * n // n_blocks):
            c = atom_of[i]
            acc = 0.0
            row[:] = 0.0
            for j in range(indptr[i], indptr[i + 1]):
                k = component[j]
                g = gamma[j]
                a = g * inv_sqrt_w[k]
                if inv_sqrt_w[k] > 0:
                    z_pi = (g - 1.0 / (inv_sqrt_w[k] * inv_sqrt_w[k])) * inv_sqrt_w[k]
                    far_pi = -1.0 / inv_sqrt_w[k]  # z of this pi-dimension when gamma = 0
                    # the pi-dimension of k: replace the far-pair term (added for all k outside) by the real one
                    acc += z_pi * (pi_cp[c, k] if z_pi > 0 else pi_cn[c, k]) - far_pi * pi_cn[c, k]
                b = a / _SQRT2
                for r in range(d):
                    t = (X[i, r] - means[k, r]) * inv_sigma[k, r]
                    u = t * t - 1.0
                    cm = mu_cp[c, k, r] if t > 0 else mu_cn[c, k, r]
                    cs = sig_cp[c, k, r] if u > 0 else sig_cn[c, k, r]
                    row[r] += a * t * cm + b * u * cs
            if per_dim:
                for r in range(d):
                    out[i, r] += row[r] + acc / d
            else:
                out[i, 0] += row.sum() + acc


def fisher_relevance(encoder: FisherEncoder, values: np.ndarray, positions: np.ndarray | None,
                     relevance: np.ndarray, rule: EncoderRule, per_dimension: bool = False,
                     forward: FisherForward | None = None) -> tuple[np.ndarray, float]:
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
    rule : EncoderRule
    per_dimension : bool
        Keep the descriptor dimensions apart (Eq. D.3): ``R_l`` becomes (N, D); relevance that belongs
        to no single dimension (pi terms, the uniform fallback) is shared evenly by the D dimensions.
    forward : FisherForward, optional
        The encoder's :meth:`FisherEncoder.forward` of the same descriptors: its posteriors are
        reused, and with the epsilon rule its unnormalised vector supplies the denominators, so
        only one pass over the descriptors remains. Computed when omitted.

    Returns
    -------
    R_l : (N,) or (N, D) float64
    absorbed : float
        Relevance of reached dimensions not handed on by the rule (eps share, alpha-beta imbalance).
    """
    values = encoder._values(values)
    n = len(values)
    if forward is None:
        forward = encoder.forward(values, positions)
    elif len(forward.posteriors) != n:
        raise ValueError(f"a forward pass of {len(forward.posteriors)} descriptors given for {n}")
    posteriors = forward.posteriors
    cells = encoder.cell_index(positions, n)
    atom_of, member = encoder.atoms(cells)
    n_atoms = member.shape[1]
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
    csr = (posteriors.indptr, posteriors.component, posteriors.gamma, atom_of)

    counts = forward.counts
    if rule.name == "epsilon":
        # the denominators are the totals x_d = sum_l z_ld: the forward pass's unnormalised vector;
        # a (cell, k) is reached iff some descriptor has a kept posterior there
        x = forward.unnormalized
        sums = [np.maximum(x, 0.0), np.minimum(x, 0.0)]
        reached_k = forward.occupancy > 0
        mu_pos, mu_neg = (np.where(reached_k[:, :, None], z[:, blocks["mu"]].reshape(n_cells, k, d), 0.0) for z in sums)
        sig_pos, sig_neg = (np.where(reached_k[:, :, None], z[:, blocks["sigma"]].reshape(n_cells, k, d), 0.0)
                            for z in sums)
        if encoder.weight_gradient:  # every descriptor of a cell reaches every pi-dimension
            pi_pos, pi_neg = (z[:, blocks["pi"]] for z in sums)
        else:
            pi_pos = pi_neg = np.zeros((n_cells, k))
    else:
        # pass 1: positive and negative parts of x_d = sum_l z_ld, per dimension
        sums = ([np.zeros((MOMENT_BLOCKS, n_atoms, k, d)) for _ in range(4)]
                + [np.zeros((MOMENT_BLOCKS, n_atoms, k)) for _ in range(2)])
        near_count = np.zeros((MOMENT_BLOCKS, n_atoms, k), dtype=np.int64)
        _signed_sums(values, *csr, means, inv_sigma, inv_sqrt_w, *sums, near_count)
        mu_pos, mu_neg, sig_pos, sig_neg, pi_pos, pi_neg = (atoms_to_cells(member, x.sum(axis=0)) for x in sums)
        near_count = near_count.sum(axis=0)
        if encoder.weight_gradient:
            # pairs below the cut: gamma = 0, z = -sqrt(pi_k) (negative), one per descriptor of the cell
            far = counts[:, None] - atoms_to_cells(member, near_count.astype(np.float64))
            pi_neg = pi_neg - far * np.where(present, np.sqrt(weights), 0.0)[None, :]
        else:
            pi_pos = pi_neg = np.zeros((n_cells, k))

    m_mu = multipliers(rule, R_mu, mu_pos, mu_neg)
    m_sig = multipliers(rule, R_sig, sig_pos, sig_neg)
    m_pi = multipliers(rule, R_pi, pi_pos, pi_neg)
    # pass 2: R_l; without the weight gradient R_pi is zero, so are its multipliers: the pi terms vanish
    out = np.zeros((n, d if per_dimension else 1))
    per_atom = [cells_to_atoms(member, m) for m in (m_mu.pos, m_mu.neg, m_sig.pos, m_sig.neg, m_pi.pos, m_pi.neg)]
    _descriptor_relevance(values, *csr, means, inv_sigma, inv_sqrt_w, *per_atom, out)
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
