"""Faithfulness of a Fisher-vector model's descriptor relevance: MoRF curves by replacing local
descriptors with samples of the model's own GMM (dissertation Appendix C.2, Eqs. C.1-C.2; AOPC
Eq. 3.7; the comparison of rules in Fig. 4.3).

Pixel perturbation suits a Fisher-vector model badly: one changed pixel touches many overlapping
descriptors, and grey patches with straight edges are evidence of their own for SIFT. So the
descriptors are ordered by relevance and replaced, ``batch`` at a time, by draws from the GMM
(near the data manifold); a replaced descriptor keeps its position, hence its pyramid cells.

A Fisher vector is a sum over descriptors before its normalisation (Eq. C.1), so a step needs no
re-encoding: :class:`IncrementalFisher` subtracts the replaced descriptors' contributions from the
sums and adds their substitutes' (Eq. C.2), then applies the normalisation. A step costs the
posteriors of ``batch`` new descriptors and the moments of ``2 batch``, not an encoding of the image.

Orders: the relevance ``R_l`` of each descriptor under an LRP rule (:data:`RULE_ORDERS`: epsilon 1
and 100, alpha 2 / beta 1, the |z| counter-example) or a random permutation. Each curve is repeated
with other substitutes; the substitutes of repetition r are the same for every order, so orders are
compared on equal draws.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numba import njit

from ..encoding import FisherEncoder, SparsePosteriors
from ..encoding.fisher import L2_FLOOR, MOMENT_BLOCK_MIN_ROWS, MOMENT_BLOCKS, signed_sqrt
from ..encoding.pyramid import atoms_to_cells
from ..errors import BowlrpError
from ..features.descriptors import DescriptorSet
from ..parallel import one_thread

RULE_ORDERS: dict[str, dict] = {
    "eps1": {"rule": "epsilon", "eps": 1.0},
    "eps100": {"rule": "epsilon", "eps": 100.0},
    "ab21": {"rule": "alphabeta", "alpha": 2.0},
    "absz": {"rule": "absz"},
}
RANDOM = "random"


def sample_gmm(gmm, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from the diagonal GMM (a component by its weight, then its Gaussian), (n, D) float32."""
    weights = gmm.weights_.astype(np.float64)
    component = rng.choice(len(weights), size=n, p=weights / weights.sum())
    noise = rng.standard_normal((n, gmm.means_.shape[1]))
    return (gmm.means_[component] + noise * np.sqrt(gmm.variances_[component])).astype(np.float32)


class _RowPosteriors:
    """The kept posteriors of a block's descriptors, row-addressable: ``(n, M)`` component and gamma
    arrays padded with gamma 0, so the posteriors of any rows come back as CSR without recomputing
    them (a step removes the contributions of descriptors whose posteriors are known)."""

    def __init__(self, kept: SparsePosteriors) -> None:
        counts = np.diff(kept.indptr)
        n, width = len(counts), max(1, int(counts.max(initial=0)))
        self.n_components = kept.n_components
        self.component = np.zeros((n, width), dtype=np.int32)
        self.gamma = np.zeros((n, width))
        self.put(np.arange(n), kept)

    def put(self, rows: np.ndarray, kept: SparsePosteriors) -> None:
        counts = np.diff(kept.indptr)
        if counts.max(initial=0) > self.gamma.shape[1]:  # a new descriptor reaches more components
            grow = int(counts.max()) - self.gamma.shape[1]
            self.component = np.pad(self.component, ((0, 0), (0, grow)))
            self.gamma = np.pad(self.gamma, ((0, 0), (0, grow)))
        self.gamma[rows] = 0.0
        slot = np.arange(len(kept.gamma)) - np.repeat(kept.indptr[:-1], counts)
        at = np.repeat(rows, counts)
        self.component[at, slot] = kept.component
        self.gamma[at, slot] = kept.gamma

    def rows(self, rows: np.ndarray) -> SparsePosteriors:
        gamma = self.gamma[rows]
        present = gamma > 0  # kept posteriors are >= the cut (1e-6); padding is 0
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(present.sum(axis=1), out=indptr[1:])
        return SparsePosteriors(indptr, self.component[rows][present], gamma[present], self.n_components)

    def copy(self) -> "_RowPosteriors":
        twin = object.__new__(_RowPosteriors)
        twin.n_components, twin.component, twin.gamma = self.n_components, self.component.copy(), self.gamma.copy()
        return twin


