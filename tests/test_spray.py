"""SpRAy (Chapter 6, Algorithm 3): each step against an independent reference, a planted strategy
found without labels, the command end to end, clear errors, and the ViRelAy export read back by
ViRelAy's own project loader."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from bowlrp.analysis import spray as S
from bowlrp.analysis import spray_classes as C
from bowlrp.cli import main
from bowlrp.data import load_image, open_dataset
from bowlrp.errors import BowlrpError
from bowlrp.store import RelevanceStore, SplitParts


# -- pooling ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(37, 53), (40, 60), (3, 4), (163, 240)])
@pytest.mark.parametrize("size", S.POOL_SIZES)
def test_sum_pool_keeps_the_total(shape, size):
    R = np.random.default_rng(1).normal(size=shape)
    pooled = S.sum_pool(R, size)
    assert pooled.shape == (size, size)
    assert pooled.sum() == pytest.approx(R.sum(), abs=1e-9)


def test_sum_pool_of_a_divisible_map_is_the_block_sum():
    R = np.random.default_rng(2).normal(size=(40, 60))
    expected = R.reshape(20, 2, 20, 3).sum(axis=(1, 3))
    np.testing.assert_allclose(S.sum_pool(R, 20), expected, atol=1e-12)


def test_sum_pool_splits_a_pixel_cut_by_a_cell_border():
    # 3 pixels into 2 cells: the middle pixel is shared half and half
    R = np.array([[1.0, 10.0, 100.0]])
    np.testing.assert_allclose(S.sum_pool(R, 2).sum(axis=0), [6.0, 105.0])


def test_low_pass_keeps_the_total_and_smooths():
    pooled = np.zeros((20, 20))
    pooled[10, 10] = 1.0
    smooth = S.low_pass(pooled, 1.5)
    assert smooth.sum() == pytest.approx(1.0) and smooth.max() < 0.2 and smooth[10, 10] == smooth.max()
    assert S.low_pass(pooled, None) is pooled


# -- graph and spectrum -------------------------------------------------------------------

def _knn_reference(X: np.ndarray, k: int) -> np.ndarray:
    """Eq. 6.1 and w_ij = max(w_ij, w_ji), by brute force."""
    D = np.linalg.norm(X[:, None] - X[None], axis=2)
    np.fill_diagonal(D, np.inf)
    W = np.zeros_like(D)
    rows = np.arange(len(X))[:, None]
    W[rows, np.argsort(D, axis=1)[:, :k]] = 1.0
    return np.maximum(W, W.T)


def test_affinity_is_sparse_symmetric_binary_knn():
    X = np.random.default_rng(3).normal(size=(200, 16))
    k = S.default_neighbors(len(X))
    assert k == math.ceil(math.log(200)) == 6
    W = S.knn_affinity(X)
    assert sp.issparse(W) and W.shape == (200, 200)
    assert (W != W.T).nnz == 0 and set(np.unique(W.data)) == {1.0} and W.diagonal().sum() == 0
    assert np.diff(W.indptr).min() >= k
    np.testing.assert_array_equal(W.toarray(), _knn_reference(X, k))


def test_identical_maps_are_not_their_own_neighbours():
    X = np.repeat(np.random.default_rng(4).normal(size=(10, 4)), 3, axis=0)
    W = S.knn_affinity(X, 2)
    assert W.diagonal().sum() == 0 and np.diff(W.indptr).min() >= 2


def _dense_lsym(W: np.ndarray) -> np.ndarray:
    d = W.sum(axis=1)
    return np.eye(len(W)) - W / np.sqrt(np.outer(d, d))


@pytest.mark.parametrize("dense_limit", [S.DENSE_LIMIT, 0])
def test_spectrum_matches_a_dense_reference(dense_limit):
    X = np.random.default_rng(5).normal(size=(300, 8))
    W = S.knn_affinity(X)
    L = S.normalized_laplacian(W)
    np.testing.assert_allclose(L.toarray(), _dense_lsym(W.toarray()), atol=1e-12)
    values, vectors = S.laplacian_spectrum(L, 20, seed=0, dense_limit=dense_limit)
    reference = np.linalg.eigvalsh(_dense_lsym(W.toarray()))[:20]
    np.testing.assert_allclose(values, reference, atol=1e-8)
    np.testing.assert_allclose(L @ vectors, vectors * values, atol=1e-6)


def test_a_disconnected_graph_has_one_zero_eigenvalue_per_component():
    rng = np.random.default_rng(6)
    X = np.concatenate([rng.normal(size=(250, 5)), rng.normal(size=(60, 5)) + 100, rng.normal(size=(5, 5)) - 100])
    W = S.knn_affinity(X, 4)
    values, vectors = S.laplacian_spectrum(S.normalized_laplacian(W), 20, seed=0)
    reference = np.linalg.eigvalsh(_dense_lsym(W.toarray()))[:20]
    np.testing.assert_allclose(values, reference, atol=1e-8)
    assert (values < 1e-10).sum() == 3 and values[3] > 1e-3


def test_eigengap_and_the_clustering_it_selects():
    assert S.eigengap(np.array([0, 0.01, 0.5, 0.55, 0.6])) == 2
    assert S.eigengap(np.array([0, 0.5, 0.55, 0.6])) == 1
    assert S.eigengap(np.array([0, 0, 0, 0.9] + [1.0] * 16)) == 3


def _planted_maps(n=150, share=0.2, seed=0, shape=(30, 40), strength=0.08):
    """Maps with relevance on an object in the middle plus per-pixel noise; ``share`` of them also
    hold weak extra relevance (``strength`` per pixel, 1/10 of the object's) on a corner patch: a
    watermark-like second strategy. At the default strength the kNN graph stays connected."""
    rng = np.random.default_rng(seed)
    planted = np.zeros(n, dtype=bool)
    planted[rng.permutation(n)[:round(share * n)]] = True
    maps = []
    for i in range(n):
        R = rng.gamma(1.0, 0.05, shape)
        R[11:19, 16:24] += 0.8
        if planted[i]:
            R[-6:-1, 1:9] += strength
        maps.append(R)
    return maps, planted


def test_spray_separates_a_planted_strategy_without_labels():
    maps, planted = _planted_maps()
    X = np.stack([S.preprocess(R, 20) for R in maps])
    a = S.analyse(X, seed=0)
    assert a.n_components == 1 and a.eigengap_k == 2
    assert adjusted_rand_score(planted, a.labels[2]) >= 0.9
    assert max(adjusted_rand_score(planted, labels) for labels in a.labels.values()) >= 0.9
    assert sorted(a.labels) == list(range(2, 11)) and all(len(v) == len(maps) for v in a.labels.values())
    assert a.embedding.shape == (len(maps), 2) and np.isfinite(a.embedding).all()
    assert len(a.eigenvalues) == 20 and a.eigenvalues[0] == pytest.approx(0, abs=1e-10)
    # the planted maps lie together in the t-SNE plane too: their centre is far from the others'
    gap = np.linalg.norm(a.embedding[planted].mean(0) - a.embedding[~planted].mean(0))
    assert gap > 2 * a.embedding[~planted].std(0).mean()
    again = S.analyse(X, seed=0)
    np.testing.assert_array_equal(again.labels[5], a.labels[5])
    np.testing.assert_array_equal(again.embedding, a.embedding)


def test_one_strategy_gives_eigengap_1():
    maps, _ = _planted_maps(share=0.0)
    a = S.analyse(np.stack([S.preprocess(R, 20) for R in maps]), seed=0, embed=False)
    assert a.eigengap_k == 1 and a.eigenvalues[1] > 0.2


def test_normalize_map_keeps_the_layout_and_drops_the_amount():
    pooled = np.random.default_rng(3).normal(size=(20, 20))
    l1 = S.normalize_map(pooled, "l1")
    assert np.abs(l1).sum() == pytest.approx(1.0) and np.all(np.sign(l1) == np.sign(pooled))
    np.testing.assert_allclose(S.normalize_map(7.5 * pooled, "l1"), l1, rtol=1e-12)
    assert np.linalg.norm(S.normalize_map(pooled, "l2")) == pytest.approx(1.0)
    assert S.normalize_map(pooled, "none") is pooled
    assert not S.normalize_map(np.zeros((5, 5)), "l1").any()
    with pytest.raises(ValueError, match="normalisation must be one of"):
        S.normalize_map(pooled, "max")


def test_normalisation_ignores_how_much_relevance_a_map_holds():
    # one strategy (same layout everywhere), but half the images score 4x higher: compared as they
    # are, the maps fall apart by amount; normalised, they stay one mass
    maps, _ = _planted_maps(share=0.0)
    loud = np.zeros(len(maps), dtype=bool)
    loud[::2] = True
    maps = [4.0 * R if big else R for R, big in zip(maps, loud)]
    raw = S.analyse(np.stack([S.preprocess(R, 20, normalize="none") for R in maps]), seed=0, embed=False)
    assert raw.eigenvalues[1] < 0.01 and adjusted_rand_score(loud, raw.labels[2]) == pytest.approx(1.0)
    normed = S.analyse(np.stack([S.preprocess(R, 20) for R in maps]), seed=0, embed=False)
    assert normed.eigengap_k == 1 and normed.eigenvalues[1] > 0.2


def test_graph_distances_are_hops_and_cover_each_row():
    # a path 0-1-2-...-9 plus an isolated pair {10, 11}
    rows = list(range(9)) + [10]
    cols = list(range(1, 10)) + [11]
    W = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(12, 12))
    W = W.maximum(W.T)
    D = S.graph_distances(W, 4).toarray()
    assert D[0, 1] == 1 and D[0, 2] == 2 and D[0, 3] == 3 and D[0, 4] == 4 and D[0, 5] == 0
    assert D[5, 4] == D[5, 6] == 1 and D[5, 3] == D[5, 7] == 2
    assert D[10, 11] == 1 and (D[10] == S.FAR).sum() == 3   # its component is too small: filled at FAR
    assert (np.count_nonzero(D, axis=1) >= 4).all() and np.diag(D).sum() == 0


def test_graph_distances_are_shortest_paths_whatever_the_chunking():
    X = np.random.default_rng(8).normal(size=(120, 6))
    W = S.knn_affinity(X, 3)
    D = S.graph_distances(W, 22)
    np.testing.assert_array_equal(S.graph_distances(W, 22, chunk=7).toarray(), D.toarray())
    hops = sp.csgraph.shortest_path(W, unweighted=True)
    rows, cols = D.nonzero()
    np.testing.assert_array_equal(D[rows, cols].A1, hops[rows, cols])   # stored values are true hop counts
    assert (np.diff(D.indptr) >= 22).all()
    # a row keeps every node nearer than the farthest one it stores
    for i in range(len(X)):
        stored = D[i].toarray().ravel()
        farthest = stored.max()
        assert ((hops[i] < farthest) & (hops[i] > 0) <= (stored > 0)).all()


def test_classes_rank_by_lambda_2():
    def result(name, values):
        a = S.SpectralAnalysis(np.array(values), np.zeros((1, 1)), 1, {}, None, 1, 1)
        return C.ClassSpray(name, "", "fv", [], [], {}, 20, None, np.zeros((0, 400)), a)

    results = [result("a", [0, 0.3, 0.4]), result("b", [0, 0.1, 0.9]), result("c", [0, 0.1, 0.5])]
    C.rank_classes(results)
    assert [r.rank for r in results] == [3, 2, 1]


# -- stores and the command line ----------------------------------------------------------

def _write_store(out, items, class_name="person", variant="fv"):
    """A relevance store of ``items``: (image id, path, (H, W) map, score)."""
    parts = SplitParts(out, len(items), {"class_name": class_name, "model_variant": variant, "model_family": "bow",
                                         "method": "lrp", "rule": "epsilon", "eps": 1.0,
                                         "image_ids": [i for i, *_ in items]})
    for n, (image_id, path, relevance, score) in enumerate(items):
        parts.write(n, {"relevance": np.asarray(relevance, np.float32), "score": np.float64(score),
                        "bias_relevance": np.float64(0), "residual": np.float64(0), "absorbed": np.float64(0),
                        "descriptor_relevance": np.zeros(0, np.float32),
                        "descriptor_frames": np.zeros((0, 4), np.float32)}, image_id, path)
    parts.assemble([])
    return out


def _toyvoc_store(root, out, class_name, planted_every=3):
    """Maps of the test split: relevance on the class' boxes, noise elsewhere, and on every
    ``planted_every``-th image with the class a strong corner patch. Returns the store and the
    planted image ids."""
    rng = np.random.default_rng(7)
    samples = open_dataset(root).split("test")
    items, planted, n_with = [], set(), 0
    for sample in samples:
        h, w = load_image(sample.path).shape[:2]
        R = rng.gamma(1.0, 0.02, (h, w))
        boxes = [o.box for o in sample.objects if o.name == class_name]
        for x0, y0, x1, y1 in boxes:
            R[int(y0) - 1:int(y1), int(x0) - 1:int(x1)] += 0.3
        if boxes:
            if n_with % planted_every == 0:
                R[-20:-4, 4:40] += 3.0
                planted.add(sample.image_id)
            n_with += 1
        items.append((sample.image_id, str(sample.path), R, 1.0 if boxes else -1.0))
    return _write_store(out, items, class_name), planted


@pytest.fixture(scope="module")
def spray_run(small_toyvoc, tmp_path_factory):
    root = tmp_path_factory.mktemp("spray")
    person, planted = _toyvoc_store(small_toyvoc, root / "stores" / "person.h5", "person")
    sheep, _ = _toyvoc_store(small_toyvoc, root / "stores" / "sheep.h5", "sheep")
    out = root / "out"
    assert main(["spray", "--store", str(person), "--data", str(small_toyvoc), "--out", str(out), "--virelay",
                 "--no-progress"]) == 0
    bare = root / "bare"
    assert main(["spray", "--store", str(root / "stores"), "--out", str(bare), "--pool", "10", "--sigma", "1",
                 "--no-progress"]) == 0
    return {"out": out, "bare": bare, "planted": planted, "person": person, "sheep": sheep, "data": small_toyvoc}


def test_spray_command_writes_the_json_and_figures(spray_run):
    result = json.loads((spray_run["out"] / "spray.json").read_text())
    [name] = result["classes"]
    row = result["classes"]["person"]
    samples = open_dataset(spray_run["data"]).split("test")
    column = open_dataset(spray_run["data"]).classes.index("person")
    with_person = [s.image_id for s in samples if s.labels[column] != -1]
    assert row["image_ids"] == with_person and row["excluded"]["absent"] == len(samples) - len(with_person)
    n = len(with_person)
    assert sorted(row["labels"], key=int) == [str(k) for k in range(2, 11)]
    assert all(len(v) == n for v in row["labels"].values()) and len(row["embedding"]) == n
    assert len(row["eigenvalues"]) == min(20, n) and row["rank"] == 1 and 1 <= row["eigengap_k"] <= 10
    planted = np.array([i in spray_run["planted"] for i in row["image_ids"]])
    best = max(adjusted_rand_score(planted, v) for v in row["labels"].values())
    assert best >= 0.9
    for figure in ("spectra.png", "tsne_person.png", "clusters_person.png"):
        assert (spray_run["out"] / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # without annotations: every map of both stores, two classes ranked
    bare = json.loads((spray_run["bare"] / "spray.json").read_text())["classes"]
    assert sorted(bare) == ["person", "sheep"] and sorted(r["rank"] for r in bare.values()) == [1, 2]
    assert all(len(r["image_ids"]) == len(samples) for r in bare.values())
    assert bare["person"]["settings"]["pool"] == 10 and bare["person"]["settings"]["sigma"] == 1.0
    assert row["settings"]["normalize"] == "l1"


def test_spray_json_is_deterministic(spray_run, tmp_path):
    assert main(["spray", "--store", str(spray_run["person"]), "--data", str(spray_run["data"]),
                 "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "spray.json").read_bytes() == (spray_run["out"] / "spray.json").read_bytes()


def test_nan_and_zero_maps_are_counted_and_left_out(tmp_path):
    maps, _ = _planted_maps(n=14, seed=3)
    items = [(f"{i:03d}", "", R, 0.0) for i, R in enumerate(maps)]
    nan_map = maps[0].copy()
    nan_map[3, 3] = np.nan
    items += [("nan", "", nan_map, 0.0), ("zero", "", np.zeros((30, 40)), 0.0)]
    store = _write_store(tmp_path / "person.h5", items)
    [result] = C.spray_stores([store])
    assert result.excluded == {"nan": 1, "zero": 1, "absent": 0} and len(result.image_ids) == 14
    assert "nan" not in result.image_ids and np.isfinite(result.analysis.eigenvalues).all()


def test_too_few_maps_is_a_one_line_error_with_the_minimum(spray_run, tmp_path, capsys):
    # sheep is in fewer than 11 test images of the small toyvoc
    capsys.readouterr()
    assert main(["spray", "--store", str(spray_run["sheep"]), "--data", str(spray_run["data"]),
                 "--out", str(tmp_path / "x"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sheep" in err and "needs at least 11" in err
    with pytest.raises(BowlrpError, match="at least 11"):
        S.analyse(np.random.default_rng(0).normal(size=(10, 4)))


def test_other_bad_input_is_a_one_line_error(spray_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["spray", "--store", str(tmp_path / "none.h5"), "--out", str(tmp_path / "x")]) == 1
    assert "no such store or folder" in capsys.readouterr().err
    twice = tmp_path / "twice"
    twice.mkdir()
    for name in ("a.h5", "b.h5"):
        (twice / name).write_bytes(spray_run["person"].read_bytes())
    assert main(["spray", "--store", str(twice), "--out", str(tmp_path / "x")]) == 1
    assert "both hold class 'person'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["spray", "--store", str(spray_run["person"]), "--out", str(tmp_path / "x"), "--pool", "7"])
    with pytest.raises(BowlrpError, match="--sigma"):
        C.spray_stores([spray_run["person"]], sigma=-1.0)


# -- ViRelAy ------------------------------------------------------------------------------

def test_virelay_loads_the_export_with_its_own_project_code(spray_run):
    from virelay.model import Workspace

    result = json.loads((spray_run["out"] / "spray.json").read_text())["classes"]["person"]
    dataset = open_dataset(spray_run["data"])
    by_id = {s.image_id: s for s in dataset.split("test")}
    workspace = Workspace()
    workspace.add_project(str(spray_run["out"] / "virelay" / "project.yaml"))
    [project] = workspace.projects
    try:
        n = len(result["image_ids"])
        assert len(project.dataset) == n
        [method] = project.get_analysis_methods()
        assert [c.name for c in project.get_analysis_categories(method)] == ["person"]
        assert project.get_analysis_clustering_names(method) == [f"kmeans-{k:02d}" for k in range(2, 11)]
        assert project.get_analysis_embedding_names(method) == ["spectral", "tsne"]
        with RelevanceStore(spray_run["person"]) as store:
            for index, image_id in enumerate(result["image_ids"]):
                sample = project.get_sample(index)
                expected = np.rint(load_image(by_id[image_id].path) * 255).astype(np.uint8)
                np.testing.assert_array_equal(np.asarray(sample.data), expected)
                assert "person" in [label.name for label in sample.labels]
                attribution = project.get_attribution(index)
                np.testing.assert_allclose(np.asarray(attribution.data)[..., 0], store.relevance(image_id), rtol=1e-6)
                assert attribution.prediction[dataset.classes.index("person")] == pytest.approx(
                    store.image_attrs(image_id)["score"])
        for k in range(2, 11):
            for embedding in ("spectral", "tsne"):
                analysis = project.get_analysis(method, "person", f"kmeans-{k:02d}", embedding)
                np.testing.assert_array_equal(analysis.clustering, result["labels"][str(k)])
                np.testing.assert_array_equal(analysis.attribution_indices, np.arange(n))
                if embedding == "tsne":
                    np.testing.assert_allclose(analysis.embedding, result["embedding"])
                else:
                    assert analysis.embedding.shape[0] == n
                    np.testing.assert_allclose(analysis.eigenvalues, result["eigenvalues"])
    finally:
        workspace.close()
