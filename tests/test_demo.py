"""``make demo`` wiring: reuses complete toyfaces and toyvoc sets, runs the small faces study into
``study/faces`` and ``bowlrp study``, and ends by printing the report's path; the report has the faces
section. The shared quick study (with the small faces study in its ``faces/``) stands in for the studies'
work (copied in, so every step is up to date and the run takes seconds); what a study computes is tested
in test_study.py and test_faces_study.py."""
from __future__ import annotations

import shutil

import pytest

from bowlrp.cli import demo


@pytest.mark.slow
@pytest.mark.parametrize("entry", ["make demo", "bowlrp demo"])
def test_demo_reuses_toyvoc_runs_the_study_and_prints_the_report_path(tmp_path, small_toyvoc, small_toyfaces,
                                                                      quick_study, capsys, entry):
    from bowlrp.cli import main

    shutil.copytree(small_toyvoc, tmp_path / "toyvoc")
    shutil.copytree(small_toyfaces, tmp_path / "toyfaces")
    shutil.copytree(quick_study, tmp_path / "study")
    argv = ["--out", str(tmp_path), "--data-size", "small", "--study-size", "quick"]
    assert (demo.main(argv) if entry == "make demo" else main(["demo", *argv])) == 0
    captured = capsys.readouterr()
    assert "reusing toyvoc" in captured.out
    assert "$ bowlrp study --data" in captured.out
    report = (tmp_path / "study" / "report" / "index.html").resolve()
    assert captured.out.strip().splitlines()[-1].endswith(str(report))
    assert "train-fv: up to date, skipped" in captured.err
    assert "reusing toyfaces" in captured.out
    assert f"$ bowlrp faces study --data {tmp_path / 'toyfaces'} --out {tmp_path / 'study' / 'faces'}" in captured.out
    assert "train-age-inplane-random: up to date, skipped" in captured.err  # the faces study, found complete
    assert "report: up to date, skipped" in captured.err  # its digest is the one the quick study's report saw
    assert '<section id="faces">' in report.read_text() and "Not run: write a faces study" not in report.read_text()
