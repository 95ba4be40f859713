"""Model storage: JSON + npz, loadable without running code, stable bytes."""
import io
import json
import os
import stat
import zipfile

import numpy as np
import pytest

from bowlrp.errors import ModelError, OutputError
from bowlrp.persistence import atomic_write_bytes, atomic_write_json, load_stages, npz_bytes, save_stages


def test_round_trip_keeps_arrays_and_meta(tmp_path):
    arrays = {"gmm/means": np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32),
              "svm/intercept": np.array([0.5, -1.0])}
    save_stages(tmp_path, {"kind": "test", "classes": ["a", "b"]}, arrays)
    meta, loaded = load_stages(tmp_path)
    assert meta["classes"] == ["a", "b"]
    assert set(loaded) == set(arrays)
    for key in arrays:
        assert loaded[key].dtype == arrays[key].dtype
        np.testing.assert_array_equal(loaded[key], arrays[key])


def test_object_arrays_are_refused_on_save(tmp_path):
    with pytest.raises(TypeError):
        save_stages(tmp_path, {}, {"bad": np.array([{"a": 1}], dtype=object)})


def test_pickled_member_is_refused_on_load(tmp_path):
    save_stages(tmp_path, {}, {"x": np.zeros(3)})
    # Replace the array file by an npz holding a pickled object, as a hostile sender might.
    np.savez(tmp_path / "arrays.npz", x=np.array([{"payload": 1}], dtype=object))
    with pytest.raises(ModelError):
        load_stages(tmp_path)


def test_npz_bytes_depend_only_on_content():
    a = {"b": np.arange(10), "a": np.ones((2, 2))}
    assert npz_bytes(a) == npz_bytes(dict(reversed(list(a.items()))))
    assert npz_bytes(a) != npz_bytes({"b": np.arange(10) + 1, "a": np.ones((2, 2))})
    with zipfile.ZipFile(__import__("io").BytesIO(npz_bytes(a))) as archive:
        assert sorted(archive.namelist()) == ["a.npy", "b.npy"]


def test_missing_or_foreign_directories_give_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not a bowlrp model"):
        load_stages(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(ModelError, match="format_version"):
        load_stages(tmp_path)


def test_scalars_stay_scalars():
    with np.load(io.BytesIO(npz_bytes({"score": np.float64(1.5), "grid": np.arange(6).reshape(2, 3)[:, ::2]})),
                 allow_pickle=False) as npz:
        assert npz["score"].shape == () and float(npz["score"]) == 1.5
        assert npz["grid"].tolist() == [[0, 2], [3, 5]]


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_respect_the_umask(tmp_path, umask):
    """As ``open`` does: 0666 less the umask for a new file (every file used to be 0600), an
    existing file's own mode when it is replaced."""
    old = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / "new.bin", b"x")
        save_stages(tmp_path / "model", {"kind": "test"}, {"a": np.ones(2)})
        replaced = tmp_path / "replaced.json"
        replaced.write_text("{}")
        os.chmod(replaced, 0o640)
        atomic_write_json(replaced, {"a": 1})
    finally:
        os.umask(old)
    for path in (tmp_path / "new.bin", tmp_path / "model" / "model.json", tmp_path / "model" / "arrays.npz"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path
    assert stat.S_IMODE(replaced.stat().st_mode) == 0o640 and json.loads(replaced.read_text()) == {"a": 1}


def test_an_unwritable_target_is_named_not_its_temporary_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"^\S*file/out\.json: cannot create its folder \S*file \(") as info:
        atomic_write_json(tmp_path / "file" / "out.json", {})
    assert ".tmp" not in str(info.value)
    (tmp_path / "folder").mkdir()
    with pytest.raises(OutputError, match="folder: is a folder, not a file"):
        atomic_write_json(tmp_path / "folder", {})
    assert os.listdir(tmp_path / "folder") == []
