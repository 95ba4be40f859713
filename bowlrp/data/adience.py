"""Reader for the Adience face benchmark layout (SPEC §2.2), real or synthetic (``toyfaces``).

Layout of a dataset root::

    fold_0_data.txt ... fold_4_data.txt   tab-separated, one header line:
        user_id original_image face_id age gender x y dx dy tilt_ang fiducial_yaw_angle fiducial_score
    faces/<user_id>/coarse_tilt_aligned_face.<face_id>.<original_image>     rotation aligned ("rotation")
    aligned/<user_id>/landmark_aligned_face.<face_id>.<original_image>      in-plane aligned ("inplane")

Labels, with the quirks of the real files:

* ``age``: a range ``"(25, 32)"``, a bare number ``"35"``, or ``"None"`` (no label). A value maps to one of
  the eight Adience groups (:data:`AGE_GROUPS`) by :func:`age_group`: the group whose range contains it,
  otherwise the group whose range is nearest (ties go to the younger group: 3 -> 0-2, 14 -> 8-13);
  a range maps by its midpoint (``"(38, 48)"`` -> 43 -> 38-43, ``"(8, 23)"`` -> 15.5 -> 15-20).
* ``gender``: ``m`` or ``f``; ``u`` and an empty field mean no label.

A row with the wrong number of columns or an unreadable ``face_id`` is a counted, named skip (file and line);
a face without the label a task needs, or whose image is missing, is a counted skip when the samples of a
task are taken (:meth:`AdienceData.samples`). Five-fold cross validation as in the benchmark: fold ``k`` is
the test set, the other four are the training set (:func:`cross_validation`).
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import DataError, SkipLog

AGE_GROUPS = ("0-2", "4-6", "8-13", "15-20", "25-32", "38-43", "48-53", "60-")
AGE_RANGES = ((0, 2), (4, 6), (8, 13), (15, 20), (25, 32), (38, 43), (48, 53), (60, math.inf))
GENDERS = ("f", "m")
TASKS = {"age": AGE_GROUPS, "gender": GENDERS}
N_FOLDS = 5
COLUMNS = ("user_id", "original_image", "face_id", "age", "gender", "x", "y", "dx", "dy", "tilt_ang",
           "fiducial_yaw_angle", "fiducial_score")
#: alignment -> (folder, file-name prefix)
ALIGNMENTS = {"rotation": ("faces", "coarse_tilt_aligned_face"), "inplane": ("aligned", "landmark_aligned_face")}
#: what ``--align`` accepts: one alignment, or ``mixed`` (every face in both)
ALIGN_CHOICES = ("rotation", "inplane", "mixed")


def fold_file(root: str | Path, fold: int) -> Path:
    return Path(root) / f"fold_{fold}_data.txt"


def age_group(value: float) -> int:
    """Index into :data:`AGE_GROUPS` of an age in years (module docstring: containing, else nearest, ties younger)."""
    if not value >= 0:  # NaN too
        raise ValueError(f"age {value!r} is not a non-negative number")
    distances = [0.0 if lo <= value <= hi else min(abs(value - lo), abs(value - hi)) for lo, hi in AGE_RANGES]
    return int(np.argmin(distances))  # argmin takes the first (younger) of equal distances


_RANGE = re.compile(r"^\(\s*(\d+(?:\.\d+)?)\s*,\s*(\d+(?:\.\d+)?)\s*\)$")


def parse_age(text: str) -> int | None:
    """The age group index of a fold file's age field, None for ``"None"``/empty; ValueError otherwise."""
    text = text.strip()
    if text in ("", "None"):
        return None
    match = _RANGE.match(text)
    if match:
        lo, hi = float(match.group(1)), float(match.group(2))
        if hi < lo:
            raise ValueError(f"age range {text!r} runs backwards")
        return age_group((lo + hi) / 2)
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"age {text!r} is neither a range '(a, b)', a number nor None") from None
    return age_group(value)


def parse_gender(text: str) -> str | None:
    """``"m"``/``"f"``; None for ``"u"`` or empty; ValueError for anything else."""
    text = text.strip().lower()
    if text in ("", "u"):
        return None
    if text in GENDERS:
        return text
    raise ValueError(f"gender {text!r} is not m, f, u or empty")


@dataclass(frozen=True)
class Face:
    """One row of a fold file: ``age`` an index into :data:`AGE_GROUPS` or None, ``gender`` m/f or None,
    ``box`` (x, y, dx, dy) in the original image, ``tilt`` in degrees."""

    user_id: str
    original_image: str
    face_id: str
    fold: int
    age: int | None
    gender: str | None
    box: tuple[float, float, float, float]
    tilt: float

    @property
    def key(self) -> str:
        """A unique name of the face: ``<user_id>/<face_id>.<original_image>``."""
        return f"{self.user_id}/{self.face_id}.{self.original_image}"

    def path(self, root: str | Path, alignment: str) -> Path:
        """The image file of the face in ``alignment`` (``rotation`` or ``inplane``)."""
        folder, prefix = ALIGNMENTS[alignment]
        return Path(root) / folder / self.user_id / f"{prefix}.{self.face_id}.{self.original_image}"

    def label(self, task: str) -> int | None:
        """The class index for ``task`` (age group, or 0 = f / 1 = m), None when the row has none."""
        if task == "age":
            return self.age
        return None if self.gender is None else GENDERS.index(self.gender)


