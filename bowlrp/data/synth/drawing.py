"""Procedural object silhouettes for toyvoc, composed of filled polygons.

Each ``make_<class>(rng, cvar)`` returns a :class:`Model`: coloured parts in a local frame (x to
the front of the object, y down, ground contact at y = 0, body length ~1) and named anchor points
(e.g. a horse's saddle, a boat's deck) where another object can be attached. ``cvar`` is the
colour variability (std of the per-channel jitter). :func:`place` maps a model to pixels (scale,
horizontal flip, rotation, translation of the bottom centre of its extent), :func:`paint` fills
its parts with anti-aliased edges and returns the object's own mask.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from .textures import jitter

SUBPIXEL_BITS = 4  # cv2 fixed-point vertices: 1/16 px precision


@dataclass
class Model:
    """Parts (points (N, 2) local units, RGB colour in [0, 1]) drawn in order, plus anchors."""

    parts: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    anchors: dict[str, np.ndarray] = field(default_factory=dict)
    pose: str = "Right"  # the side it faces before flipping

    def add(self, points, colour) -> None:
        self.parts.append((np.asarray(points, dtype=np.float64), np.asarray(colour, dtype=np.float64)))

    def extent(self) -> tuple[float, float, float, float]:
        pts = np.concatenate([p for p, _ in self.parts])
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


# -- primitive outlines ---------------------------------------------------------------------
def ellipse(cx, cy, rx, ry, angle=0.0, n=28) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], 1)


def limb(p0, p1, w0, w1) -> np.ndarray:
    """Quad from p0 (width w0) to p1 (width w1): legs, necks, masts."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9)
    return np.array([p0 + n * w0 / 2, p1 + n * w1 / 2, p1 - n * w1 / 2, p0 - n * w0 / 2])


def ring(cx, cy, r_out, r_in, n=32) -> np.ndarray:
    """Annulus as one "keyhole" polygon (outer circle, then the inner one backwards): a wheel's tyre
    with the background showing through its middle, so masks and boxes see the hole too."""
    t = np.linspace(0, 2 * np.pi, n + 1)
    outer = np.stack([cx + r_out * np.cos(t), cy + r_out * np.sin(t)], 1)
    inner = np.stack([cx + r_in * np.cos(t[::-1]), cy + r_in * np.sin(t[::-1])], 1)
    return np.concatenate([outer, inner])


def rect(x0, y0, x1, y1) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def pick(rng, palette) -> np.ndarray:
    return np.asarray(palette[int(rng.integers(len(palette)))], float)


def shade(colour, factor) -> np.ndarray:
    return np.clip(np.asarray(colour) * factor, 0, 1)


# -- animals --------------------------------------------------------------------------------
def _legs(m: Model, rng, xs, top, width, colour, stride=0.06, hoof=None) -> None:
    for k, x in enumerate(xs):
        swing = rng.uniform(-stride, stride) * (1 if k % 2 else -1)
        m.add(limb((x, top), (x + swing, 0.0), width, width * 0.7), shade(colour, 0.85 if k % 2 else 1.0))
        if hoof is not None:
            m.add(limb((x + swing, -0.04), (x + swing, 0.0), width * 0.8, width * 0.8), hoof)


