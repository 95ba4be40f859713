"""Every code block of README.md runs as written (issue 18 item 1).

The blocks run top to bottom in one empty folder, as a reader would paste them: ``sh`` blocks in
bash (``set -euo pipefail``, ``bowlrp`` on the PATH running this checkout), ``python`` blocks in a
fresh interpreter. A block that cannot run here (the whole demo, an interactive viewer, a listing)
says so in an HTML comment on the line before it::

    <!-- readme-test: skip (why) -->

and any other block that is neither ``sh`` nor ``python`` fails :func:`test_every_block_runs_or_says_why`.

The README's commands are sized for the default data set; here they run on the small one. The only
changes made to the README's text before it runs are the substitutions of :data:`SMALL`, each with its
reason; each must match (a README edit that drops one fails the test rather than leaving it stale).

Image ids: every id a runnable block names must exist in the small toyvoc set, and hold every VOC
class named on the same line (``--class horse``, a store ``horse.h5``, ``"horse"``, a comment "a horse")
(:func:`test_image_ids_hold_their_class`). For the default set of seed 0 the same ids were checked by
hand: 000020 horse (test), 000045 horse (trainval), 000028 dog (test).
"""
from __future__ import annotations

import os
import resource
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bowlrp.data import VOC_CLASSES, open_dataset

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARKER = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((?P<reason>.+)\)\s*-->\s*$")
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")
RUNNABLE = ("sh", "python")
EXPECTED_SKIPS = 3

# (README text, what runs instead, why): the whole of what the test changes.
SMALL = [
    ("synth-voc --out data/toyvoc --size default", "synth-voc --out data/toyvoc --size small",
     "80 images of 160 px instead of 800 of 240 px"),
    ("synth-shapes --out data/shapes --size default", "synth-shapes --out data/shapes --size small",
     "18 + 49 tiles instead of 600 + 676"),
    ("--gmm-k 64", "--gmm-k 4 --max-descriptors 20000", "a 4-component GMM on 20,000 descriptors"),
    ("n_words=64)", "n_words=4, max_descriptors=20_000)", "the same in Python"),
    ("n_words=16, max_descriptors=50_000", "n_words=2, max_descriptors=5_000", "5 fits of the grid search"),
    ("--vocab-size 128", "--vocab-size 8 --max-descriptors 20000", "8 k-means words per scale"),
    ("--arch smallcnn --out models/cnn", "--arch smallcnn --out models/cnn --epochs 1", "one epoch"),
    ("--n-images 50", "--n-images 2 --steps 10 --repetitions 2", "2 images, 10 steps, 2 repetitions"),
    ("--n-images 20", "--n-images 2 --steps 10 --repetitions 2", "the same for descriptor replacement"),
    ("--out study --size quick", "--out study --size quick --classes horse,aeroplane",
     "the classes of the watermark and padding experiments; tests/test_study.py runs the 20-class quick study"),
    ("spray --store maps/fv --data data/toyvoc", "spray --store maps/fv",
     "the small set's test split has fewer than SpRAy's minimum of 11 images of a class; without --data "
     "every map of the store counts"),
]


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None  # the marker's reason


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, each with the skip marker on the line before it."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"README.md:{i + 1}: a code block is never closed"
        before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.match(before.strip())
        blocks.append(Block(i + 1, fence["lang"], "\n".join(lines[i + 1:end]), marker["reason"] if marker else None))
        i = end + 1
    return blocks


def runnable_blocks() -> list[Block]:
    return [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.skip is None and b.lang in RUNNABLE]


def small_code(blocks: list[Block]) -> list[str]:
    """The blocks' code with :data:`SMALL` applied; every substitution must be used."""
    out, used = [], set()
    for block in blocks:
        code = block.code
        for i, (old, new, _) in enumerate(SMALL):
            if old in code:
                used.add(i)
                code = code.replace(old, new)
        out.append(code)
    unused = [SMALL[i][0] for i in range(len(SMALL)) if i not in used]
    assert not unused, f"substitutions that match nothing in README.md (remove them): {unused}"
    return out


