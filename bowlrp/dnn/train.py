"""Multi-label training on VOC-format data (dissertation Appendix C.1: the summed hinge loss of C.1, the crops
of C.1.1) and centre-crop scoring (C.1.2).

* Loss: the sum over classes of hinge losses ``max(0, 1 - y_c f_c(x))`` with ``y_c`` in {+1, -1};
  "difficult" labels (0) are left out of the sum. Mean over the batch.
* Data: every training image squared once (:func:`dnn.preprocess.square`) and kept in memory as uint8
  (``3 * size^2`` bytes per image: about 1 GB for 5,000 images at 256); each epoch
  visits all 10 crops of every image (4 corners + centre, and mirrored) in a seeded random order.
* Resumable: after every epoch ``MODEL/checkpoint.pt`` (model, optimiser and schedule state dicts) and
  ``MODEL/checkpoint.json`` (epoch, configuration) are written atomically; a re-run with the same
  configuration continues after the last finished epoch. Seeds are set per epoch (``seed * 1000 + epoch``),
  so an interrupted and resumed run gives the same model as an uninterrupted one.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from bowlrp.data.images import load_image
from bowlrp.errors import BowlrpError, SkipLog
from bowlrp.persistence import atomic_write_bytes, atomic_write_json
from bowlrp.progress import progress

from .config import TrainConfig
from .io import load_tensors, save_network, tensor_bytes
from .models import HEAD, INPUT_GEOMETRY, build
from .preprocess import N_CROPS, cut, image_tensor, normalize, square

log = logging.getLogger(__name__)
CHECKPOINT, CHECKPOINT_JSON = "checkpoint.pt", "checkpoint.json"


def hinge_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed multi-label hinge loss: ``scores``/``labels`` ``(B, C)``, labels in {1, -1, 0 (ignored)}."""
    mask = (labels != 0).to(scores.dtype)
    return (torch.clamp(1 - labels.to(scores.dtype) * scores, min=0) * mask).sum(1).mean()


def load_squared(paths: Sequence[str | Path], size: int, skips: SkipLog,
                 progress: Callable[[int], None] | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """``(N, 3, size, size)`` uint8 squared images and the boolean mask of paths that loaded."""
    out, ok = [], np.zeros(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        try:
            img = square(image_tensor(load_image(path)), size)
            out.append((img[0].clamp(0, 1) * 255).round().to(torch.uint8))
            ok[i] = True
        except BowlrpError as exc:
            skips.add(str(path), str(exc))
        if progress:
            progress(i + 1)
    if not out:
        raise BowlrpError("no usable training image")
    return torch.stack(out), ok


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))


def train(config: TrainConfig, paths: Sequence[str | Path], labels: np.ndarray, classes: list[str],
          out: str | Path, device: str = "cpu", skips: SkipLog | None = None,
          report: Callable[[str], None] = print, show_progress: bool = False) -> nn.Module:
    """Train ``config.arch`` on images ``paths`` with ``labels`` ``(N, C)`` in {1, -1, 0}; write ``out``.

    Resumes from ``out/checkpoint.*`` when present with the same configuration. Returns the model (eval mode).
    ``report`` gets a line per stage and epoch; ``show_progress`` adds :func:`bowlrp.progress.progress`
    over the images loaded and the epochs (the loss as its postfix), as every other long stage shows it.
    """
    out = Path(out)
    skips = skips if skips is not None else SkipLog()
    size, crop = config.geometry()
    settings = {"config": asdict(config), "classes": list(classes), "n_images": len(paths)}
    _seed(config.seed)
    model = build(config.arch, len(classes))
    if config.weights:
        state = load_tensors(config.weights)
        head = HEAD[config.arch] + "."
        state = {k: v for k, v in state.items() if not k.startswith(head)}  # a new classifier for our classes
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith(head) for k in missing):
            raise BowlrpError(f"{config.weights}: not {config.arch} weights (missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]})")
    # channels-last convolutions are markedly faster on CPUs (oneDNN) and no slower on GPUs
    model.to(device=device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, config.epochs))
    start = 0
    history: list[dict] = []
    if (out / CHECKPOINT_JSON).is_file():
        earlier = json.loads((out / CHECKPOINT_JSON).read_text())
        if earlier["settings"] != settings:
            raise BowlrpError(f"{out} holds a checkpoint of another training run; write the model elsewhere or "
                              "delete it")
        state = load_tensors(out / CHECKPOINT)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start = earlier["epoch"]
        history = list(earlier.get("history", []))
        report(f"resuming after epoch {start} of {config.epochs}")

    report(f"loading {len(paths)} images (longest side {size}, padded to {size} x {size}, crops {crop} x {crop})")
    with progress(len(paths), "loading images", show_progress, unit="img") as bar:
        images, ok = load_squared(paths, size, skips, lambda done: bar.update())
    y = torch.as_tensor(labels[ok], dtype=torch.float32)
    n = len(images)
    epochs = progress(config.epochs - start, f"training {config.arch}", show_progress, unit="epoch")
    for epoch in range(start, config.epochs):
        began = time.perf_counter()
        _seed(config.seed * 1000 + epoch)
        model.train()
        order = torch.randperm(n * N_CROPS)
        total = 0.0
        for b in range(0, len(order), config.batch_size):
            idx = order[b:b + config.batch_size]
            img, crop_index = idx // N_CROPS, idx % N_CROPS
            batch = torch.stack([cut(images[i:i + 1], crop, int(c))[0] for i, c in zip(img.tolist(),
                                                                                    crop_index.tolist())])
            x = normalize(batch.to(device=device, dtype=torch.float32) / 255.0).contiguous(
                memory_format=torch.channels_last)
            loss = hinge_loss(model(x), y[img].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        schedule.step()
        history.append({"epoch": epoch + 1, "loss": total / len(order), "seconds": time.perf_counter() - began})
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out / CHECKPOINT, tensor_bytes({"model": model.state_dict(),
                                                           "optimizer": optimizer.state_dict(),
                                                           "schedule": schedule.state_dict()}))
        atomic_write_json(out / CHECKPOINT_JSON, {"epoch": epoch + 1, "settings": settings, "history": history})
        epochs.update()
        epochs.set_postfix_str(f"loss {total / len(order):.4f}")
        report(f"epoch {epoch + 1}/{config.epochs}: loss {total / len(order):.4f} "
               f"({history[-1]['seconds']:.1f} s)")
    epochs.close()
    model = model.to(memory_format=torch.contiguous_format).eval()
    meta = {"arch": config.arch, "classes": list(classes), "size": size, "crop": crop,
            "training": {**settings, "history": history, "skipped": skips.as_list(), "device": str(device),
                         "torch": torch.__version__}}
    save_network(out, model, meta)
    return model
