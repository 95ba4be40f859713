"""``root_point``: the root-point search of the Taylor decomposition (Section 2.4.2) for one sample
of an RBF SVM with ~2,000 support vectors in 2,048 dimensions, the 50 nearest opposite-class
support vectors as candidates; no anchor. The exp-chi2 kernel, which has no closed form along a
segment, is timed as well (``chi2_s``)."""
from __future__ import annotations

import numpy as np

from bowlrp.lrp.taylor import find_root_point
from bowlrp.svm.classifier import BinarySvm

from .common import median_seconds, record


def _problem(n: int = 2200, d: int = 2048, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping classes of L1-normalised non-negative vectors (BoW-like), so most points become
    support vectors."""
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(size=(n, d))).astype(np.float32)
    y = np.where(rng.random(n) < 0.5, 1, -1)
    X[y > 0, :64] += 0.3
    X /= X.sum(axis=1, keepdims=True)
    return X, y


def _search(machine: BinarySvm, x: np.ndarray, repeats: int) -> tuple[float, dict]:
    """Median search time and what the search found."""
    reference = machine.support_vectors_float64()
    labels = np.sign(machine.dual_coef_)
    seconds = median_seconds(lambda: find_root_point(machine, x, reference, reference_labels=labels), repeats)
    root = find_root_point(machine, x, reference, reference_labels=labels)
    return seconds, {"support_vectors": int(len(reference)), "abs_f_root": abs(root.score), "found": bool(root.found)}


def run(repeats: int = 5) -> list[dict]:
    X, y = _problem()
    rbf_s, rbf = _search(BinarySvm().fit(X, y, kernel="rbf", C=1.0), X[-1], repeats)
    chi2_s, chi2 = _search(BinarySvm().fit(X, y, kernel="chi2", C=1.0), X[-1], 1)  # seconds per search
    return [record("root_point", rbf_s, None, None, kernel="rbf", dims=int(X.shape[1]), **rbf,
                   chi2_s=chi2_s, chi2_support_vectors=chi2["support_vectors"])]
