"""Proving a Clever-Hans tag: remove it from the images that carry it, paste it onto images that do
not, and measure the class score (dissertation Sections 4.5.3 and 6.2-6.3: the FV "horse" model and the
copyright tag; SPEC §6.4).

Where the tag is
    toyvoc records it in its ``ground_truth.json`` sidecar (``images -> id -> artefacts``, kind
    ``"watermark"``, a VOC box). For other data give a region file (:func:`read_regions`):

    * JSON ``{"<image id>": [[xmin, ymin, xmax, ymax], ...], ...}`` (one box may stand alone);
    * CSV with the header ``image_id,xmin,ymin,xmax,ymax``, one box per row;
    * a folder of masks ``<image id>.png``, the size of the image, non-zero on the tag.

    Boxes are in VOC's convention (1-based, inclusive, as the annotations). A box reaching outside
    its image is clipped to it and counted (``notes`` says how many); one with nothing left inside
    the image is a counted skip.

Removal
    The region, dilated by ``dilate`` pixels, is filled by OpenCV's Telea inpainting
    (``cv2.inpaint``, ``cv2.INPAINT_TELEA``, radius ``radius``) from the pixels around it; all other
    pixels stay as they are. Why dilate: the images are JPEGs, whose 8×8 blocks smear the tag's
    sharp letters a pixel or two beyond the box recorded at drawing time; a ring of that smear left
    behind would still read as the tag's edges. Two pixels cover it for toyvoc's quality-90 JPEGs.

Pasting
    The patch is the pixels of the region's bounding box in one tagged source image (or a patch
    image the user gives). It goes to the same place relative to the bottom-left corner, scaled by the
    ratio of the images' long sides — how toyvoc's generator sizes and places the tag
    (:func:`bowlrp.data.synth.toyvoc._watermark`: the text scales with the long side and sits a few
    pixels from the left and bottom borders). A patch image from a file is pasted as it is, ``margin``
    pixels from the left and bottom borders. What falls outside a smaller image is clipped and counted.
    Targets are the untagged images that do not contain the class. A rectangle cut from a photo brings
    its background along (grass, for a horse image), and that may speak for the class by itself; so
    when the patch is cut from an image, the same rectangle cut after removing the tag from the source
    is pasted too, as a control (``paste_control``): ``paste - paste_control`` is the tag's own share.

Both report per image the class score before and after, and the summary of
:func:`bowlrp.analysis.artefacts.change_summary` (mean change, 95 % t-interval, share of flipped
decisions).
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from ..data.dataset import Sample
from ..data.images import load_image
from ..errors import BowlrpError, DataError
from ..model import Model
from ..progress import progress
from .artefacts import change_summary, class_scores, interval_bars, save_figure
from .regions import box_mask

Box = tuple[float, float, float, float]
SIDECAR = "ground_truth.json"
TAG_KIND = "watermark"
DILATE = 2
RADIUS = 3
MARGIN = 4


# --- where the tag is ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TagRegion:
    """The tag of one image: VOC boxes, or a mask file (non-zero on the tag)."""

    boxes: tuple[Box, ...] = ()
    mask_path: Path | None = None


def sidecar_regions(root: str | Path, kind: str = TAG_KIND) -> dict[str, TagRegion]:
    """``{image id: TagRegion}`` of the images whose ``ground_truth.json`` entry has artefacts of ``kind``."""
    path = Path(root) / SIDECAR
    try:
        images = json.loads(path.read_text(encoding="utf-8"))["images"]
    except FileNotFoundError:
        raise DataError(f"{root}: no {SIDECAR} (only synthetic datasets have one); give the tag boxes with "
                        "--boxes FILE (JSON, CSV or a folder of masks)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable sidecar ({exc})") from None
    out = {}
    for image_id, entry in images.items():
        boxes = tuple(_box(a["box"], path) for a in entry.get("artefacts", ()) if a.get("kind") == kind)
        if boxes:
            out[str(image_id)] = TagRegion(boxes=boxes)
    return out


def read_regions(path: str | Path) -> dict[str, TagRegion]:
    """Tag regions from a user file: JSON, CSV or a folder of PNG masks (see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        masks = sorted(path.glob("*.png"))
        if not masks:
            raise DataError(f"{path}: a folder without tag masks (<image id>.png)")
        return {p.stem: TagRegion(mask_path=p) for p in masks}
    if not path.is_file():
        raise DataError(f"{path}: no such box file or mask folder")
    if path.suffix.lower() == ".json":
        try:
            table = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: unreadable JSON ({exc})") from None
        if not isinstance(table, dict):
            raise DataError(f'{path}: expected {{"<image id>": [[xmin, ymin, xmax, ymax], ...]}}')
        out = {}
        for image_id, boxes in table.items():
            if isinstance(boxes, list) and boxes and not isinstance(boxes[0], list):
                boxes = [boxes]  # a single box
            if not isinstance(boxes, list):
                raise DataError(f"{path}: image {image_id!r}: expected a list of boxes")
            out[str(image_id)] = TagRegion(boxes=tuple(_box(b, path) for b in boxes))
        return out
    if path.suffix.lower() == ".csv":
        out: dict[str, list[Box]] = {}
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{path}: unreadable CSV ({exc})") from None
        needed = {"image_id", "xmin", "ymin", "xmax", "ymax"}
        if not rows or not needed <= set(rows[0]):
            raise DataError(f"{path}: expected a CSV with the header image_id,xmin,ymin,xmax,ymax and one box per row")
        for row in rows:
            out.setdefault(row["image_id"].strip(), []).append(
                _box([row[k] for k in ("xmin", "ymin", "xmax", "ymax")], path))
        return {k: TagRegion(boxes=tuple(v)) for k, v in out.items()}
    raise DataError(f"{path}: tag boxes must be a .json or .csv file or a folder of <image id>.png masks")


def _box(values: Any, where: Path) -> Box:
    try:
        xmin, ymin, xmax, ymax = (float(v) for v in values)
    except (TypeError, ValueError):
        raise DataError(f"{where}: a box must be four numbers [xmin, ymin, xmax, ymax], got {values!r}") from None
    if not all(map(math.isfinite, (xmin, ymin, xmax, ymax))) or xmax < xmin or ymax < ymin:
        raise DataError(f"{where}: box {values!r} is not [xmin, ymin, xmax, ymax] with xmin <= xmax, ymin <= ymax")
    return xmin, ymin, xmax, ymax


def clip_box(box: Sequence[float], shape: tuple[int, int]) -> tuple[Box | None, bool]:
    """``box`` (VOC, 1-based inclusive) clipped to an image of ``shape`` ``(H, W)``.

    Returns the clipped box (None when no pixel of it is inside the image) and whether clipping
    changed it.
    """
    h, w = shape
    xmin, ymin, xmax, ymax = (float(v) for v in box)
    clipped = (max(xmin, 1.0), max(ymin, 1.0), min(xmax, float(w)), min(ymax, float(h)))
    changed = clipped != (xmin, ymin, xmax, ymax)
    return (clipped if box_mask(shape, [clipped]).any() else None), changed


@dataclass
class RegionMask:
    """A tag region as pixels of one image: the mask and what clipping did."""

    mask: np.ndarray           # (H, W) bool
    n_clipped: int = 0         # boxes that reached outside the image and were cut to it
    n_vanished: int = 0        # boxes entirely outside it (left out)


def region_mask(region: TagRegion, shape: tuple[int, int]) -> RegionMask:
    """The ``(H, W)`` boolean mask of ``region`` on an image of ``shape``; boxes clipped
    (:func:`clip_box`). A mask file of another size is a :class:`DataError`."""
    if region.mask_path is not None:
        mask = cv2.imread(str(region.mask_path), cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise DataError(f"{region.mask_path}: unreadable mask")
        if mask.shape != tuple(shape):
            raise DataError(f"{region.mask_path}: mask is {mask.shape[1]}x{mask.shape[0]}, the image "
                            f"{shape[1]}x{shape[0]}")
        return RegionMask(mask > 0)
    kept, out = [], RegionMask(np.zeros(shape, bool))
    for box in region.boxes:
        clipped, changed = clip_box(box, shape)
        if clipped is None:
            out.n_vanished += 1
        else:
            out.n_clipped += changed
            kept.append(clipped)
    out.mask = box_mask(shape, kept)
    return out


# --- removing and pasting ------------------------------------------------------------------------------

def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(image, np.float64) * 255.0), 0, 255).astype(np.uint8)


