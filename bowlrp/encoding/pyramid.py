"""Spatial pyramid: which image regions ("cells") a descriptor belongs to.

Geometry: a descriptor position is its centre as a fraction of the work image,
``(x, y)`` in ``[0, 1)``, ``x`` along columns (left to right), ``y`` along rows (top to
bottom) — :meth:`bowlrp.features.descriptors.DescriptorSet.normalized_positions`.

A level ``(rows, cols)`` cuts the image into ``rows`` equal horizontal bands and ``cols``
equal vertical bands, i.e. ``rows * cols`` cells, written in matrix notation: ``(3, 1)`` is
three horizontal stripes stacked top to bottom. Cells are numbered globally, level after
level, row-major inside a level (left to right, then top to bottom). The default
``((1, 1), (2, 2), (3, 1))`` is the VOC Fisher-vector layout 1x1 + 2x2 + 3x1 with 8 cells::

    level 0: 0           level 1: 1 2     level 2: 5
                                  3 4              6
                                                   7

Every descriptor lies in exactly one cell per level.
"""
from __future__ import annotations

import numpy as np

DEFAULT_LEVELS = ((1, 1), (2, 2), (3, 1))


class SpatialPyramid:
    """Spatial pyramid layout.

    Parameters
    ----------
    levels : sequence of (rows, cols)
        One grid per level, in matrix notation (see the module docstring).
    """

    def __init__(self, levels=DEFAULT_LEVELS):
        self.levels = levels

    def _levels(self) -> tuple[tuple[int, int], ...]:
        levels = tuple((int(r), int(c)) for r, c in self.levels)
        if not levels or any(r < 1 or c < 1 for r, c in levels):
            raise ValueError(f"pyramid levels must be a non-empty list of (rows, cols) >= 1, got {self.levels!r}")
        return levels

    @property
    def n_levels(self) -> int:
        return len(self._levels())

    @property
    def n_cells(self) -> int:
        """Total number of cells over all levels."""
        return sum(r * c for r, c in self._levels())

    @property
    def level_offsets(self) -> np.ndarray:
        """(n_levels + 1,) int: cells of level ``i`` have ids ``offsets[i] .. offsets[i+1]-1``."""
        return np.concatenate([[0], np.cumsum([r * c for r, c in self._levels()])]).astype(np.int64)

    def cell_index(self, positions: np.ndarray) -> np.ndarray:
        """Global cell id of every descriptor at every level.

        Parameters
        ----------
        positions : (N, 2) float
            Descriptor centres ``(x, y)`` as fractions of the image in ``[0, 1)``; values
            outside are clipped to the border cells.

        Returns
        -------
        (N, n_levels) int64
            Column ``i`` holds ids in ``offsets[i] .. offsets[i+1]-1``.
        """
        pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        offsets = self.level_offsets
        out = np.empty((len(pos), self.n_levels), dtype=np.int64)
        for i, (rows, cols) in enumerate(self._levels()):
            col = np.clip(np.floor(pos[:, 0] * cols), 0, cols - 1).astype(np.int64)
            row = np.clip(np.floor(pos[:, 1] * rows), 0, rows - 1).astype(np.int64)
            out[:, i] = offsets[i] + row * cols + col
        return out

    def cell_masks(self, positions: np.ndarray) -> list[np.ndarray]:
        """Boolean membership mask ``(N,)`` of every cell, in global cell order."""
        index = self.cell_index(positions)
        offsets = self.level_offsets
        masks = []
        for i in range(self.n_levels):
            for cell in range(offsets[i], offsets[i + 1]):
                masks.append(index[:, i] == cell)
        return masks

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {"levels": [list(level) for level in self._levels()]}, {}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray] | None = None) -> "SpatialPyramid":
        return cls(levels=tuple(tuple(int(v) for v in level) for level in meta["levels"]))

    def __repr__(self) -> str:
        return f"SpatialPyramid(levels={self._levels()!r})"


def single_cell_index(n: int) -> np.ndarray:
    """Cell ids ``(n, 1)`` for the no-pyramid case: every descriptor in cell 0."""
    return np.zeros((n, 1), dtype=np.int64)


def pyramid_atoms(cell_index: np.ndarray, level_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The common refinement of all levels ("atoms"): regions whose descriptors share every cell.

    Sums over the cells of all levels are then one sum per atom plus a small (cells x atoms)
    product, instead of one pass over the descriptors per level (8 atoms for 1x1 + 2x2 + 3x1).

    Parameters
    ----------
    cell_index : (N, n_levels) int
        Global cell ids (:meth:`SpatialPyramid.cell_index`).
    level_offsets : (n_levels + 1,) int
        :attr:`SpatialPyramid.level_offsets`.

    Returns
    -------
    atom_of : (N,) int64
        Atom of each descriptor, ``0 .. n_atoms - 1`` (only atoms that hold descriptors).
    membership : (n_cells, n_atoms) float64
        1 where the atom lies in the cell.
    """
    offsets, sizes = level_offsets[:-1], np.diff(level_offsets)
    # the level-local cell ids as the digits of a mixed-radix number
    strides = np.concatenate([[1], np.cumprod(sizes)[:-1]]).astype(np.int64)
    key = (np.asarray(cell_index, dtype=np.int64) - offsets) @ strides
    atom_keys, atom_of = np.unique(key, return_inverse=True)
    atoms = offsets + (atom_keys[:, None] // strides) % sizes  # (n_atoms, n_levels) cell ids
    membership = np.zeros((int(level_offsets[-1]), len(atom_keys)))
    for level in range(atoms.shape[1]):
        membership[atoms[:, level], np.arange(len(atom_keys))] = 1.0
    return atom_of.astype(np.int64).ravel(), membership


def atoms_to_cells(membership: np.ndarray, per_atom: np.ndarray) -> np.ndarray:
    """Sums over the atoms of each cell: ``(n_atoms, ...)`` → ``(n_cells, ...)``.

    Written as gathers and adds rather than a (cells x atoms) matrix product: the product is tiny
    but a threaded BLAS call on it costs milliseconds on a busy machine.
    """
    out = np.zeros((membership.shape[0],) + per_atom.shape[1:])
    for cell, atom in zip(*np.nonzero(membership)):
        out[cell] += per_atom[atom]
    return out


def cells_to_atoms(membership: np.ndarray, per_cell: np.ndarray) -> np.ndarray:
    """Sums over the cells each atom lies in: ``(n_cells, ...)`` → ``(n_atoms, ...)``, C-contiguous."""
    out = np.zeros((membership.shape[1],) + per_cell.shape[1:])
    for cell, atom in zip(*np.nonzero(membership)):
        out[atom] += per_cell[cell]
    return out