@dataclass
class _BlockSums:
    """One encoding block's share of the descriptors and its running per-atom moments."""

    encoder: FisherEncoder
    projection: object        # the block's PCA (or None): raw descriptors -> the GMM's space
    row_of: np.ndarray        # (n_descriptors,) row in this block's values, -1 where the block has none
    values: np.ndarray        # (n_block, D) the current descriptors in the GMM's space (shared until written)
    atom_of: np.ndarray       # (n_block,) pyramid atom of each row (positions never change)
    member: np.ndarray        # (n_cells, n_atoms) atoms of each cell
    counts: np.ndarray        # (n_cells,) descriptors per cell
    moments: list[np.ndarray]  # S0 (1, A, K), S1 and S2 (1, A, K, D) float64: Eq. C.1's sums before u, v
    posteriors: _RowPosteriors  # of the current values
    owns_rows: bool = True    # False in a copy until its first replace: copies share the base values and posteriors
    linear: _LinearScore | None = None  # w . Phi of this block, when a linear score is tracked

    def changed_pairs(self, atoms: np.ndarray, *posteriors: SparsePosteriors) -> np.ndarray:
        """(cell, component) pairs ``(C, K)`` bool whose moments descriptors of ``atoms`` with these
        posteriors touch (every cell holding one of the atoms)."""
        touched = np.zeros((self.member.shape[1], self.encoder.n_components), dtype=bool)
        for kept in posteriors:
            touched[np.repeat(atoms, np.diff(kept.indptr)), kept.component] = True
        return (self.member @ touched) > 0

    def unnormalized(self) -> np.ndarray:
        """The per-cell sums ``(n_cells, dim_per_cell)`` the encoder would give for the current values."""
        S0, S1, S2 = (atoms_to_cells(self.member, m[0]) for m in self.moments)
        return self.encoder.fisher_blocks(self.counts, S0, S1, S2)


@njit(cache=True, nogil=True)
def _swap_entries(x, w, rows, index, new, Q, L, P):  # pragma: no cover - compiled
    """``x[rows[j], index[j]] = new[j]`` with the per-cell sums of :class:`_LinearScore` moved along."""
    for j in range(len(new)):
        r, i, value = rows[j], index[j], new[j]
        old = x[r, i]
        x[r, i] = value
        Q[r] += value * value - old * old
        L[r] += abs(value) - abs(old)
        P[r] += w[r, i] * (math.copysign(math.sqrt(abs(value)), value) - math.copysign(math.sqrt(abs(old)), old))


