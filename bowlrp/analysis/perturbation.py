"""Perturbation of Fisher-vector models by replacing local descriptors (Appendix C.2).

Replacing pixels drags many overlapping descriptors along and biases some classes (grey squares
look like cars to SIFT); instead the descriptors themselves are swapped for samples of the model's
own GMM, which stay near the data manifold. A swapped descriptor keeps its position (pyramid cell);
only its vector changes. The score after replacement is f(Phi(x')) with x' re-encoded.
"""
from __future__ import annotations

import numpy as np

from ..encoding import FisherEncoder
from ..errors import BowlrpError
from ..features.descriptors import DescriptorSet


def sample_gmm(gmm, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from the diagonal GMM (component by its weight, then Gaussian), (n, D) float32."""
    weights = gmm.weights_.astype(np.float64)
    component = rng.choice(len(weights), size=n, p=weights / weights.sum())
    noise = rng.standard_normal((n, gmm.means_.shape[1]))
    return (gmm.means_[component] + noise * np.sqrt(gmm.variances_[component])).astype(np.float32)


def score_with_replacement(model, descriptors: DescriptorSet, class_name: str, replaced: np.ndarray,
                           rng: np.random.Generator) -> float:
    """f(x) of ``class_name`` after replacing the descriptors ``replaced`` (indices) by GMM samples."""
    if not all(isinstance(b.encoder, FisherEncoder) for b in model.features.blocks):
        raise BowlrpError("descriptor replacement needs a Fisher-vector model (the GMM generates the substitutes)")
    machine = model.classifier.estimators_[model.class_names.index(class_name)]
    swap = np.zeros(len(descriptors), dtype=bool)
    swap[np.asarray(replaced, dtype=np.int64)] = True
    parts = []
    for block in model.features.blocks:
        index, values, positions = block.prepare(descriptors)
        values = values.copy()
        mine = swap[index]
        values[mine] = sample_gmm(block.encoder.gmm, int(mine.sum()), rng)
        parts.append(block.encoder.encode(values, positions))
    x = np.concatenate(parts).astype(np.float32)
    return float(machine.decision_function(x[None, :])[0])


def replacement_drop(model, descriptors: DescriptorSet, class_name: str, relevance: np.ndarray,
                     fraction: float = 0.1, repeats: int = 5, seed: int = 0) -> dict:
    """Mean score drop when the most relevant ``fraction`` of descriptors is replaced, against a random
    ``fraction`` (the same number), each averaged over ``repeats`` GMM draws.

    Returns ``{"score", "most_relevant", "random", "n_replaced"}`` with the mean scores after replacement.
    """
    n = len(descriptors)
    count = max(1, int(round(fraction * n)))
    order = np.argsort(-np.asarray(relevance), kind="stable")
    rng = np.random.default_rng(seed)
    top, rand = [], []
    for _ in range(repeats):
        top.append(score_with_replacement(model, descriptors, class_name, order[:count], rng))
        rand.append(score_with_replacement(model, descriptors, class_name, rng.choice(n, size=count, replace=False), rng))
    machine = model.classifier.estimators_[model.class_names.index(class_name)]
    score = float(machine.decision_function(model.features.encode_descriptors(descriptors)[None, :])[0])
    return {"score": score, "most_relevant": float(np.mean(top)), "random": float(np.mean(rand)), "n_replaced": count}
