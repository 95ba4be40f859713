"""The pipeline end to end through the CLI: train, evaluate, predict, save/load, seeds, parallel
backends and hostile input. Runs on the small toyvoc set with a tiny vocabulary so CI stays fast."""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bowlrp import cli
from bowlrp.data import open_dataset
from bowlrp.errors import SkipLog
from bowlrp.parallel import ParallelOptions
from bowlrp.pipeline import BowModel, encode_files
from conftest import entity_bomb

# Small but real: all four SIFT scales, an 8-cell pyramid, a 4-component GMM.
FAST = ["--max-descriptors", "20000", "--no-progress"]
FV = ["--encoder", "fisher", "--kernel", "linear", "--gmm-k", "4", *FAST]
BOW = ["--encoder", "rankbow", "--kernel", "hik", "--vocab-size", "16", *FAST]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fv_model(small_toyvoc, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fv") / "model"
    assert cli.main(["train", "--data", str(small_toyvoc), "--out", str(out), *FV, "--seed", "0"]) == 0
    return out


def test_evaluate_json_and_table(fv_model, small_toyvoc, tmp_path, capsys):
    result_path = tmp_path / "ap.json"
    code, out, _ = run(capsys, "evaluate", "--model", fv_model, "--data", small_toyvoc, "--split", "test",
                       "--json", result_path, "--no-progress")
    assert code == 0
    result = json.loads(result_path.read_text())
    assert set(result) >= {"ap", "map", "n_images", "skipped"}
    model = BowModel.load(fv_model)
    assert list(result["ap"]) == model.class_names
    assert result["n_images"] == len(open_dataset(small_toyvoc).split("test"))
    assert result["skipped"] == []
    aps = np.array([v for v in result["ap"].values() if v is not None], dtype=float)
    assert len(aps) >= 5 and np.all((aps >= 0) & (aps <= 1))
    assert result["map"] == pytest.approx(aps.mean())
    assert set(result["accuracy"]) == set(result["ap"])
    # a trained model beats chance (AP of a random ranking ~ positive rate, < 0.3 for every class here)
    assert result["map"] > 0.4
    for name in model.class_names:
        assert name in out
    assert "mAP" in out


def test_predict_matches_the_model_and_survives_save_load(fv_model, small_toyvoc, tmp_path, capsys):
    images = [s.path for s in open_dataset(small_toyvoc).split("test")[:3]]
    result_path = tmp_path / "scores.json"
    code, _, _ = run(capsys, "predict", "--model", fv_model, *images, "--json", result_path, "--no-progress")
    assert code == 0
    result = json.loads(result_path.read_text())
    model = BowModel.load(fv_model)
    assert result["classes"] == model.class_names
    for path in images:
        direct = model.decision_function(model.features.encode_path(path)[None])[0]
        # one image alone vs. a batch: only BLAS summation order may differ
        np.testing.assert_allclose([result["scores"][str(path)][c] for c in model.class_names], direct,
                                   rtol=1e-12, atol=1e-14)

    # save the loaded model again: the files and the predictions stay identical
    again = tmp_path / "again"
    model.save(again)
    for name in ("model.json", "arrays.npz"):
        assert (again / name).read_bytes() == (fv_model / name).read_bytes()
    X, _ = encode_files(BowModel.load(again).features, images, SkipLog(), ParallelOptions(progress=False))
    np.testing.assert_array_equal(BowModel.load(again).decision_function(X), model.decision_function(X))


def test_kernel_model_predictions_identical_after_load(small_toyvoc, tmp_path):
    """A non-linear model keeps support vectors; in-memory and reloaded scores must be identical."""
    from bowlrp.pipeline import PipelineConfig, train_model

    ds = open_dataset(small_toyvoc)
    train = ds.split("trainval")
    labels = np.stack([s.labels for s in train])
    keep = [c for c in range(len(ds.classes)) if (labels[:, c] == 1).sum() >= 2][:3]
    config = PipelineConfig(encoder="rankbow", kernel="chi2", n_words=16, pca_dims=None,
                            max_descriptors=20000, seed=0)
    model = train_model(config, [s.path for s in train], labels[:, keep], [ds.classes[c] for c in keep],
                        SkipLog(), ParallelOptions(progress=False))
    model.save(tmp_path / "m")
    loaded = BowModel.load(tmp_path / "m")
    paths = [s.path for s in ds.split("test")[:6]]
    X, _ = encode_files(model.features, paths, SkipLog(), ParallelOptions(progress=False))
    X2, _ = encode_files(loaded.features, paths, SkipLog(), ParallelOptions(progress=False))
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(model.decision_function(X), loaded.decision_function(X2))
    assert loaded.classifier.estimators_[0].support_vectors_ is not None


def test_model_directory_holds_no_pickle(fv_model):
    assert sorted(p.name for p in fv_model.iterdir()) == ["arrays.npz", "model.json"]
    json.loads((fv_model / "model.json").read_text())
    with zipfile.ZipFile(fv_model / "arrays.npz") as archive:
        names = archive.namelist()
    assert names and all(n.endswith(".npy") for n in names)
    with np.load(fv_model / "arrays.npz", allow_pickle=False) as npz:  # raises on any pickled member
        for key in npz.files:
            assert npz[key].dtype != object


def test_same_seed_same_model_other_seed_differs(fv_model, small_toyvoc, tmp_path, capsys):
    """Same seed, same data -> the same model files, also when the data lies elsewhere on disk."""
    again, other = tmp_path / "again", tmp_path / "other"
    moved = tmp_path / "elsewhere" / "a copy of toyvoc"
    shutil.copytree(small_toyvoc, moved)
    assert run(capsys, "train", "--data", moved, "--out", again, *FV, "--seed", "0")[0] == 0
    assert run(capsys, "train", "--data", small_toyvoc, "--out", other, *FV, "--seed", "1")[0] == 0
    for name in ("model.json", "arrays.npz"):
        assert (again / name).read_bytes() == (fv_model / name).read_bytes(), name
    assert (other / "arrays.npz").read_bytes() != (fv_model / "arrays.npz").read_bytes()


def test_rankbow_hik_model_trains_and_lists_classes(small_toyvoc, tmp_path, capsys):
    out = tmp_path / "bow"
    code, stdout, _ = run(capsys, "train", "--data", small_toyvoc, "--out", out, *BOW, "--classes", "horse,boat")
    assert code == 0 and "2 classes" in stdout
    model = BowModel.load(out)
    assert model.class_names == ["horse", "boat"]
    assert model.classifier.kernel_.name == "hik"


# --------------------------------------------------------------------------- parallel backends
@pytest.fixture(scope="module")
def some_paths(small_toyvoc) -> list[str]:
    return [str(s.path) for s in open_dataset(small_toyvoc).split("test")[:8]]


def _features(fv_model, paths, **options) -> np.ndarray:
    model = BowModel.load(fv_model)
    skips = SkipLog()
    X, ok = encode_files(model.features, paths, skips, ParallelOptions(progress=False, **options))
    assert ok.all() and len(skips) == 0
    return X


def test_two_jobs_give_the_same_features(fv_model, some_paths):
    serial = _features(fv_model, some_paths, n_jobs=1)
    np.testing.assert_array_equal(_features(fv_model, some_paths, n_jobs=2), serial)


def test_dask_local_cluster_gives_the_same_features(fv_model, some_paths):
    pytest.importorskip("distributed", reason="dask[distributed] is part of the test extras")
    serial = _features(fv_model, some_paths, n_jobs=1)
    np.testing.assert_array_equal(_features(fv_model, some_paths, n_jobs=2, backend="dask"), serial)


def test_dask_with_a_scheduler_address(fv_model, some_paths):
    """``--scheduler ADDRESS``: connect to a running cluster instead of starting one."""
    from distributed import LocalCluster

    serial = _features(fv_model, some_paths[:4], n_jobs=1)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        X = _features(fv_model, some_paths[:4], backend="dask", scheduler=cluster.scheduler_address)
    np.testing.assert_array_equal(X, serial)


# --------------------------------------------------------------------------- hostile input
BOMB = entity_bomb(4, "<annotation><object><name>&lol4;</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                       "<xmax>9</xmax><ymax>9</ymax></bndbox></object></annotation>")


def _annotation(name: str, w: int, h: int) -> str:
    return (f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>"
            f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>1</xmin><ymin>1</ymin>"
            f"<xmax>{w}</xmax><ymax>{h}</ymax></bndbox></object></annotation>")


@pytest.fixture(scope="module")
def hostile_voc(small_toyvoc, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The small toyvoc plus one bad file of each kind in both trainval and test.

    Returns the root and {image id: expected outcome} with outcome "skip" or "use".
    """
    root = tmp_path_factory.mktemp("hostile") / "voc"
    shutil.copytree(small_toyvoc, root)
    jpeg_dir, ann_dir = root / "JPEGImages", root / "Annotations"
    donor = sorted(jpeg_dir.glob("*.jpg"))[0].read_bytes()
    rng = np.random.default_rng(0)
    texture = (rng.random((120, 150)) * 255).astype(np.uint8)
    cases: dict[str, str] = {}
    for split in ("trainval", "test"):
        ids = {kind: f"bad_{kind}_{split}" for kind in ("corrupt", "empty", "tiny", "deep", "rgba", "bomb")}
        (jpeg_dir / f"{ids['corrupt']}.jpg").write_bytes(donor[: len(donor) // 3])
        (jpeg_dir / f"{ids['empty']}.jpg").write_bytes(b"")
        Image.fromarray(texture[:5, :5]).save(jpeg_dir / f"{ids['tiny']}.jpg")
        Image.fromarray(texture.astype(np.uint16) * 257).save(jpeg_dir / f"{ids['deep']}.png")
        rgba = np.dstack([texture, texture[::-1], texture[:, ::-1], np.full_like(texture, 200)])
        Image.fromarray(rgba, "RGBA").save(jpeg_dir / f"{ids['rgba']}.png")
        Image.fromarray(texture).save(jpeg_dir / f"{ids['bomb']}.jpg")
        for kind, image_id in ids.items():
            xml = BOMB if kind == "bomb" else _annotation("horse", 150, 120)
            (ann_dir / f"{image_id}.xml").write_text(xml)
            cases[image_id] = "use" if kind in ("deep", "rgba") else "skip"
        listing = root / "ImageSets" / "Main" / f"{split}.txt"
        listing.write_text(listing.read_text() + "".join(f"{i}\n" for i in ids.values()))
    return root, cases


def test_bad_files_are_counted_named_skips_in_train_and_evaluate(hostile_voc, small_toyvoc, tmp_path, capsys):
    root, cases = hostile_voc
    model = tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", root, "--out", model, *FV)
    assert code == 0, err
    skipped = {Path(e["file"]).stem for e in BowModel.load(model).training["skipped"]}
    expected = {i for i, outcome in cases.items() if outcome == "skip" and "trainval" in i}
    assert skipped == expected
    assert f"skipped {len(expected)} file(s)" in err
    for image_id in expected:
        assert image_id in err

    result_path = tmp_path / "ap.json"
    code, _, err = run(capsys, "evaluate", "--model", model, "--data", root, "--split", "test",
                       "--json", result_path, "--no-progress")
    assert code == 0, err
    result = json.loads(result_path.read_text())
    skipped = {Path(e["file"]).stem: e["reason"] for e in result["skipped"]}
    assert set(skipped) == {i for i, outcome in cases.items() if outcome == "skip" and "test" in i}
    assert all(reason for reason in skipped.values())
    # the 16-bit and the RGBA image were scored, not skipped
    assert result["n_images"] == len(open_dataset(small_toyvoc).split("test")) + 2


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_strict_stops_with_one_line_naming_the_file(hostile_voc, fv_model, tmp_path, capsys, command):
    root, _ = hostile_voc
    if command == "train":
        argv = ["train", "--data", root, "--out", tmp_path / "m", *FV, "--strict"]
    else:
        argv = ["evaluate", "--model", fv_model, "--data", root, "--split", "test", "--strict", "--no-progress"]
    code, _, err = run(capsys, *argv)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bowlrp: error: ")
    assert "bad_" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_predict_names_unusable_images(fv_model, hostile_voc, tmp_path, capsys):
    root, _ = hostile_voc
    good = sorted((root / "JPEGImages").glob("0*.jpg"))[0]
    bad = root / "JPEGImages" / "bad_empty_test.jpg"
    code, out, err = run(capsys, "predict", "--model", fv_model, good, bad, "--json", tmp_path / "p.json",
                         "--no-progress")
    assert code == 0
    result = json.loads((tmp_path / "p.json").read_text())
    assert list(result["scores"]) == [str(good)]
    assert [e["file"] for e in result["skipped"]] == [str(bad)]
    assert "empty file" in err


def test_usage_and_missing_model_errors(tmp_path, capsys):
    code, _, err = run(capsys, "evaluate", "--model", tmp_path / "nothing", "--data", tmp_path, "--split", "test")
    assert code == 1 and err.startswith("bowlrp: error:") and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--data", str(tmp_path)])  # --out missing
    assert exc.value.code == 2


def test_image_folder_dataset_trains_and_evaluates(small_toyvoc, tmp_path, capsys):
    """``--format folder``: one sub-folder per class, split folders train/ and test/."""
    ds = open_dataset(small_toyvoc, classes=["aeroplane", "boat"])
    root = tmp_path / "folders"
    for split, folder in (("trainval", "train"), ("test", "test")):
        for sample in ds.split(split):
            # single-label folders: images showing exactly one of the two classes
            if (sample.labels == 1).sum() == 1:
                name = ds.classes[int(np.flatnonzero(sample.labels == 1)[0])]
                target = root / folder / name / sample.path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(sample.path, target)
    model = tmp_path / "model"
    code, _, err = run(capsys, "train", "--data", root, "--format", "folder", "--out", model, *FV)
    assert code == 0, err
    assert BowModel.load(model).class_names == ["aeroplane", "boat"]
    code, out, err = run(capsys, "evaluate", "--model", model, "--data", root, "--format", "folder",
                         "--split", "test", "--json", tmp_path / "ap.json", "--no-progress")
    assert code == 0, err
    result = json.loads((tmp_path / "ap.json").read_text())
    assert result["n_images"] == len(list((root / "test").rglob("*.jpg")))
    assert result["map"] > 0.8  # aeroplanes in sky vs boats on water: an easy pair
