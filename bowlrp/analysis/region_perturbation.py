"""Pixel-region perturbation curves and AOPC (dissertation Section 3.4; Samek et al. 2017).

The image is cut into a fixed grid of non-overlapping ``region x region`` squares (9 x 9 in the
thesis; the last row/column of squares is clipped at the image border). Each square gets the sum
of the relevance map over its pixels, and the squares are visited in an *order*: most relevant
first (MoRF, Eq. 3.6), least relevant first (LeRF) or a random permutation (the baseline). Step
``k`` replaces the pixels of the first ``k`` squares of the order by *fill* values — uniform random
values in [0, 1] per pixel and channel, as in the thesis — and records the class score
``f(x^(k))``; step 0 is the untouched image. The area over the curve is Eq. 3.7::

    AOPC = 1/(L+1) * sum_{k=0..L} ( f(x^(0)) - f(x^(k)) ),   averaged over images

Every repetition draws a fresh fill image (and, for the random order, a fresh permutation); the
same fill image serves every order of that repetition, so orders differ only in *where* they
perturb (common random numbers: less noise in AOPC(MoRF) - AOPC(random)).

Only the model interface is used (:class:`bowlrp.model.Model`: ``explain`` for the map,
``score_images`` for the curve), so BoW/FV, DNN and any other family run through this code. All
perturbed variants of an image (every order, repetition and step) are streamed to ``score_images``
in batches, so a network scores them ``batch_size`` at a time rather than one forward per step.

Dataset runs (:func:`perturb_split`) go through :func:`bowlrp.analysis.perturbation.curve_split`,
resumable like ``explain --store``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..data.dataset import Sample
from ..errors import BowlrpError, SkipLog
from ..model import ExplanationMethod, Model, method_for
from ..parallel import ParallelOptions
from .perturbation import curve_split

ORDER_KINDS = ("lrp", "lerf", "random")  # lrp = the map's MoRF order


@dataclass(frozen=True)
class PerturbationConfig:
    """How the regions are perturbed (the thesis' settings are the defaults).

    Attributes
    ----------
    region : int
        Side of the square regions in pixels (9).
    steps : int
        Regions perturbed, L of Eq. 3.7 (100; fewer when the image has fewer regions).
    repetitions : int
        Independent fill draws (and random permutations) averaged per image (10).
    fill : "uniform" or float
        Replacement values: uniform random in [0, 1] per pixel and channel, or one constant
        (useful to compare with tools that fill with a fixed baseline).
    seed : int
        Seeds every image's draws together with its position in the run (deterministic, and the same
        whether images run serially, in workers, or after a resume).
    batch_size : int
        Perturbed images handed to ``score_images`` at once (1 = one call per step).
    """

    region: int = 9
    steps: int = 100
    repetitions: int = 10
    fill: str | float = "uniform"
    seed: int = 0
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.region < 1 or self.steps < 1 or self.repetitions < 1 or self.batch_size < 1:
            raise BowlrpError("region, steps, repetitions and batch_size must be positive")
        if isinstance(self.fill, str) and self.fill != "uniform":
            raise BowlrpError(f"fill must be 'uniform' or a number, got {self.fill!r}")


@dataclass(frozen=True)
class OrderSpec:
    """One order of regions: ``kind`` in :data:`ORDER_KINDS` and, for the map-based kinds, the
    explanation ``options`` given to ``model.explanation_method`` (empty: the family's default).
    ``name`` is how the order is written on the command line and keyed in the results."""

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)


def _option_value(text: str) -> Any:
    """``"1"`` -> 1, ``"0.5"`` -> 0.5, anything else stays a string (option values on the command line)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_order(spec: str) -> OrderSpec:
    """``"lrp"``, ``"lerf"``, ``"random"``, or a map-based kind with explanation options,
    ``"lrp:rule=alphabeta,alpha=2"`` (family option names, as ``bowlrp explain`` takes them)."""
    kind, _, rest = spec.strip().partition(":")
    if kind not in ORDER_KINDS:
        raise BowlrpError(f"unknown order {spec!r}; orders are {', '.join(ORDER_KINDS)} "
                          "(lrp/lerf optionally with explanation options, e.g. lrp:eps=1)")
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise BowlrpError(f"order {spec!r}: options are written key=value, got {item!r}")
        options[key.strip()] = _option_value(value.strip())
    if kind == "random" and options:
        raise BowlrpError("the random order takes no explanation options")
    return OrderSpec(spec.strip(), kind, options)


# --- one image ------------------------------------------------------------------------------------

def region_grid(shape: tuple[int, int], region: int) -> tuple[np.ndarray, int]:
    """Region id of every pixel: ``(H, W)`` int64 in ``0..n-1`` (row-major over the grid), and ``n``."""
    h, w = shape
    rows, cols = -(-h // region), -(-w // region)
    ids = (np.arange(h)[:, None] // region) * cols + np.arange(w)[None, :] // region
    return ids, rows * cols


def region_sums(relevance: np.ndarray, ids: np.ndarray, n: int) -> np.ndarray:
    """Summed relevance ``(n,)`` float64 of each region of :func:`region_grid`; ``relevance`` is ``(H, W)``."""
    return np.bincount(ids.ravel(), weights=np.asarray(relevance, np.float64).ravel(), minlength=n)


def map_order(sums: np.ndarray, most_relevant_first: bool = True) -> np.ndarray:
    """Region ids ``(n,)`` by summed relevance, descending (MoRF) or ascending (LeRF); ties in grid order."""
    return np.argsort(-sums if most_relevant_first else sums, kind="stable")


def region_box(region_id: int, shape: tuple[int, int], region: int) -> tuple[int, int, int, int]:
    """Pixel box ``(y0, y1, x0, x1)`` (half-open, clipped to ``shape``) of a region of :func:`region_grid`."""
    cols = -(-shape[1] // region)
    y0, x0 = (int(region_id) // cols) * region, (int(region_id) % cols) * region
    return y0, min(shape[0], y0 + region), x0, min(shape[1], x0 + region)


def _fill_image(image: np.ndarray, fill: str | float, rng: np.random.Generator) -> np.ndarray:
    if fill == "uniform":
        return rng.uniform(0.0, 1.0, size=image.shape).astype(image.dtype)
    return np.full_like(image, float(fill))


def perturbation_curves(model: Model, image: np.ndarray, class_name: str, orders: dict[str, np.ndarray | None],
                        config: PerturbationConfig, rng: np.random.Generator,
                        incremental: bool = True) -> dict[str, np.ndarray]:
    """Scores along each order's region perturbation.

    Parameters
    ----------
    image : (H, W, 3) float in [0, 1]
    orders : name -> region ids ``(n,)`` to visit in that order, or None for a fresh random
        permutation per repetition (ids as :func:`region_grid` numbers them).

    Returns
    -------
    name -> ``(repetitions, L+1)`` float64: ``f(x^(k))`` for ``k = 0..L``, ``L = min(steps, n)``.

    When ``incremental`` and the model offers a :meth:`~bowlrp.model.Model.region_scorer` for the image
    (a Fisher-vector model: only the descriptors a filled region touches are recomputed), each curve is
    scored step by step through it; otherwise every perturbed image is scored in full, in batches.
    """
    k = model.class_index(class_name)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise BowlrpError(f"region perturbation needs an (H, W, 3) image, got shape {image.shape}")
    ids, n = region_grid(image.shape[:2], config.region)
    steps = min(config.steps, n)
    # draws in a fixed sequence: fill images first, then the random permutations
    fills = [_fill_image(image, config.fill, rng) for _ in range(config.repetitions)]
    visits = {name: [order if order is not None else rng.permutation(n) for _ in range(config.repetitions)]
              for name, order in orders.items()}

    def variants() -> Iterator[np.ndarray]:
        # x^(k) has the first k regions of the order filled: a pixel is filled when its region's
        # position in the order is below k (one comparison per variant instead of k region copies)
        for name in orders:
            for rep in range(config.repetitions):
                position = np.empty(n, np.int64)
                position[visits[name][rep]] = np.arange(n)
                rank = position[ids][..., None]
                for step in range(1, steps + 1):
                    yield np.where(rank < step, fills[rep], image)

    scorer = model.region_scorer(image) if incremental else None
    original = float((scorer.scores() if scorer is not None else model.score_images([image])[0])[k])
    if scorer is not None:
        # the scorer's state is sequential: one curve per order and repetition, its steps in order
        return {name: np.concatenate([np.full((config.repetitions, 1), original),
                                        [scorer.curve(fills[rep], [region_box(r, image.shape[:2], config.region)
                                                                   for r in visits[name][rep][:steps]], k)[:, 0]
                                         for rep in range(config.repetitions)]], axis=1)
                  for name in orders}
    scores = np.empty(len(orders) * config.repetitions * steps)
    done = 0
    stream = variants()
    while done < len(scores):
        batch = [x for _, x in zip(range(config.batch_size), stream)]
        scores[done:done + len(batch)] = np.asarray(model.score_images(batch), np.float64)[:, k]
        done += len(batch)
    scores = scores.reshape(len(orders), config.repetitions, steps)
    return {name: np.concatenate([np.full((config.repetitions, 1), original), scores[i]], axis=1)
            for i, name in enumerate(orders)}


def image_curves(model: Model, image: np.ndarray, class_name: str, orders: Sequence[OrderSpec],
                 methods: dict[str, ExplanationMethod], config: PerturbationConfig,
                 rng: np.random.Generator) -> dict[str, np.ndarray]:
    """:func:`perturbation_curves` for order specs: each distinct explanation is computed once
    (``methods`` maps an order name to its method; LRP MoRF and LeRF of one method share the map)."""
    ids, n = region_grid(image.shape[:2], config.region)
    sums: dict[tuple, np.ndarray] = {}
    resolved: dict[str, np.ndarray | None] = {}
    for spec in orders:
        if spec.kind == "random":
            resolved[spec.name] = None
            continue
        key = tuple(sorted(spec.options.items()))
        if key not in sums:
            sums[key] = region_sums(model.explain(image, class_name, methods[spec.name]).relevance, ids, n)
        resolved[spec.name] = map_order(sums[key], most_relevant_first=spec.kind == "lrp")
    return perturbation_curves(model, image, class_name, resolved, config, rng)


@dataclass(frozen=True)
class RegionCurves:
    """Region perturbation as a :class:`~bowlrp.analysis.perturbation.CurveSource`: the ``orders``, the
    explanation method of each map-based order, and the ``config``."""

    orders: tuple[OrderSpec, ...]
    methods: dict[str, ExplanationMethod]
    config: PerturbationConfig = PerturbationConfig()
    mode: str = "regions"

    @classmethod
    def for_model(cls, model: Model, order_specs: Sequence[str],
                  config: PerturbationConfig = PerturbationConfig()) -> "RegionCurves":
        """Parse ``order_specs`` (:func:`parse_order`) and build their explanation methods for ``model``."""
        orders = tuple(parse_order(spec) for spec in order_specs)
        names = [o.name for o in orders]
        if not orders or len(set(names)) != len(names):
            raise BowlrpError("give one or more distinct orders")
        return cls(orders, {o.name: method_for(model, o.options) for o in orders if o.kind != "random"}, config)

    @property
    def order_names(self) -> list[str]:
        return [o.name for o in self.orders]

    def settings(self) -> dict[str, Any]:
        return {"mode": self.mode, "orders": self.order_names,
                "methods": {name: m.settings() for name, m in self.methods.items()},
                # batching does not change the results, so a resumed run may use another batch size
                **{k: v for k, v in asdict(self.config).items() if k != "batch_size"}}

    def image_curves(self, model: Model, image: np.ndarray, class_name: str, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.config.seed, index])
        return image_curves(model, image, class_name, self.orders, self.methods, self.config, rng)


def perturb_split(model: Model, samples: Sequence[Sample], class_name: str, order_specs: Sequence[str],
                  out: str | Path, config: PerturbationConfig = PerturbationConfig(), skips: SkipLog | None = None,
                  parallel: ParallelOptions | None = None, extra_settings: dict | None = None) -> dict[str, Any]:
    """Region perturbation curves of ``class_name`` on every sample, written to the JSON file ``out``
    (:func:`bowlrp.analysis.perturbation.curve_split`, resumable; ``mode`` "regions")."""
    return curve_split(model, samples, class_name, RegionCurves.for_model(model, order_specs, config), out, skips,
                       parallel, extra_settings)