def make_horse(rng, cvar) -> Model:
    coat = jitter(rng, pick(rng, [(0.42, 0.25, 0.12), (0.55, 0.32, 0.14), (0.13, 0.10, 0.09),
                                    (0.82, 0.80, 0.75), (0.30, 0.19, 0.12)]), cvar)
    dark = shade(coat, 0.45)
    m = Model()
    leg_len = rng.uniform(0.48, 0.56)
    _legs(m, rng, [0.24, 0.32, 0.70, 0.78], -leg_len - 0.05, 0.06, coat, stride=0.08, hoof=dark)
    m.add(limb((0.2, -leg_len - 0.1), (0.08, -leg_len + 0.12), 0.07, 0.03), dark)  # tail
    m.add(ellipse(0.5, -leg_len - 0.12, 0.33, 0.13), coat)
    head_up = rng.uniform(0.25, 0.42)
    m.add(limb((0.76, -leg_len - 0.15), (0.9, -leg_len - 0.15 - head_up), 0.16, 0.09), coat)  # neck
    m.add(limb((0.74, -leg_len - 0.22), (0.88, -leg_len - 0.15 - head_up), 0.04, 0.04), dark)  # mane
    hx, hy = 0.93, -leg_len - 0.12 - head_up
    m.add(ellipse(hx + 0.05, hy + 0.05, 0.12, 0.045, angle=0.8), coat)  # long head, nose down
    m.add(limb((hx - 0.02, hy - 0.02), (hx - 0.01, hy - 0.08), 0.03, 0.01), coat)  # ear
    m.anchors["saddle"] = np.array([0.48, -leg_len - 0.22])
    return m


def make_cow(rng, cvar) -> Model:
    kind = int(rng.integers(3))
    coat = jitter(rng, [(0.95, 0.95, 0.93), (0.50, 0.30, 0.16), (0.78, 0.62, 0.42)][kind], cvar)
    m = Model()
    leg_len = rng.uniform(0.34, 0.40)
    _legs(m, rng, [0.16, 0.26, 0.70, 0.80], -leg_len - 0.05, 0.085, coat, stride=0.03, hoof=(0.15, 0.13, 0.12))
    body_top = -leg_len - 0.36
    m.add(np.array([[0.08, body_top + 0.05], [0.2, body_top], [0.82, body_top + 0.02], [0.86, -leg_len + 0.02],
                    [0.1, -leg_len + 0.02], [0.05, -leg_len - 0.12]]), coat)  # boxy body
    m.add(ellipse(0.3, -leg_len + 0.02, 0.06, 0.04), (0.93, 0.68, 0.68))  # udder
    m.add(limb((0.08, body_top + 0.05), (0.04, -leg_len), 0.025, 0.02), shade(coat, 0.7))  # tail
    if kind == 0:  # black patches, drawn inside the body outline
        for _ in range(int(rng.integers(2, 5))):
            m.add(ellipse(rng.uniform(0.25, 0.7), rng.uniform(body_top + 0.1, -leg_len - 0.08),
                          rng.uniform(0.05, 0.1), rng.uniform(0.04, 0.08), rng.uniform(0, 3)), (0.08, 0.08, 0.08))
    head = np.array([[0.8, body_top + 0.03], [0.95, body_top - 0.02], [1.04, body_top + 0.2],
                     [0.99, body_top + 0.27], [0.86, body_top + 0.22]])
    m.add(head, coat if kind else (0.1, 0.1, 0.1))
    m.add(ellipse(1.0, body_top + 0.23, 0.045, 0.04), (0.85, 0.6, 0.6))  # muzzle
    m.add(limb((0.9, body_top), (0.86, body_top - 0.08), 0.025, 0.012), (0.9, 0.88, 0.8))  # horn
    m.add(limb((0.96, body_top - 0.01), (1.0, body_top - 0.08), 0.025, 0.012), (0.9, 0.88, 0.8))
    return m


def make_sheep(rng, cvar) -> Model:
    wool = jitter(rng, pick(rng, [(0.92, 0.90, 0.82), (0.85, 0.82, 0.74), (0.72, 0.70, 0.66)]), cvar * 0.5)
    face = pick(rng, [(0.1, 0.09, 0.08), (0.2, 0.17, 0.15), (0.85, 0.8, 0.72)])
    m = Model()
    leg_len = rng.uniform(0.22, 0.3)
    _legs(m, rng, [0.22, 0.3, 0.68, 0.76], -leg_len - 0.05, 0.045, face, stride=0.03)
    cy = -leg_len - 0.2
    m.add(ellipse(0.48, cy, 0.34, 0.2), wool)
    for t in np.linspace(0, 2 * np.pi, 14, endpoint=False):  # fluffy rim
        m.add(ellipse(0.48 + 0.31 * np.cos(t), cy + 0.18 * np.sin(t), 0.08, 0.07),
              shade(wool, rng.uniform(0.9, 1.05)))
    m.add(ellipse(0.88, cy - 0.08, 0.1, 0.065, angle=0.5), face)  # head
    m.add(ellipse(0.8, cy - 0.14, 0.06, 0.025, angle=-0.3), face)  # ear
    return m


