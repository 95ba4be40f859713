"""Spectral Relevance Analysis, SpRAy (dissertation Chapter 6, Algorithm 3; Sections 6.2-6.3).

Per class, the relevance maps of the images that contain the class are

1. **pooled** (:func:`sum_pool`) to a ``P x P`` grid, P in {5, 10, 20, 50} (20 by default), by
   summing relevance over a regular grid; optionally low-pass filtered (:func:`low_pass`); and
   **normalised** (:func:`normalize_map`) to unit total absolute relevance by default;
2. linked in a **binary symmetric kNN graph** (:func:`knn_affinity`, Eq. 6.1): ``w_ij = 1`` when
   ``j`` is among the ``k = ceil(ln n)`` nearest neighbours of ``i`` (Euclidean, pooled maps as
   vectors) or the other way round, as a scipy sparse matrix — never an ``n x n`` dense one, so a
   class of 50,000 maps fits in memory;
3. turned into the **normalised symmetric Laplacian** ``L_sym = I - D^-1/2 W D^-1/2``
   (:func:`normalized_laplacian`; Ng et al. 2002), whose smallest 20 eigenvalues
   (:func:`laplacian_spectrum`) and their **eigengap** (:func:`eigengap`) say how many well
   separated groups of maps — prediction strategies — the class holds;
4. **clustered** for k = 2..10 by seeded k-means on the row-normalised first k eigenvectors
   (:func:`spectral_labels`);
5. **embedded** in 2-D by t-SNE (perplexity 7, early exaggeration 6) on distances derived from the
   same kNN graph (:func:`graph_distances`, :func:`tsne_embedding`).

This module is the analysis of one set of maps (:func:`analyse`); :mod:`bowlrp.analysis.spray_classes`
runs it per class over relevance stores and ranks the classes by their small eigenvalues (Fig. 6.5).

Design choices the dissertation leaves open, and why:

* **Pooling of sizes that do not divide.** Each output cell covers ``[i H/P, (i+1) H/P)`` in
  continuous pixel coordinates and receives each pixel's relevance in proportion to the pixel's
  overlap with it. The pooling is then one linear map per axis whose columns sum to 1, so the total
  relevance is conserved exactly, a divisible size is an exact block sum, and maps smaller than
  the grid still pool (a pixel spreads over the cells it spans).
* **Normalisation.** The dissertation compares pooled maps as they are; then the Euclidean kNN
  graph links maps by how *much* relevance they hold (the score) as much as by *where* it lies, and
  small classes whose scores spread widely look as split as a class with two strategies. Dividing
  each pooled map by its total absolute relevance (``"l1"``, the default; CoRelAy's SpRAy examples
  normalise likewise) keeps only the layout. Measured on default toyvoc, FV K = 64, data seeds
  0/1/2 (``benchmarks/spray_watermark.py``): horse's lambda_2 rank 2/2/7 and best ARI
  0.80/0.93/0.86 against the sidecar's tag without normalisation, rank 1/1/1 and ARI 0.93/1.0/1.0
  with it. ``"none"`` reproduces the dissertation; ``"l2"`` divides by the Euclidean norm.
* **Low-pass.** Gaussian smoothing (Appendix E) on the pooled grid, ``sigma`` in grid cells, so it
  means the same for images of any size; ``reflect`` borders keep the total relevance.
* **Eigensolver.** The graph is split into connected components first: ``L_sym`` is block diagonal
  over them, so each component's spectrum is computed on its own and the smallest 20 over all are
  kept. A disconnected graph thus gets its exact multiplicity of the eigenvalue 0 (one per
  component), which a single Lanczos run from one start vector can miss. Components of at most
  ``dense_limit`` (200) nodes are solved densely (a few hundred kB); larger ones by ARPACK Lanczos
  for the largest eigenvalues of ``2 I - L_sym`` (spectrum in [0, 2], so "largest algebraic" is
  exactly "smallest of L_sym"; this converges without a factorisation), with a start vector drawn
  from the seed; if ARPACK does not converge, shift-invert around -1e-6 (sparse LU) takes over.
* **Eigengap.** ``eigengap_k`` is the k in 1..10 with the largest ``lambda_{k+1} - lambda_k``; 1
  means one connected mass of maps. The clustering shown in the figures uses ``max(2, eigengap_k)``.
* **t-SNE distances.** The dissertation transforms the affinity into ``1 / (W + eps)``: graph
  neighbours at distance 1, everything else "far" — a dense ``n x n`` matrix. We keep it sparse and
  use the **shortest-path (hop) distance on the kNN graph**, stored for each map's nearest
  ``3 * perplexity + 1`` maps by hops (what Barnes-Hut t-SNE reads; a map whose component is too
  small gets the rest at a far distance, as ``1 / eps`` would). Hop distance 1 is exactly the
  dissertation's neighbour relation; extending to 2 and more hops fills the neighbour lists t-SNE
  needs with the maps the graph puts nearest, instead of ties at ``1 / eps``, so the embedding
  shows the same graph the spectral clustering partitioned.
* **Most central maps of a cluster** are the ones closest to their k-means centre in the
  row-normalised spectral embedding — the space the clusters were found in.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import BowlrpError

log = logging.getLogger(__name__)

POOL_SIZES = (5, 10, 20, 50)
NORMALIZATIONS = ("l1", "l2", "none")
N_EIGENVALUES = 20
CLUSTER_RANGE = tuple(range(2, 11))
PERPLEXITY = 7.0
EARLY_EXAGGERATION = 6.0
DENSE_LIMIT = 200
#: distance given to maps no path of the kNN graph reaches (the dissertation's 1 / eps)
FAR = 1e3


# -- 1. preprocessing ---------------------------------------------------------------------

def _pool_matrix(length: int, size: int) -> np.ndarray:
    """``(size, length)`` weights: the share of each pixel that falls into each of ``size`` equal cells."""
    edges = np.arange(size + 1, dtype=np.float64) * (length / size)
    pixels = np.arange(length, dtype=np.float64)
    overlap = np.minimum(pixels + 1, edges[1:, None]) - np.maximum(pixels, edges[:-1, None])
    return np.clip(overlap, 0.0, None)


def sum_pool(relevance: np.ndarray, size: int = 20) -> np.ndarray:
    """Sum-pool an ``(H, W)`` map to ``(size, size)``; the total relevance is kept exactly.

    Cells cover equal fractions of the height and width; a pixel cut by a cell border is shared
    in proportion to its area on each side (see the module docstring).
    """
    R = np.asarray(relevance, dtype=np.float64)
    if R.ndim != 2 or R.size == 0:
        raise ValueError(f"a relevance map must be a non-empty 2-D array, got shape {R.shape}")
    if size < 1:
        raise ValueError(f"pool size must be positive, got {size}")
    return _pool_matrix(R.shape[0], size) @ R @ _pool_matrix(R.shape[1], size).T


def low_pass(pooled: np.ndarray, sigma: float | None) -> np.ndarray:
    """Gaussian smoothing of a pooled map, ``sigma`` in grid cells (None or 0: unchanged)."""
    if not sigma:
        return pooled
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(pooled, sigma=float(sigma), mode="reflect")


def normalize_map(pooled: np.ndarray, normalize: str = "l1") -> np.ndarray:
    """A pooled map divided by its total absolute relevance (``"l1"``), its Euclidean norm
    (``"l2"``), or unchanged (``"none"``); an all-zero map stays zero."""
    if normalize == "none":
        return pooled
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalisation must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
    scale = np.abs(pooled).sum() if normalize == "l1" else np.sqrt((pooled * pooled).sum())
    return pooled / scale if scale > 0 else pooled


def preprocess(relevance: np.ndarray, size: int = 20, sigma: float | None = None,
               normalize: str = "l1") -> np.ndarray:
    """:func:`sum_pool`, :func:`low_pass`, :func:`normalize_map`, flattened to a ``(size * size,)`` vector."""
    return normalize_map(low_pass(sum_pool(relevance, size), sigma), normalize).ravel()


def map_problem(relevance: np.ndarray) -> str | None:
    """``"nan"`` for a map with a NaN or infinite value, ``"zero"`` for an empty or all-zero map, else None."""
    R = np.asarray(relevance)
    if R.size and not np.isfinite(R).all():
        return "nan"
    if R.size == 0 or not R.any():
        return "zero"
    return None


# -- 2. graph -----------------------------------------------------------------------------

def default_neighbors(n: int) -> int:
    """``k = ceil(ln n)`` (von Luxburg 2007), at least 1 and at most ``n - 1``."""
    return int(min(max(1, math.ceil(math.log(max(n, 1)))), max(n - 1, 1)))


def minimum_maps(clusters: Sequence[int] = CLUSTER_RANGE) -> int:
    """The fewest usable maps a SpRAy run takes: one more than the largest number of clusters."""
    return max(clusters) + 1


def knn_affinity(features: np.ndarray, n_neighbors: int | None = None) -> sp.csr_matrix:
    """Binary symmetric kNN affinity (Eq. 6.1 with ``w_ij = max(w_ij, w_ji)``).

    ``features`` is ``(n, d)``; returns an ``(n, n)`` CSR matrix of 0/1 float64, zero diagonal,
    at least ``n_neighbors`` (default ``ceil(ln n)``) ones per row. A map is never its own
    neighbour, even when another map is identical to it.
    """
    from sklearn.neighbors import NearestNeighbors

    X = np.asarray(features, dtype=np.float64)
    n = X.shape[0]
    if n < 2:
        raise ValueError("a kNN graph needs at least 2 samples")
    k = default_neighbors(n) if n_neighbors is None else int(n_neighbors)
    if not 1 <= k < n:
        raise ValueError(f"n_neighbors must be in [1, {n - 1}] for {n} samples, got {k}")
    # kneighbors_graph(None) queries the fitted points without counting each as its own neighbour
    directed = NearestNeighbors(n_neighbors=k).fit(X).kneighbors_graph(None, mode="connectivity")
    W = directed.maximum(directed.T).tocsr()
    W.setdiag(0)
    W.eliminate_zeros()
    W.data[:] = 1.0
    return W.astype(np.float64)


def normalized_laplacian(W: sp.spmatrix) -> sp.csr_matrix:
    """``L_sym = I - D^-1/2 W D^-1/2`` as CSR; an isolated vertex gets an all-zero row (its own component)."""
    W = sp.csr_matrix(W, dtype=np.float64)
    degree = np.asarray(W.sum(axis=1)).ravel()
    connected = degree > 0
    inv_sqrt = np.zeros_like(degree)
    inv_sqrt[connected] = 1.0 / np.sqrt(degree[connected])
    scale = sp.diags(inv_sqrt)
    return (sp.diags(connected.astype(np.float64)) - scale @ W @ scale).tocsr()


# -- 3. spectrum --------------------------------------------------------------------------

def _dense_smallest(L: sp.spmatrix, m: int) -> tuple[np.ndarray, np.ndarray]:
    values, vectors = np.linalg.eigh(L.toarray())
    return values[:m], vectors[:, :m]


def _lanczos_smallest(L: sp.csr_matrix, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    n = L.shape[0]
    v0 = rng.uniform(-1.0, 1.0, n)
    ncv = min(n - 1, max(2 * m + 1, 4 * m))
    try:
        shifted = (2.0 * sp.identity(n, format="csr") - L).tocsr()
        values, vectors = eigsh(shifted, k=m, which="LA", v0=v0, ncv=ncv, tol=1e-10, maxiter=20 * n)
        values = 2.0 - values
    except ArpackNoConvergence:
        log.info("Lanczos did not converge on a component of %d maps; using shift-invert", n)
        values, vectors = eigsh(L.tocsc(), k=m, sigma=-1e-6, which="LM", v0=v0, ncv=ncv)
    order = np.argsort(values, kind="stable")
    return values[order], vectors[:, order]


def laplacian_spectrum(L: sp.spmatrix, n_eigenvalues: int = N_EIGENVALUES, seed: int = 0,
                       dense_limit: int = DENSE_LIMIT) -> tuple[np.ndarray, np.ndarray]:
    """The ``m = min(n_eigenvalues, n)`` smallest eigenvalues of a graph Laplacian, ascending, and
    their eigenvectors ``(n, m)``, component by component (see the module docstring).

    Eigenvalues are clipped to [0, 2] (round-off), each eigenvector's largest entry is made
    positive so the result does not depend on the solver's sign choice.
    """
    from scipy.sparse.csgraph import connected_components

    L = sp.csr_matrix(L, dtype=np.float64)
    n = L.shape[0]
    m = min(int(n_eigenvalues), n)
    rng = np.random.default_rng(seed)
    n_components, component = connected_components(L, directed=False)
    candidates: list[tuple[float, int, int, np.ndarray]] = []  # (value, component, order, vector on it)
    members = [np.flatnonzero(component == c) for c in range(n_components)]
    for c, idx in enumerate(members):
        sub = L[idx][:, idx]
        m_c = min(m, len(idx))
        if len(idx) <= max(dense_limit, m_c + 1):  # ARPACK needs m_c < size
            values, vectors = _dense_smallest(sub, m_c)
        else:
            values, vectors = _lanczos_smallest(sub, m_c, rng)
        candidates += [(float(values[j]), c, j, vectors[:, j]) for j in range(m_c)]
    candidates.sort(key=lambda t: (t[0], t[1], t[2]))
    chosen = candidates[:m]
    eigenvalues = np.clip(np.array([t[0] for t in chosen]), 0.0, 2.0)
    eigenvectors = np.zeros((n, m))
    for j, (_, c, _, vector) in enumerate(chosen):
        top = vector[np.argmax(np.abs(vector))]
        eigenvectors[members[c], j] = vector if top >= 0 else -vector
    return eigenvalues, eigenvectors


def eigengap(eigenvalues: np.ndarray, max_k: int = max(CLUSTER_RANGE)) -> int:
    """The k in 1..max_k with the largest gap ``lambda_{k+1} - lambda_k`` (eigenvalues ascending)."""
    values = np.asarray(eigenvalues, dtype=np.float64)[:max_k + 1]
    if len(values) < 2:
        return 1
    return int(np.argmax(np.diff(values))) + 1


# -- 4. clustering ------------------------------------------------------------------------

def spectral_rows(eigenvectors: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` eigenvectors as rows ``(n, k)``, each scaled to unit length (Ng et al. 2002)."""
    U = np.asarray(eigenvectors[:, :k], dtype=np.float64)
    norms = np.linalg.norm(U, axis=1, keepdims=True)
    return np.divide(U, norms, out=np.zeros_like(U), where=norms > 0)


