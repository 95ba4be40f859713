"""Image-folder reader: ``DIR/<class>/<image>``, one label per image.

Two layouts:

- ``DIR/train/<class>/…``, ``DIR/test/<class>/…`` (``DIR/val/`` optional): the folders are the
  splits; "trainval" is train plus val (or train alone without val).
- ``DIR/<class>/…``: a deterministic split by a stable hash (SHA-1) of each file's path relative
  to DIR, so adding or removing files never moves the others. A file whose hash value ``u`` in
  [0, 1) is below :data:`TEST_FRACTION` (0.3) is in "test"; the other 70 % form "trainval", which
  is halved into "val" (``u < 0.65``) and "train" (the rest), as in the VOC devkit.

Labels: +1 for the image's folder class, -1 for every other class. Image ids are the relative
path below DIR, with extension (``"cat/0001.jpg"``, ``"train/cat/0001.jpg"``), unique by construction.
Classes are the sorted folder names (hidden folders ignored).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import NEGATIVE, POSITIVE, STANDARD_SPLITS, Dataset, Sample, check_class_subset

IMAGE_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm",
})
TEST_FRACTION = 0.3
VAL_FRACTION = 0.35  # of all images, i.e. half of trainval
_SPLIT_DIRS = ("train", "val", "test")


def stable_unit_hash(text: str) -> float:
    """A value in [0, 1) that depends only on ``text`` (not on Python's salted ``hash``)."""
    digest = hashlib.sha1(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _class_dirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def _images_in(folder: Path) -> list[str]:
    return sorted(
        e.name for e in os.scandir(folder)
        if e.is_file() and not e.name.startswith(".") and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
    )


class FolderDataset(Dataset):
    """Single-label image folders. See the module docstring for layouts and the hash split."""

    def __init__(self, root: str | os.PathLike, classes: list[str] | None = None, strict: bool = False):
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: not a directory")
        self._split_dirs = {s: root / s for s in _SPLIT_DIRS if (root / s).is_dir()}
        self._presplit = "train" in self._split_dirs and "test" in self._split_dirs
        if self._presplit:
            found = sorted({c for d in self._split_dirs.values() for c in _class_dirs(d)})
        else:
            found = _class_dirs(root)
        if not found:
            raise DataError(f"{root}: no class folders found")
        super().__init__(root, check_class_subset(classes, found, root), strict=strict)
        self.all_classes = found

    def splits(self) -> list[str]:
        if not self._presplit:
            return list(STANDARD_SPLITS)
        have = {"train", "test", "trainval"} | ({"val"} if "val" in self._split_dirs else set())
        return [s for s in STANDARD_SPLITS if s in have]

    def _files_under(self, base: Path) -> list[tuple[str, Path, str]]:
        """(class, path, image id) for the selected classes below ``base``; ids relative to ``base``."""
        out = []
        for cls in self.classes:
            folder = base / cls
            if folder.is_dir():
                out.extend((cls, folder / name, f"{cls}/{name}") for name in _images_in(folder))
        return out

    def _read_split(self, name: str) -> list[Sample]:
        if self._presplit:
            parts = ["train", "val"] if name == "trainval" else [name]
            files = [(c, p, f"{part}/{i}") for part in parts if part in self._split_dirs
                     for c, p, i in self._files_under(self._split_dirs[part])]
        else:
            files = [f for f in self._files_under(self.root) if _hash_split(f[2]) in _members(name)]
        samples = []
        for cls, path, image_id in files:
            labels = np.full(len(self.classes), NEGATIVE, dtype=np.int8)
            labels[self.classes.index(cls)] = POSITIVE
            samples.append(Sample(image_id=image_id, path=path, labels=labels, objects=[]))
        return samples


def _hash_split(relative_id: str) -> str:
    u = stable_unit_hash(relative_id)
    if u < TEST_FRACTION:
        return "test"
    return "val" if u < TEST_FRACTION + VAL_FRACTION else "train"


def _members(split: str) -> set[str]:
    return {"trainval": {"train", "val"}}.get(split, {split})