class _LinearScore:
    """``w . Phi(x)`` of one block kept up to date while a few (cell, component) slices of the
    unnormalised vector ``x`` change (a linear SVM; ``Phi`` the encoder's ``enceval`` or ``vlfeat``
    normalisation).

    Per cell ``c`` it keeps ``Q_c = ||x_c||^2``, ``L_c = ||x_c||_1`` and ``P_c = w_c . ssqrt(x_c)``;
    a step updates them by the changed entries only. ``ssqrt`` is the signed square root, so
    ``||ssqrt(x_c)||^2 = L_c`` and

    * vlfeat  (``Phi_c = l2(ssqrt(x_c))``): ``w . Phi = sum_c P_c / max(sqrt(L_c), eps)``;
    * enceval (``Phi = l2(ssqrt(l2_c(x_c)))``): with ``r_c = max(sqrt(Q_c), eps)``,
      ``w . Phi = sum_c P_c / sqrt(r_c) / max(sqrt(sum_c L_c / r_c), eps)``.

    Equal to scoring :meth:`IncrementalFisher.vector` up to rounding (that path rounds ``x`` to
    float32 before normalising, this one stays in float64).
    """

    SUPPORTED = ("enceval", "vlfeat")

    def __init__(self, block: "_BlockSums", weights: np.ndarray) -> None:
        self.encoder = block.encoder
        self.x = block.unnormalized()
        self.w = np.asarray(weights, dtype=np.float64).reshape(self.x.shape)
        self.Q = np.einsum("cd,cd->c", self.x, self.x)
        self.L = np.abs(self.x).sum(axis=1)
        self.P = np.einsum("cd,cd->c", self.w, signed_sqrt(self.x))

    def copy(self) -> "_LinearScore":
        twin = object.__new__(_LinearScore)
        twin.encoder, twin.w = self.encoder, self.w
        twin.x, twin.Q, twin.L, twin.P = self.x.copy(), self.Q.copy(), self.L.copy(), self.P.copy()
        return twin

    def update(self, block: "_BlockSums", changed: np.ndarray) -> None:
        """Refresh the entries of the ``changed`` ``(C, K)`` (cell, component) pairs from ``block``'s moments."""
        cells, components = np.nonzero(changed)
        if not len(cells):
            return
        # the pairs' cell moments: each cell sums the atoms it holds
        share = block.member[cells]  # (n, A)
        S0 = np.einsum("na,an->n", share, block.moments[0][0][:, components])[None]
        S1, S2 = (np.einsum("na,and->nd", share, m[0][:, components])[None] for m in block.moments[1:])
        new = self.encoder.fisher_blocks(block.counts[cells][None], S0, S1, S2, components)[0]
        index = self.encoder.entry_index(components)
        d = self.encoder.n_features
        rows = np.concatenate(([cells] if self.encoder.weight_gradient else []) + [np.repeat(cells, d)] * 2)
        _swap_entries(self.x, self.w, rows, index, new, self.Q, self.L, self.P)

    def value(self) -> float:
        if self.encoder.normalization == "vlfeat":
            return float(np.sum(self.P / np.maximum(np.sqrt(np.maximum(self.L, 0.0)), L2_FLOOR)))
        r = np.maximum(np.sqrt(np.maximum(self.Q, 0.0)), L2_FLOOR)
        total = max(float(np.sqrt(max(np.sum(self.L / r), 0.0))), L2_FLOOR)
        return float(np.sum(self.P / np.sqrt(r)) / total)


