"""The whole FV-vs-DNN comparison on one dataset as one resumable study, and its HTML report
(SPEC §6.6; ``bowlrp study``, ``bowlrp report``, ``make demo``).

=====================  ==================================================================================
:mod:`.runner`         steps with digests of their inputs, records under ``STUDY/steps``, skip/resume
:mod:`.plan`           sizes (``quick``, ``default``), settings, the study's classes, the data digest
:mod:`.tasks`          the step functions (train, evaluate, explain, gallery, context, perturbation,
                       SpRAy, artefacts) and the ordered plan
:mod:`.report`         ``STUDY/report/index.html`` from the study's JSON files (Jinja2, figures beside it)
:mod:`.faces_section`  the report's faces section, from a faces study in ``STUDY/faces`` or elsewhere
=====================  ==================================================================================

A study folder is pinned to its data and settings by ``STUDY/study.json``: continuing it with other
data or settings is refused unless ``overwrite`` is given, and then only the steps whose inputs
changed run again.
"""
from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from ..errors import BowlrpError
from ..persistence import atomic_write_json
from .faces_section import FACES_DIR, faces_digest
from .plan import data_digest, default_jobs, study_classes, study_settings
from .runner import RunSummary, run_steps

STUDY_JSON = "study.json"
STUDY_FORMAT = "bowlrp.study"


def environment() -> dict:
    """Versions and machine, for the report's provenance."""
    from ..pipeline import software_versions

    versions = software_versions()
    for dist in ("torch", "h5py", "matplotlib"):
        try:
            import importlib.metadata as md

            versions[dist] = md.version(dist)
        except Exception:  # noqa: BLE001 - a missing distribution is just not listed
            versions[dist] = None
    return {"versions": versions, "platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or None, "cpu_count": os.cpu_count(),
            "python": sys.version.split()[0]}


def _first_difference(old: dict, new: dict, prefix: str = "") -> str:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a != b:
            if isinstance(a, dict) and isinstance(b, dict):
                return _first_difference(a, b, f"{prefix}{key}.")
            return f"{prefix}{key} ({a!r} there, {b!r} now)"
    return ""


def check_study_folder(out: Path, digest: str, settings: dict, overwrite: bool) -> dict | None:
    """The folder's earlier ``study.json`` (None for a new folder); a one-line error when it was made
    from other data or settings and ``overwrite`` is not given, or when it is not a study folder."""
    import json

    path = out / STUDY_JSON
    if not path.is_file():
        # a faces study written into STUDY/faces first (make demo) is no reason to refuse the folder
        if out.exists() and any(p.name != FACES_DIR for p in out.iterdir()) and not overwrite:
            raise BowlrpError(f"{out} is not empty and holds no {STUDY_JSON}; choose a new folder or give --overwrite")
        return None
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BowlrpError(f"{path}: unreadable ({exc}); give --overwrite to start the study again") from None
    if overwrite:
        return earlier
    if earlier.get("data_digest") != digest:
        raise BowlrpError(f"{out} is a study of other data ({earlier.get('data')}); give the same --data, a new "
                          "--out, or --overwrite")
    if earlier.get("settings") != settings:
        raise BowlrpError(f"{out} is a study with other settings: {_first_difference(earlier.get('settings', {}), settings)}"
                          "; give the same --size/--classes/--seed, a new --out, or --overwrite")
    return earlier


def run_study(data: str | Path, out: str | Path, size: str = "default", classes: Sequence[str] | None = None,
              seed: int = 0, overwrite: bool = False, n_jobs: int | None = None, progress: bool = True,
              stream=None) -> RunSummary:
    """Run (or continue) the study of ``data`` in the folder ``out`` and write its report.

    Returns what ran and what was up to date; raises :class:`BowlrpError` (one line) for a folder of
    another study (see :func:`check_study_folder`).
    """
    from .report import build_report
    from .tasks import StudyTasks, build_steps

    out = Path(out)
    data = Path(data).resolve()
    settings = study_settings(size, study_classes(data, classes), seed)
    digest = data_digest(data)
    earlier = check_study_folder(out, digest, settings, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(out / STUDY_JSON, {"format": STUDY_FORMAT, "version": 1, "data": str(data),
                                         "data_digest": digest, "settings": settings,
                                         "created": (earlier or {}).get("created", now), "updated": now,
                                         "environment": environment()})
    tasks = StudyTasks(data, settings, n_jobs or default_jobs(), progress)
    steps = build_steps(tasks, settings, digest, lambda root: build_report(root), faces_digest(out))
    return run_steps(out, steps, stream)
