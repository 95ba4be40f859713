"""Each LRP backward step against an independent dense reference: the descriptor x dimension matrix of
contributions z_ld built explicitly (Eqs. 4.10, 2.77-2.82), the SVM decompositions of Eq. 2.72,
finite differences for the Taylor gradient and a brute-force path integral of finite differences for the
path-integrated decomposition, and brute-force loops for the flat pixel rule."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bowlrp.encoding import FisherEncoder, GmmVocabulary, HardVqEncoder, KMeansVocabulary, RankBowEncoder, SpatialPyramid
from bowlrp.features.descriptors import DescriptorSet
from bowlrp.lrp.bow import bow_relevance
from bowlrp.lrp.fisher import fisher_relevance
from bowlrp.lrp.pixels import area_weights, flat_rule_map, original_frames, pixel_relevance, to_original
from bowlrp.errors import BowlrpError
from bowlrp.lrp.rules import EncoderRule, multipliers
from bowlrp.lrp.svm import decomposable_relevance, distribute_bias, explain_svm
from bowlrp.lrp.taylor import find_root_point, model_gradient, path_integrated_relevance, taylor_relevance
from bowlrp.svm import BinarySvm, KernelSum, make_kernel

RULES = [EncoderRule("epsilon", 0.0), EncoderRule("epsilon", 0.5), EncoderRule("alphabeta", alpha=2.0), EncoderRule("alphabeta", alpha=1.0),
         EncoderRule("absz")]


def reference_redistribution(z: np.ndarray, R: np.ndarray, groups: list[np.ndarray], rule: EncoderRule) -> np.ndarray:
    """R_l from a dense (N, D) contribution matrix, one dimension at a time (Eqs. 2.22, 2.26, 2.7, 2.79).

    ``groups[d]`` are the descriptors that dimension d belongs to (its cell): the uniform fallback of
    an unreached dimension goes to them. Alpha-beta is written as Eq. 2.26 states it, with the
    dissertation's beta = 1 - alpha (<= 0) and not with ``rule.beta``, so the rule's sign convention
    (beta = alpha - 1 >= 0, subtracted) is checked against the equation rather than against itself.
    """
    out = np.zeros(z.shape[0])
    for d in range(z.shape[1]):
        col = z[:, d]
        if not np.any(col != 0):
            if len(groups[d]):
                out[groups[d]] += R[d] / len(groups[d])
            continue
        if rule.name == "epsilon":
            zd = col.sum()
            out += col / (zd + rule.eps * (1.0 if zd >= 0 else -1.0)) * R[d]
        elif rule.name == "alphabeta":
            p, n = np.clip(col, 0, None), np.clip(col, None, 0)
            if p.sum() > 0:
                out += rule.alpha * p / p.sum() * R[d]
            if n.sum() < 0:
                beta_eq_2_26 = 1.0 - rule.alpha
                out += beta_eq_2_26 * n / n.sum() * R[d]
        else:
            out += np.abs(col) / np.abs(col).sum() * R[d]
    return out


# --------------------------------------------------------------------------- encoder rules
def test_alphabeta_beta_is_alpha_minus_one_and_is_subtracted():
    """beta = alpha - 1 >= 0 (zennit's convention); the multipliers are those of Eq. 2.26 with the
    dissertation's beta = 1 - alpha, i.e. identical numbers to the rule before the sign change."""
    rule = EncoderRule("alphabeta", alpha=2.0)
    assert rule.beta == 1.0 and EncoderRule("alphabeta", alpha=1.0).beta == 0.0
    assert rule.describe() == "alpha-beta (alpha=2, beta=1)"
    rng = np.random.default_rng(0)
    R = rng.normal(size=50)
    z_pos = np.where(rng.random(50) < 0.8, rng.uniform(0.1, 3.0, 50), 0.0)
    z_neg = np.where(rng.random(50) < 0.8, -rng.uniform(0.1, 3.0, 50), 0.0)
    m = multipliers(rule, R, z_pos, z_neg)
    beta_old = 1.0 - rule.alpha  # the former (Eq. 2.26) sign: -1 for alpha 2
    has_pos, has_neg = z_pos > 0, z_neg < 0
    np.testing.assert_array_equal(m.pos, np.where(has_pos, rule.alpha * R / np.where(has_pos, z_pos, 1), 0.0))
    np.testing.assert_array_equal(m.neg, np.where(has_neg, beta_old * R / np.where(has_neg, z_neg, 1), 0.0))
    # a dimension reached from both sides hands on alpha R_d - beta R_d = R_d exactly
    both = has_pos & has_neg
    np.testing.assert_allclose((m.pos * z_pos + m.neg * z_neg)[both], R[both], rtol=1e-12, atol=1e-12)
    # only-negative dimensions hand on -beta R_d (the sign flips), only-positive ones alpha R_d
    only_neg, only_pos = has_neg & ~has_pos, has_pos & ~has_neg
    assert only_neg.any() and only_pos.any()
    np.testing.assert_allclose((m.neg * z_neg)[only_neg], -rule.beta * R[only_neg], rtol=1e-12)
    np.testing.assert_allclose((m.pos * z_pos)[only_pos], rule.alpha * R[only_pos], rtol=1e-12)


def test_settings_record_only_the_parameters_the_rule_uses():
    assert EncoderRule("epsilon", 100.0, alpha=3.0).settings() == {"rule": "epsilon", "eps": 100.0}
    assert EncoderRule("alphabeta", eps=1.0, alpha=2.0).settings() == {"rule": "alphabeta", "alpha": 2.0, "beta": 1.0}
    assert EncoderRule("absz", eps=1.0, alpha=3.0).settings() == {"rule": "absz"}


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "alphabeta", "alpha": 0.5}, r"alpha must be >= 1 \(beta = alpha - 1 >= 0\)"),
    ({"name": "epsilon", "eps": -1.0}, r"eps must be >= 0"),
    ({"name": "zplus"}, r"unknown rule 'zplus'"),
])
def test_rule_errors_name_the_parameter(kwargs, message):
    with pytest.raises(BowlrpError, match=message):
        EncoderRule(**kwargs)