def make_dog(rng, cvar) -> Model:
    coat = jitter(rng, pick(rng, [(0.78, 0.58, 0.30), (0.40, 0.25, 0.13), (0.1, 0.09, 0.09),
                                    (0.9, 0.88, 0.84)]), cvar)
    m = Model()
    leg_len = rng.uniform(0.3, 0.4)
    _legs(m, rng, [0.18, 0.26, 0.72, 0.8], -leg_len - 0.04, 0.06, coat, stride=0.06)
    cy = -leg_len - 0.1
    m.add(limb((0.12, cy - 0.02), (0.0, cy - rng.uniform(0.15, 0.3)), 0.05, 0.02), coat)  # tail up
    m.add(ellipse(0.48, cy, 0.37, 0.12), coat)
    m.add(limb((0.78, cy), (0.86, cy - 0.2), 0.13, 0.1), coat)  # neck
    m.add(ellipse(0.9, cy - 0.25, 0.1, 0.09), coat)  # head
    m.add(ellipse(1.0, cy - 0.21, 0.07, 0.04), shade(coat, 0.95))  # snout
    m.add(ellipse(1.06, cy - 0.22, 0.02, 0.02), (0.05, 0.05, 0.05))  # nose
    m.add(ellipse(0.85, cy - 0.22, 0.035, 0.08, angle=0.2), shade(coat, 0.6))  # floppy ear
    return m


def make_cat(rng, cvar, sitting: bool | None = None) -> Model:
    """Cat in profile: smaller and slimmer than a dog, round head with two pointed ears (dogs here
    have a floppy ear and a snout), a long tail; walking, or sitting upright with the tail curled on
    the ground. Anchor ``base``: the bottom centre (to sit it on a sofa)."""
    coat = jitter(rng, pick(rng, [(0.85, 0.5, 0.2), (0.12, 0.11, 0.11), (0.55, 0.53, 0.5), (0.93, 0.92, 0.88),
                                    (0.45, 0.35, 0.25)]), cvar)
    stripes = rng.random() < 0.35
    dark = shade(coat, 0.55)
    eye = pick(rng, [(0.5, 0.75, 0.2), (0.85, 0.7, 0.15), (0.3, 0.55, 0.7)])
    m = Model()
    sitting = bool(rng.random() < 0.5) if sitting is None else sitting
    if sitting:  # upright: haunch, chest, front legs straight down, tail along the ground
        m.add(limb((0.3, -0.04), (-0.15, -0.02), 0.06, 0.04), coat)  # tail
        m.add(ellipse(0.3, -0.22, 0.24, 0.22), coat)  # haunch
        m.add(ellipse(0.45, -0.48, 0.16, 0.26, angle=0.25), coat)  # chest
        m.add(limb((0.52, -0.4), (0.55, 0.0), 0.08, 0.06), shade(coat, 0.9))  # front leg
        m.add(ellipse(0.56, -0.02, 0.06, 0.025), coat)
        hx, hy = 0.58, -0.8
    else:  # walking: long low body, tail raised in a curve
        leg_len = rng.uniform(0.26, 0.32)
        _legs(m, rng, [0.14, 0.22, 0.72, 0.8], -leg_len - 0.04, 0.055, coat, stride=0.05)
        cy = -leg_len - 0.09
        curl = rng.uniform(-0.1, 0.1)
        m.add(limb((0.08, cy - 0.02), (-0.08, cy - 0.22), 0.05, 0.045), coat)  # tail, two segments
        m.add(limb((-0.08, cy - 0.22), (-0.04 + curl, cy - 0.4), 0.045, 0.035), coat)
        m.add(ellipse(0.45, cy, 0.37, 0.1), coat)
        hx, hy = 0.86, cy - 0.14
    if stripes:
        for k in range(4):
            x = 0.25 + 0.1 * k if not sitting else 0.22 + 0.08 * k
            y = -0.32 if sitting else -0.4
            m.add(limb((x, y - 0.06), (x + 0.03, y + 0.06), 0.025, 0.02), dark)
    m.add(ellipse(hx, hy, 0.12, 0.105), coat)  # round head, no snout
    for dx in (-0.08, 0.05):  # two pointed, upright ears
        m.add(np.array([[hx + dx - 0.045, hy - 0.06], [hx + dx + 0.01, hy - 0.2], [hx + dx + 0.055, hy - 0.06]]),
              coat)
        m.add(np.array([[hx + dx - 0.02, hy - 0.08], [hx + dx + 0.01, hy - 0.16], [hx + dx + 0.035, hy - 0.08]]),
              (0.85, 0.6, 0.6))
    m.add(ellipse(hx + 0.05, hy - 0.02, 0.025, 0.02), eye)
    m.add(ellipse(hx + 0.055, hy - 0.02, 0.008, 0.018), (0.02, 0.02, 0.02))  # slit pupil
    m.add(ellipse(hx + 0.11, hy + 0.03, 0.015, 0.012), (0.85, 0.55, 0.55))  # nose
    for k in (-1, 1):  # whiskers
        m.add(limb((hx + 0.1, hy + 0.04), (hx + 0.24, hy + 0.04 + 0.03 * k), 0.006, 0.004), (0.9, 0.9, 0.88))
    x0, _, x1, _ = m.extent()
    m.anchors["base"] = np.array([(x0 + x1) / 2, 0.0])
    return m


