"""Vocabularies and encoders, checked against VLFeat (cyvlfeat), scikit-learn and brute-force numpy."""
import json

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture

from bowlrp.encoding import (
    FisherEncoder,
    GmmVocabulary,
    HardVqEncoder,
    KMeansVocabulary,
    PcaProjection,
    RankBowEncoder,
    SpatialPyramid,
    pool,
    sample_rows,
)
from bowlrp.encoding.pyramid import pyramid_atoms
from bowlrp.persistence import load_stages, save_stages

from conftest import require_cyvlfeat

vl_fisher = require_cyvlfeat("cyvlfeat.fisher").fisher

RTOL, ATOL = 1e-4, 1e-5


# ----------------------------------------------------------------------------- helpers
def make_gmm(seed=0, k=8, d=12, degenerate=False):
    """A GMM with known parameters; ``degenerate`` adds a near-zero-variance component far
    from the others, like the one real SIFT data gets from zeroed low-contrast descriptors."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=6.0, size=(k, d)).astype(np.float32)
    variances = rng.uniform(0.5, 4.0, size=(k, d)).astype(np.float32)
    weights = rng.dirichlet(np.full(k, 4.0)).astype(np.float32)
    if degenerate:
        means[-1] = 60.0
        variances[-1] = 1e-6
    weights /= weights.sum()
    return means, variances, weights


def sample_gmm(means, variances, weights, n, seed=1):
    rng = np.random.default_rng(seed)
    comp = rng.choice(len(weights), size=n, p=weights / weights.sum())
    x = means[comp] + rng.normal(size=(n, means.shape[1])) * np.sqrt(variances[comp]) * 1.2
    return np.ascontiguousarray(x, dtype=np.float32)


def posteriors_f64(x, means, variances, weights):
    """Brute-force float64 posteriors with explicit differences (no expansion)."""
    x, m, v, w = (np.asarray(a, dtype=np.float64) for a in (x, means, variances, weights))
    logp = np.log(w) - 0.5 * (((x[:, None, :] - m) ** 2 / v).sum(-1) + np.log(2 * np.pi * v).sum(-1))
    g = np.exp(logp - logp.max(axis=1, keepdims=True))
    return g / g.sum(axis=1, keepdims=True)


def fv_bruteforce(x, means, variances, weights, threshold=1e-6):
    """Unnormalised per-descriptor Fisher embeddings of Eqs. (4.1)-(4.3), summed, in float64.
    Returns (pi-block (K,), u (K, D), v (K, D))."""
    g = posteriors_f64(x, means, variances, weights)
    g[g < threshold] = 0.0
    m, v, w = (np.asarray(a, dtype=np.float64) for a in (means, variances, weights))
    diff = (np.asarray(x, np.float64)[:, None, :] - m) / np.sqrt(v)
    u = np.einsum("nk,nkd->kd", g, diff) / np.sqrt(w)[:, None]
    s = np.einsum("nk,nkd->kd", g, diff**2 - 1) / np.sqrt(2 * w)[:, None]
    p = (g - w).sum(axis=0) / np.sqrt(w)
    return p, u, s


def vl(x, gmm_params, improved):
    means, variances, weights = gmm_params
    return vl_fisher(np.ascontiguousarray(x, np.float32), means, variances, weights, improved=improved).ravel()


def round_trip(stage, tmp_path):
    """Save and reload a stage through the model-directory format (JSON + npz)."""
    meta, arrays = stage.get_state()
    save_stages(tmp_path, {"stage": meta}, arrays)
    meta2, arrays2 = load_stages(tmp_path)
    return type(stage).from_state(json.loads(json.dumps(meta2["stage"])), arrays2)


# ----------------------------------------------------------------------------- Fisher vectors vs VLFeat
@pytest.mark.parametrize("degenerate", [False, True])
def test_single_cell_fv_matches_vl_fisher(degenerate):
    params = make_gmm(degenerate=degenerate)
    x = sample_gmm(*params, n=1500)
    if degenerate:
        x[:40] = params[0][-1]  # descriptors sitting exactly on the degenerate component
    gmm = GmmVocabulary.from_parameters(*params)

    improved = FisherEncoder(gmm, pyramid=None, normalization="vlfeat").encode(x)
    np.testing.assert_allclose(improved, vl(x, params, improved=True), rtol=RTOL, atol=ATOL)

    enc = FisherEncoder(gmm, pyramid=None, normalization="none")
    plain = vl(x, params, improved=False)
    np.testing.assert_allclose(enc.encode(x), plain, rtol=RTOL, atol=ATOL * np.abs(plain).max())
    np.testing.assert_allclose(enc.encode_unnormalized(x, average=True)[0], plain, rtol=RTOL, atol=ATOL * np.abs(plain).max())
    # the default (Eq. 4.9) is the sum, i.e. N times vl_fisher's mean
    np.testing.assert_allclose(enc.encode_unnormalized(x)[0] / len(x), plain, rtol=RTOL, atol=ATOL * np.abs(plain).max())


def test_tiny_posteriors_are_dropped_like_vl_fisher():
    params = make_gmm(seed=3)
    means, variances, weights = params
    rng = np.random.default_rng(5)
    # A few descriptors near component 0, plus one whose smallest non-negligible posterior
    # falls just under VLFeat's 1e-6 cut: with so few descriptors the improved FV (square
    # root) makes that component's block visibly non-zero if the cut is not applied.
    x = means[0] + rng.normal(size=(4, means.shape[1])).astype(np.float32) * 0.3
    cands = (means[0] + (means[1] - means[0]) * rng.uniform(0.2, 0.8, size=(4000, 1))
             + rng.normal(size=(4000, means.shape[1])) * 0.5).astype(np.float32)
    g = posteriors_f64(cands, *params)
    # a component that the others leave empty and the candidate reaches only faintly
    unused = posteriors_f64(x, *params).max(axis=0) < 1e-12
    hit = np.argwhere((g > 1e-7) & (g < 6e-7) & unused[None, :])
    assert len(hit), "no candidate descriptor with a tiny posterior"
    x = np.vstack([x, cands[hit[0, 0]][None]])

    ours = FisherEncoder(GmmVocabulary.from_parameters(*params), pyramid=None, normalization="vlfeat").encode(x)
    ref = vl(x, params, improved=True)
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)

    # sanity: the same formula without the cut differs visibly, so the check above can fail
    _, u, s = fv_bruteforce(x, *params, threshold=0.0)
    no_cut = np.concatenate([u.ravel(), s.ravel()])
    no_cut = np.sign(no_cut) * np.sqrt(np.abs(no_cut))
    no_cut /= np.linalg.norm(no_cut)
    assert np.abs(no_cut - ref).max() > 10 * ATOL


def test_weight_gradient_block_and_layout():
    params = make_gmm(seed=7)
    x = sample_gmm(*params, n=800, seed=2)
    gmm = GmmVocabulary.from_parameters(*params)
    full = FisherEncoder(gmm, pyramid=None, normalization="none", weight_gradient=True)
    short = FisherEncoder(gmm, pyramid=None, normalization="none")
    k, d = params[0].shape
    assert full.dim == (2 * d + 1) * k and short.dim == 2 * d * k
    xs = full.encode_unnormalized(x)[0]
    p, u, s = fv_bruteforce(x, *params)
    sl = full.block_slices()
    scale = np.abs(xs).max()
    np.testing.assert_allclose(xs[sl["pi"]], p, rtol=RTOL, atol=ATOL * scale)
    np.testing.assert_allclose(xs[sl["mu"]], u.ravel(), rtol=RTOL, atol=ATOL * scale)
    np.testing.assert_allclose(xs[sl["sigma"]], s.ravel(), rtol=RTOL, atol=ATOL * scale)
    np.testing.assert_array_equal(xs[k:], short.encode_unnormalized(x)[0])
    # the published assignments are the gammas inside the statistics (what LRP redistributes)
    gamma = full.assignments(x)
    np.testing.assert_allclose(xs[sl["pi"]], (gamma.sum(0) - len(x) * params[2]) / np.sqrt(params[2]), rtol=RTOL, atol=ATOL * scale)


def test_component_with_negligible_prior_gets_zero_block():
    means, variances, weights = make_gmm(seed=11)
    weights = weights.copy()
    weights[2] = 1e-7
    weights /= weights.sum()
    params = (means, variances, weights.astype(np.float32))
    x = sample_gmm(means, variances, np.full(len(weights), 1.0 / len(weights)), n=600)
    ours = FisherEncoder(GmmVocabulary.from_parameters(*params), pyramid=None, normalization="vlfeat").encode(x)
    ref = vl(x, params, improved=True)
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=ATOL)
    d = means.shape[1]
    assert not ours[2 * d:3 * d].any()


# ----------------------------------------------------------------------------- posteriors vs scikit-learn
@pytest.mark.parametrize("degenerate", [False, True])
def test_posteriors_match_sklearn(degenerate):
    means, variances, weights = make_gmm(seed=2, degenerate=degenerate)
    x = sample_gmm(means, variances, weights, n=2000, seed=4)
    if degenerate:
        x[:10] = means[-1]
    ref_model = GaussianMixture(n_components=len(weights), covariance_type="diag")
    ref_model.weights_ = weights.astype(np.float64)
    ref_model.means_ = means.astype(np.float64)
    ref_model.covariances_ = variances.astype(np.float64)
    ref_model.precisions_cholesky_ = 1.0 / np.sqrt(ref_model.covariances_)
    ours = GmmVocabulary.from_parameters(means, variances, weights).posteriors(x)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref_model.predict_proba(x.astype(np.float64)), atol=2e-5)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-5)


def test_log_joint_is_accurate_for_a_tight_distant_component():
    means, variances, weights = make_gmm(seed=2, degenerate=True)
    rng = np.random.default_rng(0)
    # descriptors within a few sigma of the near-zero-variance component (cf. zeroed SIFT)
    x = (means[-1] + rng.normal(size=(50, means.shape[1])) * 2e-3).astype(np.float32)
    x = np.vstack([x, sample_gmm(means, variances, weights, n=200)])
    m, v, w = (a.astype(np.float64) for a in (means, variances, weights))
    ref = np.log(w) - 0.5 * (((x[:, None, :] - m) ** 2 / v).sum(-1) + np.log(2 * np.pi * v).sum(-1))
    ours = GmmVocabulary.from_parameters(means, variances, weights).log_joint().log_joint(x)
    near = ref > ref.max(axis=1, keepdims=True) - 50  # entries that can matter for posteriors
    np.testing.assert_allclose(ours[near], ref[near], rtol=1e-5, atol=1e-3)


def test_gmm_fit_is_deterministic_and_valid():
    params = make_gmm(seed=4, k=4, d=6)
    x = sample_gmm(*params, n=1500, seed=8)
    for backend in ("sklearn", "vlfeat"):
        a = GmmVocabulary(n_components=4, max_iter=30, random_state=3, backend=backend).fit(x)
        b = GmmVocabulary(n_components=4, max_iter=30, random_state=3, backend=backend).fit(x)
        np.testing.assert_array_equal(a.means_, b.means_)
        np.testing.assert_array_equal(a.variances_, b.variances_)
        assert a.means_.dtype == a.variances_.dtype == a.weights_.dtype == np.float32
        assert a.means_.shape == (4, 6) and np.all(a.variances_ > 0)
        np.testing.assert_allclose(a.weights_.sum(), 1.0, rtol=1e-5)
        # the fitted means find the generating ones (well separated clusters)
        dist = np.linalg.norm(a.means_[:, None] - params[0][None], axis=-1)
        assert np.all(dist.min(axis=0) < 1.0), backend


# ----------------------------------------------------------------------------- spatial pyramid
def test_pyramid_cell_index_geometry():
    pyr = SpatialPyramid()
    assert pyr.n_cells == 8
    pos = np.array([[0.1, 0.1], [0.9, 0.2], [0.2, 0.6], [0.7, 0.95], [0.5, 0.5], [0.999, 0.34]])
    expected = [[0, 1, 5], [0, 2, 5], [0, 3, 6], [0, 4, 7], [0, 4, 6], [0, 2, 6]]
    np.testing.assert_array_equal(pyr.cell_index(pos), expected)


@pytest.mark.parametrize("normalization", ["vlfeat", "enceval"])
def test_pyramid_fv_is_made_of_per_cell_vl_fisher(normalization):
    params = make_gmm(seed=5)
    x = sample_gmm(*params, n=1200, seed=6)
    rng = np.random.default_rng(9)
    # nothing in the bottom stripe: one empty cell (7) and two sparse ones
    pos = np.column_stack([rng.uniform(0, 1, len(x)), rng.uniform(0, 0.6, len(x))])
    pyr = SpatialPyramid()
    enc = FisherEncoder(GmmVocabulary.from_parameters(*params), pyramid=pyr, normalization=normalization)
    ours = enc.encode(x, pos)
    assert ours.shape == (enc.dim,) and np.isfinite(ours).all()

    masks = pyr.cell_masks(pos)
    assert not masks[7].any()
    dim_cell = enc.dim_per_cell
    if normalization == "vlfeat":
        blocks = [vl(x[m], params, improved=True) if m.any() else np.zeros(dim_cell) for m in masks]
        expected = np.concatenate(blocks)
    else:  # per-cell L2, global signed sqrt, global L2
        blocks = [vl(x[m], params, improved=False).astype(np.float64) if m.any() else np.zeros(dim_cell) for m in masks]
        blocks = [b / max(np.linalg.norm(b), 1e-12) for b in blocks]
        expected = np.concatenate(blocks)
        expected = np.sign(expected) * np.sqrt(np.abs(expected))
        expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(ours, expected, rtol=RTOL, atol=ATOL)
    assert not ours[7 * dim_cell:].any()


def test_sparse_posteriors_are_the_kept_assignments_across_chunks():
    params = make_gmm(seed=3)
    x = sample_gmm(*params, n=1000, seed=8)
    enc = FisherEncoder(GmmVocabulary.from_parameters(*params), pyramid=None, chunk_rows=97)
    kept = enc.posteriors(x)
    assert len(kept) == len(x) and kept.indptr[-1] == len(kept.gamma)
    assert (np.diff(kept.indptr) < params[0].shape[0]).any()  # the cut dropped something
    np.testing.assert_allclose(kept.to_dense(), enc.assignments(x), rtol=1e-5, atol=1e-7)
    # one chunk or many: the same pairs, the same vector
    whole = FisherEncoder(enc.gmm, pyramid=None, chunk_rows=10**6)
    np.testing.assert_array_equal(whole.posteriors(x).component, kept.component)
    np.testing.assert_array_equal(whole.encode(x), enc.encode(x, posteriors=kept))
    with pytest.raises(ValueError, match="posteriors of"):
        enc.encode(x[:10], posteriors=kept)


@pytest.mark.parametrize("k", [3, 8, 13, 37])
def test_sparse_posteriors_match_float64_for_any_component_count(k):
    """The eight-lane row kernels (max, sum, cut) for K below, at and off a multiple of eight, over more
    rows than one softmax block: every pair at or above the cut, its posterior and each row's log p(l)
    as a float64 brute force gives them."""
    from scipy.special import logsumexp

    from bowlrp.encoding.posteriors import SOFTMAX_BLOCK_ROWS, LogJoint, sparse_posteriors

    means, variances, weights = make_gmm(seed=k, k=k, d=6)
    x = sample_gmm(means, variances, weights, n=SOFTMAX_BLOCK_ROWS + 777, seed=k)
    kept = sparse_posteriors(LogJoint(means, variances, weights), x, threshold=1e-6, chunk_rows=3000)
    ref = posteriors_f64(x, means, variances, weights)
    clear = (ref > 2e-6) | (ref < 5e-7)  # pairs far enough from the cut that float32 cannot flip them
    dense = kept.to_dense()
    np.testing.assert_array_equal((dense > 0)[clear], (ref >= 1e-6)[clear])
    np.testing.assert_allclose(dense[clear], np.where(ref >= 1e-6, ref, 0.0)[clear], rtol=1e-4, atol=1e-7)
    counts = np.diff(kept.indptr)
    assert (counts < k).any() and (k < 8 or (counts > 1).any())  # the cut dropped pairs and kept several
    m, v, w = (a.astype(np.float64) for a in (means, variances, weights))
    logp = np.log(w) - 0.5 * (((x[:, None, :].astype(np.float64) - m) ** 2 / v).sum(-1) + np.log(2 * np.pi * v).sum(-1))
    np.testing.assert_allclose(kept.log_density, logsumexp(logp, axis=1), rtol=0, atol=1e-3)


def test_pyramid_atoms_refine_every_level():
    pyr = SpatialPyramid()
    pos = np.random.default_rng(0).uniform(0, 1, size=(500, 2))
    cells = pyr.cell_index(pos)
    atom_of, member = pyramid_atoms(cells, pyr.level_offsets)
    assert member.shape == (8, 8) and member.sum(axis=0).tolist() == [3.0] * 8  # one cell per level
    # every descriptor's cells are exactly its atom's cells
    np.testing.assert_array_equal(np.sort(cells, axis=1), np.stack([np.flatnonzero(member[:, a]) for a in atom_of]))


def test_fv_of_no_descriptors_is_zero():
    enc = FisherEncoder(GmmVocabulary.from_parameters(*make_gmm()))
    out = enc.encode(np.zeros((0, 12), np.float32), np.zeros((0, 2)))
    assert out.shape == (enc.dim,) and not out.any()


# ----------------------------------------------------------------------------- BoW encoders
@pytest.fixture(scope="module")
def kmeans_data():
    rng = np.random.default_rng(12)
    centers = rng.normal(scale=5.0, size=(10, 8))
    x = (centers[rng.integers(0, 10, 1500)] + rng.normal(size=(1500, 8))).astype(np.float32)
    return x


def test_rank_bow_matches_bruteforce_eq_2_86(kmeans_data):
    x = kmeans_data
    vocab = KMeansVocabulary(n_clusters=10, random_state=0).fit(x)
    pos = np.random.default_rng(3).uniform(size=(len(x), 2))
    pyr = SpatialPyramid()
    enc = RankBowEncoder(vocab, p=2.0, n=4, pyramid=pyr)
    q = x[:300]
    # brute force: per descriptor, sort the centres by distance, weight rank r (1-based) by 2^-r
    c = vocab.centers_.astype(np.float64)
    m = np.zeros((len(q), len(c)))
    for i, l in enumerate(q.astype(np.float64)):
        ranking = np.argsort(np.linalg.norm(c - l, axis=1), kind="stable")
        for r, d in enumerate(ranking[:4], start=1):
            m[i, d] = 2.0 ** -r
    np.testing.assert_allclose(enc.mapping(q), m, rtol=1e-6)
    expected = []
    for mask in pyr.cell_masks(pos[:300]):
        h = m[mask].mean(axis=0) if mask.any() else np.zeros(len(c))
        expected.append(h / h.sum() if h.sum() > 0 else h)
    np.testing.assert_allclose(enc.encode(q, pos[:300]), np.concatenate(expected), rtol=1e-5, atol=1e-7)


def test_hard_vq_matches_sklearn_kmeans(kmeans_data):
    x = kmeans_data
    vocab = KMeansVocabulary(n_clusters=10, random_state=0).fit(x)
    ref = KMeans(n_clusters=10, random_state=0, n_init=1).fit(x)
    np.testing.assert_allclose(vocab.centers_, ref.cluster_centers_, rtol=1e-5, atol=1e-5)
    hist = np.bincount(ref.predict(x), minlength=10) / len(x)
    np.testing.assert_allclose(HardVqEncoder(vocab).encode(x), hist, rtol=1e-6)


def test_pca_matches_sklearn(kmeans_data):
    x = kmeans_data
    ours = PcaProjection(n_components=5).fit(x)
    ref = PCA(n_components=5).fit(x.astype(np.float64))
    out = ours.transform(x)
    assert out.dtype == np.float32
    # components are defined up to sign
    np.testing.assert_allclose(np.abs(out), np.abs(ref.transform(x.astype(np.float64))), rtol=1e-3, atol=1e-3)


def test_pca_projection_is_the_same_for_any_blas_thread_count_and_chunking():
    """A joblib worker (BLAS and numba on one thread) and the main process must project identically, or
    the same image gets other features in parallel runs (multi-threaded sgemm rounds differently)."""
    import numba
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(3)
    x = rng.normal(100, 40, size=(20000, 128)).astype(np.float32)
    pca = PcaProjection(n_components=80).fit(x[:5000])
    reference = (x.astype(np.float64) - pca.mean_) @ pca.components_.T.astype(np.float64)
    default = pca.transform(x)
    np.testing.assert_allclose(default, reference, rtol=1e-4, atol=1e-3)
    with threadpool_limits(1):
        np.testing.assert_array_equal(pca.transform(x), default)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        np.testing.assert_array_equal(pca.transform(x), default)
    finally:
        numba.set_num_threads(threads)


# ----------------------------------------------------------------------------- pooling
def test_p_means_pooling():
    rng = np.random.default_rng(0)
    m = rng.uniform(0, 1, size=(50, 7))
    np.testing.assert_allclose(pool(m, 1.0), m.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(pool(m, "sum"), m.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(pool(m, 3.0), np.mean(m**3, axis=0) ** (1 / 3), rtol=1e-6)
    np.testing.assert_array_equal(pool(m, "max"), m.max(axis=0).astype(np.float32))
    large = [pool(m, p) for p in (8.0, 64.0, 1000.0)]
    assert np.all(large[0] <= large[1] + 1e-7) and np.all(large[1] <= large[2] + 1e-7)
    np.testing.assert_allclose(large[2], m.max(axis=0), rtol=0.01)
    assert not pool(np.zeros((0, 7)), 2.0).any()


# ----------------------------------------------------------------------------- state, determinism, sampling
def test_state_round_trips_give_identical_outputs(tmp_path, kmeans_data):
    x = kmeans_data
    pos = np.random.default_rng(1).uniform(size=(len(x), 2))
    pca = PcaProjection(n_components=6).fit(x)
    y = pca.transform(x)
    gmm = GmmVocabulary(n_components=4, max_iter=20).fit(y)
    vocab = KMeansVocabulary(n_clusters=6).fit(x)
    stages = [
        (pca, lambda s: s.transform(x)),
        (gmm, lambda s: s.posteriors(y)),
        (vocab, lambda s: s.predict(x)),
        (FisherEncoder(gmm, weight_gradient=True), lambda s: s.encode(y, pos)),
        (FisherEncoder(gmm, pyramid=None, normalization="vlfeat"), lambda s: s.encode(y)),
        (RankBowEncoder(vocab, pyramid=SpatialPyramid(((1, 1), (1, 2))), pooling=2.0), lambda s: s.encode(x, pos)),
        (HardVqEncoder(vocab, pooling="max"), lambda s: s.encode(x)),
        (SpatialPyramid(((2, 3),)), lambda s: s.cell_index(pos)),
    ]
    for i, (stage, run) in enumerate(stages):
        loaded = round_trip(stage, tmp_path / str(i))
        assert type(loaded) is type(stage)
        np.testing.assert_array_equal(run(loaded), run(stage))


def test_fits_are_deterministic_for_a_seed(kmeans_data):
    x = kmeans_data
    for make in (lambda s: KMeansVocabulary(6, random_state=s), lambda s: PcaProjection(4, random_state=s)):
        a, b = make(1).fit(x).get_state()[1], make(1).fit(x).get_state()[1]
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_sample_rows_is_uniform_and_deterministic():
    blocks = [np.arange(100)[:, None] * np.ones((1, 3)), 1000 + np.arange(900)[:, None] * np.ones((1, 3))]
    a = sample_rows(blocks, 500, random_state=4)
    np.testing.assert_array_equal(a, sample_rows(blocks, 500, random_state=4))
    assert not np.array_equal(a, sample_rows(blocks, 500, random_state=5))
    assert a.shape == (500, 3) and len(np.unique(a[:, 0])) == 500
    assert np.isin(a[:, 0], np.concatenate([b[:, 0] for b in blocks])).all()
    # 10% of the rows live in the first block: a uniform sample draws ~50 of them (sd ~6)
    assert 30 <= np.sum(a[:, 0] < 100) <= 70
    np.testing.assert_array_equal(sample_rows(blocks, 5000, random_state=0), np.vstack(blocks))