# --------------------------------------------------------------------------- Fisher vectors
def _gmm(k=5, d=4, seed=0, tiny_prior=False):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=2.0, size=(k, d))
    variances = rng.uniform(0.4, 1.5, size=(k, d))
    weights = rng.dirichlet(np.full(k, 3.0))
    if tiny_prior:  # a component VLFeat treats as absent
        weights[-1] = 1e-8
        weights /= weights.sum()
    return GmmVocabulary.from_parameters(means.astype(np.float32), variances.astype(np.float32),
                                         weights.astype(np.float32))


def _fv_dense(encoder: FisherEncoder, values, positions):
    """Dense z_ld over the whole feature vector (N, dim) from Eq. 4.10, float64, and the cell groups."""
    gmm = encoder.gmm
    x = values.astype(np.float64)
    m, v, w = (gmm.means_.astype(np.float64), gmm.variances_.astype(np.float64), gmm.weights_.astype(np.float64))
    present = w >= 1e-6
    # posteriors from the encoder's float32 log-joints (checked against scikit-learn in test_encoding),
    # normalised here in float64: with eps = 0 a dimension whose contributions nearly cancel would
    # turn float32 rounding of gamma into visible differences
    logp = gmm.log_joint().log_joint(values).astype(np.float64)
    g = np.exp(logp - logp.max(1, keepdims=True))
    g /= g.sum(1, keepdims=True)
    g[g < 1e-6] = 0.0
    t = (x[:, None, :] - m) / np.sqrt(v)
    z_pi = np.where(present, (g - w) / np.sqrt(np.where(present, w, 1)), 0.0)
    z_mu = np.where(present[:, None], g[:, :, None] * t / np.sqrt(np.where(present, w, 1))[:, None], 0.0)
    z_sig = np.where(present[:, None], g[:, :, None] * (t**2 - 1) / np.sqrt(2 * np.where(present, w, 1))[:, None], 0.0)
    per_cell = [z_mu.reshape(len(x), -1), z_sig.reshape(len(x), -1)]
    if encoder.weight_gradient:
        per_cell.insert(0, z_pi)
    block = np.concatenate(per_cell, axis=1)  # (N, dim_per_cell)
    cells = encoder.cell_index(positions, len(x))
    z = np.zeros((len(x), encoder.dim))
    groups = []
    for c in range(encoder.n_cells):
        inside = (cells == c).any(axis=1)
        z[inside, c * encoder.dim_per_cell:(c + 1) * encoder.dim_per_cell] = block[inside]
        groups += [np.flatnonzero(inside)] * encoder.dim_per_cell
    return z, groups


