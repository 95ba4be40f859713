"""``extract_parallel``: FV feature extraction (dense SIFT, PCA, K=256 FV with pyramid) over a
folder of 375 x 500 images with ``n_jobs=2`` against the same extraction with ``n_jobs=1``; the
ratio below 1 is the speed-up's inverse. Worker start-up is included, as a user sees it. Also
reported: the speed-up over the same extraction held to one thread (``speedup_vs_one_thread``),
since ``n_jobs=1`` itself runs the GEMMs and compiled kernels of each image on every core."""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numba
import numpy as np
from threadpoolctl import threadpool_limits

from bowlrp.errors import SkipLog
from bowlrp.parallel import ParallelOptions
from bowlrp.pipeline import encode_files

from .bench_lrp import benchmark_images, benchmark_model
from .common import median_seconds, paired_median_seconds, record


def run(repeats: int = 3, n_images: int = 24) -> list[dict]:
    features = benchmark_model().features
    images = benchmark_images()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(n_images):
            path = Path(tmp) / f"{i:03d}.jpg"
            rgb = np.roll(images[i % len(images)], 7 * i, axis=1)  # distinct files
            cv2.imwrite(str(path), cv2.cvtColor((rgb * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
            paths.append(path)

        def extract(n_jobs: int) -> np.ndarray:
            X, ok = encode_files(features, paths, SkipLog(), ParallelOptions(n_jobs=n_jobs, progress=False))
            assert ok.all()
            return X

        def one_core() -> np.ndarray:
            # n_jobs=1 already lets BLAS and the numba kernels use every core for parts of each image;
            # this is the same extraction held to one thread, to show how the workers scale
            previous = numba.get_num_threads()
            numba.set_num_threads(1)
            try:
                with threadpool_limits(limits=1):
                    return extract(1)
            finally:
                numba.set_num_threads(previous)

        same = bool(np.array_equal(extract(1), extract(2)) and np.array_equal(extract(1), one_core()))
        parallel, serial = paired_median_seconds(lambda: extract(2), lambda: extract(1), repeats, warmup=0)
        single_thread = median_seconds(one_core, repeats, warmup=0)
    return [record("extract_parallel", parallel, "the same extraction with n_jobs=1", serial, n_images=n_images,
                   images_per_s=n_images / parallel, images_per_s_n_jobs_1=n_images / serial,
                   speedup=serial / parallel, identical_features=same,
                   images_per_s_one_thread=n_images / single_thread, speedup_vs_one_thread=single_thread / parallel)]
