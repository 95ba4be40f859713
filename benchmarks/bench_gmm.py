"""``gmm_fit``: our EM (:mod:`bowlrp.encoding.gmm`) against scikit-learn's ``GaussianMixture`` and
VLFeat's ``vl_gmm`` (cyvlfeat), 20 iterations each from the same start; ``kmeans_fit``: the BoW
vocabulary (scikit-learn's ``KMeans``, which :class:`~bowlrp.encoding.KMeansVocabulary` runs)
against scikit-learn's ``KMeans`` called directly, with its parts (seeding, Lloyd and Elkan steps)
and VLFeat's ``vl_kmeans`` beside it. Wall and CPU seconds: on a shared machine the CPU ratio is
the steadier one.

Data: 200,000 dense-SIFT descriptors (step 2, the four bin sizes) of scikit-image's astronaut,
coffee, chelsea and rocket at 375 x 500 px, the all-zero ones (contrast cut) left out as the
pipeline leaves them out, PCA'd to 80 dimensions. The start is ours (:func:`initial_parameters`,
seed 0), handed to scikit-learn as ``weights_init`` / ``means_init`` / ``precisions_init`` and to
VLFeat as its ``custom`` initialisation (priors, means, covariances). Each fit runs once (the
scikit-learn fit takes about a minute and a half); ``loglik_rel_diff`` compares the mean
log-likelihood of our final parameters with scikit-learn's, both scored by scikit-learn's own
``GaussianMixture.score``.
"""
from __future__ import annotations

import os
import time

import cv2
import numpy as np
import skimage.data

from bowlrp.encoding import PcaProjection
from bowlrp.encoding.gmm import GmmParameters, fit_em, initial_parameters, variance_floor
from bowlrp.features import DenseSift

from .common import record

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def descriptors(n: int = 200_000, d: int = 80, seed: int = 0) -> np.ndarray:
    """``n`` PCA'd (``d`` dims) non-zero dense-SIFT descriptors of the four photos, (n, d) float32."""
    sift = DenseSift(step=2, backend="vlfeat")
    blocks = []
    for name in PHOTOS:
        rgb = cv2.resize(getattr(skimage.data, name)(), (500, 375), interpolation=cv2.INTER_AREA)
        values = sift.extract(rgb.astype(np.float32) / 255.0).values
        blocks.append(values[np.any(values != 0, axis=1)])
    pool = np.concatenate(blocks)
    rows = np.sort(np.random.default_rng(seed).choice(len(pool), size=min(n, len(pool)), replace=False))
    sample = pool[rows]
    return PcaProjection(n_components=d, random_state=seed).fit(sample).transform(sample)


def _sklearn_gm(k: int, max_iter: int, start: GmmParameters | None = None):
    from sklearn.mixture import GaussianMixture

    init = {} if start is None else dict(weights_init=start.weights, means_init=start.means,
                                         precisions_init=1.0 / start.variances)
    return GaussianMixture(n_components=k, covariance_type="diag", max_iter=max_iter, tol=0.0, **init)


def mean_log_likelihood(X: np.ndarray, means, variances, weights) -> float:
    """scikit-learn's ``score`` (mean log-likelihood per row, float64) of the given parameters."""
    gm = _sklearn_gm(len(weights), 1)
    gm.weights_, gm.means_ = np.asarray(weights, np.float64), np.asarray(means, np.float64)
    gm.covariances_ = np.asarray(variances, np.float64)
    gm.precisions_cholesky_ = 1.0 / np.sqrt(gm.covariances_)
    return float(gm.score(X.astype(np.float64)))


