"""Export of a SpRAy run in the layout ViRelAy (PyPI ``virelay``, 0.6.1) reads, so its web viewer
shows the clusters, embeddings, images and heatmaps side by side.

The layout follows ``virelay.model`` (``Project``, ``Hdf5Dataset``, ``AttributionDatabase``,
``AnalysisDatabase``, ``LabelMap``); everything goes into one folder::

    project.yaml       project: name, model, label_map, dataset (type hdf5), attributions, analyses
    label-map.json     [{"index": i, "word_net_id": <class>, "name": <class>}, ...] over the classes
    dataset.h5         data/<nnnnnn>   (H, W, 3) uint8 image          one sample per (class, image):
                       label/<nnnnnn>  (n_classes,) bool, the image's labels   ViRelAy looks attributions
    attribution.h5     attribution/<nnnnnn> (H, W, 1) float32 relevance        up by sample index alone, so
                       prediction/<nnnnnn>  (n_classes,) float32               an image in two classes is
                       label/<nnnnnn>       (n_classes,) bool                  two samples
    analysis.h5        <class>/index            (n,) int64 sample indices of the class' maps
                       <class>/cluster/kmeans-<kk>  (n,) int64 labels, k = 2..10
                       <class>/embedding/spectral   (n, m) eigenvectors, attrs eigenvalue (m,)
                       <class>/embedding/tsne       (n, 2)

Samples are numbered class by class in the order of the SpRAy results. The prediction vector holds
the store's score at the class' position and 0 elsewhere (a store records only its own class' score).
Images are read from the paths the stores recorded; a missing image is an error (the viewer needs it).
The word_net_id of a label is its class name, so the viewer names each analysis category.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import BowlrpError
from ..persistence import atomic_write_bytes, atomic_write_json
from ..runs import contains_class
from .spray_classes import ClassSpray

PROJECT_FILE = "project.yaml"
LABEL_MAP_FILE = "label-map.json"
DATASET_FILE = "dataset.h5"
ATTRIBUTION_FILE = "attribution.h5"
ANALYSIS_FILE = "analysis.h5"
ANALYSIS_METHOD = "spectral_relevance_analysis"
_DIGITS = 6


def _key(index: int) -> str:
    return f"{index:0{_DIGITS}d}"  # zero-padded: h5py lists group members in name order


def _uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def export_virelay(results: Sequence[ClassSpray], out: str | Path, classes: Sequence[str],
                   labels: dict[str, np.ndarray] | None, relevance: Callable[[ClassSpray, str], np.ndarray],
                   score: Callable[[ClassSpray, str], float], model: str = "bowlrp",
                   attribution_method: str = "lrp") -> Path:
    """Write the ViRelAy project of ``results`` into the folder ``out``; returns the project file.

    ``classes`` is the label list (the dataset's, or the analysed classes); ``labels`` maps image
    ids to ``(n_classes,)`` int labels (1 / 0 present, -1 absent) or is None (then each sample's
    label is its analysed class alone). ``relevance(result, image_id)`` and ``score(result,
    image_id)`` read a map and its score from the result's store. The folder is written under a
    temporary name and renamed, so it is either the old or the complete new export.
    """
    import h5py
    import yaml

    from ..data import load_image

    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    classes = list(classes)
    atomic_write_json(tmp / LABEL_MAP_FILE, [{"index": i, "word_net_id": name, "name": name}
                                              for i, name in enumerate(classes)])
    sample = 0
    with h5py.File(tmp / DATASET_FILE, "w") as dataset, h5py.File(tmp / ATTRIBUTION_FILE, "w") as attribution, \
            h5py.File(tmp / ANALYSIS_FILE, "w") as analysis:
        data, label = dataset.create_group("data"), dataset.create_group("label")
        maps, predictions, map_labels = (attribution.create_group(name) for name in ("attribution", "prediction", "label"))
        for result in results:
            column = classes.index(result.class_name)
            indices = []
            for image_id, path in zip(result.image_ids, result.paths):
                try:
                    image = load_image(path)
                except Exception as exc:
                    raise BowlrpError(f"ViRelAy export: image {image_id} of {result.class_name} "
                                      f"({path}) cannot be read: {exc}") from None
                R = np.asarray(relevance(result, image_id), dtype=np.float32)
                if image.shape[:2] != R.shape:
                    raise BowlrpError(f"ViRelAy export: image {path} is {image.shape[:2]}, its map {R.shape}")
                if labels is None:
                    hot = np.zeros(len(classes), dtype=bool)
                    hot[column] = True
                else:
                    hot = contains_class(labels[image_id])
                prediction = np.zeros(len(classes), dtype=np.float32)
                prediction[column] = score(result, image_id)
                key = _key(sample)
                data.create_dataset(key, data=_uint8(image), compression="gzip")
                label.create_dataset(key, data=hot)
                maps.create_dataset(key, data=R[..., None], compression="gzip", shuffle=True)
                predictions.create_dataset(key, data=prediction)
                map_labels.create_dataset(key, data=hot)
                indices.append(sample)
                sample += 1
            group = analysis.create_group(result.class_name)
            group.create_dataset("index", data=np.array(indices, dtype=np.int64))
            clusters = group.create_group("cluster")
            for k, values in result.analysis.labels.items():
                clusters.create_dataset(f"kmeans-{k:02d}", data=values.astype(np.int64))
            embeddings = group.create_group("embedding")
            spectral = embeddings.create_dataset("spectral", data=result.analysis.eigenvectors)
            spectral.attrs["eigenvalue"] = result.analysis.eigenvalues
            if result.analysis.embedding is not None:
                embeddings.create_dataset("tsne", data=result.analysis.embedding)
    project = {"project": {
        "name": f"bowlrp SpRAy ({model})", "model": model, "label_map": LABEL_MAP_FILE,
        "dataset": {"name": "images of the analysed classes", "type": "hdf5", "path": DATASET_FILE,
                    "input_width": 0, "input_height": 0, "up_sampling_method": "none",
                    "down_sampling_method": "none"},
        "attributions": {"attribution_method": attribution_method, "attribution_strategy": "true_label",
                         "sources": [ATTRIBUTION_FILE]},
        "analyses": [{"analysis_method": ANALYSIS_METHOD, "sources": [ANALYSIS_FILE]}]}}
    atomic_write_bytes(tmp / PROJECT_FILE, yaml.safe_dump(project, sort_keys=False).encode("utf-8"))
    if out.exists():
        old = out.with_name(out.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out)
    return out / PROJECT_FILE
