"""Pascal VOC devkit reader (also reads the synthetic ``shapes`` and ``toyvoc`` sets).

Layout read, below the *dataset root* (the folder that holds ``ImageSets/Main``)::

    ImageSets/Main/<split>.txt            image ids of a split (train, val, trainval, test)
    ImageSets/Main/<class>_<split>.txt    "<id> <1|-1|0>" per line, optional
    Annotations/<id>.xml                  objects (name, bndbox, difficult, truncated), optional
    JPEGImages/<id>.jpg                   the image; any other "<id>.<ext>" there is accepted too
    classes.txt                           optional: one class name per line, fixes the label order

Labels per (image, class): from ``<class>_<split>.txt`` when it lists the image, else from the XML
(a non-difficult object of the class -> 1, only difficult ones -> 0, none -> -1). An image with
neither source, a missing image file, or hostile/malformed XML is a counted skip.

Class list: ``classes.txt`` when present; otherwise the 20 :data:`VOC_CLASSES` when the per-class
files name VOC classes (or there are none); otherwise the per-class names found, sorted (e.g. the
single class ``polygon`` of the shapes set).
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
import numpy as np
from defusedxml import DefusedXmlException

from ..errors import DataError
from .dataset import (
    DIFFICULT, NEGATIVE, POSITIVE, STANDARD_SPLITS, VOC_CLASSES,
    Dataset, ObjectBox, Sample, check_class_subset,
)

log = logging.getLogger(__name__)

#: Annotation files above this size are refused unread (VOC's are ~1 kB); guards memory and time.
MAX_XML_BYTES = 4 * 1024 * 1024
_CLASS_FILE = re.compile(r"^(?P<cls>.+)_(?P<split>train|val|trainval|test)\.txt$")
_SAFE_ID = re.compile(r"^[^/\\\x00]+$")


def find_voc_root(path: str | os.PathLike) -> Path:
    """The folder holding ``ImageSets/Main``: ``path`` itself, a child, or a grandchild.

    Raises :class:`DataError` when none or several (e.g. VOC2007 and VOC2012 side by side) exist.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a directory")
    if (path / "ImageSets" / "Main").is_dir():
        return path
    found = sorted(
        {p.parent.parent for p in list(path.glob("*/ImageSets/Main")) + list(path.glob("*/*/ImageSets/Main")) if p.is_dir()}
    )
    if not found:
        raise DataError(f"{path}: no ImageSets/Main found (not a VOC devkit)")
    if len(found) > 1:
        raise DataError(f"{path}: several VOC trees found, pass one of: {', '.join(map(str, found))}")
    return found[0]


