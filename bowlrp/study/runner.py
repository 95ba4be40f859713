"""A small resumable step runner: each step of a study records what it was computed from and is
skipped when that has not changed.

A :class:`Step` has a name, its own ``settings`` (JSON values), the steps it depends on (``after``)
and a function that writes its outputs (paths relative to the study folder) and returns a short
JSON summary. Its *digest* is the SHA-256 of its name, its settings and the digests of the steps it
depends on, so a changed setting changes the digest of that step and of every step downstream, and
of no other.

The record ``STUDY/steps/<name>.json`` (written atomically) holds ``{"name", "digest", "status":
"running" | "done", "outputs", "seconds", "summary", "started", "finished"}``. A step is skipped when
its record says ``done`` with the same digest and all its outputs exist. Otherwise:

* record with the same digest, status ``running`` (the study was killed inside the step): the outputs
  are kept, so the step's own resumable machinery (relevance-store parts, perturbation parts, DNN
  checkpoints) continues where it stopped;
* no record, or another digest: the outputs are removed first (they belong to other settings), then
  the ``running`` record is written, then the step runs.

Killing the process at any moment therefore never leaves a ``done`` record over incomplete outputs:
the ``done`` record is written last, after the step's function returned.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from ..errors import BowlrpError
from ..persistence import atomic_write_json

STEPS_DIR = "steps"


def json_digest(obj: Any) -> str:
    """SHA-256 of ``obj`` as canonical JSON (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class Step:
    """One unit of a study.

    Attributes
    ----------
    name : str
        Unique within the plan; names the record file.
    run : callable
        ``run(study_root: Path) -> dict``: writes the outputs (atomically, or resumably) and returns a
        JSON summary; its ``"line"`` entry, if any, is printed as the step's one-line summary.
    outputs : list of str
        Paths relative to the study folder that the step owns (files or folders).
    settings : dict
        JSON values the outputs depend on (besides the steps in ``after``).
    after : tuple of str
        Names of the steps whose outputs this one reads.
    title : str
        A few words for the progress line.
    """

    name: str
    run: Callable[[Path], dict]
    outputs: list[str]
    settings: dict = field(default_factory=dict)
    after: tuple[str, ...] = ()
    title: str = ""


def step_digests(steps: Sequence[Step]) -> dict[str, str]:
    """The digest of every step (module docstring); steps must come after the steps they depend on."""
    digests: dict[str, str] = {}
    for step in steps:
        missing = [name for name in step.after if name not in digests]
        if missing:
            raise BowlrpError(f"step {step.name!r} depends on {missing[0]!r}, which does not come before it")
        digests[step.name] = json_digest({"name": step.name, "settings": step.settings,
                                          "after": {name: digests[name] for name in step.after}})
    return digests


def record_path(root: str | Path, name: str) -> Path:
    return Path(root) / STEPS_DIR / f"{name}.json"


def read_record(root: str | Path, name: str) -> dict | None:
    """The step's record, or None when there is none (or it cannot be read: then the step reruns)."""
    try:
        return json.loads(record_path(root, name).read_text())
    except (OSError, ValueError):
        return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunSummary:
    """What :func:`run_steps` did: the names run and skipped, and the total wall time in seconds."""

    ran: list[str]
    skipped: list[str]
    seconds: float


def run_steps(root: str | Path, steps: Sequence[Step], stream: TextIO | None = None) -> RunSummary:
    """Run ``steps`` in order in the study folder ``root``, skipping those that are up to date.

    Prints a progress line before each step (``[i/n] name: title``), a one-line summary after it and
    the total time at the end, on ``stream`` (default stderr).
    """
    stream = stream or sys.stderr
    root = Path(root)
    digests = step_digests(steps)
    ran, skipped = [], []
    began = time.perf_counter()
    n = len(steps)
    for i, step in enumerate(steps, 1):
        digest = digests[step.name]
        record = read_record(root, step.name)
        outputs = [root / p for p in step.outputs]
        if record and record.get("digest") == digest and record.get("status") == "done" \
                and all(p.exists() for p in outputs):
            skipped.append(step.name)
            line = (record.get("summary") or {}).get("line", "")
            print(f"[{i}/{n}] {step.name}: up to date, skipped" + (f" ({line})" if line else ""), file=stream,
                  flush=True)
            continue
        resuming = bool(record and record.get("digest") == digest)
        if not resuming:
            for path in outputs:
                _remove(path)
        print(f"[{i}/{n}] {step.name}: {step.title or step.name}" + (" (resuming)" if resuming else "") + " ...",
              file=stream, flush=True)
        started = _now()
        atomic_write_json(record_path(root, step.name),
                          {"name": step.name, "digest": digest, "status": "running", "outputs": step.outputs,
                           "settings": step.settings, "after": list(step.after), "started": started})
        t0 = time.perf_counter()
        summary = step.run(root) or {}
        seconds = time.perf_counter() - t0
        missing = [p for p, full in zip(step.outputs, outputs) if not full.exists()]
        if missing:
            raise BowlrpError(f"step {step.name!r} did not write {missing[0]}")
        atomic_write_json(record_path(root, step.name),
                          {"name": step.name, "digest": digest, "status": "done", "outputs": step.outputs,
                           "settings": step.settings, "after": list(step.after), "started": started,
                           "finished": _now(), "seconds": seconds, "summary": summary})
        ran.append(step.name)
        print(f"      {step.name}: done in {seconds:.1f} s" + (f" — {summary['line']}" if summary.get("line") else ""),
              file=stream, flush=True)
    total = time.perf_counter() - began
    print(f"study: {len(ran)} step(s) run, {len(skipped)} up to date, {total:.1f} s in all", file=stream, flush=True)
    return RunSummary(ran, skipped, total)
