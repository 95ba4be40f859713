"""Vocabularies learned on a sample of local descriptors (dissertation Sections 2.4.1, 4.2,
Appendix D.1.1).

* :func:`sample_rows` draws the training sample (uniform over all descriptors of all images);
* :class:`PcaProjection` reduces SIFT (128-d) to ``n_components`` dims (80 in the VOC FV setup);
* :class:`GmmVocabulary` is the diagonal-covariance GMM ``{(pi_k, mu_k, sigma_k^2)}`` of the
  Fisher vector (dissertation Section 4.2), with numerically stable posteriors ``gamma_k(l)``;
* :class:`KMeansVocabulary` holds the k-means centres of the BoW encoders (Section 2.4.3).

Every fitted stage follows the state protocol of :mod:`bowlrp.persistence`.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..parallel import map_row_chunks
from .posteriors import VL_GMM_MIN_PRIOR, LogJoint  # noqa: F401  (LogJoint: also a public name here)

GMM_BACKENDS = ("bowlrp", "sklearn", "vlfeat")


def sample_rows(blocks: list[np.ndarray], max_rows: int, random_state) -> np.ndarray:
    """A uniform random sample of rows drawn from a list of row blocks, without replacement.

    Parameters
    ----------
    blocks : list of (n_i, D) arrays
        E.g. the descriptors of each training image. Never concatenated in full.
    max_rows : int
        Sample size; when the blocks hold fewer rows, all rows are returned.
    random_state : int or numpy.random.Generator
        Seed; the same seed and blocks give the same sample.

    Returns
    -------
    (min(max_rows, sum n_i), D) array
        Rows in their original order (block by block), dtype of the blocks.
    """
    blocks = [np.asarray(b) for b in blocks]
    blocks = [b.reshape(len(b), -1) for b in blocks]
    if not blocks:
        raise ValueError("sample_rows needs at least one block")
    width = {b.shape[1] for b in blocks if len(b)}
    if len(width) > 1:
        raise ValueError(f"blocks have different row widths {sorted(width)}")
    n_cols = width.pop() if width else blocks[0].shape[1]
    dtype = np.result_type(*blocks)
    sizes = np.array([len(b) for b in blocks], dtype=np.int64)
    total = int(sizes.sum())
    if max_rows < 0:
        raise ValueError("max_rows must be >= 0")
    if total <= max_rows:
        return np.concatenate(blocks, axis=0).astype(dtype, copy=False)
    rng = np.random.default_rng(random_state)
    chosen = np.sort(rng.choice(total, size=int(max_rows), replace=False))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    which = np.searchsorted(starts, chosen, side="right") - 1
    out = np.empty((len(chosen), n_cols), dtype=dtype)
    for b in np.unique(which):
        sel = which == b
        out[sel] = blocks[b][chosen[sel] - starts[b]]
    return out


def _check_fitted(obj, attr: str) -> None:
    if getattr(obj, attr, None) is None:
        raise ModelError(f"{type(obj).__name__} is not fitted; call fit() first")


def _as_2d_float32(X, name: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (N, D), got shape {X.shape}")
    return X


class PcaProjection:
    """Linear projection onto the leading principal components (no whitening).

    ``transform(X) = (X - mean_) @ components_.T``, computed in float32.

    Parameters
    ----------
    n_components : int
        Output dimension (80 for the VOC Fisher-vector setup).
    random_state : int
        Seed for scikit-learn's randomised SVD, used on large inputs.

    Attributes
    ----------
    mean_ : (D_in,) float32
    components_ : (n_components, D_in) float32, orthonormal rows
    explained_variance_ : (n_components,) float32
    """

    def __init__(self, n_components: int = 80, random_state: int = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: np.ndarray) -> "PcaProjection":
        """Fit on descriptors ``X`` (N, D_in), N >= n_components."""
        from sklearn.decomposition import PCA

        X = _as_2d_float32(X)
        if self.n_components > min(X.shape):
            raise ValueError(f"n_components={self.n_components} exceeds min(N, D) = {min(X.shape)}")
        pca = PCA(n_components=self.n_components, whiten=False, random_state=self.random_state)
        pca.fit(X.astype(np.float64))
        self.mean_ = pca.mean_.astype(np.float32)
        self.components_ = pca.components_.astype(np.float32)
        self.explained_variance_ = pca.explained_variance_.astype(np.float32)
        return self

    def transform(self, X: np.ndarray, chunk_rows: int = 16384) -> np.ndarray:
        """Project ``X`` (N, D_in) to (N, n_components) float32.

        Row chunks in threads with one-thread GEMMs (:func:`~bowlrp.parallel.map_row_chunks`), so the
        projection is bit-identical in the main process and in any worker. All-zero rows (descriptors
        zeroed by the contrast cut, often a third of an image's) get :meth:`zero_point`, their
        exactly rounded image: a float32 GEMM would put them a few float32 steps off, and all of them
        lie in one place, so their Fisher entries would carry that rounding a thousandfold.
        """
        _check_fitted(self, "components_")
        X = _as_2d_float32(X)
        out = np.empty((len(X), self.components_.shape[0]), dtype=np.float32)
        zero_point = self.zero_point()

        def project(start: int, stop: int) -> None:
            rows = X[start:stop]
            np.matmul(rows - self.mean_, self.components_.T, out=out[start:stop])
            zero = ~rows.any(axis=1)
            if zero.any():
                out[start:stop][zero] = zero_point

        map_row_chunks(project, len(X), chunk_rows)
        return out

    def zero_point(self) -> np.ndarray:
        """``-mean_ @ components_.T``, the image of an all-zero descriptor, computed in float64 and
        rounded once to float32, (n_components,)."""
        key = (self.mean_, self.components_)
        cached = getattr(self, "_zero_point_cache", None)
        if cached is None or any(a is not b for a, b in zip(cached[0], key)):
            point = -(self.mean_.astype(np.float64) @ self.components_.T.astype(np.float64))
            cached = (key, point.astype(np.float32))
            self._zero_point_cache = cached
        return cached[1]

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        _check_fitted(self, "components_")
        meta = {"n_components": int(self.n_components), "random_state": self.random_state}
        arrays = {"mean": self.mean_, "components": self.components_, "explained_variance": self.explained_variance_}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "PcaProjection":
        obj = cls(n_components=int(meta["n_components"]), random_state=meta.get("random_state", 0))
        obj.mean_ = np.asarray(arrays["mean"], dtype=np.float32)
        obj.components_ = np.asarray(arrays["components"], dtype=np.float32)
        obj.explained_variance_ = np.asarray(arrays["explained_variance"], dtype=np.float32)
        return obj


class GmmVocabulary:
    """Gaussian mixture with diagonal covariances, the soft vocabulary of the Fisher vector.

    ``p(l) = sum_k pi_k N(l | mu_k, diag(sigma_k^2))`` over D-dimensional (PCA-reduced)
    descriptors ``l``.

    Parameters
    ----------
    n_components : int
        K, the number of Gaussians (256 in the VOC setup).
    max_iter : int
        EM iterations at most.
    random_state : int
        Seed of the initialisation.
    backend : "bowlrp", "sklearn" or "vlfeat"
        ``"bowlrp"`` (default): EM on the Fisher encoder's own posterior and moment kernels
        (:mod:`bowlrp.encoding.gmm`), from k-means++ seeds and one hard assignment, stopping as
        scikit-learn does; 5-6x faster than ``"sklearn"`` (``gmm_fit`` in ``benchmarks/bench_gmm.py``).
        ``"sklearn"``: :class:`sklearn.mixture.GaussianMixture` (``covariance_type="diag"``,
        k-means init), its variances floored afterwards. ``"vlfeat"``: VLFeat's EM through
        cyvlfeat from the ``"bowlrp"`` start, with VLFeat's own variance bound at the floor, run
        on one thread (VLFeat's threads sum in finishing order).

    Every backend bounds the variances below by ``variance_floor_`` = 1e-4 of the largest
    per-dimension variance of the data (:func:`~bowlrp.encoding.gmm.variance_floor`), stored with
    the model and checked when it is loaded.

    Attributes
    ----------
    means_ : (K, D) float32
        ``mu_k``.
    variances_ : (K, D) float32
        ``sigma_k^2`` (variances, not standard deviations), all ``>= variance_floor_``.
    weights_ : (K,) float32
        Mixture weights ``pi_k``, summing to 1.
    variance_floor_ : float
        The floor (0 for a vocabulary given by its parameters).
    """

    def __init__(self, n_components: int = 256, max_iter: int = 100, random_state: int = 0, backend: str = "bowlrp"):
        self.n_components = n_components
        self.max_iter = max_iter
        self.random_state = random_state
        self.backend = backend
        self.variance_floor_ = 0.0

    # -- fitting -----------------------------------------------------------------------
    def fit(self, X: np.ndarray, show_progress: bool = False) -> "GmmVocabulary":
        """Fit on descriptors ``X`` (N, D), N >= n_components; ``show_progress`` reports each EM
        iteration of the ``"bowlrp"`` backend (:mod:`bowlrp.progress`)."""
        from .gmm import variance_floor

        X = _as_2d_float32(X)
        if len(X) < self.n_components:
            raise ValueError(f"need at least n_components={self.n_components} descriptors, got {len(X)}")
        floor = variance_floor(X)
        if self.backend == "bowlrp":
            self._fit_bowlrp(X, floor, show_progress)
        elif self.backend == "sklearn":
            self._fit_sklearn(X, floor)
        elif self.backend == "vlfeat":
            self._fit_vlfeat(X, floor)
        else:
            raise ValueError(f"unknown GMM backend {self.backend!r}; use one of {', '.join(GMM_BACKENDS)}")
        self.variance_floor_ = floor
        return self

    def _fit_bowlrp(self, X: np.ndarray, floor: float, show_progress: bool) -> None:
        from .gmm import fit_em, initial_parameters

        start = initial_parameters(X, self.n_components, self.random_state, floor)
        fit = fit_em(X, start, max_iter=self.max_iter, floor=floor, show_progress=show_progress)
        self.means_, self.variances_, self.weights_ = fit.means, fit.variances, fit.weights

    def _fit_sklearn(self, X: np.ndarray, floor: float) -> None:
        from sklearn.mixture import GaussianMixture

        gm = GaussianMixture(
            n_components=self.n_components,
            covariance_type="diag",
            max_iter=self.max_iter,
            random_state=self.random_state,
        ).fit(X.astype(np.float64))
        self.means_ = gm.means_.astype(np.float32)
        self.variances_ = np.maximum(gm.covariances_.astype(np.float32), np.float32(floor))
        self.weights_ = gm.weights_.astype(np.float32)

    def _fit_vlfeat(self, X: np.ndarray, floor: float) -> None:
        from .gmm import initial_parameters

        try:
            # cyvlfeat.gmm.gmm rejects custom initial parameters (it tests arrays for truth),
            # so call its compiled core directly.
            from cyvlfeat.gmm.cygmm import cy_gmm
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ModelError(f"GMM backend 'vlfeat' needs cyvlfeat ({exc})") from None
        from cyvlfeat.generic.generic import get_max_threads, set_num_threads

        start = initial_parameters(X, self.n_components, self.random_state, floor)
        means, variances, priors = (np.ascontiguousarray(a, dtype=np.float32)
                                    for a in (start.means, start.variances, start.weights))
        # VLFeat's M-step sums per-thread partial results in whatever order the OpenMP threads
        # finish, so the fit is only reproducible single-threaded.
        threads = get_max_threads()
        set_num_threads(1)
        try:
            out = cy_gmm(
                np.ascontiguousarray(X), self.n_components, int(self.max_iter), b"custom", 1, 0,
                # one value: cyvlfeat passes a per-dimension bound array to VLFeat as double* even
                # for float32 data, so VLFeat would read 2d floats' worth of memory (half of it past
                # the array) as its bounds; a single bound takes the correctly typed scalar path
                covariance_bound=np.array([floor], dtype=np.float32),
                init_priors=priors, init_means=means, init_covars=variances,
            )
            # copied at once, before anything else allocates: the returned arrays may not own their memory
            means_out, variances_out, weights_out = (np.array(a, dtype=np.float32, copy=True) for a in out[:3])
        finally:
            set_num_threads(threads)
        if not (np.isfinite(means_out).all() and np.isfinite(variances_out).all() and np.isfinite(weights_out).all()):
            raise ModelError("VLFeat's GMM returned non-finite parameters; use the bowlrp backend")
        # VLFeat bounds in float64 and stores float32: rounding may land a hair under the floor
        self.means_, self.variances_ = means_out, np.maximum(variances_out, np.float32(floor))
        self.weights_ = weights_out

    # -- inference ---------------------------------------------------------------------
    def log_joint(self) -> "LogJoint":
        """Precomputed GEMM form of ``log(pi_k N(l | mu_k, sigma_k^2))`` (see :class:`LogJoint`)."""
        _check_fitted(self, "means_")
        # built once per fitted GMM: an incremental update asks for it at every step
        cached = getattr(self, "_log_joint_cache", None)
        key = (self.means_, self.variances_, self.weights_)
        if cached is None or any(a is not b for a, b in zip(cached[0], key)):
            cached = (key, LogJoint(self.means_, self.variances_, self.weights_))
            self._log_joint_cache = cached
        return cached[1]

    def posteriors(self, X: np.ndarray) -> np.ndarray:
        """Soft assignments ``gamma_k(l) = pi_k N(l|k) / sum_j pi_j N(l|j)``.

        One float32 GEMM ``[l', l'^2] @ [B; A]`` and a log-sum-exp per row (the few
        ill-conditioned components from explicit differences, see :class:`LogJoint`);
        no loop over descriptors.

        Parameters
        ----------
        X : (N, D) float
            Descriptors in the GMM's space (after PCA).

        Returns
        -------
        (N, K) float32
            Rows sum to 1.
        """
        return self.log_joint().posteriors(_as_2d_float32(X))

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        _check_fitted(self, "means_")
        meta = {
            "n_components": int(self.n_components),
            "max_iter": int(self.max_iter),
            "random_state": self.random_state,
            "backend": self.backend,
            "variance_floor": float(self.variance_floor_),
        }
        return meta, {"means": self.means_, "variances": self.variances_, "weights": self.weights_}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "GmmVocabulary":
        obj = cls(
            n_components=int(meta["n_components"]),
            max_iter=int(meta.get("max_iter", 100)),
            random_state=meta.get("random_state", 0),
            backend=meta.get("backend", "sklearn"),
        )
        obj.variance_floor_ = float(meta.get("variance_floor", 0.0))
        obj.means_ = np.asarray(arrays["means"], dtype=np.float32)
        obj.variances_ = np.asarray(arrays["variances"], dtype=np.float32)
        obj.weights_ = np.asarray(arrays["weights"], dtype=np.float32)
        if obj.means_.shape != obj.variances_.shape or obj.weights_.shape != obj.means_.shape[:1]:
            raise ModelError("GMM state arrays have inconsistent shapes")
        return obj

    @classmethod
    def from_parameters(cls, means: np.ndarray, variances: np.ndarray, weights: np.ndarray) -> "GmmVocabulary":
        """A vocabulary with given parameters (e.g. a GMM trained elsewhere)."""
        return cls.from_state(
            {"n_components": int(np.shape(means)[0])},
            {"means": means, "variances": variances, "weights": weights},
        )


class KMeansVocabulary:
    """k-means visual words (scikit-learn :class:`~sklearn.cluster.KMeans`).

    Parameters
    ----------
    n_clusters : int
        Number of visual words K.
    random_state : int
        Seed of the k-means++ initialisation.
    max_iter : int
        Lloyd iterations at most.
    n_init : int
        Restarts; the run with the lowest inertia is kept.

    Attributes
    ----------
    centers_ : (K, D) float32
    """

    def __init__(self, n_clusters: int = 128, random_state: int = 0, max_iter: int = 300, n_init: int = 1):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.max_iter = max_iter
        self.n_init = n_init

    def fit(self, X: np.ndarray) -> "KMeansVocabulary":
        """Fit on descriptors ``X`` (N, D), N >= n_clusters."""
        from sklearn.cluster import KMeans

        X = _as_2d_float32(X)
        km = KMeans(
            n_clusters=self.n_clusters, random_state=self.random_state, max_iter=self.max_iter, n_init=self.n_init
        ).fit(X)
        self.centers_ = km.cluster_centers_.astype(np.float32)
        return self

    def squared_distances(self, X: np.ndarray) -> np.ndarray:
        """Squared Euclidean distances ``||l - c_k||^2``, (N, K) float64.

        Computed in float64 (one GEMM) because the BoW encoders rank these distances and
        float32 rounding would reorder near-ties differently from an exact computation.
        """
        _check_fitted(self, "centers_")
        X = _as_2d_float32(X).astype(np.float64)
        C = self.centers_.astype(np.float64)
        d = np.einsum("ij,ij->i", X, X)[:, None] - 2.0 * (X @ C.T) + np.einsum("ij,ij->i", C, C)[None, :]
        return np.maximum(d, 0.0, out=d)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Index of the nearest centre, (N,) int64 (lowest index on exact ties)."""
        return np.argmin(self.squared_distances(X), axis=1).astype(np.int64)

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        _check_fitted(self, "centers_")
        meta = {
            "n_clusters": int(self.n_clusters),
            "random_state": self.random_state,
            "max_iter": int(self.max_iter),
            "n_init": int(self.n_init),
        }
        return meta, {"centers": self.centers_}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "KMeansVocabulary":
        obj = cls(
            n_clusters=int(meta["n_clusters"]),
            random_state=meta.get("random_state", 0),
            max_iter=int(meta.get("max_iter", 300)),
            n_init=int(meta.get("n_init", 1)),
        )
        obj.centers_ = np.asarray(arrays["centers"], dtype=np.float32)
        return obj
