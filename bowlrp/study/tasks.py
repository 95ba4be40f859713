"""The steps of a study (:mod:`.plan` lists them), each a function of the study folder that writes its
outputs and returns a JSON summary, built on the library's own runs and analyses.

Every output is written atomically or through the library's resumable split runs (relevance-store
parts, perturbation parts, DNN checkpoints), so a step killed half-way continues when run again with
the same settings (:mod:`.runner`).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.images import load_image
from ..errors import BowlrpError, SkipLog
from ..heatmap import colorize, write_png
from ..model import load_model, method_for
from ..parallel import ParallelOptions
from ..persistence import atomic_write_json
from ..runs import contains_class, evaluate, explain_split, labelled_split
from ..store import RelevanceStore
from .plan import TEST_SPLIT, TRAIN_SPLIT
from .runner import Step

FAMILIES = ("fv", "bow", "dnn")
EXPLAINED = ("fv", "dnn")  # the two families compared map by map (the BoW model is evaluated only)


def _log(message: str) -> None:
    print(f"      {message}", file=sys.stderr, flush=True)


class StudyTasks:
    """The step functions of one study: the data folder, the settings and how to parallelise."""

    def __init__(self, data: str | Path, settings: dict, n_jobs: int = 1, progress: bool = True):
        self.data = Path(data).resolve()
        self.settings = settings
        self.classes: list[str] = list(settings["classes"])
        self.seed = int(settings["seed"])
        self.parallel = ParallelOptions(n_jobs=n_jobs, progress=progress)
        # a network uses its threads itself; worker processes would each import torch and copy the model
        self.serial = ParallelOptions(n_jobs=1, progress=progress)
        self.progress = progress

    # --- data ------------------------------------------------------------------------------------
    def data_summary(self, root: Path) -> dict:
        """``dataset/summary.json``: images per split, positives per class and split, tagged images, and a
        few sample images as PNGs (``dataset/samples``)."""
        out = root / "dataset"
        summary: dict = {"root": str(self.data), "splits": {}, "classes": self.classes}
        for split in (TRAIN_SPLIT, TEST_SPLIT):
            dataset, samples, labels = labelled_split(self.data, split)
            summary["all_classes"] = dataset.classes
            summary["splits"][split] = {
                "n_images": len(samples),
                "positives": {c: int((labels[:, i] == 1).sum()) for i, c in enumerate(dataset.classes)},
                "n_objects": int(sum(len(s.objects) for s in samples))}
        tagged = self._tagged()
        summary["n_tagged"] = {split: len([s for s in labelled_split(self.data, split)[1] if s.image_id in tagged])
                               for split in (TRAIN_SPLIT, TEST_SPLIT)} if tagged is not None else None
        _, samples, labels = labelled_split(self.data, TEST_SPLIT, classes=self.classes)
        picked, seen = [], set()
        for i, c in enumerate(self.classes):  # one image per class, for the first six classes
            for s, row in zip(samples, labels):
                if row[i] == 1 and s.image_id not in seen:
                    picked.append((s, c))
                    seen.add(s.image_id)
                    break
            if len(picked) == 6:
                break
        summary["samples"] = []
        for s, c in picked:
            name = f"samples/{s.image_id}.png"
            write_png(out / name, (np.clip(load_image(s.path), 0, 1) * 255).round().astype(np.uint8))
            summary["samples"].append({"image_id": s.image_id, "class": c, "file": f"dataset/{name}",
                                       "objects": sorted({o.name for o in s.objects})})
        atomic_write_json(out / "summary.json", summary)
        test = summary["splits"][TEST_SPLIT]["n_images"]
        return {"line": f"{summary['splits'][TRAIN_SPLIT]['n_images']} training and {test} test images, "
                        f"{len(self.classes)} classes"}

    def _tagged(self) -> set[str] | None:
        from ..analysis.watermark import sidecar_regions

        try:
            return set(sidecar_regions(self.data))
        except BowlrpError:
            return None  # not a synthetic set: no recorded tags

    # --- training ----------------------------------------------------------------------------------
    def _training_split(self):
        dataset, samples, labels = labelled_split(self.data, TRAIN_SPLIT, classes=self.classes)
        return dataset, samples, labels

    def train_bow(self, family: str) -> Callable[[Path], dict]:
        """``models/fv`` (Fisher vector + linear SVM) or ``models/bow`` (rank-BoW + HIK)."""
        def run(root: Path) -> dict:
            from ..pipeline import PipelineConfig, train_model

            s = self.settings[family]
            dataset, samples, labels = self._training_split()
            if family == "fv":
                config = PipelineConfig.with_defaults(encoder="fisher", n_words=s["gmm_k"], pca_dims=s["pca_dims"],
                                                      kernel="linear", max_descriptors=s["max_descriptors"],
                                                      C=s["C"], seed=self.seed)
            else:
                config = PipelineConfig.with_defaults(encoder="rankbow", n_words=s["vocab_size"], kernel="hik",
                                                      max_descriptors=s["max_descriptors"], C=s["C"], seed=self.seed)
            skips = SkipLog()
            skips.extend(dataset.skips)
            model = train_model(config, [x.path for x in samples], labels, self.classes, skips, self.parallel)
            model.training["skipped"] = skips.as_list()
            model.training["split"] = TRAIN_SPLIT
            model.save(root / "models" / family)
            return {"line": f"{len(self.classes)} classes, {model.training['n_images']} images, "
                            f"feature dim {model.features.dim}"}
        return run

    def train_dnn(self, root: Path) -> dict:
        """``models/dnn``: the network, trained resumably (a checkpoint per epoch)."""
        from ..dnn.train import TrainConfig, train

        s = self.settings["dnn"]
        dataset, samples, labels = self._training_split()
        skips = SkipLog()
        skips.extend(dataset.skips)
        config = TrainConfig(arch=s["arch"], epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
                             seed=self.seed)
        train(config, [x.path for x in samples], labels, self.classes, root / "models" / "dnn", "cpu", skips,
              _log if self.progress else (lambda msg: None))
        return {"line": f"{s['arch']}, {len(self.classes)} classes, {len(samples)} images, {s['epochs']} epochs"}

    # --- evaluation and explanations ---------------------------------------------------------------
    def evaluate(self, family: str) -> Callable[[Path], dict]:
        """``evaluate/<family>.json``: AP per class on the test split (as ``bowlrp evaluate --json``)."""
        def run(root: Path) -> dict:
            model = load_model(root / "models" / family)
            dataset, samples, labels = labelled_split(self.data, TEST_SPLIT, classes=model.class_names)
            skips = SkipLog()
            skips.extend(dataset.skips)
            result = evaluate(model, samples, labels, skips, self._parallel(family))
            result["variant"] = model.variant
            atomic_write_json(root / "evaluate" / f"{family}.json", result)
            return {"line": f"mAP {result['map']:.3f} on {result['n_images']} test images"}
        return run

    def _parallel(self, family: str) -> ParallelOptions:
        return self.serial if family == "dnn" else self.parallel

    def explain(self, family: str) -> Callable[[Path], dict]:
        """``stores/<family>/<class>.h5``: the relevance maps of each class on its test images."""
        def run(root: Path) -> dict:
            model = load_model(root / "models" / family)
            method = method_for(model, self.settings["explain"][family])
            dataset, samples, labels = labelled_split(self.data, TEST_SPLIT, classes=self.classes)
            total = 0
            for k, class_name in enumerate(self.classes):
                chosen = samples if self.settings["explain"]["images"] == "all" else \
                    [s for s, row in zip(samples, labels) if contains_class(row[k])]
                skips = SkipLog()
                summary = explain_split(model, chosen, class_name, root / "stores" / family / f"{class_name}.h5",
                                        method, skips, self._parallel(family),
                                        extra_settings={"data": str(self.data), "split": TEST_SPLIT})
                total += summary.n_explained + summary.n_resumed
            return {"line": f"{total} map(s) over {len(self.classes)} classes ({method.describe()})"}
        return run

    # --- analyses ----------------------------------------------------------------------------------
    def gallery(self, root: Path) -> dict:
        """``gallery/``: per class its first few test images with their FV and DNN maps side by side (for
        the watermark experiment's class its tagged images first), and ``gallery/gallery.json`` naming them."""

        per_class = self.settings["gallery"]["per_class"]
        tagged = self._tagged() or set()
        _, samples, _ = labelled_split(self.data, TEST_SPLIT, classes=self.classes)
        paths = {s.image_id: s.path for s in samples}
        out: dict = {"classes": {}, "per_class": per_class}
        for class_name in self.classes:
            stores = {f: RelevanceStore(root / "stores" / f / f"{class_name}.h5") for f in EXPLAINED}
            try:
                ids = [i for i in stores["fv"].ids if i in set(stores["dnn"].ids)]
                if class_name == self.settings["artefacts"]["watermark_class"]:  # its tagged images first
                    ids = sorted(ids, key=lambda i: (i not in tagged, ids.index(i)))
                ids = ids[:per_class]
                rows = []
                for image_id in ids:
                    image = np.clip(load_image(paths[image_id]), 0, 1)
                    files = {"image": f"gallery/{class_name}/{image_id}_image.png"}
                    write_png(root / files["image"], (image * 255).round().astype(np.uint8))
                    scores = {}
                    for f, store in stores.items():
                        item = store[image_id]
                        files[f] = f"gallery/{class_name}/{image_id}_{f}.png"
                        write_png(root / files[f], colorize(item["relevance"]))
                        scores[f] = float(item["score"])
                    rows.append({"image_id": image_id, "tagged": image_id in tagged, "files": files,
                                 "scores": scores})
            finally:
                for store in stores.values():
                    store.close()
            out["classes"][class_name] = rows
        atomic_write_json(root / "gallery" / "gallery.json", out)
        n = sum(len(r) for r in out["classes"].values())
        return {"line": f"{n} image(s) with both maps, {sum(r['tagged'] for v in out['classes'].values() for r in v)}"
                        " tagged"}

    def context(self, root: Path) -> dict:
        """``context/context.json`` and ``context/context.png``: mu (Eq. 4.11) per class, FV vs DNN."""
        from ..analysis.context import context_table, plot_context

        results = context_table([root / "stores" / f for f in EXPLAINED], self.data, classes=self.classes)
        rows = []
        for r in results:
            row = r.row()
            row["family"] = Path(r.store).parent.name
            row["store"] = str(Path(r.store).relative_to(root))
            if self.settings["explain"]["images"] != "all":
                row["ap"] = None  # stores of positives only: their AP says nothing (see evaluate/)
            rows.append(row)
        atomic_write_json(root / "context" / "context.json", {"rows": rows})
        plot_context(results, root / "context" / "context.png")
        # mu is a ratio: one image with almost no positive relevance inside its boxes makes a class's
        # mean explode (a weak network's tvmonitor: mean 258, median 2.8), so the line gives medians
        medians = {f: np.nanmedian([r["mu_median"] if r["mu_median"] is not None else np.nan for r in rows
                                    if r["family"] == f]) for f in EXPLAINED}
        return {"line": ", ".join(f"median mu {f} {v:.2f}" for f, v in medians.items())}

    def perturb(self, family: str) -> Callable[[Path], dict]:
        """``perturbation/<family>/<class>.json`` (+ ``.png``): region perturbation curves (Section 3.4),
        the family's LRP order (the stores' options) against a random order, on the first test images
        of each class."""
        def run(root: Path) -> dict:
            from ..analysis.perturbation import curve_split, plot_curves
            from ..analysis.region_perturbation import PerturbationConfig, RegionCurves

            s = self.settings["perturb"]
            model = load_model(root / "models" / family)
            options = self.settings["explain"][family]
            lrp = "lrp" + (":" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) if options else "")
            config = PerturbationConfig(region=s["region"], steps=s["steps"], repetitions=s["repetitions"],
                                        seed=self.seed)
            source = RegionCurves.for_model(model, [lrp, "random"], config)
            dataset, samples, labels = labelled_split(self.data, TEST_SPLIT, classes=self.classes)
            classes = self.classes[:s["max_classes"]] if s["max_classes"] else self.classes
            aopc = {}
            for k, class_name in enumerate(classes):
                chosen = [x for x, row in zip(samples, labels) if row[k] == 1][:s["n_images"]]
                out = root / "perturbation" / family / f"{class_name}.json"
                result = curve_split(model, chosen, class_name, source, out, SkipLog(), self._parallel(family),
                                     extra_settings={"data": str(self.data), "split": TEST_SPLIT})
                plot_curves(result, out.with_suffix(".png"))
                aopc[class_name] = result["orders"][lrp]["aopc_mean"] - result["orders"]["random"]["aopc_mean"]
            return {"line": f"{len(classes)} classes, mean AOPC(LRP) - AOPC(random) "
                            f"{np.mean(list(aopc.values())):+.3f}"}
        return run

    def perturb_descriptors(self, root: Path) -> dict:
        """``perturbation/fv-descriptors/<class>.json`` (+ ``.png``): FV descriptor replacement by GMM samples
        (Appendix C.2), the LRP rules' orders (epsilon 1 and 100, alpha 2 / beta 1, |z|) and a random one,
        on the first test images of each class."""
        from ..analysis.descriptor_replacement import RANDOM, RULE_ORDERS, DescriptorCurves
        from ..analysis.perturbation import curve_split, plot_curves

        s = self.settings["descriptors"]
        model = load_model(root / "models" / "fv")
        source = DescriptorCurves.for_model(model, (*RULE_ORDERS, RANDOM), steps=s["steps"], batch=s["per_step"],
                                            repetitions=s["repetitions"], seed=self.seed)
        dataset, samples, labels = labelled_split(self.data, TEST_SPLIT, classes=self.classes)
        classes = self.classes[:s["max_classes"]] if s["max_classes"] else self.classes
        best: dict[str, int] = {}
        for k, class_name in enumerate(classes):
            chosen = [x for x, row in zip(samples, labels) if row[k] == 1][:s["n_images"]]
            out = root / "perturbation" / "fv-descriptors" / f"{class_name}.json"
            result = curve_split(model, chosen, class_name, source, out, SkipLog(), self.parallel,
                                 extra_settings={"data": str(self.data), "split": TEST_SPLIT})
            plot_curves(result, out.with_suffix(".png"))
            top = max(result["orders"], key=lambda name: result["orders"][name]["aopc_mean"])
            best[top] = best.get(top, 0) + 1
        return {"line": f"{len(classes)} classes; highest AOPC per class: "
                        + ", ".join(f"{name} {n}x" for name, n in sorted(best.items(), key=lambda kv: -kv[1]))}

    def spray(self, root: Path) -> dict:
        """SpRAy (SPEC §6.3) on each family's stores into ``spray/<family>/`` (what ``bowlrp spray``
        writes), on the images that contain each class. A class with fewer maps than the analysis
        needs is left out and named in ``spray/status.json`` (a quick study has a few per class)."""
        from ..analysis.spray import minimum_maps
        from ..analysis.spray_classes import read_annotations, spray_stores
        from ..analysis.spray_plots import write_spray_outputs

        annotations = read_annotations(self.data)
        status: dict = {"available": True, "families": {}}
        for family in EXPLAINED:
            usable, too_few = [], {}
            for c in self.classes:
                path = root / "stores" / family / f"{c}.h5"
                column = annotations.classes.index(c)
                with RelevanceStore(path) as store:
                    n = sum(1 for i in store.ids if i in annotations.labels and contains_class(annotations.labels[i][column]))
                if n >= minimum_maps():
                    usable.append(str(path))
                else:
                    too_few[c] = n
            entry: dict = {"json": f"spray/{family}/spray.json", "too_few_maps": too_few,
                           "minimum": minimum_maps()}
            if usable:
                results = spray_stores(usable, annotations, pool=self.settings["spray"]["pool"],
                                       normalize=self.settings["spray"].get("normalize", "l1"))
                write_spray_outputs(results, root / "spray" / family)
            status["families"][family] = entry
        atomic_write_json(root / "spray" / "status.json", status)
        ran = {f: len(self.classes) - len(e["too_few_maps"]) for f, e in status["families"].items()}
        return {"line": "SpRAy: " + ", ".join(f"{f} {n} class(es)" for f, n in ran.items())
                        + (f" (classes under {minimum_maps()} maps left out)" if any(
                            e["too_few_maps"] for e in status["families"].values()) else "")}

    def artefact(self, kind: str) -> Callable[[Path], dict]:
        """``artefacts/<kind>/<family>.json`` (+ ``.png``) for FV and DNN: the watermark experiment on its
        class (tag removed / pasted) or the padding experiment; ``artefacts/<kind>/status.json`` says which ran
        and why one could not (the class not in the study, no tagged test image)."""
        def run(root: Path) -> dict:
            from ..analysis.padding import padding_experiment, plot_padding
            from ..analysis.watermark import plot_watermark, sidecar_regions, watermark_experiment

            s = self.settings["artefacts"]
            class_name = s[f"{kind}_class"]
            status: dict = {"class": class_name, "families": {}}
            if class_name not in self.classes:
                status["not_applicable"] = f"{class_name!r} is not a class of this study"
            else:
                _, samples, labels = labelled_split(self.data, TEST_SPLIT, classes=[class_name])
                contains = contains_class(labels[:, 0])
                try:
                    regions = sidecar_regions(self.data) if kind == "watermark" else None
                except BowlrpError as exc:
                    status["not_applicable"] = str(exc)
                    regions = None
                if kind == "watermark" and regions is not None and not any(s_.image_id in regions for s_ in samples):
                    status["not_applicable"] = "no test image carries the tag"
                if "not_applicable" not in status:
                    for family in EXPLAINED:
                        model = load_model(root / "models" / family)
                        if kind == "watermark":
                            result = watermark_experiment(model, samples, contains, class_name, regions,
                                                          n_images=s["watermark_images"],
                                                          show_progress=self.progress)
                            plot = plot_watermark
                        else:
                            result = padding_experiment(model, samples, contains, class_name, seed=self.seed,
                                                        n_images=s["padding_images"], show_progress=self.progress)
                            plot = plot_padding
                        result["model"] = f"models/{family}"
                        out = root / "artefacts" / kind / f"{family}.json"
                        atomic_write_json(out, result)
                        plot(result, out.with_suffix(".png"))
                        status["families"][family] = {"json": f"artefacts/{kind}/{family}.json",
                                                      "plot": f"artefacts/{kind}/{family}.png"}
            atomic_write_json(root / "artefacts" / kind / "status.json", status)
            return {"line": status.get("not_applicable") or f"{class_name}: " + ", ".join(status["families"])}
        return run