@pytest.mark.parametrize("weight_gradient", [False, True])
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.describe())
def test_fisher_relevance_equals_dense_reference(rule, weight_gradient):
    rng = np.random.default_rng(1)
    encoder = FisherEncoder(_gmm(tiny_prior=True), pyramid=SpatialPyramid(), weight_gradient=weight_gradient,
                            chunk_rows=7)  # several chunks
    values = rng.normal(scale=2.0, size=(40, 4)).astype(np.float32)
    positions = rng.uniform(0, 0.5, size=(40, 2)).astype(np.float32)  # top-left quarter: empty cells too
    R = rng.normal(size=encoder.dim)
    z, groups = _fv_dense(encoder, values, positions)
    # the dense contributions sum to the encoder's unnormalised FV (Eq. 4.9)
    np.testing.assert_allclose(z.sum(0), encoder.encode_unnormalized(values, positions).ravel(), rtol=1e-4, atol=1e-4)
    ours, absorbed = fisher_relevance(encoder, values, positions, R, rule)
    expected = reference_redistribution(z, R, groups, rule)
    empty = [c for c in range(encoder.n_cells) if not any(len(groups[c * encoder.dim_per_cell + j]) for j in range(1))]
    orphan = sum(R[c * encoder.dim_per_cell:(c + 1) * encoder.dim_per_cell].sum() for c in empty)
    expected += orphan / len(values)  # relevance of empty cells goes to all descriptors
    # eps = 0 divides by sums of contributions that may nearly cancel: allow rounding at 1e-6 of the scale
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(ours.sum() + absorbed, R.sum(), rtol=1e-9, atol=1e-9)  # bookkeeping
    if rule.name in ("absz",) or (rule.name == "epsilon" and rule.eps == 0):
        assert abs(absorbed) < 1e-9


def test_fisher_relevance_without_pyramid_conserves_real_relevance():
    rng = np.random.default_rng(2)
    encoder = FisherEncoder(_gmm(k=8, d=6, seed=3), pyramid=None)
    values = rng.normal(scale=2.0, size=(300, 6)).astype(np.float32)
    R = rng.normal(size=encoder.dim)
    ours, absorbed = fisher_relevance(encoder, values, None, R, EncoderRule("epsilon", 0.0))
    assert ours.shape == (300,) and abs(ours.sum() - R.sum()) < 1e-8 * np.abs(R).sum() and abs(absorbed) < 1e-12 * np.abs(R).sum()


# --------------------------------------------------------------------------- BoW
@pytest.fixture(scope="module")
def vocab():
    rng = np.random.default_rng(4)
    return KMeansVocabulary(n_clusters=6, random_state=0).fit(rng.normal(size=(300, 5)).astype(np.float32))


