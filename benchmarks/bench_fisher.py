"""``fisher_encode``: our Fisher vector with the 8-cell pyramid (K=256, D=80) against
``vl_fisher`` (cyvlfeat) on the whole image, for the descriptors of one 375 x 500 image;
``fisher_lrp``: its relevance step against that encoding."""
from __future__ import annotations

import numpy as np

from bowlrp.encoding import FisherEncoder, GmmVocabulary, PcaProjection, SpatialPyramid
from bowlrp.features import DenseSift
from bowlrp.lrp.fisher import fisher_relevance
from bowlrp.lrp.rules import EncoderRule

from .common import median_seconds, paired_median_seconds, record, voc_size_image


def fisher_setup(k: int = 256, d: int = 80) -> tuple[FisherEncoder, np.ndarray, np.ndarray]:
    """Encoder (8-cell pyramid), PCA'd descriptors and their positions of one 375 x 500 image.

    A GMM shaped like a trained one (means on data points, per-dimension variances) without the
    slow EM fit; timing does not depend on how the parameters were found.
    """
    descriptors = DenseSift(backend="vlfeat").extract(voc_size_image())
    projection = PcaProjection(n_components=d).fit(descriptors.values)
    values = projection.transform(descriptors.values).astype(np.float32)
    rng = np.random.default_rng(0)
    means = values[rng.choice(len(values), size=k, replace=False)]
    variances = np.tile(values.var(axis=0), (k, 1)) * rng.uniform(0.2, 1.0, size=(k, d)).astype(np.float32)
    weights = rng.dirichlet(np.full(k, 5.0)).astype(np.float32)
    gmm = GmmVocabulary.from_parameters(means, variances.astype(np.float32), weights)
    return FisherEncoder(gmm, pyramid=SpatialPyramid()), values, descriptors.normalized_positions()


def run(repeats: int = 5, k: int = 256, d: int = 80) -> list[dict]:
    from cyvlfeat.fisher import fisher

    encoder, values, positions = fisher_setup(k, d)
    gmm = encoder.gmm
    ours_s, anchor_s = paired_median_seconds(
        lambda: encoder.encode(values, positions),
        lambda: fisher(values, gmm.means_, gmm.variances_, gmm.weights_, improved=True), repeats)
    # numerically the same computation: our whole-image FV equals vl_fisher's
    whole = FisherEncoder(gmm, pyramid=None, normalization="vlfeat").encode(values)
    reference = fisher(values, gmm.means_, gmm.variances_, gmm.weights_, improved=True).ravel()
    max_abs_diff = float(np.abs(whole - reference).max())
    return [record("fisher_encode", ours_s, "cyvlfeat.fisher.fisher (whole image, no pyramid)", anchor_s,
                   n_descriptors=len(values), k=k, d=d, pyramid_cells=8, max_abs_diff_vs_vl_fisher=max_abs_diff)]


def run_lrp(repeats: int = 5, k: int = 256, d: int = 80) -> list[dict]:
    """``fisher_lrp``: FV relevance R_d (all 8 cells) to every descriptor's R_l, given the forward
    pass's kept posteriors (as LRP runs: the backward step reads what the forward step computed),
    against our own ``fisher_encode`` of the same descriptors. Also reported: the epsilon rule with
    the posteriors recomputed, and alpha-beta."""
    encoder, values, positions = fisher_setup(k, d)
    kept = encoder.forward(values, positions)
    fv = encoder.vector(kept)
    w = np.random.default_rng(1).normal(size=fv.shape)
    relevance = w * fv  # what a linear SVM layer hands down (Eq. 4.8)
    eps, ab = EncoderRule("epsilon", 1.0), EncoderRule("alphabeta", alpha=2.0)
    ours_s, anchor_s = paired_median_seconds(
        lambda: fisher_relevance(encoder, values, positions, relevance, eps, forward=kept),
        lambda: encoder.encode(values, positions), repeats)
    recomputed_s = median_seconds(lambda: fisher_relevance(encoder, values, positions, relevance, eps), repeats)
    alphabeta_s = median_seconds(lambda: fisher_relevance(encoder, values, positions, relevance, ab, forward=kept),
                                 repeats)
    return [record("fisher_lrp", ours_s, "bowlrp fisher_encode (same descriptors, 8 cells)", anchor_s,
                   n_descriptors=len(values), k=k, d=d, rule="epsilon eps=1",
                   with_posteriors_recomputed_s=recomputed_s, alphabeta_s=alphabeta_s,
                   kept_pairs_per_descriptor=float(len(kept.posteriors.gamma) / len(values)))]
