"""toyfaces: the Adience reader reads it, it is deterministic, both alignments leave their marks, the
region maps lie on the drawn parts, and the smile bias is planted."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_erosion

from bowlrp.data.adience import AGE_GROUPS, N_FOLDS, open_adience
from bowlrp.data.synth.facedraw import ADULT_EYE_Y, ADULT_MOUTH_Y, FACE_CENTRE, FACE_SCALE, REGION_LABELS
from bowlrp.data.synth.faces import SMILING_GROUPS, generate_toyfaces, region_path
from bowlrp.errors import SkipLog

PER_FOLD = 24


@pytest.fixture(scope="module")
def toyfaces(tmp_path_factory):
    return generate_toyfaces(tmp_path_factory.mktemp("faces") / "toyfaces", seed=3, size="small",
                             faces_per_fold=PER_FOLD)


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def _gt(root: Path) -> dict:
    return json.loads((root / "ground_truth.json").read_text())


def test_reader_reads_it_with_its_label_quirks(toyfaces):
    data = open_adience(toyfaces)
    assert len(data.skips) == 0 and sum(len(data.folds[k]) for k in range(N_FOLDS)) == N_FOLDS * PER_FOLD
    users = [{f.user_id for f in data.folds[k]} for k in range(N_FOLDS)]
    assert all(not (users[a] & users[b]) for a in range(N_FOLDS) for b in range(a))  # users whole in a fold
    texts = [line.split("\t")[3] for k in range(N_FOLDS)
             for line in (toyfaces / f"fold_{k}_data.txt").read_text().splitlines()[1:]]
    assert any(t.startswith("(") for t in texts) and any(t.isdigit() for t in texts)
    gt = {f["face_id"]: f for f in _gt(toyfaces)["faces"]}
    for face in data.faces():  # every usable label is the drawn one
        if face.age is not None:
            assert AGE_GROUPS[face.age] == gt[face.face_id]["group"]
        if face.gender is not None:
            assert face.gender == gt[face.face_id]["gender"]
    skips = SkipLog()
    paths, labels, _ = data.samples("age", "mixed", range(N_FOLDS), skips)
    assert len(paths) == 2 * (N_FOLDS * PER_FOLD - len(skips)) and all(p.is_file() for p in paths)
    assert np.asarray(Image.open(paths[0])).shape == (40, 40, 3)


def test_same_seed_same_bytes(toyfaces, tmp_path):
    again = generate_toyfaces(tmp_path / "a", seed=3, size="small", faces_per_fold=PER_FOLD)
    other = generate_toyfaces(tmp_path / "b", seed=4, size="small", faces_per_fold=PER_FOLD)
    assert _tree_digest(again) == _tree_digest(toyfaces) != _tree_digest(other)


def _labels(root, face, alignment):
    return np.asarray(Image.open(region_path(root, face.path(root, alignment))))


def _centroid_y(mask):
    return np.nonzero(mask)[0].mean() if mask.any() else np.nan


def test_alignments_leave_their_marks(toyfaces):
    data = open_adience(toyfaces)
    gt = {f["face_id"]: f for f in _gt(toyfaces)["faces"]}
    void, tilts, eye_mouth = [], [], {"rotation": [], "inplane": []}
    mouth_y = {"rotation": [], "inplane": []}
    for face in data.faces():
        for alignment in ("rotation", "inplane"):
            lab = _labels(toyfaces, face, alignment)
            pixels = np.asarray(Image.open(face.path(toyfaces, alignment))).astype(int)
            v = lab == REGION_LABELS["void"]
            inner = binary_erosion(v, iterations=2)  # JPEG and area averaging blur the edge
            assert pixels[inner].max(initial=0) < 40  # outside the photo: black
            dist = _centroid_y(lab == REGION_LABELS["mouth"]) - _centroid_y(lab == REGION_LABELS["eyes"])
            eye_mouth[alignment].append((gt[face.face_id]["age_years"], dist))
            mouth_y[alignment].append(_centroid_y(lab == REGION_LABELS["mouth"]))
            if alignment == "rotation":
                void.append(v.mean())
                tilts.append(abs(gt[face.face_id]["tilt"]))
    # rotation: black corners grow with the tilt
    assert np.corrcoef(tilts, void)[0, 1] > 0.6
    # in-plane: the mouth lands on the reference row; children's short faces are stretched to it
    ref = (FACE_CENTRE[1] + ADULT_MOUTH_Y * FACE_SCALE) * 40
    assert abs(np.nanmedian(mouth_y["inplane"]) - ref) < 2.5
    assert np.nanstd(mouth_y["inplane"]) < np.nanstd(mouth_y["rotation"])
    for alignment, sign in (("rotation", 1), ("inplane", 0)):
        ages, dist = np.array(eye_mouth[alignment]).T
        ok = np.isfinite(dist)
        r = np.corrcoef(ages[ok], dist[ok])[0, 1]
        assert (r > 0.5) if sign else (abs(r) < 0.3), (alignment, r)
    assert ADULT_EYE_Y < 0  # eyes above the face centre in the adult layout


def test_regions_lie_on_the_drawn_parts(toyfaces):
    data = open_adience(toyfaces)
    face = data.faces()[0]
    lab = _labels(toyfaces, face, "rotation")
    for name in ("skin", "hair", "eyes", "nose", "mouth", "background"):
        assert (lab == REGION_LABELS[name]).sum() > 3, name
    pixels = np.asarray(Image.open(face.path(toyfaces, "rotation"))).astype(float)
    eyes = pixels[lab == REGION_LABELS["eyes"]].mean(0)
    skin = pixels[lab == REGION_LABELS["skin"]].mean(0)
    assert np.abs(eyes - skin).sum() > 30  # the map marks pixels that look different


def test_smile_bias_is_planted(toyfaces):
    faces = _gt(toyfaces)["faces"]
    inside = [f["smiling"] for f in faces if f["group"] in SMILING_GROUPS]
    outside = [f["smiling"] for f in faces if f["group"] not in SMILING_GROUPS]
    assert np.mean(inside) > 0.7 and np.mean(outside) < 0.2
    data = open_adience(toyfaces)
    smiling = {f["face_id"]: f["smiling"] for f in faces}
    area = {True: [], False: []}
    for face in data.faces():
        area[smiling[face.face_id]].append((_labels(toyfaces, face, "inplane") == REGION_LABELS["mouth"]).sum())
    assert np.mean(area[True]) > 1.5 * np.mean(area[False])  # an open smile: a larger mouth region


def test_cli_writes_it(tmp_path):
    out = tmp_path / "cli"
    run = subprocess.run([sys.executable, "-m", "bowlrp", "data", "synth-faces", "--out", str(out), "--size",
                          "small", "--seed", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (out / "fold_4_data.txt").is_file() and (out / "ground_truth.json").is_file()
    run = subprocess.run([sys.executable, "-m", "bowlrp", "data", "synth-faces", "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "not empty" in run.stderr and "Traceback" not in run.stderr
