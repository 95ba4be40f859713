"""Procedural indoor objects for toyvoc: bottle, chair, sofa, dining table, tv/monitor, potted plant,
and the unlabelled props they stand on (a tv cabinet, a kitchen counter).

Same frame as :mod:`.drawing` (x to the front or to the right, y down, ground contact at y = 0).
Sizes in one model unit: a table is ~1 long, a chair ~1 tall, a sofa ~1 wide; the composer scales
them against each other. Anchors: ``base`` (bottom centre, to stand on a surface), ``seat`` /
``seat0..2`` (a sitter's hip), ``top0``/``top1`` (left/right end of a surface's front edge) and
``top_back`` (the y of its back edge), where bottles, plants and screens are put.
"""
from __future__ import annotations

import numpy as np

from .drawing import Model, ellipse, limb, pick, rect, shade
from .textures import jitter

_WOOD = [(0.45, 0.28, 0.14), (0.6, 0.42, 0.24), (0.3, 0.18, 0.1), (0.75, 0.6, 0.42)]


def _base(m: Model) -> Model:
    x0, _, x1, _ = m.extent()
    m.anchors["base"] = np.array([(x0 + x1) / 2, 0.0])
    return m


def make_bottle(rng, cvar) -> Model:
    """Wine, beer or water bottle ~1 tall: body, rounded shoulder, neck, cap, often a label."""
    kind = int(rng.integers(3))
    glass = jitter(rng, [(0.1, 0.3, 0.12), (0.4, 0.22, 0.08), (0.55, 0.7, 0.8)][kind], cvar * 0.5)
    m = Model(pose="Unspecified")
    half = [0.15, 0.13, 0.17][kind] * rng.uniform(0.9, 1.1)
    shoulder = [-0.62, -0.58, -0.72][kind]
    neck = [0.045, 0.045, 0.06][kind]
    m.add(np.array([[-half, -0.01], [-half, shoulder], [-neck, shoulder - 0.16], [-neck, -0.95], [neck, -0.95],
                    [neck, shoulder - 0.16], [half, shoulder], [half, -0.01]]), glass)
    m.add(rect(-neck * 1.1, -1.0, neck * 1.1, -0.93), pick(rng, [(0.8, 0.7, 0.2), (0.7, 0.1, 0.1), (0.9, 0.9, 0.9),
                                                                     (0.2, 0.3, 0.7)]))  # cap
    m.add(limb((-half * 0.5, shoulder + 0.05), (-half * 0.5, -0.06), 0.03, 0.03), shade(glass, 1.6))  # highlight
    if rng.random() < 0.8:
        label = jitter(rng, pick(rng, [(0.95, 0.93, 0.85), (0.85, 0.15, 0.1), (0.95, 0.8, 0.2)]), cvar)
        m.add(rect(-half, -0.45, half, -0.18), label)
    return _base(m)


def make_chair(rng, cvar) -> Model:
    """Side view of a chair ~1 tall (x to the front of the seat): legs, seat, back with slats."""
    wood = jitter(rng, pick(rng, _WOOD + [(0.92, 0.92, 0.9), (0.12, 0.12, 0.12)]), cvar)
    m = Model()
    seat_y, depth, lw = -rng.uniform(0.44, 0.5), rng.uniform(0.45, 0.55), 0.05
    m.add(limb((depth - 0.03, seat_y), (depth - 0.02, 0.0), lw, lw * 0.8), shade(wood, 0.8))  # far legs
    m.add(limb((0.05, seat_y), (0.03, 0.0), lw, lw * 0.8), shade(wood, 0.8))
    m.add(limb((depth - 0.07, seat_y), (depth - 0.05, 0.0), lw, lw * 0.8), wood)  # near legs
    m.add(limb((0.03, seat_y), (0.0, 0.0), lw, lw * 0.8), wood)
    back = -rng.uniform(0.95, 1.05)
    m.add(limb((0.03, seat_y), (-0.04, back), lw, lw), wood)  # back post, slightly leaning
    m.add(limb((-0.035, back + 0.02), (0.02, seat_y - 0.2), 0.02, 0.02), wood)
    for k in range(int(rng.integers(2, 4))):  # cross slats (or a padded back for the dark chairs)
        y = back + 0.05 + 0.08 * k
        m.add(limb((-0.04 - 0.07 * (y - back), y), (0.1, y + 0.02), 0.035, 0.035), shade(wood, 0.9))
    m.add(rect(-0.02, seat_y - 0.05, depth + 0.02, seat_y), shade(wood, 1.1))  # seat board
    if rng.random() < 0.4:  # cushion
        m.add(ellipse(depth / 2, seat_y - 0.07, depth / 2, 0.035),
              jitter(rng, pick(rng, [(0.7, 0.15, 0.15), (0.2, 0.4, 0.6), (0.8, 0.75, 0.6)]), cvar))
    m.anchors["seat"] = np.array([depth / 2, seat_y - 0.05])
    return _base(m)


