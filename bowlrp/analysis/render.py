"""Relevance stores drawn as figures (``bowlrp render``): any store, BoW/FV or DNN.

One PNG per image of a :class:`~bowlrp.store.RelevanceStore`:

* the map drawn with :func:`bowlrp.heatmap.colorize` (the project's one red/white/blue rendering,
  ``R / max|R|``), with a colour bar on the symmetric scale ``[-max|R|, +max|R|]`` in relevance units
  (the bar's colours are ``colorize`` of the same values, so bar and map agree);
* a title with the class, the image id and the score f(x);
* the books as text: ``f = sum R + bias + absorbed + residual`` (:mod:`bowlrp.explanation`), each
  number the store's own (the pixel sum taken in float64 from the stored map);
* maps of ``--depth bins`` stores (relevance per SIFT spatial bin: a speckle of opposite signs on the
  bins' grid that the eye cannot pool) drawn smoothed by :func:`smooth_keeping_sum`, a Gaussian of
  ``BINS_SIGMA`` = 4 px whose weights are renormalised at the border so that the drawn map's sum is the
  stored map's sum: what is shown is where the relevance lies at the scale of a few bins, the books
  stay exact (``smooth`` chooses another width; 0 draws the bins as stored);
* with ``panel=True``: image | map | overlay (:func:`bowlrp.heatmap.overlay`) side by side. The image
  is read from the path the store recorded; an image that is gone, unreadable or of another size than
  its map is a counted skip, not an error.

Figures are written with :func:`~bowlrp.analysis.artefacts.save_figure` (atomic, 120 dpi), so a
figure of ``FIGURE_INCHES`` is ``FIGURE_INCHES * 120`` pixels whatever the map's size.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BowlrpError, SkipLog
from ..heatmap import colorize, overlay
from ..progress import progress
from .artefacts import save_figure

DPI = 120  # save_figure's resolution
BINS_SIGMA = 4.0  # px: the Gaussian a --depth bins map is drawn with (about one SIFT bin of the default 4..10 px)
FIGURE_INCHES = {False: (6.0, 5.0), True: (15.0, 5.0)}  # (width, height): map alone, panel
BOOK_KEYS = ("score", "sum_R", "bias_relevance", "absorbed", "residual")


@dataclass
class Figure:
    """What one rendered figure shows: its file, the colour scale, the books, the axes drawn."""

    image_id: str
    path: Path
    vmin: float
    vmax: float
    books: dict[str, float]
    text: str
    n_axes: int  # image axes (1, or 3 for a panel), colour bar not counted


@dataclass
class RenderSummary:
    figures: list[Figure] = field(default_factory=list)
    skips: SkipLog = field(default_factory=SkipLog)
    sigma: float = 0.0  # px of the Gaussian the maps were drawn with (0: as stored)


def figure_pixels(panel: bool) -> tuple[int, int]:
    """(width, height) in pixels of a written figure."""
    w, h = FIGURE_INCHES[bool(panel)]
    return int(round(w * DPI)), int(round(h * DPI))


def relevance_colormap(n: int = 257):
    """The matplotlib colormap of :func:`~bowlrp.heatmap.colorize`: ``n`` (odd, so 0 is white) samples of
    colorize on ``[-1, 1]``, for colour bars beside maps colorize drew."""
    from matplotlib.colors import ListedColormap

    return ListedColormap(colorize(np.linspace(-1.0, 1.0, n)[None, :])[0] / 255.0, name="bowlrp_relevance")


def symmetric_limit(relevance: np.ndarray) -> float:
    """``max|R|`` of a map, the half-width of its colour scale; 1 for an all-zero map (drawn white)."""
    top = float(np.abs(np.asarray(relevance, dtype=np.float64)).max()) if np.size(relevance) else 0.0
    return top if top > 0 else 1.0


def smooth_keeping_sum(relevance: np.ndarray, sigma: float) -> np.ndarray:
    """``relevance`` (H, W) blurred by a Gaussian of ``sigma`` px that keeps its sum: each pixel's relevance
    is spread over its neighbours with the Gaussian's weights cut at the image border and renormalised
    to 1, i.e. ``G * (R / (G * 1))`` with zero padding (G symmetric, so the sum over pixels of ``G * x`` is
    ``sum x (G * 1)``). Returns float64 (H, W); ``sigma`` 0 returns the map unchanged."""
    from scipy.ndimage import gaussian_filter

    R = np.asarray(relevance, dtype=np.float64)
    if sigma <= 0 or R.size == 0:
        return R
    reach = gaussian_filter(np.ones_like(R), sigma, mode="constant")  # > 0 everywhere: each pixel reaches itself
    return gaussian_filter(R / reach, sigma, mode="constant")


def display_sigma(settings: dict, smooth: float | None) -> float:
    """The Gaussian width a store's maps are drawn with: ``smooth`` when given, else :data:`BINS_SIGMA` for
    ``depth == "bins"`` stores and 0 (as stored) for the others."""
    if smooth is not None:
        return float(smooth)
    return BINS_SIGMA if settings.get("depth") == "bins" else 0.0


def books(relevance: np.ndarray, attrs: dict) -> dict[str, float]:
    """The store's books of one image: score, sum R (float64 over the map), bias, absorbed, residual."""
    out = {"score": float(attrs["score"]), "sum_R": float(np.asarray(relevance, dtype=np.float64).sum())}
    for key in ("bias_relevance", "absorbed", "residual"):
        out[key] = float(attrs.get(key, 0.0))
    return out


