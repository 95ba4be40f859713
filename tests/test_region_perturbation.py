"""Region perturbation (Section 3.4, Eq. 3.6/3.7): AOPC by hand, curves of a model whose score change
per region is known in closed form, the Quantus oracle, resumable split runs, and the faithfulness
property (LRP's MoRF order beats a random one) for the FV and the DNN family."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from bowlrp.analysis.perturbation import aopc
from bowlrp.analysis.region_perturbation import (PerturbationConfig, map_order, parse_order, perturb_split,
                                                 perturbation_curves, region_grid, region_sums)
from bowlrp.data import open_dataset
from test_model_interface import BIAS, CLASSES, WEIGHTS, stub_family
from test_model_interface import PixelLinear as InterfacePixels
from bowlrp.errors import BowlrpError, SkipLog
from bowlrp.parallel import ParallelOptions

QUIET = ParallelOptions(progress=False)


def test_aopc_of_a_hand_made_curve():
    # scores 3, 2, 1, 1: drops 0, 1, 2, 2 over L + 1 = 4 terms (Eq. 3.7) -> 5/4
    assert aopc(np.array([3.0, 2.0, 1.0, 1.0])) == pytest.approx(1.25)
    np.testing.assert_allclose(aopc(np.array([[3.0, 2.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])), [1.25, 0.0])


def test_grid_clips_the_border_regions_and_sums_per_region():
    ids, n = region_grid((20, 25), 9)
    assert n == 9 and ids.shape == (20, 25)
    assert (ids[:9, :9] == 0).all() and (ids[18:, 18:] == 8).all() and ids[0, 24] == 2
    relevance = np.random.default_rng(0).normal(size=(20, 25))
    expected = [relevance[r:r + 9, c:c + 9].sum() for r in range(0, 20, 9) for c in range(0, 25, 9)]
    np.testing.assert_allclose(region_sums(relevance, ids, n), expected)
    assert list(map_order(np.array([1.0, 3.0, 3.0, -2.0]))) == [1, 2, 0, 3]
    assert list(map_order(np.array([1.0, 3.0, 3.0, -2.0]), most_relevant_first=False)) == [3, 0, 1, 2]


def test_order_specs():
    assert parse_order("lrp") == parse_order(" lrp ")
    spec = parse_order("lrp:rule=alphabeta,alpha=2,eps=0.5")
    assert spec.kind == "lrp" and spec.options == {"rule": "alphabeta", "alpha": 2, "eps": 0.5}
    for bad in ("morf", "random:eps=1", "lrp:eps"):
        with pytest.raises(BowlrpError):
            parse_order(bad)


# --- a model whose score change per region is known ---------------------------------------------------

FORMAT = "test.perturb-pixel-linear"


class PixelLinear(InterfacePixels):
    """The raw-pixel linear model of tests/test_model_interface.py, ``f_k(x) = mean_p (w_k . x_p) + b_k``:
    filling region Q with zeros lowers f_k by exactly ``sum_{p in Q} w_k . x_p / (H W)``, the region's
    summed exact relevance. It counts the batch sizes ``score_images`` sees."""

    family = "perturb-pixels"

    def __init__(self):
        super().__init__(WEIGHTS, BIAS, CLASSES)
        self.calls: list[int] = []

    def score_images(self, images):
        self.calls.append(len(images))
        return super().score_images(images)


def _image(h=40, w=50, seed=1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(h, w, 3)).astype(np.float32)


def test_zero_fill_curves_follow_the_known_region_drops():
    model, image = PixelLinear(), _image()
    h, w = image.shape[:2]
    k = model.class_index("boat")
    # independent: each 9x9 block's drop computed by a loop over the blocks
    blocks = [(r, c) for r in range(0, h, 9) for c in range(0, w, 9)]
    drop = np.array([image[r:r + 9, c:c + 9].astype(np.float64).reshape(-1, 3).sum(0) @ WEIGHTS[k] / (h * w)
                     for r, c in blocks])
    f0 = float(image.astype(np.float64).reshape(-1, 3).mean(0) @ WEIGHTS[k] + BIAS[k])
    relevance = model.explain(image, "boat", model.explanation_method()).relevance
    ids, n = region_grid((h, w), 9)
    assert n == len(blocks)
    morf, lerf = map_order(region_sums(relevance, ids, n)), map_order(region_sums(relevance, ids, n), False)
    config = PerturbationConfig(steps=12, repetitions=3, fill=0.0, batch_size=7)
    curves = perturbation_curves(model, image, "boat", {"morf": morf, "lerf": lerf, "random": None}, config,
                                 np.random.default_rng(0))
    expect_morf = f0 - np.concatenate([[0.0], np.cumsum(np.sort(drop)[::-1][:12])])
    expect_lerf = f0 - np.concatenate([[0.0], np.cumsum(np.sort(drop)[:12])])
    assert curves["morf"].shape == (3, 13)
    np.testing.assert_allclose(curves["morf"], np.tile(expect_morf, (3, 1)), atol=1e-6)
    np.testing.assert_allclose(curves["lerf"], np.tile(expect_lerf, (3, 1)), atol=1e-6)
    # the random order: every step removes one not yet removed block's drop, never the same sequence twice
    steps = -np.diff(curves["random"], axis=1)
    for row in steps:
        matched = [int(np.argmin(np.abs(drop - s))) for s in row]
        np.testing.assert_allclose(row, drop[matched], atol=1e-6)
        assert len(set(matched)) == len(matched)
    assert not np.allclose(steps[0], steps[1])
    # MoRF is the steepest possible descent here: it bounds every other order's AOPC
    assert aopc(curves["morf"]).min() >= aopc(curves["random"]).max() >= aopc(curves["lerf"]).max()
    # batches of 7 variants: one call for f(x), then ceil(3 orders * 3 repetitions * 12 steps / 7)
    assert model.calls == [1] + [7] * 15 + [3]


def test_uniform_fill_is_deterministic_for_a_seed_and_batching_does_not_change_it():
    model, image = PixelLinear(), _image(27, 36)
    order = {"morf": map_order(np.arange(12.0)), "random": None}
    a = perturbation_curves(model, image, "horse", order, PerturbationConfig(steps=5, repetitions=2),
                            np.random.default_rng(3))
    b = perturbation_curves(model, image, "horse", order, PerturbationConfig(steps=5, repetitions=2, batch_size=1),
                            np.random.default_rng(3))
    c = perturbation_curves(model, image, "horse", order, PerturbationConfig(steps=5, repetitions=2),
                            np.random.default_rng(4))
    for name in order:
        np.testing.assert_allclose(a[name], b[name], rtol=0, atol=1e-12)
    assert not np.allclose(a["random"], c["random"])
    # uniform values in [0, 1] replace a full 9x9 block: its expected drop is known, and one draw is near it
    assert a["morf"].shape == (2, 6) and not np.allclose(a["morf"][0], a["morf"][1])


# --- split runs: resumable, skips named ----------------------------------------------------------------

class Interrupting(PixelLinear):
    """Stops the run (like Ctrl-C) at its ``stop_at``-th score_images call."""

    stop_at = 10 ** 9

    def score_images(self, images):
        if len(self.calls) + 1 >= self.stop_at:
            raise KeyboardInterrupt
        return super().score_images(images)


@pytest.fixture
def pixel_model(tmp_path):
    yield from stub_family(tmp_path / "pixel-model", "perturb-pixels", {"format": FORMAT},
                           lambda d, device: Interrupting())


def test_split_run_resumes_and_names_a_broken_image(pixel_model, small_toyvoc, tmp_path):
    from bowlrp.model import load_model

    samples = open_dataset(small_toyvoc, classes=CLASSES).split("test")[:4]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    samples[2] = dataclasses.replace(samples[2], path=broken)
    config = PerturbationConfig(steps=6, repetitions=2, batch_size=16)
    whole = perturb_split(load_model(pixel_model), samples, "horse", ["lrp", "random", "lerf"], tmp_path / "a.json",
                          config, parallel=QUIET)
    assert whole["n_images"] == 3 and [s["file"] for s in whole["skipped"]] == [str(broken)]
    assert not (tmp_path / "a.json.parts").exists()
    assert json.loads((tmp_path / "a.json").read_text()) == whole
    for name, row in whole["orders"].items():
        assert {"aopc_mean", "aopc_std", "curve_mean", "curve_std"} <= set(row) and len(row["curve_mean"]) == 7
        # the mean AOPC is the area over the mean curve (Eq. 3.7 is linear in the curves)
        assert row["aopc_mean"] == pytest.approx(float(aopc(np.array(row["curve_mean"]))))

    interrupted = load_model(pixel_model)
    interrupted.stop_at = 5  # the first image takes 1 + ceil(3 * 2 * 6 / 16) = 4 calls, the second stops
    with pytest.raises(KeyboardInterrupt):
        perturb_split(interrupted, samples, "horse", ["lrp", "random", "lerf"], tmp_path / "b.json", config,
                      parallel=QUIET)
    assert sorted(p.name for p in (tmp_path / "b.json.parts").glob("*.npz")) == ["000000.npz"]
    skips = SkipLog()
    resumed = perturb_split(load_model(pixel_model), samples, "horse", ["lrp", "random", "lerf"], tmp_path / "b.json",
                            config, skips, parallel=QUIET)
    assert resumed["n_resumed"] == 1 and len(skips) == 1
    assert {k: v for k, v in resumed.items() if k != "n_resumed"} == {k: v for k, v in whole.items() if k != "n_resumed"}
    # other settings do not mix with an interrupted run's parts
    (tmp_path / "b.json.parts").mkdir()
    (tmp_path / "b.json.parts" / "settings.json").write_text("{}")
    with pytest.raises(BowlrpError, match="other settings"):
        perturb_split(load_model(pixel_model), samples, "horse", ["lrp"], tmp_path / "b.json", config, parallel=QUIET)


# --- the Quantus oracle ---------------------------------------------------------------------------------

def test_dnn_curve_equals_quantus_region_perturbation():
    """Fixed 9x9 grid (the image is a multiple of 9, so Quantus pads nothing), the same constant baseline,
    the same MoRF order (a tie-free random map): our drops f(x) - f(x^(k)), k = 1..L, are Quantus'
    ``RegionPerturbation`` scores. Quantus sees the image through a module that scores it as our model does
    (centre crop of the resized image), so both perturb the same pixels of the same image."""
    import torch
    from torch import nn

    from bowlrp.dnn import models
    from bowlrp.dnn.classifier import DnnClassifier
    from bowlrp.dnn.lrp.zennit_compat import import_zennit

    import_zennit()  # quantus imports zennit, which needs the project's torchvision shim
    import quantus

    torch.manual_seed(0)
    network = models.build("smallcnn", 3).eval()
    with torch.no_grad():  # a head with weight: scores that move visibly when pixels change
        network.classifier[3].weight.normal_(0, 1.0)
    network.meta = {"size": 96, "crop": 80, "classes": ["a", "b", "c"]}
    model = DnnClassifier(network)

    class AsOurModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.network = network

        def forward(self, x):
            images = list(x.detach().permute(0, 2, 3, 1).cpu().numpy())
            return torch.from_numpy(model.score_images(images)).float()

    rng = np.random.default_rng(0)
    h, w, steps = 90, 117, 40
    images = [rng.uniform(size=(h, w, 3)).astype(np.float32) for _ in range(2)]
    maps = [rng.normal(size=(h, w)) for _ in range(2)]
    targets = [0, 2]
    ids, n = region_grid((h, w), 9)
    ours = []
    for image, relevance, k in zip(images, maps, targets):
        order = map_order(region_sums(relevance, ids, n))
        curve = perturbation_curves(model, image, model.class_names[k], {"morf": order},
                                    PerturbationConfig(steps=steps, repetitions=1, fill=0.0), rng)["morf"][0]
        ours.append(curve[0] - curve[1:])
    ours = np.array(ours)
    metric = quantus.RegionPerturbation(patch_size=9, order="morf", regions_evaluation=steps, abs=False,
                                        normalise=False, perturb_baseline=0.0, disable_warnings=True)
    theirs = np.array(metric(model=AsOurModel().eval(), x_batch=np.stack(images).transpose(0, 3, 1, 2),
                             y_batch=np.array(targets), a_batch=np.stack(maps)[:, None].astype(np.float32),
                             softmax=False, device="cpu", channel_first=True), dtype=np.float64)
    assert theirs.shape == ours.shape == (2, steps)
    assert np.abs(ours).max() > 0.05  # the check is not vacuous
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


# --- the faithfulness property, FV and DNN, through the CLI -----------------------------------------------

@pytest.fixture(scope="module")
def fv_model(small_toyvoc, tmp_path_factory) -> Path:
    from bowlrp.pipeline import PipelineConfig, train_model

    ds = open_dataset(small_toyvoc, classes=CLASSES)
    train = ds.split("trainval")
    labels = np.stack([s.labels for s in train])
    model = train_model(PipelineConfig(encoder="fisher", kernel="linear", n_words=4, max_descriptors=20000, C=1.0),
                        [s.path for s in train], labels, CLASSES, SkipLog(), QUIET)
    out = tmp_path_factory.mktemp("perturb-fv") / "model"
    model.save(out)
    return out


@pytest.fixture(scope="module")
def cnn_model(small_toyvoc, tmp_path_factory) -> Path:
    from bowlrp.cli import main

    out = tmp_path_factory.mktemp("perturb-cnn") / "model"
    assert main(["dnn", "train", "--data", str(small_toyvoc), "--arch", "smallcnn", "--out", str(out), "--epochs",
                 "1", "--no-progress"]) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("family", ["fv", "dnn"])
def test_lrp_morf_falls_faster_than_random(family, fv_model, cnn_model, small_toyvoc, tmp_path, capsys):
    from bowlrp.cli import main

    model = fv_model if family == "fv" else cnn_model
    for class_name in CLASSES:
        out = tmp_path / f"{class_name}.json"
        # small size: 16 px regions so that 15 steps replace a visible share of a 160 px image
        assert main(["perturb", "--model", str(model), "--data", str(small_toyvoc), "--split", "test",
                     "--class", class_name, "--mode", "regions", "--orders", "lrp", "random", "--n-images", "3",
                     "--region", "16", "--steps", "15", "--repetitions", "2", "--json", str(out),
                     "--plot", str(tmp_path / f"{class_name}.png"), "--no-progress"]) == 0
        result = json.loads(out.read_text())
        positives = sum(s.labels[0] == 1 for s in open_dataset(small_toyvoc, classes=[class_name]).split("test"))
        assert result["mode"] == "regions" and result["class"] == class_name
        assert result["n_images"] == min(3, positives) >= 2  # 20 classes: the small set has 2 test boats
        lrp, rand = result["orders"]["lrp"], result["orders"]["random"]
        assert len(lrp["curve_mean"]) == len(rand["curve_std"]) == 16
        print(f"{family} {class_name}: AOPC lrp {lrp['aopc_mean']:.4f} ± {lrp['aopc_std']:.4f}, "
              f"random {rand['aopc_mean']:.4f} ± {rand['aopc_std']:.4f}")
        assert lrp["aopc_mean"] > rand["aopc_mean"], (family, class_name, lrp["aopc_mean"], rand["aopc_mean"])
        assert (tmp_path / f"{class_name}.png").stat().st_size > 0
    assert "AOPC" in capsys.readouterr().out
