"""Dataset-scale work on any :class:`~bowlrp.model.Model`: evaluation, per-image heatmap files, and
whole splits explained into a resumable relevance store.

Written once for every model family: a family only implements the model interface
(:mod:`bowlrp.model`), and these runs — and the analyses on top of their stores — work for it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .data import open_dataset
from .data.dataset import Dataset, Sample
from .errors import BowlrpError, SkipLog
from .explanation import Explanation, write_outputs
from .model import ExplanationMethod, Model, read_image_for
from .parallel import ItemResult, ParallelOptions, guarded, parallel_map
from .store import SplitParts, image_digest, write_part
from .svm.metrics import evaluation_summary

log = logging.getLogger(__name__)


def labelled_split(data: str | Path, split: str, format: str = "voc", classes: Sequence[str] | None = None,
                   strict: bool = False) -> tuple[Dataset, list[Sample], np.ndarray]:
    """The samples of ``split`` and their labels ``(n, n_classes)`` int8 in {1, -1, 0}; an empty split
    is an error."""
    dataset = open_dataset(data, format=format, classes=None if classes is None else list(classes), strict=strict)
    samples = dataset.split(split)
    if not samples:
        raise BowlrpError(f"split {split!r} of {data} has no images")
    return dataset, samples, np.stack([s.labels for s in samples]).astype(np.int8)


def contains_class(labels: np.ndarray) -> np.ndarray:
    """Which images contain a class, from its labels in {1, -1, 0}: label 1, or 0 ("difficult": the
    object is there, hard to see). Analyses run on these images."""
    return np.asarray(labels) != -1


def classes_with_positives(labels: np.ndarray, class_names: Sequence[str]) -> tuple[list[int], list[str]]:
    """Columns of ``labels`` with at least one positive image (a classifier can be trained for
    them), and the names of the others."""
    present = [c for c in range(len(class_names)) if (labels[:, c] == 1).any()]
    return present, [name for c, name in enumerate(class_names) if c not in present]


def evaluate(model: Model, samples: Sequence[Sample], labels: np.ndarray, skips: SkipLog,
             parallel: ParallelOptions | None = None) -> dict:
    """Per-class AP, mAP and sign accuracy of ``model`` on labelled samples.

    ``labels`` columns must follow ``model.class_names`` (open the dataset with those classes).
    Returns ``{"ap", "ap_area", "map", "map_area", "accuracy", "n_images", "skipped"}``, as
    ``bowlrp evaluate --json`` writes it.
    """
    scores, ok = model.score_files([s.path for s in samples], skips, parallel)
    result = evaluation_summary(scores, labels[ok], model.class_names)
    return {**result, "n_images": int(ok.sum()), "skipped": skips.as_list()}


def explain_files(model: Model, class_name: str, method: ExplanationMethod, paths: Sequence[str | Path],
                  out: str | Path, skips: SkipLog) -> Iterator[tuple[str, Explanation]]:
    """Explain ``class_name`` on every image file and write its outputs into ``out``
    (:func:`bowlrp.explanation.write_outputs`, named by the file's stem); yields
    ``(path, explanation)`` as each is written. Unusable images are counted in ``skips``."""
    model.class_index(class_name)  # an unknown class is the caller's error, not a skip per image
    stems = [Path(p).stem for p in paths]
    clash = sorted({s for s in stems if stems.count(s) > 1})
    if clash:
        raise BowlrpError(f"several images share the file name stem {clash[0]!r}; their outputs would collide")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for path, stem in zip(paths, stems):
        try:
            image = read_image_for(model, path)  # uint8 where the family takes it: 4x less than float32
            explanation = model.explain(image, class_name, method)
        except BowlrpError as exc:
            skips.add(str(path), str(exc))
            continue
        write_outputs(explanation, image, out, stem)
        yield str(path), explanation


@dataclass
class StoreSummary:
    """What a split run did: images explained now, found finished from an earlier run, skipped."""

    path: Path
    n_explained: int
    n_resumed: int
    skipped: list[dict]


def run_settings(model: Model, class_name: str, settings: dict, samples: Sequence[Sample],
                 extra_settings: dict | None = None) -> dict:
    """What a split run records and an interrupted run must match: class, model (family, variant and
    digest), the run's own ``settings`` (an explanation method's, a perturbation's), the images, and
    ``extra_settings`` (e.g. the data folder and split)."""
    return {"class_name": class_name, "model_family": model.family, "model_variant": model.variant,
            "model_sha256": model.digest(), **settings, "image_ids": [s.image_id for s in samples],
            **(extra_settings or {})}


def _explain_worker(index: int, image_id: str, path: str, model: Model, class_name: str,
                    method: ExplanationMethod, parts: str) -> ItemResult:
    def explain_one() -> None:
        digest = image_digest(path)  # before reading it: a file changed meanwhile is done again on resumption
        explanation = model.explain(read_image_for(model, path), class_name, method)
        write_part(parts, index, explanation.arrays(), image_id, path, digest)

    return guarded(explain_one, str(path))


def run_pending(parts: SplitParts, todo: Sequence[int], samples: Sequence[Sample], worker, extra: tuple,
                skips: SkipLog, parallel: ParallelOptions | None, desc: str) -> list[ItemResult]:
    """``worker(index, image_id, path, *extra, parts_folder)`` for the images ``todo`` of a split run,
    spread as ``parallel`` says; each worker writes its own part file, a failure is a named skip."""
    results = parallel_map(
        worker, todo, lambda i: (i, samples[i].image_id, str(samples[i].path), *extra, str(parts.folder)),
        parallel, desc)
    for res in results:
        if not res.ok:
            skips.add(res.item, res.skip_reason)
    return results


def explain_split(model: Model, samples: Sequence[Sample], class_name: str, out: str | Path,
                  method: ExplanationMethod, skips: SkipLog | None = None, parallel: ParallelOptions | None = None,
                  extra_settings: dict | None = None) -> StoreSummary:
    """Explain ``class_name`` on every sample into the HDF5 store ``out``, resumably.

    Each finished image is an atomic part file first (:class:`bowlrp.store.SplitParts`); a re-run
    with the same model, method and images keeps those and explains the rest; the store is
    assembled when all are done. ``parallel`` spreads the images over workers (each writes its own
    part), ``extra_settings`` (e.g. the data folder and split) are recorded with the store.
    """
    model.class_index(class_name)
    skips = skips if skips is not None else SkipLog()
    settings = run_settings(model, class_name, method.settings(), samples, extra_settings)
    with SplitParts(out, len(samples), settings) as parts:  # a second run on ``out`` refuses here
        todo = parts.pending()
        log.info("explaining %s on %d image(s), %d kept from an interrupted run", class_name, len(todo),
                 len(samples) - len(todo))
        results = run_pending(parts, todo, samples, _explain_worker, (model, class_name, method), skips, parallel,
                              f"explaining {class_name}")
        parts.assemble(skips.as_list())
    return StoreSummary(Path(out), sum(r.ok for r in results), len(samples) - len(todo), skips.as_list())