@pytest.mark.parametrize("pooling", ["sum", "max", 3.0])
@pytest.mark.parametrize("kind", ["rankbow", "vq"])
@pytest.mark.parametrize("rule", RULES[:3] + RULES[4:], ids=lambda r: r.describe())
def test_bow_relevance_equals_dense_reference(vocab, kind, pooling, rule):
    rng = np.random.default_rng(5)
    cls = RankBowEncoder if kind == "rankbow" else HardVqEncoder
    encoder = cls(vocab, pyramid=SpatialPyramid(), pooling=pooling)
    values = rng.normal(size=(30, 5)).astype(np.float32)
    positions = rng.uniform(0, 1, size=(30, 2)).astype(np.float32)
    R = rng.normal(size=encoder.dim)
    mapped = encoder.mapping(values).astype(np.float64)
    z = np.zeros((30, encoder.dim))
    groups = []
    for c, mask in enumerate(encoder.cell_masks(positions, 30)):
        m = mapped[mask]
        if pooling == "sum":
            zc = m / len(m)
        elif pooling == "max":
            top = m.max(0)
            zc = ((m == top) & (top > 0)) / np.maximum(((m == top) & (top > 0)).sum(0), 1)
        else:
            zc = m**pooling / len(m)
        z[np.ix_(mask, np.arange(c * 6, (c + 1) * 6))] = zc
        groups += [np.flatnonzero(mask)] * 6
    ours, absorbed = bow_relevance(encoder, values, positions, R, rule)
    np.testing.assert_allclose(ours, reference_redistribution(z, R, groups, rule), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.sum() + absorbed, R.sum(), rtol=1e-9, atol=1e-12)


def test_bow_forward_pooling_matches_the_contributions(vocab):
    """z_ld of sum pooling add up to the encoder's pooled values: LRP shares what the forward pass summed."""
    rng = np.random.default_rng(6)
    encoder = RankBowEncoder(vocab, pyramid=None)
    values = rng.normal(size=(25, 5)).astype(np.float32)
    np.testing.assert_allclose((encoder.mapping(values) / 25).sum(0), encoder.encode_unnormalized(values)[0], rtol=1e-6)


# --------------------------------------------------------------------------- SVM layer
def _two_class(rng, n=60, d=8):
    X = rng.random((n, d)) * (rng.random((n, d)) < 0.7)
    y = np.where(rng.random(n) < 0.5, 1, -1)
    X[y == 1, :3] += 0.5 * rng.random((int((y == 1).sum()), 3))
    X /= X.sum(1, keepdims=True)
    return X, y


@pytest.mark.parametrize("name", ["linear", "hik", "additive-chi2", "sum"])
def test_exact_svm_relevance_sums_to_score_minus_bias(name):
    rng = np.random.default_rng(7)
    X, y = _two_class(rng)
    kernel = (KernelSum([make_kernel("hik"), make_kernel("additive-chi2")], [slice(0, 4), slice(4, 8)], [0.7, 0.3])
              if name == "sum" else make_kernel(name))
    machine = BinarySvm().fit(X, y, kernel, C=1.0)
    for x in X[:5]:
        R = decomposable_relevance(machine, x)
        f = machine.decision_function(x[None])[0]
        np.testing.assert_allclose(R.sum() + machine.intercept_, f, rtol=1e-10, atol=1e-10)
        if name == "hik":  # Eq. A.3 written out
            sv = machine.support_vectors_.astype(np.float64)
            np.testing.assert_allclose(R, machine.dual_coef_ @ np.minimum(sv, x), rtol=1e-10)
        if name == "linear":
            np.testing.assert_allclose(R, machine.coef_ * x, rtol=1e-12)


