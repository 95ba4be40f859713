"""Tampered, corrupt, mixed-up and hostile model directories are refused at load with one line naming the
file and the field (issue 14, defects 2, 3 and 7); clean ones load and predict as before.

Two tiny BoW models are trained once (a linear Fisher-vector model and a per-scale rank-BoW model with a
histogram-intersection kernel sum, whose support vectors are stored) and a tiny untrained network is
saved; every test tampers with its own copy.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from bowlrp.cli import main
from bowlrp.data import load_image, open_dataset
from bowlrp.errors import ModelError, SkipLog
from bowlrp.model import load_model
from bowlrp.parallel import ParallelOptions
from bowlrp.persistence import npz_bytes
from bowlrp.pipeline import PipelineConfig, train_model

CLASSES = ["horse", "boat"]
TINY = dict(bin_sizes=(4, 8), step=6, max_descriptors=2000, C=1.0, seed=0)


def _train(small_toyvoc, config: PipelineConfig):
    dataset = open_dataset(small_toyvoc, classes=CLASSES)
    train = dataset.split("trainval")
    labels = np.stack([s.labels for s in train])
    return train_model(config, [s.path for s in train], labels, CLASSES, SkipLog(), ParallelOptions(progress=False))


@pytest.fixture(scope="module")
def fv(small_toyvoc, tmp_path_factory):
    """A linear FV model (K=2, PCA to 8, pyramid): ``(model in memory, its directory)``."""
    model = _train(small_toyvoc, PipelineConfig(encoder="fisher", kernel="linear", n_words=2, pca_dims=8, **TINY))
    out = tmp_path_factory.mktemp("fv") / "model"
    model.save(out)
    return model, out


@pytest.fixture(scope="module")
def kernel_bow(small_toyvoc, tmp_path_factory):
    """A rank-BoW model with one HIK per SIFT scale (a kernel sum keeping support vectors)."""
    model = _train(small_toyvoc, PipelineConfig(encoder="rankbow", kernel="hik", n_words=4, pca_dims=None,
                                                per_scale=True, pyramid=False, **TINY))
    out = tmp_path_factory.mktemp("bow") / "model"
    model.save(out)
    return model, out


@pytest.fixture(scope="module")
def images(small_toyvoc):
    return [load_image(s.path) for s in open_dataset(small_toyvoc).split("test")[:3]]


def _copy(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "copy"))


def _edit_json(directory: Path, edit) -> None:
    meta = json.loads((directory / "model.json").read_text())
    edit(meta)
    (directory / "model.json").write_text(json.dumps(meta))  # NaN is written as NaN, as json.dumps does


def _set_digest(directory: Path) -> None:
    """Record the current arrays.npz in model.json: a deliberately made file, not a mixed-up pair."""
    digest = hashlib.sha256((directory / "arrays.npz").read_bytes()).hexdigest()
    _edit_json(directory, lambda meta: meta.update(arrays_sha256=digest))


def _edit_arrays(directory: Path, edit) -> None:
    with np.load(directory / "arrays.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    edit(arrays)
    (directory / "arrays.npz").write_bytes(npz_bytes(arrays))
    _set_digest(directory)


def _refusal(directory: Path) -> str:
    with pytest.raises(ModelError) as caught:
        load_model(directory)
    message = str(caught.value)
    assert "\n" not in message
    return message


def _scores(model, images) -> np.ndarray:
    return model.score_images(images)


# --- clean models -----------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["fv", "kernel_bow"])
def test_clean_models_load_and_predict_identically(which, request, images):
    model, directory = request.getfixturevalue(which)
    loaded = load_model(directory)
    np.testing.assert_array_equal(_scores(loaded, images), _scores(model, images))
    assert "arrays_sha256" in json.loads((directory / "model.json").read_text())


# --- model.json fields ------------------------------------------------------------------------

def _set(*path_and_value):
    *path, value = path_and_value

    def edit(meta):
        node = meta
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value(node[path[-1]]) if callable(value) else value
    return edit


JSON_CASES = {
    "sift step 0": (_set("sift", "params", "step", 0), "sift.params.step"),
    "config step 0": (_set("config", "step", 0), "config.step"),
    "step as text": (_set("config", "step", "3"), "config.step"),
    "bogus sift backend": (_set("sift", "params", "backend", "magic"), "sift.params.backend"),
    "bogus configured backend": (_set("config", "sift_backend", "magic"), "config.sift_backend"),
    "bin sizes disagree": (_set("sift", "params", "bin_sizes", [4, 9]), "sift.params.bin_sizes"),
    "bin sizes vs blocks": (lambda m: (_set("sift", "params", "bin_sizes", [4])(m), _set("config", "bin_sizes", [4])(m)),
                            "blocks[0].scales"),
    "class list cut": (_set("class_names", ["horse"]), "classifier.class_names"),
    "class lists cut": (lambda m: (_set("class_names", ["horse"])(m), _set("classifier", "class_names", ["horse"])(m)),
                        "classifier.chosen_C"),
    "class listed twice": (_set("class_names", ["horse", "horse"]), "class_names"),
    "intercepts cut": (_set("classifier", "intercepts", lambda b: b[:1]), "classifier.intercepts"),
    "NaN intercept": (_set("classifier", "intercepts", lambda b: [math.nan, *b[1:]]), "classifier.intercepts[0]"),
    "negative C": (_set("classifier", "chosen_C", lambda c: [-1.0, *c[1:]]), "classifier.chosen_C[0]"),
    "PCA sizes differ": (lambda m: _set("n_components", 6)(m["blocks"][0]["projection"]),
                         "blocks[0].projection.n_components"),
    "K differs": (lambda m: _set("n_components", 3)(m["blocks"][0]["encoder"]["gmm"]),
                  "blocks[0].encoder.gmm.n_components"),
    "bogus GMM backend": (lambda m: _set("backend", "magic")(m["blocks"][0]["encoder"]["gmm"]),
                          "blocks[0].encoder.gmm.backend"),
    "bogus normalisation": (lambda m: _set("normalization", "l3")(m["blocks"][0]["encoder"]),
                            "blocks[0].encoder.normalization"),
    "empty pyramid cell": (lambda m: _set("levels", [[0, 1]])(m["blocks"][0]["encoder"]["pyramid"]),
                           "blocks[0].encoder.pyramid.levels[0][0]"),
    "other kernel": (_set("classifier", "kernel", "name", "rbf"), "classifier.kernel.name"),
    "bogus encoder": (_set("config", "encoder", "magic"), "config.encoder"),
    "unknown SIFT parameter": (_set("sift", "params", "evil", 1), "sift.params.evil"),
    "blocks not a list": (_set("blocks", {}), "field blocks"),
}


@pytest.mark.parametrize("case", JSON_CASES)
def test_tampered_json_fields_are_refused_naming_the_field(case, fv, tmp_path):
    edit, field = JSON_CASES[case]
    directory = _copy(fv[1], tmp_path)
    _edit_json(directory, edit)
    message = _refusal(directory)
    assert str(directory / "model.json") in message and field in message


def test_the_command_line_prints_the_refusal_in_one_line(fv, tmp_path, capsys, small_toyvoc):
    directory = _copy(fv[1], tmp_path)
    _edit_json(directory, _set("sift", "params", "step", 0))
    image = str(open_dataset(small_toyvoc).split("test")[0].path)
    assert main(["predict", "--model", str(directory), image]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sift.params.step" in err and str(directory) in err


# --- arrays.npz values ------------------------------------------------------------------------

GMM = "block0/encoder/gmm/"


def _put(name, change):
    def edit(arrays):
        arrays[name] = change(arrays[name].copy())
    return edit


def _poke(value, index=(0, 0)):
    def change(a):
        a[index] = value
        return a
    return change


ARRAY_CASES = {
    "NaN coefficient": (_put("classifier/coef", _poke(np.nan)), "classifier/coef", "NaN"),
    "infinite mean": (_put(GMM + "means", _poke(np.inf)), GMM + "means", "infinite"),
    "zero variance": (_put(GMM + "variances", _poke(0.0)), GMM + "variances", "<= 0"),
    "negative variance": (_put(GMM + "variances", _poke(-1.0)), GMM + "variances", "<= 0"),
    "NaN variance": (_put(GMM + "variances", _poke(np.nan)), GMM + "variances", "NaN"),
    # positive, but under the floor the fit applied (1e-4 of the largest data variance, in model.json)
    "variance under the floor": (_put(GMM + "variances", _poke(1e-12)), GMM + "variances",
                                 "below the variance floor"),
    "priors sum to 2": (_put(GMM + "weights", lambda w: w * 2), GMM + "weights", "sum to 1"),
    "negative prior": (_put(GMM + "weights", lambda w: w * np.array([-1, 3], w.dtype)), GMM + "weights", ">= 0"),
    "complex coefficients": (_put("classifier/coef", lambda a: a.astype(np.complex128)), "classifier/coef", "dtype"),
    "text coefficients": (_put("classifier/coef", lambda a: a.astype(str)), "classifier/coef", "dtype"),
    "integer coefficients": (_put("classifier/coef", lambda a: a.astype(np.int64)), "classifier/coef", "dtype"),
    "coefficients of 3 classes": (_put("classifier/coef", lambda a: np.hstack([a, a[:, :1]])), "classifier/coef",
                                  "shape"),
    "means of other PCA size": (_put(GMM + "means", lambda a: a[:, :-1]), GMM + "means", "shape"),
    "PCA mean of other size": (_put("block0/projection/mean", lambda a: a[:-1]), "block0/projection/mean", "shape"),
    "negative explained variance": (_put("block0/projection/explained_variance", lambda a: -a),
                                    "block0/projection/explained_variance", "negative"),
    "member missing": (lambda arrays: arrays.pop("block0/projection/components"), "block0/projection/components",
                       "missing"),
}


@pytest.mark.parametrize("case", ARRAY_CASES)
def test_tampered_arrays_are_refused_naming_the_array(case, fv, tmp_path):
    edit, name, problem = ARRAY_CASES[case]
    directory = _copy(fv[1], tmp_path)
    _edit_arrays(directory, edit)
    message = _refusal(directory)
    assert str(directory / "arrays.npz") in message and name in message and problem in message


SV, DUAL = "classifier/support_vectors", "classifier/dual_coef"
KERNEL_CASES = {
    "negative support vector": (lambda d: _edit_arrays(d, _put(SV, _poke(-1.0))), SV, "negative"),
    "more support vectors than images": (
        lambda d: _edit_arrays(d, lambda a: a.update({SV: np.tile(a[SV], (31, 1)), DUAL: np.tile(a[DUAL], (31, 1))})),
        SV, "shape"),
    "dual rows cut": (lambda d: _edit_arrays(d, _put(DUAL, lambda a: a[:-1])), DUAL, "rows"),
    "kernel blocks moved": (lambda d: _edit_json(d, lambda m: m["classifier"]["kernel"]["blocks"][0].__setitem__(1, 5)),
                            "classifier.kernel.blocks", "disagrees"),
    "block of another scale": (lambda d: _edit_json(d, lambda m: m["blocks"][1].__setitem__("scales", [0])),
                               "blocks[1].scales", "disagrees"),
    "bogus pooling": (lambda d: _edit_json(d, lambda m: m["blocks"][0]["encoder"].__setitem__("pooling", "mean")),
                      "blocks[0].encoder.pooling", "not one of"),
}


@pytest.mark.parametrize("case", KERNEL_CASES)
def test_tampered_kernel_models_are_refused(case, kernel_bow, tmp_path):
    edit, name, problem = KERNEL_CASES[case]
    directory = _copy(kernel_bow[1], tmp_path)
    edit(directory)
    message = _refusal(directory)
    assert name in message and problem in message


# --- model.json and arrays.npz belong together (defect 3) ----------------------------------------

def test_new_arrays_beside_the_old_json_are_refused(fv, small_toyvoc, tmp_path, monkeypatch):
    """A save killed between its two renames left the new arrays with the old JSON, which then predicted
    silently with parts of two models; the digest in model.json now refuses the pair."""
    directory = _copy(fv[1], tmp_path)
    other = _train(small_toyvoc, PipelineConfig(encoder="fisher", kernel="linear", n_words=2, pca_dims=8,
                                                **{**TINY, "seed": 1}))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the save dies after arrays.npz, before model.json

    monkeypatch.setattr("bowlrp.persistence.atomic_write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        other.save(directory)
    monkeypatch.undo()
    assert (directory / "arrays.npz").read_bytes() != (fv[1] / "arrays.npz").read_bytes()
    message = _refusal(directory)
    assert str(directory / "arrays.npz") in message and "not the arrays model.json was saved with" in message
    other.save(directory)  # a completed save loads again
    load_model(directory)


def test_a_model_json_without_digest_still_loads(fv, tmp_path, images):
    """Models saved before digests were recorded keep loading (every other check still applies)."""
    directory = _copy(fv[1], tmp_path)
    _edit_json(directory, lambda meta: meta.pop("arrays_sha256"))
    np.testing.assert_array_equal(_scores(load_model(directory), images), _scores(fv[0], images))


# --- zip bombs (defect 7) ---------------------------------------------------------------------------

def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _add_member(directory: Path, name: str, shape: tuple[int, ...], zero_bytes: int, replace: bool = False) -> None:
    """Add (or put in place of ``name``) a deflated member whose header claims ``shape`` float64 and whose
    data is ``zero_bytes`` zeros (a few kB on disk per 10 MB), then record the file's digest."""
    path = directory / "arrays.npz"
    with zipfile.ZipFile(path) as old:
        kept = {info.filename: old.read(info) for info in old.infolist() if info.filename != name + ".npy"}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in kept.items():
            archive.writestr(member, data)
        with archive.open(name + ".npy", "w", force_zip64=True) as fh:
            fh.write(_npy_header(shape))
            chunk = bytes(1 << 20)
            for start in range(0, zero_bytes, len(chunk)):
                fh.write(chunk[:min(len(chunk), zero_bytes - start)])
    if not replace:
        assert name + ".npy" not in kept
    _set_digest(directory)