def make_bird(rng, cvar, flying: bool = True) -> Model:
    body = jitter(rng, pick(rng, [(0.2, 0.2, 0.22), (0.5, 0.38, 0.25), (0.9, 0.9, 0.9), (0.35, 0.45, 0.6)]), cvar)
    m = Model()
    cy = -0.4
    if not flying:
        m.add(limb((0.45, cy + 0.1), (0.45, 0.0), 0.025, 0.02), (0.8, 0.55, 0.2))
        m.add(limb((0.55, cy + 0.1), (0.55, 0.0), 0.025, 0.02), (0.8, 0.55, 0.2))
    m.add(np.array([[0.22, cy - 0.02], [-0.05, cy - 0.1], [-0.05, cy + 0.08], [0.22, cy + 0.06]]), shade(body, 0.8))
    m.add(ellipse(0.45, cy, 0.28, 0.12, angle=-0.15), body)
    m.add(ellipse(0.76, cy - 0.12, 0.11, 0.1), body)
    m.add(np.array([[0.85, cy - 0.15], [1.0, cy - 0.1], [0.85, cy - 0.08]]), (0.9, 0.6, 0.1))  # beak
    m.add(ellipse(0.79, cy - 0.14, 0.018, 0.018), (0.02, 0.02, 0.02))  # eye
    wing = shade(body, 0.7)
    if flying:
        up = rng.uniform(0.3, 0.6)
        m.add(np.array([[0.35, cy - 0.05], [0.6, cy - 0.05], [0.3, cy - 0.05 - up], [0.15, cy - 0.05 - up * 0.9]]), wing)
    else:
        m.add(ellipse(0.4, cy + 0.0, 0.2, 0.07, angle=-0.1), wing)
    return m


# -- vehicles -------------------------------------------------------------------------------
PAINT = [(0.75, 0.1, 0.1), (0.1, 0.2, 0.6), (0.9, 0.9, 0.9), (0.15, 0.15, 0.15), (0.6, 0.6, 0.62),
          (0.9, 0.75, 0.1), (0.1, 0.45, 0.25), (0.5, 0.1, 0.35)]


