"""Preprocessing geometry and its inverse, training (resumable, deterministic), evaluate/explain CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from bowlrp.dnn.preprocess import crop_offsets, cut, square, to_original
from bowlrp.dnn.train import TrainConfig, hinge_loss, train


def test_square_copies_the_border_and_ten_crops_cover_corners_centre_and_mirrors():
    img = torch.arange(2 * 4, dtype=torch.float32).reshape(1, 1, 2, 4)  # landscape: padded top and bottom
    sq = square(img, 4)
    assert sq.shape == (1, 1, 4, 4)
    assert torch.equal(sq[0, 0, 0], sq[0, 0, 1]) and torch.equal(sq[0, 0, 3], sq[0, 0, 2])  # copied rows
    assert torch.equal(sq[0, 0, 1:3], img[0, 0])
    crops = [cut(sq, 3, i) for i in range(10)]
    assert torch.equal(crops[0], sq[..., :3, :3]) and torch.equal(crops[3], sq[..., 1:, 1:])
    assert torch.equal(crops[7], crops[2].flip(-1))
    assert crop_offsets(256, 227)[4] == (14, 14)


def test_mapping_back_keeps_relevance_and_sends_a_point_home():
    h, w, size, crop = 90, 160, 112, 96
    r = np.zeros((crop, crop))
    # where does original pixel (y=30, x=120) land in the centre crop? scale 112/160 = 0.7, pad (112-63)//2 = 24
    yc, xc = round(30.5 * 0.7 - 0.5) + 24 - 8, round(120.5 * 0.7 - 0.5) - 8
    r[yc, xc] = 1.0
    back = to_original(r, (h, w), size, crop)
    assert back.shape == (h, w) and back.dtype == np.float32
    assert abs(float(back.sum()) - 1.0) < 1e-5
    ys, xs = np.nonzero(back > 0)
    wy, wx = back[ys, xs] / back.sum(), back[ys, xs] / back.sum()
    assert abs(float((ys * wy).sum()) - 30) <= 1.5 and abs(float((xs * wx).sum()) - 120) <= 1.5
    # relevance on the copied border goes back to the border row it copies
    r2 = np.zeros((crop, crop))
    r2[0, 40] = 1.0  # top crop row lies in the padding (rows 0..23 of the square copy row 24)
    back2 = to_original(r2, (h, w), size, crop)
    assert abs(float(back2.sum()) - 1.0) < 1e-5 and float(back2[:2].sum()) > 0.99


class RedDetector(nn.Module):
    """Responds to red pixels: conv(1x1) on the normalised input = r - g - b, ReLU, mean, a linear head."""

    def __init__(self):
        super().__init__()
        from bowlrp.dnn.models import IMAGENET_MEAN, IMAGENET_STD

        a = torch.tensor([1.0, -1.0, -1.0])
        self.conv = nn.Conv2d(3, 1, 1)
        self.conv.weight.data = (a * torch.tensor(IMAGENET_STD)).reshape(1, 3, 1, 1)
        self.conv.bias.data = (a * torch.tensor(IMAGENET_MEAN)).sum().reshape(1)
        self.relu, self.pool, self.fc = nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Linear(1, 1)
        self.fc.weight.data.fill_(1.0)
        self.fc.bias.data.zero_()
        self.meta = {"size": 112, "crop": 96, "classes": ["red"]}

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


@pytest.mark.parametrize("method", ["lrp", "gradxinput"])
def test_relevance_mass_is_centred_on_a_known_object_in_original_coordinates(method):
    from bowlrp.dnn.classifier import DnnClassifier

    h, w = 120, 240
    image = np.full((h, w, 3), 0.5, dtype=np.float32)
    cy, cx = 40, 150  # off-centre, inside the centre crop
    image[cy - 10:cy + 10, cx - 10:cx + 10] = (1.0, 0.0, 0.0)
    model = DnnClassifier(RedDetector().eval())
    result = model.explain(image, "red", model.explanation_method(method=method))
    rel = np.clip(result.relevance, 0, None)
    assert result.relevance.shape == (h, w) and rel.sum() > 0
    ys, xs = np.mgrid[:h, :w]
    my, mx = (rel * ys).sum() / rel.sum(), (rel * xs).sum() / rel.sum()
    assert abs(my - cy + 0.5) <= 2 and abs(mx - cx + 0.5) <= 2, (my, mx)
    # the flat input layer and the mapping back keep relevance; only the dense layer's epsilon absorbs some
    assert abs(float(result.relevance.astype(np.float64).sum()) + result.absorbed - result.score) < 1e-6


def test_hinge_loss_sums_over_classes_and_ignores_difficult():
    scores = torch.tensor([[2.0, 0.5, -3.0], [0.0, 0.0, 0.0]])
    labels = torch.tensor([[1, 1, 0], [-1, 1, -1]])
    # row 0: 0 + 0.5 (+ ignored); row 1: 1 + 1 + 1
    assert torch.isclose(hinge_loss(scores, labels), torch.tensor((0.5 + 3.0) / 2))


@pytest.fixture(scope="module")
def toyvoc(tmp_path_factory):
    from bowlrp.data.synth import generate_toyvoc

    return generate_toyvoc(tmp_path_factory.mktemp("toy") / "toyvoc", seed=0, size="small")


def _trainval(root):
    from bowlrp.data import open_dataset

    ds = open_dataset(root)
    samples = ds.split("trainval")[:16]
    labels = np.stack([s.labels for s in samples])
    present = [c for c in range(len(ds.classes)) if (labels[:, c] == 1).any()]
    return [s.path for s in samples], labels[:, present], [ds.classes[c] for c in present]


def test_training_is_deterministic_and_resumes_after_an_interruption(toyvoc, tmp_path):
    paths, labels, classes = _trainval(toyvoc)
    config = TrainConfig(arch="smallcnn", epochs=2, batch_size=32, seed=3, size=48, crop=40)
    whole = train(config, paths, labels, classes, tmp_path / "whole", report=lambda m: None)

    class Stop(Exception):
        pass

    def stop_after_first(message):
        if message.startswith("epoch 1/"):
            raise Stop

    with pytest.raises(Stop):
        train(config, paths, labels, classes, tmp_path / "cut", report=stop_after_first)
    assert json.loads((tmp_path / "cut" / "checkpoint.json").read_text())["epoch"] == 1
    seen = []
    resumed = train(config, paths, labels, classes, tmp_path / "cut", report=seen.append)
    assert seen[0].startswith("resuming after epoch 1")
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    other = train(TrainConfig(**{**config.__dict__, "seed": 4}), paths, labels, classes, tmp_path / "other",
                  report=lambda m: None)
    assert not torch.equal(other.state_dict()["classifier.3.weight"], whole.state_dict()["classifier.3.weight"])


@pytest.fixture(scope="module")
def cnn(toyvoc, tmp_path_factory):
    from bowlrp.cli import main

    model = tmp_path_factory.mktemp("cnn") / "model"
    assert main(["dnn", "train", "--data", str(toyvoc), "--arch", "smallcnn", "--out", str(model), "--epochs", "1",
                 "--no-progress"]) == 0
    return model


def test_cli_train_evaluate_explain_and_store(toyvoc, cnn, tmp_path, capsys):
    from bowlrp.data import load_image, open_dataset
    from bowlrp.store import RelevanceStore
    from bowlrp.cli import main

    model = cnn
    out_json = tmp_path / "ap.json"
    assert main(["dnn", "evaluate", "--model", str(model), "--data", str(toyvoc), "--split", "test",
                 "--json", str(out_json)]) == 0
    result = json.loads(out_json.read_text())
    assert {"ap", "map", "n_images", "skipped"} <= set(result) and result["n_images"] > 0
    classes = json.loads((model / "model.json").read_text())["classes"]
    assert set(result["ap"]) == set(classes)

    images = [str(s.path) for s in open_dataset(toyvoc).split("test")[:2]]
    heat = tmp_path / "maps"
    assert main(["dnn", "explain", "--model", str(model), "--class", classes[0], "--out", str(heat), *images]) == 0
    for path in images:
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        with np.load(heat / f"{stem}.npz", allow_pickle=False) as npz:
            assert npz["relevance"].shape == load_image(path).shape[:2] and npz["relevance"].dtype == np.float32
            assert {"score", "bias_relevance", "residual", "absorbed"} <= set(npz.files)
        assert (heat / f"{stem}.png").is_file() and (heat / f"{stem}_overlay.png").is_file()
    assert main(["dnn", "explain", "--model", str(model), "--class", classes[0], "--method", "guided",
                 "--out", str(tmp_path / "g"), images[0]]) == 0

    store = tmp_path / "maps.h5"
    assert main(["dnn", "explain", "--model", str(model), "--class", classes[0], "--data", str(toyvoc),
                 "--split", "test", "--store", str(store), "--no-progress"]) == 0
    with RelevanceStore(store) as s:
        n_test = len(open_dataset(toyvoc).split("test"))
        assert len(s) == n_test
        first = s[s.ids[0]]
        assert first["relevance"].ndim == 2 and np.isfinite(first["relevance"]).all()
    capsys.readouterr()
    assert main(["dnn", "explain", "--model", str(model), "--class", "unicorn", "--out", str(heat), images[0]]) == 1
    assert "unknown class 'unicorn'" in capsys.readouterr().err
    assert main(["dnn", "train", "--data", str(toyvoc), "--out", str(tmp_path / "x"), "--device", "cuda:7"]) == 1 \
        or torch.cuda.device_count() > 7


def test_split_store_resumes_after_an_interruption(toyvoc, cnn, tmp_path, monkeypatch):
    from bowlrp.data import open_dataset
    from bowlrp.model import load_model
    from bowlrp.parallel import ParallelOptions
    from bowlrp.runs import explain_split
    from bowlrp.store import RelevanceStore

    model = load_model(cnn)
    cls = model.class_names[0]
    samples = open_dataset(toyvoc).split("test")
    method = model.explanation_method(composite="epsilon-alpha2beta1-flat")
    quiet = ParallelOptions(progress=False)
    whole = explain_split(model, samples, cls, tmp_path / "whole.h5", method, parallel=quiet)
    real, calls = model.explain, []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(model, "explain", flaky)
    with pytest.raises(KeyboardInterrupt):
        explain_split(model, samples, cls, tmp_path / "cut.h5", method, parallel=quiet)
    assert len(list((tmp_path / "cut.h5.parts").glob("*.npz"))) == 2
    monkeypatch.setattr(model, "explain", real)
    resumed = explain_split(model, samples, cls, tmp_path / "cut.h5", method, parallel=quiet)
    assert resumed.n_resumed == 2 and resumed.n_explained == whole.n_explained - 2
    assert not (tmp_path / "cut.h5.parts").exists()
    with RelevanceStore(tmp_path / "whole.h5") as a, RelevanceStore(tmp_path / "cut.h5") as b:
        assert a.ids == b.ids
        for image_id in a.ids:
            assert np.array_equal(a[image_id]["relevance"], b[image_id]["relevance"])


def test_training_starts_from_torchvision_layout_weights(toyvoc, tmp_path):
    from bowlrp.errors import BowlrpError
    from bowlrp.dnn import models

    paths, labels, classes = _trainval(toyvoc)
    paths, labels = paths[:4], labels[:4]
    torch.manual_seed(5)
    source = models.build("smallcnn", 1000).state_dict()  # a 1000-way file, as torchvision's are
    torch.save(source, tmp_path / "w.pt")
    config = TrainConfig(arch="smallcnn", epochs=0, size=48, crop=40, weights=str(tmp_path / "w.pt"))
    model = train(config, paths, labels, classes, tmp_path / "m", report=lambda m: None)
    state = model.state_dict()
    assert torch.equal(state["features.0.weight"], source["features.0.weight"])
    assert state["classifier.3.weight"].shape == (len(classes), 128)  # a new head for our classes
    torch.save(models.build("resnet18", 1000).state_dict(), tmp_path / "r.pt")
    with pytest.raises(BowlrpError, match="not smallcnn weights"):
        train(TrainConfig(**{**config.__dict__, "weights": str(tmp_path / "r.pt")}), paths, labels, classes,
              tmp_path / "m2", report=lambda m: None)


# what each method uses, written out by hand: a store must state exactly these settings
USED_SETTINGS = {
    "lrp": {"method": "lrp", "composite": "epsilon-alpha2beta1-flat", "epsilon": 0.01, "alpha": 2.0, "beta": 1.0,
            "flat_depth": 1},
    "gradient": {"method": "gradient"},
    "gradxinput": {"method": "gradxinput"},
    "deconvnet": {"method": "deconvnet"},
    "guided": {"method": "guided"},
    "smoothgrad": {"method": "smoothgrad", "n_samples": 20, "noise": 0.1, "seed": 0},
    "ig": {"method": "ig", "steps": 32, "baseline": "zeros"},
}


def test_a_store_records_only_the_settings_its_method_used(toyvoc, cnn, tmp_path):
    from bowlrp.data import open_dataset
    from bowlrp.dnn.attribution import method_names
    from bowlrp.model import load_model
    from bowlrp.parallel import ParallelOptions
    from bowlrp.runs import explain_split
    from bowlrp.store import RelevanceStore

    assert set(method_names()) == set(USED_SETTINGS)
    model = load_model(cnn)
    samples = open_dataset(toyvoc).split("test")[:2]
    common = {"format", "version", "class_name", "model_family", "model_variant", "model_sha256", "settings"}
    for name, expected in USED_SETTINGS.items():
        store = tmp_path / f"{name}.h5"
        explain_split(model, samples, model.class_names[0], store, model.explanation_method(method=name),
                      parallel=ParallelOptions(progress=False))
        with RelevanceStore(store) as s:
            recorded = {k: v for k, v in s.attrs.items() if k not in common}
            assert recorded == expected, name
            assert s.attrs["model_family"] == "dnn"
            assert json.loads(s.attrs["settings"])["method"] == name
    zplus = model.explanation_method(composite="zplus").settings()
    assert zplus == {"method": "lrp", "composite": "zplus"}  # no epsilon, alpha, beta or flat depth


def test_scores_of_images_in_memory_equal_those_of_their_files(toyvoc, cnn):
    from bowlrp.data import load_image, open_dataset
    from bowlrp.errors import SkipLog
    from bowlrp.model import load_model

    model = load_model(cnn)
    paths = [s.path for s in open_dataset(toyvoc).split("test")[:5]]
    from_files, ok = model.score_files(paths, SkipLog())
    assert ok.all()
    np.testing.assert_allclose(model.score_images([load_image(p) for p in paths]), from_files, rtol=1e-5, atol=1e-6)
