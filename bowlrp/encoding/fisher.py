"""Improved Fisher vectors with a spatial pyramid (dissertation Section 4.2).

Per pyramid cell c holding the descriptors ``L_c`` (D-dim, after PCA) and for the GMM
``{(pi_k, mu_k, sigma_k^2)}`` with posteriors ``gamma_k(l)``, the *unnormalised* Fisher
vector is the sum over descriptors of the per-descriptor embeddings of Eqs. (4.1)-(4.4),
i.e. ``x_d = sum_l z_ld`` of Eq. (4.9)::

    pi-block  (K)     x_k      = sum_l (gamma_k(l) - pi_k) / sqrt(pi_k)             (optional)
    mu-block  (K, D)  x_{k,r}  = sum_l gamma_k(l) (l_r - mu_kr) / sigma_kr / sqrt(pi_k)
    sig-block (K, D)  x_{k,r}  = sum_l gamma_k(l) ((l_r - mu_kr)^2 / sigma_kr^2 - 1) / sqrt(2 pi_k)

laid out per cell as ``[pi_1..pi_K, u_1..u_K, v_1..v_K]`` (``u_k``, ``v_k`` each D values),
so ``dim_per_cell = (2D + w) K`` with ``w = 1`` iff ``weight_gradient``. Cells are
concatenated in the pyramid's global cell order.

VLFeat compatibility (``vl_fisher``, fisher.c / gmm.c of VLFeat 0.9.21):

* ``vl_fisher`` divides each block by the number of descriptors N (the mean of Eq. 4.5);
  ``encode_unnormalized(..., average=True)`` gives exactly that, per cell. The default is
  the sum of Eq. (4.9), which is what LRP decomposes. All normalisations below start with an
  L2 normalisation of (a function of) each cell, so the final vector is the same either way.
* posteriors below ``1e-6`` are skipped by ``vl_fisher`` (set to 0 here, without
  renormalising the row), and components with ``pi_k < 1e-6`` get no posterior mass and an
  all-zero block.
* "improved" = signed square root, then L2 normalisation with the norm floored at 1e-12.

Normalisation ``Phi`` (kept separate in :meth:`FisherEncoder.normalize`, because LRP treats
it as part of the kernel map, Eqs. 4.6-4.8):

* ``"enceval"`` (VOC default): each cell L2-normalised, then over the whole vector signed
  square root and L2;
* ``"vlfeat"``: each cell on its own as ``vl_fisher(..., improved=True)``: signed square root
  and L2 per cell;
* ``"none"``: the unnormalised vector, flattened.

An empty cell contributes a zero block (never NaN).

Computation: the kept posteriors in CSR form (:mod:`.posteriors`: one float32 GEMM per chunk of
descriptors and a compiled softmax with the 1e-6 cut), then a compiled kernel that accumulates
the moments from explicit differences over those few (descriptor, component) pairs; LRP reuses
the same posteriors. ``benchmarks/bench_fisher.py`` compares speed and result with VLFeat's
``vl_fisher`` on one VOC-size image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DataError, ModelError
from .posteriors import (MOMENT_BLOCK_MIN_ROWS, MOMENT_BLOCKS, VL_FISHER_MIN_POSTERIOR, VL_GMM_MIN_PRIOR,
                         SparsePosteriors, accumulate_moments, sparse_posteriors)
from .pyramid import SpatialPyramid, atoms_to_cells, pyramid_atoms, single_cell_index
from .vocabulary import GmmVocabulary
# Norm floor of VLFeat's L2 normalisation; keeps an all-zero block zero.
L2_FLOOR = 1e-12
NORMALIZATIONS = ("enceval", "vlfeat", "none")


def signed_sqrt(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``sign(x) * sqrt(|x|)``, element-wise (a zero keeps its sign bit, which no norm or product
    sees); ``out=x`` works in place."""
    magnitude = np.sqrt(np.abs(x))
    return np.copysign(magnitude, x, out=magnitude if out is None else out)