def _wheel(m: Model, x, y, r) -> None:
    m.add(ellipse(x, y, r, r), (0.06, 0.06, 0.06))
    m.add(ellipse(x, y, r * 0.5, r * 0.5), (0.65, 0.65, 0.68))


def make_car(rng, cvar) -> Model:
    paint = jitter(rng, pick(rng, PAINT), cvar)
    glass = (0.25, 0.32, 0.4)
    m = Model()
    roof = rng.uniform(0.55, 0.7)
    m.add(np.array([[0.0, -0.14], [0.0, -0.32], [0.08, -0.38], [0.25, -0.4], [0.35, -roof], [0.72, -roof],
                    [0.82, -0.4], [0.97, -0.37], [1.0, -0.25], [1.0, -0.14]]), paint)
    m.add(np.array([[0.38, -roof + 0.04], [0.53, -roof + 0.04], [0.53, -0.42], [0.3, -0.42]]), glass)
    m.add(np.array([[0.56, -roof + 0.04], [0.7, -roof + 0.04], [0.78, -0.42], [0.56, -0.42]]), glass)
    m.add(rect(0.93, -0.34, 1.0, -0.29), (0.95, 0.9, 0.6))   # headlight
    m.add(rect(0.0, -0.34, 0.04, -0.28), (0.8, 0.05, 0.05))  # tail light
    for x in (0.2, 0.8):
        _wheel(m, x, -0.12, 0.12)
    return m


def make_bus(rng, cvar) -> Model:
    paint = jitter(rng, pick(rng, [(0.95, 0.75, 0.1), (0.8, 0.12, 0.1), (0.15, 0.35, 0.7), (0.92, 0.92, 0.9),
                                     (0.2, 0.55, 0.3)]), cvar)
    m = Model()
    top = -rng.uniform(0.42, 0.5)
    m.add(np.array([[0, -0.08], [0, top + 0.02], [0.02, top], [0.97, top], [1.0, top + 0.04], [1.0, -0.08]]), paint)
    n_win = int(rng.integers(5, 8))
    for k in range(n_win):
        x0 = 0.04 + k * 0.86 / n_win
        m.add(rect(x0, top + 0.05, x0 + 0.86 / n_win - 0.02, top + 0.17), (0.22, 0.28, 0.35))
    m.add(rect(0.92, top + 0.05, 0.99, -0.12), (0.22, 0.28, 0.35))  # door / windscreen
    m.add(rect(0.0, top + 0.22, 1.0, top + 0.25), shade(paint, 0.6))  # stripe
    for x in (0.16, 0.8):
        _wheel(m, x, -0.08, 0.08)
    return m


def make_boat(rng, cvar) -> Model:
    hull = jitter(rng, pick(rng, [(0.9, 0.9, 0.9), (0.7, 0.12, 0.1), (0.12, 0.2, 0.5), (0.45, 0.3, 0.15)]), cvar)
    kind = int(rng.choice(3, p=[0.45, 0.35, 0.2]))  # 0 sail, 1 motor, 2 rowing (flat, hard to see)
    m = Model()
    depth = 0.14 if kind != 2 else 0.1
    m.add(np.array([[-0.02, -depth], [1.04, -depth - 0.04], [0.88, 0.0], [0.1, 0.0]]), hull)
    m.add(rect(0.0, -depth, 1.0, -depth + 0.025), shade(hull, 0.6))
    if kind == 0:
        mast = rng.uniform(0.8, 1.1)
        m.add(limb((0.45, -depth), (0.45, -depth - mast), 0.02, 0.015), (0.3, 0.25, 0.2))
        sail = jitter(rng, (0.95, 0.95, 0.92), cvar * 0.3)
        m.add(np.array([[0.47, -depth - mast], [0.47, -depth - 0.06], [0.9, -depth - 0.06]]), sail)
        m.add(np.array([[0.43, -depth - mast * 0.85], [0.43, -depth - 0.06], [0.12, -depth - 0.06]]), shade(sail, 0.9))
    elif kind == 1:
        m.add(np.array([[0.3, -depth], [0.3, -depth - 0.16], [0.6, -depth - 0.18], [0.7, -depth]]), (0.92, 0.92, 0.9))
        m.add(rect(0.36, -depth - 0.14, 0.56, -depth - 0.08), (0.2, 0.25, 0.35))
    m.anchors["deck"] = np.array([0.5 if kind != 1 else 0.78, -depth])
    return m


