"""Kernels, SVM training and VOC AP against independent references (brute-force formulas,
finite differences, scikit-learn, a loop-by-loop port of the VOC devkit's AP code)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.svm import SVC

from bowlrp.errors import BowlrpError, DataError
from bowlrp.persistence import load_stages, save_stages
from bowlrp.svm import (
    BinarySvm,
    Kernel,
    KernelSum,
    OneVsRestSvm,
    make_kernel,
    mean_ap,
    voc_ap_11point,
    voc_ap_area,
)
from bowlrp.svm import kernels as kernels_module

# --------------------------------------------------------------------------- brute-force references


def ref_kernel(name: str, x: np.ndarray, y: np.ndarray, width: float | None = None) -> float:
    """One kernel value, straight from the formulas (Eq. A.1, A.2, A.4, A.6), one dimension at a time."""
    total = 0.0
    for a, b in zip(x.astype(float), y.astype(float)):
        if name == "linear":
            total += a * b
        elif name == "hik":
            total += min(a, b)
        elif name == "additive-chi2":
            total += 0.0 if a + b == 0 else 2 * a * b / (a + b)
        elif name == "chi2":
            total += 0.0 if a + b == 0 else (a - b) ** 2 / (a + b)
        elif name == "rbf":
            total += (a - b) ** 2
    if name == "chi2":
        return math.exp(-width * total)
    if name == "rbf":
        return math.exp(-total / width**2)
    return total


def ref_gram(name, X, Y, width=None):
    return np.array([[ref_kernel(name, x, y, width) for y in Y] for x in X])


def sparse_histograms(rng, n, d):
    """Non-negative rows with many exact zeros, so that 0/0 terms occur in chi-squared kernels."""
    H = rng.random((n, d)) * (rng.random((n, d)) < 0.5)
    H[:, 0] = 0.0  # a dimension that is zero everywhere
    return H


ALL = ["linear", "hik", "additive-chi2", "chi2", "rbf"]
WIDTH_PARAMS = {"chi2": {"gamma": 0.7}, "rbf": {"sigma": 1.3}}


def kernel_with_width(name):
    params = WIDTH_PARAMS.get(name, {})
    return make_kernel(name, **params), next(iter(params.values()), None)


# --------------------------------------------------------------------------- (1) Gram matrices


@pytest.mark.parametrize("name", ALL)
def test_gram_matches_brute_force_formula(name):
    rng = np.random.default_rng(1)
    X, Y = sparse_histograms(rng, 9, 6), sparse_histograms(rng, 7, 6)
    kernel, width = kernel_with_width(name)
    np.testing.assert_allclose(kernel.gram(X, Y), ref_gram(name, X, Y, width), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_gram_in_small_blocks_and_symmetric_path(name, monkeypatch):
    rng = np.random.default_rng(2)
    X = sparse_histograms(rng, 11, 5).astype(np.float32)
    kernel, width = kernel_with_width(name)
    monkeypatch.setattr(kernels_module, "BLOCK_BYTES", 8 * 5 * 3)  # 3 rows per block
    expected = ref_gram(name, X, X, width)
    np.testing.assert_allclose(kernel.gram(X, X), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(kernel.gram(X, X[::-1].copy()), expected[:, ::-1], rtol=1e-12, atol=1e-12)


def test_data_dependent_widths():
    rng = np.random.default_rng(3)
    X = sparse_histograms(rng, 12, 5)
    pairs = [(i, j) for i in range(12) for j in range(12) if i != j]
    # with gamma = -1 the chi2 kernel is exp(+distance), so its log is the chi-squared distance
    mean_chi2 = np.mean([math.log(ref_kernel("chi2", X[i], X[j], width=-1.0)) for i, j in pairs])
    assert make_kernel("chi2").fit(X).gamma_ == pytest.approx(1.0 / mean_chi2, rel=1e-12)
    mean_sq = np.mean([np.sum((X[i] - X[j]) ** 2) for i, j in pairs])
    assert make_kernel("rbf").fit(X).sigma_ ** 2 == pytest.approx(mean_sq, rel=1e-10)
    assert make_kernel("chi2", gamma=2.0).fit(X).gamma_ == 2.0


def test_unfitted_width_and_negative_histograms_are_refused():
    X = np.ones((3, 2))
    with pytest.raises(BowlrpError, match="fit"):
        make_kernel("chi2").gram(X, X)
    for name in ("hik", "additive-chi2", "chi2"):
        with pytest.raises(DataError, match="non-negative"):
            make_kernel(name, **WIDTH_PARAMS.get(name, {})).gram(X, -X)
    with pytest.raises(BowlrpError, match="unknown kernel"):
        make_kernel("poly")


# --------------------------------------------------------------------------- (2) per-dimension terms


@pytest.mark.parametrize("name", ["linear", "hik", "additive-chi2"])
def test_per_dimension_rows_sum_to_kernel_values(name):
    rng = np.random.default_rng(4)
    sv, x = sparse_histograms(rng, 8, 6), sparse_histograms(rng, 1, 6)[0]
    kernel = make_kernel(name)
    assert kernel.sum_decomposable
    terms = kernel.per_dimension(sv, x)
    assert terms.shape == (8, 6)
    np.testing.assert_allclose(terms.sum(1), ref_gram(name, sv, x[None])[:, 0], rtol=1e-12, atol=1e-12)
    for d in range(6):  # each column is k^(d) alone
        np.testing.assert_allclose(terms[:, d], ref_gram(name, sv[:, [d]], x[None, [d]])[:, 0], atol=1e-12)


@pytest.mark.parametrize("name", ["chi2", "rbf"])
def test_per_dimension_refused_for_non_decomposable(name):
    kernel, _ = kernel_with_width(name)
    assert not kernel.sum_decomposable
    with pytest.raises(BowlrpError, match="not sum-decomposable"):
        kernel.per_dimension(np.ones((2, 3)), np.ones(3))


# --------------------------------------------------------------------------- (3) gradients


@pytest.mark.parametrize("name", ALL)
def test_gradient_matches_central_differences(name):
    rng = np.random.default_rng(5)
    sv = 0.1 + rng.random((5, 4))
    x = 0.1 + rng.random(4)
    kernel, width = kernel_with_width(name)
    grad = kernel.gradient(sv, x)
    h = 1e-6
    numeric = np.empty_like(grad)
    for d in range(4):
        up, down = x.copy(), x.copy()
        up[d] += h
        down[d] -= h
        numeric[:, d] = (ref_gram(name, sv, up[None], width) - ref_gram(name, sv, down[None], width))[:, 0] / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- (5) kernel sums


def test_kernel_sum_is_weighted_sum_of_block_grams_and_round_trips():
    rng = np.random.default_rng(6)
    X, Y = sparse_histograms(rng, 6, 9), sparse_histograms(rng, 5, 9)
    blocks = [slice(0, 4), slice(4, 9)]
    ksum = KernelSum([make_kernel("hik"), make_kernel("chi2")], blocks, [0.3, 2.0]).fit(X)
    gamma = ksum.kernels[1].gamma_
    expected = 0.3 * ref_gram("hik", X[:, :4], Y[:, :4]) + 2.0 * ref_gram("chi2", X[:, 4:], Y[:, 4:], gamma)
    np.testing.assert_allclose(ksum.gram(X, Y), expected, rtol=1e-12)
    np.testing.assert_allclose(ksum.gram(X, X), 0.3 * ref_gram("hik", X[:, :4], X[:, :4])
                               + 2.0 * ref_gram("chi2", X[:, 4:], X[:, 4:], gamma), rtol=1e-12)
    assert not ksum.sum_decomposable
    clone = Kernel.from_state(*ksum.get_state())
    np.testing.assert_array_equal(clone.gram(X, Y), ksum.gram(X, Y))

    decomposable = KernelSum([make_kernel("linear"), make_kernel("additive-chi2")], blocks, [1.5, 0.5])
    terms = decomposable.per_dimension(X, Y[0])
    np.testing.assert_allclose(terms.sum(1), decomposable.gram(X, Y[:1])[:, 0], rtol=1e-12)
    grad = decomposable.gradient(X, Y[0])
    np.testing.assert_allclose(grad[:, :4], 1.5 * X[:, :4])


# --------------------------------------------------------------------------- (4) binary SVM vs sklearn


def two_class_data(rng, n, d):
    """Non-negative float32-representable features whose first dimensions carry the label."""
    y = np.where(rng.random(n) < 0.4, 1, -1)
    X = rng.random((n, d)) * (rng.random((n, d)) < 0.7)
    X[y == 1, :3] += 0.5 * rng.random((int((y == 1).sum()), 3))
    return X.astype(np.float32).astype(np.float64), y


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_binary_svm_equals_sklearn_precomputed(name, class_weight):
    rng = np.random.default_rng(7)
    X, y = two_class_data(rng, 60, 8)
    Xt, yt = two_class_data(rng, 25, 8)
    kernel, width = kernel_with_width(name)
    model = BinarySvm().fit(X, y, kernel, C=2.0, class_weight=class_weight)

    K_train, K_test = ref_gram(name, X, X, width), ref_gram(name, Xt, X, width)
    svc = SVC(kernel="precomputed", C=2.0, class_weight=class_weight).fit(K_train, y)
    scores = model.decision_function(Xt)
    np.testing.assert_allclose(scores, svc.decision_function(K_test), rtol=1e-7, atol=1e-7)
    assert np.array_equal(scores > 0, svc.predict(K_test) == 1)  # f > 0 means the +1 class

    # f(x) = b + sum_i dual_coef_i k(sv_i, x), rebuilt by hand from the stored pieces
    assert np.all(np.sign(model.dual_coef_) == y[svc.support_])  # dual_coef_ = alpha_i y_i
    if name == "linear":  # a linear machine keeps w = sum_i dual_coef_i sv_i only (Eq. A.1)
        assert model.support_vectors_ is None
        support_vectors = X[svc.support_]
    else:
        support_vectors = model.support_vectors_
        assert support_vectors.dtype == np.float32 and model.dual_coef_.shape == (support_vectors.shape[0],)
    by_hand = model.intercept_ + ref_gram(name, Xt, support_vectors, width) @ model.dual_coef_
    np.testing.assert_allclose(scores, by_hand, rtol=1e-7, atol=1e-7)


def test_linear_binary_svm_equals_sklearn_linear_and_saves_only_w(tmp_path):
    rng = np.random.default_rng(8)
    X, y = two_class_data(rng, 70, 10)
    Xt, _ = two_class_data(rng, 20, 10)
    model = BinarySvm().fit(X, y, "linear", C=0.5)
    svc = SVC(kernel="linear", C=0.5).fit(X, y)
    np.testing.assert_allclose(model.decision_function(Xt), svc.decision_function(Xt), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.coef_, model.dual_coef_ @ X[svc.support_], rtol=1e-10)  # Eq. A.1
    meta, arrays = model.get_state()
    assert set(arrays) == {"coef"}
    save_stages(tmp_path, meta, arrays)
    loaded = BinarySvm.from_state(*load_stages(tmp_path))
    np.testing.assert_array_equal(loaded.decision_function(Xt), model.decision_function(Xt))


def test_sum_of_linear_kernels_is_scored_and_saved_as_one_w():
    rng = np.random.default_rng(10)
    X, y = two_class_data(rng, 50, 6)
    Xt, _ = two_class_data(rng, 15, 6)
    blocks, weights = [slice(0, 4), slice(2, 6)], [0.25, 3.0]  # overlapping blocks on purpose
    ksum = KernelSum([make_kernel("linear"), make_kernel("linear")], blocks, weights)
    model = BinarySvm().fit(X, y, ksum, C=1.0)
    gram = lambda A, B: 0.25 * A[:, :4] @ B[:, :4].T + 3.0 * A[:, 2:] @ B[:, 2:].T  # noqa: E731
    svc = SVC(kernel="precomputed", C=1.0).fit(gram(X, X), y)
    assert model.is_linear
    np.testing.assert_allclose(model.decision_function(Xt), svc.decision_function(gram(Xt, X)), rtol=1e-7, atol=1e-7)
    assert set(model.get_state()[1]) == {"coef"}


def test_binary_svm_precomputed_gram_and_missing_class():
    rng = np.random.default_rng(9)
    X, y = two_class_data(rng, 40, 5)
    kernel = make_kernel("hik")
    a = BinarySvm().fit(X, y, kernel, C=1.0)
    b = BinarySvm().fit(X, y, kernel, C=1.0, gram=ref_gram("hik", X, X))
    np.testing.assert_allclose(a.decision_function(X), b.decision_function(X), rtol=1e-9, atol=1e-9)
    with pytest.raises(BowlrpError, match="no positive"):
        BinarySvm().fit(X, -np.ones(40), "linear")


# --------------------------------------------------------------------------- (6) VOC average precision


def devkit_ranking(scores, labels):
    """Port of VOCevalcls: stable descending sort, tp/fp cumulated, difficult items counted as neither."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    npos = sum(1 for v in labels if v > 0)
    tp = fp = 0
    prec, rec_num = [], []
    for i in order:
        tp += labels[i] > 0
        fp += labels[i] < 0
        prec.append(tp / (tp + fp) if tp + fp else float("nan"))
        rec_num.append(tp)
    return prec, rec_num, npos