def test_bias_options_keep_the_books():
    rng = np.random.default_rng(8)
    X, y = _two_class(rng)
    machine = BinarySvm().fit(X, y, "linear", C=1.0)
    x = X[0]
    f = machine.decision_function(x[None])[0]
    for mode in ("keep", "uniform", "weighted"):
        result = explain_svm(machine, x, bias=mode)
        assert abs(result.relevance.sum() + result.bias_relevance - f) < 1e-10
    uniform = explain_svm(machine, x, bias="uniform")
    np.testing.assert_allclose(uniform.relevance, machine.coef_ * x + machine.intercept_ / len(x), rtol=1e-12)
    R, rest = distribute_bias(np.zeros(len(x)), 2.0, "weighted", machine)
    np.testing.assert_allclose(R, machine.coef_ / np.linalg.norm(machine.coef_) * 2.0)  # Eq. 2.74
    hik = BinarySvm().fit(X, y, "hik", C=1.0)
    with pytest.raises(Exception, match="linear"):
        explain_svm(hik, x, bias="weighted")


# --------------------------------------------------------------------------- Taylor
@pytest.mark.parametrize("name", ["chi2", "rbf"])
def test_model_gradient_matches_finite_differences(name):
    rng = np.random.default_rng(9)
    X, y = _two_class(rng)
    machine = BinarySvm().fit(X, y, name, C=1.0)
    x = X[3] + 0.01  # strictly positive: the chi2 terms are smooth there
    grad = model_gradient(machine, x)
    h = 1e-6
    for d in range(len(x)):
        e = np.zeros_like(x)
        e[d] = h
        numeric = (machine.decision_function((x + e)[None])[0] - machine.decision_function((x - e)[None])[0]) / (2 * h)
        assert abs(grad[d] - numeric) < 1e-5 * max(1.0, abs(numeric)), (d, grad[d], numeric)


@pytest.mark.parametrize("name", ["chi2", "rbf"])
def test_root_point_is_on_the_boundary_and_nearest(name):
    rng = np.random.default_rng(10)
    X, y = _two_class(rng, n=80)
    machine = BinarySvm().fit(X, y, name, C=10.0)
    f = machine.decision_function(X)
    for i in range(6):
        x = X[i]
        result = taylor_relevance(machine, x, reference=X)
        root = result.root_point
        assert abs(machine.decision_function(root[None])[0]) <= 1e-5
        assert result.bias_relevance == pytest.approx(machine.decision_function(root[None])[0], abs=1e-12)
        # no root on any searched segment is nearer (checked by a fine scan of every segment)
        opposite = X[np.sign(f) != np.sign(f[i])]
        g = np.linspace(0, 1, 401)[:, None]
        best = np.inf
        for s in opposite:
            pts = g * x + (1 - g) * s
            vals = machine.decision_function(pts)
            cross = np.flatnonzero(np.sign(vals[:-1]) != np.sign(vals[1:]))
            if len(cross):
                best = min(best, np.linalg.norm(pts[cross[-1] + 1] - x))
        assert np.linalg.norm(root - x) <= best + 1e-2 * np.linalg.norm(x)


def test_no_opposite_reference_is_flagged_and_spread():
    rng = np.random.default_rng(11)
    X, y = _positive_two_class(rng)
    machine = BinarySvm().fit(X, y, "chi2", C=1.0)
    f = machine.decision_function(X)
    same = X[np.sign(f) == np.sign(f[0])]
    root = find_root_point(machine, X[0], same[1:])
    assert not root.found
    for method in ("path", "first-order"):
        result = taylor_relevance(machine, X[0], reference=same[1:], method=method, path_tolerance=1e-8)
        assert result.bias_relevance == 0.0
        # f(x~) of the least-|f| reference is spread evenly: the relevance is the decomposition from that
        # reference plus f(x~) / D in every dimension (the decomposition checked against an independent
        # reference by the tests below)
        start = same[1:][np.argmin(np.abs(machine.decision_function(same[1:])))]
        np.testing.assert_allclose(result.root_point, start)
        unspread = result.relevance - machine.decision_function(start[None])[0] / X.shape[1]
        if method == "path":
            np.testing.assert_allclose(unspread, _reference_path_relevance(machine, X[0], start), rtol=1e-4,
                                       atol=1e-6 * np.abs(unspread).max())