def make_aeroplane(rng, cvar) -> Model:
    body = jitter(rng, pick(rng, [(0.92, 0.92, 0.94), (0.75, 0.76, 0.8), (0.9, 0.9, 0.9)]), cvar * 0.5)
    accent = jitter(rng, pick(rng, PAINT), cvar)
    m = Model()
    r = rng.uniform(0.055, 0.075)
    m.add(np.array([[0.62, -0.06], [0.48, 0.1], [0.4, 0.1], [0.47, -0.06]]), shade(body, 0.8))  # far wing
    m.add(ellipse(0.5, -0.06, 0.48, r * 0.999, n=40), body)  # fuselage
    m.add(np.array([[0.0, -0.08], [0.1, -0.08], [0.04, -0.3], [-0.03, -0.3]]), accent)  # tail fin
    m.add(np.array([[0.02, -0.06], [0.12, -0.06], [0.05, 0.02], [-0.01, 0.02]]), shade(body, 0.85))  # stabiliser
    m.add(np.array([[0.58, -0.05], [0.36, 0.16], [0.3, 0.16], [0.44, -0.05]]), shade(body, 0.9))  # near wing
    m.add(ellipse(0.47, 0.03, 0.06, 0.025), shade(body, 0.6))  # engine
    m.add(rect(0.15, -0.06 + r * 0.2, 0.9, -0.06 + r * 0.45), accent)  # cheat line
    for x in np.arange(0.2, 0.86, 0.05):
        m.add(ellipse(x, -0.06 - r * 0.25, 0.008, 0.012), (0.15, 0.18, 0.25))
    m.add(np.array([[0.9, -0.06 - r * 0.7], [0.95, -0.06 - r * 0.4], [0.9, -0.06 - r * 0.3]]), (0.1, 0.12, 0.2))
    return m


def make_person(rng, cvar, pose: str = "standing") -> Model:
    """Person of height ~1, facing the viewer: ``pose`` "standing", "sitting" (riding) or "half" (in a boat)."""
    skin = pick(rng, [(0.96, 0.8, 0.68), (0.85, 0.64, 0.48), (0.55, 0.38, 0.26), (0.35, 0.24, 0.16)])
    shirt = jitter(rng, pick(rng, PAINT + [(0.95, 0.95, 0.95), (0.3, 0.5, 0.8)]), cvar)
    trousers = jitter(rng, pick(rng, [(0.18, 0.25, 0.45), (0.15, 0.15, 0.15), (0.55, 0.48, 0.35)]), cvar * 0.5)
    hair = pick(rng, [(0.1, 0.07, 0.05), (0.4, 0.25, 0.1), (0.8, 0.65, 0.35), (0.5, 0.5, 0.5)])
    m = Model(pose="Frontal")
    if pose == "standing":
        spread = rng.uniform(0.02, 0.06)
        for side in (-1, 1):
            m.add(limb((side * 0.05, -0.5), (side * (0.05 + spread), -0.03), 0.08, 0.06), trousers)
            m.add(ellipse(side * (0.06 + spread), -0.02, 0.045, 0.02), (0.1, 0.08, 0.07))
    elif pose == "sitting":
        for side in (-1, 1):  # thighs forward-down over the horse's flanks, shins hanging
            m.add(limb((side * 0.05, -0.5), (side * 0.1, -0.32), 0.09, 0.07), trousers)
            m.add(limb((side * 0.1, -0.32), (side * 0.09, -0.12), 0.07, 0.05), trousers)
    m.add(np.array([[-0.12, -0.82], [0.12, -0.82], [0.1, -0.48], [-0.1, -0.48]]), shirt)  # torso
    arm = rng.uniform(0.0, 0.12)
    for side in (-1, 1):
        m.add(limb((side * 0.11, -0.8), (side * (0.15 + arm), -0.55), 0.06, 0.05), shirt)
        m.add(ellipse(side * (0.15 + arm), -0.53, 0.03, 0.03), skin)
    m.add(limb((0, -0.84), (0, -0.87), 0.06, 0.06), skin)  # neck
    m.add(ellipse(0, -0.93, 0.075, 0.085), skin)
    m.add(ellipse(0, -0.975, 0.08, 0.05), hair)
    if pose == "half":
        m.parts = [(p, c) for p, c in m.parts if p[:, 1].max() <= -0.45]
        m.add(rect(-0.1, -0.5, 0.1, -0.45), trousers)
    m.anchors["hip"] = np.array([0.0, -0.5])
    return m


