"""Procedural side views of bicycles, motorbikes and trains for toyvoc (same frame as :mod:`.drawing`).

x to the front, y down, ground contact at y = 0, length ~1 per vehicle (a train ~1 per carriage).
Bicycle wheels are rings with spokes (the background shows through them, as in VOC's masks);
motorbike wheels are thick tyres on solid rims with an engine block and tank between them, so the
two two-wheelers differ in mass as much as in outline. Anchors: ``saddle``/``seat`` (a rider's hip).
"""
from __future__ import annotations

import numpy as np

from .drawing import PAINT, Model, ellipse, limb, pick, rect, ring, shade
from .textures import jitter

_CHROME = (0.78, 0.78, 0.8)
_TYRE = (0.07, 0.07, 0.07)


def make_bicycle(rng, cvar) -> Model:
    frame = jitter(rng, pick(rng, PAINT + [(0.1, 0.5, 0.75), (0.95, 0.45, 0.1)]), cvar)
    m = Model()
    r = rng.uniform(0.18, 0.21)
    rear, front = np.array([0.2, -r]), np.array([0.8, -r])
    bb = np.array([0.46, -r + 0.03])
    seat = np.array([rng.uniform(0.36, 0.41), -r - rng.uniform(0.34, 0.4)])
    head = np.array([0.73, seat[1] + rng.uniform(-0.02, 0.03)])
    for hub in (rear, front):
        m.add(ring(hub[0], hub[1], r, r * 0.86), _TYRE)
        m.add(ring(hub[0], hub[1], r * 0.86, r * 0.8), _CHROME)
        for a in np.linspace(0, np.pi, 4, endpoint=False) + rng.uniform(0, np.pi):
            d = np.array([np.cos(a), np.sin(a)]) * r * 0.82
            m.add(limb(hub - d, hub + d, 0.008, 0.008), _CHROME)
        m.add(ellipse(hub[0], hub[1], 0.025, 0.025), _CHROME)
    w = 0.03
    for p, q in ((rear, bb), (bb, seat), (seat, head), (bb, head), (seat, rear)):
        m.add(limb(p, q, w, w), frame)
    m.add(limb(head + (0.0, 0.02), front, w * 0.9, w * 0.7), shade(frame, 0.8))  # fork
    m.add(ellipse(bb[0], bb[1], 0.045, 0.045), (0.3, 0.3, 0.32))  # chainring
    crank = rng.uniform(0, 2 * np.pi)
    pedal = bb + 0.07 * np.array([np.cos(crank), np.sin(crank)])
    m.add(limb(bb, pedal, 0.018, 0.018), (0.25, 0.25, 0.25))
    m.add(rect(pedal[0] - 0.03, pedal[1] - 0.008, pedal[0] + 0.03, pedal[1] + 0.008), (0.1, 0.1, 0.1))
    post = seat + (-0.01, -0.04)
    m.add(limb(seat, post, 0.02, 0.02), _CHROME)
    m.add(ellipse(post[0] - 0.01, post[1] - 0.01, 0.065, 0.02), (0.08, 0.07, 0.07))  # saddle
    stem = head + (-0.01, -0.08)
    m.add(limb(head, stem, 0.022, 0.022), _CHROME)
    m.add(limb(stem, stem + (-0.06, -0.01), 0.025, 0.025), (0.1, 0.1, 0.1))  # bar end / grip
    if rng.random() < 0.4:  # mudguard over the back wheel, or a basket at the front
        m.add(limb(rear + (-0.12, -r * 0.75), rear + (0.12, -r * 0.9), 0.02, 0.02), shade(frame, 0.7))
    elif rng.random() < 0.3:
        m.add(rect(head[0] + 0.02, head[1] - 0.02, head[0] + 0.16, head[1] + 0.1), (0.55, 0.42, 0.25))
    m.anchors["saddle"] = post + (-0.01, -0.02)
    return m