# --------------------------------------------------------------------------- path-integrated decomposition
def _positive_two_class(rng, n=60, d=8):
    """Strictly positive histograms: exp-chi2 is smooth there, so finite differences apply everywhere."""
    X, y = _two_class(rng, n, d)
    X = X + 0.02
    return X / X.sum(1, keepdims=True), y


def _fd_gradients(machine, points, h=1e-6):
    """df/dx by central differences of the decision function at every row of points (m, D) -> (m, D)."""
    m, d = points.shape
    steps = np.eye(d) * h
    shifted = np.concatenate([points[:, None, :] + steps, points[:, None, :] - steps], axis=1).reshape(-1, d)
    f = machine.decision_function(shifted).reshape(m, 2, d)
    return (f[:, 0] - f[:, 1]) / (2 * h)


def _reference_path_relevance(machine, x, start, n_steps=2000):
    """(x - start)_d times the mean of df/dx_d on the segment: composite Simpson over n_steps intervals of
    finite-difference gradients, a brute-force reference independent of the kernels' gradient code."""
    t = np.linspace(0.0, 1.0, n_steps + 1)
    w = np.ones(n_steps + 1)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    w /= w.sum()
    grads = _fd_gradients(machine, start + t[:, None] * (x - start))
    return (x - start) * (w @ grads)


@pytest.mark.parametrize("name", ["chi2", "rbf"])
def test_path_relevance_matches_a_brute_force_path_integral(name):
    """Every dimension's relevance equals the path integral of finite-difference gradients (2000
    Simpson intervals) along the same segment, and the residual is within the tolerance asked for."""
    rng = np.random.default_rng(15)
    X, y = _positive_two_class(rng)
    machine = BinarySvm().fit(X, y, name, C=10.0)
    for i in range(4):
        x = X[i]
        result = taylor_relevance(machine, x, reference=X, method="path", path_tolerance=1e-6)
        reference = _reference_path_relevance(machine, x, result.root_point)
        np.testing.assert_allclose(result.relevance, reference, rtol=1e-4, atol=1e-6 * np.abs(reference).max())
        # the residual against a bound, from f itself: sum R = f(x) - f(x~) up to the tolerance
        f_x, f_root = machine.decision_function(np.stack([x, result.root_point]))
        assert abs(f_x - f_root - result.relevance.sum()) <= 1e-6 * abs(f_x)


@pytest.mark.parametrize("name", ["chi2", "rbf"])
def test_first_order_relevance_is_the_gradient_at_the_root(name):
    """The thesis' first-order terms: (x - x~) times the finite-difference gradient at x~ (Eq. 2.76)."""
    rng = np.random.default_rng(16)
    X, y = _positive_two_class(rng)
    machine = BinarySvm().fit(X, y, name, C=10.0)
    x = X[1]
    result = taylor_relevance(machine, x, reference=X, method="first-order")
    reference = (x - result.root_point) * _fd_gradients(machine, result.root_point[None])[0]
    np.testing.assert_allclose(result.relevance, reference, rtol=1e-4, atol=1e-6 * np.abs(reference).max())


@pytest.mark.parametrize("name", ["chi2", "rbf"])
def test_path_residual_shrinks_as_nodes_grow(name):
    """|f(x) - f(x~) - sum R| with f from the decision function: Gauss-Legendre error falls with the node
    count, far below the first-order remainder, and the adaptive default stops within its tolerance."""
    rng = np.random.default_rng(17)
    X, y = _positive_two_class(rng)
    machine = BinarySvm().fit(X, y, name, C=10.0)
    for i in range(3):
        x = X[i]
        first = taylor_relevance(machine, x, reference=X, method="first-order")
        f_x, f_root = machine.decision_function(np.stack([x, first.root_point]))
        errors = [abs(f_x - f_root - path_integrated_relevance(machine, x, first.root_point, n).sum())
                  for n in (1, 2, 4, 8, 16)]
        floor = 1e-12 * max(1.0, abs(f_x))  # where rounding, not the quadrature, is left
        assert all(b <= a or b <= floor for a, b in zip(errors[1:], errors[2:])), errors
        assert errors[-1] <= 1e-6 * errors[0] + 1e-12, errors
        assert errors[-1] < 1e-3 * abs(first.residual), (errors, first.residual)
        adaptive = taylor_relevance(machine, x, reference=X)  # the default: path, tolerance 1e-3
        assert adaptive.n_nodes >= 4 and adaptive.method == "path"
        assert abs(f_x - f_root - adaptive.relevance.sum()) <= 1e-3 * abs(f_x)


