"""One command set for both model families (issue 18 items 2 and 5): ``bowlrp explain | evaluate | predict``
on either model directory, ``bowlrp train --family dnn``, each family's options refused for the other's
models in one line, no PyTorch for a BoW/FV command, help on every argument, one alpha-beta sign, and
a run whose inputs were all skipped exits 1."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bowlrp.cli import main
from bowlrp.cli.main import build_parser
from bowlrp.data import open_dataset
from bowlrp.store import RelevanceStore

ROOT = Path(__file__).resolve().parents[1]
# beta written with the thesis' sign (negative) anywhere: "beta=-1", "beta: -1.0", "beta = −1"
NEGATIVE_BETA = re.compile(r"beta[\s=:\"']*[-\u2212]")


@pytest.fixture(scope="module")
def cnn(small_toyvoc, tmp_path_factory) -> Path:
    model = tmp_path_factory.mktemp("cnn") / "model"
    assert main(["dnn", "train", "--data", str(small_toyvoc), "--out", str(model), "--epochs", "1", "--size", "48",
                 "--crop", "40", "--no-progress"]) == 0
    return model


@pytest.fixture(scope="module")
def images(small_toyvoc) -> list[str]:
    return [str(s.path) for s in open_dataset(small_toyvoc).split("test")[:2]]


@pytest.fixture(scope="module")
def two_image_split(small_toyvoc, tmp_path_factory) -> Path:
    """The small toyvoc set cut to a test split of two images (the images and annotations linked)."""
    root = tmp_path_factory.mktemp("two") / "toyvoc"
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for name in ("JPEGImages", "Annotations"):
        (root / name).symlink_to(small_toyvoc / name)
    ids = [s.image_id for s in open_dataset(small_toyvoc).split("test")[:2]]
    (root / "ImageSets" / "Main" / "test.txt").write_text("\n".join(ids) + "\n")
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_explain_on_a_dnn_model_writes_the_same_files_as_dnn_explain(cnn, images, tmp_path, capsys):
    cls = json.loads((cnn / "model.json").read_text())["classes"][0]
    for extra in ([], ["--composite", "epsilon-alpha2beta1", "--device", "cpu"], ["--method", "ig"]):
        a, b = tmp_path / f"a{len(extra)}", tmp_path / f"b{len(extra)}"
        assert main(["explain", "--model", str(cnn), "--class", cls, "--out", str(a), *extra, *images]) == 0
        assert main(["dnn", "explain", "--model", str(cnn), "--class", cls, "--out", str(b), *extra, *images]) == 0
        files = _files(a)
        assert len(files) == 3 * len(images) and files == _files(b)  # npz and both PNGs, byte for byte
        with np.load(a / (Path(images[0]).stem + ".npz")) as npz:
            assert npz["relevance"].ndim == 2 and np.isfinite(npz["relevance"]).all()
    capsys.readouterr()
    # and the same predictions and evaluation, through either command
    assert main(["predict", "--model", str(cnn), *images]) == 0
    plain = capsys.readouterr().out
    assert main(["dnn", "predict", "--model", str(cnn), "--device", "cpu", *images]) == 0
    assert capsys.readouterr().out == plain and plain.count("(top: ") == len(images)


def test_train_family_dnn_is_dnn_train(small_toyvoc, cnn, tmp_path):
    assert main(["train", "--family", "dnn", "--data", str(small_toyvoc), "--out", str(tmp_path / "m"),
                 "--epochs", "1", "--size", "48", "--crop", "40", "--no-progress"]) == 0
    assert (tmp_path / "m" / "weights.pt").read_bytes() == (cnn / "weights.pt").read_bytes()


@pytest.mark.parametrize("argv, message", [
    (["explain", "--model", "{fv}", "--class", "horse", "--out", "{out}", "--composite", "epsilon", "{image}"],
     "--composite applies to DNN models only; {fv} is a BoW/FV model"),
    (["explain", "--model", "{fv}", "--class", "horse", "--out", "{out}", "--device", "cuda", "{image}"],
     "--device applies to DNN models only"),
    (["explain", "--model", "{cnn}", "--class", "horse", "--out", "{out}", "--rule", "alphabeta", "{image}"],
     "--rule applies to BoW/FV models only; {cnn} is a DNN model"),
    (["explain", "--model", "{cnn}", "--class", "horse", "--out", "{out}", "--depth", "bins", "{image}"],
     "--depth applies to BoW/FV models only"),
    (["evaluate", "--model", "{cnn}", "--data", "{data}", "--n-jobs", "2"], "--n-jobs applies to BoW/FV models only"),
    (["dnn", "explain", "--model", "{fv}", "--class", "horse", "--out", "{out}", "{image}"],
     "{fv} is a BoW/FV model; 'bowlrp dnn explain' takes networks"),
    (["train", "--data", "{data}", "--out", "{out}", "--arch", "vgg16"],
     "--arch applies to DNN models only; 'bowlrp train' trains a BoW/FV model unless --family dnn is given"),
    (["train", "--family", "dnn", "--data", "{data}", "--out", "{out}", "--kernel", "rbf"],
     "--kernel applies to BoW/FV models only; --family dnn trains a network"),
    (["explain", "--model", "{cnn}", "--class", "horse", "--out", "{out}", "--composite", "nonsense", "{image}"],
     "unknown composite 'nonsense'"),
])
def test_an_option_of_the_other_family_is_one_line_exit_1(argv, message, tiny_fv_model, cnn, small_toyvoc, images,
                                                          tmp_path, capsys):
    where = {"fv": str(tiny_fv_model), "cnn": str(cnn), "data": str(small_toyvoc), "out": str(tmp_path / "o"),
             "image": images[0]}
    assert main([a.format(**where) for a in argv]) == 1
    err = capsys.readouterr().err
    assert message.format(**where) in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def _imports_torch(argv: list[str], cwd: Path) -> tuple[int, bool, str]:
    code = ("import sys; from bowlrp.cli import main; code = main(sys.argv[1:]); "
            "print('torch' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "BOWLRP_PROGRESS_INTERVAL": "1000"})
    return done.returncode, done.stdout.strip().splitlines()[-1] == "True", done.stderr


def test_bow_commands_do_not_import_torch_and_dnn_commands_do(tiny_fv_model, cnn, small_toyvoc, images, tmp_path):
    fv, data = str(tiny_fv_model), str(small_toyvoc)
    for argv in (["explain", "--model", fv, "--class", "horse", "--out", str(tmp_path / "e"), images[0]],
                 ["predict", "--model", fv, images[0]],
                 ["train", "--data", data, "--classes", "horse,boat", "--gmm-k", "2", "--max-descriptors", "2000",
                  "--C", "1", "--bin-sizes", "6", "--step", "8", "--max-rows", "64", "--out", str(tmp_path / "t")]):
        code, torch_loaded, err = _imports_torch(argv, tmp_path)
        assert code == 0, err
        assert not torch_loaded, argv[0]
    # the check can fail: a network's command line does load it
    code, torch_loaded, err = _imports_torch(["predict", "--model", str(cnn), images[0]], tmp_path)
    assert code == 0 and torch_loaded, err


def _parsers(parser: argparse.ArgumentParser, path: str = "bowlrp"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_argument_of_every_parser_has_help():
    walked = list(_parsers(build_parser(["dnn"])))  # the word dnn: the dnn commands in full, not the stub
    names = {path for path, _ in walked}
    assert {"bowlrp dnn train", "bowlrp dnn predict", "bowlrp dnn explain", "bowlrp train", "bowlrp explain",
            "bowlrp render"} <= names
    missing = [f"{path}: {'/'.join(a.option_strings) or a.dest}" for path, parser in walked for a in parser._actions
               if not isinstance(a, argparse._SubParsersAction) and a.help in (None, "")]
    assert not missing, missing
    # the walk sees an argument without help (so the check can fail)
    probe = argparse.ArgumentParser()
    probe.add_argument("--bare")
    assert [a for _, p in _parsers(probe) for a in p._actions if a.help is None]


def test_a_run_whose_inputs_were_all_skipped_exits_1(tiny_fv_model, cnn, images, tmp_path, capsys):
    missing = str(tmp_path / "gone.jpg")
    for model in (tiny_fv_model, cnn):
        assert main(["explain", "--model", str(model), "--class", "horse", "--out", str(tmp_path / "o"), missing]) == 1
        out, err = capsys.readouterr()
        assert "0 explanation(s)" in out and "gone.jpg" in err
        assert main(["predict", "--model", str(model), missing]) == 1
        # one usable image among them: the run did something and exits 0, the skip named
        assert main(["predict", "--model", str(model), missing, images[0]]) == 0
        assert "gone.jpg" in capsys.readouterr().err


def test_eps_defaults_to_1_on_the_command_line(tiny_fv_model, images, tmp_path, capsys):
    assert main(["explain", "--model", str(tiny_fv_model), "--class", "horse", "--out", str(tmp_path / "a"),
                 images[0]]) == 0
    assert "epsilon (eps=1)" in capsys.readouterr().out
    assert main(["explain", "--model", str(tiny_fv_model), "--class", "horse", "--out", str(tmp_path / "b"),
                 "--eps", "0", images[0]]) == 0
    assert "epsilon (eps=0)" in capsys.readouterr().out


def test_eps_defaults_to_0_for_a_bow_histogram(small_toyvoc, images, tmp_path, capsys):
    # an eps of 1 swamps a histogram's entries (fractions of 1): the shapes task's polygons came out
    # negative with it, so a BoW model's command-line default stays the exact 0
    assert main(["train", "--data", str(small_toyvoc), "--encoder", "rankbow", "--vocab-size", "8",
                 "--classes", "horse,boat", "--C", "1", "--max-descriptors", "5000", "--out", str(tmp_path / "bow"),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["explain", "--model", str(tmp_path / "bow"), "--class", "horse", "--out", str(tmp_path / "a"),
                 images[0]]) == 0
    assert "epsilon (eps=0)" in capsys.readouterr().out


def test_no_message_or_file_writes_beta_with_the_thesis_sign(tiny_fv_model, cnn, two_image_split, images, tmp_path,
                                                            capfd):
    """Both families' alpha-beta runs, files and stores: beta = alpha - 1 = 1 wherever it is written."""
    cls = json.loads((cnn / "model.json").read_text())["classes"][0]
    runs = [(["--model", str(tiny_fv_model), "--class", "horse", "--rule", "alphabeta", "--alpha", "2"], "alpha=2, beta=1"),
            (["--model", str(cnn), "--class", cls, "--composite", "alpha2beta1"], "alpha=2, beta=1"),
            (["--model", str(cnn), "--class", cls], "alpha=2, beta=1")]  # the thesis composite
    for i, (argv, shown) in enumerate(runs):
        assert main(["explain", *argv, "--out", str(tmp_path / f"f{i}"), *images]) == 0
        store = tmp_path / f"s{i}.h5"
        assert main(["explain", *argv, "--data", str(two_image_split), "--split", "test", "--store", str(store),
                     "--no-progress"]) == 0
        out, err = capfd.readouterr()
        with RelevanceStore(store) as s:
            attrs = json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in s.attrs.items()}, default=str)
        assert shown in out, out
        assert '"beta": 1.0' in attrs, attrs
        for text in (out, err, attrs):
            assert not NEGATIVE_BETA.search(text), text
    assert NEGATIVE_BETA.search("alpha=2, beta=-1") and NEGATIVE_BETA.search('"beta": -1.0')  # the grep can fail


