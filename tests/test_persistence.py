"""Model storage: JSON + npz, loadable without running code, stable bytes."""
import io
import json
import zipfile

import numpy as np
import pytest

from bowlrp.errors import ModelError
from bowlrp.persistence import load_stages, npz_bytes, save_stages


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
