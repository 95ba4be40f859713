"""dnn.models: torchvision-compatible state dicts, weights_only round trips, loading refuses code."""
from __future__ import annotations

import io

import pytest
import torch

from bowlrp.dnn import models


def _n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# Parameter counts of torchvision's 1000-class models (as its documentation lists them) and the number
# of state-dict entries (parameters + BatchNorm buffers) of its files.
TORCHVISION = {"vgg16": (138_357_544, 32), "resnet18": (11_689_512, 122), "resnet50": (25_557_032, 320),
               "alexnet": (61_100_840, 16)}


@pytest.mark.parametrize("arch", sorted(TORCHVISION))
def test_parameter_counts_and_state_dict_size_match_torchvision(arch):
    model = models.build(arch, 1000)
    n_params, n_entries = TORCHVISION[arch]
    assert _n_params(model) == n_params
    assert len(model.state_dict()) == n_entries


def test_state_dict_keys_follow_torchvision_naming():
    vgg = models.build("vgg16", 1000).state_dict()
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    want = {f"features.{i}.{p}" for i in convs for p in ("weight", "bias")}
    want |= {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}
    assert set(vgg) == want
    assert vgg["classifier.0.weight"].shape == (4096, 25088) and vgg["features.28.weight"].shape == (512, 512, 3, 3)

    alex = models.build("alexnet", 1000).state_dict()  # CaffeNet-style LRN does not move a key
    assert set(alex) == {f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")} | \
        {f"classifier.{i}.{p}" for i in (1, 4, 6) for p in ("weight", "bias")}
    assert alex["features.0.weight"].shape == (64, 3, 11, 11)
    assert any(isinstance(m, torch.nn.LocalResponseNorm) for m in models.build("alexnet", 5).modules())

    r18 = models.build("resnet18", 1000).state_dict()
    for key, shape in {"conv1.weight": (64, 3, 7, 7), "bn1.running_var": (64,), "layer1.0.conv1.weight": (64, 64, 3, 3),
                       "layer2.0.downsample.0.weight": (128, 64, 1, 1), "layer2.0.downsample.1.num_batches_tracked": (),
                       "layer4.1.bn2.bias": (512,), "fc.weight": (1000, 512)}.items():
        assert tuple(r18[key].shape) == shape, key
    r50 = models.build("resnet50", 1000).state_dict()
    for key, shape in {"layer1.0.conv3.weight": (256, 64, 1, 1), "layer1.0.downsample.0.weight": (256, 64, 1, 1),
                       "layer3.5.bn3.weight": (1024,), "layer4.2.conv2.weight": (512, 512, 3, 3),
                       "layer4.0.conv2.weight": (512, 512, 3, 3), "fc.weight": (1000, 2048)}.items():
        assert tuple(r50[key].shape) == shape, key
    assert "layer3.6.conv1.weight" not in r50 and "layer3.5.conv1.weight" in r50


@pytest.mark.parametrize("arch", ["smallcnn", "alexnet", "resnet18"])
def test_weights_only_round_trip_and_forward(arch, tmp_path):
    from bowlrp.dnn.io import load_network, save_network

    torch.manual_seed(0)
    model = models.build(arch, 4).eval()
    square, size = models.INPUT_GEOMETRY[arch]
    x = torch.randn(1, 3, size, size)
    save_network(tmp_path / "m", model, {"arch": arch, "classes": list("abcd"), "size": square, "crop": size})
    back = load_network(tmp_path / "m")
    assert not back.training
    assert torch.equal(back(x), model(x)) and back(x).shape == (1, 4)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    models.build(arch, 4).load_state_dict(torch.load(buf, weights_only=True))


def test_loading_refuses_pickled_code(tmp_path):
    from bowlrp.errors import ModelError
    from bowlrp.dnn.io import load_network, save_network

    save_network(tmp_path / "m", models.build("smallcnn", 2), {"arch": "smallcnn", "classes": ["a", "b"],
                                                             "size": 112, "crop": 96})

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "m" / "weights.pt")
    with pytest.raises(ModelError, match="not a plain tensor file"):
        load_network(tmp_path / "m")
