"""LRP for the BoW encoders (rank-mapped soft BoW, hard VQ): R_d per word and cell → R_l per descriptor.

The backward step of :mod:`bowlrp.encoding.bow` (layer (3) → (2) of Fig. 2.11, Eqs. 2.77-2.83).
The l1 normalisation of each cell is part of the kernel map (as the FV normalisation is, Eq. 4.8):
R_d arrives for the normalised histogram and is shared by the descriptors' contributions to the
pooled, unnormalised value of that word in that cell:

* sum pooling: ``z_ld = m_d(l) / |L_c|`` (Eq. 2.77);
* p-means pooling: ``z_ld = m_d(l)^p / |L_c|`` (Eq. 2.82);
* max pooling: the descriptors attaining the maximum share ``R_d`` (the limit of Eq. 2.83;
  ties share equally).

Relevance of a cell without descriptors (possible only when bias or Taylor terms put relevance on
its zero dimensions) goes evenly to all descriptors of the image.
"""
from __future__ import annotations

import numpy as np

from ..encoding.bow import HardVqEncoder, RankBowEncoder
from .rules import EncoderRule, multipliers


def _contributions(mapped: np.ndarray, pooling) -> np.ndarray:
    """``z_ld`` of one cell's descriptors, (n_c, K) float64, from their mappings ``m_d(l)``."""
    m = np.asarray(mapped, dtype=np.float64)
    n = max(len(m), 1)
    if pooling == "sum":
        return m / n
    if pooling == "max":
        top = m.max(axis=0, keepdims=True)
        winners = (m == top) & (top > 0)
        return winners / np.maximum(winners.sum(axis=0, keepdims=True), 1)
    return m ** float(pooling) / n


def bow_relevance(encoder: RankBowEncoder | HardVqEncoder, values: np.ndarray, positions: np.ndarray | None,
                  relevance: np.ndarray, rule: EncoderRule) -> tuple[np.ndarray, float]:
    """Relevance of every descriptor.

    Parameters
    ----------
    encoder : RankBowEncoder or HardVqEncoder
    values : (N, D) float
        The descriptors as the encoder saw them (after any projection).
    positions : (N, 2) float or None
        Normalised positions for the spatial pyramid.
    relevance : (n_cells * K,) float
        R_d of this encoder's block of the feature vector.
    rule : EncoderRule

    Returns
    -------
    R_l : (N,) float64
    absorbed : float
        Relevance of reached dimensions that the rule did not hand on (see :mod:`.rules`).
    """
    mapped = encoder.mapping(values)
    n, k = mapped.shape
    R = np.asarray(relevance, dtype=np.float64).reshape(encoder.n_cells, k)
    out = np.zeros(n)
    absorbed = 0.0
    orphan = 0.0
    for c, mask in enumerate(encoder.cell_masks(positions, n)):
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            orphan += float(R[c].sum())
            continue
        z = _contributions(mapped[rows], encoder.pooling)
        mult = multipliers(rule, R[c], np.clip(z, 0, None).sum(axis=0), np.clip(z, None, 0).sum(axis=0))
        out[rows] += np.where(z > 0, z * mult.pos, z * mult.neg).sum(axis=1)
        out[rows] += R[c][~mult.reached].sum() / rows.size  # Eq. 2.79
        absorbed += mult.absorbed
    if n:
        out += orphan / n
    return out, absorbed