def _peak_bytes_while(call) -> tuple[object, int]:
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_undeclared_member_is_never_read(fv, tmp_path, images):
    directory = _copy(fv[1], tmp_path)
    load_model(directory)  # imports and caches warmed up before memory is counted
    _add_member(directory, "bomb", (2 ** 33,), 0)          # claims 64 GiB, holds nothing
    _add_member(directory, "zeros", (2 ** 23,), 2 ** 26)   # 64 MB of real zeros, ~65 kB on disk
    assert (directory / "arrays.npz").stat().st_size < 2 ** 20
    model, peak = _peak_bytes_while(lambda: load_model(directory))
    assert peak < 16 * 2 ** 20, f"{peak / 2 ** 20:.0f} MB allocated while loading"
    np.testing.assert_array_equal(_scores(model, images), _scores(fv[0], images))


def test_a_declared_member_claiming_more_than_its_shape_is_refused_before_its_data(fv, tmp_path):
    directory = _copy(fv[1], tmp_path)
    load_model(directory)
    rows = fv[0].features.dim
    _add_member(directory, "classifier/coef", (rows * 4096, 2), 2 ** 26, replace=True)  # 64 MB of the claimed
    with pytest.raises(ModelError) as caught:
        _peak_bytes_while(lambda: load_model(directory))
    message = str(caught.value)
    assert f"classifier/coef: shape ({rows * 4096}, 2) where model.json declares ({rows}, 2)" in message
    _add_member(directory, "classifier/coef", (2 ** 30, 2), 0, replace=True)  # 16 GiB claimed, no data
    _, peak = _peak_bytes_while(lambda: pytest.raises(ModelError, load_model, directory))
    assert peak < 16 * 2 ** 20