MAKERS = {"horse": make_horse, "cow": make_cow, "sheep": make_sheep, "dog": make_dog, "cat": make_cat,
          "bird": make_bird, "car": make_car, "bus": make_bus, "boat": make_boat, "aeroplane": make_aeroplane, "person": make_person}


# -- placing and painting -------------------------------------------------------------------
@dataclass
class Placed:
    """A model mapped to pixel coordinates (x right, y down; continuous, pixel j spans [j, j + 1))."""

    name: str
    parts: list[tuple[np.ndarray, np.ndarray]]
    anchors: dict[str, np.ndarray]
    pose: str

    def extent(self) -> tuple[float, float, float, float]:
        pts = np.concatenate([p for p, _ in self.parts])
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())


def place(name: str, model: Model, height_px: float, foot: tuple[float, float], flip: bool = False,
          angle: float = 0.0, anchor: str | None = None) -> Placed:
    """Map ``model`` to pixels so that its extent is ``height_px`` tall.

    ``foot`` is where the bottom centre of the extent lands (or the named ``anchor`` point, e.g.
    a rider's hip); ``flip`` mirrors it left-right; ``angle`` rotates (radians, about ``foot``).
    """
    x0, y0, x1, y1 = model.extent()
    scale = height_px / max(y1 - y0, 1e-6)
    ref = model.anchors[anchor] if anchor else np.array([(x0 + x1) / 2, y1])
    sign = -1.0 if flip else 1.0
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])

    def tf(pts):
        local = (np.asarray(pts) - ref) * scale
        local[..., 0] *= sign
        return local @ rot.T + np.asarray(foot)

    pose = model.pose
    if pose in ("Left", "Right") and flip:
        pose = "Left" if pose == "Right" else "Right"
    return Placed(name, [(tf(p), col) for p, col in model.parts], {k: tf(v) for k, v in model.anchors.items()}, pose)


def paint(canvas: np.ndarray, placed: Placed) -> np.ndarray:
    """Fill ``placed``'s parts into the uint8 (H, W, 3) ``canvas`` (anti-aliased); return its (H, W) bool mask."""
    mask = np.zeros(canvas.shape[:2], np.uint8)
    for pts, colour in placed.parts:
        fixed = np.round(pts * (1 << SUBPIXEL_BITS) - 0.5 * (1 << SUBPIXEL_BITS)).astype(np.int32)[None]
        cv2.fillPoly(canvas, fixed, tuple(int(v) for v in np.clip(colour * 255, 0, 255)), cv2.LINE_AA, SUBPIXEL_BITS)
        cv2.fillPoly(mask, fixed, 255, cv2.LINE_8, SUBPIXEL_BITS)
    return mask > 0
