"""Kernel SVMs trained through scikit-learn on precomputed Gram matrices.

:class:`BinarySvm` holds the dual form f(x) = b + sum_i alpha_i y_i k(x_i, x) (Eq. 2.66) in
the attributes the LRP layer reads (``support_vectors_``, ``dual_coef_`` = alpha_i y_i,
``intercept_`` = b); for the linear kernel also w = sum_i alpha_i y_i x_i (``coef_``, Eq. A.1),
which is what gets scored and saved. :class:`OneVsRestSvm` trains one such machine per class
of a multi-label problem, computing the training Gram matrix once and slicing it for the
C search on a held-out split and for the final fit on all data.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import joblib
import numpy as np
from sklearn.svm import SVC

from ..errors import BowlrpError, DataError
from ..parallel import map_row_chunks, single_thread_blas
from ..progress import progress, running
from .kernels import BLOCK_BYTES, Kernel, _as_2d, linear_feature_weights, make_kernel
from .metrics import AP_METHODS, sign_accuracy

ClassWeight = str | dict | None


def _resolve_kernel(kernel: str | Kernel) -> Kernel:
    """A fresh copy of ``kernel`` (name or instance), so fitting it never changes the caller's object."""
    if isinstance(kernel, str):
        return make_kernel(kernel)
    if isinstance(kernel, Kernel):
        return Kernel.from_state(*kernel.get_state())
    raise BowlrpError(f"kernel must be a name or a Kernel, got {type(kernel).__name__}")


def trainable_classes(Y: np.ndarray, class_names: Sequence[str]) -> tuple[list[int], str | None]:
    """Columns of a label matrix ``Y`` (n, n_classes) in {1, -1, 0} that a binary SVM can be trained
    for (at least one positive and one negative image, 0 = difficult does not count), and a note
    naming the others in the CLI's words, or None when every class is usable.

    Cheap, so callers check it before any expensive stage (descriptor sampling, vocabulary).
    """
    Y = np.asarray(Y)
    if Y.ndim == 1:
        Y = Y[:, None]
    no_pos = [c for c in range(Y.shape[1]) if not (Y[:, c] == 1).any()]
    no_neg = [c for c in range(Y.shape[1]) if (Y[:, c] == 1).any() and not (Y[:, c] == -1).any()]
    keep = [c for c in range(Y.shape[1]) if c not in no_pos and c not in no_neg]
    parts = [f"no {kind} training image for {', '.join(class_names[c] for c in cols)}"
             for kind, cols in (("positive", no_pos), ("negative", no_neg)) if cols]
    return keep, ("; ".join(parts) + "; those classes are left out") if parts else None


def _check_binary_labels(y: Any, what: str) -> np.ndarray:
    y = np.asarray(y).ravel()
    if not np.all(np.isin(y, (-1, 1))):
        raise DataError(f"{what}: labels must be +1 or -1")
    n_pos, n_neg = int((y == 1).sum()), int((y == -1).sum())
    if n_pos == 0 or n_neg == 0:
        missing = "positive" if n_pos == 0 else "negative"
        raise BowlrpError(f"{what}: no {missing} training example, cannot train a classifier")
    return y.astype(np.int64)


def _fit_svc(gram: np.ndarray, y: np.ndarray, C: float, class_weight: ClassWeight) -> tuple[np.ndarray, np.ndarray, float]:
    """Train on a precomputed (n, n) Gram matrix; returns (support indices, alpha_i y_i, b).

    The sign is fixed so that f > 0 means label +1 (sklearn orders classes_ as [-1, 1] and
    its binary decision function is positive for classes_[1]).
    """
    svc = SVC(kernel="precomputed", C=float(C), class_weight=class_weight)
    svc.fit(np.ascontiguousarray(gram, dtype=np.float64), y)
    sign = 1.0 if svc.classes_[1] == 1 else -1.0
    return svc.support_.astype(np.int64), sign * svc.dual_coef_[0].astype(np.float64), sign * float(svc.intercept_[0])


