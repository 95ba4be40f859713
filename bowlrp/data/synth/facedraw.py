"""One procedural face for ``toyfaces``: its look from age and gender cues, drawn into an "original" photo
with a region label map, and the two Adience alignments of it.

Face frame: the face ellipse's centre at (0, 0), its half-height 1, x right, y down. Age shows through
child proportions (rounder face, larger eyes set lower, so the eye-to-mouth distance shrinks), forehead
wrinkles, crow's feet and smile lines, grey then white hair, male baldness, glasses; gender through hair
length, beard or stubble, lip colour, brow weight and jaw width. Every region is painted with
:func:`bowlrp.data.synth.drawing.paint` and also into a label map (:data:`REGION_LABELS`).

Alignments (SPEC §2.4): ``rotation`` turns the photo back by the (slightly misestimated) tilt about the
detected face centre, leaving black corners where the rotated crop leaves the photo; ``inplane`` is the
affine map that puts both eyes and the mouth centre onto an *adult* reference layout, which stretches the
shorter faces of children (dissertation Fig. 5.5).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .drawing import Placed, ellipse, limb, paint, ring, shade

REGION_LABELS = {"background": 0, "skin": 1, "hair": 2, "eyes": 3, "nose": 4, "mouth": 5, "beard": 6,
                 "glasses": 7, "clothes": 8, "void": 9}
SKIN = ((0.96, 0.80, 0.69), (0.90, 0.72, 0.58), (0.78, 0.57, 0.42), (0.58, 0.40, 0.28), (0.42, 0.28, 0.19))
HAIR = ((0.08, 0.06, 0.05), (0.30, 0.18, 0.09), (0.55, 0.38, 0.20), (0.85, 0.72, 0.45), (0.60, 0.25, 0.10))
IRIS = ((0.30, 0.18, 0.08), (0.25, 0.45, 0.70), (0.30, 0.50, 0.30))
#: where the in-plane alignment puts the eyes and mouth (face frame of an adult, see :func:`look`)
ADULT_EYE_Y, ADULT_EYE_DX, ADULT_MOUTH_Y = -0.12, 0.36, 0.55
FACE_SCALE = 0.34  # face half-height / image side in both aligned images
FACE_CENTRE = (0.5, 0.47)  # face centre / image side in both aligned images


@dataclass
class Look:
    """Everything drawn, in face-frame units and RGB in [0, 1]."""

    age: float
    gender: str
    smiling: bool
    rx: float
    eye_y: float
    eye_dx: float
    eye_r: float
    nose_y: float
    mouth_y: float
    mouth_w: float
    skin: np.ndarray
    hair: np.ndarray
    hairstyle: str  # long, short, bald, sparse
    wrinkles: int
    grey: float
    beard: str  # none, stubble, full
    glasses: bool
    lips: np.ndarray
    brow: float
    iris: np.ndarray
    clothes: np.ndarray
    background: np.ndarray


def look(rng: np.random.Generator, age: float, gender: str, smiling: bool) -> Look:
    """Sample a face of ``age`` years and ``gender`` (``"m"``/``"f"``) with the cues of the module docstring."""
    child = float(np.clip((16.0 - age) / 16.0, 0.0, 1.0))
    old = float(np.clip((age - 30.0) / 40.0, 0.0, 1.0))
    female = gender == "f"
    grey = float(np.clip((age - 36.0) / 26.0 + rng.normal(0, 0.1), 0.0, 1.0))
    base_hair = np.asarray(HAIR[int(rng.integers(len(HAIR)))])
    hair = (1 - grey) * base_hair + grey * np.array([0.88, 0.88, 0.86])
    if age < 2.5:
        style = "sparse"
    elif female:
        style = "long" if rng.random() < 0.8 else "short"
    else:
        style = "bald" if rng.random() < 0.7 * old else ("long" if rng.random() < 0.08 else "short")
    beard = "none"
    if not female and age >= 15:
        p_full = 0.15 if age < 21 else 0.5
        beard = "full" if rng.random() < p_full else ("stubble" if rng.random() < 0.4 else "none")
    skin = np.asarray(SKIN[int(rng.integers(len(SKIN)))]) + rng.normal(0, 0.02, 3)
    lips = np.array([0.78, 0.22, 0.30]) if female and age >= 15 and rng.random() < 0.75 else shade(skin, 0.72)
    eye_y = ADULT_EYE_Y + 0.30 * child + rng.normal(0, 0.015)
    return Look(
        age=age, gender=gender, smiling=smiling,
        rx=0.72 + 0.14 * child + (0.0 if female else 0.05) + rng.normal(0, 0.015),
        eye_y=eye_y, eye_dx=ADULT_EYE_DX + rng.normal(0, 0.01), eye_r=0.10 + 0.05 * child,
        nose_y=eye_y + 0.36 - 0.14 * child, mouth_y=ADULT_MOUTH_Y + 0.04 * child + rng.normal(0, 0.015),
        mouth_w=0.40 - 0.08 * child, skin=np.clip(skin, 0, 1), hair=np.clip(hair, 0, 1), hairstyle=style,
        wrinkles=int(np.clip(round((age - 27.0) / 8.0 + rng.normal(0, 0.5)), 0, 5)), grey=grey, beard=beard,
        glasses=bool(rng.random() < 0.05 + 0.55 * old), lips=np.clip(lips, 0, 1),
        brow=0.035 if female else 0.065, iris=np.asarray(IRIS[int(rng.integers(len(IRIS)))]),
        clothes=rng.uniform(0.1, 0.9, 3), background=rng.uniform(0.15, 0.85, 3))


def _cap(rx: float, ry: float, cy: float, hairline: float, n: int = 40) -> np.ndarray:
    """The part of the ellipse (0, cy, rx, ry) above ``hairline``, closed along it."""
    t = np.linspace(np.pi, 2 * np.pi, n)
    pts = np.stack([rx * np.cos(t), cy + ry * np.sin(t)], 1)
    pts = pts[pts[:, 1] <= hairline]
    return pts if len(pts) >= 3 else np.array([[-rx, hairline], [0, cy - ry], [rx, hairline]])


def _below(points: np.ndarray, y: float) -> np.ndarray:
    """The points of a convex outline at or below ``y`` (a beard from the face outline)."""
    return points[points[:, 1] >= y]


def face_parts(f: Look, rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(region, outline in face-frame units, colour) in drawing order."""
    parts: list[tuple[str, np.ndarray, np.ndarray]] = []
    add = lambda region, pts, colour: parts.append((region, np.asarray(pts, float), np.clip(colour, 0, 1)))
    outline = ellipse(0, 0, f.rx, 1.0, n=48)
    if f.hairstyle == "long":
        add("hair", np.array([[-f.rx * 1.3, -0.4], [-f.rx * 1.35, 1.7], [f.rx * 1.35, 1.7], [f.rx * 1.3, -0.4]]),
            f.hair)
        add("hair", ellipse(0, -0.3, f.rx * 1.3, 0.95, n=40), f.hair)
    add("skin", limb((0, 0.7), (0, 1.6), f.rx * 0.8, f.rx * 0.9), shade(f.skin, 0.92))
    add("clothes", ellipse(0, 2.2, 1.9, 0.75, n=40), f.clothes)
    if f.hairstyle == "long":  # hair over the shoulders
        for side in (-1, 1):
            add("hair", limb((side * f.rx * 1.05, 0.2), (side * f.rx * 1.15, 1.75), 0.35, 0.3), f.hair)
    add("skin", outline, f.skin)
    hairline = {"long": -0.55, "short": -0.62, "bald": -0.88, "sparse": -0.8}[f.hairstyle]
    if f.hairstyle == "bald":  # a fringe at the sides only
        for side in (-1, 1):
            add("hair", ellipse(side * f.rx * 0.95, -0.35, 0.12, 0.3), f.hair)
    else:
        add("hair", _cap(f.rx * 1.06, 1.08, 0.0, hairline), f.hair if f.hairstyle != "sparse"
            else 0.6 * f.hair + 0.4 * f.skin)
    line = shade(f.skin, 0.62)
    forehead_top, forehead_bottom = hairline + 0.1, f.eye_y - 0.2
    for k in range(f.wrinkles):
        y = forehead_bottom - k * 0.075
        if y > forehead_top:
            add("skin", limb((-f.rx * 0.5, y), (f.rx * 0.5, y + rng.normal(0, 0.01)), 0.03, 0.03), line)
    if f.wrinkles >= 3:  # crow's feet and smile lines
        for side in (-1, 1):
            x = side * (f.eye_dx + f.eye_r * 1.7)
            add("skin", limb((x, f.eye_y - 0.03), (x + side * 0.14, f.eye_y - 0.08), 0.025, 0.02), line)
            add("skin", limb((x, f.eye_y + 0.03), (x + side * 0.14, f.eye_y + 0.08), 0.025, 0.02), line)
            add("skin", limb((side * 0.2, f.nose_y + 0.02), (side * 0.3, f.mouth_y + 0.1), 0.03, 0.03), line)
    for side in (-1, 1):
        x = side * f.eye_dx
        add("eyes", limb((x - 0.14, f.eye_y - 0.17), (x + 0.14, f.eye_y - 0.19 + side * 0.02), f.brow, f.brow),
            shade(f.hair, 0.8) if f.grey < 0.7 else np.array([0.6, 0.6, 0.6]))
        add("eyes", ellipse(x, f.eye_y, f.eye_r * 1.45, f.eye_r * 0.8), np.array([0.97, 0.97, 0.95]))
        add("eyes", ellipse(x, f.eye_y, f.eye_r * 0.62, f.eye_r * 0.62, n=16), f.iris)
        add("eyes", ellipse(x, f.eye_y, f.eye_r * 0.28, f.eye_r * 0.28, n=12), np.array([0.05, 0.05, 0.05]))
    add("nose", np.array([[0, f.eye_y + 0.1], [-0.09, f.nose_y], [0.09, f.nose_y]]), shade(f.skin, 0.8))
    if f.beard != "none":
        colour = f.hair if f.beard == "full" else 0.55 * f.skin + 0.45 * f.hair
        add("beard", _below(ellipse(0, 0, f.rx * 1.02, 1.04, n=64), f.nose_y + 0.06), colour)
        add("beard", limb((-0.2, f.nose_y + 0.08), (0.2, f.nose_y + 0.08), 0.08, 0.08), colour)
    w, y = f.mouth_w / 2, f.mouth_y
    if f.smiling:  # an open smile showing teeth
        t = np.linspace(0, np.pi, 16)
        lower = np.stack([-w * np.cos(t), y + 0.2 * np.sin(t)], 1)
        add("mouth", np.concatenate([[[-w * 1.1, y - 0.06], [0, y - 0.01], [w * 1.1, y - 0.06]], lower[::-1]]),
            np.array([0.35, 0.05, 0.08]))
        add("mouth", np.array([[-w * 0.9, y - 0.04], [0, y + 0.0], [w * 0.9, y - 0.04], [w * 0.7, y + 0.05],
                               [-w * 0.7, y + 0.05]]), np.array([0.98, 0.98, 0.96]))
        add("mouth", limb((-w * 1.1, y - 0.06), (w * 1.1, y - 0.06), 0.03, 0.03), f.lips)
    else:
        add("mouth", limb((-w, y), (w, y), 0.075, 0.075), f.lips)
    if f.glasses:
        frame = np.array([0.1, 0.1, 0.12])
        for side in (-1, 1):
            add("glasses", ring(side * f.eye_dx, f.eye_y, f.eye_r * 2.1, f.eye_r * 1.75), frame)
        add("glasses", limb((-f.eye_dx + f.eye_r * 2, f.eye_y), (f.eye_dx - f.eye_r * 2, f.eye_y), 0.04, 0.04),
            frame)
    return parts


