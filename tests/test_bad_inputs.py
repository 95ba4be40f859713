"""The bad-input corpus (tests/bad_inputs.py) through the command line: exit 2 or 1 with one line naming
the flag or file, never a traceback; outputs checked before the work; a closed pipe ends quietly."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import bad_inputs
from bowlrp.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def places(tiny_fv_model, small_toyvoc, tmp_path_factory) -> dict[str, str]:
    return bad_inputs.corpus(tmp_path_factory.mktemp("bad-inputs"), tiny_fv_model, small_toyvoc)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``bowlrp.cli.main(argv)`` in this process: its exit status (a usage error's SystemExit included),
    stdout and stderr."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", bad_inputs.cases(), ids=lambda case: case.name)
def test_bad_input_ends_in_one_line_naming_it(case, places, tmp_path, capsys):
    out = tmp_path / "does-not-exist" / "out"  # each case's own: what one case wrote cannot fail the next
    argv, named = bad_inputs.render(case, {**places, "out": str(out)})
    code, _, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert code == case.exit_code, err
    assert len(lines) == 1, err
    assert named in lines[0], lines[0]
    assert not out.exists()  # nothing written for a refused command


def test_train_refuses_an_unwritable_out_before_training(places, capsys, monkeypatch):
    import bowlrp.cli.train as train_command

    def no_training(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(train_command, "labelled_split", no_training)
    monkeypatch.setattr(train_command, "train_model", no_training)
    code, _, err = run_cli(["train", "--data", places["data"], "--out", places["file"] + "/model"], capsys)
    assert code == 1 and err == f"bowlrp: error: {places['file']}/model: {places['file']} is a file, not a folder\n"


def test_a_closed_pipe_ends_quietly(small_toyvoc):
    """``bowlrp data inspect | head -1``: the reader is gone before bowlrp writes."""
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "bowlrp", "data", "inspect", "--data", str(small_toyvoc)],
                              cwd=ROOT, stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.stderr == "" and done.returncode == 141


@pytest.mark.parametrize("error", [KeyError("weights"), AttributeError("'list' object has no attribute 'get'"),
                                   EOFError("No data left in file")])
def test_what_a_family_loader_raises_on_a_damaged_file_is_one_line(error, tmp_path, capsys):
    """Any family, also one defined outside the package: a loader that trips over a damaged file ends in
    one line naming the model directory (``--debug`` still shows where it tripped)."""
    from test_model_interface import stub_family

    def trips(directory, device):
        raise error

    for model in stub_family(tmp_path / "model", "tripping", {"format": "tripping"}, trips):
        code, _, err = run_cli(["predict", "--model", str(model), str(tmp_path / "x.jpg")], capsys)
        assert code == 1 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert err.startswith(f"bowlrp: error: {model}: damaged tripping model files") and type(error).__name__ in err
