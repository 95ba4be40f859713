"""What a BoW / Fisher-vector model directory may hold, checked before anything is built from it.

A model directory is data from anywhere: a NaN coefficient, a zero GMM variance, a class list cut
short, a step of 0 or a bogus backend used to load and then predict NaN, zero every Fisher vector,
score three classes, or turn every image into a "skipped" file, all with exit 0. Loading therefore
checks the whole of ``model.json`` (types, ranges, known names, and that the training
configuration agrees with the stages it made) and derives from it the exact shape of every array
``arrays.npz`` must hold (:func:`check_bow_meta`); the arrays are then read against those shapes
(:func:`bowlrp.persistence.read_declared_arrays`) and their values checked (:func:`check_bow_arrays`:
finite, positive variances at or above the fit's variance floor, priors summing to one). Every
refusal is one line naming the file and the field.

:class:`Field` is the typed reader of JSON fields the DNN family uses as well.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .encoding.fisher import NORMALIZATIONS
from .encoding.vocabulary import GMM_BACKENDS
from .errors import ModelError
from .features.dsift import BACKENDS as SIFT_BACKENDS
from .features.dsift import DESCRIPTOR_SIZE, ORIENTATIONS
from .persistence import ArraySpec
from .svm.kernels import KERNELS, KernelSum
from .svm.metrics import AP_METHODS

ENCODERS = ("fisher", "rankbow", "vq")
PRIOR_SUM_TOLERANCE = 1e-4  # float32 priors of a fitted GMM sum to one within ~1e-8
_MISSING = object()


class Field:
    """One value of a JSON document with its dotted name, read with type and range checks.

    ``Field(meta, path)["config"]["step"].integer(minimum=1)`` returns the int or raises a
    :class:`ModelError` "``path``: field config.step: ...".
    """

    def __init__(self, value: Any, path: Path, name: str = "") -> None:
        self.value, self.path, self.name = value, Path(path), name

    def fail(self, problem: str) -> ModelError:
        where = f"field {self.name}: " if self.name else ""
        return ModelError(f"{self.path}: {where}{problem}")

    def _child(self, value: Any, key: str | int) -> "Field":
        name = f"{self.name}[{key}]" if isinstance(key, int) else (f"{self.name}.{key}" if self.name else key)
        return Field(value, self.path, name)

    def mapping(self) -> dict:
        if not isinstance(self.value, dict):
            raise self.fail(f"expected an object, got {_show(self.value)}")
        return self.value

    def __getitem__(self, key: str) -> "Field":
        value = self.mapping().get(key, _MISSING)
        if value is _MISSING:
            raise self._child(None, key).fail("missing")
        return self._child(value, key)

    def get(self, key: str, default: Any) -> "Field":
        """The field ``key``, or ``default`` where it is absent (a field older files lack)."""
        return self._child(self.mapping().get(key, default), key)

    def keys_within(self, allowed: Iterable[str]) -> "Field":
        unknown = sorted(set(self.mapping()) - set(allowed))
        if unknown:
            raise self._child(None, unknown[0]).fail("unknown field")
        return self

    @property
    def is_null(self) -> bool:
        return self.value is None

    def items(self, length: int | None = None, min_length: int = 0) -> list["Field"]:
        if not isinstance(self.value, list):
            raise self.fail(f"expected a list, got {_show(self.value)}")
        if length is not None and len(self.value) != length:
            raise self.fail(f"{len(self.value)} entries where {length} are expected")
        if len(self.value) < min_length:
            raise self.fail(f"{len(self.value)} entries, at least {min_length} needed")
        return [self._child(v, i) for i, v in enumerate(self.value)]

    def integer(self, minimum: int | None = None, maximum: int | None = None) -> int:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"expected an integer, got {_show(value)}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = " and ".join(b for b in (minimum is not None and f">= {minimum}",
                                              maximum is not None and f"<= {maximum}") if b)
            raise self.fail(f"must be {bounds}, got {value}")
        return value

    def number(self, minimum: float | None = None, above: float | None = None, below: float | None = None) -> float:
        """A finite real number ``>= minimum``, ``> above`` and ``< below`` (where given)."""
        value = self.value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(f"expected a finite number, got {_show(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(f"must be >= {minimum}, got {value}")
        if above is not None and not value > above:
            raise self.fail(f"must be > {above}, got {value}")
        if below is not None and not value < below:
            raise self.fail(f"must be < {below}, got {value}")
        return float(value)

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.fail(f"expected true or false, got {_show(self.value)}")
        return self.value

    def choice(self, choices: Sequence[str]) -> str:
        if not isinstance(self.value, str) or self.value not in choices:
            raise self.fail(f"{_show(self.value)} is not one of {', '.join(choices)}")
        return self.value

    def names(self) -> list[str]:
        """A non-empty list of distinct non-empty strings (class names)."""
        names = []
        for item in self.items(min_length=1):
            if not isinstance(item.value, str) or not item.value.strip():
                raise item.fail(f"expected a non-empty name, got {_show(item.value)}")
            names.append(item.value)
        if len(set(names)) != len(names):
            raise self.fail(f"{next(n for n in names if names.count(n) > 1)!r} is listed twice")
        return names

    def equals(self, value: Any, what: str) -> None:
        """Refuse a value that disagrees with ``value``, which ``what`` describes."""
        if self.value != value:
            raise self.fail(f"{_show(self.value)} disagrees with {what} ({_show(value)})")


def _show(value: Any) -> str:
    text = repr(value) if value is not None else "null"
    return text if len(text) <= 60 else text[:57] + "..."


# --- model.json of a BowModel --------------------------------------------------------------

@dataclass
class BowLayout:
    """What :func:`check_bow_meta` found: the arrays to read and what their values are checked for."""

    specs: dict[str, ArraySpec]
    variances: dict[str, tuple[float, str]]  # GMM variances: > 0 and >= (the fit's floor, its model.json field)
    priors: list[str]           # GMM priors: >= 0, summing to 1
    nonnegative: list[str]      # PCA explained variance; support vectors of kernels on histograms
    support: tuple[str, str] | None  # (support vectors, dual coefficients) of a kernel machine


def check_config(config: Field, defaults: dict) -> dict:
    """The ``config`` object checked field by field (an absent field takes its default)."""
    config.mapping()
    out = dict(defaults)

    def read(key: str, how) -> None:
        field = config.get(key, defaults[key])
        out[key] = how(field)

    read("encoder", lambda f: f.choice(ENCODERS))
    read("kernel", lambda f: f.choice(tuple(KERNELS)))
    read("n_words", lambda f: f.integer(minimum=1))
    read("pca_dims", lambda f: None if f.is_null else f.integer(minimum=1))  # >= 128: no projection
    read("bin_sizes", lambda f: [item.integer(minimum=1) for item in f.items(min_length=1)])
    read("step", lambda f: f.integer(minimum=1))
    read("sift_backend", lambda f: f.choice(("auto", *SIFT_BACKENDS)))
    read("sift_orientation", lambda f: f.choice(ORIENTATIONS))
    read("max_rows", lambda f: None if f.is_null else f.integer(minimum=1))
    read("per_scale", Field.boolean)
    read("pyramid", Field.boolean)
    read("pooling", _pooling)
    read("rank_p", lambda f: f.number(above=0.0))
    read("rank_n", lambda f: f.integer(minimum=1))
    read("fisher_normalization", lambda f: f.choice(NORMALIZATIONS))
    read("weight_gradient", Field.boolean)
    read("max_descriptors", lambda f: f.integer(minimum=1))
    read("gmm_backend", lambda f: f.choice(GMM_BACKENDS))
    read("C", lambda f: None if f.is_null else f.number(above=0.0))
    read("seed", lambda f: f.integer())
    return out


def _pooling(field: Field) -> str | float:
    if isinstance(field.value, str):
        return field.choice(("sum", "max"))
    return field.number(minimum=1.0)


def _check_sift(sift: Field, config: dict) -> int:
    """The dense-SIFT state against the configuration; returns the number of SIFT scales."""
    sift["stage"].choice(("DenseSift",))
    params = sift["params"].keys_within(("bin_sizes", "step", "backend", "max_rows", "magnif", "window_size",
                                         "contrast_threshold", "fast", "orientation"))
    sizes = [item.integer(minimum=1) for item in params["bin_sizes"].items(min_length=1)]
    params["bin_sizes"].equals(config["bin_sizes"], "config.bin_sizes")
    params["step"].integer(minimum=1)
    params["step"].equals(config["step"], "config.step")
    backend = params["backend"].choice(SIFT_BACKENDS)  # saved resolved, never "auto"
    if config["sift_backend"] != "auto" and backend != config["sift_backend"]:
        params["backend"].equals(config["sift_backend"], "config.sift_backend")
    rows = params.get("max_rows", config["max_rows"])
    if not rows.is_null:
        rows.integer(minimum=1)
    rows.equals(config["max_rows"], "config.max_rows")
    params.get("magnif", 6.0).number(above=0.0)
    params.get("window_size", 1.5).number(above=0.0)
    params.get("contrast_threshold", 0.005).number(minimum=0.0)
    params.get("fast", True).boolean()
    params.get("orientation", "upright").choice(ORIENTATIONS)
    params.get("orientation", "upright").equals(config["sift_orientation"], "config.sift_orientation")
    return len(sizes)


def _n_cells(pyramid: Field, config: dict) -> int:
    if pyramid.is_null:
        if config["pyramid"]:
            raise pyramid.fail("no pyramid where config.pyramid is true")
        return 1
    if not config["pyramid"]:
        raise pyramid.fail("a pyramid where config.pyramid is false")
    pyramid.keys_within(("levels",))
    cells = 0
    for level in pyramid["levels"].items(min_length=1):
        rows, cols = (v.integer(minimum=1) for v in level.items(length=2))
        cells += rows * cols
    return cells


def _check_block(b: int, entry: Field, config: dict, layout: BowLayout) -> int:
    """One encoding block against the configuration; adds its arrays to ``layout``, returns its dim."""
    prefix = f"block{b}"
    projection = entry["projection"]
    wants_pca = config["pca_dims"] is not None and config["pca_dims"] < DESCRIPTOR_SIZE
    if projection.is_null:
        if wants_pca:
            raise projection.fail(f"no projection where config.pca_dims is {config['pca_dims']}")
        dims = DESCRIPTOR_SIZE
    else:
        if not wants_pca:
            raise projection.fail(f"a projection where config.pca_dims is {_show(config['pca_dims'])}")
        projection.keys_within(("n_components", "random_state"))
        dims = projection["n_components"].integer(minimum=1, maximum=DESCRIPTOR_SIZE)
        projection["n_components"].equals(config["pca_dims"], "config.pca_dims")
        projection.get("random_state", 0).integer()
        layout.specs[f"{prefix}/projection/mean"] = ArraySpec((DESCRIPTOR_SIZE,))
        layout.specs[f"{prefix}/projection/components"] = ArraySpec((dims, DESCRIPTOR_SIZE))
        layout.specs[f"{prefix}/projection/explained_variance"] = ArraySpec((dims,))
        layout.nonnegative.append(f"{prefix}/projection/explained_variance")
    encoder = entry["encoder"]
    if config["encoder"] == "fisher":
        encoder.keys_within(("gmm", "pyramid", "normalization", "weight_gradient", "chunk_rows"))
        gmm = encoder["gmm"].keys_within(("n_components", "max_iter", "random_state", "backend", "variance_floor"))
        k = gmm["n_components"].integer(minimum=1)
        gmm["n_components"].equals(config["n_words"], "config.n_words")
        gmm.get("max_iter", 100).integer(minimum=1)
        gmm.get("random_state", 0).integer()
        gmm.get("backend", "sklearn").choice(GMM_BACKENDS)
        floor_field = gmm.get("variance_floor", 0.0)
        floor = floor_field.number(minimum=0.0)
        encoder.get("normalization", "enceval").choice(NORMALIZATIONS)
        encoder.get("normalization", "enceval").equals(config["fisher_normalization"], "config.fisher_normalization")
        weight_gradient = encoder.get("weight_gradient", False).boolean()
        encoder.get("weight_gradient", False).equals(config["weight_gradient"], "config.weight_gradient")
        encoder.get("chunk_rows", 16384).integer(minimum=1)
        cells = _n_cells(encoder.get("pyramid", None), config)
        for name, shape in (("means", (k, dims)), ("variances", (k, dims)), ("weights", (k,))):
            layout.specs[f"{prefix}/encoder/gmm/{name}"] = ArraySpec(shape)
        layout.variances[f"{prefix}/encoder/gmm/variances"] = (floor, floor_field.name)
        layout.priors.append(f"{prefix}/encoder/gmm/weights")
        return cells * (2 * dims + int(weight_gradient)) * k
    rank = config["encoder"] == "rankbow"
    encoder.keys_within(("vocab", "pyramid", "pooling") + (("p", "n") if rank else ()))
    vocab = encoder["vocab"].keys_within(("n_clusters", "random_state", "max_iter", "n_init"))
    k = vocab["n_clusters"].integer(minimum=1)
    vocab["n_clusters"].equals(config["n_words"], "config.n_words")
    vocab.get("random_state", 0).integer()
    vocab.get("max_iter", 300).integer(minimum=1)
    vocab.get("n_init", 1).integer(minimum=1)
    _pooling(encoder.get("pooling", "sum"))
    encoder.get("pooling", "sum").equals(config["pooling"], "config.pooling")
    if rank:
        encoder.get("p", 2.0).number(above=0.0)
        encoder.get("p", 2.0).equals(config["rank_p"], "config.rank_p")
        encoder.get("n", 4).integer(minimum=1)
        encoder.get("n", 4).equals(config["rank_n"], "config.rank_n")
    cells = _n_cells(encoder.get("pyramid", None), config)
    layout.specs[f"{prefix}/encoder/vocab/centers"] = ArraySpec((k, dims))
    return cells * k


def _check_kernel(kernel: Field, name: str) -> bool:
    """One kernel's state (of type ``name``); returns whether it wants non-negative inputs."""
    kernel.keys_within(("name", "params", "fitted"))
    kernel["name"].equals(name, "config.kernel")
    cls = KERNELS[name]
    params = kernel.get("params", {}).keys_within(cls().get_params())
    for key in params.mapping():
        if not params[key].is_null:
            params[key].number(above=0.0)
    fitted = kernel.get("fitted", {}).keys_within(f"{key}_" for key in cls().get_params())
    for key in fitted.mapping():
        fitted[key].number(above=0.0)
    return cls.nonnegative_input


