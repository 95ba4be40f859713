"""``bowlrp study`` / ``bowlrp report``: the step runner (skip, resume, rerun only what depends on a
changed setting), the study folder's refusal of other data or settings, the report's numbers coming
from the JSON files, and a study killed (SIGKILL) at three points ending with the same numbers as an
uninterrupted one."""
from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bowlrp.cli.main import main as bowlrp_main
from bowlrp.errors import BowlrpError
from bowlrp.study import run_study
from bowlrp.study.plan import study_settings
from bowlrp.study.report import SECTIONS, build_report
from bowlrp.study.runner import Step, read_record, run_steps, step_digests
from bowlrp.study.tasks import StudyTasks, build_steps

REPO = Path(__file__).resolve().parents[1]


# --- the runner --------------------------------------------------------------------------------------

def _counting_steps(calls: list[str], settings_b: dict | None = None) -> list[Step]:
    """a -> b -> c and a -> d; each writes one file holding its name."""
    def writer(name: str):
        def run(root: Path) -> dict:
            calls.append(name)
            (root / f"{name}.txt").write_text(name)
            return {"line": f"wrote {name}"}
        return run

    return [Step("a", writer("a"), ["a.txt"], {"x": 1}),
            Step("b", writer("b"), ["b.txt"], settings_b or {"y": 1}, ("a",)),
            Step("c", writer("c"), ["c.txt"], {}, ("b",)),
            Step("d", writer("d"), ["d.txt"], {}, ("a",))]


def test_runner_skips_up_to_date_steps_and_reruns_only_dependants(tmp_path):
    calls: list[str] = []
    stream = io.StringIO()
    first = run_steps(tmp_path, _counting_steps(calls), stream)
    assert calls == ["a", "b", "c", "d"] and first.ran == ["a", "b", "c", "d"]
    assert read_record(tmp_path, "b")["status"] == "done" and read_record(tmp_path, "b")["seconds"] >= 0
    assert "[2/4] b" in stream.getvalue() and "wrote b" in stream.getvalue() and "in all" in stream.getvalue()

    calls.clear()
    again = run_steps(tmp_path, _counting_steps(calls), io.StringIO())
    assert calls == [] and again.skipped == ["a", "b", "c", "d"]

    # a changed setting of b reruns b and c (downstream), never a or d
    calls.clear()
    run_steps(tmp_path, _counting_steps(calls, settings_b={"y": 2}), io.StringIO())
    assert calls == ["b", "c"]

    # a missing output makes its step run again, and only that one (digests unchanged)
    calls.clear()
    (tmp_path / "d.txt").unlink()
    run_steps(tmp_path, _counting_steps(calls, settings_b={"y": 2}), io.StringIO())
    assert calls == ["d"]


def test_runner_keeps_outputs_of_an_interrupted_step_and_clears_them_for_other_settings(tmp_path):
    seen: list[str | None] = []

    def resumable(kill: bool):
        def run(root: Path) -> dict:
            part = root / "b" / "part"
            seen.append(part.read_text() if part.exists() else None)
            part.parent.mkdir(exist_ok=True)
            part.write_text("half")
            if kill:
                raise KeyboardInterrupt  # stands for a kill inside the step
            (root / "b" / "done").write_text("whole")
            return {}
        return run

    def plan(kill: bool, setting: int) -> list[Step]:
        return [Step("a", lambda root: (root / "a.txt").write_text("a") and {}, ["a.txt"]),
                Step("b", resumable(kill), ["b"], {"y": setting}, ("a",))]

    with pytest.raises(KeyboardInterrupt):
        run_steps(tmp_path, plan(True, 1), io.StringIO())
    assert read_record(tmp_path, "b")["status"] == "running" and seen == [None]
    stream = io.StringIO()
    run_steps(tmp_path, plan(False, 1), stream)  # same digest: the step finds its partial output
    assert seen == [None, "half"] and "(resuming)" in stream.getvalue()
    assert read_record(tmp_path, "b")["status"] == "done"

    with pytest.raises(KeyboardInterrupt):
        run_steps(tmp_path, plan(True, 2), io.StringIO())  # another digest: b's old outputs are removed first
    assert seen == [None, "half", None]
    with pytest.raises(KeyboardInterrupt):
        run_steps(tmp_path, plan(True, 3), io.StringIO())  # a killed step of other settings is not resumed
    assert seen[-1] is None


def test_plan_digests_change_only_downstream_of_a_changed_setting(small_toyvoc):
    settings = study_settings("quick", ["aeroplane", "horse"], 0)
    changed = copy.deepcopy(settings)
    changed["perturb"]["steps"] += 1
    tasks = StudyTasks(small_toyvoc, settings)
    before = step_digests(build_steps(tasks, settings, "d0", lambda root: {}))
    after = step_digests(build_steps(tasks, changed, "d0", lambda root: {}))
    assert {name for name in before if before[name] != after[name]} == {"perturb-fv", "perturb-dnn", "report"}
    other_data = step_digests(build_steps(tasks, settings, "d1", lambda root: {}))
    assert all(other_data[name] != before[name] for name in before)  # everything rests on the data


