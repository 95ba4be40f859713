"""Backgrounds for toyvoc: real textures from scikit-image's bundled photos, recoloured.

``skimage.data.grass``, ``gravel`` and ``brick`` (512 x 512 grey photographs, shipped with
scikit-image, no download) are cropped at a random place and scale, normalised to zero mean and
unit spread, and used as the luminance detail of a coloured region. All functions draw into a
float (H, W, 3) RGB canvas in [0, 1] and take the generator's ``rng`` explicitly.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

TEXTURES = ("grass", "gravel", "brick")


@lru_cache(maxsize=None)
def _texture(name: str) -> np.ndarray:
    import skimage.data

    if name not in TEXTURES:
        raise ValueError(f"unknown texture {name!r}")
    img = getattr(skimage.data, name)().astype(np.float32)
    img = (img - img.mean()) / (img.std() + 1e-6)
    img.setflags(write=False)
    return img


def texture_patch(rng: np.random.Generator, name: str, h: int, w: int, zoom: float = 1.0,
                  squash: float = 1.0) -> np.ndarray:
    """(h, w) float32 detail map (mean ~0, std ~1) from a random crop of texture ``name``.

    ``zoom`` > 1 enlarges the texture (coarser grain); ``squash`` < 1 compresses it vertically
    (e.g. ripples on water). Crops larger than the 512 px source are tiled by mirroring.
    """
    src = _texture(name)
    crop_h = max(2, int(round(h / (zoom * squash))))
    crop_w = max(2, int(round(w / zoom)))
    reps_y, reps_x = -(-crop_h // src.shape[0]) + 1, -(-crop_w // src.shape[1]) + 1
    if reps_y > 1 or reps_x > 1:
        row = np.concatenate([src if k % 2 == 0 else src[:, ::-1] for k in range(reps_x)], axis=1)
        src = np.concatenate([row if k % 2 == 0 else row[::-1] for k in range(reps_y)], axis=0)
    y0 = int(rng.integers(0, src.shape[0] - crop_h + 1))
    x0 = int(rng.integers(0, src.shape[1] - crop_w + 1))
    crop = np.ascontiguousarray(src[y0:y0 + crop_h, x0:x0 + crop_w])
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def jitter(rng: np.random.Generator, colour, amount: float) -> np.ndarray:
    """``colour`` (3,) with independent Gaussian noise of std ``amount`` per channel, clipped to [0, 1]."""
    return np.clip(np.asarray(colour, dtype=np.float64) + rng.normal(0, amount, 3), 0.0, 1.0)


def sky(rng: np.random.Generator, canvas: np.ndarray, y0: int, y1: int, clouds: float = 0.0) -> None:
    """Near-uniform sky in rows [y0, y1): a gentle vertical gradient, faint noise, optional soft clouds.

    ``clouds`` is the expected number of clouds (Poisson).
    """
    h, w = y1 - y0, canvas.shape[1]
    if h <= 0:
        return
    top = jitter(rng, (0.38, 0.58, 0.86), 0.04)
    bottom = np.clip(top + rng.uniform(0.08, 0.2), 0, 1)  # paler towards the horizon
    t = np.linspace(0, 1, h)[:, None, None]
    band = top * (1 - t) + bottom * t
    band = np.broadcast_to(band, (h, w, 3)).copy() + rng.normal(0, 0.004, (h, w, 1))
    for _ in range(int(rng.poisson(clouds))):
        cloud = np.zeros((h, w), np.float32)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h * 0.8)
        for _k in range(int(rng.integers(3, 7))):
            cv2.ellipse(cloud, (int(cx + rng.normal(0, w * 0.05)), int(cy + rng.normal(0, h * 0.02))),
                        (int(w * rng.uniform(0.04, 0.09)) + 1, int(h * rng.uniform(0.02, 0.05)) + 1),
                        0, 0, 360, 1.0, -1)
        cloud = cv2.GaussianBlur(cloud, (0, 0), max(1.0, w * 0.012))[..., None] * rng.uniform(0.6, 0.9)
        band = band * (1 - cloud) + 0.97 * cloud
    canvas[y0:y1] = np.clip(band, 0, 1)


def grass(rng: np.random.Generator, canvas: np.ndarray, y0: int, y1: int, colour_var: float) -> None:
    """Grass texture in rows [y0, y1), greener and coarser towards the bottom (nearer)."""
    h, w = y1 - y0, canvas.shape[1]
    if h <= 0:
        return
    base = jitter(rng, (0.30, 0.50, 0.18), colour_var * 0.6)
    detail = texture_patch(rng, "grass", h, w, zoom=rng.uniform(0.4, 0.9))
    t = np.linspace(0.8, 1.1, h)[:, None, None]
    canvas[y0:y1] = np.clip(base * t * (1 + 0.35 * detail[..., None]), 0, 1)


def water(rng: np.random.Generator, canvas: np.ndarray, y0: int, y1: int, colour_var: float) -> None:
    """Water in rows [y0, y1): horizontally stretched texture (ripples), blue-green, darker at the bottom."""
    h, w = y1 - y0, canvas.shape[1]
    if h <= 0:
        return
    base = jitter(rng, (0.16, 0.36, 0.52), colour_var * 0.5)
    detail = texture_patch(rng, str(rng.choice(["grass", "gravel"])), h, w, zoom=rng.uniform(0.6, 1.2), squash=0.2)
    t = np.linspace(1.15, 0.8, h)[:, None, None]
    canvas[y0:y1] = np.clip(base * t * (1 + 0.22 * detail[..., None]), 0, 1)
    # bright glints along the ripples
    glint = (detail > 2.2)[..., None]
    canvas[y0:y1] = np.where(glint, np.minimum(canvas[y0:y1] + 0.25, 1.0), canvas[y0:y1])


def ground(rng: np.random.Generator, canvas: np.ndarray, y0: int, y1: int, colour, texture: str,
           contrast: float, zoom: float = 1.0) -> None:
    """Any textured band (road: gravel/grey, sand: gravel/yellow, floor, wall) in rows [y0, y1)."""
    h, w = y1 - y0, canvas.shape[1]
    if h <= 0:
        return
    detail = texture_patch(rng, texture, h, w, zoom=zoom)
    canvas[y0:y1] = np.clip(np.asarray(colour)[None, None] * (1 + contrast * detail[..., None]), 0, 1)


def treeline(rng: np.random.Generator, canvas: np.ndarray, horizon: int, height: float) -> None:
    """A dark-green band of tree crowns standing on row ``horizon``, up to ``height`` px tall."""
    w = canvas.shape[1]
    mask = np.zeros(canvas.shape[:2], np.uint8)
    x = -int(rng.uniform(0, 10))
    while x < w:
        r = int(rng.uniform(0.4, 1.0) * height) + 2
        cv2.ellipse(mask, (x, horizon), (r, int(r * rng.uniform(0.8, 1.4))), 0, 180, 360, 255, -1)
        x += int(r * rng.uniform(0.8, 1.6))
    sel = mask > 0
    if sel.any():
        detail = texture_patch(rng, "grass", canvas.shape[0], w, zoom=1.5)
        colour = jitter(rng, (0.14, 0.26, 0.12), 0.03)
        canvas[sel] = np.clip(colour * (1 + 0.4 * detail[sel][:, None]), 0, 1)


def hills(rng: np.random.Generator, canvas: np.ndarray, horizon: int, height: float) -> None:
    """Smooth distant hills (blue-green, low contrast) rising above row ``horizon``."""
    w = canvas.shape[1]
    xs = np.arange(w)
    profile = horizon - height * (0.5 + 0.5 * np.sin(xs / w * rng.uniform(2, 6) + rng.uniform(0, 6)))
    rows = np.arange(canvas.shape[0])[:, None]
    sel = (rows >= profile[None, :]) & (rows < horizon)
    colour = jitter(rng, (0.35, 0.45, 0.42), 0.04)
    canvas[sel] = colour
