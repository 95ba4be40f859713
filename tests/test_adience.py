"""The Adience reader on hand-written fold files with the real files' quirks, and on corrupt ones."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bowlrp.data.adience import (AGE_GROUPS, COLUMNS, N_FOLDS, age_group, cross_validation, open_adience,
                                 parse_age, parse_folds, parse_gender)
from bowlrp.errors import BowlrpError, DataError, SkipLog

HEADER = "\t".join(COLUMNS)


def _row(user, image, face_id, age, gender):
    return "\t".join([user, image, str(face_id), age, gender, "10", "20", "300", "310", "-5", "0", "70"])


def _touch(root: Path, user: str, image: str, face_id, both: bool = True) -> None:
    for folder, prefix in (("faces", "coarse_tilt_aligned_face"), ("aligned", "landmark_aligned_face")):
        if folder == "aligned" and not both:
            continue
        d = root / folder / user
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{prefix}.{face_id}.{image}").write_bytes(b"jpeg")


@pytest.fixture
def adience(tmp_path):
    """Fold 0 holds every quirk; folds 1-4 one plain row each; fold 3 also a corrupt row and an unknown image."""
    rows = {
        0: [_row("u1", "a_o.jpg", 1, "(25, 32)", "m"),
            _row("u1", "b_o.jpg", 2, "36", "f"),          # bare number between groups -> 38-43 (nearest)
            _row("u1", "c_o.jpg", 3, "None", "f"),        # no age label
            _row("u2", "d_o.jpg", 4, "(0, 2)", "u"),      # no gender label
            _row("u2", "e_o.jpg", 5, "(60, 100)", ""),    # empty gender, 60+
            _row("u2", "f_o.jpg", 6, "(38, 48)", "m"),    # a range that is no group: midpoint 43
            _row("u2", "g_o.jpg", 7, "3", "f")],          # tie between 0-2 and 4-6 -> younger
        1: [_row("u3", "h_o.jpg", 8, "(8, 12)", "f")],
        2: [_row("u4", "i_o.jpg", 9, "(15, 20)", "m")],
        3: [_row("u5", "j_o.jpg", 10, "(48, 53)", "m"),
            "u5\tk_o.jpg\t11\t(4, 6)\tf\t1\t2",            # wrong column count
            _row("u5", "l_o.jpg", 12, "(4, 6)", "f"),     # unknown image (no file)
            _row("u5", "m_o.jpg", "x3", "(4, 6)", "f"),   # face_id not a number
            _row("u5", "n_o.jpg", 14, "old", "f")],       # unparsable age
        4: [_row("u6", "o_o.jpg", 15, "(4, 6)", "f")],
    }
    for k, lines in rows.items():
        (tmp_path / f"fold_{k}_data.txt").write_text("\n".join([HEADER, *lines]) + "\n")
        for line in lines:
            cells = line.split("\t")
            if len(cells) == len(COLUMNS) and cells[2].isdigit() and cells[1] != "l_o.jpg":
                _touch(tmp_path, cells[0], cells[1], cells[2], both=cells[1] != "j_o.jpg")
    return tmp_path


def test_quirks_parse(adience):
    data = open_adience(adience)
    by_id = {f.face_id: f for f in data.faces()}
    g = AGE_GROUPS.index
    assert by_id["1"].age == g("25-32") and by_id["1"].gender == "m"
    assert by_id["2"].age == g("38-43") and by_id["2"].gender == "f"
    assert by_id["3"].age is None
    assert by_id["4"].age == g("0-2") and by_id["4"].gender is None
    assert by_id["5"].age == g("60-") and by_id["5"].gender is None
    assert by_id["6"].age == g("38-43")
    assert by_id["7"].age == g("0-2")
    assert by_id["1"].box == (10.0, 20.0, 300.0, 310.0) and by_id["1"].tilt == -5.0
    assert by_id["1"].path(adience, "rotation") == adience / "faces/u1/coarse_tilt_aligned_face.1.a_o.jpg"
    assert by_id["1"].path(adience, "inplane") == adience / "aligned/u1/landmark_aligned_face.1.a_o.jpg"
    assert {f.fold for f in data.faces([0])} == {0} and len(data.faces([0])) == 7


def test_corrupt_rows_are_counted_named_skips(adience):
    data = open_adience(adience)
    reasons = {e["file"]: e["reason"] for e in data.skips.as_list()}
    fold3 = str(adience / "fold_3_data.txt")
    assert set(reasons) == {f"{fold3}:3", f"{fold3}:5", f"{fold3}:6"}
    assert "7 columns, expected 12" in reasons[f"{fold3}:3"]
    assert "face_id" in reasons[f"{fold3}:5"] and "old" in reasons[f"{fold3}:6"]
    with pytest.raises(BowlrpError, match="fold_3_data.txt:3"):
        open_adience(adience, strict=True)


def test_samples_skip_missing_labels_and_images(adience):
    data = open_adience(adience)
    skips = SkipLog()
    paths, labels, faces = data.samples("gender", "rotation", [0, 3], skips)
    assert [f.face_id for f in faces] == ["1", "2", "3", "6", "7", "10"]
    assert labels.tolist() == [1, 0, 0, 1, 0, 1] and labels.dtype == np.int64
    reasons = [e["reason"] for e in skips.as_list()]
    assert reasons.count("no gender label") == 2 and sum("unknown image" in r for r in reasons) == 1
    # in-plane: face 10 has only its rotation-aligned image
    skips = SkipLog()
    paths, labels, faces = data.samples("age", "inplane", [3], skips)
    assert paths == [] and len(skips) == 2
    # mixed: every face in both alignments
    paths, labels, faces = data.samples("age", "mixed", [1], SkipLog())
    assert [p.parent.parent.name for p in paths] == ["faces", "aligned"] and labels.tolist() == [2, 2]


def test_age_rule_and_label_parsers():
    assert [age_group(v) for v in (0, 2, 3, 3.5, 7, 14, 14.5, 21, 24, 33, 36, 44, 46, 54, 57, 60, 99)] == \
        [0, 0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 7]
    assert parse_age("(8, 23)") == 3 and parse_age(" ( 25 ,32 ) ") == 4 and parse_age("None") is None
    for bad in ("(32, 25)", "-4", "nan", "25-32"):
        with pytest.raises(ValueError):
            parse_age(bad)
    assert parse_gender("M") == "m" and parse_gender(" u ") is None
    with pytest.raises(ValueError):
        parse_gender("x")
    assert parse_folds("0, 3") == (0, 3) and parse_folds(None) == tuple(range(N_FOLDS))
    for bad in ("5", "1,1", "", "a"):
        with pytest.raises(ValueError):
            parse_folds(bad)


def test_cross_validation_covers_every_fold_once():
    splits = list(cross_validation())
    assert [t for _, t in splits] == list(range(N_FOLDS))
    assert all(t not in train and len(train) == N_FOLDS - 1 for train, t in splits)


def test_missing_fold_or_bad_header(tmp_path, adience):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="fold_0_data.txt: missing"):
        open_adience(empty)
    (adience / "fold_2_data.txt").write_text("user_id,original_image\n")
    with pytest.raises(DataError, match="fold_2_data.txt: not an Adience fold file"):
        open_adience(adience)
