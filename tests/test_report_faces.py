"""The report's faces section (issue 15): its numbers come from the faces study's JSON files, it is found in
STUDY/faces or given by ``bowlrp report --faces``, a missing faces study gives a one-line note, a faces study
folder alone gives a page of its own, and the study's report step is written again when the faces study
changes."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bowlrp.cli.main import main as bowlrp_main
from bowlrp.errors import BowlrpError
from bowlrp.study import check_study_folder
from bowlrp.study.faces_section import FACES_DIR, faces_digest
from bowlrp.study.plan import study_settings
from bowlrp.study.report import FACES_ONLY_SECTIONS, SECTIONS
from bowlrp.study.runner import step_digests
from bowlrp.study.tasks import StudyTasks, build_steps

NOTE = "Not run: write a faces study into this study"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def _faces_html(html: str) -> str:
    match = re.search(r'<section id="faces">(.*?)</section>', html, re.S)
    assert match, "no faces section"
    return match.group(1)


def _copy_faces(small_faces_study: Path, target: Path) -> Path:
    shutil.copytree(small_faces_study, target, ignore=shutil.ignore_patterns("models", "report"))
    return target


@pytest.mark.slow
def test_the_study_report_shows_the_faces_study_in_its_faces_folder(quick_study):
    html = (quick_study / "report" / "index.html").read_text()
    faces = _faces_html(html)
    accuracy = json.loads((quick_study / FACES_DIR / "evaluate" / "accuracy.json").read_text())
    labels = {"rotation": "[r] rotation", "inplane": "[i] in-plane", "mixed": "[m] mixed"}
    for align, label in labels.items():  # Table 5.2: one row per preprocessing, random then pretrained
        cells = [r for r in accuracy["table"] if r["task"] == "age" and r["align"] == align and r["family"] == "dnn"]
        cells.sort(key=lambda r: ["random", "pretrained"].index(r["init"]))
        expected = "".join(f"<td>{_pct(r['accuracy'])} ({_pct(r['one_off_accuracy'])})</td>" for r in cells)
        assert f'<td class="l">{label}</td>{expected}<td>{cells[0]["n_images"]}</td>' in faces
    fv = next(r for r in accuracy["table"] if r["family"] == "fisher")  # the Fisher-vector model's own table
    assert (f'<td class="l">[i] in-plane</td><td>{_pct(fv["accuracy"])} ({_pct(fv["one_off_accuracy"])})</td>'
            f'<td>{fv["n_images"]}</td>') in faces.split("age: Fisher-vector model", 1)[1]
    for s in accuracy["swapping"]:  # Table 5.3
        row = (f'<td class="l">{labels[s["trained"]]}</td><td class="l">{labels[s["tested"]]}</td>\n'
               f'<td>{_pct(s["accuracy"])}</td><td>{_pct(s["own_accuracy"])}</td><td>{100 * s["drop"]:+.1f}</td>')
        assert row in faces
    models = json.loads((quick_study / FACES_DIR / "regions" / "regions.json").read_text())["models"]
    smile = models["age"]["smile"]
    d = smile["smiling"]["difference"]
    words = re.sub(r"\s+", " ", faces)
    assert f"is {d['mean']:+.2f} on average, with a 95 % interval from {d['lo']:+.2f} to {d['hi']:+.2f}" in words
    assert "the whole interval lies above zero" in words  # the small study's smile test (test_faces_study)
    assert f"age Fisher-vector model, {models['age-fisher']['n_faces']} test faces" in words
    assert "The smile test: Fisher-vector model" in words
    for png in ("evaluate/accuracy.png", "maps/maps.png", "maps/maps-fisher.png", "regions/regions.png"):
        assert f'src="figures/faces/{png}"' in faces
        assert (quick_study / "report" / "figures" / FACES_DIR / png).is_file()
    assert "Faces study: time per step" in html and NOTE not in html


@pytest.mark.slow
def test_faces_numbers_come_from_the_json_and_a_faces_study_alone_gets_its_page(small_faces_study, tmp_path):
    faces = _copy_faces(small_faces_study, tmp_path / "faces")
    accuracy = json.loads((faces / "evaluate" / "accuracy.json").read_text())
    accuracy["table"][0]["accuracy"] = 0.4321
    next(r for r in accuracy["table"] if r["family"] == "fisher")["accuracy"] = 0.8761
    (faces / "evaluate" / "accuracy.json").write_text(json.dumps(accuracy))
    regions = json.loads((faces / "regions" / "regions.json").read_text())
    regions["models"]["age"]["smile"]["smiling"]["difference"].update(mean=0.1234, lo=-0.5, hi=0.75)
    regions["models"]["age-fisher"]["smile"]["smiling"]["difference"].update(mean=-0.4321, lo=-0.9, hi=-0.1)
    (faces / "regions" / "regions.json").write_text(json.dumps(regions))
    assert bowlrp_main(["report", "--study", str(faces)]) == 0
    html = (faces / "report" / "index.html").read_text()
    for section in SECTIONS:
        assert (f'<section id="{section}">' in html) == (section in FACES_ONLY_SECTIONS), section
    words = re.sub(r"\s+", " ", _faces_html(html))
    assert "<td>43.2 % (" in words
    assert "is +0.12 on average, with a 95 % interval from -0.50 to +0.75" in words
    assert "the interval contains zero" in words and "lies above zero" not in words
    assert "<td>87.6 % (" in words  # the FV row
    assert "is -0.43 on average, with a 95 % interval from -0.90 to -0.10" in words  # the FV smile test
    assert "the whole interval lies below zero" in words
    assert "train-age-inplane-random" in html  # the faces study's own steps as the provenance
    assert (faces / "report" / "figures" / FACES_DIR / "maps" / "maps.png").is_file()
    assert (faces / "report" / "figures" / FACES_DIR / "maps" / "maps-fisher.png").is_file()


@pytest.mark.slow
def test_without_a_faces_study_the_section_says_how_to_make_one(quick_study, small_faces_study, tmp_path, capsys):
    study = tmp_path / "copy"
    shutil.copytree(quick_study, study, ignore=shutil.ignore_patterns("stores", "models", "report"))
    shutil.rmtree(study / FACES_DIR)
    assert bowlrp_main(["report", "--study", str(study)]) == 0
    section = _faces_html((study / "report" / "index.html").read_text())
    assert NOTE in section and "bowlrp report --study STUDY --faces FACES" in section and "<table>" not in section

    # a faces study elsewhere, given with --faces
    assert bowlrp_main(["report", "--study", str(study), "--faces", str(small_faces_study)]) == 0
    section = _faces_html((study / "report" / "index.html").read_text())
    assert NOTE not in section and str(small_faces_study.resolve()) in section
    assert (study / "report" / "figures" / FACES_DIR / "regions" / "regions.png").is_file()

    capsys.readouterr()
    assert bowlrp_main(["report", "--study", str(study), "--faces", str(study)]) == 1  # a study, not a faces study
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a faces study" in err and "Traceback" not in err
    assert bowlrp_main(["report", "--study", str(small_faces_study), "--faces", str(small_faces_study)]) == 1
    assert "is a faces study" in capsys.readouterr().err


def test_the_report_step_reruns_when_the_faces_study_changes(small_toyvoc, tmp_path):
    root = tmp_path / "study"
    assert faces_digest(root) is None
    steps = root / FACES_DIR / "steps"
    steps.mkdir(parents=True)
    (root / FACES_DIR / "study.json").write_text(json.dumps({"format": "bowlrp.faces-study", "settings": {"seed": 0},
                                                             "data_digest": "d"}))
    (steps / "evaluate.json").write_text(json.dumps({"digest": "a", "status": "done"}))
    first = faces_digest(root)
    (steps / "evaluate.json").write_text(json.dumps({"digest": "b", "status": "done"}))
    second = faces_digest(root)
    (steps / "evaluate.json").write_text(json.dumps({"digest": "b", "status": "running"}))
    assert len({first, second, faces_digest(root)}) == 3

    settings = study_settings("quick", ["aeroplane", "horse"], 0)
    tasks = StudyTasks(small_toyvoc, settings)
    plans = [step_digests(build_steps(tasks, settings, "d0", lambda r: {}, faces)) for faces in (None, first, second)]
    for other in plans[1:]:
        assert {name for name in plans[0] if plans[0][name] != other[name]} == {"report"}
    assert plans[1]["report"] != plans[2]["report"]


def test_a_faces_study_in_an_empty_study_folder_is_no_reason_to_refuse_it(tmp_path):
    out = tmp_path / "study"
    (out / FACES_DIR).mkdir(parents=True)
    assert check_study_folder(out, "d", {}, overwrite=False) is None
    (out / "other").mkdir()
    with pytest.raises(BowlrpError, match="not empty"):
        check_study_folder(out, "d", {}, overwrite=False)
