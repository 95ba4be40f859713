"""Age and gender models on Adience-layout faces: training, 10-crop prediction, accuracy (SPEC §5.3).

Single-label tasks through the existing multi-label machinery: the label of a face becomes a row of
one-vs-rest targets (+1 at its class, -1 at every other), so the DNN trains with the summed hinge loss of
:mod:`bowlrp.dnn.train` (one hinge per class, Appendix C.1) and the FV model with one SVM per class
(:func:`bowlrp.pipeline.train_model`); the prediction is the class of the highest score (argmax).

* DNN: the faces are squared to ``size`` (default: the image side) and trained on the 10 crops of ``crop``
  px (default 7/8 of ``size``); at test time the scores of the 10 crops (4 corners, centre, mirrored) are
  averaged (10-crop oversampling). ``init`` starts from another network of the same architecture (a model
  directory, e.g. one trained on toyvoc, or a state-dict file) except its last layer.
* FV: the whole face image (no crops), dense SIFT on the small faces (bins 2, 3, 4 px, step 2 by default).

A faces model is the family's model directory plus ``faces.json`` (task, alignment, classes, folds).
PyTorch is imported only when a DNN is trained or scored, and runs on one intra-op thread then
(:func:`one_torch_thread`): on faces of 40 px its operations are too small to split, and two threads made a
small-size training 4-5x slower in CPU and wall time on a 2-core machine (5.6 s vs 25 s, measured).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..data.adience import AGE_GROUPS, TASKS, alignments_of, open_adience
from ..data.images import read_image
from ..dnn.config import TrainConfig
from ..errors import BowlrpError, ModelError, SkipLog
from ..persistence import atomic_write_json

FACES_JSON = "faces.json"
FORMAT = "bowlrp.faces"
FAMILIES = ("dnn", "fisher")
#: epochs of a faces network unless told (a VOC network's :class:`TrainConfig` default is 20)
DEFAULT_EPOCHS = 3


@dataclass
class FisherSettings:
    gmm_k: int = 32
    pca_dims: int = 64
    bin_sizes: tuple[int, ...] = (2, 3, 4)
    step: int = 2
    max_descriptors: int = 50_000
    C: float | None = 1.0
    seed: int = 0


@dataclass
class FaceModelSpec:
    """What a faces model is trained on and how."""

    task: str
    align: str
    family: str = "dnn"
    folds: tuple[int, ...] = (0, 1, 2, 3)
    init: str | None = None
    dnn: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=DEFAULT_EPOCHS))
    fisher: FisherSettings = field(default_factory=FisherSettings)


def one_vs_rest(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class indices ``(n,)`` -> targets ``(n, n_classes)`` int8: +1 at the class, -1 elsewhere."""
    out = -np.ones((len(labels), n_classes), dtype=np.int8)
    out[np.arange(len(labels)), labels] = 1
    return out


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(1)``; the earlier setting is restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def init_weights(init: str | Path) -> Path:
    """The state-dict file of ``--init``: a model directory's ``weights.pt``, or the file itself."""
    path = Path(init)
    if path.is_dir():
        path = path / "weights.pt"
    if not path.is_file():
        raise BowlrpError(f"{init}: no network to start from (a DNN model directory or a state-dict file)")
    return path


def train_face_model(data: str | Path, spec: FaceModelSpec, out: str | Path, skips: SkipLog | None = None,
                     report: Callable[[str], None] = print, device: str = "cpu") -> dict:
    """Train ``spec`` on the faces of ``data`` in ``spec.folds`` (a network on ``device``); write the model
    directory ``out``.

    Returns the ``faces.json`` record (plus ``n_images``).
    """
    if spec.task not in TASKS or spec.family not in FAMILIES:
        raise BowlrpError(f"task {spec.task!r} / model {spec.family!r}: choose age|gender and dnn|fisher")
    skips = skips if skips is not None else SkipLog()
    dataset = open_adience(data, strict=skips.strict)
    skips.extend(dataset.skips)
    paths, labels, _ = dataset.samples(spec.task, spec.align, spec.folds, skips)
    classes = list(TASKS[spec.task])
    if len(paths) == 0:
        raise BowlrpError(f"{data}: no {spec.task}-labelled face in folds {list(spec.folds)}")
    missing = sorted(set(range(len(classes))) - set(labels.tolist()))
    if missing:
        raise BowlrpError(f"{data}: folds {list(spec.folds)} hold no face of {', '.join(classes[c] for c in missing)}")
    targets = one_vs_rest(labels, len(classes))
    out = Path(out)
    if spec.family == "dnn":
        from ..dnn.train import train

        d = spec.dnn
        size = d.size or int(read_image(paths[0]).shape[0])
        config = replace(d, size=size, crop=d.crop or max(8, round(size * 7 / 8)),
                         weights=str(init_weights(spec.init)) if spec.init else d.weights)
        with one_torch_thread():
            train(config, paths, targets, classes, out, device, skips, report)
    else:
        from ..pipeline import PipelineConfig, train_model

        f = spec.fisher
        config = PipelineConfig.with_defaults(encoder="fisher", n_words=f.gmm_k, pca_dims=f.pca_dims,
                                              bin_sizes=f.bin_sizes, step=f.step, max_descriptors=f.max_descriptors,
                                              C=f.C, seed=f.seed)
        report(f"fisher: {len(paths)} images, GMM {f.gmm_k}, bins {f.bin_sizes}")
        model = train_model(config, [str(p) for p in paths], targets, classes, skips)
        model.training["skipped"] = skips.as_list()
        model.save(out)
    record = {"format": FORMAT, "task": spec.task, "align": spec.align, "family": spec.family, "classes": classes,
              "folds": list(spec.folds), "init": spec.init, "data": str(Path(data).resolve()),
              "settings": asdict(spec.dnn if spec.family == "dnn" else spec.fisher)}
    atomic_write_json(out / FACES_JSON, record)
    return {**record, "n_images": len(paths)}


