"""The faces section of the study report: what ``bowlrp faces study`` wrote (:mod:`bowlrp.faces.study`), read
from its JSON files into the dictionary the page renders.

Where the faces study comes from: ``STUDY/faces`` (a faces study written into the study folder; the study's
report step notices it by :func:`faces_digest`), or any faces study folder given as ``bowlrp report --faces``.
Figure paths in the dictionary are relative to the report's ``figures/`` folder (``faces/...``);
:func:`faces_figures` lists the files to copy there, relative to the faces study folder.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.adience import AGE_GROUPS
from ..errors import BowlrpError
from ..persistence import read_json
from .runner import STEPS_DIR, json_digest

FACES_DIR = "faces"  # a faces study inside a study folder: STUDY/faces
FACES_STUDY_FORMAT = "bowlrp.faces-study"  # study.json's "format" of a faces study
ALIGN_LABELS = {"rotation": "[r] rotation", "inplane": "[i] in-plane", "mixed": "[m] mixed"}
FIGURES = {"accuracy": "evaluate/accuracy.png", "maps": "maps/maps.png", "maps_fisher": "maps/maps-fisher.png",
           "regions": "regions/regions.png"}
FAMILY_LABELS = {"dnn": "network", "fisher": "Fisher-vector model"}


def is_faces_study(meta: dict | None) -> bool:
    return bool(meta) and meta.get("format") == FACES_STUDY_FORMAT


def faces_folder(study: Path, faces: str | Path | None = None) -> Path | None:
    """The faces study the report of ``study`` shows: ``faces`` when given (refused with one line when it is
    no faces study), else ``study/faces`` when it holds one, else None."""
    if faces is not None:
        folder = Path(faces)
        if not is_faces_study(read_json(folder / "study.json")):
            raise BowlrpError(f"--faces {folder}: not a faces study (no study.json of 'bowlrp faces study')")
        return folder
    folder = study / FACES_DIR
    return folder if is_faces_study(read_json(folder / "study.json")) else None


def faces_digest(study: str | Path) -> str | None:
    """What the report shows of ``study/faces``, as a digest (None without a faces study): its settings,
    data and the digest and status of every step, so the report step reruns when any of them changes."""
    folder = Path(study) / FACES_DIR
    meta = read_json(folder / "study.json")
    if not is_faces_study(meta):
        return None
    steps = {p.stem: [(read_json(p) or {}).get(k) for k in ("digest", "status")]
             for p in sorted((folder / STEPS_DIR).glob("*.json"))}
    return json_digest({"settings": meta.get("settings"), "data": meta.get("data_digest"), "steps": steps})


def _figure(folder: Path, name: str) -> str | None:
    return f"{FACES_DIR}/{FIGURES[name]}" if (folder / FIGURES[name]).is_file() else None


def faces_figures(section: dict) -> list[str]:
    """The figure files the section shows, relative to the faces study folder."""
    parts = [section.get(name) or {} for name in ("accuracy", "maps", "regions")]
    parts.append((section.get("maps") or {}).get("fisher") or {})
    shown = {part.get("figure") for part in parts}
    return [path for path in FIGURES.values() if f"{FACES_DIR}/{path}" in shown]


def collect_faces(folder: Path, meta: dict) -> dict:
    """The faces section's dictionary from the faces study ``folder`` (its ``study.json`` is ``meta``):
    ``accuracy`` (Table 5.2 and 5.3 analogues), ``maps`` (Fig. D.4), ``regions`` (density per region of the
    true class' map per age group and gender, the smile test); each None when its step has not run."""
    settings = meta.get("settings", {})
    return {"source": str(folder.resolve()), "data": meta.get("data"), "size": settings.get("size"),
            "seed": settings.get("seed"), "epochs": settings.get("epochs"), "tasks": settings.get("tasks", []),
            "init": (settings.get("init") or {}).get("file"),
            "accuracy": _accuracy(folder), "maps": _maps(folder), "regions": _regions(folder)}


def _accuracy(folder: Path) -> dict | None:
    result = read_json(folder / "evaluate" / "accuracy.json")
    if result is None:
        return None
    tasks = []
    networks = [r for r in result["table"] if r.get("family", "dnn") == "dnn"]
    for task in dict.fromkeys(r["task"] for r in networks):
        rows = [r for r in networks if r["task"] == task]
        inits = list(dict.fromkeys(r["init"] for r in rows))
        table = [{"align": align, "label": ALIGN_LABELS.get(align, align),
                  "n_images": next(r["n_images"] for r in rows if r["align"] == align),
                  **{init: next((_cell(r) for r in rows if r["align"] == align and r["init"] == init), None)
                     for init in inits}}
                 for align in dict.fromkeys(r["align"] for r in rows)]
        fisher = [{"label": ALIGN_LABELS.get(r["align"], r["align"]), **_cell(r)}
                  for r in result["table"] if r["task"] == task and r.get("family") == "fisher"]
        tasks.append({"task": task, "inits": inits, "rows": table, "one_off": task == "age", "fisher": fisher})
    swapping = [{**{k: s[k] for k in ("task", "init", "accuracy", "own_accuracy", "drop", "n_images")},
                 "trained": ALIGN_LABELS.get(s["trained"], s["trained"]),
                 "tested": ALIGN_LABELS.get(s["tested"], s["tested"])} for s in result["swapping"]]
    drops = [s["drop"] for s in swapping]
    return {"test_fold": result["test_fold"], "train_folds": result["train_folds"], "tasks": tasks,
            "swapping": swapping, "mean_drop": float(np.mean(drops)) if drops else None,
            "figure": _figure(folder, "accuracy")}


def _cell(row: dict) -> dict:
    return {k: row[k] for k in ("accuracy", "one_off_accuracy", "n_images")}


def _maps(folder: Path) -> dict | None:
    result = read_json(folder / "maps" / "maps.json")
    if result is None:
        return None
    faces = [{"group": f["group"], "smiling": f.get("smiling"), "top": AGE_GROUPS[int(np.argmax(f["scores"]))]}
             for f in result["faces"]]
    fisher = result.get("fisher")
    if fisher:  # the FV model's maps of the same faces; its tops beside the network's
        for face, f in zip(faces, fisher["faces"]):
            face["fisher_top"] = AGE_GROUPS[int(np.argmax(f["scores"]))]
        fisher = {"model": fisher["model"], "figure": _figure(folder, "maps_fisher")}
    return {"model": result["model"], "classes": list(AGE_GROUPS), "faces": faces, "figure": _figure(folder, "maps"),
            "fisher": fisher}


def _regions(folder: Path) -> dict | None:
    result = read_json(folder / "regions" / "regions.json")
    if result is None:
        return None
    if not result.get("available"):
        return {"available": False, "reason": result.get("reason"), "figure": None}
    regions = [r for r in result["regions"] if r != "void"]  # the black corners of rotation, not a face part
    models = []
    for task, entry in result["models"].items():
        groups = sorted(entry["by_group"], key=lambda g: AGE_GROUPS.index(g) if g in AGE_GROUPS else len(AGE_GROUPS))
        rows = [{"group": g, "cells": {r: entry["by_group"][g][r]["density"] for r in regions}} for g in groups]
        rows += [{"group": {"f": "women", "m": "men"}.get(g, g), "cells": {r: v[r]["density"] for r in regions}}
                 for g, v in entry["by_gender"].items()]
        smile = entry.get("smile")
        if smile:
            smile = {**smile, "by_output": [{"group": g, "inside": g in smile["inside_classes"],
                                             **smile["mouth_density_by_output"][g]}
                                            for g in AGE_GROUPS if g in smile["mouth_density_by_output"]]}
        family = entry.get("family", "dnn")
        models.append({"task": entry.get("task", task), "family": family, "label": FAMILY_LABELS.get(family, family),
                       "model": entry["model"], "n_faces": entry["n_faces"], "rows": rows, "smile": smile})
    return {"available": True, "regions": regions, "bootstrap": result["bootstrap"], "models": models,
            "figure": _figure(folder, "regions")}