class IncrementalFisher:
    """The Fisher vector of one image's descriptors under replacement, updated by Eq. C.2.

    The state is the posterior-weighted moments per pyramid atom (what the encoder sums before it
    forms the gradient blocks), so a step adds the new descriptors' moments and subtracts the old
    ones' in one pass over a few hundred descriptors, and :meth:`vector` forms the blocks once.

    Parameters
    ----------
    model : BowModel
        A Fisher-vector model (every block a :class:`FisherEncoder`).
    descriptors : DescriptorSet
        The image's descriptors (``model.features.descriptors(image)``).
    """

    def __init__(self, model, descriptors: DescriptorSet) -> None:
        if not model.features.is_fisher:
            raise BowlrpError("descriptor replacement needs a Fisher-vector model (its GMM draws the substitutes)")
        self.model = model
        self.n = len(descriptors)
        self.intercept: float | None = None  # set by track
        self._coef: np.ndarray | None = None
        self.blocks: list[_BlockSums] = []
        for block in model.features.blocks:
            index, values, positions = block.prepare(descriptors)
            encoder = block.encoder
            row_of = np.full(self.n, -1, dtype=np.int64)
            row_of[index] = np.arange(len(index))
            posteriors = encoder.posteriors(values)
            atom_of, member = encoder.atoms(encoder.cell_index(positions, len(values)))
            k, d, n_atoms = encoder.n_components, encoder.n_features, member.shape[1]
            blocks = MOMENT_BLOCKS if len(values) >= MOMENT_BLOCK_MIN_ROWS else 1
            moments = [np.zeros((blocks, n_atoms, k)), np.zeros((blocks, n_atoms, k, d)),
                       np.zeros((blocks, n_atoms, k, d))]
            encoder.add_moments(values, atom_of, posteriors, *moments)
            counts = atoms_to_cells(member, np.bincount(atom_of, minlength=n_atoms).astype(np.float64))
            self.blocks.append(_BlockSums(encoder, block.projection, row_of, values, atom_of, member, counts,
                                          [m.sum(axis=0, keepdims=True) for m in moments],
                                          _RowPosteriors(posteriors)))

    def copy(self) -> "IncrementalFisher":
        twin = object.__new__(IncrementalFisher)
        twin.model, twin.n, twin._coef = self.model, self.n, self._coef
        twin.blocks = [_BlockSums(b.encoder, b.projection, b.row_of, b.values, b.atom_of, b.member, b.counts,
                                  [m.copy() for m in b.moments], b.posteriors, owns_rows=False,
                                  linear=None if b.linear is None else b.linear.copy())
                       for b in self.blocks]
        twin.intercept = self.intercept
        return twin

    def track(self, coef: np.ndarray, intercept: float) -> None:
        """From now on keep the linear score ``coef . Phi(x) + intercept`` (:meth:`score`) up to date
        step by step, touching only the (cell, component) slices a step changes, instead of forming and
        normalising the whole vector (~0.3 M entries for K = 256 with a pyramid) per step."""
        if self._coef is not None and self._coef is coef and self.intercept == float(intercept):
            return  # already tracked (a copy of a tracked state carries its sums)
        if np.shape(coef) != (sum(b.encoder.dim for b in self.blocks),):
            raise BowlrpError(f"a linear score over {coef.shape} weights for vectors of "
                              f"{sum(b.encoder.dim for b in self.blocks)} dimensions")
        self.intercept, start = float(intercept), 0
        self._coef = coef
        coef = np.asarray(coef, dtype=np.float64)
        for block in self.blocks:
            end = start + block.encoder.dim
            block.linear = (_LinearScore(block, coef[start:end])
                            if block.encoder.normalization in _LinearScore.SUPPORTED else None)
            start = end

    def score(self) -> float:
        """The tracked linear score (:meth:`track`) of the current descriptors."""
        if self.intercept is None:
            raise BowlrpError("no linear score is tracked (call track first)")
        if all(b.linear is not None for b in self.blocks):
            return sum(b.linear.value() for b in self.blocks) + self.intercept
        return float(self.vector().astype(np.float64) @ np.asarray(self._coef, dtype=np.float64)) + self.intercept

    def replace(self, which: np.ndarray, substitutes: list[np.ndarray]) -> None:
        """Replace descriptors ``which`` (distinct indices into the image's descriptors) by
        ``substitutes[b]`` — for block b, one row per descriptor of ``which`` in the block's (GMM)
        space (rows of descriptors outside the block are ignored). The substitutes become the
        descriptors' current values, so a descriptor may be replaced again (region perturbation
        recomputes the same descriptor at several steps)."""
        which = np.asarray(which, dtype=np.int64)
        for block, substitute in zip(self.blocks, substitutes):
            rows = block.row_of[which]
            mine = rows >= 0
            if not mine.any():
                continue
            rows, new = rows[mine], substitute[mine]
            changed = (block.values[rows] != new).any(axis=1)  # e.g. under the contrast cut before and after
            if not changed.all():
                rows, new = rows[changed], new[changed]
                if not len(rows):
                    continue
            new_posteriors = block.encoder.posteriors(new)
            atoms = block.atom_of[rows]
            old_posteriors = block.posteriors.rows(rows)
            block.encoder.add_moments(block.values[rows], atoms, old_posteriors, *block.moments, sign=-1.0)
            block.encoder.add_moments(new, atoms, new_posteriors, *block.moments)
            if block.linear is not None:
                block.linear.update(block, block.changed_pairs(atoms, old_posteriors, new_posteriors))
            if not block.owns_rows:  # copy on first write: the base state and its other copies keep theirs
                block.values, block.posteriors, block.owns_rows = block.values.copy(), block.posteriors.copy(), True
            block.values[rows] = new
            block.posteriors.put(rows, new_posteriors)

    def replace_raw(self, which: np.ndarray, raw: np.ndarray) -> None:
        """:meth:`replace` with new descriptor values as dense SIFT gives them, ``raw`` (len(which), 128):
        each block projects its own rows (its PCA, if any) before the update."""
        which = np.asarray(which, dtype=np.int64)
        substitutes = []
        for block in self.blocks:
            mine = block.row_of[which] >= 0
            substitute = np.zeros((len(which), block.values.shape[1]), dtype=block.values.dtype)
            if mine.any():
                substitute[mine] = raw[mine] if block.projection is None else block.projection.transform(raw[mine])
            substitutes.append(substitute)
        self.replace(which, substitutes)

    def vector(self) -> np.ndarray:
        """The current image vector ``Phi(x)``, (dim,) float32."""
        parts = [b.encoder.finish(b.unnormalized(), b.counts) for b in self.blocks]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def step_scorer(model, state: IncrementalFisher, class_index: int | None = None):
    """A function returning the current scores of ``state``'s descriptors: all classes ``(n_classes,)``,
    or with ``class_index`` that class's ``(1,)`` — tracked step by step (:meth:`IncrementalFisher.track`)
    when its SVM is linear, else from the whole vector."""
    if class_index is None:
        return lambda: model.decision_function(state.vector()[None])[0]
    machine = model.classifier.estimators_[class_index]
    if getattr(machine, "coef_", None) is not None:
        state.track(machine.coef_, machine.intercept_)
        return lambda: np.array([state.score()])
    return lambda: machine.decision_function(state.vector()[None])