# --- a real quick study --------------------------------------------------------------------------------

def _numbers(study: Path) -> dict:
    """The report's numbers (data.json without provenance: times, dates, machine)."""
    data = json.loads((study / "report" / "data.json").read_text())
    data.pop("provenance")
    return data


@pytest.mark.slow
def test_quick_study_writes_every_section_and_skips_when_run_again(quick_study, small_toyvoc):
    html = (quick_study / "report" / "index.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    data = _numbers(quick_study)
    classes = data["study"]["classes"]
    # whatever classes the data has positives of in both splits (the generator decides), all of them covered
    from bowlrp.study.plan import study_classes
    assert classes == study_classes(small_toyvoc) and len(classes) >= 3
    assert data["accuracy"]["families"] == ["fv", "bow", "dnn"]
    assert [r["class"] for r in data["accuracy"]["rows"]] == classes
    assert set(data["gallery"]["classes"]) == set(classes)
    assert {r["class"] for r in data["context"]["rows"]} == set(classes)
    assert set(data["perturbation"]) == {"fv", "dnn"} and len(data["perturbation"]["fv"]["rows"]) == 3
    assert data["descriptors"]["orders"] == ["ab21", "absz", "eps1", "eps100", "random"]
    assert len(data["descriptors"]["rows"]) == 3
    tagged_test = data["dataset"]["n_tagged"]["test"]
    watermark, padding = data["artefacts"]["watermark"], data["artefacts"]["padding"]
    if "horse" in classes and tagged_test:
        assert set(watermark["families"]) == {"fv", "dnn"} and not watermark["not_applicable"]
        assert data["gallery"]["classes"]["horse"][0]["tagged"]  # the tagged horses come first
    else:
        assert watermark["not_applicable"] and "Not run: " in html
    if "aeroplane" in classes:
        assert set(padding["families"]) == {"fv", "dnn"}
    else:
        assert "is not a class of this study" in padding["not_applicable"]
    for img in re.findall(r'<img src="([^"]+)"', html):
        assert (quick_study / "report" / img).is_file(), img

    stream = io.StringIO()
    summary = run_study(small_toyvoc, quick_study, size="quick", progress=False, stream=stream)
    assert summary.ran == [] and "report" in summary.skipped


@pytest.mark.slow
def test_report_numbers_come_from_the_json_files(quick_study, tmp_path):
    study = tmp_path / "copy"
    shutil.copytree(quick_study, study, ignore=shutil.ignore_patterns("stores", "models"))
    evaluation = json.loads((study / "evaluate" / "fv.json").read_text())
    first = sorted(evaluation["ap"])[0]
    evaluation["ap"][first] = 0.4321
    evaluation["map"] = 0.9876
    (study / "evaluate" / "fv.json").write_text(json.dumps(evaluation))
    context = json.loads((study / "context" / "context.json").read_text())
    dnn_rows = [row for row in context["rows"] if row["family"] == "dnn"]
    dnn_rows[-1]["mu_median"] = 7.6543
    (study / "context" / "context.json").write_text(json.dumps(context))
    assert bowlrp_main(["report", "--study", str(study)]) == 0
    html = (study / "report" / "index.html").read_text()
    assert re.search(rf'<td class="l">{first}</td><td>0\.432 \(', html)
    assert "<th>0.988</th>" in html
    assert "<td>7.654</td>" in html
    assert "<td>0.432" not in (quick_study / "report" / "index.html").read_text()


@pytest.mark.slow
def test_a_study_folder_refuses_other_settings_or_data(quick_study, small_toyvoc, tmp_path, capsys):
    argv = ["study", "--data", str(small_toyvoc), "--out", str(quick_study), "--size", "quick"]
    for extra, words in ((["--seed", "1"], "other settings: seed"), (["--classes", "horse,boat"], "other settings: classes")):
        assert bowlrp_main(argv + extra) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and words in err and "--overwrite" in err
    assert bowlrp_main(argv[:-1] + ["default"]) == 1
    assert "other settings: " in capsys.readouterr().err

    other = tmp_path / "other-data"
    shutil.copytree(small_toyvoc, other)
    jpeg = sorted((other / "JPEGImages").glob("*.jpg"))[0]
    jpeg.write_bytes(jpeg.read_bytes() + b"\0")
    assert bowlrp_main(["study", "--data", str(other), "--out", str(quick_study), "--size", "quick"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other data" in err

    with pytest.raises(BowlrpError, match="holds no study.json"):
        (tmp_path / "busy").mkdir()
        (tmp_path / "busy" / "file").write_text("x")
        run_study(small_toyvoc, tmp_path / "busy", size="quick")


def _parts(folder: Path, pattern: str) -> int:
    return sum(len(list(p.glob("*.npz"))) for p in folder.glob(pattern)) if folder.is_dir() else 0


def _status(study: Path, step: str) -> str | None:
    record = read_record(study, step)
    return record and record.get("status")


@pytest.mark.slow
def test_a_study_killed_at_three_points_ends_with_the_numbers_of_an_uninterrupted_one(small_toyvoc, tmp_path):
    study = tmp_path / "killed"
    cmd = [sys.executable, "-m", "bowlrp", "study", "--data", str(small_toyvoc), "--out", str(study),
           "--size", "quick", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    points = {
        # between steps: the FV model is done, the BoW model in training
        "after train-fv": lambda: _status(study, "train-fv") == "done",
        # inside a resumable step: some FV maps written as parts, the store not assembled
        "inside explain-fv": lambda: _status(study, "explain-fv") == "running"
        and _parts(study / "stores" / "fv", "*.h5.parts") > 0,
        # inside the perturbation of the FV maps, some images' curves written
        "inside perturb-fv": lambda: _status(study, "perturb-fv") == "running"
        and _parts(study / "perturbation" / "fv", "*.json.parts") > 0,
    }
    for name, reached in points.items():
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        killed = False
        while proc.poll() is None and time.monotonic() < deadline:
            if reached():
                os.killpg(proc.pid, signal.SIGKILL)  # the study and any worker processes
                killed = True
                break
            time.sleep(0.02)
        proc.wait()
        assert killed, f"the study ended before reaching the kill point {name!r}"
    finished = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "train-fv: up to date, skipped" in finished.stderr and "(resuming)" in finished.stderr
    # the uninterrupted reference runs as the killed ones do, in a fresh process: torch's CPU results
    # depend on its thread settings, which the test process's earlier tests may have left changed
    reference = tmp_path / "uninterrupted"
    whole = subprocess.run([*cmd[:cmd.index("--out") + 1], str(reference), *cmd[cmd.index("--out") + 2:]],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert _numbers(study) == _numbers(reference)
    for family in ("fv", "bow", "dnn"):
        ours = json.loads((study / "evaluate" / f"{family}.json").read_text())
        theirs = json.loads((reference / "evaluate" / f"{family}.json").read_text())
        assert ours == theirs


@pytest.mark.slow
def test_report_shows_spray_results_in_the_issue_12_layout(quick_study, tmp_path):
    """The SpRAy section reads spray/<family>/spray.json and its figures."""
    from PIL import Image

    study = tmp_path / "copy"
    shutil.copytree(quick_study, study, ignore=shutil.ignore_patterns("stores", "models"))
    shutil.rmtree(study / "spray")
    (study / "spray").mkdir()
    (study / "spray" / "status.json").write_text(json.dumps({"available": True, "families": {}}))
    for family, rank in (("fv", 1), ("dnn", 2)):
        folder = study / "spray" / family
        folder.mkdir(parents=True)
        Image.new("RGB", (40, 30), (200, 30, 30)).save(folder / "horse_spectrum.png")
        (folder / "spray.json").write_text(json.dumps({"classes": {"horse": {
            "image_ids": ["a", "b", "c"], "eigenvalues": [0.0, 0.0123 * rank, 0.5], "eigengap_k": 2,
            "labels": {"2": [0, 1, 1]}, "embedding": [[0, 0], [1, 1], [2, 2]], "rank": rank}}}))
    build_report(study)
    html = (study / "report" / "index.html").read_text()
    spray = html[html.index('<section id="spray">'):html.index('<section id="artefacts">')]
    assert "not available" not in spray
    assert "0.012" in spray and "0.025" in spray
    assert spray.count('src="figures/spray/') == 2
    assert (study / "report" / "figures" / "spray" / "fv" / "horse_spectrum.png").is_file()
    # the quick study ran SpRAy itself: each family's classes were analysed or named as too small
    status = json.loads((quick_study / "spray" / "status.json").read_text())
    original = (quick_study / "report" / "index.html").read_text()
    section = original[original.index('<section id="spray">'):original.index('<section id="artefacts">')]
    for family, entry in status["families"].items():
        analysed = json.loads((quick_study / entry["json"]).read_text())["classes"] \
            if (quick_study / entry["json"]).is_file() else {}
        assert set(analysed) | set(entry["too_few_maps"]) == set(json.loads(
            (quick_study / "study.json").read_text())["settings"]["classes"])
        for class_name in entry["too_few_maps"]:
            assert class_name in section