def make_motorbike(rng, cvar) -> Model:
    paint = jitter(rng, pick(rng, PAINT), cvar)
    dark = (0.16, 0.16, 0.17)
    m = Model()
    r = rng.uniform(0.16, 0.18)
    rear, front = np.array([0.18, -r]), np.array([0.84, -r])
    sport = rng.random() < 0.4
    m.add(limb((0.36, -0.36), rear, 0.05, 0.04), dark)  # swing arm
    m.add(limb((0.5, -0.16), (0.02, -0.22 - 0.04 * sport), 0.05, 0.06), _CHROME)  # exhaust
    m.add(np.array([[0.36, -0.14], [0.6, -0.12], [0.66, -0.3], [0.6, -0.4], [0.38, -0.4], [0.33, -0.26]]), dark)
    for k in range(3):  # cooling fins
        m.add(rect(0.42, -0.36 + 0.07 * k, 0.6, -0.34 + 0.07 * k), (0.45, 0.45, 0.47))
    m.add(np.array([[0.06, -0.4], [0.32, -0.47], [0.4, -0.38], [0.12, -0.3]]), paint)  # tail
    m.add(np.array([[0.24, -0.47], [0.48, -0.5], [0.5, -0.44], [0.26, -0.42]]), (0.06, 0.05, 0.05))  # seat
    m.add(ellipse(0.58, -0.5, 0.13, 0.065, angle=0.1), paint)  # tank
    top = np.array([0.72, -0.62])
    m.add(limb(top, front, 0.045, 0.04), _CHROME)  # fork
    if sport:  # fairing down to the engine
        m.add(np.array([[0.6, -0.58], [0.76, -0.62], [0.84, -0.44], [0.76, -0.26], [0.6, -0.28]]), paint)
        m.add(np.array([[0.72, -0.66], [0.78, -0.62], [0.74, -0.58]]), (0.25, 0.3, 0.35))  # screen
    m.add(ellipse(0.79, -0.52, 0.035, 0.04), (0.98, 0.95, 0.7))  # headlight
    m.add(limb(top, top + (-0.08, -0.06), 0.025, 0.02), (0.1, 0.1, 0.1))  # handlebar
    for hub in (rear, front):
        m.add(ring(hub[0], hub[1], r, r * 0.68), _TYRE)
        m.add(ellipse(hub[0], hub[1], r * 0.68, r * 0.68), (0.55, 0.55, 0.58))
        m.add(ellipse(hub[0], hub[1], r * 0.25, r * 0.25), dark)
    m.add(np.array([[0.74, -r - 0.12], [0.94, -r - 0.12], [0.92, -r - 0.08], [0.76, -r - 0.08]]), paint)  # fender
    m.anchors["seat"] = np.array([0.36, -0.5])
    return m


def make_train(rng, cvar, n_cars: int | None = None) -> Model:
    """A train of ``n_cars`` carriages (1-4), the front one with a nose; very long, so often truncated."""
    paint = jitter(rng, pick(rng, [(0.8, 0.1, 0.1), (0.15, 0.25, 0.6), (0.93, 0.93, 0.9), (0.95, 0.8, 0.15),
                                    (0.15, 0.45, 0.3), (0.6, 0.6, 0.62)]), cvar)
    stripe = jitter(rng, pick(rng, PAINT), cvar)
    glass = (0.18, 0.22, 0.28)
    n = int(rng.integers(1, 5)) if n_cars is None else n_cars
    fast = rng.random() < 0.5
    m = Model()
    top, floor = -0.42, -0.08
    for k in range(n):
        x0, x1 = k * 1.03, k * 1.03 + 1.0
        if k:
            m.add(rect(x0 - 0.04, -0.3, x0 + 0.01, -0.14), (0.12, 0.12, 0.12))  # gangway
        for bx in (x0 + 0.15, x1 - 0.15):  # bogies with two wheels each
            m.add(rect(bx - 0.12, floor - 0.02, bx + 0.12, floor + 0.03), (0.15, 0.15, 0.15))
            for wx in (bx - 0.07, bx + 0.07):
                m.add(ellipse(wx, -0.045, 0.045, 0.045), (0.1, 0.1, 0.1))
        m.add(rect(x0, top, x1, floor), paint)
        m.add(rect(x0 + 0.02, top - 0.03, x1 - 0.02, top), shade(paint, 0.7))  # roof
        m.add(rect(x0, -0.17, x1, -0.14), stripe)
        n_win = 7
        for j in range(n_win):
            wx = x0 + 0.12 + j * 0.78 / n_win
            if j in (0, n_win - 1):  # doors at the carriage ends
                m.add(rect(wx - 0.03, top + 0.06, wx + 0.05, floor - 0.01), shade(paint, 0.75))
            else:
                m.add(rect(wx, top + 0.07, wx + 0.78 / n_win - 0.025, top + 0.17), glass)
    xf = (n - 1) * 1.03 + 1.0
    if fast:  # streamlined nose
        m.add(np.array([[xf, top], [xf + 0.1, top + 0.04], [xf + 0.26, floor - 0.06], [xf + 0.24, floor],
                        [xf, floor]]), paint)
        m.add(np.array([[xf + 0.02, top + 0.04], [xf + 0.1, top + 0.06], [xf + 0.17, top + 0.18],
                        [xf + 0.02, top + 0.18]]), glass)
        m.add(ellipse(xf + 0.21, floor - 0.05, 0.025, 0.015), (0.98, 0.95, 0.75))
    else:  # flat front cab
        m.add(rect(xf, top + 0.02, xf + 0.06, floor), shade(paint, 0.85))
        m.add(rect(xf + 0.005, top + 0.06, xf + 0.05, top + 0.18), glass)
        m.add(ellipse(xf + 0.04, floor - 0.05, 0.015, 0.015), (0.98, 0.95, 0.75))
    if rng.random() < 0.5:  # pantograph on the front carriage
        px = xf - 0.4
        m.add(limb((px, top - 0.03), (px + 0.1, top - 0.15), 0.015, 0.012), (0.2, 0.2, 0.2))
        m.add(limb((px + 0.1, top - 0.15), (px + 0.02, top - 0.2), 0.012, 0.012), (0.2, 0.2, 0.2))
        m.add(rect(px - 0.04, top - 0.215, px + 0.1, top - 0.2), (0.2, 0.2, 0.2))
    return m


MAKERS = {"bicycle": make_bicycle, "motorbike": make_motorbike, "train": make_train}