def descriptor_order(relevance: np.ndarray | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """Most relevant first (stable for ties), or a random permutation when ``relevance`` is None."""
    if relevance is None:
        return rng.permutation(n)
    return np.argsort(-np.asarray(relevance, dtype=np.float64), kind="stable")


def replacement_schedule(n: int, steps: int, batch: int) -> tuple[int, int]:
    """``(steps, batch)`` for ``n`` descriptors: ``batch`` per step while ``steps * batch`` descriptors
    exist (Appendix C.2: 10,000 in batches of 100), else smaller batches so the curve keeps its
    ``steps`` (images with fewer descriptors than steps: one per step)."""
    if n < 1:
        raise BowlrpError("an image without descriptors cannot be perturbed")
    batch = max(1, min(batch, n // steps))
    return min(steps, n // batch), batch


def replacement_curves(model, descriptors: DescriptorSet, class_name: str, orders: dict[str, np.ndarray | None],
                       steps: int = 100, batch: int = 100, repeats: int = 5, seed: int = 0,
                       index: int = 0) -> dict[str, np.ndarray]:
    """MoRF score curves of ``class_name`` under descriptor replacement.

    Parameters
    ----------
    orders : dict
        ``{name: R_l (n,) or None}``: descriptors by decreasing relevance, or a random order (None).
    steps, batch : int
        See :func:`replacement_schedule`.
    repeats : int
        Curves per order, each with other GMM draws (and, for random orders, another permutation).
    seed, index : int
        The draws of repetition r come from ``[seed, index, r]``: ``index`` tells images of a run apart.

    Returns
    -------
    dict
        ``{name: (repeats, steps + 1) float64}``: ``f`` after 0, 1, ..., steps replacement steps.
    """
    k = model.class_index(class_name)
    start = IncrementalFisher(model, descriptors)
    step_scorer(model, start, k)  # tracked once here; every curve's copy carries the sums
    n_steps, size = replacement_schedule(start.n, steps, batch)
    replaced = n_steps * size
    curves = {name: np.empty((repeats, n_steps + 1)) for name in orders}
    with one_thread():  # many small steps: thread pools would cost more than they save
        for r in range(repeats):
            draws = np.random.default_rng([seed, index, r])
            # substitutes for the j-th replaced descriptor, shared by every order (common random numbers)
            substitutes = [sample_gmm(b.encoder.gmm, replaced, draws) for b in start.blocks]
            shuffle = np.random.default_rng([seed, index, r, 1])
            for name, relevance in orders.items():
                order = descriptor_order(relevance, start.n, shuffle)[:replaced]
                state = start.copy()
                score = step_scorer(model, state, k)
                curves[name][r, 0] = score()[0]
                for step in range(n_steps):
                    span = slice(step * size, (step + 1) * size)
                    state.replace(order[span], [s[span] for s in substitutes])
                    curves[name][r, step + 1] = score()[0]
    return curves


def image_curves(model, image: np.ndarray, class_name: str, order_names: Sequence[str], steps: int = 100,
                 batch: int = 100, repeats: int = 5, seed: int = 0, index: int = 0) -> dict[str, np.ndarray]:
    """:func:`replacement_curves` of one image, explaining it once per LRP order of ``order_names``
    (names of :data:`RULE_ORDERS` or ``"random"``)."""
    check_orders(order_names)
    descriptors = model.features.descriptors(image)
    orders: dict[str, np.ndarray | None] = {}
    for name in order_names:
        if name == RANDOM:
            orders[name] = None
            continue
        explanation = model.explain(image, class_name, model.explanation_method(**RULE_ORDERS[name]))
        orders[name] = explanation.descriptor_relevance
    return replacement_curves(model, descriptors, class_name, orders, steps, batch, repeats, seed, index)


def check_orders(order_names: Sequence[str]) -> None:
    unknown = [name for name in order_names if name != RANDOM and name not in RULE_ORDERS]
    if unknown:
        raise BowlrpError(f"unknown order {', '.join(map(repr, unknown))}; descriptor replacement orders are "
                          f"{', '.join([*RULE_ORDERS, RANDOM])}")
    if not order_names or len(set(order_names)) != len(order_names):
        raise BowlrpError("give one or more distinct orders")


@dataclass(frozen=True)
class DescriptorCurves:
    """Descriptor replacement as a :class:`~bowlrp.analysis.perturbation.CurveSource` (Fisher-vector
    models only): orders by name (:data:`RULE_ORDERS`, ``"random"``), the schedule and the draws."""

    orders: tuple[str, ...] = (*RULE_ORDERS, RANDOM)
    steps: int = 100
    batch: int = 100
    repetitions: int = 5
    seed: int = 0
    mode: str = "descriptors"

    def __post_init__(self) -> None:
        check_orders(self.orders)
        if self.steps < 1 or self.batch < 1 or self.repetitions < 1:
            raise BowlrpError("steps, batch and repetitions must be positive")

    @classmethod
    def for_model(cls, model, orders: Sequence[str], **schedule) -> "DescriptorCurves":
        """Checked against ``model``: only a Fisher-vector model has the GMM the substitutes come from."""
        if getattr(model, "variant", None) != "fv":
            raise BowlrpError(f"descriptor replacement needs a Fisher-vector model; this is a {model.variant} model "
                              "(use mode 'regions')")
        return cls(tuple(orders), **schedule)

    @property
    def order_names(self) -> list[str]:
        return list(self.orders)

    def settings(self) -> dict:
        return {"mode": self.mode, "orders": self.order_names, "steps": self.steps, "batch": self.batch,
                "repetitions": self.repetitions, "seed": self.seed,
                "methods": {name: RULE_ORDERS[name] for name in self.orders if name != RANDOM}}

    def image_curves(self, model, image: np.ndarray, class_name: str, index: int) -> dict[str, np.ndarray]:
        return image_curves(model, image, class_name, self.orders, self.steps, self.batch, self.repetitions,
                            self.seed, index)
