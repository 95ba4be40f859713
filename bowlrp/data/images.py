"""Image loading: every file the datasets may hold becomes one (H, W, 3) float32 RGB array.

Conversions (all results in [0, 1]):

- grey ("1", "L"), palette ("P"), "RGB", "CMYK", "YCbCr", "LAB", "HSV": PIL's own conversion to RGB;
  grey images repeat the one channel three times.
- anything with an alpha channel ("RGBA", "LA", "PA", "RGBa", "La", palette with transparency):
  composited on a **white** background, ``rgb * alpha + 1 * (1 - alpha)``, because the transparent
  parts of web images and icons are meant to be shown on a page, not as black.
- 16/32-bit integer grey ("I;16*", "I"): divided by 65535 (PNG stores 16-bit samples) and clipped.
- 32-bit float grey ("F"): taken as already in [0, 1] and clipped.

EXIF orientation is **ignored**: Pascal VOC boxes refer to the pixels as stored, so rotating the
image would detach it from its annotation. Animated / multi-page files give their first frame.

Every failure (empty, truncated, corrupt, unknown format, decompression bomb over PIL's
``Image.MAX_IMAGE_PIXELS``) raises :class:`~bowlrp.errors.ImageError` with a one-line message
that names the file. No minimum size is enforced here; the feature extractors decide that.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import ImageError

_UINT16_MAX = 65535.0
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB.

    Parameters
    ----------
    path : str or PathLike
        Any format PIL can decode (JPEG, PNG, BMP, GIF, TIFF, WebP, PPM, ...).

    Returns
    -------
    np.ndarray
        (H, W, 3) float32, C-contiguous, values in [0, 1], pixel (0, 0) at the top left as stored.

    Raises
    ------
    ImageError
        The file is missing, empty, truncated, corrupt, of an unknown format, or larger than
        PIL's decompression-bomb limit.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise ImageError(f"{path}: empty file")
    try:
        # A bomb between 1x and 2x the pixel limit only warns in PIL; treat it like the 2x case.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                _refuse_lenient_truncation()
                img.load()  # forces the full decode, so truncated data fails here, not later
                return _to_rgb_float(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{path}: refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: unknown or corrupt image format") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # PIL reports truncation and broken streams as OSError/SyntaxError/ValueError.
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"{path}: corrupt or truncated image ({cause})") from None


def _refuse_lenient_truncation() -> None:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        # Some other library flipped PIL's global switch; we still must not accept half images.
        raise OSError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set; refusing to decode leniently")


def _to_rgb_float(img: Image.Image) -> np.ndarray:
    """Convert a loaded PIL image of any mode to (H, W, 3) float32 in [0, 1]."""
    mode = img.mode
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:4]
        rgb = rgba[..., :3] * alpha + (1.0 - alpha)  # composite on white
    elif mode.startswith("I;16") or mode == "I":
        grey = np.asarray(img, dtype=np.float64) / _UINT16_MAX
        rgb = np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2)
    elif mode == "F":
        grey = np.asarray(img, dtype=np.float64)
        grey = np.nan_to_num(grey, nan=0.0, posinf=1.0, neginf=0.0)
        rgb = np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2)
    else:
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return np.ascontiguousarray(rgb, dtype=np.float32)


def image_of(item: str | os.PathLike | np.ndarray) -> np.ndarray:
    """An image given as a file path or as an array, as :func:`load_image` returns it.

    Parameters
    ----------
    item : path, or array (H, W) / (H, W, 3)
        A path is read with :func:`load_image`. An array is uint8 (divided by 255) or float in
        [0, 1]; a grey (H, W) array repeats its channel three times.

    Returns
    -------
    (H, W, 3) float32 in [0, 1], C-contiguous.

    Raises
    ------
    ImageError
        An array of another shape, with non-finite values or values outside [0, 1].
    """
    if isinstance(item, (str, os.PathLike)):
        return load_image(item)
    array = np.asarray(item)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise ImageError(f"an image array must be (H, W) or (H, W, 3), got shape {np.shape(item)}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array, dtype=np.float32) / 255.0
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ImageError(f"an image array must hold real numbers, got dtype {array.dtype}")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
        raise ImageError("an image array must hold finite values in [0, 1] (or be uint8)")
    return array
