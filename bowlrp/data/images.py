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
``Image.MAX_IMAGE_PIXELS``, more pixels than :data:`MAX_IMAGE_PIXELS`) raises
:class:`~bowlrp.errors.ImageError` with a one-line message that names the file. No minimum size is
enforced here; the feature extractors decide that.

Memory: the decoded pixels are converted a strip of rows at a time, so reading an image costs PIL's
decoded copy plus the result, never a float64 or a second full-size intermediate. :func:`read_image`
keeps 8-bit images as ``uint8`` (3 bytes a pixel instead of float32's 12): what the explanation
commands hold while they work. :data:`MAX_IMAGE_PIXELS` bounds what any command reads.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from ..errors import BowlrpError, ImageError

_UINT16_MAX = 65535.0
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
#: the largest image (width x height, in pixels) bowlrp reads; a larger file is refused with one line
#: (an :class:`~bowlrp.errors.ImageError`, so a dataset run counts it as a skipped image). 85 MP keeps
#: ``bowlrp explain`` under 1 GB (its peak grows by about 8 bytes a pixel: the 8-bit image and the
#: float32 relevance map) and lies just under PIL's own decompression-bomb threshold (89.5 MP), so this
#: is the limit that speaks. The environment variable :data:`PIXEL_LIMIT_ENV` overrides it (worker
#: processes inherit it); PIL's threshold, ``PIL.Image.MAX_IMAGE_PIXELS``, still applies above it.
MAX_IMAGE_PIXELS = 85_000_000
PIXEL_LIMIT_ENV = "BOWLRP_MAX_IMAGE_PIXELS"
_STRIP_BYTES = 16 << 20  # rows converted at a time: about this many bytes of float32 per strip


def max_image_pixels() -> int:
    """The pixel limit in force: ``$BOWLRP_MAX_IMAGE_PIXELS`` if set, else :data:`MAX_IMAGE_PIXELS`."""
    value = os.environ.get(PIXEL_LIMIT_ENV, "").strip()
    if not value:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(value.replace("_", ""))
    except ValueError:
        limit = 0
    if limit < 1:
        raise BowlrpError(f"{PIXEL_LIMIT_ENV}={value!r} is not a positive whole number of pixels")
    return limit


def check_pixel_limit(path: str | os.PathLike, width: int, height: int) -> None:
    """Refuse an image of ``width x height`` pixels over :func:`max_image_pixels`, in one line naming ``path``."""
    limit = max_image_pixels()
    if width * height > limit:
        raise ImageError(f"{path}: {width}x{height} px ({width * height / 1e6:.1f} MP) is over the pixel limit "
                         f"of {limit / 1e6:g} MP (set {PIXEL_LIMIT_ENV} to change it)")


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
        The file is missing, empty, truncated, corrupt, of an unknown format, larger than
        PIL's decompression-bomb limit or than :func:`max_image_pixels`.
    """
    return _decode(path, _to_rgb_float)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as compactly as its pixels allow: :func:`load_image`'s values, as ``uint8``
    where they are ``k / 255``.

    Returns
    -------
    np.ndarray
        (H, W, 3) ``uint8`` for 8-bit images (grey, palette without transparency, RGB, CMYK, YCbCr, ...),
        whose ``x / 255`` in float32 is exactly what :func:`load_image` returns; (H, W, 3) float32 in
        [0, 1] for the others (alpha composited on white, 16-bit, float). Every consumer of images
        (:func:`bowlrp.features.dsift.to_grey`, the DNN preprocessing, :func:`bowlrp.heatmap.overlay`)
        takes both.
    """
    return _decode(path, _to_rgb_compact)


def _decode(path: str | os.PathLike, convert) -> np.ndarray:
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
                check_pixel_limit(path, *img.size)  # from the header: nothing decoded yet
                _refuse_lenient_truncation()
                img.load()  # forces the full decode, so truncated data fails here, not later
                return convert(img)
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


def _strips(height: int, row_bytes: int):
    """Row ranges ``(start, stop)`` covering ``height`` rows, about :data:`_STRIP_BYTES` each."""
    step = max(1, _STRIP_BYTES // max(1, row_bytes))
    for start in range(0, height, step):
        yield start, min(height, start + step)


def _eight_bit(img: Image.Image) -> bool:
    """Whether ``img`` converts to RGB without leaving the 8-bit values ``k / 255``."""
    mode = img.mode
    return not (mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info)
                or mode.startswith("I;16") or mode in ("I", "F"))


def _rgb8_strips(img: Image.Image):
    """PIL's conversion of an 8-bit image to RGB a strip of rows at a time: ``(start, stop, (rows, W, 3)
    uint8)``. The conversions are per pixel, so strips give the values of the whole-image conversion."""
    width, height = img.size
    for start, stop in _strips(height, width * 12):
        strip = img.crop((0, start, width, stop))
        yield start, stop, np.asarray(strip if strip.mode == "RGB" else strip.convert("RGB"))


def _to_rgb_compact(img: Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 for 8-bit images, else :func:`_to_rgb_float`."""
    if not _eight_bit(img):
        return _to_rgb_float(img)
    width, height = img.size
    out = np.empty((height, width, 3), dtype=np.uint8)
    for start, stop, rgb in _rgb8_strips(img):
        out[start:stop] = rgb
    return out


def _to_rgb_float(img: Image.Image) -> np.ndarray:
    """Convert a loaded PIL image of any mode to (H, W, 3) float32 in [0, 1]."""
    mode = img.mode
    if _eight_bit(img):
        # the common case, without the full-size float temporaries: each strip's uint8 -> float32 / 255
        width, height = img.size
        out = np.empty((height, width, 3), dtype=np.float32)
        for start, stop, rgb in _rgb8_strips(img):
            np.divide(rgb, np.float32(255.0), out=out[start:stop], dtype=np.float32)
        return out
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3:4]
        rgb = rgba[..., :3] * alpha + (1.0 - alpha)  # composite on white
    elif mode.startswith("I;16") or mode == "I":
        grey = np.asarray(img, dtype=np.float64) / _UINT16_MAX
        rgb = np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2)
    else:  # "F"
        grey = np.asarray(img, dtype=np.float64)
        grey = np.nan_to_num(grey, nan=0.0, posinf=1.0, neginf=0.0)
        rgb = np.repeat(np.clip(grey, 0.0, 1.0)[..., None], 3, axis=2)
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
