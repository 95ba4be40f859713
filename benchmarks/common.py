"""Timing and result records shared by the benchmark scripts."""
from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any, Callable

import cv2
import numpy as np
import skimage.data


def median_seconds(func: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``func()`` over ``repeats`` calls, after ``warmup`` untimed calls
    (compilation, caches)."""
    for _ in range(warmup):
        func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_median_seconds(ours: Callable[[], Any], anchor: Callable[[], Any], repeats: int = 5,
                          warmup: int = 1) -> tuple[float, float]:
    """Median wall times of ``ours()`` and ``anchor()``, timed in alternation.

    Interleaving puts both under the same clock boost, cache state and background load, so their
    ratio drifts much less than when one is timed entirely after the other.
    """
    for _ in range(warmup):
        ours()
        anchor()
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(repeats):
        pair = (ours, anchor) if i % 2 == 0 else (anchor, ours)
        for func in pair:
            start = time.perf_counter()
            func()
            times[func is anchor].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def machine() -> dict:
    """What the numbers were measured on."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version()}


def record(name: str, ours_s: float, anchor: str | None, anchor_s: float | None, **extra: Any) -> dict:
    """One result row; ``ratio`` is ``ours_s / anchor_s`` (None without an anchor)."""
    from bowlrp.pipeline import software_versions

    ratio = None if anchor_s in (None, 0) else ours_s / anchor_s
    return {"name": name, "ours_s": ours_s, "anchor": anchor, "anchor_s": anchor_s, "ratio": ratio,
            "machine": machine(), "versions": software_versions(), **extra}


def voc_size_image() -> np.ndarray:
    """A natural 375 x 500 RGB image (a typical Pascal VOC size), float32 in [0, 1]."""
    rgb = skimage.data.chelsea()  # 300 x 451
    return cv2.resize(rgb, (500, 375), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
