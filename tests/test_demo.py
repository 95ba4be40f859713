"""``make demo`` wiring: reuses a complete toyvoc set, runs ``bowlrp study`` on it and ends by printing the
report's path. The shared quick study stands in for the study's work (copied in, so every step is up
to date and the run takes seconds); what a study computes is tested in test_study.py."""
from __future__ import annotations

import shutil

import pytest

from bowlrp.cli import demo


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["make demo", "bowlrp demo"])
def test_demo_reuses_toyvoc_runs_the_study_and_prints_the_report_path(tmp_path, small_toyvoc, quick_study, capsys,
                                                                      entry):
    from bowlrp.cli import main

    shutil.copytree(small_toyvoc, tmp_path / "toyvoc")
    shutil.copytree(quick_study, tmp_path / "study")
    argv = ["--out", str(tmp_path), "--data-size", "small", "--study-size", "quick"]
    assert (demo.main(argv) if entry == "make demo" else main(["demo", *argv])) == 0
    captured = capsys.readouterr()
    assert "reusing toyvoc" in captured.out
    assert "$ bowlrp study --data" in captured.out
    report = (tmp_path / "study" / "report" / "index.html").resolve()
    assert captured.out.strip().splitlines()[-1].endswith(str(report))
    assert "train-fv: up to date, skipped" in captured.err