def test_truncated_declared_member_is_refused(fv, tmp_path):
    directory = _copy(fv[1], tmp_path)
    rows = fv[0].features.dim
    _add_member(directory, "classifier/coef", (rows, 2), 8, replace=True)
    assert "classifier/coef: truncated" in _refusal(directory)


# --- DNN model files ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def network(tmp_path_factory):
    from bowlrp.dnn import models
    from bowlrp.dnn.io import save_network

    torch.manual_seed(0)
    net = models.build("smallcnn", 2).eval()
    out = tmp_path_factory.mktemp("cnn") / "model"
    save_network(out, net, {"arch": "smallcnn", "classes": CLASSES, "size": 96, "crop": 80})
    return net, out


def _edit_weights(directory: Path, edit) -> None:
    state = torch.load(directory / "weights.pt", weights_only=True)
    edit(state)
    torch.save(state, directory / "weights.pt")
    digest = hashlib.sha256((directory / "weights.pt").read_bytes()).hexdigest()
    _edit_json(directory, lambda meta: meta.update(weights_sha256=digest))


def _weight(key, change):
    return lambda state: state.__setitem__(key, change(state[key].clone()))


def _nan(t):
    t.view(-1)[0] = float("nan")
    return t


DNN_CASES = {
    "NaN weight": (lambda d: _edit_weights(d, _weight("features.0.weight", _nan)), "weights.pt", "features.0.weight"),
    "infinite bias": (lambda d: _edit_weights(d, _weight("classifier.3.bias", lambda t: t + float("inf"))),
                      "weights.pt", "classifier.3.bias"),
    "negative BN variance": (lambda d: _edit_weights(d, _weight("features.1.running_var", lambda t: -t)),
                             "weights.pt", "features.1.running_var"),
    "complex weight": (lambda d: _edit_weights(d, _weight("features.0.weight", lambda t: t.to(torch.complex64))),
                       "weights.pt", "dtype"),
    "integer weight": (lambda d: _edit_weights(d, _weight("features.0.weight", lambda t: t.to(torch.int64))),
                       "weights.pt", "dtype"),
    "class list cut": (lambda d: _edit_json(d, lambda m: m.update(classes=["horse"])), "model.json", "field classes"),
    "class list grown": (lambda d: _edit_json(d, lambda m: m.update(classes=[*CLASSES, "cow"])), "model.json",
                         "field classes"),
    "class listed twice": (lambda d: _edit_json(d, lambda m: m.update(classes=["horse", "horse"])), "model.json",
                           "field classes"),
    "bogus architecture": (lambda d: _edit_json(d, lambda m: m.update(arch="magic")), "model.json", "field arch"),
    "crop larger than the image": (lambda d: _edit_json(d, lambda m: m.update(crop=200)), "model.json", "field crop"),
    "size 0": (lambda d: _edit_json(d, lambda m: m.update(size=0)), "model.json", "field size"),
    "stray parameter": (lambda d: _edit_weights(d, lambda s: s.__setitem__("extra", torch.zeros(1))), "weights.pt",
                        "extra"),
}


@pytest.mark.parametrize("case", DNN_CASES)
def test_tampered_network_files_are_refused(case, network, tmp_path):
    edit, file, field = DNN_CASES[case]
    directory = _copy(network[1], tmp_path)
    edit(directory)
    message = _refusal(directory)
    assert str(directory / file) in message and field in message


def test_clean_network_loads_and_predicts_identically(network):
    from bowlrp.dnn.io import load_network

    x = torch.randn(2, 3, 80, 80, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(load_network(network[1])(x), network[0](x))


def test_new_weights_beside_the_old_json_are_refused(network, tmp_path, monkeypatch):
    from bowlrp.dnn import models
    from bowlrp.dnn.io import save_network

    directory = _copy(network[1], tmp_path)
    monkeypatch.setattr("bowlrp.dnn.io.atomic_write_json", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        save_network(directory, models.build("smallcnn", 2), {"arch": "smallcnn", "classes": CLASSES, "size": 96,
                                                              "crop": 80})
    assert "not the weights model.json was saved with" in _refusal(directory)