def l2_normalize_rows(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Each row divided by ``max(||row||_2, 1e-12)``; ``out=x`` works in place."""
    norm = np.sqrt(np.sum(np.square(x, dtype=np.float64), axis=-1, keepdims=True))
    return np.divide(x, np.maximum(norm, L2_FLOOR), out=out)


@dataclass(frozen=True)
class FisherForward:
    """One image's pass through the encoder, kept for the relevance step.

    Attributes
    ----------
    posteriors : SparsePosteriors
        The kept ``gamma_k(l)`` of every descriptor.
    counts : (n_cells,) float64
        Descriptors per cell.
    occupancy : (n_cells, K) float64
        ``sum_l gamma_k(l)`` per cell: zero where no descriptor reaches component k.
    unnormalized : (n_cells, dim_per_cell) float64
        ``x_d = sum_l z_ld`` (Eq. 4.9), summed over descriptors, before ``Phi``; with the epsilon
        rule these are the relevance step's denominators.
    """

    posteriors: SparsePosteriors
    counts: np.ndarray
    occupancy: np.ndarray
    unnormalized: np.ndarray

    def cell_vectors(self, average: bool) -> np.ndarray:
        """The unnormalised per-cell vectors, summed or (``average``) divided by the cell's count."""
        if not average:
            return self.unnormalized
        return self.unnormalized / np.maximum(self.counts, 1.0)[:, None]


class FisherEncoder:
    """Fisher-vector encoder over a fitted :class:`GmmVocabulary`.

    Parameters
    ----------
    gmm : GmmVocabulary
        Fitted diagonal GMM with K components in D dims.
    pyramid : SpatialPyramid or None
        Cells over which FVs are computed and concatenated; ``None`` = one cell (whole image).
    normalization : "enceval", "vlfeat" or "none"
        The map ``Phi`` applied by :meth:`normalize` (see the module docstring).
    weight_gradient : bool
        Prepend the mixture-weight block of Eq. (4.1) (the "complete" FV).
    chunk_rows : int
        Descriptors per posterior batch; bounds the (rows, K) working memory.
    """

    def __init__(
        self,
        gmm: GmmVocabulary,
        pyramid: SpatialPyramid | None = SpatialPyramid(),
        normalization: str = "enceval",
        weight_gradient: bool = False,
        chunk_rows: int = 16384,
    ):
        self.gmm = gmm
        self.pyramid = pyramid
        self.normalization = normalization
        self.weight_gradient = weight_gradient
        self.chunk_rows = chunk_rows

    def fit(self, X=None, y=None) -> "FisherEncoder":
        """Nothing to learn (the GMM is fitted separately); checks the parameters."""
        self._check()
        return self

    # -- layout --------------------------------------------------------------------------
    @property
    def vocabulary(self) -> GmmVocabulary:
        return self.gmm

    @property
    def n_components(self) -> int:
        return int(self.gmm.means_.shape[0])

    @property
    def n_features(self) -> int:
        """D, the descriptor dimension the GMM lives in."""
        return int(self.gmm.means_.shape[1])

    @property
    def n_cells(self) -> int:
        return 1 if self.pyramid is None else self.pyramid.n_cells

    @property
    def dim_per_cell(self) -> int:
        k, d = self.n_components, self.n_features
        return (2 * d + (1 if self.weight_gradient else 0)) * k

    @property
    def dim(self) -> int:
        """Length of the encoded vector, ``n_cells * dim_per_cell``."""
        return self.n_cells * self.dim_per_cell

    def block_slices(self) -> dict[str, slice]:
        """Where the blocks lie inside one cell's vector: ``"pi"`` (only with the weight
        gradient; K values), ``"mu"`` and ``"sigma"`` (K*D values each, component-major)."""
        k, d = self.n_components, self.n_features
        start = k if self.weight_gradient else 0
        out = {"pi": slice(0, start)} if self.weight_gradient else {}
        out["mu"] = slice(start, start + k * d)
        out["sigma"] = slice(start + k * d, start + 2 * k * d)
        return out

    def _check(self) -> None:
        if getattr(self.gmm, "means_", None) is None:
            raise ModelError("FisherEncoder needs a fitted GmmVocabulary")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {self.normalization!r}; use one of {NORMALIZATIONS}")

    def _values(self, values) -> np.ndarray:
        self._check()
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != self.n_features:
            raise ValueError(f"values must be (N, {self.n_features}), got shape {values.shape}")
        if not np.isfinite(values).all():
            raise DataError("descriptors contain NaN or infinite values")
        return values

    def cell_index(self, positions, n: int) -> np.ndarray:
        """Global cell ids ``(n, n_levels)`` (a single column of zeros without a pyramid)."""
        if self.pyramid is None:
            return single_cell_index(n)
        if positions is None:
            raise ValueError("positions (N, 2) are required with a spatial pyramid")
        positions = np.asarray(positions)
        if positions.shape != (n, 2):
            raise ValueError(f"positions must be ({n}, 2), got shape {positions.shape}")
        return self.pyramid.cell_index(positions)

    # -- posteriors as vl_fisher uses them -----------------------------------------------
    def assignments(self, values: np.ndarray) -> np.ndarray:
        """The ``gamma_k(l)`` that enter the FV statistics, (N, K) float32.

        GMM posteriors with VLFeat's sparsification: entries below 1e-6 set to zero (rows are
        not renormalised). LRP must use these, not the raw posteriors, for ``z_ld`` to sum to
        ``x_d`` exactly.
        """
        gamma = self.gmm.posteriors(self._values(values))
        gamma[gamma < VL_FISHER_MIN_POSTERIOR] = 0.0
        return gamma

    def posteriors(self, values: np.ndarray) -> SparsePosteriors:
        """The kept ``gamma_k(l) >= 1e-6`` of every descriptor (CSR), as the encoding uses them."""
        return sparse_posteriors(self.gmm.log_joint(), self._values(values), VL_FISHER_MIN_POSTERIOR,
                                 self.chunk_rows)

    def atoms(self, cell_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(atom of each descriptor (N,), cells x atoms membership)``: :func:`pyramid_atoms`."""
        offsets = self.pyramid.level_offsets if self.pyramid is not None else np.array([0, 1])
        return pyramid_atoms(cell_index, offsets)

    # -- encoding ------------------------------------------------------------------------
    def _whitening(self) -> tuple[np.ndarray, np.ndarray]:
        """``(means, 1 / sigma)`` (K, D) float64, computed once per GMM."""
        cached = getattr(self, "_whitening_cache", None)
        if cached is None or cached[0] is not self.gmm.means_:
            cached = (self.gmm.means_, self.gmm.means_.astype(np.float64),
                      1.0 / np.sqrt(self.gmm.variances_.astype(np.float64)))
            self._whitening_cache = cached
        return cached[1], cached[2]

    def add_moments(self, values: np.ndarray, atom_of: np.ndarray, posteriors: SparsePosteriors,
                    S0: np.ndarray, S1: np.ndarray, S2: np.ndarray, sign: float = 1.0) -> None:
        """Add ``sign`` times the posterior-weighted moments of ``values`` into per-atom accumulators.

        With ``t_kr(l) = (l_r - mu_kr) / sigma_kr`` and ``gamma`` the VLFeat-sparsified posteriors:
        ``S0[a, k] += sum gamma``, ``S1[a, k] += sum gamma t``, ``S2[a, k] += sum gamma t^2`` over the
        descriptors of atom ``a`` (:meth:`atoms`). ``S0 (B, A, K)``, ``S1, S2 (B, A, K, D)`` float64, in
        place, rows spread over the ``B`` leading accumulators in contiguous blocks (summed by the
        caller). ``sign = -1`` takes descriptors out again (an incremental update, Eq. C.2).

        The moments are accumulated from explicit differences ``l - mu_k`` over the kept
        (descriptor, component) pairs only (typically a few per descriptor): the GEMM form
        ``gamma^T [l, l^2]`` would be as fast but cancels catastrophically in float32 for
        tight components far from the origin (``(mu/sigma)^2`` digits lost).
        """
        means, inv_sigma = self._whitening()
        gamma = posteriors.gamma if sign == 1.0 else sign * posteriors.gamma
        accumulate_moments(self._values(values), posteriors.indptr, posteriors.component, gamma,
                            np.asarray(atom_of, dtype=np.int64), means, inv_sigma, S0, S1, S2)

    def _cell_statistics(self, values: np.ndarray, cell_index: np.ndarray, posteriors: SparsePosteriors):
        """Posterior-weighted moments of the whitened deviations, per cell (:meth:`add_moments`):
        float64 ``counts (C,)``, ``S0 (C, K)``, ``S1 (C, K, D)``, ``S2 (C, K, D)``.

        A descriptor lies in one cell per level; the moments are taken once per pyramid atom and
        each cell adds up the atoms it contains.
        """
        k, d = self.n_components, self.n_features
        atom_of, member = self.atoms(cell_index)
        n_atoms = member.shape[1]
        # a few descriptors (an incremental update) are not worth parallel accumulators of (atoms, K, D) each
        blocks = MOMENT_BLOCKS if len(values) >= MOMENT_BLOCK_MIN_ROWS else 1
        S0 = np.zeros((blocks, n_atoms, k))
        S1 = np.zeros((blocks, n_atoms, k, d))
        S2 = np.zeros((blocks, n_atoms, k, d))
        self.add_moments(values, atom_of, posteriors, S0, S1, S2)
        S0, S1, S2 = S0.sum(axis=0), S1.sum(axis=0), S2.sum(axis=0)
        counts = atoms_to_cells(member, np.bincount(atom_of, minlength=n_atoms).astype(np.float64))
        return counts, atoms_to_cells(member, S0), atoms_to_cells(member, S1), atoms_to_cells(member, S2)

    def fisher_blocks(self, counts: np.ndarray, S0: np.ndarray, S1: np.ndarray, S2: np.ndarray,
                      components: np.ndarray | None = None) -> np.ndarray:
        """The unnormalised per-cell Fisher vectors from per-cell moments (:meth:`_cell_statistics`):
        ``u = S1 / sqrt(pi)``, ``v = (S2 - S0) / sqrt(2 pi)`` (and the weight block first when
        ``weight_gradient``), zero for components under VLFeat's prior floor; ``(C, dim_per_cell)`` float64.

        ``components`` ``(n,)``: the moments hold only these components (``S0 (C, n)``, ``S1, S2 (C, n, D)``;
        ``counts`` may then be ``(C, n)``, one count per entry); the result holds their entries,
        ``(C, len(entry_index(components)))`` in that order."""
        weights = self.gmm.weights_.astype(np.float64)
        if components is not None:
            weights = weights[components]
        present = weights >= VL_GMM_MIN_PRIOR
        safe_w = np.where(present, weights, 1.0)
        k, d, cells = len(weights), self.n_features, len(S0)
        out = np.empty((cells, (k if self.weight_gradient else 0) + 2 * k * d))
        start = 0
        if self.weight_gradient:
            pi_block = out[:, :k]
            counts = np.asarray(counts, dtype=np.float64)
            np.divide(S0 - (counts if counts.ndim == 2 else counts[:, None]) * weights, np.sqrt(safe_w), out=pi_block)
            pi_block[:, ~present] = 0.0
            start = k
        # written into the output's slices: no per-block arrays to concatenate
        u = out[:, start:start + k * d].reshape(cells, k, d)
        v = out[:, start + k * d:].reshape(cells, k, d)
        np.divide(S1, np.sqrt(safe_w)[:, None], out=u)
        np.subtract(S2, S0[:, :, None], out=v)
        np.divide(v, np.sqrt(2.0 * safe_w)[:, None], out=v)
        u[:, ~present] = 0.0
        v[:, ~present] = 0.0
        return out

    def entry_index(self, components: np.ndarray) -> np.ndarray:
        """Positions inside one cell's vector of the entries of ``components`` ``(n,)``, in the order
        :meth:`fisher_blocks` gives them for that subset (weight block, then ``u``, then ``v``)."""
        components = np.asarray(components, dtype=np.int64)
        d = self.n_features
        slices = self.block_slices()
        rows = (components[:, None] * d + np.arange(d)).ravel()
        parts = [slices["mu"].start + rows, slices["sigma"].start + rows]
        if self.weight_gradient:
            parts.insert(0, components)
        return np.concatenate(parts)

    def forward(self, values: np.ndarray, positions: np.ndarray | None = None,
                posteriors: SparsePosteriors | None = None) -> FisherForward:
        """The encoding with everything its relevance step reads back (see :class:`FisherForward`).

        Parameters
        ----------
        values : (N, D) float
            Descriptors in the GMM's space (after PCA).
        positions : (N, 2) float or None
            Descriptor centres ``(x, y)`` as fractions of the image in ``[0, 1)``
            (:meth:`DescriptorSet.normalized_positions`); unused without a pyramid.
        posteriors : SparsePosteriors, optional
            :meth:`posteriors` of ``values`` when the caller already has them.
        """
        values = self._values(values)
        cell_index = self.cell_index(positions, len(values))
        if posteriors is None:
            posteriors = self.posteriors(values)
        elif len(posteriors) != len(values):
            raise ValueError(f"posteriors of {len(posteriors)} descriptors given for {len(values)}")
        counts, S0, S1, S2 = self._cell_statistics(values, cell_index, posteriors)
        return FisherForward(posteriors, counts, S0, self.fisher_blocks(counts, S0, S1, S2))

    def encode_unnormalized(self, values: np.ndarray, positions: np.ndarray | None = None, average: bool = False,
                            posteriors: SparsePosteriors | None = None) -> np.ndarray:
        """Unnormalised Fisher vector of every cell: ``x`` of Eq. (4.9), before ``Phi``.

        Parameters as :meth:`forward`, and ``average``: divide each cell by its descriptor count, as
        ``vl_fisher`` does.

        Returns
        -------
        (n_cells, dim_per_cell) float32
            Zero rows for cells without descriptors.
        """
        forward = self.forward(values, positions, posteriors)
        return forward.cell_vectors(average).astype(np.float32)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """The normalisation ``Phi`` of the unnormalised per-cell vectors.

        Parameters
        ----------
        x : (n_cells, dim_per_cell) or (dim,) float
            Output of :meth:`encode_unnormalized` (summed or averaged; same result unless
            ``normalization == "none"``).

        Returns
        -------
        (dim,) float32
        """
        self._check()
        # one private float64 copy, normalised in place (a K=256 pyramid vector is ~2.6 MB per pass)
        x = np.array(x, dtype=np.float64).reshape(self.n_cells, self.dim_per_cell)
        if self.normalization == "vlfeat":
            l2_normalize_rows(signed_sqrt(x, out=x), out=x)
        elif self.normalization == "enceval":
            flat = l2_normalize_rows(x, out=x).reshape(-1)
            l2_normalize_rows(signed_sqrt(flat, out=flat), out=flat)
        return x.reshape(-1).astype(np.float32)

    def encode(self, values: np.ndarray, positions: np.ndarray | None = None,
               posteriors: SparsePosteriors | None = None) -> np.ndarray:
        """Final Fisher vector ``Phi(x)`` of one image, (dim,) float32."""
        return self.vector(self.forward(values, positions, posteriors))

    def vector(self, forward: FisherForward) -> np.ndarray:
        """``Phi(x)`` of a :meth:`forward` result, (dim,) float32."""
        return self.finish(forward.unnormalized, forward.counts)

    def finish(self, unnormalized: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """``Phi`` of per-cell sums ``(n_cells, dim_per_cell)`` over ``counts`` ``(n_cells,)`` descriptors,
        (dim,) float32: what :meth:`vector` does with a forward pass, for sums kept elsewhere (the
        incremental updates of descriptor replacement, Eq. C.2)."""
        if self.normalization == "none":  # "none" reports vl_fisher's per-cell means
            unnormalized = unnormalized / np.maximum(counts, 1.0)[:, None]
        return self.normalize(unnormalized.astype(np.float32))

    # -- persistence ---------------------------------------------------------------------
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        self._check()
        gmm_meta, gmm_arrays = self.gmm.get_state()
        meta = {
            "gmm": gmm_meta,
            "pyramid": None if self.pyramid is None else self.pyramid.get_state()[0],
            "normalization": self.normalization,
            "weight_gradient": bool(self.weight_gradient),
            "chunk_rows": int(self.chunk_rows),
        }
        return meta, {f"gmm/{key}": value for key, value in gmm_arrays.items()}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray]) -> "FisherEncoder":
        gmm_arrays = {key[len("gmm/"):]: value for key, value in arrays.items() if key.startswith("gmm/")}
        pyramid = None if meta.get("pyramid") is None else SpatialPyramid.from_state(meta["pyramid"])
        return cls(
            gmm=GmmVocabulary.from_state(meta["gmm"], gmm_arrays),
            pyramid=pyramid,
            normalization=meta.get("normalization", "enceval"),
            weight_gradient=bool(meta.get("weight_gradient", False)),
            chunk_rows=int(meta.get("chunk_rows", 16384)),
        )
