"""What a study runs: its sizes, its settings, the classes it covers, and the ordered steps.

The plan (SPEC §6.6; dissertation Chapters 4 and 6)::

    data ─┬─ train-fv ──┬─ evaluate-fv
          ├─ train-bow ─┼─ evaluate-bow
          └─ train-dnn ─┴─ evaluate-dnn
             train-fv  ── explain-fv  ─┬─ gallery, context, spray
             train-dnn ── explain-dnn ─┘
             train-fv / train-dnn ── perturb-fv / perturb-dnn, watermark, padding
             train-fv ── perturb-fv-descriptors (FV descriptor replacement, the LRP rules compared)
             everything ── report

Classes: those with a positive image in both the training and the test split (a classifier can be
trained and its maps looked at), optionally narrowed by ``classes``. Relevance stores hold, per class,
the test images that contain it (labels 1 and "difficult" 0): what the context ratio, the gallery and
SpRAy read; ``explain_images="all"`` explains every test image instead (20 classes x the whole
split costs about as much again as 20 x the positives, times the number of classes).
"""
from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Sequence

from .. import __version__
from ..errors import BowlrpError
from ..runs import labelled_split

TRAIN_SPLIT, TEST_SPLIT = "trainval", "test"

#: settings per size; ``quick`` is what CI runs (small toyvoc, minutes), ``default`` what ``make demo`` runs
SIZES: dict[str, dict] = {
    "quick": {
        "fv": {"gmm_k": 4, "pca_dims": 80, "max_descriptors": 5000, "C": 1.0},
        "bow": {"vocab_size": 16, "max_descriptors": 5000, "C": 1.0},
        "dnn": {"arch": "smallcnn", "epochs": 2, "batch_size": 32, "lr": 2e-3},
        "explain": {"images": "positives", "fv": {"eps": 1.0}, "dnn": {}},
        "gallery": {"per_class": 2},
        "perturb": {"n_images": 2, "region": 9, "steps": 10, "repetitions": 2, "max_classes": 3},
        "descriptors": {"n_images": 2, "steps": 10, "per_step": 50, "repetitions": 2, "max_classes": 3},
        "artefacts": {"watermark_class": "horse", "padding_class": "aeroplane", "watermark_images": 8,
                      "padding_images": 8},
        "spray": {"pool": 20, "normalize": "l1"},
    },
    "default": {
        "fv": {"gmm_k": 64, "pca_dims": 80, "max_descriptors": 200_000, "C": None},
        "bow": {"vocab_size": 128, "max_descriptors": 100_000, "C": None},
        "dnn": {"arch": "smallcnn", "epochs": 20, "batch_size": 32, "lr": 2e-3},
        "explain": {"images": "positives", "fv": {"eps": 1.0}, "dnn": {}},
        "gallery": {"per_class": 4},
        "perturb": {"n_images": 3, "region": 9, "steps": 100, "repetitions": 3, "max_classes": None},
        "descriptors": {"n_images": 3, "steps": 100, "per_step": 100, "repetitions": 3, "max_classes": None},
        "artefacts": {"watermark_class": "horse", "padding_class": "aeroplane", "watermark_images": None,
                      "padding_images": 120},
        "spray": {"pool": 20, "normalize": "l1"},
    },
}


def data_digest(root: str | Path) -> str:
    """SHA-256 over every file of the dataset folder (relative path and content, in path order):
    the identity a study folder is pinned to."""
    root = Path(root)
    if not root.is_dir():
        raise BowlrpError(f"{root}: no such dataset folder")
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def study_classes(data: str | Path, requested: Sequence[str] | None = None) -> list[str]:
    """Classes with a positive image in both the training and the test split (dataset order), narrowed
    to ``requested`` when given; a requested class without such images is an error."""
    dataset, _, train = labelled_split(data, TRAIN_SPLIT)
    _, _, test = labelled_split(data, TEST_SPLIT)
    usable = [c for i, c in enumerate(dataset.classes) if (train[:, i] == 1).any() and (test[:, i] == 1).any()]
    if requested:
        unknown = [c for c in requested if c not in dataset.classes]
        if unknown:
            raise BowlrpError(f"unknown class {unknown[0]!r}; the dataset has {', '.join(dataset.classes)}")
        lacking = [c for c in requested if c not in usable]
        if lacking:
            raise BowlrpError(f"class {lacking[0]!r} has no positive image in {TRAIN_SPLIT} or {TEST_SPLIT}")
        usable = [c for c in usable if c in requested]
    if not usable:
        raise BowlrpError(f"{data}: no class has positive images in both {TRAIN_SPLIT} and {TEST_SPLIT}")
    return usable


def study_settings(size: str, classes: list[str], seed: int = 0) -> dict:
    """Everything the study's results depend on besides the data: the size's settings, the classes,
    the seed and the bowlrp version (a new version may compute differently)."""
    if size not in SIZES:
        raise BowlrpError(f"unknown size {size!r}; one of {', '.join(SIZES)}")
    return {"size": size, "seed": int(seed), "classes": list(classes), "bowlrp": __version__,
            **copy.deepcopy(SIZES[size])}


def default_jobs() -> int:
    """Worker processes: the machine's cores (at most 4; the study is I/O light and memory bound)."""
    return max(1, min(4, os.cpu_count() or 1))
