"""One image's DNN explanation in original image coordinates, and whole splits in the HDF5 store.

The per-image arrays follow the ``.npz`` contract of ``bowlrp explain`` (:mod:`bowlrp.lrp.explain`):
``relevance`` ``(H, W)`` float32 in original image coordinates, ``score`` f_k(x) of the centre crop,
``bias_relevance`` (0: biases are not split off here), ``absorbed`` (``score - sum relevance``: what the
rules and biases did not hand down; for gradient methods simply the difference), ``residual`` (0),
and empty ``descriptor_relevance`` ``(0,)`` / ``descriptor_frames`` ``(0, 4)`` (a DNN has no descriptors).
Splits are written with the resumable part files and the HDF5 layout of :mod:`bowlrp.store`.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from torch import nn

from bowlrp.lrp.explain import Explanation
from bowlrp.store import SplitParts, StoreSummary, model_digest

from .attribution import attribute
from .preprocess import centre_input, to_original


def explain_image(model: nn.Module, image: np.ndarray, class_name: str, method: str = "lrp",
                  composite: str = "epsilon-alpha2beta1-flat", flat_depth: int | None = None) -> Explanation:
    """Explain ``class_name`` on the centre crop of ``image`` ``(H, W, 3)`` in [0, 1]; map to ``(H, W)``."""
    meta = model.meta
    size, crop = meta["size"], meta["crop"]
    k = meta["classes"].index(class_name)
    x = centre_input(image, size, crop)
    r, out = attribute(model, x, k, method=method, composite=composite, flat_depth=flat_depth)
    pixel = r[0].sum(0).detach().cpu().double()
    relevance = to_original(pixel, image.shape[:2], size, crop)
    score = float(out[0, k])
    return Explanation(relevance=relevance, score=score, bias_relevance=0.0,
                       absorbed=score - float(relevance.astype(np.float64).sum()), residual=0.0,
                       descriptor_relevance=np.zeros(0, np.float32), descriptor_frames=np.zeros((0, 4), np.float32),
                       feature_relevance=np.zeros(0, np.float32), class_name=class_name,
                       settings={"method": method, "composite": composite, "flat_depth": flat_depth})


def explain_split(model: nn.Module, model_dir: str | Path, args: argparse.Namespace, options: dict) -> StoreSummary:
    """Explain every image of ``args.split`` into the store ``args.store`` (resumable, as
    :func:`bowlrp.store.explain_split`: one atomic part file per image, assembled at the end)."""
    from bowlrp.data import open_dataset
    from bowlrp.data.images import load_image
    from bowlrp.errors import BowlrpError, SkipLog

    dataset = open_dataset(args.data, format=args.format, strict=args.strict)
    samples = dataset.split(args.split)
    skips = SkipLog(strict=args.strict)
    skips.extend(dataset.skips)
    settings = {"class_name": args.class_name, "rule": options["method"] if options["method"] != "lrp"
                else options["composite"], "eps": 0.01, "alpha": 2.0, "bias": "keep",
                "depth": "pixels" if options["flat_depth"] is None else f"flat_depth={options['flat_depth']}",
                "model_sha256": model_digest(model_dir, ("model.json", "weights.pt")), "model_kind": "dnn", **{k: v for k, v in options.items()},
                "data": str(Path(args.data).resolve()), "split": args.split,
                "image_ids": [s.image_id for s in samples]}
    parts = SplitParts(args.store, len(samples), settings)
    todo = parts.pending()
    progress = not getattr(args, "no_progress", False)
    explained = 0
    for n, i in enumerate(todo):
        sample = samples[i]
        try:
            result = explain_image(model, load_image(sample.path), args.class_name, **options)
        except BowlrpError as exc:
            skips.add(str(sample.path), str(exc))
            continue
        parts.write(i, result.arrays(), sample.image_id, sample.path)
        explained += 1
        if progress and ((n + 1) % 25 == 0 or n + 1 == len(todo)):
            print(f"  explained {n + 1}/{len(todo)}", flush=True)
    parts.assemble(skips.as_list())
    return StoreSummary(Path(args.store), explained, len(samples) - len(todo), skips.as_list())
