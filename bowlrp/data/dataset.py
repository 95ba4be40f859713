"""Dataset model shared by all readers: samples with multi-label targets and object boxes.

A reader (:mod:`.voc`, :mod:`.folder`) turns a folder on disk into a :class:`Dataset`; its
:meth:`Dataset.split` gives :class:`Sample` lists whose ``labels`` follow ``Dataset.classes``.
Problems found in annotations are not fatal: they are counted in ``Dataset.skips`` (a
:class:`~bowlrp.errors.SkipLog`) unless the dataset was opened with ``strict=True``, in which
case the first one raises :class:`~bowlrp.errors.DataError`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError, SkipLog

#: The 20 Pascal VOC classes in the devkit's official order.
VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

#: Split names in the order :meth:`Dataset.splits` reports them.
STANDARD_SPLITS: tuple[str, ...] = ("train", "val", "trainval", "test")

#: Label values: present, absent, and "only difficult instances" (ignored by VOC's evaluation).
POSITIVE, NEGATIVE, DIFFICULT = 1, -1, 0


@dataclass
class ObjectBox:
    """One annotated object.

    ``box`` is (xmin, ymin, xmax, ymax) in VOC's 1-based, inclusive pixel coordinates: a box
    covering the whole of a W x H image is (1, 1, W, H).
    """

    name: str
    box: tuple[float, float, float, float]
    difficult: bool = False
    truncated: bool = False


@dataclass
class Sample:
    """One image of a split.

    ``labels`` is (n_classes,) int8 over ``Dataset.classes``: 1 present, -1 absent, 0 present
    only as difficult instances. ``objects`` holds every annotated object (also of classes outside
    ``Dataset.classes``); it is empty for datasets without boxes.
    """

    image_id: str
    path: Path
    labels: np.ndarray
    objects: list[ObjectBox] = field(default_factory=list)


class Dataset:
    """Base class of the readers.

    Attributes
    ----------
    root : Path
        The dataset folder (for VOC the folder that holds ``ImageSets``; a synthetic set keeps
        its ``ground_truth.json`` there).
    classes : list[str]
        Class names, in label order.
    skips : SkipLog
        Images left out while reading, with reasons.
    strict : bool
        Raise :class:`DataError` at the first problem instead of recording a skip.
    """

    def __init__(self, root: str | os.PathLike, classes: list[str], strict: bool = False):
        self.root = Path(root)
        self.classes = list(classes)
        self.strict = strict
        self.skips = SkipLog(strict=False)  # strict handling is ours: it must raise DataError
        self._cache: dict[str, list[Sample]] = {}

    # -- to be provided by readers -------------------------------------------------------
    def splits(self) -> list[str]:
        """Names of the splits this dataset has, standard ones first."""
        raise NotImplementedError

    def _read_split(self, name: str) -> list[Sample]:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------
    def split(self, name: str) -> list[Sample]:
        """Samples of split ``name`` ("train", "val", "trainval", "test"), in file order.

        Read once, then cached. Raises :class:`DataError` for a split the dataset lacks.
        """
        if name not in self._cache:
            available = self.splits()
            if name not in available:
                raise DataError(f"{self.root}: no split {name!r} (available: {', '.join(available) or 'none'})")
            self._cache[name] = self._read_split(name)
        return self._cache[name]

    def skip(self, item: str | os.PathLike, reason: str) -> None:
        """Record that ``item`` is left out; in strict mode raise :class:`DataError` instead."""
        if self.strict:
            raise DataError(f"{item}: {' '.join(str(reason).split())}")
        self.skips.add(str(item), reason)

    def class_index(self, name: str) -> int:
        return self.classes.index(name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, classes={len(self.classes)}, splits={self.splits()})"


def check_class_subset(requested: list[str] | None, available: list[str], where: str | os.PathLike) -> list[str]:
    """Validate a ``classes=[...]`` request against the dataset's class list.

    Returns the requested list (in the caller's order) or ``available`` when None.
    Raises :class:`DataError` naming unknown classes and listing the valid ones.
    """
    if requested is None:
        return list(available)
    requested = list(requested)
    unknown = [c for c in requested if c not in available]
    if unknown:
        raise DataError(f"{where}: unknown class(es) {', '.join(unknown)}; valid: {', '.join(available)}")
    if len(set(requested)) != len(requested):
        raise DataError(f"{where}: class list has duplicates: {', '.join(requested)}")
    if not requested:
        raise DataError(f"{where}: empty class list")
    return requested
