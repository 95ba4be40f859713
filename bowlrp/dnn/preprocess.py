"""Image geometry for the DNNs (dissertation Appendix C.1.1 and C.1.2) and its inverse for relevance maps, so
that maps line up with the original image and its boxes (as the outside-inside ratio of Eq. 4.11 needs).

Forward: resize so the longest side is ``size`` (aspect kept, bilinear with antialiasing), pad the short
side to a square by copying the border pixels, cut a ``crop x crop`` window (4 corners and the centre,
each also mirrored: the 10 training crops; the centre crop for evaluation and explanation).

Backward: the geometry is linear in the pixel values, so a crop's relevance map is taken back to the
original image by the transpose of that same linear map (autograd's vector-Jacobian product). Each
crop pixel's relevance goes to the original pixels it was interpolated from, in proportion to the
interpolation weights (which sum to one), and relevance on padding goes to the border pixel it copies:
the mapping keeps the total relevance and cannot disagree with the forward geometry.

Memory: PyTorch's antialiased resize runs its horizontal pass first, row by row, then the vertical one.
:func:`centre_input` and :func:`to_original` run the horizontal pass (and its transpose) a band of rows
at a time, so an image is never held as a full-size float tensor (an 81 MP photo: 972 MB in float32,
and the transpose's float64 canvas with its gradient 1.3 GB); the results are the same up to float64
rounding of the transpose, which the float32 map does not see.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .models import IMAGENET_MEAN, IMAGENET_STD

N_CROPS = 10


def resized_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) after scaling the longest side to ``size``."""
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def square(images: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, C, H, W)`` float -> ``(B, C, size, size)``: longest side resized to ``size``, border-copy padding."""
    h, w = resized_shape(images.shape[-2], images.shape[-1], size)
    x = F.interpolate(images, (h, w), mode="bilinear", antialias=True, align_corners=False)
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(x, (left, size - w - left, top, size - h - top), mode="replicate")


def crop_offsets(size: int, crop: int) -> list[tuple[int, int]]:
    """(top, left) of the 4 corner crops and the centre crop (index 4)."""
    e, c = size - crop, (size - crop) // 2
    return [(0, 0), (0, e), (e, 0), (e, e), (c, c)]


def cut(squared: torch.Tensor, crop: int, index: int) -> torch.Tensor:
    """Crop ``index`` in 0..9 of ``(B, C, S, S)`` images: 0-4 corners/centre, 5-9 the same mirrored."""
    top, left = crop_offsets(squared.shape[-1], crop)[index % 5]
    x = squared[..., top:top + crop, left:left + crop]
    return x.flip(-1) if index >= 5 else x


def normalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of ``(B, 3, H, W)`` images in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    return (x - mean) / std


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` float image in [0, 1] (as :func:`bowlrp.data.load_image` gives), or uint8 (as
    :func:`bowlrp.data.images.read_image` gives for 8-bit files, divided by 255 here) -> ``(1, 3, H, W)``."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / np.float32(255.0)  # the values load_image gives
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


BAND_PIXELS = 1 << 20  # pixels of the original per band of rows in the banded horizontal pass


def _band_rows(height: int, width: int) -> int:
    return max(1, BAND_PIXELS // max(1, width))


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.interpolate(x, (h, w), mode="bilinear", antialias=True, align_corners=False)


def squared_image(image: np.ndarray, size: int) -> torch.Tensor:
    """:func:`square` of :func:`image_tensor` ``(image)``, ``(1, 3, size, size)``, with the horizontal
    resize done a band of rows at a time (the same values: PyTorch resizes rows first)."""
    height, width = np.shape(image)[:2]
    h, w = resized_shape(height, width, size)
    step = _band_rows(height, width)
    rows = torch.cat([_resize(image_tensor(image[start:start + step]), min(step, height - start), w)
                      for start in range(0, height, step)], dim=2)  # (1, 3, H, w)
    x = _resize(rows, h, w)
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(x, (left, size - w - left, top, size - h - top), mode="replicate")


def centre_input(image: np.ndarray, size: int, crop: int) -> torch.Tensor:
    """The network input for one image: ``(1, 3, crop, crop)``, normalised centre crop."""
    return normalize(cut(squared_image(image, size), crop, 4))


def _transpose(forward, grad: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``J^T grad`` of the linear map ``forward`` at an input of ``shape`` (float64)."""
    with torch.enable_grad():
        canvas = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
        (back,) = torch.autograd.grad(forward(canvas), canvas, grad)
    return back


def to_original(relevance: torch.Tensor | np.ndarray, image_shape: tuple[int, int], size: int, crop: int,
                index: int = 4) -> np.ndarray:
    """A crop's ``(crop, crop)`` relevance map in original image coordinates ``(H, W)`` (float32), by the
    transpose of the geometry (see the module docstring); the sum is kept.

    The transpose runs stage by stage: crop and padding, the vertical resize (on ``(H, w)``), then the
    horizontal one a band of rows at a time straight into the float32 result.
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    h, w = resized_shape(height, width, size)
    top, left = (size - h) // 2, (size - w) // 2
    r = torch.as_tensor(relevance, dtype=torch.float64).reshape(1, 1, crop, crop)
    pad = (left, size - w - left, top, size - h - top)
    on_resized = _transpose(lambda x: cut(F.pad(x, pad, mode="replicate"), crop, index), r, (1, 1, h, w))
    on_rows = _transpose(lambda x: _resize(x, h, w), on_resized, (1, 1, height, w))
    out = np.empty((height, width), dtype=np.float32)
    step = _band_rows(height, width)
    for start in range(0, height, step):
        band = on_rows[:, :, start:start + step]
        out[start:start + step] = _transpose(lambda x: _resize(x, band.shape[2], w), band,
                                             (1, 1, band.shape[2], width))[0, 0].numpy()
    return out
