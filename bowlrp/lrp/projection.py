"""LRP for the PCA projection of the descriptors: R per reduced dimension → R per SIFT dimension.

The backward step of :class:`bowlrp.encoding.PcaProjection` (Appendix D.1.1: PCA is a linear
layer, decomposed with Eq. 2.31). With the centred descriptor ``c = l - mean`` and the components
``P`` (D, 128), reduced dimension r of descriptor l is ``sum_j z_ljr`` with ``z_ljr = P_rj c_lj``;
the rule's multipliers (:mod:`.rules`) share ``R_lr`` among the j. Splitting products by sign
(``P_rj c_lj > 0`` iff both factors share a sign) turns every rule into four GEMMs,
``R_lj = c+_lj (pos @ P+ + neg @ P-)_j + c-_lj (pos @ P- + neg @ P+)_j``, so the (N, D, 128)
tensor of contributions is never formed.
"""
from __future__ import annotations

import numpy as np

from ..encoding import PcaProjection
from .rules import EncoderRule, multipliers


def projection_relevance(projection: PcaProjection, raw: np.ndarray, relevance: np.ndarray,
                         rule: EncoderRule) -> tuple[np.ndarray, float]:
    """Relevance of every raw descriptor dimension.

    Parameters
    ----------
    projection : PcaProjection
    raw : (N, 128) float
        Descriptors before the projection.
    relevance : (N, D) float
        Relevance of the reduced dimensions.
    rule : EncoderRule

    Returns
    -------
    (N, 128) float64 and the absorbed relevance. A reduced dimension with no contribution at all
    (``c = 0``) hands its relevance evenly to the 128 dimensions.
    """
    c = np.asarray(raw, dtype=np.float64) - projection.mean_.astype(np.float64)
    P = projection.components_.astype(np.float64)
    R = np.asarray(relevance, dtype=np.float64)
    c_pos, c_neg = np.clip(c, 0, None), np.clip(c, None, 0)
    P_pos, P_neg = np.clip(P, 0, None), np.clip(P, None, 0)
    z_pos = c_pos @ P_pos.T + c_neg @ P_neg.T
    z_neg = c_pos @ P_neg.T + c_neg @ P_pos.T
    m = multipliers(rule, R, z_pos, z_neg)
    out = c_pos * (m.pos @ P_pos + m.neg @ P_neg) + c_neg * (m.pos @ P_neg + m.neg @ P_pos)
    out += (np.where(m.reached, 0.0, R).sum(axis=1) / c.shape[1])[:, None]
    return out, m.absorbed
