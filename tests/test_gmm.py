"""The ``bowlrp`` GMM backend (EM on the Fisher encoder's kernels), the variance floor of every
backend and the stability of the Fisher vector it gives, checked against scikit-learn's
``GaussianMixture``, float64 references and scikit-image's photographs."""
import numba
import numpy as np
import pytest
import skimage.data
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from bowlrp.encoding import GmmVocabulary
from bowlrp.encoding.gmm import GmmParameters, fit_em, initial_parameters, variance_floor
from bowlrp.features import DenseSift
from bowlrp.pipeline import PipelineConfig, _make_block

from conftest import require_cyvlfeat


def _mixture(n=6000, seed=8):
    """``n`` draws (n, 8) float32 of six overlapping diagonal Gaussians of unequal weights."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(6, 8))
    sigma = np.sqrt(rng.uniform(0.5, 4.0, size=(6, 8)))
    component = rng.choice(6, size=n, p=rng.dirichlet(np.full(6, 4.0)))
    return (means[component] + rng.normal(size=(n, 8)) * sigma[component]).astype(np.float32)


def test_same_start_gives_sklearns_parameters_and_log_likelihood():
    """20 EM iterations from one start: every parameter as scikit-learn's ``GaussianMixture`` (no
    regularisation, ``tol=0``) to 1e-4, and its mean log-likelihood (``lower_bound_``)."""
    x = _mixture()
    start = initial_parameters(x, 6, random_state=1, floor=0.0)
    ours = fit_em(x, start, max_iter=20, tol=0.0, floor=0.0)
    gm = GaussianMixture(6, covariance_type="diag", max_iter=20, tol=0.0, reg_covar=0.0, weights_init=start.weights,
                         means_init=start.means, precisions_init=1.0 / start.variances).fit(x.astype(np.float64))
    assert ours.n_iter == gm.n_iter_ == 20
    np.testing.assert_allclose(ours.means, gm.means_, rtol=1e-4, atol=1e-4 * np.abs(gm.means_).max())
    np.testing.assert_allclose(ours.variances, gm.covariances_, rtol=1e-4)
    np.testing.assert_allclose(ours.weights, gm.weights_, rtol=1e-4)
    assert abs(ours.log_likelihood - gm.lower_bound_) <= 1e-6 * abs(gm.lower_bound_)


def test_convergence_stops_as_sklearn_does():
    """With scikit-learn's tolerance on the change of the mean log-likelihood, both stop at the same iteration."""
    x = _mixture()
    start = initial_parameters(x, 6, random_state=2, floor=0.0)
    ours = fit_em(x, start, max_iter=200, tol=1e-3, floor=0.0)
    gm = GaussianMixture(6, covariance_type="diag", max_iter=200, tol=1e-3, reg_covar=0.0, weights_init=start.weights,
                         means_init=start.means, precisions_init=1.0 / start.variances).fit(x.astype(np.float64))
    assert ours.converged and gm.converged_ and ours.n_iter == gm.n_iter_ < 200