def _check_classifier(classifier: Field, class_names: list[str], config: dict, block_dims: list[int],
                      training: Field, layout: BowLayout) -> None:
    classifier.keys_within(("kernel", "class_names", "chosen_C", "intercepts", "class_weight", "params"))
    n_classes, dim = len(class_names), sum(block_dims)
    kernel = classifier["kernel"]
    if len(block_dims) == 1:
        nonnegative = _check_kernel(kernel, config["kernel"])
    else:
        kernel.keys_within(("name", "kernels", "blocks", "weights"))
        kernel["name"].equals(KernelSum.name, f"{len(block_dims)} encoding blocks")
        parts = kernel["kernels"].items(length=len(block_dims))
        nonnegative = any([_check_kernel(part, config["kernel"]) for part in parts])
        starts = np.concatenate([[0], np.cumsum(block_dims)]).tolist()
        kernel["blocks"].equals([[starts[i], starts[i + 1], None] for i in range(len(block_dims))],
                                "the encoding blocks' ranges")
        weights = [w.number(minimum=0.0) for w in kernel["weights"].items(length=len(block_dims))]
        if not sum(weights) > 0:
            raise kernel["weights"].fail("all zero")
    classifier["class_names"].equals(class_names, "class_names")
    for c in classifier["chosen_C"].items(length=n_classes):
        c.number(above=0.0)
    for b in classifier["intercepts"].items(length=n_classes):
        b.number()
    weight = classifier.get("class_weight", "balanced")
    if isinstance(weight.value, dict):
        weight.keys_within(("1", "-1"))
        for key in weight.mapping():
            weight[key].number(above=0.0)
    elif not weight.is_null:
        weight.choice(("balanced",))
    params = classifier.get("params", {}).keys_within(("C", "C_grid", "validation_fraction", "ap_method",
                                                       "random_state"))
    if not params.get("C", None).is_null:
        params["C"].number(above=0.0)
    for c in params.get("C_grid", [1.0]).items(min_length=1):
        c.number(above=0.0)
    params.get("validation_fraction", 0.25).number(above=0.0, below=1.0)
    params.get("ap_method", "11point").choice(tuple(AP_METHODS))
    params.get("random_state", 0).integer()
    if config["kernel"] == "linear":  # w per class (Eq. A.1), block weights folded in
        layout.specs["classifier/coef"] = ArraySpec((dim, n_classes))
        return
    # a kernel machine keeps distinct training vectors: no more than there were training images
    n_images = training["n_images"].integer(minimum=1)
    layout.specs["classifier/support_vectors"] = ArraySpec((-1, dim), max_length=n_images)
    layout.specs["classifier/dual_coef"] = ArraySpec((-1, n_classes), max_length=n_images)
    layout.support = ("classifier/support_vectors", "classifier/dual_coef")
    if nonnegative:
        layout.nonnegative.append("classifier/support_vectors")


