"""``bowlrp faces study``: the faces study of dissertation Chapter 5 as resumable steps (SPEC §6.5), run by the
study runner of :mod:`bowlrp.study.runner` (step records under ``STUDY/steps``; a step is skipped when its
settings and inputs are unchanged, a killed training continues from its checkpoint).

Steps::

    train-<task>-<align>-random       networks from random weights, align in rotation, inplane, mixed
    train-<task>-<align>-pretrained   from a checkpoint: --init FILE, else the random-weights network of the
                                      other task on mixed faces of the training folds (a related task, as the
                                      thesis pre-trains on another face data set)
    train-age-inplane-fisher          a Fisher-vector age model (dense SIFT, GMM, linear SVMs) on in-plane faces,
                                      so that both families' face heatmaps can be compared as on VOC
    evaluate                          accuracy.json: Table 5.2 analogue (held-out fold, own alignment; rows carry
                                      their "family", the FV model's has init null) and Table 5.3 (rotation <->
                                      in-plane test-set swapping, networks); accuracy.png
    maps                              maps.png / maps.json: LRP of every class for a few faces (Fig. D.4), the
                                      FV model's for the same faces in maps-fisher.png and maps.json "fisher"
    regions                           regions.json: relevance mass and density on the landmark regions per age
                                      group and gender, and the smile test on smiling faces, for the in-plane
                                      networks ("age", "gender") and the FV model ("age-fisher"); regions.png

Sizes: ``small`` (CI) trains the age task only (and the gender network it starts from), 2 epochs on toyfaces
small (6 epochs at 3e-3 learn the 191 training faces better, 36 % vs 21 % in-plane age accuracy, but
their LRP puts almost no positive relevance on smiling mouths for any output, so the smile test loses its
sign; measured, see the README); ``default`` both tasks, 3 epochs. Everything runs on one torch thread
(:func:`~bowlrp.faces.models.one_torch_thread`). The region analysis needs the ``regions/`` sidecar of toyfaces
(real Adience has none: then ``regions.json`` says so).
"""
from __future__ import annotations

import copy
import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..data.adience import AGE_GROUPS, TASKS, open_adience
from ..data.synth.faces import SMILING_GROUPS, region_path
from ..data.synth.facedraw import REGION_LABELS
from ..errors import BowlrpError, SkipLog
from ..persistence import atomic_write_json, file_sha256
from ..study.faces_section import FACES_STUDY_FORMAT as STUDY_FORMAT
from ..study.runner import RunSummary, Step, run_steps
from ..dnn.config import TrainConfig
from .models import FaceModelSpec, FisherSettings, evaluate_face_model, one_torch_thread, train_face_model

#: "fisher": the FV model's :class:`FisherSettings` (small: 8 Gaussians on 32 PCA dimensions, about 15 s in all
#: on toyfaces small; default: the faces defaults)
SIZES = {
    "small": {"tasks": ["age"], "epochs": 2, "lr": 5e-3, "map_faces": 4, "bootstrap": 1000,
              "fisher": {"gmm_k": 8, "pca_dims": 32, "max_descriptors": 20_000}},
    "default": {"tasks": ["age", "gender"], "epochs": 3, "lr": 2e-3, "map_faces": 6, "bootstrap": 2000,
                "fisher": {}},
}
ALIGNS = ("rotation", "inplane", "mixed")
INITS = ("random", "pretrained")
TRAIN_FOLDS, TEST_FOLD = (0, 1, 2, 3), 4
OTHER = {"age": "gender", "gender": "age"}


#: the Fisher-vector model's task and alignment, and its name (a step and a folder under models/)
FISHER_TASK, FISHER_ALIGN = "age", "inplane"
FISHER_MODEL = f"train-{FISHER_TASK}-{FISHER_ALIGN}-fisher"
FISHER_KEY = f"{FISHER_TASK}-fisher"  # its entry in regions.json "models"


def model_name(task: str, align: str, init: str) -> str:
    return f"train-{task}-{align}-{init}"


def _model_dir(root: Path, name: str) -> Path:
    return root / "models" / name


def _settings(size: str, init: str | None, seed: int) -> dict:
    s = copy.deepcopy(SIZES[size])
    return {"size": size, "seed": int(seed), "bowlrp": __version__, **s,
            "init": None if init is None else {"file": str(Path(init).resolve()), "sha256": _init_digest(init)}}