def read_face_model(directory: str | Path) -> dict:
    """The ``faces.json`` of a faces model directory; a one-line error for anything else."""
    import json

    path = Path(directory) / FACES_JSON
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: missing (not a model written by 'bowlrp faces train')") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("task") not in TASKS \
            or record.get("family") not in FAMILIES or record.get("classes") != list(TASKS[record["task"]]):
        raise ModelError(f"{path}: not a faces model record")
    return record


def _dnn_scores(directory: Path, paths: Sequence[Path], skips: SkipLog, device: str,
                batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    import torch

    from ..dnn.io import load_network
    from ..dnn.preprocess import N_CROPS, cut, normalize
    from ..dnn.train import load_squared

    model = load_network(directory, device)
    size, crop = model.meta["size"], model.meta["crop"]
    images, ok = load_squared(paths, size, skips)
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = images[start:start + batch].to(torch.float32) / 255.0
            crops = torch.stack([cut(x, crop, c) for c in range(N_CROPS)], 1).flatten(0, 1)  # (b*10, 3, c, c)
            scores = model(normalize(crops).to(device)).reshape(len(x), N_CROPS, -1).mean(1)
            out.append(scores.cpu().numpy().astype(np.float64))
    return np.concatenate(out), ok


def face_scores(directory: str | Path, paths: Sequence[Path], skips: SkipLog,
                device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Class scores ``(n_ok, n_classes)`` of a faces model (DNN: mean over the 10 crops) and the ok mask over
    ``paths``; classes in the order of ``faces.json``."""
    directory = Path(directory)
    record = read_face_model(directory)
    if not len(paths):
        return np.zeros((0, len(record["classes"]))), np.zeros(0, dtype=bool)
    if record["family"] == "dnn":
        with one_torch_thread():
            return _dnn_scores(directory, paths, skips, device)
    from ..pipeline import load_bow_model

    model = load_bow_model(directory)
    scores, ok = model.score_files([str(p) for p in paths], skips)
    full = np.full((len(scores), len(record["classes"])), -np.inf)
    for c, name in enumerate(model.class_names):  # a class the SVM could not be trained for never wins
        full[:, record["classes"].index(name)] = scores[:, c]
    return full, ok


def accuracy_summary(task: str, truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Accuracy, 1-off accuracy (age: within one group; None for gender) and the confusion matrix
    (rows: true class, columns: predicted) of class indices."""
    n_classes = len(TASKS[task])
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    n = len(truth)
    accuracy = float((truth == predicted).mean()) if n else float("nan")
    one_off = float((np.abs(truth - predicted) <= 1).mean()) if n and task == "age" else None
    return {"task": task, "accuracy": accuracy, "one_off_accuracy": one_off, "n_images": int(n),
            "confusion": confusion.tolist(), "classes": list(TASKS[task])}


def evaluate_face_model(directory: str | Path, data: str | Path, folds: Sequence[int] = (4,),
                        align: str | None = None, skips: SkipLog | None = None, device: str = "cpu") -> dict:
    """Accuracy of a faces model on ``folds`` of ``data``, on its own alignment or ``align`` (test-set
    swapping). Returns :func:`accuracy_summary` plus ``align``, ``trained_align``, ``folds``, ``skipped``."""
    record = read_face_model(directory)
    skips = skips if skips is not None else SkipLog()
    dataset = open_adience(data, strict=skips.strict)
    skips.extend(dataset.skips)
    align = align or record["align"]
    alignments_of(align)
    paths, labels, _ = dataset.samples(record["task"], align, folds, skips)
    if not paths:
        raise BowlrpError(f"{data}: no {record['task']}-labelled face in folds {list(folds)}")
    scores, ok = face_scores(directory, paths, skips, device)
    summary = accuracy_summary(record["task"], labels[ok], scores.argmax(1))
    return {**summary, "align": align, "trained_align": record["align"], "family": record["family"],
            "folds": list(folds), "skipped": skips.as_list()}


__all__ = ["AGE_GROUPS", "FaceModelSpec", "FisherSettings", "accuracy_summary",
           "evaluate_face_model", "face_scores", "one_torch_thread", "one_vs_rest", "read_face_model", "train_face_model"]
