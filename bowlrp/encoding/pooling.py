"""Pooling of per-descriptor mappings into one BoW vector: the p-means of Eq. (2.65).

For mappings ``m_d(l)`` of the descriptors ``l`` of one bag ``L``::

    x_d = ( 1/|L| * sum_l m_d(l)^p )^(1/p)

``p = 1`` is sum pooling written as a mean (the bag size only rescales ``x``, and every BoW
encoder here l1-normalises afterwards), ``p -> inf`` is max pooling.
"""
from __future__ import annotations

import numpy as np


def pool(mappings: np.ndarray, how: str | float = "sum") -> np.ndarray:
    """Pool the mappings of one bag of descriptors over the descriptors.

    Parameters
    ----------
    mappings : (N, K) array, non-negative
        ``m_d(l)``: row ``l`` is the mapping of one descriptor onto the K BoW dimensions.
    how : "sum", "max" or float p >= 1
        ``"sum"`` is the mean over descriptors (Eq. 2.65 with p = 1), ``"max"`` the
        element-wise maximum (p -> inf), a float the general p-mean.

    Returns
    -------
    (K,) float32
        Zeros when ``N == 0`` (an empty bag or pyramid cell).
    """
    m = np.asarray(mappings)
    if m.ndim != 2:
        raise ValueError(f"mappings must be (N, K), got shape {m.shape}")
    n, k = m.shape
    if n == 0:
        return np.zeros(k, dtype=np.float32)
    if isinstance(how, str):
        if how == "sum":
            return m.mean(axis=0, dtype=np.float64).astype(np.float32)
        if how == "max":
            return m.max(axis=0).astype(np.float32)
        raise ValueError(f"unknown pooling {how!r}; use 'sum', 'max' or a float p")
    p = float(how)
    if not p >= 1.0:  # also rejects NaN
        raise ValueError(f"p-means pooling needs p >= 1, got {how!r}")
    m = m.astype(np.float64)
    if (m < 0).any():
        raise ValueError("p-means pooling is defined for non-negative mappings only")
    # Factor out the column maximum so that m**p neither overflows nor underflows for large p.
    top = m.max(axis=0)
    safe = np.where(top > 0, top, 1.0)
    mean_pow = np.mean((m / safe) ** p, axis=0)
    return (top * mean_pow ** (1.0 / p)).astype(np.float32)