def test_batched_expansion_gradient_equals_the_per_point_gradient():
    """One Gram evaluation for all points (RBF, exp-chi2, and a sum of both over blocks) gives what the
    per-point gradient of Eqs. A.5 / A.7 gives."""
    rng = np.random.default_rng(18)
    sv = rng.random((30, 8)) * (rng.random((30, 8)) < 0.6)
    coef = rng.normal(size=30)
    points = rng.random((5, 8)) * (rng.random((5, 8)) < 0.6)
    kernels = [make_kernel("rbf").fit(sv), make_kernel("chi2").fit(sv),
               KernelSum([make_kernel("chi2").fit(sv[:, :4]), make_kernel("rbf").fit(sv[:, 4:])],
                         [slice(0, 4), slice(4, 8)], [0.4, 0.6])]
    for kernel in kernels:
        batched = kernel.expansion_gradient(sv, coef, points)
        for p, row in zip(points, batched):
            np.testing.assert_allclose(row, coef @ kernel.gradient(sv, p), rtol=1e-10, atol=1e-12)


def test_taylor_options_are_checked():
    rng = np.random.default_rng(19)
    X, y = _positive_two_class(rng)
    machine = BinarySvm().fit(X, y, "rbf", C=1.0)
    with pytest.raises(BowlrpError, match="unknown Taylor method"):
        taylor_relevance(machine, X[0], method="second-order")
    with pytest.raises(BowlrpError, match="positive"):
        taylor_relevance(machine, X[0], path_tolerance=0.0)


# --------------------------------------------------------------------------- pixels
def _descriptor_set(rng, n=40, shape=(37, 53), angles=False):
    centers = np.stack([rng.integers(0, shape[1], n), rng.integers(0, shape[0], n)], 1).astype(np.float32)
    bins = rng.choice([2, 3, 4], size=n).astype(np.float32)
    return DescriptorSet(values=np.zeros((n, 128), np.float32), centers=centers, bin_sizes=bins,
                         scales=np.zeros(n, np.int16), work_shape=shape, image_shape=shape,
                         angles=rng.uniform(0, 6.28, n).astype(np.float32) if angles else None)


@pytest.mark.parametrize("angles", [False, True])
def test_flat_rule_equals_a_loop_over_descriptors(angles):
    rng = np.random.default_rng(12)
    ds = _descriptor_set(rng, angles=angles)
    R = rng.normal(size=len(ds))
    expected = np.zeros(ds.work_shape)
    yy, xx = np.mgrid[0:ds.work_shape[0], 0:ds.work_shape[1]]
    for (x0, y0, x1, y1), r in zip(ds.support_boxes(), R):
        inside = (xx >= x0 - 1e-4) & (xx <= x1 + 1e-4) & (yy >= y0 - 1e-4) & (yy <= y1 + 1e-4)
        expected[inside] += r / inside.sum()
    np.testing.assert_allclose(flat_rule_map(ds, R), expected, atol=1e-10)
    assert abs(flat_rule_map(ds, R).sum() - R.sum()) < 1e-10


