"""Kernel functions for the SVM layer (dissertation Eq. 2.66-2.69, Appendix A.1.1).

Every kernel offers the three views the pipeline needs:

* :meth:`Kernel.gram` -- the (n, m) kernel matrix used for training and scoring,
* :meth:`Kernel.per_dimension` -- the per-dimension terms k^(d)(x_i(d), x(d)) of a
  sum-decomposable kernel (Eq. 2.69), from which LRP takes R_d exactly (Eq. 2.72),
* :meth:`Kernel.gradient` -- dk(x_i, x)/dx, for the Taylor decomposition of
  non-decomposable kernels at a root point (Eq. 2.75-2.76, A.5, A.7), and
  :meth:`Kernel.expansion_gradient` -- the gradient of a whole expansion sum_i c_i k(x_i, p) at many
  points p at once (the path-integrated decomposition evaluates it at the quadrature nodes of a segment).

Histogram kernels (``hik``, ``additive-chi2``, ``chi2``) are meant for non-negative features
(BoW histograms) and refuse negative input: their chi-squared terms divide by x + y.
Gram matrices are computed block by block so that the float64 copies of the inputs stay
under :data:`BLOCK_BYTES` whatever the feature dimension; the element-wise kernels run in
numba loops that never build an (n, m, d) array.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar

import numba
import numpy as np

from ..errors import BowlrpError, DataError

#: Upper bound, in bytes, for the float64 copy of one row block of X or of Y during a Gram computation.
BLOCK_BYTES = 64 * 2**20

#: At most this many training rows (evenly strided) are used to set data-dependent kernel widths.
MAX_FIT_SAMPLES = 1000


# --------------------------------------------------------------------------- numba pair loops
# The inner loops are branch-free so that they vectorise (fastmath allows reordering the sum): the
# inputs are non-negative, so x + y = 0 only where x = y = 0, and dividing by max(x + y, TINY) gives
# the 0/0 := 0 convention without a test, while changing no ratio of values above TINY.
_TINY = 1e-300


@numba.njit(parallel=True, cache=True, fastmath=True)
def _pairwise_min_sum(X, Y):  # pragma: no cover - compiled
    n, m, d = X.shape[0], Y.shape[0], X.shape[1]
    out = np.empty((n, m))
    for i in numba.prange(n):
        for j in range(m):
            acc = 0.0
            for k in range(d):
                acc += min(X[i, k], Y[j, k])
            out[i, j] = acc
    return out


@numba.njit(parallel=True, cache=True, fastmath=True)
def _pairwise_additive_chi2(X, Y):  # pragma: no cover - compiled
    n, m, d = X.shape[0], Y.shape[0], X.shape[1]
    out = np.empty((n, m))
    for i in numba.prange(n):
        for j in range(m):
            acc = 0.0
            for k in range(d):
                acc += 2.0 * X[i, k] * Y[j, k] / max(X[i, k] + Y[j, k], _TINY)
            out[i, j] = acc
    return out


@numba.njit(parallel=True, cache=True, fastmath=True)
def _pairwise_chi2_distance(X, Y):  # pragma: no cover - compiled
    n, m, d = X.shape[0], Y.shape[0], X.shape[1]
    out = np.empty((n, m))
    for i in numba.prange(n):
        for j in range(m):
            acc = 0.0
            for k in range(d):
                diff = X[i, k] - Y[j, k]
                acc += diff * diff / max(X[i, k] + Y[j, k], _TINY)
            out[i, j] = acc
    return out


@numba.njit(parallel=True, cache=True, fastmath=True)
def _weighted_chi2_ratios(W, S, P):  # pragma: no cover - compiled
    # out[j, d] = sum_i W[j, i] * S[i, d]^2 / (S[i, d] + P[j, d])^2, with 0/0 := 0 (both zero)
    n, m, d = P.shape[0], S.shape[0], P.shape[1]
    out = np.zeros((n, d))
    for j in numba.prange(n):
        for i in range(m):
            w = W[j, i]
            for k in range(d):
                r = S[i, k] / max(S[i, k] + P[j, k], _TINY)  # squaring after the division: TINY^2 underflows
                out[j, k] += w * r * r
    return out


# --------------------------------------------------------------------------- helpers
def _as_2d(X: Any, name: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (samples, dimensions), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise DataError(f"{name} must hold real numbers, got dtype {X.dtype}")
    return X


def _rows_per_block(d: int) -> int:
    return max(1, BLOCK_BYTES // (8 * max(d, 1)))


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den element-wise with 0/0 (and x/0) := 0, the convention of Eq. A.6."""
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _blockwise(pair_fn, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Apply ``pair_fn(X_block, Y_block) -> (bx, by)`` over float64 row blocks of X and Y."""
    n, m = X.shape[0], Y.shape[0]
    symmetric = X is Y  # training Gram: compute the upper block triangle and mirror it
    step = _rows_per_block(X.shape[1])
    out = np.empty((n, m), dtype=np.float64)
    for i0 in range(0, n, step):
        Xb = np.ascontiguousarray(X[i0:i0 + step], dtype=np.float64)
        for j0 in range(i0 if symmetric else 0, m, step):
            Yb = Xb if symmetric and j0 == i0 else np.ascontiguousarray(Y[j0:j0 + step], dtype=np.float64)
            block = pair_fn(Xb, Yb)
            out[i0:i0 + step, j0:j0 + step] = block
            if symmetric and j0 != i0:
                out[j0:j0 + step, i0:i0 + step] = block.T
    return out


def _row_norms2(X: np.ndarray) -> np.ndarray:
    """Squared L2 norm of every row, without an (n, d) temporary."""
    return np.einsum("ij,ij->i", X, X)


def _squared_distances(Xb: np.ndarray, Yb: np.ndarray) -> np.ndarray:
    sq = _row_norms2(Xb)[:, None] + _row_norms2(Yb)[None, :] - 2.0 * (Xb @ Yb.T)
    return np.maximum(sq, 0.0)  # cancellation can leave tiny negatives


def _fit_subset(X: np.ndarray) -> np.ndarray:
    step = -(-X.shape[0] // MAX_FIT_SAMPLES)
    return X[::step]


# --------------------------------------------------------------------------- base class
class Kernel:
    """A kernel k(x, y) on feature vectors; subclasses set :attr:`name` and :attr:`sum_decomposable`.

    Constructors store parameters only; :meth:`fit` sets data-dependent defaults (widths)
    and is a no-op for parameter-free kernels.
    """

    name: ClassVar[str] = ""
    sum_decomposable: ClassVar[bool] = False
    nonnegative_input: ClassVar[bool] = False

    # -- parameters and fitting
    def get_params(self) -> dict:
        return {}

    def fit(self, X: np.ndarray) -> "Kernel":
        """Set data-dependent parameters from training features X (n, d); returns self."""
        self._check(_as_2d(X, "X"), "X")
        return self

    @property
    def is_fitted(self) -> bool:
        """True when :meth:`gram` can be evaluated (all widths known)."""
        return True

    # -- evaluation
    def gram(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Kernel matrix K[i, j] = k(X[i], Y[j]); X (n, d), Y (m, d) -> (n, m) float64."""
        X, Y = self._check_pair(X, Y)
        return self._gram(X, Y)

    def per_dimension(self, sv: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Per-dimension terms k^(d)(sv[i, d], x[d]) of Eq. 2.69: sv (S, d), x (d,) -> (S, d) float64.

        Rows sum to ``gram(sv, x[None])[:, 0]``. Only for sum-decomposable kernels.
        """
        if not self.sum_decomposable:
            raise BowlrpError(f"kernel {self.name!r} is not sum-decomposable; use a Taylor decomposition (gradient)")
        sv, x = self._check_sv_x(sv, x)
        return self._per_dimension(sv, x)

    def gradient(self, sv: np.ndarray, x: np.ndarray) -> np.ndarray:
        """dk(sv[i], x)/dx[d] for every support vector: sv (S, d), x (d,) -> (S, d) float64."""
        sv, x = self._check_sv_x(sv, x)
        return self._gradient(sv, x)

    def expansion_gradient(self, sv: np.ndarray, coef: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Gradient of the expansion ``g(p) = sum_i coef[i] k(sv[i], p)`` at every row of ``points``.

        sv (S, d), coef (S,), points (n, d) -> (n, d) float64. This generic form loops over the points
        with :meth:`gradient`; RBF and exp-chi2 override it with one Gram evaluation of all points
        against the support vectors (what makes the path-integrated decomposition cheap).
        """
        sv, points = self._check_pair(sv, points)
        sv = np.asarray(sv, dtype=np.float64)
        coef = np.asarray(coef, dtype=np.float64)
        return self._expansion_gradient(sv, coef, np.asarray(points, dtype=np.float64))

    def _expansion_gradient(self, sv: np.ndarray, coef: np.ndarray, points: np.ndarray) -> np.ndarray:
        return np.stack([coef @ self._gradient(sv, p) for p in points]) if len(points) else np.zeros(points.shape)

    def along_segments(self, Y: np.ndarray, x: np.ndarray, starts: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """Kernel rows at points on the segments from ``starts[j]`` (g = 0) to ``x`` (g = 1).

        Returns ``at(g (m,), rows (m,)) -> (m, len(Y))``, the values ``k(g x + (1 - g) starts[rows], Y)``;
        the root-point search calls it once per step. This generic form builds the points
        and evaluates :meth:`gram`; kernels with a closed form along a line override it.
        """
        x = np.asarray(x, dtype=np.float64).ravel()
        starts = np.asarray(starts, dtype=np.float64)

        def at(g: np.ndarray, rows: np.ndarray) -> np.ndarray:
            g = np.asarray(g, dtype=np.float64)[:, None]
            return self.gram(g * x + (1.0 - g) * starts[rows], Y)

        return at

    # -- persistence
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {"name": self.name, "params": self.get_params(), "fitted": self._fitted_state()}, {}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "Kernel":
        """Rebuild any kernel (including :class:`KernelSum`) from :meth:`get_state` output."""
        name = meta.get("name")
        if name == KernelSum.name:
            return KernelSum.from_state(meta, arrays)
        if name not in KERNELS:
            raise BowlrpError(f"unknown kernel {name!r} in model state")
        kernel = KERNELS[name](**meta.get("params", {}))
        for key, value in meta.get("fitted", {}).items():
            setattr(kernel, key, value)
        return kernel

    def _fitted_state(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- validation
    def _check(self, X: np.ndarray, name: str) -> None:
        if self.nonnegative_input and X.size and X.min() < 0:
            raise DataError(f"kernel {self.name!r} needs non-negative features (histograms); {name} has negative entries")

    def _check_pair(self, X: Any, Y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, Y = _as_2d(X, "X"), _as_2d(Y, "Y")
        if X.shape[1] != Y.shape[1]:
            raise DataError(f"feature dimensions differ: X has {X.shape[1]}, Y has {Y.shape[1]}")
        self._check(X, "X")
        self._check(Y, "Y")
        if not self.is_fitted:
            raise BowlrpError(f"kernel {self.name!r} has no width yet: call fit(X_train) or pass it explicitly")
        return X, Y

    def _check_sv_x(self, sv: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x)
        if x.ndim != 1:
            raise DataError(f"x must be one feature vector (d,), got shape {x.shape}")
        sv, x2 = self._check_pair(sv, x[None, :])
        return np.asarray(sv, dtype=np.float64), np.asarray(x2[0], dtype=np.float64)

    # -- to implement
    def _gram(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _per_dimension(self, sv: np.ndarray, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _gradient(self, sv: np.ndarray, x: np.ndarray) -> np.ndarray:
        raise BowlrpError(f"kernel {self.name!r} has no gradient")


# --------------------------------------------------------------------------- kernels
class Linear(Kernel):
    """k(x, y) = <x, y>; sum-decomposable with k^(d) = x_d y_d (Eq. A.1)."""

    name = "linear"
    sum_decomposable = True

    def _gram(self, X, Y):
        return _blockwise(lambda a, b: a @ b.T, X, Y)

    def _per_dimension(self, sv, x):
        return sv * x

    def _gradient(self, sv, x):
        return sv.copy()

    def _expansion_gradient(self, sv, coef, points):
        return np.broadcast_to(coef @ sv, points.shape).copy()


class HistogramIntersection(Kernel):
    """k(x, y) = sum_d min(x_d, y_d) (Eq. A.2), for non-negative histograms.

    Its gradient is the almost-everywhere derivative: 1 where x_d < sv_d, 0 where x_d > sv_d,
    and 1/2 at ties.
    """

    name = "hik"
    sum_decomposable = True
    nonnegative_input = True

    def _gram(self, X, Y):
        return _blockwise(_pairwise_min_sum, X, Y)

    def _per_dimension(self, sv, x):
        return np.minimum(sv, x)

    def _gradient(self, sv, x):
        return (x < sv) + 0.5 * (x == sv)


class AdditiveChi2(Kernel):
    """k(x, y) = sum_d 2 x_d y_d / (x_d + y_d), with 0/0 := 0; for non-negative histograms."""

    name = "additive-chi2"
    sum_decomposable = True
    nonnegative_input = True

    def _gram(self, X, Y):
        return _blockwise(_pairwise_additive_chi2, X, Y)

    def _per_dimension(self, sv, x):
        return _safe_ratio(2.0 * sv * x, sv + x)

    def _gradient(self, sv, x):
        # d/dx 2 s x / (s + x) = 2 s^2 / (s + x)^2
        return _safe_ratio(2.0 * sv * sv, (sv + x) ** 2)


class ExpChi2(Kernel):
    """k(x, y) = exp(-gamma * sum_d (x_d - y_d)^2 / (x_d + y_d)), 0/0 := 0 (Eq. A.6, gamma is its sigma).

    Parameters
    ----------
    gamma : float or None
        Inverse width. ``None`` (default): :meth:`fit` sets ``gamma_`` to 1 / (mean chi-squared
        distance between distinct training pairs), the usual heuristic for BoW histograms
        (computed on at most :data:`MAX_FIT_SAMPLES` evenly strided training rows).
    """

    name = "chi2"
    nonnegative_input = True

    def __init__(self, gamma: float | None = None):
        self.gamma = gamma

    def get_params(self) -> dict:
        return {"gamma": self.gamma}

    def fit(self, X: np.ndarray) -> "ExpChi2":
        X = _as_2d(X, "X")
        self._check(X, "X")
        if self.gamma is not None:
            self.gamma_ = float(self.gamma)
            return self
        sub = _fit_subset(X)
        n = sub.shape[0]
        dist = _blockwise(_pairwise_chi2_distance, sub, sub)
        mean = dist.sum() / (n * (n - 1)) if n > 1 else 0.0  # diagonal is zero
        self.gamma_ = 1.0 / mean if mean > 0 else 1.0  # identical rows: any width works
        return self

    @property
    def is_fitted(self) -> bool:
        return self.gamma is not None or hasattr(self, "gamma_")

    @property
    def width(self) -> float:
        """The gamma in use: the fitted ``gamma_`` or the given ``gamma``."""
        return float(getattr(self, "gamma_", self.gamma))

    def _fitted_state(self) -> dict:
        return {"gamma_": self.gamma_} if hasattr(self, "gamma_") else {}

    def _gram(self, X, Y):
        return np.exp(-self.width * _blockwise(_pairwise_chi2_distance, X, Y))

    def _gradient(self, sv, x):
        # Eq. A.7: dk(s, x)/dx_d = k(s, x) * gamma * (4 s_d^2 / (s_d + x_d)^2 - 1); at s_d = x_d = 0 the
        # ratio is taken as 0, the one-sided derivative from the admissible side x_d > 0.
        k = self._gram(sv, x[None, :])  # (S, 1)
        return k * self.width * (4.0 * _safe_ratio(sv * sv, (sv + x) ** 2) - 1.0)

    def _expansion_gradient(self, sv, coef, points):
        # sum_i c_i dk(s_i, p)/dp_d = gamma * (4 sum_i w_i s_id^2 / (s_id + p_d)^2 - sum_i w_i), w_i = c_i k(s_i, p):
        # one Gram evaluation of all points, then one pass over (points, support vectors, d)
        W = self._gram(points, sv) * coef[None, :]  # (n, S)
        ratios = _weighted_chi2_ratios(W, np.ascontiguousarray(sv), np.ascontiguousarray(points))
        return self.width * (4.0 * ratios - W.sum(1)[:, None])


class Rbf(Kernel):
    """Gaussian kernel k(x, y) = exp(-||x - y||^2 / sigma^2) (Eq. A.4).

    Parameters
    ----------
    sigma : float or None
        Kernel width. ``None`` (default): :meth:`fit` sets ``sigma_`` so that sigma^2 is the mean
        squared Euclidean distance between distinct training pairs (exact, computed in O(n d)).
    """

    name = "rbf"

    def __init__(self, sigma: float | None = None):
        self.sigma = sigma

    def get_params(self) -> dict:
        return {"sigma": self.sigma}

    def fit(self, X: np.ndarray) -> "Rbf":
        X = _as_2d(X, "X")
        if self.sigma is not None:
            self.sigma_ = float(self.sigma)
            return self
        n = X.shape[0]
        sum_sq = 0.0
        total = np.zeros(X.shape[1])
        for i0 in range(0, n, _rows_per_block(X.shape[1])):
            block = np.asarray(X[i0:i0 + _rows_per_block(X.shape[1])], dtype=np.float64)
            sum_sq += float((block * block).sum())
            total += block.sum(0)
        # sum_{i != j} ||x_i - x_j||^2 = 2 n sum_i ||x_i||^2 - 2 ||sum_i x_i||^2
        mean_sq = (2.0 * n * sum_sq - 2.0 * float(total @ total)) / (n * (n - 1)) if n > 1 else 0.0
        self.sigma_ = float(np.sqrt(mean_sq)) if mean_sq > 0 else 1.0
        return self

    @property
    def is_fitted(self) -> bool:
        return self.sigma is not None or hasattr(self, "sigma_")

    @property
    def width(self) -> float:
        """The sigma in use: the fitted ``sigma_`` or the given ``sigma``."""
        return float(getattr(self, "sigma_", self.sigma))

    def _fitted_state(self) -> dict:
        return {"sigma_": self.sigma_} if hasattr(self, "sigma_") else {}

    def _gram(self, X, Y):
        return np.exp(-_blockwise(_squared_distances, X, Y) / self.width**2)

    def along_segments(self, Y, x, starts):
        # On p = s + g (x - s): ||p - y||^2 = ||s - y||^2 + 2 g (s - y).(x - s) + g^2 ||x - s||^2, a
        # quadratic in g whose coefficients cost one GEMM; every later g is O(len(starts) * len(Y)).
        Y = np.asarray(Y, dtype=np.float64)
        x = np.asarray(x, dtype=np.float64).ravel()
        S = np.asarray(starts, dtype=np.float64)
        SY = S @ Y.T
        ss, yy = _row_norms2(S), _row_norms2(Y)
        a = ss[:, None] + yy[None, :] - 2.0 * SY
        b = (S @ x - ss)[:, None] - (Y @ x)[None, :] + SY
        c = ((x - S) ** 2).sum(1)
        inv_width2 = 1.0 / self.width**2

        def at(g: np.ndarray, rows: np.ndarray) -> np.ndarray:
            g = np.asarray(g, dtype=np.float64)[:, None]
            sq = a[rows] + 2.0 * g * b[rows] + g * g * c[rows, None]
            return np.exp(-np.maximum(sq, 0.0) * inv_width2)

        return at

    def _gradient(self, sv, x):
        # Eq. A.5: dk(s, x)/dx = k(s, x) * 2 (s - x) / sigma^2
        k = self._gram(sv, x[None, :])
        return k * 2.0 * (sv - x) / self.width**2

    def _expansion_gradient(self, sv, coef, points):
        # sum_i c_i k(s_i, p) 2 (s_i - p) / sigma^2 = 2 / sigma^2 (W @ S - (sum_i w_i) p), w_i = c_i k(s_i, p):
        # two GEMMs for all points
        W = self._gram(points, sv) * coef[None, :]  # (n, S)
        return 2.0 / self.width**2 * (W @ sv - W.sum(1)[:, None] * points)


KERNELS: dict[str, type[Kernel]] = {
    cls.name: cls for cls in (Linear, HistogramIntersection, AdditiveChi2, ExpChi2, Rbf)
}


def make_kernel(name: str, **params: Any) -> Kernel:
    """Kernel by name: ``linear``, ``hik``, ``additive-chi2``, ``chi2`` (gamma=), ``rbf`` (sigma=)."""
    if name not in KERNELS:
        raise BowlrpError(f"unknown kernel {name!r}; choose one of {', '.join(KERNELS)}")
    try:
        return KERNELS[name](**params)
    except TypeError as exc:
        raise BowlrpError(f"kernel {name!r}: {exc}") from None


# --------------------------------------------------------------------------- sums over blocks
class KernelSum(Kernel):
    """Weighted sum of kernels over feature blocks (Eq. 2.67 with fixed mixture weights).

    k(x, y) = sum_u weights[u] * kernels[u](x[blocks[u]], y[blocks[u]]); e.g. one kernel per
    descriptor scale or spatial-pyramid cell. Sum-decomposable iff every part is.

    Parameters
    ----------
    kernels : list of Kernel
    blocks : list of slice
        Column ranges of the full feature vector, one per kernel.
    weights : list of float
        Non-negative mixture weights beta_u.
    """

    name = "sum"

    def __init__(self, kernels: list[Kernel], blocks: list[slice], weights: list[float] | None = None):
        if weights is None:
            weights = [1.0] * len(kernels)
        if not (len(kernels) == len(blocks) == len(weights)) or not kernels:
            raise BowlrpError("KernelSum needs one block and one weight per kernel (at least one kernel)")
        if any(w < 0 for w in weights):
            raise BowlrpError("KernelSum weights must be non-negative to keep the sum a kernel")
        self.kernels = list(kernels)
        self.blocks = [b if isinstance(b, slice) else slice(*b) for b in blocks]
        self.weights = [float(w) for w in weights]

    @property
    def sum_decomposable(self) -> bool:  # type: ignore[override]
        return all(k.sum_decomposable for k in self.kernels)

    @property
    def is_fitted(self) -> bool:
        return all(k.is_fitted for k in self.kernels)

    def get_params(self) -> dict:
        return {"kernels": self.kernels, "blocks": self.blocks, "weights": self.weights}

    def fit(self, X: np.ndarray) -> "KernelSum":
        X = _as_2d(X, "X")
        for kernel, block in zip(self.kernels, self.blocks):
            kernel.fit(X[:, block])
        return self

    def _check(self, X, name):
        pass  # each part checks its own block

    def _gram(self, X, Y):
        out = np.zeros((X.shape[0], Y.shape[0]))
        for kernel, block, weight in zip(self.kernels, self.blocks, self.weights):
            Xb = X[:, block]
            out += weight * kernel.gram(Xb, Xb if X is Y else Y[:, block])
        return out

    def _per_dimension(self, sv, x):
        out = np.zeros(sv.shape)
        for kernel, block, weight in zip(self.kernels, self.blocks, self.weights):
            out[:, block] += weight * kernel.per_dimension(sv[:, block], x[block])
        return out

    def _gradient(self, sv, x):
        out = np.zeros(sv.shape)
        for kernel, block, weight in zip(self.kernels, self.blocks, self.weights):
            out[:, block] += weight * kernel.gradient(sv[:, block], x[block])
        return out

    def _expansion_gradient(self, sv, coef, points):
        out = np.zeros(points.shape)
        for kernel, block, weight in zip(self.kernels, self.blocks, self.weights):
            out[:, block] += weight * kernel.expansion_gradient(sv[:, block], coef, points[:, block])
        return out

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        metas = [k.get_state()[0] for k in self.kernels]  # kernels hold no arrays
        blocks = [[b.start, b.stop, b.step] for b in self.blocks]
        return {"name": self.name, "kernels": metas, "blocks": blocks, "weights": self.weights}, {}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "KernelSum":
        kernels = [Kernel.from_state(m, {}) for m in meta["kernels"]]
        return cls(kernels, [slice(*b) for b in meta["blocks"]], meta["weights"])

    def __repr__(self) -> str:
        parts = ", ".join(f"{w:g}*{k!r}[{b.start}:{b.stop}]" for k, b, w in zip(self.kernels, self.blocks, self.weights))
        return f"KernelSum({parts})"


def linear_feature_weights(kernel: Kernel, n_features: int) -> np.ndarray | None:
    """Per-dimension weights v with k(x, y) = sum_d v_d x_d y_d, or None if the kernel is not of that form.

    True for :class:`Linear` (v = 1) and for a :class:`KernelSum` of linear kernels (v_d = sum of the
    weights of the blocks containing d); such a machine is scored and saved as w = v * sum_i alpha_i y_i x_i.
    """
    if isinstance(kernel, Linear):
        return np.ones(n_features)
    if isinstance(kernel, KernelSum) and all(isinstance(k, Linear) for k in kernel.kernels):
        scale = np.zeros(n_features)
        for block, weight in zip(kernel.blocks, kernel.weights):
            scale[block] += weight
        return scale
    return None