def test_progress_is_the_same_in_both_families(tiny_fv_model, cnn, small_toyvoc, two_image_split, images, tmp_path,
                                               capsys, monkeypatch):
    """Piped stderr: the same bowlrp.progress lines for scoring and for explaining a split, either family."""
    monkeypatch.setenv("BOWLRP_PROGRESS_INTERVAL", "0")  # every update a line (5 s apart otherwise)
    cls = json.loads((cnn / "model.json").read_text())["classes"][0]
    seen = {}
    for name, model, c in (("fv", tiny_fv_model, "horse"), ("dnn", cnn, cls)):
        assert main(["predict", "--model", str(model), *images]) == 0
        scoring = capsys.readouterr().err
        assert main(["explain", "--model", str(model), "--class", c, "--data", str(two_image_split),
                     "--store", str(tmp_path / f"{name}.h5")]) == 0
        explaining = capsys.readouterr().err
        seen[name] = (re.findall(r"^scoring: done 2/2 \(100 %\) in [\d.]+ s$", scoring, re.M),
                      re.findall(rf"^explaining {c}: done 2/2 \(100 %\) in [\d.]+ s$", explaining, re.M))
        assert all(len(found) == 1 for found in seen[name]), (name, scoring, explaining)
    assert main(["train", "--family", "dnn", "--data", str(small_toyvoc), "--out", str(tmp_path / "m"),
                 "--epochs", "1", "--size", "48", "--crop", "40"]) == 0
    assert re.search(r"^training smallcnn: done 1/1 \(100 %\) in [\d.]+ s, loss \d", capsys.readouterr().err, re.M)
    # --no-progress: none
    assert main(["predict", "--model", str(cnn), "--no-progress", *images]) == 0
    assert "scoring" not in capsys.readouterr().err