def make_sofa(rng, cvar) -> Model:
    """Front view of a sofa ~1 wide: back rest, two arm rests, 2-3 seat cushions, short legs, pillows."""
    cloth = jitter(rng, pick(rng, [(0.6, 0.12, 0.1), (0.35, 0.22, 0.14), (0.45, 0.45, 0.48), (0.82, 0.76, 0.62),
                                     (0.18, 0.3, 0.55), (0.2, 0.4, 0.3)]), cvar)
    m = Model(pose="Frontal")
    n = int(rng.integers(2, 4))
    seat, top = -rng.uniform(0.17, 0.2), -rng.uniform(0.38, 0.45)
    for x in (0.05, 0.95):
        m.add(rect(x - 0.02, -0.05, x + 0.02, 0.0), (0.15, 0.1, 0.06))
    m.add(rect(0.02, top, 0.98, -0.05), shade(cloth, 0.8))  # back rest and frame
    inner = (0.12, 0.88)
    cw = (inner[1] - inner[0]) / n
    for k in range(n):
        x0 = inner[0] + k * cw
        m.add(rect(x0 + 0.005, top + 0.03, x0 + cw - 0.005, seat - 0.01), shade(cloth, 0.92))  # back cushion
        m.add(rect(x0 + 0.005, seat - 0.02, x0 + cw - 0.005, -0.06), cloth)  # seat cushion
        m.anchors[f"seat{k}"] = np.array([x0 + cw / 2, seat - 0.02])
    for x0 in (0.0, inner[1]):  # arm rests, rounded on top
        m.add(rect(x0, seat - 0.1, x0 + 0.12, -0.05), shade(cloth, 0.85))
        m.add(ellipse(x0 + 0.06, seat - 0.1, 0.06, 0.035), shade(cloth, 0.9))
    if rng.random() < 0.6:
        pillow = jitter(rng, pick(rng, [(0.9, 0.85, 0.6), (0.85, 0.3, 0.2), (0.3, 0.6, 0.6), (0.95, 0.95, 0.95)]),
                        cvar)
        for x in (inner[0] + 0.07, inner[1] - 0.07):
            m.add(ellipse(x, seat - 0.07, 0.07, 0.06, angle=0.3 if x < 0.5 else -0.3), pillow)
    m.anchors["seat"] = m.anchors[f"seat{n // 2}"]
    return _base(m)


def make_diningtable(rng, cvar) -> Model:
    """Table ~1 long seen slightly from above: top surface, front edge, legs, often a cloth, plates."""
    wood = jitter(rng, pick(rng, _WOOD + [(0.9, 0.9, 0.88)]), cvar)
    m = Model(pose="Frontal")
    height, depth = rng.uniform(0.42, 0.5), rng.uniform(0.08, 0.14)  # leg height; top seen in perspective
    legs = [0.04, 0.96] if rng.random() < 0.7 else [0.1, 0.9]
    for x in legs:  # back legs (shorter, higher), then front legs
        m.add(limb((x + 0.03 * (1 if x < 0.5 else -1), -height - depth), (x + 0.03 * (1 if x < 0.5 else -1), -depth),
                   0.04, 0.035), shade(wood, 0.7))
    for x in legs:
        m.add(limb((x, -height), (x, 0.0), 0.05, 0.04), shade(wood, 0.85))
    m.add(np.array([[0.03, -height - depth], [0.97, -height - depth], [1.0, -height], [0.0, -height]]), wood)
    m.add(rect(0.0, -height, 1.0, -height + 0.05), shade(wood, 0.75))  # front edge
    if rng.random() < 0.45:  # table cloth hanging over the front edge
        cloth = jitter(rng, pick(rng, [(0.95, 0.95, 0.93), (0.8, 0.2, 0.2), (0.85, 0.8, 0.6)]), cvar * 0.5)
        m.add(np.array([[0.02, -height - depth], [0.98, -height - depth], [1.02, -height],
                        [1.02, -height + 0.15], [-0.02, -height + 0.15], [-0.02, -height]]), cloth)
        m.add(rect(-0.02, -height + 0.13, 1.02, -height + 0.15), shade(cloth, 0.8))
    for _ in range(int(rng.integers(0, 4))):  # plates on the top
        x = rng.uniform(0.12, 0.88)
        m.add(ellipse(x, -height - depth / 2, 0.07, depth * 0.3), (0.95, 0.95, 0.95))
        m.add(ellipse(x, -height - depth / 2, 0.04, depth * 0.16), (0.85, 0.85, 0.88))
    m.anchors["top0"] = np.array([0.08, -height])
    m.anchors["top1"] = np.array([0.92, -height])
    m.anchors["top_back"] = np.array([0.5, -height - depth])
    return m