def _scores_by_rows(score: Callable[[np.ndarray], np.ndarray], X: np.ndarray, out_shape: tuple[int, ...],
                    threads: bool = True) -> np.ndarray:
    """``score(rows)`` over row blocks of X (n, d), each a float64 copy of at most :data:`BLOCK_BYTES`,
    stacked: ``(n,) + out_shape``.

    BLAS runs on one thread for every block, so a score never depends on how many BLAS threads the
    process has (a joblib worker has fewer than the main process): a (1, d) @ (d,) product with
    d = 300,000 comes out 1e-11 apart on one and on two OpenBLAS threads. ``threads`` spreads the
    blocks over the process's compute threads (:func:`~bowlrp.parallel.map_row_chunks`); without
    it they run one after another, for ``score`` functions that start numba's own parallel loops.
    """
    if not X.shape[0]:
        return np.zeros((0,) + out_shape)
    step = max(1, BLOCK_BYTES // (8 * max(X.shape[1], 1)))

    def block(start: int, stop: int) -> np.ndarray:
        return score(np.asarray(X[start:stop], dtype=np.float64))

    if threads:
        return np.concatenate(map_row_chunks(block, X.shape[0], step))
    with single_thread_blas():
        return np.concatenate([block(i, min(i + step, X.shape[0])) for i in range(0, X.shape[0], step)])


def _linear_scores(X: np.ndarray, W: np.ndarray) -> np.ndarray:
    """X (n, d) @ W (d, ...) in float64, converting X one row block at a time."""
    return _scores_by_rows(lambda rows: rows @ W, X, W.shape[1:])


def _kernel_scores(kernel: Kernel, X: np.ndarray, pool: np.ndarray, dual: np.ndarray) -> np.ndarray:
    """``k(X, pool) @ dual`` (n,) + dual.shape[1:], without the intercept; the histogram kernels'
    Gram blocks are numba-parallel already, so the row blocks run one after another."""
    return _scores_by_rows(lambda rows: kernel.gram(rows, pool) @ dual, X, dual.shape[1:], threads=False)


def _class_weight_to_json(class_weight: ClassWeight) -> Any:
    if isinstance(class_weight, dict):
        return {str(int(k)): float(v) for k, v in class_weight.items()}
    return class_weight


def _class_weight_from_json(value: Any) -> ClassWeight:
    if isinstance(value, dict):
        return {int(k): float(v) for k, v in value.items()}
    return value


class BinarySvm:
    """Two-class kernel SVM, f(x) = b + sum_i alpha_i y_i k(x_i, x) (Eq. 2.66); f > 0 means class +1.

    Fitted attributes
    -----------------
    kernel_ : Kernel
    support_vectors_ : (S, d) float32 -- None for linear models (w is all they need)
    dual_coef_ : (S,) float64 -- alpha_i * y_i; None for a linear model loaded from a file
    intercept_ : float -- b
    coef_ : (d,) float64 -- w = sum_i alpha_i y_i x_i for the linear kernel (Eq. A.1), with the block
        weights folded in for a KernelSum of linear kernels; None for other kernels
    C_ : float; class_weight_ : None, "balanced" or {label: weight}
    """

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        kernel: str | Kernel = "linear",
        C: float = 1.0,
        class_weight: ClassWeight = None,
        gram: np.ndarray | None = None,
    ) -> "BinarySvm":
        """Train on X (n, d) with labels y (n,) in {+1, -1}.

        ``kernel`` is used as given when it is an already fitted :class:`Kernel` (a name or an
        unfitted kernel is fitted on X). ``gram`` (n, n) may be passed if already computed
        with that kernel. ``class_weight``: None (default, every example weighs 1), "balanced"
        (weights inversely proportional to class frequency) or {+1: w, -1: w}.
        """
        X = _as_2d(X, "X")
        y = _check_binary_labels(y, "BinarySvm")
        if y.shape[0] != X.shape[0]:
            raise DataError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
        if isinstance(kernel, str):
            kernel = make_kernel(kernel)
        if not kernel.is_fitted:
            kernel.fit(X)
        if gram is None:
            gram = kernel.gram(X, X)
        elif gram.shape != (X.shape[0], X.shape[0]):
            raise DataError(f"gram must be ({X.shape[0]}, {X.shape[0]}), got {gram.shape}")
        support, dual, b = _fit_svc(gram, y, C, class_weight)
        return self._set_fitted(kernel, X, support, dual, b, C, class_weight)

    def _set_fitted(self, kernel, X, support, dual_coef, intercept, C, class_weight) -> "BinarySvm":
        """Keep the machine trained on rows ``support`` of ``X``.

        A linear machine keeps only w (Eq. A.1, block weights folded in for a sum of linear kernels),
        accumulated over row blocks, so a VOC-size FV problem never holds a float64 copy of its support
        vectors (or one float32 copy per class); other kernels keep the support vectors.
        """
        self.kernel_ = kernel
        self.dual_coef_ = np.asarray(dual_coef, dtype=np.float64)
        self.intercept_ = float(intercept)
        self.C_ = float(C)
        self.class_weight_ = class_weight
        self.coef_ = None
        self.support_vectors_ = None
        self._support_f64 = None
        scale = linear_feature_weights(kernel, X.shape[1])
        if scale is not None:
            step = max(1, BLOCK_BYTES // (8 * max(X.shape[1], 1)))
            w = np.zeros(X.shape[1])
            for i in range(0, len(support), step):
                w += self.dual_coef_[i:i + step] @ np.asarray(X[support[i:i + step]], dtype=np.float64)
            self.coef_ = w * scale
        else:
            self.support_vectors_ = np.asarray(X[support], dtype=np.float32)
        return self

    @property
    def is_linear(self) -> bool:
        """True when f(x) = <coef_, x> + b (linear kernel, or a weighted sum of linear kernels)."""
        return self.coef_ is not None

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """f(x) for every row of X (n, d) -> (n,) float64."""
        X = _as_2d(X, "X")
        if self.coef_ is not None:
            if X.shape[1] != self.coef_.shape[0]:
                raise DataError(f"X has {X.shape[1]} dimensions, the model expects {self.coef_.shape[0]}")
            return _linear_scores(X, self.coef_) + self.intercept_
        return _kernel_scores(self.kernel_, X, self.support_vectors_float64(), self.dual_coef_) + self.intercept_

    def support_vectors_float64(self) -> np.ndarray:
        """The support vectors as float64, converted once: every Gram block works in float64, and
        converting the float32 copy again for each root-point step cost more than the step itself."""
        cached = getattr(self, "_support_f64", None)
        if cached is None:
            cached = self._support_f64 = np.ascontiguousarray(self.support_vectors_, dtype=np.float64)
        return cached

    def segment_scores(self, x: np.ndarray, starts: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """f on the segments from ``starts[j]`` (g = 0) to ``x`` (g = 1): ``at(g (m,), rows (m,)) -> (m,)``.

        A linear f is affine along a segment; otherwise the kernel's :meth:`~Kernel.along_segments`
        supplies the Gram rows (in closed form for the RBF kernel).
        """
        x = np.asarray(x, dtype=np.float64).ravel()
        starts = np.asarray(starts, dtype=np.float64)
        if self.coef_ is not None:
            f_x = float(self.decision_function(x[None, :])[0])
            f_s = self.decision_function(starts)
            return lambda g, rows: np.asarray(g) * f_x + (1.0 - np.asarray(g)) * f_s[rows]
        gram_at = self.kernel_.along_segments(self.support_vectors_float64(), x, starts)
        return lambda g, rows: gram_at(g, rows) @ self.dual_coef_ + self.intercept_

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Linear models keep only coef_ and b; other kernels keep support vectors and dual coefficients."""
        kernel_meta, _ = self.kernel_.get_state()
        meta = {"kernel": kernel_meta, "intercept": self.intercept_, "C": self.C_,
                "class_weight": _class_weight_to_json(self.class_weight_)}
        if self.coef_ is not None:
            return meta, {"coef": self.coef_}
        return meta, {"support_vectors": self.support_vectors_, "dual_coef": self.dual_coef_}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "BinarySvm":
        model = cls()
        model.kernel_ = Kernel.from_state(meta["kernel"], {})
        model.intercept_ = float(meta["intercept"])
        model.C_ = float(meta["C"])
        model.class_weight_ = _class_weight_from_json(meta.get("class_weight"))
        if "coef" in arrays:
            model.coef_ = np.asarray(arrays["coef"], dtype=np.float64)
            model.support_vectors_ = model.dual_coef_ = None
        else:
            model.coef_ = None
            model.support_vectors_ = np.asarray(arrays["support_vectors"], dtype=np.float32)
            model.dual_coef_ = np.asarray(arrays["dual_coef"], dtype=np.float64)
        return model


def _stratified_split(y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """Positions (train, validation) with ``fraction`` of each label held out (at least one of each
    label on both sides); None when a label has fewer than two examples."""
    train, val = [], []
    for label in (1, -1):
        idx = np.flatnonzero(y == label)
        if idx.size < 2:
            return None
        idx = rng.permutation(idx)
        n_val = int(np.clip(round(fraction * idx.size), 1, idx.size - 1))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _validation_score(gram, y, train, val, C, class_weight, ap_fn) -> tuple[float, float]:
    """(AP, accuracy of the sign) on the validation positions of a model trained on ``train``."""
    support, dual, b = _fit_svc(gram[np.ix_(train, train)], y[train], C, class_weight)
    scores = gram[np.ix_(val, train[support])] @ dual + b
    return ap_fn(scores, y[val]), sign_accuracy(scores, y[val])


class OneVsRestSvm:
    """One binary kernel SVM per class of a multi-label problem (VOC style).

    Parameters
    ----------
    kernel : str or Kernel (KernelSum included)
        Copied and fitted on the training features (data-dependent widths) at :meth:`fit`.
    C : float or None
        Fixed regularisation for every class; ``None`` chooses it per class from ``C_grid``.
    C_grid : sequence of float
        Candidates, tried in order; the best validation AP wins, ties go to the better validation
        accuracy (sign of f), then to the earlier, by default smaller, C.
    validation_fraction : float
        Share of each class' positives and negatives held out (stratified) for choosing C.
        A class with fewer than two positives or negatives cannot be validated; it gets the
        middle of ``C_grid``.
    class_weight : None, "balanced" or dict
        Default "balanced": VOC classes have few positives (2-25 %), and weighting errors
        inversely to class frequency keeps small C from collapsing to all-negative.
    ap_method : "11point" or "area"
        AP used for choosing C.
    random_state : int
        Seeds the validation split (one derived stream per class).
    n_jobs : int
        Classes trained in parallel threads (the Gram matrix is shared, not copied).

    Fitted attributes
    -----------------
    kernel_, estimators_ (list of BinarySvm), chosen_C_ (list of float),
    validation_ap_ (list of {C: AP} or None), validation_accuracy_ (list of {C: accuracy} or None),
    class_names_ (list of str).
    """

    def __init__(
        self,
        kernel: str | Kernel = "linear",
        C: float | None = None,
        C_grid: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0),
        validation_fraction: float = 0.25,
        class_weight: ClassWeight = "balanced",
        ap_method: str = "11point",
        random_state: int = 0,
        n_jobs: int = 1,
    ):
        self.kernel = kernel
        self.C = C
        self.C_grid = C_grid
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.ap_method = ap_method
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: np.ndarray, Y: np.ndarray, class_names: Sequence[str] | None = None,
            show_progress: bool = False) -> "OneVsRestSvm":
        """Train on X (n, d) and Y (n, n_classes) in {1, -1, 0}; label 0 leaves that image out of that class.

        ``show_progress``: the Gram matrix, then one step per class with the C being tried
        (:mod:`bowlrp.progress`)."""
        X = _as_2d(X, "X")
        Y = np.asarray(Y)
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.shape[0] != X.shape[0]:
            raise DataError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        if not np.all(np.isin(Y, (-1, 0, 1))):
            raise DataError("Y must hold 1 (positive), -1 (negative) or 0 (difficult / unknown)")
        class_names = [f"class_{c}" for c in range(Y.shape[1])] if class_names is None else list(class_names)
        if len(class_names) != Y.shape[1]:
            raise DataError(f"{len(class_names)} class names for {Y.shape[1]} label columns")
        if self.ap_method not in AP_METHODS:
            raise BowlrpError(f"unknown ap_method {self.ap_method!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise BowlrpError("validation_fraction must lie strictly between 0 and 1")
        for c, name in enumerate(class_names):  # fail before the expensive Gram matrix
            _check_binary_labels(Y[Y[:, c] != 0, c], f"class {name!r}")

        with running(f"SVM Gram matrix ({len(X)} images)", show_progress):
            self.kernel_ = _resolve_kernel(self.kernel).fit(X)
            gram = self.kernel_.gram(X, X)
        seeds = np.random.SeedSequence(self.random_state).spawn(Y.shape[1])
        with progress(Y.shape[1], "SVM per class" + ("" if self.C is not None else " (C search)"),
                      show_progress, unit="class") as bar:
            def fit_class(c: int):
                result = self._fit_class(gram, Y[:, c], np.random.default_rng(seeds[c]),
                                         lambda C: bar.set_postfix_str(f"{class_names[c]}: C={C:g}"))
                bar.update()
                return result

            results = joblib.Parallel(n_jobs=self.n_jobs, prefer="threads")(
                joblib.delayed(fit_class)(c) for c in range(Y.shape[1]))
        self.class_names_ = class_names
        self.chosen_C_ = [r[0] for r in results]
        self.validation_ap_ = [None if r[1] is None else {c: v[0] for c, v in r[1].items()} for r in results]
        self.validation_accuracy_ = [None if r[1] is None else {c: v[1] for c, v in r[1].items()} for r in results]
        self.estimators_ = [
            BinarySvm()._set_fitted(self.kernel_, X, rows, dual, b, C, self.class_weight)
            for (C, _, rows, dual, b) in results
        ]
        return self

    def _fit_class(self, gram: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                   trying: Callable[[float], None] = lambda C: None):
        """(chosen C, {C: (validation AP, accuracy)} or None, support rows, alpha*y, b) for one class;
        ``trying(C)`` is called before each fit."""
        rows = np.flatnonzero(labels != 0)
        y = labels[rows].astype(np.int64)
        sub = gram[np.ix_(rows, rows)]
        scored = None
        if self.C is not None:
            C = float(self.C)
        else:
            grid = [float(c) for c in self.C_grid]
            split = _stratified_split(y, self.validation_fraction, rng)
            if split is None:
                C = sorted(grid)[len(grid) // 2]
            else:
                ap_fn = AP_METHODS[self.ap_method]
                scored = {}
                for c in grid:
                    trying(c)
                    scored[c] = _validation_score(sub, y, *split, c, self.class_weight, ap_fn)
                # AP ranks; among equal APs (easy classes reach 1.0 everywhere) the sign must still
                # mean something, so the validation accuracy decides, then the earlier C
                C = max(grid, key=lambda c: (scored[c][0], scored[c][1], -grid.index(c)))
        trying(C)
        support, dual, b = _fit_svc(sub, y, C, self.class_weight)
        return C, scored, rows[support], dual, b

    @property
    def is_linear(self) -> bool:
        return all(e.coef_ is not None for e in self.estimators_)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Scores f_c(x) for every row of X (n, d) and class -> (n, n_classes) float64.

        Linear: one GEMM with the stacked w; otherwise one Gram matrix against the union of
        all classes' support vectors.
        """
        X = _as_2d(X, "X")
        intercepts = np.array([e.intercept_ for e in self.estimators_])
        if self.is_linear:
            W = np.stack([e.coef_ for e in self.estimators_], axis=1)
            if X.shape[1] != W.shape[0]:
                raise DataError(f"X has {X.shape[1]} dimensions, the model expects {W.shape[0]}")
            return _linear_scores(X, W) + intercepts
        pool, dual = self._support_pool()
        return _kernel_scores(self.kernel_, X, pool, dual) + intercepts

    def _support_pool(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct support vectors of all classes (U, d) float32 and their coefficients (U, n_classes)."""
        if getattr(self, "_pool_of", None) is not self.estimators_:
            self._pool = self._build_support_pool()
            self._pool_of = self.estimators_
        return self._pool

    def _build_support_pool(self) -> tuple[np.ndarray, np.ndarray]:
        stacked = np.concatenate([e.support_vectors_ for e in self.estimators_])
        pool, inverse = np.unique(stacked, axis=0, return_inverse=True)
        dual = np.zeros((pool.shape[0], len(self.estimators_)))
        start = 0
        for c, e in enumerate(self.estimators_):
            stop = start + e.dual_coef_.shape[0]
            np.add.at(dual[:, c], inverse.ravel()[start:stop], e.dual_coef_)
            start = stop
        return pool, dual

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Linear: stacked w (d, n_classes); otherwise the shared support-vector pool and (U, n_classes) coefficients."""
        kernel_meta, _ = self.kernel_.get_state()
        meta = {
            "kernel": kernel_meta,
            "class_names": list(self.class_names_),
            "chosen_C": list(self.chosen_C_),
            "intercepts": [e.intercept_ for e in self.estimators_],
            "class_weight": _class_weight_to_json(self.class_weight),
            "params": {"C": self.C, "C_grid": [float(c) for c in self.C_grid],
                       "validation_fraction": self.validation_fraction, "ap_method": self.ap_method,
                       "random_state": self.random_state},
        }
        if self.is_linear:
            return meta, {"coef": np.stack([e.coef_ for e in self.estimators_], axis=1)}
        pool, dual = self._support_pool()
        return meta, {"support_vectors": pool, "dual_coef": dual}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "OneVsRestSvm":
        kernel = Kernel.from_state(meta["kernel"], {})
        class_weight = _class_weight_from_json(meta.get("class_weight"))
        model = cls(kernel=kernel, class_weight=class_weight, **meta.get("params", {}))
        model.kernel_ = kernel
        model.class_names_ = list(meta["class_names"])
        model.chosen_C_ = [float(c) for c in meta["chosen_C"]]
        model.validation_ap_ = [None] * len(model.class_names_)
        model.validation_accuracy_ = [None] * len(model.class_names_)
        model.estimators_ = []
        for c, (b, C) in enumerate(zip(meta["intercepts"], model.chosen_C_)):
            est = BinarySvm()
            est.kernel_, est.intercept_, est.C_, est.class_weight_ = kernel, float(b), C, class_weight
            if "coef" in arrays:
                # contiguous: a strided column is scored by another summation than the contiguous copy a
                # worker process unpickles, so scores differed in the last bits with --n-jobs
                est.coef_ = np.ascontiguousarray(arrays["coef"][:, c], dtype=np.float64)
                est.support_vectors_ = est.dual_coef_ = None
            else:
                used = np.flatnonzero(arrays["dual_coef"][:, c] != 0)
                est.coef_ = None
                est.support_vectors_ = np.asarray(arrays["support_vectors"][used], dtype=np.float32)
                est.dual_coef_ = np.asarray(arrays["dual_coef"][used, c], dtype=np.float64)
            model.estimators_.append(est)
        return model
