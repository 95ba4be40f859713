"""``STUDY/report/index.html``: one static page of a study, readable offline in any browser.

Every number on the page is read from the study's JSON files (``evaluate/``, ``context/``,
``perturbation/``, ``artefacts/``, ``spray/``, ``dataset/``, ``steps/``, ``study.json``, and the faces study's
in ``faces/`` or given as ``faces``: :mod:`.faces_section`) into one
dictionary, written beside the page as ``report/data.json`` and rendered by a Jinja2 template
(autoescaped); the template holds words, never results. Figures are PNG files under
``report/figures/``: the study's own (gallery, context, curves, artefact bars, SpRAy) copied there,
and two drawn here from the JSON (AP per class, mean perturbation curves). No script, no external URL.
A faces study folder given alone as the study gives a page of its faces section and provenance.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BowlrpError
from ..persistence import atomic_write_bytes, atomic_write_json
from ..persistence import read_json as _read
from .faces_section import FACES_DIR, collect_faces, faces_figures, faces_folder, is_faces_study
from .tasks import EXPLAINED, FAMILIES

REPORT_DIR = "report"
FIGURES = "figures"
FAMILY_NAMES = {"fv": "Fisher vector + linear SVM", "bow": "rank-BoW + HIK SVM", "dnn": "network (LRP)"}
SECTIONS = ("data", "accuracy", "gallery", "context", "perturbation", "spray", "artefacts", "faces", "provenance")
FACES_ONLY_SECTIONS = ("faces", "provenance")  # the page of a faces study folder given alone


def _without(summary: dict | None, *keys: str) -> dict | None:
    return None if summary is None else {k: v for k, v in summary.items() if k not in keys}


def collect(study: str | Path, faces: str | Path | None = None) -> dict:
    """Everything the page shows, from the study's JSON files (figure paths relative to the study) and those
    of the faces study (``faces``, else ``study/faces`` when there is one; ``study`` may be a faces study)."""
    root = Path(study)
    meta = _read(root / "study.json")
    if meta is None:
        raise BowlrpError(f"{root}: not a study folder (no study.json); run 'bowlrp study' first")
    if is_faces_study(meta):
        if faces is not None:
            raise BowlrpError(f"{root} is a faces study: give a 'bowlrp study' folder as --study to add --faces to")
        return {"study": None, "faces": _faces(root, meta), "provenance": _provenance(root, meta)}
    settings = meta["settings"]
    classes = settings["classes"]
    data: dict[str, Any] = {"study": {"data": meta["data"], "size": settings["size"], "classes": classes,
                                      "seed": settings["seed"]}}
    data["dataset"] = _read(root / "dataset" / "summary.json")

    evaluations = {f: _read(root / "evaluate" / f"{f}.json") for f in FAMILIES}
    present = [f for f in FAMILIES if evaluations[f]]
    data["accuracy"] = {
        "families": present,
        "rows": [{"class": c, "ap": {f: evaluations[f]["ap"].get(c) for f in present},
                  "accuracy": {f: evaluations[f]["accuracy"].get(c) for f in present}} for c in classes],
        "map": {f: evaluations[f]["map"] for f in present},
        "n_images": {f: evaluations[f]["n_images"] for f in present}}

    data["gallery"] = _read(root / "gallery" / "gallery.json")

    context = _read(root / "context" / "context.json")
    if context:
        by_class: dict[str, dict] = {}
        for row in context["rows"]:
            by_class.setdefault(row["class"], {})[row["family"]] = {
                k: row[k] for k in ("mu_mean", "mu_median", "mu_std", "n_images", "n_undefined")}
        data["context"] = {"families": list(EXPLAINED), "rows": [{"class": c, **{f: by_class.get(c, {}).get(f)
                                                                                  for f in EXPLAINED}}
                                                                 for c in classes if c in by_class],
                           "figure": "context/context.png"}
    else:
        data["context"] = None

    perturbation: dict[str, Any] = {}
    for f in EXPLAINED:
        rows = []
        for c in classes:
            result = _read(root / "perturbation" / f / f"{c}.json")
            if result is None:
                continue
            orders = {("lrp" if name.startswith("lrp") else name): row for name, row in result["orders"].items()}
            rows.append({"class": c, "n_images": result["n_images"],
                         "aopc": {name: row["aopc_mean"] for name, row in orders.items()},
                         "aopc_std": {name: row["aopc_std"] for name, row in orders.items()},
                         "curve_mean": {name: row["curve_mean"] for name, row in orders.items()},
                         "figure": f"perturbation/{f}/{c}.png"})
        if rows:
            perturbation[f] = {"rows": rows, "settings": {k: v for k, v in settings["perturb"].items()},
                               "mean_gain": float(np.mean([r["aopc"]["lrp"] - r["aopc"]["random"] for r in rows]))}
    data["perturbation"] = perturbation or None
    data["descriptors"] = _descriptors(root, classes, settings.get("descriptors"))

    data["spray"] = _spray(root)
    data["artefacts"] = {kind: _artefact(root, kind) for kind in ("watermark", "padding")}
    folder = faces_folder(root, faces)
    data["faces"] = None if folder is None else _faces(folder, _read(folder / "study.json"))
    data["provenance"] = _provenance(root, meta)
    return data


def _faces(folder: Path, meta: dict) -> dict:
    return {**collect_faces(folder, meta), "provenance": _provenance(folder, meta)}


def _descriptors(root: Path, classes: list[str], settings: dict | None) -> dict | None:
    """FV descriptor replacement: AOPC per class and order, the mean over classes, the mean curves."""
    rows, orders = [], []
    for c in classes:
        result = _read(root / "perturbation" / "fv-descriptors" / f"{c}.json")
        if result is None:
            continue
        orders = list(result["orders"])
        rows.append({"class": c, "n_images": result["n_images"],
                     "aopc": {name: row["aopc_mean"] for name, row in result["orders"].items()},
                     "curve_mean": {name: row["curve_mean"] for name, row in result["orders"].items()},
                     "figure": f"perturbation/fv-descriptors/{c}.png"})
    if not rows:
        return None
    return {"orders": orders, "rows": rows, "settings": settings,
            "mean": {name: float(np.mean([r["aopc"][name] for r in rows])) for name in orders}}


def _spray(root: Path) -> dict | None:
    """The SpRAy section from ``spray/<family>/spray.json`` in issue 12's layout (per class:
    image ids, eigenvalues, eigengap k, labels per k, embedding, rank) and the figures beside it."""
    status = _read(root / "spray" / "status.json")
    if status is None:
        return None
    out: dict[str, Any] = {"available": status["available"], "reason": status.get("reason"), "families": {},
                           "too_few_maps": {f: e.get("too_few_maps", {}) for f, e in status.get("families", {}).items()},
                           "minimum": max([e.get("minimum", 0) for e in status.get("families", {}).values()], default=0)}
    for f in EXPLAINED:
        result = _read(root / "spray" / f / "spray.json")
        if not result:
            continue
        rows = [{"class": c, "n": len(v.get("image_ids", [])), "rank": v.get("rank"), "eigengap_k": v.get("eigengap_k"),
                 "eigenvalues": list(v.get("eigenvalues", []))[:8]}
                for c, v in result.get("classes", {}).items()]
        figures = sorted(str(p.relative_to(root)) for p in (root / "spray" / f).rglob("*.png"))
        out["families"][f] = {"rows": sorted(rows, key=lambda r: (r["rank"] is None, r["rank"])), "figures": figures}
    return out


def _artefact(root: Path, kind: str) -> dict | None:
    status = _read(root / "artefacts" / kind / "status.json")
    if status is None:
        return None
    out = {"class": status["class"], "not_applicable": status.get("not_applicable"), "families": {}}
    for f, files in status.get("families", {}).items():
        result = _read(root / files["json"])
        if kind == "watermark":
            parts = {name: _without(result.get(name), "per_image") for name in
                     ("remove", "remove_with_class", "paste", "paste_control") if name in result}
            out["families"][f] = {"parts": parts, "figure": files["plot"], "notes": result.get("notes", [])}
        else:
            out["families"][f] = {"rows": result["overall"] + result["rows"], "n_square": result["n_square"],
                                  "figure": files["plot"]}
    return out


def _provenance(root: Path, meta: dict) -> dict:
    steps = []
    for path in sorted((root / "steps").glob("*.json")):
        record = _read(path)
        steps.append({"name": record["name"], "status": record["status"], "seconds": record.get("seconds"),
                      "started": record.get("started"), "finished": record.get("finished"),
                      "line": (record.get("summary") or {}).get("line"), "digest": record["digest"][:12]})
    order = {name: i for i, name in enumerate(_step_order())}
    steps.sort(key=lambda s: (order.get(s["name"], len(order)), s["started"] or ""))  # a faces study's: as run
    return {"data": meta["data"], "environment": meta.get("environment"), "settings": meta["settings"],
            "data_digest": meta["data_digest"], "created": meta.get("created"), "updated": meta.get("updated"),
            "steps": steps, "total_seconds": sum(s["seconds"] or 0.0 for s in steps)}


def _step_order() -> list[str]:
    return ["data", "train-fv", "train-bow", "train-dnn", *[f"evaluate-{f}" for f in FAMILIES],
            *[f"explain-{f}" for f in EXPLAINED], "gallery", "context", *[f"perturb-{f}" for f in EXPLAINED],
            "perturb-fv-descriptors", "spray", "watermark", "padding", "report"]


# --- figures drawn from the JSON ------------------------------------------------------------------------

def _save(fig, path: Path) -> None:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_accuracy(accuracy: dict, path: Path) -> None:
    """Bars of AP per class, one bar per model family (the numbers of the accuracy table)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [r["class"] for r in accuracy["rows"]]
    families = accuracy["families"]
    width = 0.8 / max(1, len(families))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(classes) * max(1, len(families)) / 1.5 + 2), 3.6))
    for j, f in enumerate(families):
        x = np.arange(len(classes)) + (j - (len(families) - 1) / 2) * width
        ax.bar(x, [np.nan if r["ap"][f] is None else r["ap"][f] for r in accuracy["rows"]], width,
               label=f"{f} (mAP {accuracy['map'][f]:.3f})")
    ax.set_xticks(np.arange(len(classes)), classes, rotation=45, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("AP (VOC 11-point)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def plot_mean_curves(perturbation: dict, path: Path, orders: tuple[str, ...] = ("lrp", "random"),
                     xlabel: str = "regions replaced") -> None:
    """Per panel (a family), the perturbation curves averaged over classes, one line per order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = list(perturbation)
    fig, axes = plt.subplots(1, len(families), figsize=(4.6 * len(families), 3.4), squeeze=False)
    for ax, f in zip(axes[0], families):
        rows = perturbation[f]["rows"]
        for order in orders:
            curves = [np.asarray(r["curve_mean"][order]) - r["curve_mean"][order][0] for r in rows]
            length = min(len(c) for c in curves)
            mean = np.mean([c[:length] for c in curves], axis=0)
            aopc = np.mean([r["aopc"][order] for r in rows])
            ax.plot(np.arange(length), mean, label=f"{order} (mean AOPC {aopc:.3g})")
        ax.set_title(f"{f}: {len(rows)} class(es)")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("f(x^(k)) - f(x^(0)), mean over classes")
        ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


# --- the page ----------------------------------------------------------------------------------------------

def _number(value: Any, digits: int = 3, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:+d}" if signed else str(value)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _percent(value: Any, digits: int = 0) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f} %"


def _figures(root: Path, data: dict) -> list[str]:
    """Every figure file the page shows, relative to the study folder."""
    files = [s["file"] for s in (data["dataset"] or {}).get("samples", [])]
    for rows in ((data["gallery"] or {}).get("classes") or {}).values():
        files += [f for row in rows for f in row["files"].values()]
    if data["context"]:
        files.append(data["context"]["figure"])
    for part in (data["perturbation"] or {}).values():
        files += [r["figure"] for r in part["rows"]]
    files += [r["figure"] for r in (data["descriptors"] or {}).get("rows", [])]
    for f in ((data["spray"] or {}).get("families") or {}).values():
        files += f["figures"]
    for kind in data["artefacts"].values():
        files += [f["figure"] for f in (kind or {}).get("families", {}).values()]
    return [f for f in files if (root / f).is_file()]


def render(data: dict) -> str:
    """The page's HTML from :func:`collect`'s dictionary (figure paths under ``figures/``)."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("bowlrp.study", "templates"), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _number
    env.filters["pct"] = _percent
    sections = SECTIONS if data["study"] else FACES_ONLY_SECTIONS
    return env.get_template("report.html").render(d=data, sections=sections, family_names=FAMILY_NAMES,
                                                  figures=FIGURES)


def _plots(data: dict, figures: Path) -> dict[str, str]:
    """The figures drawn here from the JSON, written into ``figures``; their names by section."""
    drawn = {}
    if data["accuracy"]["families"]:
        plot_accuracy(data["accuracy"], figures / "accuracy.png")
        drawn["accuracy"] = "accuracy.png"
    if data["perturbation"]:
        plot_mean_curves(data["perturbation"], figures / "perturbation.png")
        drawn["perturbation"] = "perturbation.png"
    if data["descriptors"]:
        plot_mean_curves({"fv descriptor replacement": data["descriptors"]}, figures / "descriptors.png",
                         tuple(data["descriptors"]["orders"]), "descriptor batches replaced")
        drawn["descriptors"] = "descriptors.png"
    return drawn


def _copy(source: Path, files: list[str], target: Path) -> None:
    for rel in files:
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, target / rel)


def build_report(study: str | Path, faces: str | Path | None = None) -> dict:
    """Write ``STUDY/report/`` (``index.html``, ``data.json``, ``figures/``), with the faces section of
    ``faces`` or ``STUDY/faces`` (:func:`collect`); returns a summary with the page's path."""
    root = Path(study)
    data = collect(root, faces)
    out = root / REPORT_DIR
    figures = out / FIGURES
    if data["faces"]:
        _copy(Path(data["faces"]["source"]), faces_figures(data["faces"]), figures / FACES_DIR)
    data["figures"] = {}
    if data["study"]:
        _copy(root, _figures(root, data), figures)
        data["figures"] = _plots(data, figures)
    atomic_write_json(out / "data.json", data)
    atomic_write_bytes(out / "index.html", render(data).encode("utf-8"))
    return {"line": f"{out / 'index.html'}", "page": str(out / "index.html")}