def ref_ap_11point(scores, labels):
    prec, rec_num, npos = devkit_ranking(scores, labels)
    ap = 0.0
    for k in range(11):  # recall >= k/10, compared exactly in integers
        candidates = [p for p, t in zip(prec, rec_num) if 10 * t >= k * npos and not math.isnan(p)]
        ap += max(candidates) / 11 if candidates else 0.0
    return ap


def ref_ap_area(scores, labels):
    prec, rec_num, npos = devkit_ranking(scores, labels)
    mrec = [0.0] + [t / npos for t in rec_num] + [1.0]
    mpre = [0.0] + prec + [0.0]
    for i in range(len(mpre) - 2, -1, -1):  # MATLAB max() skips NaN
        mpre[i] = mpre[i + 1] if math.isnan(mpre[i]) else max(mpre[i], mpre[i + 1])
    return sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


@pytest.mark.parametrize("seed", range(25))
def test_ap_matches_devkit_port(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    labels = rng.choice([1, -1, -1, 0], size=n)
    labels[0] = 1
    scores = np.round(rng.normal(size=n), 1)  # rounding creates ties
    assert voc_ap_11point(scores, labels) == pytest.approx(ref_ap_11point(list(scores), list(labels)), abs=1e-12)
    assert voc_ap_area(scores, labels) == pytest.approx(ref_ap_area(list(scores), list(labels)), abs=1e-12)


def test_ap_on_crafted_rankings():
    perfect = (np.array([3.0, 2.0, 1.0, 0.0]), np.array([1, 1, -1, -1]))
    assert voc_ap_11point(*perfect) == 1.0 and voc_ap_area(*perfect) == 1.0
    worst = (np.array([1.0, 0.0]), np.array([-1, 1]))
    assert voc_ap_11point(*worst) == pytest.approx(0.5) and voc_ap_area(*worst) == pytest.approx(0.5)
    # ranking +, -, +: precision 1 up to recall 1/2, then 2/3
    mixed = (np.array([3.0, 2.0, 1.0]), np.array([1, -1, 1]))
    assert voc_ap_11point(*mixed) == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)
    assert voc_ap_area(*mixed) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # "difficult" items are ignored wherever they are ranked
    with_difficult = (np.array([9.0, 3.0, 2.5, 2.0, 1.0]), np.array([0, 1, 0, -1, 1]))
    assert voc_ap_11point(*with_difficult) == pytest.approx(voc_ap_11point(*mixed))
    assert voc_ap_area(*with_difficult) == pytest.approx(voc_ap_area(*mixed))
    assert math.isnan(voc_ap_area(np.array([1.0, 2.0]), np.array([-1, 0])))