def _number(text: str) -> float:
    text = text.strip()
    return float(text) if text else math.nan


def read_fold(path: str | Path, fold: int, skips: SkipLog) -> list[Face]:
    """The faces of one fold file; unusable rows go to ``skips`` as ``<file>:<line>`` with the reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc.strerror or exc})") from None
    rows = list(csv.reader(text.splitlines(), delimiter="\t"))
    if not rows or [c.strip() for c in rows[0]] != list(COLUMNS):
        raise DataError(f"{path}: not an Adience fold file (the header must be the {len(COLUMNS)} tab-separated "
                        f"columns {' '.join(COLUMNS)})")
    faces = []
    for line, row in enumerate(rows[1:], start=2):
        where = f"{path}:{line}"
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(COLUMNS):
            skips.add(where, f"{len(row)} columns, expected {len(COLUMNS)}")
            continue
        cells = dict(zip(COLUMNS, (c.strip() for c in row)))
        try:
            if not cells["user_id"] or not cells["original_image"] or not cells["face_id"].isdigit():
                raise ValueError(f"user_id/original_image empty or face_id {cells['face_id']!r} not a number")
            if "/" in cells["user_id"] + cells["original_image"] or ".." in cells["user_id"]:
                raise ValueError("user_id/original_image may not hold a path")
            face = Face(cells["user_id"], cells["original_image"], cells["face_id"], fold,
                        parse_age(cells["age"]), parse_gender(cells["gender"]),
                        tuple(_number(cells[k]) for k in ("x", "y", "dx", "dy")), _number(cells["tilt_ang"]))
        except ValueError as exc:
            skips.add(where, str(exc))
            continue
        faces.append(face)
    return faces


def parse_folds(text: str | Sequence[int] | None) -> tuple[int, ...]:
    """``"0,1,2"`` (or ints) -> distinct fold numbers in 0..4; None -> all folds. ValueError otherwise."""
    if text is None:
        return tuple(range(N_FOLDS))
    parts = [p.strip() for p in text.split(",") if p.strip()] if isinstance(text, str) else list(text)
    try:
        folds = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"folds must be comma-separated numbers 0..{N_FOLDS - 1}, got {text!r}") from None
    if not folds or len(set(folds)) != len(folds) or min(folds) < 0 or max(folds) >= N_FOLDS:
        raise ValueError(f"folds must be distinct numbers 0..{N_FOLDS - 1}, got {text!r}")
    return folds


def cross_validation() -> Iterator[tuple[tuple[int, ...], int]]:
    """The benchmark's five splits: (training folds, test fold), test fold 0..4."""
    for test in range(N_FOLDS):
        yield tuple(f for f in range(N_FOLDS) if f != test), test


def alignments_of(align: str) -> tuple[str, ...]:
    """``rotation``/``inplane`` -> itself; ``mixed`` -> both (each face once per alignment)."""
    if align == "mixed":
        return tuple(ALIGNMENTS)
    if align not in ALIGNMENTS:
        raise ValueError(f"alignment {align!r}: choose one of {', '.join(ALIGN_CHOICES)}")
    return (align,)


@dataclass
class AdienceData:
    """The faces of an Adience-layout root, by fold, and the skips met while reading the fold files."""

    root: Path
    folds: dict[int, list[Face]]
    skips: SkipLog

    def faces(self, folds: Sequence[int] | None = None) -> list[Face]:
        return [f for k in (folds if folds is not None else range(N_FOLDS)) for f in self.folds[k]]

    def samples(self, task: str, align: str, folds: Sequence[int], skips: SkipLog) -> tuple[list[Path], np.ndarray,
                                                                                           list[Face]]:
        """Image paths, class indices ``(n,)`` int64 and faces of ``task`` in ``folds`` for ``align``.

        A face without a ``task`` label, or whose image file is missing, is a skip in ``skips``;
        ``mixed`` gives each face twice (rotation, then in-plane image).
        """
        if task not in TASKS:
            raise ValueError(f"task {task!r}: choose age or gender")
        paths, labels, faces = [], [], []
        for face in self.faces(folds):
            label = face.label(task)
            if label is None:
                skips.add(f"fold {face.fold}: {face.key}", f"no {task} label")
                continue
            for alignment in alignments_of(align):
                path = face.path(self.root, alignment)
                if not path.is_file():
                    skips.add(str(path), "unknown image (listed in the fold file, not on disk)")
                    continue
                paths.append(path)
                labels.append(label)
                faces.append(face)
        return paths, np.asarray(labels, dtype=np.int64), faces


def open_adience(root: str | Path, strict: bool = False) -> AdienceData:
    """Read the five fold files of ``root``; a missing one is a :class:`DataError`, bad rows are skips."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    skips = SkipLog(strict=strict)
    folds = {}
    for k in range(N_FOLDS):
        path = fold_file(root, k)
        if not path.is_file():
            raise DataError(f"{path}: missing (an Adience root holds fold_0_data.txt ... fold_4_data.txt)")
        folds[k] = read_fold(path, k, skips)
    return AdienceData(root, folds, skips)