def books_text(b: dict[str, float]) -> str:
    """Two lines: ``f = ... = sum R ... + bias ...`` / ``+ absorbed ... + residual ...`` (4 significant digits)."""
    return (f"f = {b['score']:+.4g}  =  sum R {b['sum_R']:+.4g}  + bias {b['bias_relevance']:+.4g}\n"
            f"+ absorbed {b['absorbed']:+.4g}  + residual {b['residual']:+.3g}")


def parse_books_text(text: str) -> dict[str, float]:
    """The numbers :func:`books_text` wrote, back as floats (for checks of a drawn figure)."""
    numbers = [float(x) for x in re.findall(r"[+-]\d[\d.]*(?:e[+-]?\d+)?", text)]
    return dict(zip(BOOK_KEYS, numbers))


def draw(relevance: np.ndarray, attrs: dict, class_name: str, image: np.ndarray | None = None,
         sigma: float = 0.0):
    """A matplotlib figure of one store entry; ``image`` (H, W, 3) in [0, 1] makes it a panel; ``sigma`` > 0
    draws the map smoothed (:func:`smooth_keeping_sum`), the books from the stored map.

    Returns ``(fig, vmin, vmax, books dict, books text, image axes)``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    b = books(relevance, attrs)
    R = smooth_keeping_sum(relevance, sigma)
    top = symmetric_limit(R)
    text = books_text(b)
    panel = image is not None
    fig, axes = plt.subplots(1, 3 if panel else 1, figsize=FIGURE_INCHES[panel], squeeze=False,
                             layout="constrained")
    axes = list(axes[0])
    heat_ax = axes[1] if panel else axes[0]
    if panel:
        axes[0].imshow(np.clip(image, 0, 1))
        axes[0].set_title("image")
        axes[2].imshow(overlay(image, R))
        axes[2].set_title("overlay")
    heat_ax.imshow(colorize(R), interpolation="nearest")
    heat_ax.set_title(f"relevance, smoothed (Gaussian {sigma:g} px, sum kept)" if sigma > 0 else "relevance")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(ScalarMappable(norm=Normalize(-top, top), cmap=relevance_colormap()), ax=heat_ax,
                       shrink=0.8)
    bar.set_label("R (relevance units)")
    fig.suptitle(f"{class_name}  |  image {attrs.get('image_id', '?')}  |  score f = {b['score']:+.4g}")
    fig.text(0.5, 0.01, text, ha="center", va="bottom", fontsize=9, linespacing=1.4)
    fig.get_layout_engine().set(rect=(0, 0.1, 1, 0.9))  # the bottom tenth for the books
    return fig, -top, top, b, text, axes


def _file_stem(class_name: str, image_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{class_name}_{image_id}")


def render_store(store_path: str | Path, out: str | Path, ids: Sequence[str] | None = None, panel: bool = False,
                 show_progress: bool = True, smooth: float | None = None) -> RenderSummary:
    """Write ``out/<class>_<image id>.png`` for ``ids`` (default: every image) of one store; maps are drawn
    smoothed by a Gaussian of :func:`display_sigma` px (``smooth``, or 4 for ``--depth bins`` stores).

    Raises :class:`BowlrpError` naming every id the store lacks, before anything is drawn. With
    ``panel``, images whose file cannot be read (or does not match its map's size) are skipped and
    recorded in the summary's ``skips``.
    """
    from ..data.images import load_image
    from ..store import RelevanceStore, recorded_image_path

    out = Path(out)
    summary = RenderSummary()
    with RelevanceStore(store_path) as store:
        wanted = list(dict.fromkeys(ids)) if ids else list(store.ids)
        held = set(store.ids)
        unknown = [i for i in wanted if i not in held]
        if unknown:
            raise BowlrpError(f"{store_path}: no image id {', '.join(unknown)} in this store "
                              f"({len(store)} images, e.g. {', '.join(store.ids[:3]) or 'none'})")
        class_name = str(store.attrs.get("class_name", "?"))
        summary.sigma = display_sigma(store.attrs, smooth)
        out.mkdir(parents=True, exist_ok=True)
        with progress(len(wanted), f"render {class_name}", show_progress) as bar:
            for image_id in wanted:
                bar.update(1)
                attrs = store.image_attrs(image_id)
                relevance = store.relevance(image_id)
                image = None
                if panel:
                    try:
                        image = load_image(recorded_image_path(str(attrs["path"]), store_path))
                    except BowlrpError as exc:
                        summary.skips.add(str(attrs["path"]), f"image {image_id}: {exc}")
                        continue
                    if image.shape[:2] != relevance.shape:
                        summary.skips.add(str(attrs["path"]), f"image {image_id}: {image.shape[:2]} pixels, its map "
                                                              f"{relevance.shape}; the file changed since")
                        continue
                fig, vmin, vmax, b, text, axes = draw(relevance, attrs, class_name, image, summary.sigma)
                path = out / f"{_file_stem(class_name, image_id)}.png"
                save_figure(fig, path)
                summary.figures.append(Figure(image_id, path, vmin, vmax, b, text, len(axes)))
    return summary