@pytest.mark.parametrize("shape", [((300, 451), (240, 361)), ((480, 640), (480, 640)), ((97, 131), (40, 54))])
def test_area_weights_are_opencvs_inter_area(shape):
    (rows, cols), (wr, wc) = shape
    rng = np.random.default_rng(13)
    image = rng.random((rows, cols)).astype(np.float32)
    work = cv2.resize(image, (wc, wr), interpolation=cv2.INTER_AREA)
    ours = area_weights(rows, wr) @ image.astype(np.float64) @ area_weights(cols, wc).T
    np.testing.assert_allclose(ours, work, atol=1e-5)
    R = rng.normal(size=(wr, wc))
    back = to_original(R, (rows, cols))
    assert back.shape == (rows, cols) and abs(back.sum() - R.sum()) < 1e-9


def test_pixel_relevance_and_frames_in_original_coordinates():
    rng = np.random.default_rng(14)
    ds = _descriptor_set(rng, shape=(40, 60))
    ds.image_shape = (80, 120)  # the work image is the original halved
    R = rng.normal(size=len(ds))
    full = pixel_relevance(ds, R)
    assert full.shape == (80, 120) and abs(full.sum() - R.sum()) < 1e-9
    frames = original_frames(ds)
    np.testing.assert_allclose(frames[:, 0], ds.centers[:, 0] * 2 + 0.5)
    np.testing.assert_allclose(frames[:, 2], ds.bin_sizes * 2)


# --------------------------------------------------------------------------- depth "bins" (Appendix D.1)
@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.describe())
def test_projection_relevance_equals_dense_reference(rule):
    from bowlrp.encoding import PcaProjection
    from bowlrp.lrp.projection import projection_relevance

    rng = np.random.default_rng(15)
    projection = PcaProjection(n_components=5).fit(rng.normal(size=(200, 12)).astype(np.float32))
    raw = rng.normal(size=(9, 12)).astype(np.float32)
    raw[0] = projection.mean_  # a descriptor with no contribution at all: the uniform fallback
    R = rng.normal(size=(9, 5))
    ours, absorbed = projection_relevance(projection, raw, R, rule)
    c = raw.astype(np.float64) - projection.mean_
    P = projection.components_.astype(np.float64)
    expected = np.zeros((9, 12))
    for i in range(9):
        z = P * c[i][None, :]  # (5, 12): z_ijr, reduced dimension r in rows
        expected[i] = reference_redistribution(z.T, R[i], [np.arange(12)] * 5, rule)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(ours.sum() + absorbed, R.sum(), rtol=1e-9)


def test_bin_rule_equals_a_loop_over_bins():
    from bowlrp.lrp.pixels import bin_rule_map

    rng = np.random.default_rng(16)
    for angles in (False, True):
        ds = _descriptor_set(rng, n=12, angles=angles)
        R = rng.normal(size=(12, 128))
        expected = np.zeros(ds.work_shape)
        yy, xx = np.mgrid[0:ds.work_shape[0], 0:ds.work_shape[1]]
        for i in range(12):
            B, t = float(ds.bin_sizes[i]), float(ds.angles[i])
            for by in range(4):
                for bx in range(4):
                    u, v = (bx - 1.5) * B, (by - 1.5) * B
                    cx = ds.centers[i, 0] + np.cos(t) * u - np.sin(t) * v
                    cy = ds.centers[i, 1] + np.sin(t) * u + np.cos(t) * v
                    half = B * (abs(np.cos(t)) + abs(np.sin(t))) - 1
                    inside = (np.abs(xx - cx) <= half + 1e-4) & (np.abs(yy - cy) <= half + 1e-4)
                    share = R[i, 8 * bx + 32 * by: 8 * bx + 32 * by + 8].sum()  # layout t + 8 bx + 32 by
                    if inside.any():
                        expected[inside] += share / inside.sum()
                    else:
                        expected[int(np.clip(np.rint(cy), 0, ds.work_shape[0] - 1)),
                                 int(np.clip(np.rint(cx), 0, ds.work_shape[1] - 1))] += share
        np.testing.assert_allclose(bin_rule_map(ds, R), expected, atol=1e-9)