def _timed(func):
    """``(wall seconds, result)`` of ``func()``; its CPU seconds (all threads) in ``_timed.cpu_s``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = func()
    _timed.cpu_s = time.process_time() - cpu
    return time.perf_counter() - start, out


def run(repeats: int = 1, n: int = 200_000, d: int = 80, k: int = 256, iterations: int = 20) -> list[dict]:
    from cyvlfeat.generic.generic import get_max_threads, set_num_threads
    from cyvlfeat.gmm.cygmm import cy_gmm

    X = descriptors(n, d)
    floor = variance_floor(X)
    start = initial_parameters(X, k, 0, floor)
    fit_em(X[:5000], start, max_iter=1, tol=0.0, floor=floor)  # compile the kernels outside the timing
    ours_s, ours = _timed(lambda: fit_em(X, start, max_iter=iterations, tol=0.0, floor=floor))
    cpu = {"ours_cpu_s": _timed.cpu_s}
    X64 = X.astype(np.float64)
    anchor_s, gm = _timed(lambda: _sklearn_gm(k, iterations, start).fit(X64))
    cpu["anchor_cpu_s"] = _timed.cpu_s
    set_num_threads(get_max_threads())  # VLFeat at its own (OpenMP) best
    vl_gmm_s, vl = _timed(lambda: cy_gmm(
        np.ascontiguousarray(X), k, iterations, b"custom", 1, 0, covariance_bound=np.array([floor], np.float32),
        init_priors=start.weights.astype(np.float32), init_means=start.means.astype(np.float32),
        init_covars=start.variances.astype(np.float32)))
    cpu["vl_gmm_cpu_s"] = _timed.cpu_s
    ll_ours = mean_log_likelihood(X, ours.means, ours.variances, ours.weights)
    ll_sklearn = mean_log_likelihood(X, gm.means_, gm.covariances_, gm.weights_)
    ll_vl = mean_log_likelihood(X, *(np.array(a, copy=True) for a in vl[:3]))
    gmm = record("gmm_fit", ours_s, "sklearn GaussianMixture", anchor_s, vl_gmm_s=vl_gmm_s,
                 ratio_vs_vl_gmm=ours_s / vl_gmm_s, loglik_rel_diff=abs(ll_ours - ll_sklearn) / abs(ll_sklearn),
                 loglik_ours=ll_ours, loglik_sklearn=ll_sklearn, loglik_vl_gmm=ll_vl, n_descriptors=len(X), d=d, k=k,
                 em_iterations=iterations, variance_floor=floor, **cpu,
                 cpu_ratio=cpu["ours_cpu_s"] / cpu["anchor_cpu_s"], cpu_ratio_vs_vl_gmm=cpu["ours_cpu_s"] / cpu["vl_gmm_cpu_s"],
                 components_on_floor=int(np.any(ours.variances <= np.float32(floor), axis=1).sum()),
                 load_average=os.getloadavg(),
                 init="ours (k-means++ seeds, one hard assignment, seed 0), same for all three; one run each")
    return [gmm]


def run_kmeans(repeats: int = 1, n: int = 200_000, d: int = 80, k: int = 128, iterations: int = 20) -> list[dict]:
    """``kmeans_fit``: the BoW vocabulary (:class:`~bowlrp.encoding.KMeansVocabulary`: scikit-learn's
    ``KMeans``, k-means++ seeding and Lloyd, ``n_init=1``, seed 0) against scikit-learn's ``KMeans``
    called directly with the same settings, on the same descriptors (after PCA), ``k`` = 128 words
    (the BoW default), ``iterations`` steps. Beside it, the parts and the alternatives: the seeding
    alone; Lloyd and Elkan iterations from those seeds; VLFeat's ``vl_kmeans`` (Lloyd, Elkan), each
    with its own k-means++ seeding (it takes no given start). One run each."""
    from cyvlfeat.kmeans import kmeans as vl_kmeans
    from sklearn.cluster import KMeans, kmeans_plusplus

    from bowlrp.encoding import KMeansVocabulary

    X = descriptors(n, d)
    ours_s, _ = _timed(lambda: KMeansVocabulary(n_clusters=k, random_state=0, max_iter=iterations).fit(X))
    anchor_s, _ = _timed(lambda: KMeans(k, n_init=1, max_iter=iterations, random_state=0).fit(X))
    seeding_s, (seeds, _) = _timed(lambda: kmeans_plusplus(X, k, random_state=0))

    def from_seeds(algorithm: str):
        return lambda: KMeans(k, init=seeds, n_init=1, max_iter=iterations, tol=0.0, algorithm=algorithm).fit(X)

    lloyd_s, _ = _timed(from_seeds("lloyd"))
    elkan_s, _ = _timed(from_seeds("elkan"))
    vl_lloyd_s, _ = _timed(lambda: vl_kmeans(X, k, initialization="PLUSPLUS", algorithm="LLOYD",
                                             max_num_iterations=iterations))
    vl_elkan_s, _ = _timed(lambda: vl_kmeans(X, k, initialization="PLUSPLUS", algorithm="ELKAN",
                                             max_num_iterations=iterations))
    return [record("kmeans_fit", ours_s, "sklearn KMeans (k-means++, lloyd, same settings)", anchor_s,
                   sklearn_seeding_s=seeding_s, sklearn_lloyd_from_seeds_s=lloyd_s, sklearn_elkan_from_seeds_s=elkan_s,
                   vl_kmeans_lloyd_s=vl_lloyd_s, vl_kmeans_elkan_s=vl_elkan_s, n_descriptors=len(X), d=X.shape[1],
                   k=k, iterations=iterations)]
