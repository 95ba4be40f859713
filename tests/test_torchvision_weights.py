"""``bowlrp dnn explain --arch A --weights FILE.pth``: a torchvision-layout state dict explained directly
(issue 18 item 6). torchvision is not installed: the test writes the layout from torchvision's definition
of resnet18 by hand (names, shapes, dtypes), with random values."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bowlrp.cli import main
from bowlrp.data import open_dataset


def torchvision_resnet18_layout(num_classes: int = 1000) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """``torchvision.models.resnet18().state_dict()``: key -> (shape, dtype), written out from its definition
    (BasicBlock: conv1/bn1/conv2/bn2, a 1x1 conv + BN downsample where the width or stride changes)."""
    layout: dict[str, tuple[tuple[int, ...], torch.dtype]] = {"conv1.weight": ((64, 3, 7, 7), torch.float32)}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{prefix}.{name}"] = ((c,), torch.float32)
        layout[f"{prefix}.num_batches_tracked"] = ((), torch.int64)

    bn("bn1", 64)
    inplanes = 64
    for layer, planes in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            prefix, fan_in = f"layer{layer}.{block}", inplanes if block == 0 else planes
            layout[f"{prefix}.conv1.weight"] = ((planes, fan_in, 3, 3), torch.float32)
            bn(f"{prefix}.bn1", planes)
            layout[f"{prefix}.conv2.weight"] = ((planes, planes, 3, 3), torch.float32)
            bn(f"{prefix}.bn2", planes)
            if block == 0 and layer > 1:
                layout[f"{prefix}.downsample.0.weight"] = ((planes, inplanes, 1, 1), torch.float32)
                bn(f"{prefix}.downsample.1", planes)
        inplanes = planes
    layout["fc.weight"] = ((num_classes, 512), torch.float32)
    layout["fc.bias"] = ((num_classes,), torch.float32)
    return layout


def random_state(layout, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, (shape, dtype) in layout.items():
        if dtype == torch.int64:
            state[key] = torch.tensor(100, dtype=dtype)
        elif key.endswith("running_var") or (key.endswith(".weight") and len(shape) == 1):
            state[key] = 0.5 + torch.rand(shape, generator=gen)  # BN scales and variances: positive
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            state[key] = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
    return state


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tv") / "resnet18-random.pth"
    torch.save(random_state(torchvision_resnet18_layout()), path)
    return path


@pytest.fixture(scope="module")
def image(small_toyvoc) -> str:
    return str(open_dataset(small_toyvoc).split("test")[0].path)


def test_our_resnet18_has_torchvision_s_layout():
    from bowlrp.dnn.models import build

    ours = {k: (tuple(v.shape), v.dtype) for k, v in build("resnet18", 1000).state_dict().items()}
    assert ours == torchvision_resnet18_layout()


def torchvision_classic_layout(arch: str, num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """``torchvision.models.vgg16()`` / ``alexnet()`` state dict key -> shape: ``features.<index>`` of each
    conv in the Sequential of conv, ReLU and max-pool modules, ``classifier.<index>`` of each Linear."""
    if arch == "vgg16":
        convs = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
                 14: (256, 256), 17: (512, 256), 19: (512, 512), 21: (512, 512), 24: (512, 512), 26: (512, 512),
                 28: (512, 512)}
        kernel = {i: 3 for i in convs}
        dense = {0: (4096, 512 * 7 * 7), 3: (4096, 4096), 6: (num_classes, 4096)}
    else:
        convs = {0: (64, 3), 3: (192, 64), 6: (384, 192), 8: (256, 384), 10: (256, 256)}
        kernel = {0: 11, 3: 5, 6: 3, 8: 3, 10: 3}
        dense = {1: (4096, 256 * 6 * 6), 4: (4096, 4096), 6: (num_classes, 4096)}
    layout = {}
    for i, (out, inp) in convs.items():
        layout[f"features.{i}.weight"], layout[f"features.{i}.bias"] = (out, inp, kernel[i], kernel[i]), (out,)
    for i, (out, inp) in dense.items():
        layout[f"classifier.{i}.weight"], layout[f"classifier.{i}.bias"] = (out, inp), (out,)
    return layout


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["alexnet", "vgg16"])
def test_our_vgg16_and_alexnet_have_torchvision_s_layout(arch):
    from bowlrp.dnn.models import ARCHITECTURES

    model = ARCHITECTURES[arch](num_classes=1000, **({"lrn": False} if arch == "alexnet" else {}))
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == torchvision_classic_layout(arch)


def test_a_torchvision_file_is_explained_as_the_same_network_in_a_model_directory(weights, image, tmp_path, capsys):
    from bowlrp.dnn.io import load_torchvision, save_network

    assert main(["dnn", "explain", "--arch", "resnet18", "--weights", str(weights), "--class", "class_7",
                 "--out", str(tmp_path / "direct"), image]) == 0
    assert "1 explanation(s) of 'class_7'" in capsys.readouterr().out
    # the reference: the same state dict saved as a model directory of the same geometry, explained by --model
    network = load_torchvision(weights, "resnet18")
    assert network.meta["classes"][:2] == ["class_0", "class_1"] and len(network.meta["classes"]) == 1000
    reference = tmp_path / "model"
    save_network(reference, network, {k: v for k, v in network.meta.items() if k != "format"})
    assert main(["explain", "--model", str(reference), "--class", "class_7", "--out", str(tmp_path / "dir"),
                 image]) == 0
    stem = Path(image).stem
    with np.load(tmp_path / "direct" / f"{stem}.npz") as a, np.load(tmp_path / "dir" / f"{stem}.npz") as b:
        assert set(a.files) == set(b.files)
        for key in a.files:
            assert np.array_equal(a[key], b[key]), key
        state = torch.load(weights, weights_only=True)
        assert float(a["score"]) != 0 and np.isfinite(a["relevance"]).all()
    assert state["fc.weight"].shape == (1000, 512)


def test_class_names_come_from_a_file_and_bad_files_are_one_line_errors(weights, image, tmp_path, capsys):
    names = tmp_path / "classes.txt"
    names.write_text("".join(f"thing {i}\n" for i in range(1000)))
    assert main(["dnn", "explain", "--arch", "resnet18", "--weights", str(weights), "--classes", str(names),
                 "--class", "thing 3", "--out", str(tmp_path / "named"), image]) == 0
    capsys.readouterr()
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n")
    payload = tmp_path / "pickled.pth"
    torch.save({"fc.weight": torch.zeros(2, 512), "extra": json.dumps}, payload)  # a function: not weights_only
    for argv, message in (
            (["--arch", "resnet18", "--weights", str(weights), "--classes", str(short)],
             f"{short}: 2 classes, but {weights}: fc.weight has 1000 outputs"),
            (["--arch", "resnet50", "--weights", str(weights)], "where resnet50 has"),
            (["--arch", "resnet18", "--weights", str(payload)], "not a plain tensor file"),
            (["--weights", str(weights)], "give --model MODEL, or --arch ARCH with --weights FILE.pth"),
            (["--model", str(tmp_path), "--arch", "resnet18", "--weights", str(weights)],
             "--model and --arch exclude each other")):
        assert main(["dnn", "explain", *argv, "--class", "class_0", "--out", str(tmp_path / "x"), image]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
