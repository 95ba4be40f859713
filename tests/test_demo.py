"""``make demo`` end to end at the small size: synthesise, train both models, print AP tables; a
second run reuses the dataset instead of failing on the non-empty folder."""
from __future__ import annotations

import json

import pytest

from bowlrp.cli import demo


@pytest.mark.slow
def test_demo_runs_twice_and_reports_both_models(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--size", "small", "--gmm-k", "4", "--max-descriptors", "20000", "--n-jobs", "1"]
    assert demo.main(argv) == 0
    out = capsys.readouterr().out
    for name in demo.MODELS:
        result = json.loads((tmp_path / f"evaluate-{name}.json").read_text())
        assert 0.0 <= result["map"] <= 1.0 and result["n_images"] > 0
        assert name in out
    assert "mAP" in out and "synth-voc" in out

    assert demo.main(argv) == 0
    assert "reusing toyvoc" in capsys.readouterr().out