def _relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """Cluster 0 the largest, ties by first appearance: labels that do not depend on k-means' numbering."""
    ids, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(ids)), key=lambda i: (-counts[i], first[i]))
    mapping = np.empty(ids.max() + 1, dtype=np.int64)
    mapping[ids[order]] = np.arange(len(ids))
    return mapping[labels]


def spectral_labels(eigenvectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Spectral clustering into ``k`` groups: seeded k-means (10 starts) on :func:`spectral_rows`;
    ``(n,)`` int labels, 0 the largest cluster."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    rows = spectral_rows(eigenvectors, k)
    # k-means on (n, k <= 10) rows is short work: an OpenMP team costs more than it saves, and on a
    # busy machine far more (30x measured on 2 loaded cores)
    with threadpool_limits(limits=1, user_api="openmp"):
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(rows)
    return _relabel_by_size(labels)


def central_members(eigenvectors: np.ndarray, labels: np.ndarray, count: int) -> list[list[int]]:
    """Per cluster (by label), the indices of its ``count`` members closest to the cluster's centre
    in the row-normalised spectral embedding of as many eigenvectors as there are clusters."""
    k = int(labels.max()) + 1
    rows = spectral_rows(eigenvectors, max(k, 1))
    out = []
    for c in range(k):
        idx = np.flatnonzero(labels == c)
        distance = np.linalg.norm(rows[idx] - rows[idx].mean(axis=0), axis=1)
        out.append(idx[np.argsort(distance, kind="stable")[:count]].tolist())
    return out


# -- 5. embedding -------------------------------------------------------------------------

def tsne_neighbors(n: int, perplexity: float) -> int:
    """How many neighbours Barnes-Hut t-SNE reads per sample: ``min(n - 1, floor(3 * perplexity) + 1)``."""
    return int(min(n - 1, math.floor(3 * perplexity) + 1))


def clipped_perplexity(n: int, perplexity: float = PERPLEXITY) -> float:
    """``perplexity``, reduced for tiny n so that t-SNE accepts it (it must stay below n)."""
    return float(min(perplexity, max(1.0, (n - 1) / 3.0)))


def _next_hop(frontier: sp.csr_matrix, A: sp.csr_matrix, reached: sp.csr_matrix, rows: np.ndarray,
              missing: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the nodes ``rows`` reach first at the next hop, at most ``missing[row]`` per
    row, most paths first then lowest index; worked through in chunks of rows so that a graph with
    hubs (whose two-hop sets are large) never holds all two-hop paths at once."""
    out_rows, out_cols = [], []
    for start in range(0, len(rows), chunk):
        block = rows[start:start + chunk]
        paths = (frontier[block] @ A).tocsr()                      # entries count the paths
        known = reached[block]
        known = known + sp.csr_matrix((np.ones(len(block)), (np.arange(len(block)), block)), shape=known.shape)
        paths = (paths - paths.multiply(known)).tocoo()
        paths.eliminate_zeros()
        if paths.nnz == 0:
            continue
        # one int64 key per entry (row, most paths first, lowest column) sorts faster than a lexsort
        width = int(A.shape[0]).bit_length()
        most = int(paths.data.max())
        key = (paths.row.astype(np.int64) << (2 * width + 1)) | ((most - paths.data.astype(np.int64)) << width) \
            | paths.col.astype(np.int64)
        order = np.argsort(key, kind="stable")
        r, c = paths.row[order], paths.col[order]
        first = np.searchsorted(r, r, side="left")
        keep = (np.arange(len(r)) - first) < missing[block][r]
        out_rows.append(block[r[keep]])
        out_cols.append(c[keep])
    if not out_rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_rows), np.concatenate(out_cols)


def graph_distances(W: sp.spmatrix, n_neighbors: int, chunk: int = 4096) -> sp.csr_matrix:
    """Shortest-path (hop) distances on the graph ``W`` from each node to (at least) its
    ``n_neighbors`` nearest nodes; ``(n, n)`` CSR of float64, the diagonal not stored.

    A breadth-first walk, one hop at a time, for the rows still short of neighbours: all graph
    neighbours are kept (distance 1); of the nodes first reached at hop h >= 2 a row keeps the ones
    reached by the most paths (most shared neighbours), ties by index, until it has
    ``n_neighbors``. Rows whose component is too small are filled up with the lowest-numbered
    other nodes at :data:`FAR`. ``chunk`` rows are expanded at a time (memory, not the result).
    """
    A = sp.csr_matrix(W, dtype=np.float64)
    A.data[:] = 1.0
    A.setdiag(0.0)
    A.eliminate_zeros()
    n = A.shape[0]
    reached = A.copy()            # 1 where a distance is stored
    distance = A.copy()           # that distance in hops
    frontier = A                  # the nodes first reached at the last hop
    hop = 1
    while frontier.nnz:
        missing = np.maximum(n_neighbors - reached.getnnz(axis=1), 0)
        short = np.flatnonzero(missing)
        if len(short) == 0:
            break
        hop += 1
        rows, cols = _next_hop(frontier, A, reached, short, missing, chunk)
        new = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        distance = distance + hop * new
        reached = reached + new
        frontier = new
    counts = reached.getnnz(axis=1)
    short = np.flatnonzero(counts < n_neighbors)
    if len(short):
        rows, cols = [], []
        for i in short:
            free = np.ones(n, dtype=bool)
            free[reached.indices[reached.indptr[i]:reached.indptr[i + 1]]] = False
            free[i] = False
            extra = np.flatnonzero(free)[:n_neighbors - counts[i]]
            rows.append(np.full(len(extra), i))
            cols.append(extra)
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        distance = distance + sp.csr_matrix((np.full(len(rows), FAR), (rows, cols)), shape=(n, n))
    distance = sp.csr_matrix(distance)
    distance.sort_indices()
    return distance


def tsne_embedding(W: sp.spmatrix, seed: int = 0, perplexity: float = PERPLEXITY,
                   early_exaggeration: float = EARLY_EXAGGERATION) -> np.ndarray:
    """2-D t-SNE of the graph ``W`` on :func:`graph_distances` (``metric="precomputed"``, Barnes-Hut,
    random init from ``seed``); ``(n, 2)``. ``perplexity`` is clipped for tiny n."""
    from sklearn.manifold import TSNE
    from sklearn.neighbors import sort_graph_by_row_values

    n = W.shape[0]
    perplexity = clipped_perplexity(n, perplexity)
    distances = sp.coo_matrix(graph_distances(W, tsne_neighbors(n, perplexity)))
    # each sample's own zero distance is stored explicitly: sklearn drops the nearest stored entry of
    # every row as "the sample itself", and would otherwise drop a real neighbour
    distances = sp.csr_matrix((np.concatenate([distances.data, np.zeros(n)]),
                               (np.concatenate([distances.row, np.arange(n)]),
                                np.concatenate([distances.col, np.arange(n)]))), shape=(n, n))
    distances = sort_graph_by_row_values(distances, copy=False, warn_when_not_sorted=False)
    tsne = TSNE(n_components=2, perplexity=perplexity, early_exaggeration=early_exaggeration,
                metric="precomputed", init="random", random_state=seed, method="barnes_hut")
    return tsne.fit_transform(distances).astype(np.float64)


# -- the whole analysis of one set of maps -------------------------------------------------

@dataclass
class SpectralAnalysis:
    """SpRAy on one set of feature vectors (pooled maps of one class).

    Attributes
    ----------
    eigenvalues : (m,) float64
        The smallest ``m = min(20, n)`` eigenvalues of ``L_sym``, ascending, in [0, 2].
    eigenvectors : (n, max(m, max k)) float64
        The eigenvectors of the smallest eigenvalues, as many as the clustering needed.
    eigengap_k : int
        :func:`eigengap` of the eigenvalues.
    labels : dict[int, (n,) int64]
        Spectral clustering per k (0 = largest cluster).
    embedding : (n, 2) float64 or None
        t-SNE coordinates (None when t-SNE was switched off).
    n_neighbors : int
        k of the kNN graph.
    n_components : int
        Connected components of the kNN graph.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    eigengap_k: int
    labels: dict[int, np.ndarray]
    embedding: np.ndarray | None
    n_neighbors: int
    n_components: int

    @property
    def shown_k(self) -> int:
        """The clustering the figures show: the eigengap's k, within the computed range."""
        return int(min(max(self.eigengap_k, min(self.labels)), max(self.labels)))


def check_count(n: int, clusters: Sequence[int] = CLUSTER_RANGE, what: str = "") -> None:
    """Raise a one-line :class:`BowlrpError` when ``n`` maps are too few for SpRAy."""
    need = minimum_maps(clusters)
    if n < need:
        raise BowlrpError(f"{what}{n} usable map(s); SpRAy needs at least {need} (k-means up to "
                          f"{max(clusters)} clusters, a kNN graph with k = ceil(ln n))")


def analyse(features: np.ndarray, seed: int = 0, n_eigenvalues: int = N_EIGENVALUES,
            clusters: Sequence[int] = CLUSTER_RANGE, n_neighbors: int | None = None,
            perplexity: float = PERPLEXITY, early_exaggeration: float = EARLY_EXAGGERATION,
            embed: bool = True) -> SpectralAnalysis:
    """Steps 2-5 (module docstring) on ``(n, d)`` feature vectors; deterministic for a seed."""
    from scipy.sparse.csgraph import connected_components
    from threadpoolctl import threadpool_limits

    X = np.asarray(features, dtype=np.float64)
    check_count(len(X), clusters)
    if not np.isfinite(X).all():
        raise BowlrpError("SpRAy features hold NaN or infinite values")
    k = default_neighbors(len(X)) if n_neighbors is None else int(n_neighbors)
    # scikit-learn's neighbour search, k-means and Barnes-Hut t-SNE run OpenMP teams; on a shared
    # 2-core machine these spin against other work (t-SNE of 150 maps: 11 s with the team, 0.24 s on
    # one thread, measured), and one thread keeps 5,000 maps well inside the 30 s target
    with threadpool_limits(limits=1, user_api="openmp"):
        W = knn_affinity(X, k)
        eigenvalues, eigenvectors = laplacian_spectrum(normalized_laplacian(W), max(n_eigenvalues, max(clusters)),
                                                       seed)
        labels = {c: spectral_labels(eigenvectors, c, seed) for c in clusters}
        embedding = tsne_embedding(W, seed, perplexity, early_exaggeration) if embed else None
    m = min(n_eigenvalues, len(eigenvalues))
    return SpectralAnalysis(eigenvalues[:m], eigenvectors,
                            eigengap(eigenvalues, max(clusters)), labels, embedding, k,
                            int(connected_components(W, directed=False)[0]))