def inpaint_mask(mask: np.ndarray, dilate: int = DILATE) -> np.ndarray:
    """``mask`` grown by ``dilate`` pixels (8-neighbourhood, so a box grows by ``dilate`` on every side)."""
    mask = np.asarray(mask, bool)
    if dilate <= 0:
        return mask
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=int(dilate)) > 0


def remove_tag(image: np.ndarray, mask: np.ndarray, dilate: int = DILATE, radius: float = RADIUS) -> np.ndarray:
    """``image`` ``(H, W, 3)`` in [0, 1] with the pixels of ``mask`` (grown by ``dilate``) inpainted
    (Telea); the other pixels are returned unchanged (float32)."""
    grown = inpaint_mask(mask, dilate)
    out = np.array(image, dtype=np.float32, copy=True)
    if not grown.any():
        return out
    filled = cv2.inpaint(to_uint8(image), grown.astype(np.uint8), float(radius), cv2.INPAINT_TELEA)
    out[grown] = filled[grown].astype(np.float32) / 255.0
    return out


@dataclass(frozen=True)
class Patch:
    """A tag patch and where it goes: ``left`` pixels from the left border and ``bottom`` pixels above
    the bottom border of an image whose long side is ``long_side`` (None: paste at native size)."""

    pixels: np.ndarray         # (h, w, 3) float32 in [0, 1]
    left: float
    bottom: float
    long_side: int | None
    source: str = ""


