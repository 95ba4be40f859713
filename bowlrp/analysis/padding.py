"""Does a model read the padding? Six ways of making an image square, and the class score each gives
(dissertation Section 6.3.1, Figs. 6.8 and 6.11; SPEC §6.4).

The thesis' network saw its images padded to a square by copying the border pixels; SpRAy showed its
"aeroplane" output reacting to the structureless padded borders. Every image is made square here in
six ways, at its own resolution, before the model sees it (a model that squares images itself, as the
DNN family does by copying the border, then receives a square and adds nothing):

=================  ===============================================================================
``copy-border``    the reference: the short side padded by repeating the border pixels
                   (``cv2.copyMakeBorder`` ``BORDER_REPLICATE``)
``mirror``         padded by the mirror image of the border strip (``BORDER_REFLECT``: the border
                   pixel repeated, ``fedcba|abcdef``)
``centre-crop``    no padding: the largest centred square is cut out
``noise``          padding of uniform random values in [0, 1] per pixel and channel
``random-colour``  padding of one uniform random colour per image
``sky-blue``       padding of one fixed sky colour, :data:`SKY_BLUE` unless given
=================  ===============================================================================

Padding is centred: ``(L - s) // 2`` rows (columns) before the image and the rest after it, for a
landscape (portrait) image of long side ``L`` and short side ``s`` — where the DNN family puts its own.
Random values come from a generator seeded with ``(seed, image index)``, so a run is the same whatever
the batch size. Square images need no padding and are counted apart (``n_square``).

For every image the change ``f_c(strategy) - f_c(copy-border)`` of the class score is computed;
rows summarise it (mean, 95 % t-interval, n) for the images that contain the class (``target``) and
the others, split by orientation: landscape (wider than tall: padded above and below) and portrait
(padded left and right), plus both together under ``overall``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data.dataset import Sample
from ..data.images import load_image
from ..errors import BowlrpError
from ..model import Model
from ..progress import progress
from .artefacts import class_scores, finite_or_none, interval_bars, mean_interval, save_figure

STRATEGIES = ("copy-border", "mirror", "centre-crop", "noise", "random-colour", "sky-blue")
REFERENCE = "copy-border"
#: RGB in [0, 1]: the median colour of the top three rows of toyvoc's aeroplane images (seed 0) — the
#: thesis sampled its sky-blue from a test image too; give another for other data.
SKY_BLUE = (0.384, 0.580, 0.847)
ORIENTATIONS = ("landscape", "portrait")


def orientation(shape: Sequence[int]) -> str:
    """``"landscape"`` (W > H), ``"portrait"`` (H > W) or ``"square"`` of an ``(H, W, ...)`` shape."""
    h, w = shape[:2]
    return "landscape" if w > h else "portrait" if h > w else "square"


def _pad_widths(shape: Sequence[int]) -> tuple[tuple[int, int], tuple[int, int]]:
    h, w = shape[:2]
    d = abs(h - w)
    before, after = d // 2, d - d // 2
    return ((before, after), (0, 0)) if w > h else ((0, 0), (before, after))


def make_square(image: np.ndarray, strategy: str, rng: np.random.Generator | None = None,
                sky: Sequence[float] = SKY_BLUE) -> np.ndarray:
    """``image`` ``(H, W, 3)`` in [0, 1] made square by ``strategy`` (one of :data:`STRATEGIES`):
    ``(L, L, 3)`` for the padding strategies, ``(s, s, 3)`` for ``centre-crop``; float32.

    ``rng`` draws the values of ``noise`` and ``random-colour`` (required for them).
    """
    image = np.asarray(image, np.float32)
    (top, bottom), (left, right) = _pad_widths(image.shape)
    if strategy == "centre-crop":
        h, w = image.shape[:2]
        s = min(h, w)
        y, x = (h - s) // 2, (w - s) // 2
        return image[y:y + s, x:x + s].copy()
    if strategy in ("copy-border", "mirror"):
        # numpy's 'symmetric' is OpenCV's BORDER_REFLECT (the border pixel repeated)
        mode = "edge" if strategy == "copy-border" else "symmetric"
        return np.pad(image, ((top, bottom), (left, right), (0, 0)), mode=mode)
    if strategy not in STRATEGIES:
        raise BowlrpError(f"unknown padding strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
    h, w = image.shape[:2]
    side = max(h, w)
    if strategy == "noise":
        if rng is None:
            raise ValueError("the noise strategy needs an rng")
        out = rng.random((side, side, 3), dtype=np.float32)
    else:
        if strategy == "random-colour":
            if rng is None:
                raise ValueError("the random-colour strategy needs an rng")
            colour = rng.random(3)
        else:
            colour = np.asarray(sky, np.float64)
        out = np.empty((side, side, 3), np.float32)
        out[...] = colour.astype(np.float32)
    out[top:top + h, left:left + w] = image
    return out


def squared_versions(image: np.ndarray, seed: int, index: int, sky: Sequence[float] = SKY_BLUE) -> list[np.ndarray]:
    """The image under every strategy, in :data:`STRATEGIES` order; the random ones drawn from
    ``default_rng([seed, index])`` (noise first, then the colour)."""
    rng = np.random.default_rng([seed, index])
    return [make_square(image, s, rng, sky) for s in STRATEGIES]


def padding_experiment(model: Model, samples: Sequence[Sample], contains: np.ndarray, class_name: str, *,
                       seed: int = 0, sky: Sequence[float] = SKY_BLUE, n_images: int | None = None,
                       batch: int = 8, show_progress: bool = True) -> dict[str, Any]:
    """Class scores of every sample under the six strategies and the rows of the study.

    ``contains`` ``(n,)`` bool: which samples contain ``class_name`` (the target images).
    ``n_images``: only the first that many samples. Returns ``{"class", "rows", "overall",
    "per_image", "n_square", "skipped", "settings"}`` (see the module docstring for the rows).
    """
    column = model.class_index(class_name)
    if len(sky) != 3 or not all(0.0 <= float(v) <= 1.0 for v in sky):
        raise BowlrpError(f"the sky colour must be three values in [0, 1], got {list(sky)}")
    contains = np.asarray(contains, bool)
    chosen = list(zip(samples, contains))[:n_images] if n_images else list(zip(samples, contains))
    per_image, skipped, n_square = [], [], 0
    with progress(len(chosen), "padding", show_progress) as bar:
        for start in range(0, len(chosen), batch):
            images, kept = [], []
            for index, (sample, target) in enumerate(chosen[start:start + batch], start):
                try:
                    image = load_image(sample.path)
                except BowlrpError as exc:
                    skipped.append({"id": sample.image_id, "reason": str(exc)})
                    continue
                kind = orientation(image.shape)
                if kind == "square":
                    n_square += 1
                    continue
                images += squared_versions(image, seed, index, sky)
                kept.append((sample.image_id, bool(target), kind))
            scores = class_scores(model, images, column, batch=len(STRATEGIES) * batch).reshape(-1, len(STRATEGIES))
            for (image_id, target, kind), row in zip(kept, scores):
                per_image.append({"id": image_id, "target": target, "orientation": kind,
                                  "scores": dict(zip(STRATEGIES, map(float, row)))})
            bar.update(len(chosen[start:start + batch]))
    if not per_image:
        raise BowlrpError("no image to pad: every image was square or unreadable")
    return {"class": class_name, "model": str(model.source) if model.source else None, "variant": model.variant,
            "reference": REFERENCE, "rows": padding_rows(per_image, ORIENTATIONS),
            "overall": padding_rows(per_image, ("all",)), "per_image": per_image, "n_square": n_square,
            "skipped": skipped, "settings": {"seed": seed, "sky_colour": [float(v) for v in sky],
                                              "n_images": n_images, "padding": "centred"}}


def padding_rows(per_image: Sequence[dict], orientations: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (strategy other than the reference, target or not, orientation): the mean change
    vs :data:`REFERENCE`, its 95 % t-interval, n, the mean score and the share predicted positive
    under the strategy and under the reference.
    ``"all"`` as an orientation takes both."""
    rows = []
    for strategy in STRATEGIES[1:]:
        for target in (True, False):
            for kind in orientations:
                group = [r for r in per_image if r["target"] == target and kind in ("all", r["orientation"])]
                delta = [r["scores"][strategy] - r["scores"][REFERENCE] for r in group]
                mean, lo, hi = mean_interval(delta)
                rows.append({"strategy": strategy, "target": target, "orientation": kind,
                             "delta_mean": finite_or_none(mean), "ci95": [finite_or_none(lo), finite_or_none(hi)],
                             "n": len(group), "score_mean": finite_or_none(
                                 float(np.mean([r["scores"][strategy] for r in group])) if group else float("nan")),
                             "reference_mean": finite_or_none(
                                 float(np.mean([r["scores"][REFERENCE] for r in group])) if group else float("nan")),
                             "positive_share": _positive_share(group, strategy),
                             "reference_positive_share": _positive_share(group, REFERENCE)})
    return rows


