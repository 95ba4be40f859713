"""``toyvoc``: a small Pascal-VOC-format multi-label benchmark with planted artefacts.

Every image has a *primary* class drawn from :data:`PRIMARY_WEIGHTS` (exact quotas, shuffled)
and a scene typical for it (:mod:`.recipes`), plus co-occurring classes: riders on horses,
bicycles and motorbikes, people in boats and on station platforms, dogs with sheep, cars with
buses, chairs around dining tables with bottles on them, sofas with people or cats, a tv on a
cabinet, potted plants in the corners. All 20 VOC classes occur, each as the primary class of at
least two images at every preset size, and the split is stratified by primary class, so every
class has positives in both trainval and test. Objects are procedural silhouettes
(:mod:`.drawing`, :mod:`.wheeled`, :mod:`.furniture`) that vary in shape, size, pose (flip,
rotation, legs) and colour and position; backgrounds use real textures (:mod:`.textures`) in
sky, water, meadow, street, railway and room scenes (:mod:`.scenes`). Unlabelled clutter and
props, truncation at the border and partial occlusion make it harder.

Planted artefacts (``ground_truth.json`` -> ``images`` -> id -> ``artefacts``):

- ``watermark``: the text "(c) PHOTO" in the bottom-left corner on exactly
  ``round(0.2 * n)`` of the n horse images and on ``floor(0.005 * m)`` of the m other images.
  The tagged horse images stand for the riding-themed repository the VOC tag came from: their
  horses are ridden and seen from further away (:data:`.recipes.TAGGED_HORSE_SCALE`), so the
  tag is their clearest horse cue, as it was for the thesis' FV model;
- ``water``: every boat floats on water filling the image below the horizon (also recorded for
  water without boats: beaches, birds over a lake);
- ``sky``: aeroplanes fly in near-uniform sky reaching the top and bottom borders.

The ``difficulty`` knob (default 0.5, in [0, 1]) scales together: unlabelled clutter (Poisson
mean ``4 * difficulty`` items), the smallest object size (a fraction ``0.55 - 0.4 * difficulty``
of the image side for the main object), colour jitter (std ``0.03 + 0.12 * difficulty``), the
chance that an object is cut by the border (``0.3 * difficulty``) and the chance of a confusable
extra animal or vehicle (``0.3 * difficulty``).

Layout: ``JPEGImages/<id>.jpg``, ``Annotations/<id>.xml``, ``ImageSets/Main/`` (train, val,
trainval, test and ``<class>_<split>.txt``), ``masks/<id>.png`` (instance ids: 0 background,
k = k-th object of the XML, as visible after occlusion) and ``ground_truth.json``.
trainval/test is a random half/half split stratified by (primary class, watermark), so each
class's primary images and the tagged horses are halved between the splits (an odd one out goes
to either side at random); train/val are halves of trainval, stratified the same way.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ...persistence import atomic_write_bytes, atomic_write_json
from ..dataset import VOC_CLASSES
from .common import prepare_output
from .recipes import Composer, compose, scene_for
from .scenes import SCENES, clutter
from .vocwriter import mask_box, voc_xml, write_image_sets, write_jpeg, write_png

#: (number of images, long side px, short/long ratio range)
SIZES = {"small": (80, 160, (0.7, 0.8)), "default": (800, 240, (0.66, 0.8)), "large": (2000, 500, (0.75, 0.75))}
#: relative share of images per primary class. Horse is weighted up so that enough tagged horses
#: exist to learn the tag from and to find them again among the test maps (default size: 125 horse
#: images, 25 of them tagged, 12-13 in each split; 3 tagged others). Person and chair are lower, as
#: they co-occur in many other classes' images.
PRIMARY_WEIGHTS = {"aeroplane": 1.0, "bicycle": 1.0, "bird": 1.0, "boat": 1.0, "bottle": 0.9, "bus": 0.8,
                   "car": 0.9, "cat": 1.0, "chair": 0.8, "cow": 0.9, "diningtable": 0.9, "dog": 0.9, "horse": 3.2,
                   "motorbike": 1.0, "person": 0.6, "pottedplant": 0.9, "sheep": 0.9, "sofa": 0.9, "train": 1.0,
                   "tvmonitor": 0.9}
WATERMARK_TEXT = "(c) PHOTO"
WATERMARK_HORSE_RATE = 0.2
WATERMARK_OTHER_RATE = 0.005
#: the text scale of OpenCV's Hershey simplex font is the long side over this (at least 0.4)
WATERMARK_SCALE_DIVISOR = 360
DEFAULT_DIFFICULTY = 0.5


def _watermark(rng, canvas: np.ndarray) -> list[int]:
    """Stamp the copyright text in the bottom-left corner of the uint8 canvas; return its VOC box.

    White letters with a dark rim, the way photo agencies mark pictures: the same tag in the same
    corner on every marked image, as the VOC horse images from one riding-themed repository carry it
    (dissertation Section 4.5.3, Fig. 4.5). Letters about 1/16 of the long side tall (box ~5 % of the
    image area): at 3/4 of that size the FV model of the default toyvoc (15 marked horses) barely
    used the tag, its relevance density in the box was ~1.5x the image average.
    """
    h, w = canvas.shape[:2]
    scale = max(0.4, max(h, w) / WATERMARK_SCALE_DIVISOR) * rng.uniform(0.95, 1.1)
    thickness = max(1, int(round(2 * scale)))
    font = cv2.FONT_HERSHEY_SIMPLEX
    base = cv2.getTextSize(WATERMARK_TEXT, font, scale, thickness)[1]
    x = int(rng.integers(3, 7))
    y = h - int(rng.integers(3, 7)) - base
    rim = np.zeros((h, w), np.uint8)
    cv2.putText(rim, WATERMARK_TEXT, (x, y), font, scale, 255, thickness + 2, cv2.LINE_AA)
    ink = np.zeros((h, w), np.uint8)
    cv2.putText(ink, WATERMARK_TEXT, (x, y), font, scale, 255, thickness, cv2.LINE_AA)
    for mask, colour in ((rim, 30.0), (ink, 245.0)):
        alpha = (mask.astype(np.float32) / 255.0 * rng.uniform(0.85, 1.0))[..., None]
        canvas[...] = np.clip(canvas * (1 - alpha) + colour * alpha + 0.5, 0, 255).astype(np.uint8)
    return list(mask_box(rim > 0))


def render_image(seed: int, index: int, primary: str, size: tuple[int, int], watermark: bool,
                 difficulty: float) -> tuple[np.ndarray, np.ndarray, list[dict], dict]:
    """One toyvoc image.

    Returns (uint8 (H, W, 3) RGB, uint8 (H, W) instance map, objects, ground-truth entry); the
    random stream depends only on (seed, index), so images can be made in any order.
    """
    rng = np.random.default_rng([seed, index])
    w, h = size
    base = np.zeros((h, w, 3), np.float64)
    kind = scene_for(rng, primary)
    scene = SCENES[kind](rng, base, 0.03 + 0.12 * difficulty)
    canvas = np.clip(np.rint(base * 255), 0, 255).astype(np.uint8)
    comp = Composer(rng, canvas, scene, difficulty)
    clutter(rng, canvas, scene, int(rng.poisson(2 * difficulty)), 0.2 * max(h, w))  # behind the objects
    compose(comp, primary, tagged=watermark)
    before = canvas.copy()
    clutter(rng, canvas, scene, int(rng.poisson(2 * difficulty)), 0.2 * max(h, w))  # may occlude them
    comp.instance[(canvas != before).any(axis=2)] = 0  # what the clutter covers is no object's any more
    artefacts = [dict(r) for r in scene.regions]
    if watermark:
        artefacts.append({"kind": "watermark", "box": _watermark(rng, canvas)})
    noisy = canvas.astype(np.int16) + rng.normal(0, 2.0, canvas.shape).round().astype(np.int16)
    pixels = np.clip(noisy, 0, 255).astype(np.uint8)
    objects = [{k: o[k] for k in ("name", "box", "pose", "truncated", "difficult")} for o in comp.objects]
    entry = {"scene": kind, "primary": primary, "size": [w, h], "artefacts": artefacts,
             "objects": [{"name": o["name"], "box": list(o["box"]), "truncated": o["truncated"]} for o in objects]}
    return pixels, comp.instance, objects, entry


def primary_counts(n: int) -> dict[str, int]:
    """Exact number of images per primary class for ``n`` images: the largest-remainder rounding of
    ``n`` x :data:`PRIMARY_WEIGHTS` (ties to the class earlier in the alphabet)."""
    names = sorted(PRIMARY_WEIGHTS)
    quota = np.array([PRIMARY_WEIGHTS[k] for k in names]) / sum(PRIMARY_WEIGHTS.values()) * n
    counts = np.floor(quota).astype(int)
    counts[np.argsort(-(quota - counts), kind="stable")[: n - counts.sum()]] += 1
    return dict(zip(names, counts.tolist()))


def stratified_halves(rng, items: list[int], strata: list) -> tuple[list[int], list[int]]:
    """Split ``items`` into (first, second) with ``len(first) == len(items) // 2``, halving every
    stratum (``strata[i]`` is item i's key): each stratum gives floor(k / 2) items to the first
    half, and half of the strata with an odd count, drawn at random, give it one more."""
    groups: dict = {}
    for i in items:
        groups.setdefault(strata[i], []).append(i)
    first, second, odd = [], [], []
    for key in sorted(groups):
        members = [int(v) for v in rng.permutation(groups[key])]
        k = len(members) // 2
        first += members[:k]
        second += members[k:2 * k]
        if len(members) % 2:
            odd.append(members[-1])
    extra = set(rng.permutation(len(odd))[: len(odd) // 2].tolist()) if odd else set()
    for j, i in enumerate(odd):
        (first if j in extra else second).append(i)
    return sorted(first), sorted(second)


def generate_toyvoc(
    out: str | os.PathLike,
    seed: int = 0,
    size: str = "default",
    difficulty: float = DEFAULT_DIFFICULTY,
    n_images: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the toyvoc dataset to ``out`` (its root) and return the root.

    Parameters
    ----------
    size : {"small", "default", "large"}
        80 images of 160 px long side; 800 of 240 px; 2000 of 500 x 375 px. Landscape with
        probability 3/4, else portrait.
    difficulty : float in [0, 1]
        Clutter, scale range, colour variability, truncation, confusers (see module docstring).
    n_images : int, optional
        Override the preset's image count; at least 40 (two images per class), so that every
        class has positives in both splits.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; one of {', '.join(SIZES)}")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    n, long_side, ratio = SIZES[size]
    n = n if n_images is None else int(n_images)
    if min(primary_counts(n).values()) < 2:
        raise ValueError(f"n_images={n} is too few: every one of the {len(PRIMARY_WEIGHTS)} classes needs two images")
    root = prepare_output(out, overwrite, ["JPEGImages", "Annotations", "ImageSets", "masks"])
    plan_rng = np.random.default_rng([seed, 2**31 - 1])  # dataset-level plan, separate from images
    counts = primary_counts(n)
    primaries = list(plan_rng.permutation(np.repeat(list(counts), list(counts.values()))))
    horse_idx = [i for i, p in enumerate(primaries) if p == "horse"]
    other_idx = [i for i, p in enumerate(primaries) if p != "horse"]
    marked = set(plan_rng.permutation(horse_idx)[: round(WATERMARK_HORSE_RATE * len(horse_idx))].tolist())
    marked |= set(plan_rng.permutation(other_idx)[: int(WATERMARK_OTHER_RATE * len(other_idx))].tolist())
    ids = [f"{i + 1:06d}" for i in range(n)]
    strata = [(str(p), i in marked) for i, p in enumerate(primaries)]
    test_pos, trainval_pos = stratified_halves(plan_rng, list(range(n)), strata)
    val_pos, train_pos = stratified_halves(plan_rng, trainval_pos, strata)
    test, val, train = (sorted(ids[i] for i in pos) for pos in (test_pos, val_pos, train_pos))
    splits = {"train": train, "val": val, "trainval": sorted(train + val), "test": test}
    gt = {"generator": "toyvoc", "seed": seed, "size": size, "difficulty": difficulty,
          "box_convention": "voc-1based-inclusive", "watermark_text": WATERMARK_TEXT, "images": {}}
    present: dict[str, set[str]] = {}
    for i, image_id in enumerate(ids):
        landscape = plan_rng.random() < 0.75
        short = int(round(long_side * plan_rng.uniform(*ratio)))
        wh = (long_side, short) if landscape else (short, long_side)
        pixels, instance, objects, entry = render_image(seed, i, str(primaries[i]), wh, i in marked, difficulty)
        write_jpeg(root / "JPEGImages" / f"{image_id}.jpg", pixels)
        write_png(root / "masks" / f"{image_id}.png", instance)
        atomic_write_bytes(root / "Annotations" / f"{image_id}.xml",
                           voc_xml("toyvoc", f"{image_id}.jpg", wh[0], wh[1], 3, objects))
        entry["mask"] = f"masks/{image_id}.png"
        gt["images"][image_id] = entry
        for o in objects:
            present.setdefault(o["name"], set()).add(image_id)
    occurring = [c for c in VOC_CLASSES if c in present]
    labels = {c: {i: (1 if i in present[c] else -1) for i in ids} for c in occurring}
    write_image_sets(root / "ImageSets" / "Main", splits, labels)
    gt["classes_present"] = occurring
    atomic_write_json(root / "ground_truth.json", gt)
    return root
