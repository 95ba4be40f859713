"""``toyvoc``: a small Pascal-VOC-format multi-label benchmark with planted artefacts.

Every image has a *primary* class drawn from :data:`PRIMARY_WEIGHTS` (exact quotas, shuffled)
and a scene typical for it, plus co-occurring classes (riders on horses, people in boats, dogs
with sheep, cars with buses, ...). Objects are procedural silhouettes (:mod:`.drawing`) that vary
in shape, size, pose (flip, rotation, legs), colour and position; backgrounds use real textures
(:mod:`.textures`). Unlabelled clutter, truncation at the border and partial occlusion make it
harder. The dataset's class list is the 20 VOC classes; per-class files are written for the ten
that occur (aeroplane, bird, boat, bus, car, cow, dog, horse, person, sheep).

Planted artefacts (``ground_truth.json`` -> ``images`` -> id -> ``artefacts``):

- ``watermark``: the text "(c) PHOTO" in the bottom-left corner on exactly
  ``round(0.2 * n)`` of the n horse images and on ``floor(0.015 * m)`` of the m other images;
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
trainval/test is a random half/half split, train/val halves of trainval.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ...persistence import atomic_write_bytes, atomic_write_json
from ..dataset import VOC_CLASSES
from . import drawing as dr
from .common import prepare_output
from .scenes import SCENES, Scene, clutter
from .vocwriter import mask_box, voc_xml, write_image_sets, write_jpeg, write_png

#: (number of images, long side px, short/long ratio range)
SIZES = {"small": (60, 160, (0.7, 0.8)), "default": (600, 240, (0.66, 0.8)), "large": (2000, 500, (0.75, 0.75))}
PRIMARY_WEIGHTS = {"aeroplane": 1.0, "bird": 1.0, "boat": 1.0, "bus": 0.8, "car": 1.0, "cow": 1.0,
                   "dog": 0.9, "horse": 1.2, "person": 0.8, "sheep": 1.0}
WATERMARK_TEXT = "(c) PHOTO"
WATERMARK_HORSE_RATE = 0.2
WATERMARK_OTHER_RATE = 0.015
#: the text scale of OpenCV's Hershey simplex font is the long side over this (at least 0.4)
WATERMARK_SCALE_DIVISOR = 360
DEFAULT_DIFFICULTY = 0.5


class _Composer:
    """Places objects into one image, keeping their masks for boxes and occlusion."""

    def __init__(self, rng, canvas: np.ndarray, scene: Scene, difficulty: float):
        self.rng, self.canvas, self.scene, self.d = rng, canvas, scene, difficulty
        self.h, self.w = canvas.shape[:2]
        self.cvar = 0.03 + 0.12 * difficulty
        self.objects: list[dict] = []
        self.instance = np.zeros((self.h, self.w), np.uint8)

    def size(self, lo_scale=1.0, hi=0.8) -> float:
        """A main-object size as a fraction of the image's long side."""
        lo = (0.55 - 0.4 * self.d) * lo_scale
        return float(self.rng.uniform(lo, max(lo + 0.02, hi)))

    def model(self, name, **kw) -> dr.Model:
        return dr.MAKERS[name](self.rng, self.cvar, **kw)

    def ground_object(self, name, length_frac, model=None, near=None, tries=12) -> dr.Placed | None:
        """Put an object standing on the ground; its length (x extent) ``length_frac`` of the long side.

        Objects further up (nearer the horizon) are drawn smaller. ``near``: x of a partner object.
        """
        model = model or self.model(name)
        x0, y0, x1, y1 = model.extent()
        g0, g1 = self.scene.ground
        for _ in range(tries):
            foot_y = float(self.rng.uniform(g0, g1 + 1))
            depth = (foot_y - self.scene.horizon) / max(1.0, self.h - self.scene.horizon)
            length = length_frac * max(self.h, self.w) * (0.65 + 0.35 * np.clip(depth, 0, 1))
            height = length * (y1 - y0) / max(x1 - x0, 1e-6)
            if height > 0.95 * foot_y:  # keep the top inside: scale down rather than lose the head
                height = 0.95 * foot_y
                length = height * (x1 - x0) / (y1 - y0)
            half = length / 2
            truncate = self.rng.random() < 0.3 * self.d
            if near is not None:
                cx = near + self.rng.choice([-1, 1]) * self.rng.uniform(0.5, 1.0) * length
            elif truncate or length >= self.w:
                cx = self.rng.uniform(0, self.w)
            else:
                cx = self.rng.uniform(half, self.w - half)
            placed = dr.place(name, model, height, (cx, foot_y), flip=bool(self.rng.random() < 0.5),
                              angle=float(self.rng.normal(0, 0.03)))
            if self._free(placed):
                return self._paint(placed)
        return None

    def flying_object(self, name, length_frac, model=None, y_range=(0.1, 0.9), angle_sd=0.15) -> dr.Placed | None:
        model = model or self.model(name)
        x0, y0, x1, y1 = model.extent()
        for _ in range(12):
            length = length_frac * max(self.h, self.w)
            height = length * (y1 - y0) / max(x1 - x0, 1e-6)
            cx = self.rng.uniform(min(length / 2, self.w / 2), max(self.w - length / 2, self.w / 2))
            cy = self.rng.uniform(*y_range) * self.h
            placed = dr.place(name, model, height, (cx, cy + height / 2), flip=bool(self.rng.random() < 0.5),
                              angle=float(self.rng.normal(0, angle_sd)))
            if self._free(placed):
                return self._paint(placed)
        return None

    def attach(self, name, model, height_px, at, anchor, flip=False) -> dr.Placed:
        """Put ``model`` with its ``anchor`` point at pixel ``at`` (riders, sailors); overlap allowed."""
        return self._paint(dr.place(name, model, height_px, tuple(at), flip=flip, anchor=anchor))

    def _free(self, placed: dr.Placed) -> bool:
        x0, y0, x1, y1 = placed.extent()
        for obj in self.objects:
            a0, b0, a1, b1 = obj["extent"]
            inter = max(0.0, min(x1, a1) - max(x0, a0)) * max(0.0, min(y1, b1) - max(y0, b0))
            if inter > 0.3 * min((x1 - x0) * (y1 - y0), (a1 - a0) * (b1 - b0)):
                return False
        return True

    def _paint(self, placed: dr.Placed) -> dr.Placed:
        mask = dr.paint(self.canvas, placed)
        box = mask_box(mask)
        if box is None:  # entirely outside the image
            return placed
        x0, y0, x1, y1 = placed.extent()
        self.objects.append({
            "name": placed.name, "box": box, "pose": placed.pose, "difficult": False,
            "truncated": bool(x0 < 0 or y0 < 0 or x1 > self.w or y1 > self.h), "extent": (x0, y0, x1, y1),
        })
        self.instance[mask] = len(self.objects)
        return placed