def _positive_share(group: Sequence[dict], strategy: str) -> float | None:
    """The share of ``group`` predicted positive (``f > 0``) under ``strategy``; None for no images."""
    return float(np.mean([r["scores"][strategy] > 0 for r in group])) if group else None


def format_padding_table(result: dict[str, Any]) -> str:
    """The rows as text: strategy, images with/without the class, orientation, mean change [95 % CI], n."""
    lines = [f"  {'strategy':<14}{'images':<16}{'orientation':<12}{'mean Δf':>9}  {'95 % CI':<21}{'n':>5}"]
    for row in result["overall"] + result["rows"]:
        who = "with class" if row["target"] else "without class"
        lo, hi = row["ci95"]
        ci = "—" if lo is None else f"[{lo:+.3f}, {hi:+.3f}]"
        mean = "—" if row["delta_mean"] is None else f"{row['delta_mean']:+.3f}"
        lines.append(f"  {row['strategy']:<14}{who:<16}{row['orientation']:<12}{mean:>9}  {ci:<21}{row['n']:>5}")
    return "\n".join(lines)


def plot_padding(result: dict[str, Any], out: str | Path) -> None:
    """Figs. 6.8/6.11: per strategy the mean change of the class score vs copy-border with its 95 %
    interval, for the images with the class (left) and without it (right), bars for all images,
    landscape and portrait (PNG, atomic)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["overall"] + result["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(10.0, 4.0), sharey=True)
    for ax, target in zip(axes, (True, False)):
        def summary_of(kind):
            def of(strategy):
                found = [r for r in rows if r["strategy"] == strategy and r["target"] == target
                         and r["orientation"] == kind]
                return found[0] if found and found[0]["n"] else None
            return of
        counts = {r["orientation"]: r["n"] for r in rows if r["target"] == target}
        interval_bars(ax, list(STRATEGIES[1:]), [(f"{kind} (n={counts.get(kind, 0)})", summary_of(kind))
                                                 for kind in ("all", *ORIENTATIONS)])
        ax.legend(fontsize=8)
        ax.set_title(f"images {'with' if target else 'without'} '{result['class']}'")
    axes[0].set_ylabel(f"Δ f({result['class']}) vs copy-border, mean ± 95 % CI")
    fig.suptitle(f"padding to a square ({result.get('variant', '')})")
    fig.tight_layout()
    save_figure(fig, out)
