"""SpRAy over relevance stores, one class per store (dissertation Section 6.3): which maps of a
store go in (:func:`load_class_maps`: the images whose annotations contain the class, NaN and
all-zero maps counted and left out), the analysis of :mod:`bowlrp.analysis.spray` per class
(:func:`spray_stores`), and the ranking of the classes by their spectra (:func:`rank_classes`,
Fig. 6.5): by lambda_2 ascending — the smaller lambda_2, the closer the class' maps come to falling
apart into separate groups — ties broken by lambda_3, lambda_4, lambda_5, then by class name.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import BowlrpError, DataError
from ..runs import contains_class
from ..store import RelevanceStore, recorded_image_path
from .spray import (CLUSTER_RANGE, EARLY_EXAGGERATION, NORMALIZATIONS, PERPLEXITY, POOL_SIZES, SpectralAnalysis,
                    analyse, central_members, check_count, map_problem, preprocess)

log = logging.getLogger(__name__)


# -- inputs from relevance stores ----------------------------------------------------------

@dataclass
class ClassSpray:
    """SpRAy of one class: which maps went in, and the analysis.

    Attributes
    ----------
    class_name, store, family : str
        The class, the store's path, and the model variant (``fv``, ``bow``, ``dnn``).
    image_ids : list[str]
        The analysed images, in store order (row order of every array).
    paths : list[str]
        Their image files as the store recorded them.
    excluded : dict[str, int]
        Maps left out: ``{"nan": NaN/inf maps, "zero": empty or all-zero maps, "absent": images the
        annotations say do not contain the class}``.
    pool, sigma : the preprocessing (``settings["normalize"]`` the normalisation).
    features : (n, pool * pool) float64
        The pooled (smoothed, normalised) maps.
    analysis : SpectralAnalysis
    rank : int or None
        Position among the analysed classes (:func:`rank_classes`), 1 first.
    """

    class_name: str
    store: str
    family: str
    image_ids: list[str]
    paths: list[str]
    excluded: dict[str, int]
    pool: int
    sigma: float | None
    features: np.ndarray
    analysis: SpectralAnalysis
    rank: int | None = None
    settings: dict = field(default_factory=dict)

    def row(self, central: int = 6) -> dict:
        """This class' entry of ``spray.json``."""
        a = self.analysis
        shown = a.labels[a.shown_k]
        return {"image_ids": self.image_ids, "eigenvalues": a.eigenvalues.tolist(), "eigengap_k": a.eigengap_k,
                "labels": {str(k): v.tolist() for k, v in a.labels.items()},
                "embedding": None if a.embedding is None else a.embedding.tolist(), "rank": self.rank,
                "store": self.store, "family": self.family, "n_maps": len(self.image_ids),
                "excluded": dict(self.excluded), "n_neighbors": a.n_neighbors, "n_components": a.n_components,
                "shown_k": a.shown_k,
                "central": [[self.image_ids[i] for i in members] for members in central_members(a.eigenvectors, shown, central)],
                "settings": self.settings}


def store_family(store: RelevanceStore) -> str:
    return str(store.attrs.get("model_variant", store.attrs.get("model_family", "bow")))


def load_class_maps(store: RelevanceStore, keep: set[str] | None = None, pool: int = 20, sigma: float | None = None,
                    progress: bool = False, normalize: str = "l1") -> tuple[list[str], list[str], np.ndarray, dict[str, int]]:
    """Pooled maps of a store's images (those in ``keep``, all when None).

    Returns ``(image_ids, paths, features (n, pool * pool), excluded counts)``; NaN and all-zero
    maps are counted and left out.
    """
    from ..progress import progress as progress_bar

    ids, paths, rows = [], [], []
    excluded = {"nan": 0, "zero": 0, "absent": 0}
    with progress_bar(len(store.ids), f"pooling {store.attrs.get('class_name', '')}", progress) as bar:
        for image_id in store.ids:
            bar.update()
            if keep is not None and image_id not in keep:
                excluded["absent"] += 1
                continue
            relevance = store.relevance(image_id)
            problem = map_problem(relevance)
            if problem:
                excluded[problem] += 1
                continue
            ids.append(image_id)
            paths.append(str(store.image_attrs(image_id).get("path", "")))
            rows.append(preprocess(relevance, pool, sigma, normalize))
    features = np.array(rows, dtype=np.float64).reshape(len(rows), pool * pool)
    return ids, paths, features, excluded