def test_mean_ap_averages_defined_classes():
    rng = np.random.default_rng(11)
    labels = rng.choice([1, -1, 0], size=(30, 3))
    labels[:, 2] = -1  # no positive: AP undefined, left out of the mean
    scores = rng.normal(size=(30, 3))
    per_class, mean = mean_ap(scores, labels, ["a", "b", "c"], method="area")
    assert per_class["a"] == pytest.approx(ref_ap_area(list(scores[:, 0]), list(labels[:, 0])))
    assert math.isnan(per_class["c"])
    assert mean == pytest.approx((per_class["a"] + per_class["b"]) / 2)


# --------------------------------------------------------------------------- (7) one-vs-rest


def multilabel_data(rng, n, d, n_classes=3):
    X = rng.random((n, d)) * (rng.random((n, d)) < 0.6)
    Y = -np.ones((n, n_classes), dtype=np.int8)
    for c in range(n_classes):
        pos = rng.random(n) < 0.3
        Y[pos, c] = 1
        X[pos, 2 * c:2 * c + 2] += 0.4 * rng.random((int(pos.sum()), 2))
    Y[rng.random((n, n_classes)) < 0.1] = 0  # difficult
    return X.astype(np.float32), Y


@pytest.mark.parametrize("kernel", ["linear", "chi2"])
def test_one_vs_rest_chooses_C_deterministically_and_round_trips(kernel, tmp_path):
    rng = np.random.default_rng(12)
    X, Y = multilabel_data(rng, 80, 8)
    Xt, _ = multilabel_data(rng, 20, 8)
    names = ["cat", "dog", "horse"]
    model = OneVsRestSvm(kernel=kernel, random_state=3).fit(X, Y, names)
    again = OneVsRestSvm(kernel=kernel, random_state=3, n_jobs=2).fit(X, Y, names)
    assert model.chosen_C_ == again.chosen_C_
    scores = model.decision_function(Xt)
    np.testing.assert_array_equal(scores, again.decision_function(Xt))

    grid = list(model.C_grid)
    for c in range(3):
        ap, acc = model.validation_ap_[c], model.validation_accuracy_[c]
        best = max((ap[C], acc[C]) for C in grid)  # AP first, sign accuracy breaks ties
        assert model.chosen_C_[c] == next(C for C in grid if (ap[C], acc[C]) == best)  # first best in grid order
        # the final machine is a refit on every labelled image of that class with the chosen C
        rows = Y[:, c] != 0
        ref = BinarySvm().fit(X[rows], Y[rows, c], model.kernel_, C=model.chosen_C_[c], class_weight="balanced")
        np.testing.assert_allclose(scores[:, c], ref.decision_function(Xt), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(scores[:, c], model.estimators_[c].decision_function(Xt), rtol=1e-9, atol=1e-9)

    save_stages(tmp_path, *model.get_state())
    loaded = OneVsRestSvm.from_state(*load_stages(tmp_path))
    assert loaded.class_names_ == names and loaded.chosen_C_ == model.chosen_C_
    np.testing.assert_array_equal(loaded.decision_function(Xt), scores)
    for c in range(3):
        np.testing.assert_allclose(loaded.estimators_[c].decision_function(Xt), scores[:, c], rtol=1e-9, atol=1e-9)


def test_one_vs_rest_fixed_C_and_class_without_positive():
    rng = np.random.default_rng(13)
    X, Y = multilabel_data(rng, 40, 6, n_classes=2)
    model = OneVsRestSvm(kernel="hik", C=3.0).fit(X, Y, ["a", "b"])
    assert model.chosen_C_ == [3.0, 3.0] and model.validation_ap_ == [None, None]
    Y[:, 1] = np.where(Y[:, 1] == 1, 0, Y[:, 1])
    with pytest.raises(BowlrpError, match="'b'.*no positive"):
        OneVsRestSvm(kernel="linear").fit(X, Y, ["a", "b"])


def test_sign_accuracy_and_summary_json():
    from bowlrp.svm.metrics import evaluation_summary, sign_accuracy

    scores = np.array([[2.0, -1.0], [-0.5, -2.0], [0.3, -0.1], [-1.0, 0.0]])
    labels = np.array([[1, -1], [-1, -1], [-1, 0], [1, -1]])
    assert sign_accuracy(scores[:, 0], labels[:, 0]) == 0.5  # rows 0, 1 right; 2, 3 wrong
    assert sign_accuracy(scores[:, 1], labels[:, 1]) == 1.0  # f = 0 counts as negative; label 0 ignored
    summary = evaluation_summary(scores, labels, ["a", "b"])
    assert summary["ap"]["b"] is None and summary["accuracy"]["b"] == 1.0  # no positive: AP undefined
    assert summary["map"] == summary["ap"]["a"]
    json.dumps(summary, allow_nan=False)