def check_bow_meta(meta: dict, path: Path, config_defaults: dict) -> tuple[dict, BowLayout]:
    """Check a BowModel's ``model.json`` (already parsed, at ``path``) and derive its arrays.

    Returns the checked configuration (absent fields filled from ``config_defaults``) and the
    :class:`BowLayout`: every array ``arrays.npz`` must hold, with its exact shape.
    """
    root = Field(meta, path)
    class_names = root["class_names"].names()
    config = check_config(root["config"], config_defaults)
    n_scales = _check_sift(root["sift"], config)
    groups = [[s] for s in range(n_scales)] if config["per_scale"] else [list(range(n_scales))]
    blocks = root["blocks"].items(length=len(groups))
    layout = BowLayout({}, {}, [], [], None)
    block_dims = []
    for b, (entry, scales) in enumerate(zip(blocks, groups)):
        entry.keys_within(("scales", "projection", "encoder"))
        for item in entry["scales"].items():
            item.integer(minimum=0, maximum=n_scales - 1)
        entry["scales"].equals(scales, f"the {n_scales} SIFT scale(s) of sift.params.bin_sizes"
                                       + (" (one block per scale)" if config["per_scale"] else ""))
        block_dims.append(_check_block(b, entry, config, layout))
    training = root.get("training", {})
    training.mapping()
    _check_classifier(root["classifier"], class_names, config, block_dims, training, layout)
    return config, layout