class VOCDataset(Dataset):
    """A Pascal VOC-style tree. See the module docstring for the layout and label rules."""

    def __init__(self, root: str | os.PathLike, classes: list[str] | None = None, strict: bool = False):
        voc_root = find_voc_root(root)
        self._main = voc_root / "ImageSets" / "Main"
        self._class_files = self._scan_class_files()
        all_classes = self._discover_classes(voc_root)
        super().__init__(voc_root, check_class_subset(classes, all_classes, voc_root), strict=strict)
        self.all_classes = all_classes
        self.unknown_names: set[str] = set()  # object names in XML outside all_classes (logged once)
        self._image_files: dict[str, list[str]] | None = None

    # -- discovery ----------------------------------------------------------------------
    def _scan_class_files(self) -> dict[tuple[str, str], Path]:
        files = {}
        for entry in sorted(os.listdir(self._main)):
            m = _CLASS_FILE.match(entry)
            if m:
                files[(m["cls"], m["split"])] = self._main / entry
        return files

    def _discover_classes(self, voc_root: Path) -> list[str]:
        order_file = voc_root / "classes.txt"
        if order_file.is_file():
            names = [ln.strip() for ln in order_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if not names or len(set(names)) != len(names):
                raise DataError(f"{order_file}: empty or duplicate class names")
            return names
        named = sorted({cls for cls, _ in self._class_files})
        if not named or any(c in VOC_CLASSES for c in named):
            return list(VOC_CLASSES)
        return named

    def splits(self) -> list[str]:
        have = [s for s in STANDARD_SPLITS if (self._main / f"{s}.txt").is_file()]
        if "trainval" not in have and "train" in have and "val" in have:
            have.insert(have.index("val") + 1, "trainval")  # the union, as the devkit defines it
        return have

    # -- reading ------------------------------------------------------------------------
    def _read_ids(self, name: str) -> list[str]:
        split_file = self._main / f"{name}.txt"
        if not split_file.is_file() and name == "trainval":
            return self._read_ids("train") + self._read_ids("val")
        ids = []
        for line in split_file.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if parts:
                ids.append(parts[0])
        return ids

    def _class_labels(self, name: str) -> dict[str, dict[str, int]]:
        """class -> {image id -> label} from the per-class files of split ``name`` (those present)."""
        out: dict[str, dict[str, int]] = {}
        for cls in self.classes:
            files = [self._class_files.get((cls, name))]
            if files[0] is None and name == "trainval":
                files = [self._class_files.get((cls, "train")), self._class_files.get((cls, "val"))]
                if None in files:
                    continue
            elif files[0] is None:
                continue
            table: dict[str, int] = {}
            for path in files:
                for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                    parts = line.split()
                    if len(parts) >= 2 and parts[1].lstrip("-").isdigit():
                        table[parts[0]] = max(-1, min(1, int(parts[1])))
            out[cls] = table
        return out

    def _image_path(self, image_id: str) -> Path | None:
        folder = self.root / "JPEGImages"
        if self._image_files is None:
            self._image_files = {}
            if folder.is_dir():
                for entry in sorted(os.listdir(folder)):
                    stem = entry.rsplit(".", 1)[0] if "." in entry else entry
                    self._image_files.setdefault(stem, []).append(entry)
        names = self._image_files.get(image_id, [])
        if not names:
            return None
        preferred = [n for n in names if n.lower().endswith(".jpg")]
        return folder / (preferred or names)[0]

    def _read_split(self, name: str) -> list[Sample]:
        tables = self._class_labels(name)
        samples = []
        for image_id in self._read_ids(name):
            sample = self._read_sample(image_id, tables)
            if sample is not None:
                samples.append(sample)
        return samples

    def _read_sample(self, image_id: str, tables: dict[str, dict[str, int]]) -> Sample | None:
        if not _SAFE_ID.match(image_id) or image_id in (".", ".."):
            self.skip(image_id, "image id is not a plain file name")
            return None
        path = self._image_path(image_id)
        if path is None:
            self.skip(self.root / "JPEGImages" / f"{image_id}.jpg", "image file missing")
            return None
        need_xml = any(image_id not in tables.get(c, {}) for c in self.classes)
        xml_path = self.root / "Annotations" / f"{image_id}.xml"
        objects: list[ObjectBox] | None = None
        if xml_path.is_file():
            try:
                objects = parse_annotation(xml_path)
            except DataError as exc:
                self.skip(xml_path, str(exc).split(": ", 1)[-1])
                return None
        elif need_xml:
            self.skip(xml_path, "no annotation file and no class-file label")
            return None
        objects = objects or []
        for obj in objects:
            if obj.name not in self.all_classes and obj.name not in self.unknown_names:
                self.unknown_names.add(obj.name)
                log.warning("%s: unknown class name %r in annotations (ignored for labels)", self.root, obj.name)
        labels = np.full(len(self.classes), NEGATIVE, dtype=np.int8)
        for k, cls in enumerate(self.classes):
            table = tables.get(cls)
            if table is not None and image_id in table:
                labels[k] = table[image_id]
            else:
                labels[k] = _label_from_objects(cls, objects)
        return Sample(image_id=image_id, path=path, labels=labels, objects=objects)


def _label_from_objects(cls: str, objects: list[ObjectBox]) -> int:
    mine = [o for o in objects if o.name == cls]
    if not mine:
        return NEGATIVE
    return POSITIVE if any(not o.difficult for o in mine) else DIFFICULT


def parse_annotation(xml_path: str | os.PathLike) -> list[ObjectBox]:
    """Objects of one VOC annotation file, parsed with defusedxml.

    Raises :class:`DataError` ("<file>: <cause>") for oversized, malformed or hostile XML
    (entity declarations, external references) and for objects without a usable box.
    """
    xml_path = Path(xml_path)
    size = xml_path.stat().st_size
    if size > MAX_XML_BYTES:
        raise DataError(f"{xml_path}: annotation file too large ({size} bytes)")
    try:
        tree = SafeET.parse(str(xml_path))
    except DefusedXmlException as exc:
        raise DataError(f"{xml_path}: hostile XML refused ({type(exc).__name__})") from None
    except ParseError as exc:
        raise DataError(f"{xml_path}: malformed XML ({exc})") from None
    objects = []
    for node in tree.getroot().iter("object"):
        name = (node.findtext("name") or "").strip()
        bb = node.find("bndbox")
        if not name or bb is None:
            raise DataError(f"{xml_path}: object without name or bndbox")
        try:
            box = tuple(float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise DataError(f"{xml_path}: object {name!r} has a non-numeric bndbox") from None
        if not (box[0] <= box[2] and box[1] <= box[3]) or not all(np.isfinite(box)):
            raise DataError(f"{xml_path}: object {name!r} has an inverted or infinite bndbox {box}")
        objects.append(ObjectBox(
            name=name, box=box,
            difficult=_flag(node.findtext("difficult")),
            truncated=_flag(node.findtext("truncated")),
        ))
    return objects


def _flag(text: str | None) -> bool:
    try:
        return int(float((text or "0").strip())) != 0
    except ValueError:
        return False