def landmarks(f: Look) -> np.ndarray:
    """Left eye, right eye, mouth centre in face-frame units, (3, 2)."""
    return np.array([[-f.eye_dx, f.eye_y], [f.eye_dx, f.eye_y], [0.0, f.mouth_y]])


def _similarity(scale: float, angle: float, centre) -> np.ndarray:
    """2x3 matrix of p -> centre + scale * R(angle) p."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, centre[0]], [scale * s, scale * c, centre[1]]])


def _apply(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ matrix[:, :2].T + matrix[:, 2]


@dataclass
class Photo:
    """An "original" photo with the face: pixels uint8, labels uint8, the face frame -> pixel matrix."""

    pixels: np.ndarray
    labels: np.ndarray
    frame: np.ndarray
    tilt: float  # degrees
    box: tuple[int, int, int, int]  # x, y, dx, dy of the face in the photo


def draw_photo(f: Look, rng: np.random.Generator, side: int, tilt: float) -> Photo:
    """The face in a ``side`` x ``side`` photo, tilted by ``tilt`` degrees, on a shaded background."""
    ramp = np.linspace(-0.12, 0.12, side)[:, None, None]
    pixels = np.clip(f.background + ramp + rng.normal(0, 0.03, (side, side, 3)), 0, 1)
    pixels = np.ascontiguousarray(np.round(pixels * 255), dtype=np.uint8)
    labels = np.zeros((side, side), np.uint8)
    scale = side * FACE_SCALE * rng.uniform(0.92, 1.08)
    centre = side * (np.array(FACE_CENTRE) + rng.normal(0, 0.025, 2))
    frame = _similarity(scale, np.deg2rad(tilt), centre)
    for region, pts, colour in face_parts(f, rng):
        mask = paint(pixels, Placed(region, [(_apply(frame, pts), colour)], {}, "Frontal"))
        labels[mask] = REGION_LABELS[region]
    corners = _apply(frame, np.array([[-f.rx, -1.0], [f.rx, -1.0], [-f.rx, 1.0], [f.rx, 1.0]]))
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    return Photo(pixels, labels, frame, tilt, (int(x0), int(y0), int(x1 - x0), int(y1 - y0)))


def _warp(photo: Photo, matrix: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """``matrix`` (photo -> ``side`` px output) applied at the photo's resolution, then area-downscaled
    (labels: the nearest pixel), so thin lines stay anti-aliased."""
    factor = max(1, photo.pixels.shape[0] // side)
    big = side * factor
    m = matrix * factor
    pixels = cv2.warpAffine(photo.pixels, m, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=(0, 0, 0))
    labels = cv2.warpAffine(photo.labels, m, (big, big), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=REGION_LABELS["void"])
    if factor > 1:
        pixels = cv2.resize(pixels, (side, side), interpolation=cv2.INTER_AREA)
        labels = np.ascontiguousarray(labels[factor // 2::factor, factor // 2::factor])
    return pixels, labels


def align_rotation(photo: Photo, rng: np.random.Generator, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Coarse tilt alignment: undo the tilt (misestimated by a few degrees) about the detected centre."""
    estimate = np.deg2rad(photo.tilt + rng.normal(0, 3.0))
    centre = _apply(photo.frame, np.zeros((1, 2)))[0] + rng.normal(0, 0.02 * photo.pixels.shape[0], 2)
    scale = side / photo.pixels.shape[0]
    # output = out_centre + scale * R(-estimate) (p - centre)
    rot = _similarity(scale, -estimate, (0, 0))
    offset = np.array(FACE_CENTRE) * side - rot[:, :2] @ centre
    return _warp(photo, np.concatenate([rot[:, :2], offset[:, None]], 1), side)


def align_inplane(photo: Photo, f: Look, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Landmark alignment: the affine map of the eyes and mouth onto the adult reference layout."""
    reference = np.array([[-ADULT_EYE_DX, ADULT_EYE_Y], [ADULT_EYE_DX, ADULT_EYE_Y], [0.0, ADULT_MOUTH_Y]])
    dst = reference * FACE_SCALE * side + np.array(FACE_CENTRE) * side
    src = _apply(photo.frame, landmarks(f))
    matrix = cv2.getAffineTransform(src.astype(np.float32), dst.astype(np.float32))
    return _warp(photo, matrix, side)