def _init_digest(init: str) -> str:
    from .models import init_weights

    return file_sha256(init_weights(init))


class FacesStudy:
    """The step functions of one study (data root, settings)."""

    def __init__(self, data: Path, settings: dict):
        self.data, self.settings = data, settings

    def spec(self, task: str, align: str, init: str, root: Path) -> FaceModelSpec:
        s = self.settings
        source = None
        if init == "pretrained":
            source = s["init"]["file"] if s["init"] else str(_model_dir(root, model_name(OTHER[task], "mixed", "random")))
        return FaceModelSpec(task=task, align=align, folds=TRAIN_FOLDS, init=source,
                             dnn=TrainConfig(epochs=s["epochs"], lr=s["lr"], seed=s["seed"]))

    def fisher_spec(self) -> FaceModelSpec:
        s = self.settings
        return FaceModelSpec(task=FISHER_TASK, align=FISHER_ALIGN, family="fisher", folds=TRAIN_FOLDS,
                             fisher=FisherSettings(**s["fisher"], seed=s["seed"]))

    def train_fisher(self):
        return self._train(FISHER_MODEL, lambda root: self.fisher_spec())

    def train(self, task: str, align: str, init: str):
        return self._train(model_name(task, align, init), lambda root: self.spec(task, align, init, root))

    def _train(self, name: str, spec):
        def run(root: Path) -> dict:
            skips = SkipLog()
            record = train_face_model(self.data, spec(root), _model_dir(root, name), skips, report=lambda m: None)
            return {"line": f"{record['n_images']} images, {len(skips)} skip(s)", "n_images": record["n_images"],
                    "skipped": len(skips)}
        return run

    def evaluate(self, root: Path) -> dict:
        from .figures import accuracy_figure

        rows, swaps = [], []
        for task in self.settings["tasks"]:
            for init in INITS:
                for align in ALIGNS:
                    r = evaluate_face_model(_model_dir(root, model_name(task, align, init)), self.data, (TEST_FOLD,))
                    rows.append({"task": task, "align": align, "init": init, "family": "dnn", **_brief(r)})
                    if align != "mixed":  # Table 5.3: the other alignment's test images
                        other = "inplane" if align == "rotation" else "rotation"
                        s = evaluate_face_model(_model_dir(root, model_name(task, align, init)), self.data,
                                                (TEST_FOLD,), align=other)
                        swaps.append({"task": task, "init": init, "trained": align, "tested": other, **_brief(s),
                                      "own_accuracy": r["accuracy"], "drop": r["accuracy"] - s["accuracy"]})
        fv = evaluate_face_model(_model_dir(root, FISHER_MODEL), self.data, (TEST_FOLD,))
        rows.append({"task": FISHER_TASK, "align": FISHER_ALIGN, "init": None, "family": "fisher", **_brief(fv)})
        (root / "evaluate").mkdir(parents=True, exist_ok=True)
        atomic_write_json(root / "evaluate" / "accuracy.json", {"test_fold": TEST_FOLD, "train_folds": list(TRAIN_FOLDS),
                                                                "table": rows, "swapping": swaps})
        accuracy_figure(rows, swaps, root / "evaluate" / "accuracy.png")
        best = max((r for r in rows if r["family"] == "dnn"), key=lambda r: r["accuracy"])
        return {"line": f"best network {best['task']} {best['align']}/{best['init']}: {100 * best['accuracy']:.1f} %; "
                        f"FV {FISHER_TASK} {FISHER_ALIGN}: {100 * fv['accuracy']:.1f} %; mean swap "
                        f"drop {100 * np.mean([s['drop'] for s in swaps]):.1f} points"}

    def _test_faces(self, task: str, align: str):
        dataset = open_adience(self.data)
        paths, labels, faces = dataset.samples(task, align, (TEST_FOLD,), SkipLog())
        return paths, labels, faces

    def maps(self, root: Path) -> dict:
        from ..data.images import load_image
        from .figures import maps_figure
        from .regions import face_explainer

        paths, labels, faces = self._test_faces("age", "inplane")
        truth = _ground_truth(self.data)
        # faces of different groups, smiling ones first, so the smile's relevance is on the page
        order = sorted(range(len(faces)), key=lambda i: (not truth.get(faces[i].face_id, {}).get("smiling", False),
                                                         labels[i]))
        chosen, seen = [], set()
        for i in order:
            if labels[i] not in seen:
                chosen.append(i)
                seen.add(labels[i])
            if len(chosen) == self.settings["map_faces"]:
                break
        images = [load_image(paths[i]) for i in chosen]
        out = root / "maps"
        out.mkdir(parents=True, exist_ok=True)
        truths = [AGE_GROUPS[labels[i]] for i in chosen]

        def explain(name: str, figure: str) -> dict:  # one model's maps of every class for the chosen faces
            every_class = face_explainer(_model_dir(root, name))
            results = [every_class(img) for img in images]
            maps_figure(images, [m for m, _, _ in results], list(AGE_GROUPS), truths, out / figure)
            return {"model": name, "faces": [
                {"face": faces[i].key, "group": AGE_GROUPS[labels[i]],
                 "smiling": truth.get(faces[i].face_id, {}).get("smiling"), "scores": [float(v) for v in s],
                 "relevance_sum": [float(m_.sum(dtype=np.float64)) for m_ in m],
                 **({} if b is None else {"bias_relevance": [float(v) for v in b]})}
                for i, (m, s, b) in zip(chosen, results)]}

        network = explain(model_name("age", "inplane", "random"), "maps.png")
        fisher = explain(FISHER_MODEL, "maps-fisher.png")  # the same faces; its map plus the bias is the score
        atomic_write_json(out / "maps.json", {**network, "fisher": fisher})
        return {"line": f"{len(chosen)} faces x {len(AGE_GROUPS)} classes, network and FV model"}

    def regions(self, root: Path) -> dict:
        from .figures import regions_figure
        from .regions import FACE_REGIONS, bootstrap_mean, face_region_table, smile_bias

        out = root / "regions"
        out.mkdir(parents=True, exist_ok=True)
        if not (self.data / "regions").is_dir():
            atomic_write_json(out / "regions.json", {"available": False,
                                                     "reason": f"{self.data} has no regions/ ground truth"})
            return {"line": "no region ground truth in the data"}
        truth = _ground_truth(self.data)
        result: dict = {"available": True, "regions": list(FACE_REGIONS), "measure": "positive relevance",
                        "bootstrap": self.settings["bootstrap"], "models": {}}
        n_boot = self.settings["bootstrap"]
        measured = [(task, model_name(task, "inplane", "random"), task, "dnn") for task in self.settings["tasks"]]
        measured.append((FISHER_KEY, FISHER_MODEL, FISHER_TASK, "fisher"))
        for key_, name, task, family in measured:
            paths, labels, faces = self._test_faces(task, "inplane")
            density, mass, scores = face_region_table(_model_dir(root, name),
                                                      [(p, region_path(self.data, p)) for p in paths], REGION_LABELS)
            own = density[np.arange(len(labels)), labels]  # (n, regions): the true class' map
            own_mass = mass[np.arange(len(labels)), labels]
            entry = {"model": name, "task": task, "family": family, "n_faces": len(faces),
                     "classes": list(TASKS[task]), "by_group": {}, "by_gender": {}}
            for key, groups in (("by_group", [AGE_GROUPS.index(truth[f.face_id]["group"]) for f in faces]),
                                ("by_gender", [truth[f.face_id]["gender"] for f in faces])):
                groups = np.asarray(groups)
                for g in sorted(set(groups.tolist()), key=str):
                    sel = groups == g
                    label = AGE_GROUPS[g] if key == "by_group" else g
                    entry[key][label] = {r: {"density": bootstrap_mean(own[sel, j], n_boot),
                                             "mass": bootstrap_mean(own_mass[sel, j], n_boot)}
                                         for j, r in enumerate(FACE_REGIONS)}
            if task == "age":
                smiling = np.array([bool(truth[f.face_id]["smiling"]) for f in faces])
                mouth = density[:, :, FACE_REGIONS.index("mouth")]
                inside = [AGE_GROUPS.index(g) for g in SMILING_GROUPS]
                entry["smile"] = {"smiling_faces": int(smiling.sum()), "inside_classes": list(SMILING_GROUPS),
                                  "smiling": smile_bias(mouth[smiling], inside),
                                  "not_smiling": smile_bias(mouth[~smiling], inside),
                                  "mouth_density_by_output": {AGE_GROUPS[c]: bootstrap_mean(mouth[smiling, c], n_boot)
                                                              for c in range(len(AGE_GROUPS))}}
            result["models"][key_] = entry
        atomic_write_json(out / "regions.json", result)
        regions_figure(result, out / "regions.png")
        smile = result["models"].get("age", {}).get("smile")
        if smile:
            d = smile["smiling"]
            return {"line": f"mouth density on smiling faces: 15-43 outputs {d['inside']['mean']:.2f} vs others "
                            f"{d['outside']['mean']:.2f} (difference CI {d['difference']['lo']:.2f}..{d['difference']['hi']:.2f})"}
        return {"line": "regions measured"}