@dataclass
class Annotations:
    """What a dataset says about its images: ``classes``, per image id its ``labels`` (n_classes,)
    int (1 present, 0 only difficult, -1 absent) and its file ``paths``."""

    root: str
    classes: list[str]
    labels: dict[str, np.ndarray]
    paths: dict[str, str]


def read_annotations(data: str | Path, format: str = "voc") -> Annotations:
    """:class:`Annotations` over every split of a dataset."""
    from ..data import open_dataset

    dataset = open_dataset(data, format=format)
    labels: dict[str, np.ndarray] = {}
    paths: dict[str, str] = {}
    for split in dataset.splits():
        for sample in dataset.split(split):
            labels.setdefault(sample.image_id, sample.labels)
            paths.setdefault(sample.image_id, str(sample.path))
    return Annotations(str(data), dataset.classes, labels, paths)


def rank_classes(results: Sequence[ClassSpray]) -> None:
    """Set each result's ``rank``: lambda_2 ascending, ties by lambda_3..lambda_5, then class name (Fig. 6.5)."""
    def key(r: ClassSpray) -> tuple:
        values = list(r.analysis.eigenvalues[1:5]) + [math.inf] * max(0, 5 - len(r.analysis.eigenvalues))
        return (*values, r.class_name)

    for position, result in enumerate(sorted(results, key=key), start=1):
        result.rank = position


def spray_stores(stores: Iterable[str | Path], annotations: Annotations | None = None, pool: int = 20,
                 sigma: float | None = None, seed: int = 0, progress: bool = False,
                 clusters: Sequence[int] = CLUSTER_RANGE, normalize: str = "l1") -> list[ClassSpray]:
    """SpRAy per class over relevance stores (files, or folders of ``*.h5``), one store per class.

    With ``annotations`` (:func:`read_annotations`), only the images that contain the store's class
    (label 1 or 0) are analysed, their files taken from the dataset; without, all of the store's
    images, files as the store recorded them. Returns the results in class-name order, ranked.
    """
    from .context import store_paths

    if pool not in POOL_SIZES:
        raise BowlrpError(f"pool size {pool} is not one of {', '.join(map(str, POOL_SIZES))}")
    if sigma is not None and sigma < 0:
        raise BowlrpError(f"--sigma must be >= 0, got {sigma}")
    if normalize not in NORMALIZATIONS:
        raise BowlrpError(f"--normalize must be one of {', '.join(NORMALIZATIONS)}, got {normalize!r}")
    results: list[ClassSpray] = []
    seen: dict[str, str] = {}
    for path in store_paths(stores):
        with RelevanceStore(path) as store:
            class_name = str(store.attrs["class_name"])
            if class_name in seen:
                raise BowlrpError(f"{path} and {seen[class_name]} both hold class {class_name!r}; "
                                  "run spray once per model")
            seen[class_name] = str(path)
            keep = None
            if annotations is not None:
                if class_name not in annotations.classes:
                    raise DataError(f"{path}: class {class_name!r} is not a class of the dataset {annotations.root}")
                missing = [i for i in store.ids if i not in annotations.labels]
                if missing:
                    raise DataError(f"{path}: image {missing[0]!r} is not in the dataset; give the --data the "
                                    "store was made from")
                column = annotations.classes.index(class_name)
                keep = {i for i in store.ids if contains_class(annotations.labels[i][column])}
            ids, paths, features, excluded = load_class_maps(store, keep, pool, sigma, progress, normalize)
            paths = [annotations.paths[i] if annotations is not None else recorded_image_path(p, path)
                     for i, p in zip(ids, paths)]
            family = store_family(store)
        bad = ", ".join(f"{v} {k}" for k, v in excluded.items() if v and k != "absent")
        if bad:
            log.warning("%s: left out %s map(s)", class_name, bad)
        check_count(len(ids), clusters, f"class {class_name!r} ({path}): ")
        log.info("SpRAy on %d maps of %s", len(ids), class_name)
        analysis = analyse(features, seed=seed, clusters=clusters)
        results.append(ClassSpray(class_name, str(path), family, ids, paths, excluded, pool, sigma, features,
                                  analysis, settings={"pool": pool, "sigma": sigma, "normalize": normalize, "seed": seed,
                                                      "perplexity": PERPLEXITY,
                                                      "early_exaggeration": EARLY_EXAGGERATION,
                                                      "annotations": annotations is not None}))
    if not results:
        raise BowlrpError("no relevance store to analyse")
    rank_classes(results)
    return sorted(results, key=lambda r: r.class_name)