def cut_patch(image: np.ndarray, mask: np.ndarray, source: str = "") -> Patch:
    """The pixels of ``mask``'s bounding box in ``image``, placed as they are in it."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        raise BowlrpError(f"{source or 'the source image'}: empty tag region, nothing to cut")
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    h, w = mask.shape
    return Patch(np.asarray(image[y0:y1, x0:x1], np.float32), float(x0), float(h - y1), max(h, w), source)


def file_patch(path: str | Path, margin: int = MARGIN) -> Patch:
    """A patch image from a file, pasted as it is ``margin`` pixels from the left and bottom borders."""
    return Patch(load_image(path), float(margin), float(margin), None, str(path))


@dataclass
class Pasted:
    image: np.ndarray
    clipped: bool
    empty: bool


def paste_patch(image: np.ndarray, patch: Patch) -> Pasted:
    """``image`` with ``patch`` pasted at its place, scaled by long side / ``patch.long_side``
    (bilinear; area averaging when shrinking); what falls outside the image is clipped."""
    h, w = image.shape[:2]
    scale = 1.0 if patch.long_side is None else max(h, w) / patch.long_side
    ph, pw = patch.pixels.shape[:2]
    sh, sw = max(1, int(round(ph * scale))), max(1, int(round(pw * scale)))
    pixels = patch.pixels
    if (sh, sw) != (ph, pw):
        pixels = cv2.resize(pixels, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = h - int(round(patch.bottom * scale)) - sh, int(round(patch.left * scale))
    y0, y1, x0, x1 = max(top, 0), min(top + sh, h), max(left, 0), min(left + sw, w)
    out = np.array(image, dtype=np.float32, copy=True)
    if y1 <= y0 or x1 <= x0:
        return Pasted(out, True, True)
    out[y0:y1, x0:x1] = pixels[y0 - top:y1 - top, x0 - left:x1 - left]
    return Pasted(out, (y0, y1, x0, x1) != (top, top + sh, left, left + sw), False)


# --- the experiment ------------------------------------------------------------------------------------

@dataclass
class _Ledger:
    notes: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    n_clipped: int = 0

    def skip(self, image_id: str, reason: str) -> None:
        self.skipped.append({"id": image_id, "reason": reason})


def _scored_pairs(model: Model, column: int, items: list[tuple[str, Any]], edit, n_variants: int, desc: str,
                  show: bool, ledger: _Ledger, batch: int = 32) -> list[list[dict]]:
    """Per variant, per image ``{"id", "score_before", "score_after", "delta", "flipped"}``:
    ``edit(image_id, image, extra)`` gives ``n_variants`` edited images, or None (a skip it has recorded).
    Originals and edits are scored together, ``batch`` images at a time."""
    rows: list[list[dict]] = [[] for _ in range(n_variants)]
    with progress(len(items), desc, show) as bar:
        for start in range(0, len(items), batch):
            ids, before, after = [], [], [[] for _ in range(n_variants)]
            for image_id, (path, extra) in items[start:start + batch]:
                try:
                    image = load_image(path)
                    edited = edit(image_id, image, extra)
                except BowlrpError as exc:
                    ledger.skip(image_id, str(exc))
                    continue
                if edited is not None:
                    ids.append(image_id)
                    before.append(image)
                    for v in range(n_variants):
                        after[v].append(edited[v])
            scores = class_scores(model, before + [x for variant in after for x in variant], column)
            scores = scores.reshape(n_variants + 1, len(ids))
            for v in range(n_variants):
                for i, image_id in enumerate(ids):
                    b, a = float(scores[0, i]), float(scores[v + 1, i])
                    rows[v].append({"id": image_id, "score_before": b, "score_after": a, "delta": a - b,
                                    "flipped": bool((b > 0) != (a > 0))})
            bar.update(len(items[start:start + batch]))
    return rows


def _summary(rows: list[dict]) -> dict[str, Any]:
    before = np.array([r["score_before"] for r in rows])
    after = np.array([r["score_after"] for r in rows])
    return {**change_summary(before, after), "per_image": rows}


def watermark_experiment(model: Model, samples: Sequence[Sample], contains: np.ndarray, class_name: str,
                         regions: dict[str, TagRegion], *, patch: Patch | None = None,
                         patch_from: str | None = None, all_samples: Sequence[Sample] | None = None,
                         n_images: int | None = None, dilate: int = DILATE, radius: float = RADIUS,
                         show_progress: bool = True) -> dict[str, Any]:
    """Remove the tag from the tagged ``samples`` and paste it onto the untagged ones without the class.

    Parameters
    ----------
    samples : the split's images; ``contains`` ``(n,)`` bool: which of them contain ``class_name``.
    regions : ``{image id: TagRegion}`` (:func:`sidecar_regions` or :func:`read_regions`).
    patch : the patch to paste; default: cut from ``patch_from`` (an image id with a region, looked up in
        ``all_samples``, default ``samples``), else from the first tagged sample that contains the class
        (else the first tagged sample).
    n_images : at most this many images for each of removal and pasting (the first in split order).

    Returns ``{"remove": summary, "remove_with_class": summary, "paste": summary, "paste_control": summary
    (only for a patch cut from an image, see the module docstring), "settings", "notes", "skipped"}``; a summary is :func:`~bowlrp.analysis.artefacts.change_summary` plus ``per_image``.
    """
    column = model.class_index(class_name)
    ledger = _Ledger()
    contains = np.asarray(contains, bool)
    tagged = [(s, c) for s, c in zip(samples, contains) if s.image_id in regions]
    targets = [s for s, c in zip(samples, contains) if s.image_id not in regions and not c]
    if not tagged:
        raise BowlrpError(f"no image of the split has a tag region ({len(regions)} region(s) given for other "
                          "images); check --split and the box file's image ids")
    with_class = {s.image_id for s, c in tagged if c}
    tagged = tagged[:n_images] if n_images else tagged
    targets = targets[:n_images] if n_images else targets

    control = None
    if patch is None:
        patch, control = _source_patch(regions, patch_from, all_samples or samples, [s for s, _ in tagged],
                                       with_class, ledger, dilate, radius)

    def remove(image_id: str, image: np.ndarray, region: TagRegion) -> tuple[np.ndarray] | None:
        found = region_mask(region, image.shape[:2])
        ledger.n_clipped += found.n_clipped
        if not found.mask.any():
            ledger.skip(image_id, "the tag box lies outside the image")
            return None
        return (remove_tag(image, found.mask, dilate, radius),)

    patches = (patch,) if control is None else (patch, control)

    def paste(image_id: str, image: np.ndarray, _: Any) -> tuple[np.ndarray, ...] | None:
        pasted = [paste_patch(image, p) for p in patches]
        if pasted[0].empty:
            ledger.skip(image_id, "the pasted patch falls outside the image")
            return None
        ledger.n_clipped += pasted[0].clipped
        return tuple(p.image for p in pasted)

    [removed] = _scored_pairs(model, column, [(s.image_id, (s.path, regions[s.image_id])) for s, _ in tagged],
                              remove, 1, "removing the tag", show_progress, ledger)
    n_clipped_remove, ledger.n_clipped = ledger.n_clipped, 0
    pasted = _scored_pairs(model, column, [(s.image_id, (s.path, None)) for s in targets], paste, len(patches),
                           "pasting the tag", show_progress, ledger)
    for row in removed:
        row["contains_class"] = row["id"] in with_class
    if n_clipped_remove:
        ledger.notes.append(f"{n_clipped_remove} tag box(es) reached outside their image and were clipped to it")
    if ledger.n_clipped:
        ledger.notes.append(f"the pasted patch reached outside {ledger.n_clipped} image(s) and was clipped")
    if ledger.skipped:
        ledger.notes.append(f"{len(ledger.skipped)} image(s) skipped (see 'skipped')")
    return {"class": class_name, "model": str(model.source) if model.source else None, "variant": model.variant,
            "remove": _summary(removed), "remove_with_class": _summary([r for r in removed if r["contains_class"]]),
            "paste": _summary(pasted[0]),
            **({"paste_control": _summary(pasted[1])} if control is not None else {}),
            "settings": {"inpainting": "telea", "radius": radius, "dilate": dilate, "patch_source": patch.source,
                         "patch_size": list(patch.pixels.shape[:2]), "n_images": n_images},
            "notes": ledger.notes, "skipped": ledger.skipped}


def _source_patch(regions: dict[str, TagRegion], patch_from: str | None, pool: Sequence[Sample],
                  tagged: Sequence[Sample], with_class: set[str], ledger: _Ledger, dilate: int,
                  radius: float) -> tuple[Patch, Patch]:
    """The patch under the tag of the source image, and the same patch cut after removing the tag (the
    control: what pasting the background of the patch alone does)."""
    if patch_from is not None:
        if patch_from not in regions:
            raise BowlrpError(f"--patch-from {patch_from}: that image has no tag region")
        found = [s for s in pool if s.image_id == patch_from]
        if not found:
            raise BowlrpError(f"--patch-from {patch_from}: no such image in the dataset")
        candidates = found
    else:
        candidates = sorted(tagged, key=lambda s: s.image_id not in with_class)  # the class' own first
    for sample in candidates:
        image = load_image(sample.path)
        found_mask = region_mask(regions[sample.image_id], image.shape[:2])
        if found_mask.mask.any():
            clean = remove_tag(image, found_mask.mask, dilate, radius)
            return (cut_patch(image, found_mask.mask, sample.image_id),
                    cut_patch(clean, found_mask.mask, f"{sample.image_id} (tag removed)"))
        ledger.notes.append(f"patch source {sample.image_id}: its tag box lies outside the image; not used")
    raise BowlrpError("no tagged image has a tag region inside it to cut the patch from")


def plot_watermark(result: dict[str, Any], out: str | Path) -> None:
    """Bars of the mean class score change for removal and pasting with their 95 % intervals, and the
    share of flipped decisions (PNG, atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = {"remove tag\n(tagged images)": result["remove"],
             "paste tag\n(images without the class)": result["paste"]}
    if "paste_control" in result:
        parts["paste patch, tag removed\n(control)"] = result["paste_control"]
    labels = [f"{name}\nn={s['n']}, flipped {s['flip_share']:.0%}" if s["n"] else f"{name}\nn=0"
              for name, s in parts.items()]
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    interval_bars(ax, labels, [(result.get("variant") or "model", dict(zip(labels, parts.values())).get)])
    ax.set_ylabel(f"mean change of f({result['class']}) ± 95 % CI")
    ax.set_title(f"copyright tag and '{result['class']}' ({result.get('variant', '')})")
    fig.tight_layout()
    save_figure(fig, out)