# -- per-class recipes ----------------------------------------------------------------------
def _extra_people(c: _Composer, p: float, most: int = 2, frac=(0.45, 0.7)) -> None:
    for _ in range(most):
        if c.rng.random() < p:
            c.ground_object("person", c.rng.uniform(*frac) * 0.3, model=c.model("person"))


def _compose(c: _Composer, primary: str) -> None:
    rng = c.rng
    confuse = 0.3 * c.d
    if primary == "aeroplane":
        for k in range(1 if rng.random() < 0.85 else 2):
            c.flying_object("aeroplane", c.size(hi=0.95) * (0.6 if k else 1.0), y_range=(0.25, 0.75), angle_sd=0.2)
        if rng.random() < 0.1:
            c.flying_object("bird", rng.uniform(0.08, 0.15))
    elif primary == "bird":
        if c.scene.kind == "birds":
            for _ in range(int(rng.integers(1, 4))):
                c.flying_object("bird", c.size(0.5, 0.45), y_range=(0.1, 0.55))
        else:
            for _ in range(int(rng.integers(1, 3))):
                c.ground_object("bird", c.size(0.5, 0.35), model=c.model("bird", flying=False))
            if rng.random() < confuse:
                c.ground_object("sheep", c.size(0.6, 0.45))
    elif primary == "boat":
        for k in range(int(rng.integers(1, 3))):
            boat = c.ground_object("boat", c.size(1.3, hi=0.9) * (0.6 if k else 1.0))
            if boat is not None and rng.random() < 0.35:
                x0, y0, x1, y1 = boat.extent()
                c.attach("person", c.model("person", pose="half"), (x1 - x0) * 0.45, boat.anchors["deck"], "hip")
        if rng.random() < 0.15:
            c.flying_object("bird", rng.uniform(0.06, 0.12), y_range=(0.05, 0.25))
    elif primary == "horse":
        for k in range(1 if rng.random() < 0.75 else 2):
            horse = c.ground_object("horse", c.size(hi=0.8) * (0.75 if k else 1.0))
            if horse is not None and rng.random() < 0.4:
                x0, y0, x1, y1 = horse.extent()
                c.attach("person", c.model("person", pose="sitting"), (y1 - y0) * 0.75, horse.anchors["saddle"],
                         "hip")
        _extra_people(c, 0.2, 1)
        if rng.random() < 0.1:
            c.ground_object("dog", c.size(0.5, 0.3))
        if rng.random() < confuse:
            c.ground_object("cow", c.size(0.7, 0.5))
    elif primary == "cow":
        for k in range(int(rng.integers(1, 4))):
            c.ground_object("cow", c.size(0.8, 0.7) * (0.7 if k else 1.0))
        _extra_people(c, 0.15, 1)
        if rng.random() < confuse:
            c.ground_object("sheep", c.size(0.6, 0.45))
    elif primary == "sheep":
        for k in range(int(rng.integers(1, 6))):
            c.ground_object("sheep", c.size(0.6, 0.55) * (0.75 if k else 1.0))
        if rng.random() < 0.2:
            c.ground_object("dog", c.size(0.5, 0.35))
        _extra_people(c, 0.15, 1)
    elif primary == "dog":
        c.ground_object("dog", c.size(hi=0.7))
        _extra_people(c, 0.5, 2)
        if c.scene.kind == "field" and rng.random() < confuse:
            c.ground_object("sheep", c.size(0.6, 0.45))
    elif primary == "car":
        for k in range(int(rng.integers(1, 4))):
            c.ground_object("car", c.size(hi=0.8) * (0.7 if k else 1.0))
        _extra_people(c, 0.4, 2)
        if rng.random() < 0.15 + confuse / 2:
            c.ground_object("bus", c.size(0.8, 0.7))
    elif primary == "bus":
        c.ground_object("bus", c.size(hi=0.95))
        if rng.random() < 0.4:
            c.ground_object("car", c.size(0.6, 0.5))
        _extra_people(c, 0.4, 2)
    elif primary == "person":
        for k in range(int(rng.integers(1, 4))):
            c.ground_object("person", c.size(0.4, 0.35) * (0.8 if k else 1.0), model=c.model("person"))
        if c.scene.kind == "indoor" and rng.random() < 0.2:
            c.ground_object("dog", c.size(0.5, 0.35))
    else:
        raise ValueError(primary)


