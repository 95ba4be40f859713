"""The BoW / Fisher-vector pipeline as scikit-learn estimators: ``fit(images, labels)``, ``predict``,
``decision_function``, ``score``, ``get_params`` / ``set_params``, :func:`sklearn.base.clone`,
:class:`~sklearn.model_selection.GridSearchCV` on lists of image paths, and ``explain`` as a method.

>>> from bowlrp.estimator import FisherVectorClassifier
>>> clf = FisherVectorClassifier(n_words=64, C=1.0).fit(paths, labels)        # doctest: +SKIP
>>> clf.predict(test_paths); clf.score(test_paths, test_labels)              # doctest: +SKIP
>>> clf.explain(test_paths[0], "horse", eps=1.0).relevance                   # doctest: +SKIP

The estimators wrap :func:`bowlrp.pipeline.train_model` and :class:`bowlrp.pipeline.BowModel`
(``model_`` after fitting), so a fitted estimator is a model like any ``bowlrp train`` writes:
:meth:`BowClassifier.save` writes the usual model directory and :meth:`BowClassifier.load` /
:meth:`BowClassifier.from_model` open one, whoever wrote it.

Inputs
------
``images`` is a sequence of image file paths (str or Path) or of image arrays ((H, W) or (H, W, 3),
uint8 or float in [0, 1]; :func:`bowlrp.data.images.image_of`), mixed if need be. A list is what
scikit-learn's splitters index, so ``GridSearchCV(...).fit(paths, labels)`` works as it is.
An image that cannot be used is an error naming it (an estimator's rows must line up with the
labels), not a skip as in the dataset commands.

``labels`` is either

* 1-D, one class per image (ints or strings): **single-label**. ``classes_`` are the sorted distinct
  labels; two classes train one SVM (``decision_function`` is ``(n,)``, positive for ``classes_[1]``,
  as scikit-learn's binary classifiers), more train one SVM per class, one-vs-rest
  (``decision_function`` ``(n, n_classes)``, ``predict`` its argmax). ``score``: accuracy.
* 2-D, an indicator matrix ``(n, n_classes)``: **multi-label**, the VOC case. In {0, 1}
  (scikit-learn's indicator: 1 = present, 0 = absent) or, as soon as it holds a -1, in {1, -1, 0}
  (the VOC convention of :func:`bowlrp.runs.labelled_split`: 1 present, -1 absent, 0 difficult,
  left out of that class' training and of its AP). ``classes_`` are ``class_names`` (default
  ``0..n_classes-1``). ``predict`` gives the {0, 1} matrix of ``f(x) > 0``; ``score`` is the mean
  VOC 2007 11-point average precision over the classes with a positive image (``evaluate``'s mAP).

A class without a positive (or without a negative) training image cannot have an SVM. It is left
out before any expensive stage, with the note ``bowlrp train`` prints (a ``WARNING`` of the
``bowlrp.estimator`` logger), named in ``left_out_``, and — as scikit-learn's ``OneVsRestClassifier``
does for a label present in no or in all training examples — keeps a constant column in
``decision_function``: -1 (never predicted) or +1 (always predicted), so the outputs keep lining up
with the label matrix (a cross-validation fold may lack a rare class). It cannot be explained.

Why not ``sklearn.utils.estimator_checks.check_estimator``: its checks feed numeric 2-D arrays of
features ``(n_samples, n_features)``; these estimators take images (paths or arrays of any size),
whose descriptors, vocabulary and Fisher vectors are computed inside ``fit``. The contracts that do
apply are tested in ``tests/test_estimator.py``: parameters only stored by ``__init__`` and returned
by ``get_params``, ``set_params`` round trips, ``clone``, determinism for a ``random_state``, and
``GridSearchCV`` on image paths.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .data.images import image_of
from .errors import BowlrpError, DataError, SkipLog
from .explanation import Explanation
from .model import method_for
from .parallel import ParallelOptions
from .pipeline import BowModel, PipelineConfig, train_model
from .svm import trainable_classes
from .svm.metrics import mean_ap

log = logging.getLogger(__name__)

_RECORD = "estimator"  # the key of model.json's "training" mapping that holds what the estimator adds


class BowClassifier(ClassifierMixin, BaseEstimator):
    """Dense SIFT → (PCA) → Fisher vector or BoW → kernel SVMs, fitted on images (see the module docstring).

    Parameters
    ----------
    encoder : {"fisher", "rankbow", "vq"}
        Improved Fisher vector, rank-mapped soft BoW (p = 2, n = 4) or hard vector quantisation.
    n_words : int or None
        GMM components (fisher) or k-means words (BoW); None: 256 for fisher, 128 for BoW.
    pca_dims : int or None
        Descriptor PCA dimensions; None: 80 for fisher, no PCA for BoW; 0: no PCA.
    kernel : {"linear", "hik", "chi2", "additive-chi2", "rbf"}
    C : float or None
        SVM regularisation for every class; None chooses it per class on a validation split
        (:class:`bowlrp.svm.OneVsRestSvm`).
    pyramid : bool
        The 1×1 + 2×2 + 3×1 spatial pyramid.
    bin_sizes, step, max_rows, sift_backend, sift_orientation : dense SIFT parameters
        (:class:`bowlrp.pipeline.PipelineConfig`).
    per_scale : bool
        One vocabulary and kernel per SIFT scale, kernels summed (Eq. 2.67).
    pooling : "sum", "max" or float
        BoW pooling (p-means exponent as a float).
    max_descriptors : int
        Size of the descriptor sample the PCA and vocabulary are fitted on.
    class_names : sequence of str or None
        Names of the label matrix's columns (multi-label); ignored for 1-D labels.
    random_state : int
        Seed of every random choice (the model's ``seed``): same value, same model.
    n_jobs : int
        Worker processes for descriptor sampling and encoding (-1: every core).

    Attributes
    ----------
    model_ : BowModel
        The fitted pipeline, one SVM per usable class (one in all for two single-label classes).
    classes_ : ndarray
        The class labels (single-label) or the label matrix's column names (multi-label).
    multilabel_ : bool
    left_out_ : dict
        ``{class: +1 or -1}``: the classes left out of training and the constant they score.
    """

    def __init__(self, encoder: str = "fisher", n_words: int | None = None, pca_dims: int | None = None,
                 kernel: str = "linear", C: float | None = None, pyramid: bool = True,
                 bin_sizes: Sequence[int] = (4, 6, 8, 10), step: int = 3, max_rows: int = 480,
                 sift_backend: str = "auto", sift_orientation: str = "upright", per_scale: bool = False,
                 pooling: str | float = "sum", max_descriptors: int = 200_000,
                 class_names: Sequence[str] | None = None, random_state: int = 0, n_jobs: int = 1):
        self.encoder = encoder
        self.n_words = n_words
        self.pca_dims = pca_dims
        self.kernel = kernel
        self.C = C
        self.pyramid = pyramid
        self.bin_sizes = bin_sizes
        self.step = step
        self.max_rows = max_rows
        self.sift_backend = sift_backend
        self.sift_orientation = sift_orientation
        self.per_scale = per_scale
        self.pooling = pooling
        self.max_descriptors = max_descriptors
        self.class_names = class_names
        self.random_state = random_state
        self.n_jobs = n_jobs

    # --- configuration ----------------------------------------------------------------------
    def _encoder_name(self) -> str:
        return self.encoder

    def pipeline_config(self) -> PipelineConfig:
        """The :class:`~bowlrp.pipeline.PipelineConfig` these parameters stand for (checked there)."""
        return PipelineConfig.with_defaults(
            encoder=self._encoder_name(), n_words=self.n_words, pca_dims=self.pca_dims, kernel=self.kernel,
            C=self.C, pyramid=bool(self.pyramid), bin_sizes=tuple(self.bin_sizes), step=int(self.step),
            max_rows=int(self.max_rows), sift_backend=self.sift_backend, sift_orientation=self.sift_orientation,
            per_scale=bool(self.per_scale), pooling=self.pooling, max_descriptors=int(self.max_descriptors),
            seed=int(self.random_state))

    def _parallel(self) -> ParallelOptions:
        return ParallelOptions(n_jobs=self.n_jobs, progress=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        tags.input_tags.two_d_array = False  # images, not a feature matrix
        tags.input_tags.string = True  # image paths
        return tags

    # --- labels -----------------------------------------------------------------------------
    def _label_matrix(self, labels: Any, n_images: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(classes, Y (n, n_classes) in {1, -1, 0}, multilabel)`` of ``labels`` as given to :meth:`fit`."""
        y = np.asarray(labels)
        if y.shape[:1] != (n_images,):
            raise DataError(f"{n_images} images but {y.shape[0] if y.ndim else 0} labels")
        if y.ndim == 1:
            classes = np.unique(y)
            if len(classes) < 2:
                raise DataError(f"single-label fitting needs at least two classes, got {classes.tolist()}")
            Y = np.where(y[:, None] == classes[None, :], 1, -1).astype(np.int8)
            return classes, Y, False
        if y.ndim != 2:
            raise DataError(f"labels must be 1-D (one class per image) or a 2-D indicator matrix, got {y.ndim}-D")
        if not np.issubdtype(y.dtype, np.number) or not np.all(np.isin(y, (-1, 0, 1))):
            raise DataError("a label matrix holds 1 / 0 (present / absent) or 1 / -1 / 0 (present / absent / "
                            "difficult)")
        Y = y.astype(np.int8) if (y == -1).any() else np.where(y == 1, 1, -1).astype(np.int8)
        if self.class_names is None:
            classes = np.arange(y.shape[1])
        else:
            classes = np.asarray(list(self.class_names))
            if len(classes) != y.shape[1] or len(set(classes.tolist())) != len(classes):
                raise DataError(f"class_names must be {y.shape[1]} distinct names, one per label column, "
                                f"got {len(classes)}")
        return classes, Y, True

    def _model_name(self, label: Any) -> str:
        return str(label)

    # --- fitting and scoring --------------------------------------------------------------
    def fit(self, images: Sequence[Any], labels: Any) -> "BowClassifier":
        """Fit the whole pipeline (descriptor sample, PCA, vocabulary, SVMs) on ``images`` and ``labels``."""
        images = list(images)
        classes, Y, multilabel = self._label_matrix(labels, len(images))
        config = self.pipeline_config()  # a bad parameter fails here, before any image is read
        self._parallel()
        names = [self._model_name(c) for c in classes]
        if len(set(names)) != len(names):
            raise DataError("class labels must stay distinct as text (they name the model's classes)")
        if not multilabel and len(classes) == 2:
            Y, names_trained = Y[:, 1:], names[1:]  # one SVM: f > 0 means classes_[1]
            keep, note = [0], None
        else:
            keep, note = trainable_classes(Y, names)
            names_trained = names
        if not keep:
            raise DataError(f"no class can be trained: {note.rsplit(';', 1)[0]}")
        if note:
            log.warning(note)  # before any expensive stage
        left_out = {c: (-1.0 if not (Y[:, c] == 1).any() else 1.0) for c in range(Y.shape[1]) if c not in keep}
        model = train_model(config, images, Y[:, keep], [names_trained[c] for c in keep], SkipLog(strict=True),
                            self._parallel())
        self.model_ = model
        self.classes_ = classes
        self.multilabel_ = multilabel
        self.left_out_ = {names_trained[c]: value for c, value in left_out.items()}
        self._check_columns()
        return self

    def _columns(self) -> list[str]:
        """The model's class name for each output column."""
        names = [self._model_name(c) for c in self.classes_]
        return names[1:] if self._binary() else names

    def _binary(self) -> bool:
        return not self.multilabel_ and len(self.classes_) == 2

    def _check_columns(self) -> None:
        known = set(self.model_.class_names) | set(self.left_out_)
        missing = [name for name in self._columns() if name not in known]
        if missing:
            raise BowlrpError(f"the model has no classifier for {', '.join(missing)}")

    def decision_function(self, images: Sequence[Any]) -> np.ndarray:
        """SVM scores f(x): ``(n, n_classes)`` float64, or ``(n,)`` for two single-label classes
        (positive for ``classes_[1]``). Classes left out at fit score their constant (-1 or +1)."""
        check_is_fitted(self, "model_")
        images = list(images)
        scores, _ = self.model_.score_files(images, SkipLog(strict=True), self._parallel())
        out = np.empty((len(images), len(self._columns())))
        for c, name in enumerate(self._columns()):
            if name in self.left_out_:
                out[:, c] = self.left_out_[name]
            else:
                out[:, c] = scores[:, self.model_.class_index(name)]
        return out[:, 0] if self._binary() else out

    def predict(self, images: Sequence[Any]) -> np.ndarray:
        """Single-label: the class of the highest score (``classes_[1]`` where f > 0 for two classes),
        ``(n,)``. Multi-label: the indicator matrix of ``f(x) > 0``, ``(n, n_classes)`` int in {0, 1}."""
        scores = self.decision_function(images)
        if self.multilabel_:
            return (scores > 0).astype(int)
        if self._binary():
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, images: Sequence[Any], labels: Any, sample_weight: Any = None) -> float:
        """Single-label: accuracy (scikit-learn's ``ClassifierMixin.score``). Multi-label: mean VOC 2007
        11-point AP over the classes with at least one positive image in ``labels`` (label 0 of a
        {1, -1, 0} matrix: difficult, not counted), as ``bowlrp evaluate`` reports it; NaN without
        any positive. ``sample_weight`` applies to accuracy only."""
        check_is_fitted(self, "model_")
        if not self.multilabel_:
            return super().score(images, labels, sample_weight=sample_weight)
        if sample_weight is not None:
            raise BowlrpError("mean average precision takes no sample weights")
        images = list(images)
        _, Y, multilabel = self._label_matrix(labels, len(images))
        if not multilabel or Y.shape[1] != len(self.classes_):
            raise DataError(f"labels must be a ({len(images)}, {len(self.classes_)}) indicator matrix")
        return mean_ap(self.decision_function(images), Y, self._columns())[1]

    # --- explanations ---------------------------------------------------------------------
    def explain(self, image: Any, class_name: Any, **method: Any) -> Explanation:
        """LRP of class ``class_name``'s score on one image (path or array) as an
        :class:`~bowlrp.explanation.Explanation`; ``method`` are the options of ``bowlrp explain``
        (:meth:`BowModel.explanation_method`: ``rule``, ``eps``, ``alpha``, ``bias``, ``depth``).

        ``class_name`` is an element of ``classes_``; for two single-label classes only
        ``classes_[1]`` has an SVM (``classes_[0]``'s score is its negative)."""
        check_is_fitted(self, "model_")
        labels = [c.item() if hasattr(c, "item") else c for c in self.classes_]
        if class_name not in labels and self._model_name(class_name) not in self._columns():
            raise BowlrpError(f"unknown class {class_name!r}; the estimator's classes are "
                              f"{', '.join(map(str, labels))}")
        name = self._model_name(class_name)
        if name in self.left_out_:
            raise BowlrpError(f"class {name!r} was left out of training (no positive or no negative image); "
                              "it has no classifier to explain")
        if name not in self.model_.class_names:
            raise BowlrpError(f"class {name!r} has no SVM of its own: two single-label classes share one, "
                              f"explain {self._columns()[0]!r} (its score is the negative of this one's)")
        return self.model_.explain(image_of(image), name, method_for(self.model_, method))

    # --- model directories ----------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write the fitted model as a model directory (``model.json`` + ``arrays.npz``) that every
        ``bowlrp`` command reads; what the estimator adds (its classes, label kind, left-out classes)
        goes into ``model.json``'s ``training`` record, read back by :meth:`load`."""
        check_is_fitted(self, "model_")
        classes = self.classes_.tolist()
        self.model_.training[_RECORD] = {"classes": classes, "multilabel": bool(self.multilabel_),
                                         "left_out": dict(self.left_out_)}
        self.model_.save(directory)

    @classmethod
    def load(cls, directory: str | Path) -> "BowClassifier":
        """The fitted estimator of a model directory (one :meth:`save` or ``bowlrp train`` wrote)."""
        return cls.from_model(BowModel.load(directory))

    @classmethod
    def from_model(cls, model: BowModel) -> "BowClassifier":
        """A fitted estimator around a :class:`BowModel`. A model the estimator saved comes back as it
        was; any other (``bowlrp train``'s) is multi-label with ``classes_`` its class names."""
        config = model.config
        params = dict(n_words=config.n_words, pca_dims=config.pca_dims or 0, kernel=config.kernel, C=config.C,
                      pyramid=config.pyramid, bin_sizes=tuple(config.bin_sizes), step=config.step,
                      max_rows=config.max_rows, sift_backend=config.sift_backend,
                      sift_orientation=config.sift_orientation, per_scale=config.per_scale, pooling=config.pooling,
                      max_descriptors=config.max_descriptors, random_state=config.seed)
        if "encoder" in cls._get_param_names():
            params["encoder"] = config.encoder
        elif config.encoder != cls._fixed_encoder:
            raise BowlrpError(f"{cls.__name__} holds {cls._fixed_encoder!r} models; this one encodes with "
                              f"{config.encoder!r} (use BowClassifier)")
        record = model.training.get(_RECORD)
        if isinstance(record, dict):
            classes, multilabel, left_out = record["classes"], bool(record["multilabel"]), record["left_out"]
        else:
            classes, multilabel, left_out = list(model.class_names), True, {}
        estimator = cls(**params, class_names=list(map(str, classes)) if multilabel else None)
        estimator.model_ = model
        estimator.classes_ = np.asarray(classes)
        estimator.multilabel_ = multilabel
        estimator.left_out_ = {str(k): float(v) for k, v in left_out.items()}
        estimator._check_columns()
        return estimator