def test_fit_is_deterministic_per_seed_and_for_any_thread_count():
    x = _mixture(n=9000)  # several row chunks and moment blocks

    def fit(seed):
        return GmmVocabulary(n_components=6, max_iter=30, random_state=seed).fit(x)

    threads = numba.get_num_threads()
    a = fit(3)
    try:
        numba.set_num_threads(1)
        with threadpool_limits(1):
            b = fit(3)
    finally:
        numba.set_num_threads(threads)
    for name in ("means_", "variances_", "weights_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(fit(4).means_, a.means_)  # the seed matters
    assert a.backend == "bowlrp" and a.means_.dtype == a.variances_.dtype == a.weights_.dtype == np.float32


@pytest.mark.parametrize("backend", ["bowlrp", "sklearn", "vlfeat"])
def test_every_backend_floors_the_variances(backend):
    """Dimension 0 is constant inside each cluster: its variances collapse onto the floor (1e-4 of
    the largest data variance), never below, and the floor is kept with the vocabulary. (For VLFeat
    a bound array of the wrong float width, as cyvlfeat reinterprets float32 bounds, would leave them
    near zero or at garbage values.)"""
    if backend == "vlfeat":
        require_cyvlfeat()
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, size=(4, 6)).astype(np.float32)
    labels = rng.integers(0, 4, size=2000)
    x = centres[labels] + rng.normal(0, 1, size=(2000, 6)).astype(np.float32)
    x[:, 0] = centres[labels, 0]
    floor = 1e-4 * float(x.astype(np.float64).var(axis=0).max())
    gmm = GmmVocabulary(n_components=4, max_iter=30, random_state=0, backend=backend).fit(x)
    assert gmm.variance_floor_ == pytest.approx(floor, rel=1e-6) and variance_floor(x) == gmm.variance_floor_
    assert np.all(gmm.variances_ >= np.float32(gmm.variance_floor_))
    np.testing.assert_allclose(np.sort(gmm.variances_[:, 0]), floor, rtol=1e-3)
    assert np.all(gmm.variances_[:, 1:] > 0.5)
    assert GmmVocabulary.from_state(*gmm.get_state()).variance_floor_ == gmm.variance_floor_


def test_an_emptied_component_keeps_its_place():
    """A component that no descriptor reaches keeps its mean and variance and loses its weight."""
    x = _mixture(n=3000)
    start = initial_parameters(x, 6, random_state=0, floor=0.0)
    far = GmmParameters(np.vstack([start.means, np.full((1, 8), 1e4)]), np.vstack([start.variances, np.ones((1, 8))]),
                        np.append(start.weights * 0.99, 0.01))
    fit = fit_em(x, far, max_iter=3, tol=0.0, floor=0.0)
    np.testing.assert_array_equal(fit.means[-1], np.float32(1e4))
    assert fit.weights[-1] == 0.0 and np.all(np.isfinite(fit.means)) and abs(fit.weights.sum() - 1) < 1e-6


@pytest.fixture(scope="module")
def photos():
    """Dense SIFT of scikit-image's astronaut and rocket (21 % and 64 % of their descriptors zeroed by
    the contrast cut), at most 240 rows."""
    sift = DenseSift(max_rows=240)
    return {name: sift.extract(getattr(skimage.data, name)().astype(np.float32) / 255.0) for name in ("astronaut", "rocket")}


def test_fisher_vectors_of_photos_do_not_depend_on_the_projection_precision(photos):
    """A Fisher-vector block fitted as ``train`` fits it (zero descriptors out of the fits, floored
    variances) encodes each photo the same whether its descriptors are projected in float32 (as the
    pipeline does) or in float64: the (L2-normalised) vectors agree to 1e-5 relative, measured
    2.5e-6, and no entry moves by 1e-4 of the largest. Before, the component sitting on the zero
    descriptors' point (variance 1e-6) moved 500-600 entries by more than 1e-4 (norm 0.9-3 %)."""
    sample = np.concatenate([d.values for d in photos.values()])
    assert np.mean(~sample.any(axis=1)) > 0.2  # the photos hold many zeroed descriptors
    block = _make_block(PipelineConfig(n_words=32, pca_dims=80), [0, 1, 2, 3], sample, seed=0)
    assert np.all(block.encoder.gmm.variances_ >= np.float32(block.encoder.gmm.variance_floor_))
    mean, comps = block.projection.mean_.astype(np.float64), block.projection.components_.astype(np.float64)
    for name, descriptors in photos.items():
        positions = descriptors.normalized_positions()
        v32 = block.projection.transform(descriptors.values)
        v64 = ((descriptors.values.astype(np.float64) - mean) @ comps.T).astype(np.float32)
        assert np.abs(v32 - v64).max() > 0  # the two projections do differ
        a, b = block.encoder.encode(v32, positions), block.encoder.encode(v64, positions)
        assert np.linalg.norm(a - b) <= 1e-5 * np.linalg.norm(a), name
        assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max(), name