def _scene_for(rng, primary: str) -> str:
    choices = {
        "aeroplane": ["sky"], "boat": ["water"], "horse": ["field"], "cow": ["field"], "sheep": ["field"],
        "bird": ["birds", "birds", "field"], "car": ["street"], "bus": ["street"],
        "dog": ["field", "field", "indoor", "street"], "person": ["indoor", "indoor", "street", "beach", "field"],
    }[primary]
    return choices[int(rng.integers(len(choices)))]


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
    kind = _scene_for(rng, primary)
    scene = SCENES[kind](rng, base, 0.03 + 0.12 * difficulty)
    canvas = np.clip(np.rint(base * 255), 0, 255).astype(np.uint8)
    comp = _Composer(rng, canvas, scene, difficulty)
    clutter(rng, canvas, scene, int(rng.poisson(2 * difficulty)), 0.2 * max(h, w))  # behind the objects
    _compose(comp, primary)
    clutter(rng, canvas, scene, int(rng.poisson(2 * difficulty)), 0.2 * max(h, w))  # may occlude them
    artefacts = [dict(r) for r in scene.regions]
    if watermark:
        artefacts.append({"kind": "watermark", "box": _watermark(rng, canvas)})
    noisy = canvas.astype(np.int16) + rng.normal(0, 2.0, canvas.shape).round().astype(np.int16)
    pixels = np.clip(noisy, 0, 255).astype(np.uint8)
    objects = [{k: o[k] for k in ("name", "box", "pose", "truncated", "difficult")} for o in comp.objects]
    entry = {"scene": kind, "primary": primary, "size": [w, h], "artefacts": artefacts,
             "objects": [{"name": o["name"], "box": list(o["box"]), "truncated": o["truncated"]} for o in objects]}
    return pixels, comp.instance, objects, entry


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
        60 images of 160 px long side; 600 of 240 px; 2000 of 500 x 375 px. Landscape with
        probability 3/4, else portrait.
    difficulty : float in [0, 1]
        Clutter, scale range, colour variability, truncation, confusers (see module docstring).
    n_images : int, optional
        Override the preset's image count.
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; one of {', '.join(SIZES)}")
    if not 0.0 <= difficulty <= 1.0:
        raise ValueError(f"difficulty must be in [0, 1], got {difficulty}")
    n, long_side, ratio = SIZES[size]
    n = n if n_images is None else int(n_images)
    root = prepare_output(out, overwrite, ["JPEGImages", "Annotations", "ImageSets", "masks"])
    plan_rng = np.random.default_rng([seed, 2**31 - 1])  # dataset-level plan, separate from images
    names = sorted(PRIMARY_WEIGHTS)
    quota = np.array([PRIMARY_WEIGHTS[k] for k in names]) / sum(PRIMARY_WEIGHTS.values()) * n
    counts = np.floor(quota).astype(int)
    counts[np.argsort(-(quota - counts), kind="stable")[: n - counts.sum()]] += 1
    primaries = list(plan_rng.permutation(np.repeat(names, counts)))
    horse_idx = [i for i, p in enumerate(primaries) if p == "horse"]
    other_idx = [i for i, p in enumerate(primaries) if p != "horse"]
    marked = set(plan_rng.permutation(horse_idx)[: round(WATERMARK_HORSE_RATE * len(horse_idx))].tolist())
    marked |= set(plan_rng.permutation(other_idx)[: int(WATERMARK_OTHER_RATE * len(other_idx))].tolist())
    ids = [f"{i + 1:06d}" for i in range(n)]
    order = plan_rng.permutation(n)
    test = sorted(ids[i] for i in order[: n // 2])
    trainval_pos = order[n // 2:]
    val = sorted(ids[i] for i in trainval_pos[: len(trainval_pos) // 2])
    train = sorted(ids[i] for i in trainval_pos[len(trainval_pos) // 2:])
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