def build_steps(tasks: StudyTasks, settings: dict, data_digest: str, report: Callable[[Path], dict],
                faces: str | None = None) -> list[Step]:
    """The study's steps in order, each with the settings it depends on (see :mod:`.plan`); ``faces`` is the
    digest of the faces study in ``STUDY/faces`` (:func:`.faces_section.faces_digest`; None: there is none),
    so the report is written again when that study changes."""
    common = {"classes": settings["classes"], "seed": settings["seed"], "bowlrp": settings["bowlrp"]}
    steps = [Step("data", tasks.data_summary, ["dataset"], {"data_digest": data_digest, **common},
                  title="summarise the dataset")]
    steps.append(Step("train-fv", tasks.train_bow("fv"), ["models/fv"], {**common, **settings["fv"]}, ("data",),
                      "train the Fisher-vector + linear SVM model"))
    steps.append(Step("train-bow", tasks.train_bow("bow"), ["models/bow"], {**common, **settings["bow"]}, ("data",),
                      "train the rank-BoW + histogram-intersection model"))
    steps.append(Step("train-dnn", tasks.train_dnn, ["models/dnn"], {**common, **settings["dnn"]}, ("data",),
                      "train the network"))
    for f in FAMILIES:
        steps.append(Step(f"evaluate-{f}", tasks.evaluate(f), [f"evaluate/{f}.json"], {}, (f"train-{f}",),
                          f"AP per class of the {f} model on the test split"))
    explain = {k: v for k, v in settings["explain"].items()}
    for f in EXPLAINED:
        steps.append(Step(f"explain-{f}", tasks.explain(f), [f"stores/{f}"], {**common, "explain": explain},
                          (f"train-{f}",), f"explain every class on its test images with the {f} model"))
    maps = tuple(f"explain-{f}" for f in EXPLAINED)
    steps.append(Step("gallery", tasks.gallery, ["gallery"],
                      {"gallery": settings["gallery"], "tagged_first": settings["artefacts"]["watermark_class"]}, maps,
                      "heatmap gallery: image | FV map | DNN map"))
    steps.append(Step("context", tasks.context, ["context"], {}, maps, "context ratio mu per class (Eq. 4.11)"))
    for f in EXPLAINED:
        steps.append(Step(f"perturb-{f}", tasks.perturb(f), [f"perturbation/{f}"],
                          {**common, "perturb": settings["perturb"], "explain": explain[f]}, (f"train-{f}",),
                          f"region perturbation curves and AOPC of the {f} maps"))
    steps.append(Step("perturb-fv-descriptors", tasks.perturb_descriptors, ["perturbation/fv-descriptors"],
                      {**common, "descriptors": settings["descriptors"]}, ("train-fv",),
                      "FV descriptor replacement curves: the LRP rules compared (Appendix C.2)"))
    steps.append(Step("spray", tasks.spray, ["spray"],
                      {"spray": settings["spray"]},
                      maps, "spectral relevance analysis"))
    trained = tuple(f"train-{f}" for f in EXPLAINED)
    for kind in ("watermark", "padding"):
        steps.append(Step(kind, tasks.artefact(kind), [f"artefacts/{kind}"],
                          {**common, "artefacts": settings["artefacts"]}, ("data", *trained),
                          f"artefact experiment: {kind}"))
    steps.append(Step("report", report, ["report"], {} if faces is None else {"faces": faces},
                      tuple(s.name for s in steps), "write the HTML report"))
    return steps
