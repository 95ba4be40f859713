"""``train_default_small``: the README's ``bowlrp train`` with every default (Fisher vectors, K = 256,
PCA 80, pyramid, linear SVM with C chosen per class) on the small toyvoc set, end to end in a fresh
process, against the same command with ``--gmm-backend sklearn`` (the vocabulary fit before the
``bowlrp`` backend became the default). One run each (minutes with scikit-learn)."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bowlrp.data.synth import generate_toyvoc

from .common import record


def _train_seconds(data: Path, out: Path, *extra: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one ``bowlrp train`` process (its CPU: user + system, all threads)."""
    env = dict(os.environ, BOWLRP_PROGRESS_INTERVAL="3600")  # the timing, not the log lines
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bowlrp", "train", "--data", str(data), "--out", str(out), *extra],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(repeats: int = 1) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        data = generate_toyvoc(Path(tmp) / "toyvoc", seed=0, size="small")
        ours_s, ours_cpu_s = _train_seconds(data, Path(tmp) / "fv")
        anchor_s, anchor_cpu_s = _train_seconds(data, Path(tmp) / "fv-sklearn", "--gmm-backend", "sklearn")
    return [record("train_default_small", ours_s, "the same command with --gmm-backend sklearn", anchor_s,
                   ours_cpu_s=ours_cpu_s, anchor_cpu_s=anchor_cpu_s, load_average=os.getloadavg(),
                   command="bowlrp train --data toyvoc-small --out fv", cpus=os.cpu_count())]