def make_tvmonitor(rng, cvar) -> Model:
    """Flat tv (16:9) or computer monitor ~1 wide: frame, lit screen with a picture, stand or none."""
    frame = jitter(rng, pick(rng, [(0.08, 0.08, 0.09), (0.2, 0.2, 0.22), (0.75, 0.75, 0.78)]), cvar * 0.3)
    m = Model(pose="Frontal")
    monitor = rng.random() < 0.35
    h = 0.62 if monitor else 0.56
    stand = rng.uniform(0.06, 0.14)
    m.add(rect(0.42, -stand, 0.58, 0.0), shade(frame, 0.9))  # foot
    m.add(rect(0.47, -stand - 0.05, 0.53, -0.01), shade(frame, 0.8))  # neck
    y0 = -stand - h
    m.add(rect(0.0, y0, 1.0, -stand), frame)
    b = 0.04
    sky = jitter(rng, pick(rng, [(0.3, 0.55, 0.85), (0.85, 0.55, 0.3), (0.2, 0.6, 0.4), (0.9, 0.9, 0.95)]), 0.1)
    m.add(rect(b, y0 + b, 1 - b, -stand - b), sky)  # screen
    split = y0 + b + (h - 2 * b) * rng.uniform(0.45, 0.7)
    m.add(rect(b, split, 1 - b, -stand - b), shade(jitter(rng, (0.3, 0.5, 0.25), 0.15), 1.0))  # a picture
    for _ in range(int(rng.integers(1, 4))):
        cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.04, 0.1)
        m.add(ellipse(cx, split - r * 0.3, r, r * 1.2), jitter(rng, (0.5, 0.4, 0.35), 0.2))
    if monitor:  # window bars instead of a picture
        m.add(rect(b, y0 + b, 1 - b, y0 + b + 0.05), (0.2, 0.3, 0.6))
    m.add(ellipse(0.5, -stand - b / 2, 0.012, 0.008), (0.3, 0.9, 0.3))  # power light
    return _base(m)


def make_pottedplant(rng, cvar) -> Model:
    """Pot with foliage ~1 tall: broad leaves fanning out, or a bush with flowers."""
    pot = jitter(rng, pick(rng, [(0.72, 0.38, 0.22), (0.92, 0.92, 0.9), (0.2, 0.3, 0.55), (0.3, 0.3, 0.3)]), cvar)
    leaf = jitter(rng, (0.18, 0.48, 0.16), cvar * 0.7)
    m = Model(pose="Unspecified")
    ph = rng.uniform(0.25, 0.35)
    m.add(np.array([[-0.17, -ph], [0.17, -ph], [0.13, 0.0], [-0.13, 0.0]]), pot)
    m.add(rect(-0.19, -ph - 0.04, 0.19, -ph + 0.02), shade(pot, 0.85))  # rim
    if rng.random() < 0.6:  # long leaves fanning out
        for k in range(int(rng.integers(7, 12))):
            a = rng.uniform(-1.2, 1.2)
            length = rng.uniform(0.45, 0.7)
            tip = np.array([np.sin(a) * length * 0.7, -ph - np.cos(a) * length])
            m.add(ellipse(tip[0] / 2, (tip[1] - ph) / 2, length / 2, 0.05, angle=np.pi / 2 + a),
                  shade(leaf, rng.uniform(0.75, 1.2)))
    else:  # bush
        for k in range(12):
            cx, cy = rng.normal(0, 0.14), -ph - rng.uniform(0.1, 0.5)
            m.add(ellipse(cx, cy, rng.uniform(0.08, 0.14), rng.uniform(0.07, 0.12)),
                  shade(leaf, rng.uniform(0.7, 1.15)))
        if rng.random() < 0.6:
            flower = pick(rng, [(0.9, 0.2, 0.3), (0.95, 0.85, 0.2), (0.95, 0.95, 0.95), (0.7, 0.3, 0.8)])
            for _ in range(int(rng.integers(4, 9))):
                m.add(ellipse(rng.normal(0, 0.14), -ph - rng.uniform(0.15, 0.55), 0.035, 0.035), flower)
    return _base(m)


# -- unlabelled props ------------------------------------------------------------------------
def make_cabinet(rng, cvar) -> Model:
    """Low sideboard ~1 wide and ~0.45 tall (tv stand, counter): a box with doors and handles."""
    wood = jitter(rng, pick(rng, _WOOD + [(0.9, 0.9, 0.88), (0.2, 0.2, 0.22)]), cvar)
    m = Model(pose="Frontal")
    h = rng.uniform(0.35, 0.5)
    m.add(rect(0.0, -h, 1.0, 0.0), wood)
    m.add(rect(-0.02, -h - 0.04, 1.02, -h), shade(wood, 0.75))
    n = int(rng.integers(2, 4))
    for k in range(n):
        x0 = 0.03 + k * 0.94 / n
        m.add(rect(x0, -h + 0.04, x0 + 0.94 / n - 0.03, -0.04), shade(wood, 0.9))
        m.add(rect(x0 + 0.94 / n / 2 - 0.04, -h / 2 - 0.01, x0 + 0.94 / n / 2 + 0.02, -h / 2 + 0.01), (0.6, 0.6, 0.6))
    m.anchors["top0"] = np.array([0.1, -h - 0.04])
    m.anchors["top1"] = np.array([0.9, -h - 0.04])
    return m


MAKERS = {"bottle": make_bottle, "chair": make_chair, "sofa": make_sofa, "diningtable": make_diningtable,
          "tvmonitor": make_tvmonitor, "pottedplant": make_pottedplant}
PROPS = {"cabinet": make_cabinet}
