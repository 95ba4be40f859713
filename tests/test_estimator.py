"""The scikit-learn estimator API of the BoW/FV pipeline (bowlrp.estimator), and train_model leaving out
classes it cannot train before any expensive stage.

``sklearn.utils.estimator_checks.check_estimator`` is not run: its checks fit numeric feature
matrices ``(n_samples, n_features)``, and these estimators take images (paths or arrays of any size)
and compute their features inside ``fit``. The contracts that apply are checked here instead.
Every fit is tiny (2 Gaussians, 16 PCA dims, two SIFT scales on a coarse grid): a few seconds.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

import bowlrp.pipeline as pipeline
from bowlrp.data import load_image, open_dataset
from bowlrp.errors import BowlrpError, SkipLog
from bowlrp.estimator import BowClassifier, FisherVectorClassifier
from bowlrp.model import load_model
from bowlrp.parallel import ParallelOptions
from bowlrp.pipeline import BowModel, PipelineConfig, train_model
from bowlrp.runs import evaluate

CLASSES = ["horse", "boat", "bicycle"]
TINY = dict(n_words=2, pca_dims=16, step=8, bin_sizes=(4, 8), max_descriptors=4000)


@pytest.fixture(scope="module")
def voc(small_toyvoc):
    ds = open_dataset(small_toyvoc, classes=CLASSES)
    train, test = ds.split("trainval"), ds.split("test")
    return ([s.path for s in train], np.stack([s.labels for s in train]),
            [s.path for s in test], np.stack([s.labels for s in test]), test)


@pytest.fixture(scope="module")
def fitted(voc):
    paths, labels = voc[0], voc[1]
    return FisherVectorClassifier(**TINY, C=1.0, class_names=CLASSES).fit(paths, labels)


def test_init_only_stores_parameters_and_set_params_round_trips():
    clf = FisherVectorClassifier(n_words=-3, kernel="nonsense", C=2.0)  # no validation in __init__ (sklearn's rule)
    params = clf.get_params()
    assert params["n_words"] == -3 and params["kernel"] == "nonsense" and params["C"] == 2.0
    assert "encoder" not in params
    assert set(params) == set(BowClassifier().get_params()) - {"encoder"}
    for name, value in params.items():
        assert getattr(clf, name) is value
    clf.set_params(n_words=8, C=0.5, random_state=3)
    assert clf.get_params() == {**params, "n_words": 8, "C": 0.5, "random_state": 3}
    assert BowClassifier(encoder="vq").set_params(encoder="rankbow").get_params()["encoder"] == "rankbow"
    with pytest.raises(BowlrpError, match="vocabulary needs at least one word"):
        clf.set_params(n_words=0).fit(["x.jpg", "y.jpg"], ["a", "b"])  # checked at fit, before any image is read
    with pytest.raises(ValueError):
        clf.set_params(no_such_parameter=1)


def test_clone_is_unfitted_with_equal_parameters(fitted):
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params()
    assert not hasattr(twin, "model_") and hasattr(fitted, "model_")


def test_fit_is_deterministic_for_a_seed(voc, fitted):
    paths, labels, test_paths = voc[0], voc[1], voc[2]
    again = clone(fitted).fit(paths, labels)
    np.testing.assert_array_equal(again.decision_function(test_paths[:6]), fitted.decision_function(test_paths[:6]))
    other = clone(fitted).set_params(random_state=1).fit(paths, labels)
    assert not np.array_equal(other.decision_function(test_paths[:6]), fitted.decision_function(test_paths[:6]))


def test_multilabel_predict_and_score_agree_with_the_evaluate_command(voc, fitted, tmp_path):
    test_paths, test_labels, test = voc[2], voc[3], voc[4]
    scores = fitted.decision_function(test_paths)
    assert scores.shape == (len(test_paths), 3)
    np.testing.assert_array_equal(fitted.predict(test_paths), (scores > 0).astype(int))
    assert list(fitted.classes_) == CLASSES and fitted.multilabel_
    fitted.save(tmp_path / "m")
    reference = evaluate(load_model(tmp_path / "m"), test, test_labels, SkipLog(), ParallelOptions(progress=False))
    assert fitted.score(test_paths, test_labels) == pytest.approx(reference["map"], abs=1e-12)
    # the same matrix in scikit-learn's {0, 1} form: difficult (0) images then count as negatives
    indicator = (test_labels == 1).astype(int)
    if not (test_labels == 0).any():
        assert fitted.score(test_paths, indicator) == pytest.approx(reference["map"], abs=1e-12)


def test_save_load_and_a_model_of_the_train_command(voc, fitted, tmp_path, tiny_fv_model):
    fitted.save(tmp_path / "m")
    back = FisherVectorClassifier.load(tmp_path / "m")
    assert back.get_params() == {**fitted.get_params(), "n_words": 2, "pca_dims": 16}
    np.testing.assert_array_equal(back.decision_function(voc[2][:4]), fitted.decision_function(voc[2][:4]))
    assert isinstance(load_model(tmp_path / "m"), BowModel)  # the commands read it as any model
    cli = BowClassifier.load(tiny_fv_model)  # written by train_model, as `bowlrp train` does
    assert list(cli.classes_) == ["horse", "boat"] and cli.multilabel_ and cli.encoder == "fisher"
    np.testing.assert_allclose(cli.decision_function(voc[2][:3]),
                               BowModel.load(tiny_fv_model).score_files(voc[2][:3], SkipLog())[0])


def test_explain_is_the_models_explanation(voc, fitted):
    path = voc[2][0]
    e = fitted.explain(path, "horse", eps=1.0)
    reference = fitted.model_.explain(load_image(path), "horse", fitted.model_.explanation_method(eps=1.0))
    np.testing.assert_array_equal(e.relevance, reference.relevance)
    assert e.score == pytest.approx(fitted.decision_function([path])[0, 0], abs=1e-9)
    assert abs(e.conservation_error) < 1e-6 * max(1.0, abs(e.score))
    assert e.settings["eps"] == 1.0
    with pytest.raises(BowlrpError, match="unknown class 'cat'"):
        fitted.explain(path, "cat")
    with pytest.raises(BowlrpError, match="does not take 'composite'"):
        fitted.explain(path, "horse", composite="epsilon")


def test_image_arrays_score_as_their_files(voc, fitted):
    paths = voc[2][:3]
    arrays = [load_image(p) for p in paths]
    np.testing.assert_array_equal(fitted.decision_function(arrays), fitted.decision_function(paths))
    uint8 = [np.round(a * 255).astype(np.uint8) for a in arrays]
    np.testing.assert_allclose(fitted.decision_function(uint8), fitted.decision_function(paths), atol=1e-6)


def test_single_label_multiclass_and_binary(voc):
    paths, labels = voc[0], voc[1]
    y = np.array(["horse" if r[0] == 1 else "boat" if r[1] == 1 else "none" for r in labels])
    clf = FisherVectorClassifier(**TINY, C=1.0).fit(paths, y)
    assert list(clf.classes_) == ["boat", "horse", "none"]
    scores = clf.decision_function(paths)
    assert scores.shape == (len(paths), 3)
    predicted = clf.predict(paths)
    np.testing.assert_array_equal(predicted, clf.classes_[scores.argmax(axis=1)])
    assert clf.score(paths, y) == pytest.approx(np.mean(predicted == y))

    binary = (labels[:, 0] == 1).astype(int)  # horse (1) or not (0)
    clf = FisherVectorClassifier(**TINY, C=1.0).fit(paths, binary)
    f = clf.decision_function(paths)
    assert f.shape == (len(paths),) and list(clf.model_.class_names) == ["1"]
    np.testing.assert_array_equal(clf.predict(paths), (f > 0).astype(int))
    assert clf.explain(paths[0], 1).score == pytest.approx(f[0], abs=1e-9)
    with pytest.raises(BowlrpError, match="no SVM of its own"):
        clf.explain(paths[0], 0)


def test_gridsearch_on_image_paths(voc):
    paths, labels = voc[0], voc[1]
    search = GridSearchCV(FisherVectorClassifier(**TINY, class_names=CLASSES), {"C": [0.1, 10.0]}, cv=2)
    search.fit(paths, labels)
    means = search.cv_results_["mean_test_score"]
    assert len(means) == 2 and np.all(np.isfinite(means)) and np.all((means >= 0) & (means <= 1))
    assert search.best_params_["C"] in (0.1, 10.0)
    assert search.best_estimator_.C == search.best_params_["C"] and hasattr(search.best_estimator_, "model_")
    assert 0 <= search.score(voc[2], voc[3]) <= 1


def _order_recorder(monkeypatch, caplog):
    """Record, when the vocabulary stage starts, which warnings had been logged by then."""
    seen = []
    real = pipeline.fit_features

    def recording(*args, **kwargs):
        seen.append([r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING])
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "fit_features", recording)
    return seen


def test_classes_without_positives_are_left_out_before_the_vocabulary(voc, monkeypatch, caplog):
    paths, labels = voc[0], voc[1].copy()
    labels[:, 2] = np.where(labels[:, 2] == 1, -1, labels[:, 2])  # bicycle: no positive left
    seen = _order_recorder(monkeypatch, caplog)
    with caplog.at_level(logging.WARNING):
        model = train_model(PipelineConfig(**TINY, C=1.0), paths, labels, CLASSES,
                            SkipLog(), ParallelOptions(progress=False))
    note = "no positive training image for bicycle; those classes are left out"
    assert seen and note in seen[0]  # said before the vocabulary was fitted
    assert model.class_names == ["horse", "boat"] and model.training["left_out"] == ["bicycle"]

    seen.clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        clf = FisherVectorClassifier(**TINY, C=1.0, class_names=CLASSES).fit(paths, labels)
    assert seen and note in seen[0]
    assert clf.left_out_ == {"bicycle": -1.0} and list(clf.classes_) == CLASSES
    scores = clf.decision_function(paths[:3])
    assert scores.shape == (3, 3) and np.all(scores[:, 2] == -1.0)
    with pytest.raises(BowlrpError, match="left out of training"):
        clf.explain(paths[0], "bicycle")

    with pytest.raises(BowlrpError, match="no class can be trained"):
        train_model(PipelineConfig(**TINY), paths, -np.ones_like(labels), CLASSES, SkipLog())
