"""Faces models: one-vs-rest targets, accuracy against scikit-learn, 10-crop oversampling against a
crop-by-crop reference, --init, the FV family, the CLI and its lazy PyTorch import."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix

from bowlrp.data.adience import open_adience
from bowlrp.data.synth.faces import generate_toyfaces
from bowlrp.dnn.config import TrainConfig
from bowlrp.errors import BowlrpError, SkipLog
from bowlrp.faces.models import (FaceModelSpec, FisherSettings, accuracy_summary, evaluate_face_model,
                                 face_scores, one_vs_rest, train_face_model)

BOWLRP = [sys.executable, "-m", "bowlrp"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return generate_toyfaces(tmp_path_factory.mktemp("tinyfaces") / "data", seed=1, size="small", faces_per_fold=16)


@pytest.fixture(scope="module")
def age_net(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("age") / "net"
    spec = FaceModelSpec(task="age", align="inplane", folds=(0, 1), dnn=TrainConfig(epochs=1, crop=32))
    train_face_model(tiny, spec, out, report=lambda m: None)
    return out


def test_one_vs_rest_and_accuracy_against_sklearn():
    y = np.array([0, 3, 7, 2])
    assert one_vs_rest(y, 8).tolist()[1] == [-1, -1, -1, 1, -1, -1, -1, -1]
    rng = np.random.default_rng(0)
    truth, pred = rng.integers(0, 8, 200), rng.integers(0, 8, 200)
    s = accuracy_summary("age", truth, pred)
    assert s["accuracy"] == pytest.approx(accuracy_score(truth, pred))
    assert s["confusion"] == confusion_matrix(truth, pred, labels=range(8)).tolist()
    assert s["one_off_accuracy"] == pytest.approx(np.mean([abs(a - b) <= 1 for a, b in zip(truth, pred)]))
    g = accuracy_summary("gender", truth % 2, pred % 2)
    assert g["one_off_accuracy"] is None and np.asarray(g["confusion"]).shape == (2, 2)


def test_ten_crop_scores_are_the_mean_of_each_crop(age_net, tiny):
    import torch

    from bowlrp.data.images import load_image
    from bowlrp.dnn.io import load_network
    from bowlrp.dnn.preprocess import cut, normalize, squared_image

    data = open_adience(tiny)
    paths, _, _ = data.samples("age", "inplane", [4], SkipLog())
    scores, ok = face_scores(age_net, paths[:5], SkipLog())
    model = load_network(age_net)
    size, crop = model.meta["size"], model.meta["crop"]
    with torch.no_grad():
        for path, got in zip(paths[:5], scores):
            sq = squared_image(load_image(path), size)
            want = np.mean([model(normalize(cut(sq, crop, c)))[0].numpy() for c in range(10)], 0)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert ok.all() and scores.shape == (5, 8)


def test_init_keeps_every_layer_but_the_last(age_net, tiny, tmp_path):
    import torch

    out = tmp_path / "from-age"
    spec = FaceModelSpec(task="gender", align="inplane", folds=(0,), init=str(age_net),
                         dnn=TrainConfig(epochs=1, lr=1e-12, crop=32))
    train_face_model(tiny, spec, out, report=lambda m: None)
    a = torch.load(age_net / "weights.pt", weights_only=True)
    b = torch.load(out / "weights.pt", weights_only=True)
    conv = [k for k in a if k.startswith("features.") and k.endswith("weight")]
    assert conv and all(torch.allclose(a[k], b[k], atol=1e-6) for k in conv)
    assert b["classifier.3.weight"].shape[0] == 2  # a new last layer for the gender classes
    scratch = tmp_path / "scratch"
    train_face_model(tiny, FaceModelSpec(task="gender", align="inplane", folds=(0,),
                                         dnn=TrainConfig(epochs=1, lr=1e-12, crop=32, seed=5)), scratch,
                     report=lambda m: None)
    c = torch.load(scratch / "weights.pt", weights_only=True)
    assert not torch.allclose(a[conv[0]], c[conv[0]])


def test_fisher_family_trains_and_evaluates(tiny, tmp_path):
    out = tmp_path / "fv"
    spec = FaceModelSpec(task="gender", align="rotation", family="fisher", folds=(0, 1, 2),
                         fisher=FisherSettings(gmm_k=4, pca_dims=16, max_descriptors=5000))
    train_face_model(tiny, spec, out, report=lambda m: None)
    result = evaluate_face_model(out, tiny, (4,))
    assert result["family"] == "fisher" and 0 <= result["accuracy"] <= 1
    assert sum(map(sum, result["confusion"])) == result["n_images"] > 10


def test_cli_train_evaluate_and_swap(tiny, age_net, tmp_path):
    out = tmp_path / "ev.json"
    run = subprocess.run(BOWLRP + ["faces", "evaluate", "--model", str(age_net), "--data", str(tiny), "--folds", "4",
                                   "--json", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(out.read_text())
    assert {"task", "accuracy", "one_off_accuracy", "n_images", "confusion"} <= set(result)
    data = open_adience(tiny)
    n = sum(f.age is not None for f in data.folds[4])
    assert result["n_images"] == n and sum(map(sum, result["confusion"])) == n and result["align"] == "inplane"
    swapped = evaluate_face_model(age_net, tiny, (4,), align="rotation")
    assert swapped["align"] == "rotation" and swapped["trained_align"] == "inplane"
    run = subprocess.run(BOWLRP + ["faces", "train", "--data", str(tiny), "--task", "age", "--align", "inplane",
                                   "--out", str(tmp_path / "m"), "--folds", "0,7"], capture_output=True, text=True)
    assert run.returncode == 2 and "--folds" in run.stderr
    run = subprocess.run(BOWLRP + ["faces", "evaluate", "--model", str(tmp_path), "--data", str(tiny)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "faces.json: missing" in run.stderr and "Traceback" not in run.stderr


def test_cli_trains_a_network(tiny, tmp_path):
    out = tmp_path / "gender"
    run = subprocess.run(BOWLRP + ["faces", "train", "--data", str(tiny), "--task", "gender", "--align", "mixed",
                                   "--out", str(out), "--folds", "0", "--epochs", "1", "--no-progress"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert json.loads((out / "faces.json").read_text())["align"] == "mixed"
    assert "skipped" in run.stderr  # the rows with a 'u' gender or 'None' age are counted skips, named


def test_faces_commands_do_not_import_torch_until_a_network_runs():
    code = ("import sys; from bowlrp.cli.main import build_parser; "
            "p = build_parser(['faces', 'evaluate', '--help']); "
            "import bowlrp.faces.models, bowlrp.faces.regions, bowlrp.cli.faces; "
            "print('torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_training_refuses_folds_without_every_class(tiny, tmp_path):
    import shutil

    from bowlrp.data.adience import parse_age

    copy = tmp_path / "copy"
    shutil.copytree(tiny, copy)
    for k in range(5):  # drop every 60+ face
        p = copy / f"fold_{k}_data.txt"
        lines = p.read_text().splitlines()
        p.write_text("\n".join([lines[0]] + [l for l in lines[1:] if parse_age(l.split("\t")[3]) != 7]) + "\n")
    with pytest.raises(BowlrpError, match="hold no face of 60-"):
        train_face_model(copy, FaceModelSpec(task="age", align="inplane", folds=(0, 1)), tmp_path / "x",
                         SkipLog(), report=lambda m: None)
