"""Bag-of-Words encoders over a k-means vocabulary (dissertation Sections 2.4.1, 2.4.3).

A BoW encoder is a per-descriptor *mapping* ``m_d(l)`` onto the K visual words followed by a
*pooling* over the descriptors of each pyramid cell (Eq. 2.65) and an l1 normalisation per
cell. The two are kept apart (:meth:`mapping`, :meth:`encode_unnormalized`,
:meth:`normalize`) because LRP redistributes through the mapping values ``z_ld``.

* :class:`RankBowEncoder` — rank-mapped soft assignment, Eq. (2.86)::

      m_d(l) = p^(-rk_d(l))  if rk_d(l) <= n  else 0

  with ``rk_d(l)`` the 1-based position of centre d among the centres sorted by increasing
  Euclidean distance to ``l`` (the nearest centre has rank 1, weight 1/p), so each
  descriptor votes for its n nearest words (p = 2, n = 4 as in the thesis).
* :class:`HardVqEncoder` — hard vector quantisation: 1 for the nearest centre, 0 elsewhere.

Output layout: cells in the pyramid's global order, K values per cell; an empty cell is a
zero block.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError, ModelError
from .pooling import pool
from .pyramid import SpatialPyramid
from .vocabulary import KMeansVocabulary


def l1_normalize_rows(x: np.ndarray) -> np.ndarray:
    """Each row divided by its l1 norm; all-zero rows stay zero."""
    norm = np.abs(x).sum(axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


class BowEncoder:
    """Shared pooling / normalisation / persistence of the BoW encoders."""

    def __init__(self, vocab: KMeansVocabulary, pyramid: SpatialPyramid | None = None, pooling="sum"):
        self.vocab = vocab
        self.pyramid = pyramid
        self.pooling = pooling

    def fit(self, X=None, y=None):
        """Nothing to learn (the vocabulary is fitted separately)."""
        self._check()
        return self

    def _check(self) -> None:
        if getattr(self.vocab, "centers_", None) is None:
            raise ModelError(f"{type(self).__name__} needs a fitted KMeansVocabulary")

    @property
    def n_words(self) -> int:
        return int(self.vocab.centers_.shape[0])

    @property
    def n_cells(self) -> int:
        return 1 if self.pyramid is None else self.pyramid.n_cells

    @property
    def dim(self) -> int:
        """Length of the encoded vector, ``n_cells * K``."""
        return self.n_cells * self.n_words

    def _values(self, values) -> np.ndarray:
        self._check()
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != self.vocab.centers_.shape[1]:
            raise ValueError(f"values must be (N, {self.vocab.centers_.shape[1]}), got shape {values.shape}")
        if not np.isfinite(values).all():
            raise DataError("descriptors contain NaN or infinite values")
        return values

    def mapping(self, values: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def cell_masks(self, positions, n: int) -> list[np.ndarray]:
        """Boolean membership ``(n,)`` of every cell (one all-true mask without a pyramid)."""
        if self.pyramid is None:
            return [np.ones(n, dtype=bool)]
        if positions is None:
            raise ValueError("positions (N, 2) are required with a spatial pyramid")
        positions = np.asarray(positions)
        if positions.shape != (n, 2):
            raise ValueError(f"positions must be ({n}, 2), got shape {positions.shape}")
        return self.pyramid.cell_masks(positions)

    def encode_unnormalized(self, values: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """Pooled mappings of every cell before the l1 normalisation, (n_cells, K) float32.

        ``positions`` (N, 2) are descriptor centres ``(x, y)`` as fractions of the image in
        ``[0, 1)``; unused without a pyramid.
        """
        mapped = self.mapping(values)
        return np.stack([pool(mapped[mask], self.pooling) for mask in self.cell_masks(positions, len(mapped))])

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """l1 normalisation of every cell; (n_cells, K) or (dim,) in, (dim,) float32 out."""
        x = np.asarray(x, dtype=np.float64).reshape(self.n_cells, self.n_words)
        return l1_normalize_rows(x).reshape(-1).astype(np.float32)

    def encode(self, values: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """The BoW vector of one image, (dim,) float32."""
        return self.normalize(self.encode_unnormalized(values, positions))

    @property
    def vocabulary(self) -> KMeansVocabulary:
        return self.vocab

    def forward(self, values: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """The pooled cells before normalisation, ``(n_cells, K)`` (what :meth:`vector` finishes).

        Same call as :meth:`FisherEncoder.forward`, so a pipeline block treats every encoder alike;
        the BoW relevance step recomputes its per-descriptor mappings, so nothing else is kept.
        """
        return self.encode_unnormalized(values, positions)

    def vector(self, forward: np.ndarray) -> np.ndarray:
        """The normalised image vector of a :meth:`forward` result, (dim,) float32."""
        return self.normalize(forward)

    def _params_meta(self) -> dict:
        return {}

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        self._check()
        vocab_meta, vocab_arrays = self.vocab.get_state()
        meta = {
            "vocab": vocab_meta,
            "pyramid": None if self.pyramid is None else self.pyramid.get_state()[0],
            "pooling": self.pooling,
            **self._params_meta(),
        }
        return meta, {f"vocab/{key}": value for key, value in vocab_arrays.items()}

    @classmethod
    def _common_from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> dict:
        vocab_arrays = {key[len("vocab/"):]: value for key, value in arrays.items() if key.startswith("vocab/")}
        return {
            "vocab": KMeansVocabulary.from_state(meta["vocab"], vocab_arrays),
            "pyramid": None if meta.get("pyramid") is None else SpatialPyramid.from_state(meta["pyramid"]),
            "pooling": meta.get("pooling", "sum"),
        }


class RankBowEncoder(BowEncoder):
    """Rank-mapped soft BoW of Eq. (2.86), l1-normalised per cell.

    Parameters
    ----------
    vocab : KMeansVocabulary
        Fitted centres (K, D).
    p : float
        Base of the rank weights ``p^-rank`` (2 in the thesis).
    n : int
        Number of nearest centres a descriptor votes for (4 in the thesis).
    pyramid : SpatialPyramid or None
    pooling : "sum", "max" or float
        See :func:`bowlrp.encoding.pooling.pool` (Eq. 2.86 uses "sum").
    """

    def __init__(self, vocab: KMeansVocabulary, p: float = 2.0, n: int = 4, pyramid: SpatialPyramid | None = None, pooling="sum"):
        super().__init__(vocab, pyramid, pooling)
        self.p = p
        self.n = n

    def mapping(self, values: np.ndarray) -> np.ndarray:
        """``m_d(l)`` of Eq. (2.86) for every descriptor, (N, K) float32 (n non-zeros per row).

        Ties in distance are ranked by lower centre index first.
        """
        values = self._values(values)
        dist = self.vocab.squared_distances(values)
        n_rows, k = dist.shape
        n = min(int(self.n), k)
        if n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if n < k:
            nearest = np.argpartition(dist, n - 1, axis=1)[:, :n]
        else:
            nearest = np.broadcast_to(np.arange(k), (n_rows, k))
        # order the n candidates by (distance, index) to get ranks 1..n
        cand = np.take_along_axis(dist, nearest, axis=1)
        order = np.lexsort((nearest, cand), axis=1) if n_rows else np.zeros((0, n), dtype=np.int64)
        ranked = np.take_along_axis(nearest, order, axis=1)
        out = np.zeros((n_rows, k), dtype=np.float32)
        weights = float(self.p) ** -np.arange(1, n + 1, dtype=np.float64)
        np.put_along_axis(out, ranked, np.broadcast_to(weights.astype(np.float32), ranked.shape), axis=1)
        return out

    def _params_meta(self) -> dict:
        return {"p": float(self.p), "n": int(self.n)}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "RankBowEncoder":
        return cls(p=float(meta.get("p", 2.0)), n=int(meta.get("n", 4)), **cls._common_from_state(meta, arrays))


class HardVqEncoder(BowEncoder):
    """Hard vector quantisation: each descriptor counts for its nearest centre; l1-normalised
    histogram per cell.

    Parameters
    ----------
    vocab : KMeansVocabulary
    pyramid : SpatialPyramid or None
    pooling : "sum", "max" or float
    """

    def mapping(self, values: np.ndarray) -> np.ndarray:
        """One-hot rows ``m_d(l) = [d == argmin_j ||l - c_j||]``, (N, K) float32."""
        values = self._values(values)
        nearest = self.vocab.predict(values)
        out = np.zeros((len(values), self.n_words), dtype=np.float32)
        out[np.arange(len(values)), nearest] = 1.0
        return out

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "HardVqEncoder":
        return cls(**cls._common_from_state(meta, arrays))