class FisherVectorClassifier(BowClassifier):
    """:class:`BowClassifier` with improved Fisher vectors (the VOC baseline of Section 4.2: 256 GMM
    components on 80 PCA dimensions, spatial pyramid, linear SVMs); the same parameters but ``encoder``."""

    _fixed_encoder = "fisher"

    def __init__(self, n_words: int | None = None, pca_dims: int | None = None, kernel: str = "linear",
                 C: float | None = None, pyramid: bool = True, bin_sizes: Sequence[int] = (4, 6, 8, 10),
                 step: int = 3, max_rows: int = 480, sift_backend: str = "auto", sift_orientation: str = "upright",
                 per_scale: bool = False, pooling: str | float = "sum", max_descriptors: int = 200_000,
                 class_names: Sequence[str] | None = None, random_state: int = 0, n_jobs: int = 1):
        self.n_words = n_words
        self.pca_dims = pca_dims
        self.kernel = kernel
        self.C = C
        self.pyramid = pyramid
        self.bin_sizes = bin_sizes
        self.step = step
        self.max_rows = max_rows
        self.sift_backend = sift_backend
        self.sift_orientation = sift_orientation
        self.per_scale = per_scale
        self.pooling = pooling
        self.max_descriptors = max_descriptors
        self.class_names = class_names
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _encoder_name(self) -> str:
        return self._fixed_encoder
