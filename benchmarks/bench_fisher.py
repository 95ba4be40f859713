"""``fisher_encode``: our Fisher vector with the 8-cell pyramid (K=256, D=80) against
``vl_fisher`` (cyvlfeat) on the whole image, for the descriptors of one 375 x 500 image."""
from __future__ import annotations

import numpy as np

from bowlrp.encoding import FisherEncoder, GmmVocabulary, PcaProjection, SpatialPyramid
from bowlrp.features import DenseSift

from .common import median_seconds, record, voc_size_image


def run(repeats: int = 5, k: int = 256, d: int = 80) -> list[dict]:
    from cyvlfeat.fisher import fisher

    descriptors = DenseSift(backend="vlfeat").extract(voc_size_image())
    projection = PcaProjection(n_components=d).fit(descriptors.values)
    values = projection.transform(descriptors.values).astype(np.float32)
    positions = descriptors.normalized_positions()
    # A GMM shaped like a trained one (means on data points, per-dimension variances) without
    # the minutes an EM fit takes; timing does not depend on how the parameters were found.
    rng = np.random.default_rng(0)
    means = values[rng.choice(len(values), size=k, replace=False)]
    variances = np.tile(values.var(axis=0), (k, 1)) * rng.uniform(0.2, 1.0, size=(k, d)).astype(np.float32)
    weights = rng.dirichlet(np.full(k, 5.0)).astype(np.float32)
    gmm = GmmVocabulary.from_parameters(means, variances.astype(np.float32), weights)
    encoder = FisherEncoder(gmm, pyramid=SpatialPyramid())

    ours_s = median_seconds(lambda: encoder.encode(values, positions), repeats)
    anchor_s = median_seconds(lambda: fisher(values, gmm.means_, gmm.variances_, gmm.weights_, improved=True), repeats)
    # numerically the same computation: our whole-image FV equals vl_fisher's
    whole = FisherEncoder(gmm, pyramid=None, normalization="vlfeat").encode(values)
    reference = fisher(values, gmm.means_, gmm.variances_, gmm.weights_, improved=True).ravel()
    max_abs_diff = float(np.abs(whole - reference).max())
    return [record("fisher_encode", ours_s, "cyvlfeat.fisher.fisher (whole image, no pyramid)", anchor_s,
                   n_descriptors=len(values), k=k, d=d, pyramid_cells=8, max_abs_diff_vs_vl_fisher=max_abs_diff)]