def check_bow_arrays(arrays: dict[str, np.ndarray], layout: BowLayout, path: Path) -> None:
    """The values of a BowModel's arrays (read against ``layout.specs``): finite everywhere, GMM
    variances positive, priors a distribution, histogram-kernel support vectors non-negative."""
    for name, array in arrays.items():
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ModelError(f"{path}: {name}: {bad} NaN or infinite value(s)")
    for name, (floor, floor_name) in layout.variances.items():
        bad = int(np.count_nonzero(arrays[name] <= 0))
        if bad:
            raise ModelError(f"{path}: {name}: {bad} variance(s) <= 0")
        bad = int(np.count_nonzero(arrays[name] < floor))
        if bad:
            raise ModelError(f"{path}: {name}: {bad} variance(s) below the variance floor {floor:.6g} "
                             f"(model.json field {floor_name})")
    for name in layout.priors:
        priors = arrays[name].astype(np.float64)
        if (priors < 0).any() or abs(priors.sum() - 1.0) > PRIOR_SUM_TOLERANCE:
            raise ModelError(f"{path}: {name}: priors must be >= 0 and sum to 1 (sum {priors.sum():.6g}, "
                             f"min {priors.min():.3g})")
    for name in layout.nonnegative:
        bad = int(np.count_nonzero(arrays[name] < 0))
        if bad:
            raise ModelError(f"{path}: {name}: {bad} negative value(s)")
    if layout.support is not None:
        vectors, dual = (arrays[name] for name in layout.support)
        if len(vectors) != len(dual):
            raise ModelError(f"{path}: {layout.support[1]}: {len(dual)} rows for {len(vectors)} support vectors")