def _brief(r: dict) -> dict:
    return {k: r[k] for k in ("accuracy", "one_off_accuracy", "n_images", "confusion")}


def _ground_truth(data: Path) -> dict[str, dict]:
    path = data / "ground_truth.json"
    if not path.is_file():
        return {}
    return {f["face_id"]: f for f in json.loads(path.read_text()).get("faces", [])}


def build_steps(study: FacesStudy) -> list[Step]:
    s = study.settings
    steps: list[Step] = []
    trained: set[str] = set()

    def add_train(task: str, align: str, init: str) -> str:
        name = model_name(task, align, init)
        if name in trained:
            return name
        after: tuple[str, ...] = ()
        if init == "pretrained" and not s["init"]:
            after = (add_train(OTHER[task], "mixed", "random"),)
        spec = study.spec(task, align, init, Path("."))
        settings = {**asdict(spec), "init": s["init"] if init == "pretrained" else None, "data": s["data_digest"]}
        steps.append(Step(name, study.train(task, align, init), [f"models/{name}"], settings, after,
                          f"{task} network, {align} faces, {init} start"))
        trained.add(name)
        return name

    for task in s["tasks"]:
        for init in INITS:
            for align in ALIGNS:
                add_train(task, align, init)
    steps.append(Step(FISHER_MODEL, study.train_fisher(),
                      [f"models/{FISHER_MODEL}"], {**asdict(study.fisher_spec()), "data": s["data_digest"]}, (),
                      f"{FISHER_TASK} Fisher-vector model, {FISHER_ALIGN} faces"))
    table = tuple(model_name(t, a, i) for t in s["tasks"] for i in INITS for a in ALIGNS) + (FISHER_MODEL,)
    steps.append(Step("evaluate", study.evaluate, ["evaluate"], {"data": s["data_digest"]}, table,
                      "accuracy tables (preprocessing x initialisation, test-set swapping)"))
    steps.append(Step("maps", study.maps, ["maps"], {"n": s["map_faces"]},
                      (model_name("age", "inplane", "random"), FISHER_MODEL), "LRP maps of every class (Fig. D.4)"))
    steps.append(Step("regions", study.regions, ["regions"], {"bootstrap": s["bootstrap"]},
                      tuple(model_name(t, "inplane", "random") for t in s["tasks"]) + (FISHER_MODEL,),
                      "relevance on landmark regions, the smile test"))
    return steps


def run_faces_study(data: str | Path, out: str | Path, size: str = "default", init: str | None = None,
                    seed: int = 0, overwrite: bool = False, stream=None) -> RunSummary:
    """Run (or continue) the faces study of ``data`` in ``out``; see the module docstring."""
    from ..study import check_study_folder, environment
    from ..study.plan import data_digest

    if size not in SIZES:
        raise BowlrpError(f"unknown size {size!r}; one of {', '.join(SIZES)}")
    out, data = Path(out), Path(data).resolve()
    open_adience(data)  # a root that is no Adience layout is refused before anything is written
    digest = data_digest(data)
    settings = _settings(size, init, seed)
    earlier = check_study_folder(out, digest, settings, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(out / "study.json", {"format": STUDY_FORMAT, "version": 1, "data": str(data),
                                           "data_digest": digest, "settings": settings,
                                           "created": (earlier or {}).get("created", now), "updated": now,
                                           "environment": environment()})
    study = FacesStudy(data, {**settings, "data_digest": digest})
    with one_torch_thread():  # the LRP maps and region measures too, not only training and scoring
        return run_steps(out, build_steps(study), stream)
