"""Scene backgrounds and clutter for toyvoc: where objects stand, and the context regions.

A scene function paints a float (H, W, 3) canvas and returns a :class:`Scene`: its kind, the
horizon row, the rows where objects may touch the ground (plus named bands of rows: the rails'
row, a station platform, the floor along a room's back wall), and the context regions recorded as
ground truth (``water`` wherever water is painted; ``sky`` for the full-height sky behind
aeroplanes). Region boxes are VOC-style: 1-based inclusive (xmin, ymin, xmax, ymax).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from . import textures as tx
from .drawing import pick, shade


@dataclass
class Scene:
    kind: str
    horizon: int
    ground: tuple[int, int]          # rows in which ground contact points may lie
    regions: list[dict] = field(default_factory=list)
    bands: dict[str, tuple[int, int]] = field(default_factory=dict)  # named ground rows (rails, wall side)


def field_scene(rng, img, cvar) -> Scene:
    """Meadow: sky, optional hills/trees at the horizon, grass."""
    h, w = img.shape[:2]
    horizon = int(h * rng.uniform(0.22, 0.45))
    tx.sky(rng, img, 0, horizon, clouds=1.0)
    if rng.random() < 0.4:
        tx.hills(rng, img, horizon, h * rng.uniform(0.05, 0.12))
    tx.grass(rng, img, horizon, h, cvar)
    if rng.random() < 0.5:
        tx.treeline(rng, img, horizon + 1, h * rng.uniform(0.06, 0.14))
    return Scene("field", horizon, (horizon + int(0.25 * (h - horizon)), h))


def water_scene(rng, img, cvar) -> Scene:
    """Lake or sea: sky, optional far shore, water over the lower part (a ``water`` region)."""
    h, w = img.shape[:2]
    horizon = int(h * rng.uniform(0.3, 0.55))
    tx.sky(rng, img, 0, horizon, clouds=1.0)
    if rng.random() < 0.6:
        (tx.hills if rng.random() < 0.5 else tx.treeline)(rng, img, horizon, h * rng.uniform(0.04, 0.1))
    tx.water(rng, img, horizon, h, cvar)
    return Scene("water", horizon, (horizon + int(0.2 * (h - horizon)), h),
                 [{"kind": "water", "box": [1, horizon + 1, w, h]}])


def sky_scene(rng, img, cvar) -> Scene:
    """Open sky from the top to the bottom border; sometimes a tower or tree at one side edge."""
    h, w = img.shape[:2]
    tx.sky(rng, img, 0, h, clouds=0.3)
    x0, x1 = 0, w
    if rng.random() < 0.3:
        width = int(w * rng.uniform(0.08, 0.18))
        left = rng.random() < 0.5
        band = img[:, :width] if left else img[:, w - width:]
        tx.ground(rng, band, 0, h, tx.jitter(rng, (0.55, 0.4, 0.32), cvar), "brick", 0.25, zoom=0.35)
        x0, x1 = (width, w) if left else (0, w - width)
    return Scene("sky", h, (0, h), [{"kind": "sky", "box": [x0 + 1, 1, x1, h]}])


def birds_scene(rng, img, cvar) -> Scene:
    """Mostly sky over a strip of land or water at the bottom."""
    h, w = img.shape[:2]
    horizon = int(h * rng.uniform(0.6, 0.85))
    tx.sky(rng, img, 0, horizon, clouds=1.0)
    regions = []
    if rng.random() < 0.5:
        tx.grass(rng, img, horizon, h, cvar)
        tx.treeline(rng, img, horizon + 1, h * rng.uniform(0.05, 0.12))
    else:
        tx.water(rng, img, horizon, h, cvar)
        regions.append({"kind": "water", "box": [1, horizon + 1, w, h]})
    return Scene("birds", horizon, (horizon, h), regions)


def street_scene(rng, img, cvar) -> Scene:
    """Buildings (brick or rendered facades with windows), pavement, road with lane marks."""
    h, w = img.shape[:2]
    horizon = int(h * rng.uniform(0.45, 0.62))
    tx.sky(rng, img, 0, horizon, clouds=0.5)
    x = 0
    while x < w:
        bw = int(w * rng.uniform(0.18, 0.45))
        top = int(horizon * rng.uniform(0.0, 0.5))
        block = img[:, x:x + bw]
        if rng.random() < 0.5:
            tx.ground(rng, block, top, horizon, tx.jitter(rng, (0.6, 0.32, 0.22), cvar), "brick", 0.3, zoom=0.35)
        else:
            tx.ground(rng, block, top, horizon, tx.jitter(rng, (0.78, 0.74, 0.66), cvar), "gravel", 0.05)
            win = tx.jitter(rng, (0.2, 0.25, 0.3), 0.05)
            step = max(6, int(h * 0.08))
            for wy in range(top + step // 2, horizon - step, step):
                for wx in range(step // 3, bw - step // 2, step):
                    block[wy:wy + step // 2, wx:wx + step // 2] = win
        x += bw
    kerb = horizon + max(2, int(h * 0.05))
    tx.ground(rng, img, horizon, kerb, tx.jitter(rng, (0.62, 0.6, 0.58), 0.03), "gravel", 0.12)
    tx.ground(rng, img, kerb, h, tx.jitter(rng, (0.33, 0.33, 0.35), 0.03), "gravel", 0.18)
    lane_y = int(kerb + (h - kerb) * rng.uniform(0.45, 0.7))
    for lx in range(int(rng.integers(0, 20)), w, max(20, w // 6)):
        img[lane_y:lane_y + max(1, h // 80) + 1, lx:lx + w // 12] = (0.9, 0.9, 0.85)
    return Scene("street", horizon, (kerb, h), bands={"pavement": (horizon + 1, kerb)})


def indoor_scene(rng, img, cvar) -> Scene:
    """Room: painted or papered wall with pictures, a window or a door, skirting board; wooden,
    carpet or tiled floor. Band ``wall``: floor rows right in front of the wall (sofas, cabinets,
    plants in the corners stand there)."""
    h, w = img.shape[:2]
    floor = int(h * rng.uniform(0.55, 0.72))
    wall = tx.jitter(rng, pick(rng, [(0.85, 0.8, 0.68), (0.8, 0.82, 0.78), (0.7, 0.78, 0.72), (0.88, 0.72, 0.6)]),
                     cvar)
    tx.ground(rng, img, 0, floor, wall, "gravel", 0.03)
    if rng.random() < 0.25:  # wallpaper stripes
        step = max(4, int(w * rng.uniform(0.04, 0.08)))
        for sx in range(int(rng.integers(0, step)), w, step):
            img[:floor, sx:sx + max(1, step // 3)] *= 0.9
    for _ in range(int(rng.integers(1, 3))):
        fw, fh = int(w * rng.uniform(0.12, 0.3)), int(floor * rng.uniform(0.15, 0.35))
        fx, fy = int(rng.uniform(0, w - fw)), int(rng.uniform(0.05, 0.4) * floor)
        img[fy:fy + fh, fx:fx + fw] = tx.jitter(rng, (0.35, 0.25, 0.15), 0.05)
        inner = rng.uniform(0.2, 0.9, 3) if rng.random() < 0.6 else (0.7, 0.85, 0.95)
        img[fy + 2:fy + fh - 2, fx + 2:fx + fw - 2] = inner
    if rng.random() < 0.3:  # a door reaching the floor
        dw = int(w * rng.uniform(0.12, 0.2))
        dx = int(rng.uniform(0, w - dw))
        door = tx.jitter(rng, (0.55, 0.4, 0.25) if rng.random() < 0.6 else (0.92, 0.92, 0.9), cvar)
        img[int(floor * 0.15):floor, dx:dx + dw] = shade(door, 0.8)
        img[int(floor * 0.15) + 2:floor, dx + 2:dx + dw - 2] = door
        img[int(floor * 0.6):int(floor * 0.6) + 2, dx + dw - 6:dx + dw - 3] = (0.8, 0.7, 0.3)
    kind = rng.random()
    if kind < 0.45:
        tx.ground(rng, img, floor, h, tx.jitter(rng, (0.55, 0.38, 0.22), cvar), "gravel", 0.08)
        for py in range(floor, h, max(3, h // 25)):
            img[py, :] *= 0.75  # plank joints
    elif kind < 0.8:
        tx.ground(rng, img, floor, h, tx.jitter(rng, (0.5, 0.3, 0.3), cvar * 1.5), "grass", 0.15, zoom=0.3)
    else:  # tiles
        tx.ground(rng, img, floor, h, tx.jitter(rng, (0.78, 0.76, 0.72), cvar), "gravel", 0.05)
        step = max(4, (h - floor) // 4)
        for py in range(floor, h, step):
            img[py, :] *= 0.7
        for px in range(int(rng.integers(0, step)), w, 2 * step):
            img[floor:, px] *= 0.7
    img[max(0, floor - max(2, h // 40)):floor] = tx.jitter(rng, (0.92, 0.92, 0.9), 0.03)  # skirting board
    near = floor + int(0.1 * (h - floor))
    return Scene("indoor", floor, (near, h), bands={"wall": (floor + 1, near + int(0.1 * (h - floor)))})


def rails_scene(rng, img, cvar) -> Scene:
    """Railway in the countryside: sky, hills or trees, grass, a ballast bed with sleepers and rails
    (band ``track``: the row the wheels stand on), overhead-line masts, sometimes a platform in
    front (band ``platform``)."""
    h, w = img.shape[:2]
    horizon = int(h * rng.uniform(0.25, 0.45))
    tx.sky(rng, img, 0, horizon, clouds=1.0)
    (tx.hills if rng.random() < 0.5 else tx.treeline)(rng, img, horizon, h * rng.uniform(0.05, 0.12))
    tx.grass(rng, img, horizon, h, cvar)
    track = int(horizon + (h - horizon) * rng.uniform(0.3, 0.55))
    bed0, bed1 = track - max(2, int(0.03 * h)), track + max(3, int(0.06 * h))
    tx.ground(rng, img, bed0, bed1, tx.jitter(rng, (0.5, 0.46, 0.42), cvar * 0.5), "gravel", 0.25, zoom=0.4)
    sleeper = tx.jitter(rng, (0.3, 0.22, 0.16), 0.03)
    step = max(4, int(w * 0.03))
    for sx in range(int(rng.integers(0, step)), w, step):
        img[track:track + max(2, int(0.02 * h)), sx:sx + max(2, step // 2)] = sleeper
    rail = tx.jitter(rng, (0.62, 0.6, 0.58), 0.03)
    for ry in (track - 1, track + max(2, int(0.02 * h))):
        img[ry:ry + max(1, h // 90) + 1] = rail
    if rng.random() < 0.6:  # overhead-line masts and wire
        top = max(0, int(horizon * rng.uniform(0.1, 0.4)))
        gap = int(w * rng.uniform(0.3, 0.6))
        for mx in range(int(rng.integers(0, gap)), w, gap):
            img[top:bed0, mx:mx + max(1, w // 120) + 1] = (0.35, 0.35, 0.37)
        img[top + 2:top + 3, :] = (0.25, 0.25, 0.27)
    bands = {"track": (track, track)}
    if rng.random() < 0.4:  # station platform in front of the track
        p1 = min(h, bed1 + int((h - bed1) * rng.uniform(0.5, 0.9)))
        tx.ground(rng, img, bed1, p1, tx.jitter(rng, (0.62, 0.62, 0.6), 0.03), "gravel", 0.1)
        img[bed1:bed1 + max(1, h // 60) + 1] = (0.95, 0.85, 0.2)  # safety line
        bands["platform"] = (bed1 + max(2, (p1 - bed1) // 3), p1)
    return Scene("rails", horizon, (bed1, h), bands=bands)


def beach_scene(rng, img, cvar) -> Scene:
    """Sky, a band of sea (a ``water`` region, but no boat), sand."""
    h, w = img.shape[:2]
    horizon = int(h * rng.uniform(0.3, 0.45))
    shore = int(horizon + (h - horizon) * rng.uniform(0.25, 0.45))
    tx.sky(rng, img, 0, horizon, clouds=1.0)
    tx.water(rng, img, horizon, shore, cvar)
    tx.ground(rng, img, shore, h, tx.jitter(rng, (0.86, 0.78, 0.58), cvar * 0.5), "gravel", 0.12, zoom=0.5)
    return Scene("beach", horizon, (shore, h), [{"kind": "water", "box": [1, horizon + 1, w, shore]}])


SCENES = {"field": field_scene, "water": water_scene, "sky": sky_scene, "birds": birds_scene,
          "street": street_scene, "indoor": indoor_scene, "beach": beach_scene, "rails": rails_scene}


# -- clutter: unlabelled things that share colours and shapes with the classes ----------------
def clutter(rng, canvas: np.ndarray, scene: Scene, n: int, scale: float) -> None:
    """Paint ``n`` unannotated distractors on the uint8 canvas (rocks, bushes, posts, crates, balloons).

    ``scale`` is a typical object size in pixels.
    """
    h, w = canvas.shape[:2]
    for _ in range(n):
        kind = rng.choice(["rock", "bush", "post", "crate", "balloon", "blob"])
        x = int(rng.uniform(0, w))
        y = int(rng.uniform(*scene.ground)) if scene.ground[1] > scene.ground[0] else int(rng.uniform(0, h))
        s = max(3, int(scale * rng.uniform(0.15, 0.5)))
        colour = tuple(int(v) for v in rng.integers(30, 230, 3))
        if kind == "rock":
            g = int(rng.integers(70, 170))
            cv2.ellipse(canvas, (x, y), (s, max(2, s // 2)), 0, 180, 360, (g, g, g - 10), -1, cv2.LINE_AA)
        elif kind == "bush":
            for _k in range(4):
                cv2.circle(canvas, (x + int(rng.normal(0, s / 2)), y - s // 2), max(2, s // 2),
                           (int(rng.integers(20, 60)), int(rng.integers(70, 130)), 30), -1, cv2.LINE_AA)
        elif kind == "post":
            cv2.rectangle(canvas, (x, y - 3 * s), (x + max(1, s // 4), y), (90, 70, 50), -1)
        elif kind == "crate":
            cv2.rectangle(canvas, (x, y - s), (x + s, y), colour, -1)
        elif kind == "balloon":
            cy = int(rng.uniform(0, max(1, scene.horizon)))
            cv2.ellipse(canvas, (x, cy), (max(2, s // 2), max(3, int(s * 0.65))), 0, 0, 360, colour, -1, cv2.LINE_AA)
        else:
            cv2.ellipse(canvas, (x, y - s // 2), (s, max(2, s // 3)), float(rng.uniform(0, 180)), 0, 360, colour, -1,
                        cv2.LINE_AA)