def test_every_block_runs_or_says_why():
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    unmarked = [f"README.md:{b.line} (```{b.lang})" for b in blocks if b.skip is None and b.lang not in RUNNABLE]
    assert not unmarked, ("blocks neither sh/python nor marked <!-- readme-test: skip (why) -->: "
                          + ", ".join(unmarked))
    skipped = [b for b in blocks if b.skip is not None]
    runnable = [b for b in blocks if b.skip is None]
    assert len(skipped) + len(runnable) == len(blocks)
    # what is skipped is counted: a new skip is a decision, made here (the demo, the ViRelAy viewer, the layout)
    assert len(skipped) == EXPECTED_SKIPS, [f"README.md:{b.line}: {b.skip}" for b in skipped]
    assert len(runnable) >= 15
    small_code(runnable)  # every substitution still matches


def _logical_lines(code: str) -> list[str]:
    """Lines with shell continuations (a trailing backslash) joined."""
    return re.sub(r"\\\n\s*", " ", code).splitlines()


def test_image_ids_hold_their_class(small_toyvoc):
    dataset = open_dataset(small_toyvoc)
    holds = {}
    for split in ("trainval", "test"):
        for sample in dataset.split(split):
            holds[sample.image_id] = {dataset.classes[c] for c, v in enumerate(sample.labels) if v == 1}
    class_word = re.compile(r"\b(" + "|".join(VOC_CLASSES) + r")\b")
    checked = 0
    for block in runnable_blocks():
        for line in _logical_lines(block.code):
            for image_id in re.findall(r"\b(\d{6})\b", line):
                assert image_id in holds, f"README.md:{block.line}: image {image_id} is not in toyvoc"
                named = set(class_word.findall(line))
                assert named <= holds[image_id], (f"README.md:{block.line}: image {image_id} holds "
                                                  f"{sorted(holds[image_id])}, not {sorted(named - holds[image_id])}")
                checked += 1
    assert checked >= 8


def _bowlrp_on_path(folder: Path) -> dict:
    """An environment whose ``bowlrp`` runs this checkout with this interpreter."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir()
    shim = bin_dir / "bowlrp"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m bowlrp "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return env


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes (and theirs): the work a block did,
    whatever else the machine runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.mark.slow
def test_readme_runs_as_written(tmp_path):
    """All runnable blocks, in order, in one folder (a few minutes on two cores; the times are printed)."""
    blocks = runnable_blocks()
    codes = small_code(blocks)
    work = tmp_path / "reader"
    work.mkdir()
    env = _bowlrp_on_path(work)
    times = []
    for block, code in zip(blocks, codes):
        if block.lang == "sh":
            command = ["bash", "-c", "set -euo pipefail\n" + code]
        else:
            command = [sys.executable, "-c", code]
        start, cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        times.append((block.line, time.perf_counter() - start, _children_cpu() - cpu))
        assert done.returncode == 0, (f"README.md:{block.line} (```{block.lang}) failed with exit {done.returncode}:\n"
                                      f"{code}\n--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n"
                                      f"{done.stderr[-3000:]}")
    print("\n".join(f"README.md:{line}: {seconds:.1f} s, CPU {cpu:.1f} s" for line, seconds, cpu in times))
    print(f"all {len(blocks)} blocks: {sum(t[1] for t in times):.1f} s, CPU {sum(t[2] for t in times):.1f} s")
    # what the blocks promise to write is there
    for path in ("ap.json", "scores.json", "maps/000020.npz", "maps/000045_overlay.png", "horse.h5",
                 "models/cnn/model.json", "figures/fv/horse_000020.png", "study/report/index.html",
                 "models/fv-sklearn/model.json", "models/fv-api/arrays.npz", "spray-fv/spray.json"):
        assert (work / path).is_file(), path
