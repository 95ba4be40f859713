"""The BoW / Fisher-vector classification pipeline, end to end.

Forward stages, in the order of Figure 2.11 of the dissertation::

    image --DenseSift--> descriptors --PcaProjection--> reduced descriptors
          --vocabulary + encoder--> BoW / Fisher vector  --kernel SVM--> f(x), one per class

:class:`FeaturePipeline` holds the stages up to the image vector (what workers need),
:class:`BowModel` adds the one-vs-rest SVM, the class names and the configuration, and is
what ``bowlrp train`` writes and ``evaluate`` / ``predict`` read.

With ``per_scale=True`` every SIFT scale gets its own projection, vocabulary and encoder
(one *block* each) and the SVM uses a weighted sum of one kernel per block (Eq. 2.67), as in the
shapes task of Section 2.4.3.
"""
from __future__ import annotations

import logging
import math
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from . import __version__
from .data.images import image_of
from .encoding import (FisherEncoder, GmmVocabulary, HardVqEncoder, KMeansVocabulary,
                       PcaProjection, RankBowEncoder, SpatialPyramid)
from .encoding.fisher import FisherForward
from .encoding.vocabulary import GMM_BACKENDS
from .errors import BowlrpError, ImageError, ModelError, SkipLog
from .explanation import Explanation
from .features.descriptors import DescriptorSet
from .features.dsift import DenseSift
from .lrp.explain import BowLrp, explain_image
from .lrp.rules import EncoderRule
from .lrp.svm import is_exactly_decomposable
from .lrp.taylor import DEFAULT_PATH_TOLERANCE, DEFAULT_TAYLOR
from .model import Model, require_cpu
from .parallel import ItemResult, ParallelOptions, guarded, parallel_map
from .progress import running
from .model_schema import ENCODERS, check_bow_arrays, check_bow_meta
from .persistence import (ARRAYS_NPZ, MODEL_JSON, prefixed, read_declared_arrays, read_stage_meta, save_stages,
                          unprefixed)
from .svm import KernelSum, OneVsRestSvm, make_kernel, trainable_classes

log = logging.getLogger(__name__)


@dataclass
class PipelineConfig:
    """Everything that defines a model before training; stored in the model's JSON.

    Attributes
    ----------
    encoder : {"fisher", "rankbow", "vq"}
    kernel : str
        A kernel name of :func:`bowlrp.svm.make_kernel` (linear, hik, chi2, additive-chi2, rbf).
    n_words : int
        GMM components (fisher) or k-means words (rankbow, vq), per block.
    pca_dims : int or None
        Descriptor dimensions after PCA; None keeps the raw 128 SIFT dimensions.
    bin_sizes, step, sift_backend, max_rows : dense SIFT parameters
        (:class:`~bowlrp.features.dsift.DenseSift`; the VOC setup of Section 4.2 and Appendix D.1).
    sift_orientation : {"upright", "dominant"}
        Upright ``vl_dsift`` descriptors (VOC) or frames turned to their main gradient (shapes task).
    per_scale : bool
        One vocabulary and kernel per SIFT scale, kernels summed with equal weights.
    pyramid : bool
        Spatial pyramid 1×1 + 2×2 + 3×1 (8 cells) on top of the encoding.
    max_descriptors : int
        Size of the random descriptor sample the projection and vocabularies are fitted on;
        the vocabulary's fitting time grows linearly with it.
    gmm_backend : {"bowlrp", "sklearn", "vlfeat"}
        Who fits the Fisher vector's GMM (:class:`~bowlrp.encoding.GmmVocabulary`): our EM on the
        encoder's kernels (default), scikit-learn's ``GaussianMixture`` or VLFeat's ``vl_gmm``.
    C : float or None
        SVM regularisation; None picks it per class on a validation split.
    seed : int
        Seed of every random choice (descriptor sample, vocabularies, validation split).
    """

    encoder: str = "fisher"
    kernel: str = "linear"
    n_words: int = 256
    pca_dims: int | None = 80
    bin_sizes: tuple[int, ...] = (4, 6, 8, 10)
    step: int = 3
    sift_backend: str = "auto"
    sift_orientation: str = "upright"
    max_rows: int = 480
    per_scale: bool = False
    pyramid: bool = True
    pooling: str | float = "sum"
    rank_p: float = 2.0
    rank_n: int = 4
    fisher_normalization: str = "enceval"
    weight_gradient: bool = False
    max_descriptors: int = 200_000
    gmm_backend: str = "bowlrp"
    C: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise BowlrpError(f"unknown encoder {self.encoder!r}; choose one of {', '.join(ENCODERS)}")
        self.bin_sizes = tuple(int(b) for b in self.bin_sizes)
        if self.n_words < 1:
            raise BowlrpError("the vocabulary needs at least one word")
        if self.gmm_backend not in GMM_BACKENDS:
            raise BowlrpError(f"unknown GMM backend {self.gmm_backend!r}; choose one of {', '.join(GMM_BACKENDS)}")

    @classmethod
    def with_defaults(cls, encoder: str = "fisher", n_words: int | None = None, pca_dims: int | None = None,
                      **settings) -> "PipelineConfig":
        """A configuration with the family's usual sizes for ``encoder`` where a size is None:
        256 GMM components and PCA to 80 dimensions for Fisher vectors (Section 4.2), 128 words and
        no PCA for the BoW encoders (Section 2.4.3). ``pca_dims=0`` means no PCA."""
        fisher = encoder == "fisher"
        if n_words is None:
            n_words = 256 if fisher else 128
        if pca_dims is None:
            pca_dims = 80 if fisher else 0
        return cls(encoder=encoder, n_words=n_words, pca_dims=pca_dims or None, **settings)

    def to_json(self) -> dict:
        out = asdict(self)
        out["bin_sizes"] = list(self.bin_sizes)
        return out

    @classmethod
    def from_json(cls, meta: dict) -> "PipelineConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in meta.items() if k in known})


@dataclass
class Block:
    """One encoding block: the descriptors of some SIFT scales, projected and encoded."""

    scales: list[int]
    projection: PcaProjection | None
    encoder: FisherEncoder | RankBowEncoder | HardVqEncoder

    @property
    def vocabulary(self) -> GmmVocabulary | KMeansVocabulary:
        """The encoder's vocabulary (the encoder owns it, and stores it with its own state)."""
        return self.encoder.vocabulary

    def prepare(self, descriptors: DescriptorSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the encoder sees: ``(index into descriptors (n,), projected values (n, D), positions (n, 2))``.

        Shared by the forward encoding and its relevance step, so both see the same inputs.
        """
        index = np.flatnonzero(np.isin(descriptors.scales, self.scales))
        own = descriptors.subset(index)
        values = own.values if self.projection is None else self.projection.transform(own.values)
        return index, values, own.normalized_positions()

    def forward(self, descriptors: DescriptorSet) -> BlockForward:
        """The block's forward pass with what its relevance step reads back (the FV posteriors)."""
        index, values, positions = self.prepare(descriptors)
        kept = self.encoder.forward(values, positions)
        return BlockForward(index, values, positions, kept, self.encoder.vector(kept))

    def encode(self, descriptors: DescriptorSet) -> np.ndarray:
        """Image vector of this block, ``(encoder.dim,)`` float32."""
        return self.forward(descriptors).vector


@dataclass
class BlockForward:
    """One block's forward pass over one image's descriptors.

    Attributes
    ----------
    index : (n,) int64
        Which of the image's descriptors the block uses.
    values : (n, D) float32
        Those descriptors as the encoder sees them (after PCA).
    positions : (n, 2) float32
        Normalised positions.
    kept : FisherForward or (n_cells, K) ndarray
        The encoder's ``forward`` result: what its relevance step reads back (for Fisher vectors
        the posteriors and denominators; for BoW the pooled cells).
    vector : (encoder.dim,) float32
        The block's image vector.
    """

    index: np.ndarray
    values: np.ndarray
    positions: np.ndarray
    kept: FisherForward | np.ndarray
    vector: np.ndarray


@dataclass
class FeaturePipeline:
    """Image → feature vector: dense SIFT and one or more encoding blocks."""

    sift: DenseSift
    blocks: list[Block] = field(default_factory=list)

    @property
    def block_slices(self) -> list[slice]:
        out, start = [], 0
        for block in self.blocks:
            out.append(slice(start, start + block.encoder.dim))
            start += block.encoder.dim
        return out

    @property
    def dim(self) -> int:
        return sum(block.encoder.dim for block in self.blocks)

    @property
    def is_fisher(self) -> bool:
        """Whether every block encodes Fisher vectors (``depth="bins"``, descriptor replacement and the
        command line's ``--eps`` default need them)."""
        return all(isinstance(block.encoder, FisherEncoder) for block in self.blocks)

    def descriptors(self, image: np.ndarray) -> DescriptorSet:
        """Dense SIFT of an image; raises ImageError when it is too small for any descriptor."""
        found = self.sift.extract(image)
        if len(found) == 0:
            rows, cols = image.shape[:2]
            raise ImageError(f"image of {cols}x{rows} px is too small for one descriptor")
        return found

    def encode_descriptors(self, descriptors: DescriptorSet) -> np.ndarray:
        return np.concatenate([block.encode(descriptors) for block in self.blocks]).astype(np.float32)

    def encode_image(self, image: np.ndarray) -> np.ndarray:
        return self.encode_descriptors(self.descriptors(image))

    def encode_path(self, path: str | Path | np.ndarray) -> np.ndarray:
        """The vector of an image file (or of an image array, :func:`~bowlrp.data.images.image_of`)."""
        return self.encode_image(image_of(path))


# --- workers (module level so process and Dask backends can ship them) -------------------

ImageInput = Union[str, Path, np.ndarray]


def image_items(images: Sequence[ImageInput]) -> tuple[list[str | np.ndarray], list[str]]:
    """Images as the workers take them (a path as str, an array as is) and the name each has in a
    skip list: the path, or ``image <position>`` for an array."""
    items, names = [], []
    for i, image in enumerate(images):
        array = isinstance(image, np.ndarray)
        items.append(image if array else str(image))
        names.append(f"image {i}" if array else str(image))
    return items, names


def _sample_descriptors(path: str | np.ndarray, index: int, sift: DenseSift, groups: list[list[int]],
                        per_image: int, seed: int) -> list[np.ndarray]:
    found = sift.extract(image_of(path))
    if len(found) == 0:
        raise ImageError("image is too small for one descriptor")
    # One stream per image, keyed by its position in the training list: independent of worker count
    # and order, and of where the dataset lies on disk (a key from the path made the model differ
    # between two copies of the same data).
    rng = np.random.default_rng([seed, index])
    out = []
    for scales in groups:
        values = found.values[np.isin(found.scales, scales)]
        take = min(per_image, len(values))
        out.append(values[np.sort(rng.choice(len(values), size=take, replace=False))])
    return out


def _sample_worker(path: str | np.ndarray, name: str, index: int, sift: DenseSift, groups: list[list[int]],
                   per_image: int, seed: int) -> ItemResult:
    return guarded(_sample_descriptors, name, path, index, sift, groups, per_image, seed)


def _encode_worker(path: str | np.ndarray, name: str, features: FeaturePipeline) -> ItemResult:
    return guarded(features.encode_path, name, path)


def encode_files(features: FeaturePipeline, paths: Sequence[ImageInput], skips: SkipLog,
                 parallel: ParallelOptions | None = None, desc: str = "encoding") -> tuple[np.ndarray, np.ndarray]:
    """Feature vectors of many image files (or image arrays, :func:`~bowlrp.data.images.image_of`).

    Returns
    -------
    X : (n_ok, dim) float32
        Vectors of the files that worked, in input order.
    ok : (n,) bool
        Which input files are in ``X``; the others were recorded in ``skips``.
    """
    items, names = image_items(paths)
    results = parallel_map(_encode_worker, list(range(len(items))), lambda i: (items[i], names[i], features),
                           parallel, desc)
    ok = np.array([r.ok for r in results], dtype=bool)
    for res in results:
        if not res.ok:
            skips.add(res.item, res.skip_reason)
    X = np.stack([r.value for r in results if r.ok]) if ok.any() else np.zeros((0, features.dim), np.float32)
    return X, ok


def _make_block(config: PipelineConfig, scales: list[int], sample: np.ndarray, seed: int,
                show_progress: bool = False) -> Block:
    """Fit one block's projection and vocabulary on its descriptor sample ``(n, 128)``.

    For Fisher vectors the all-zero descriptors (dense SIFT's contrast cut zeroes flat patches:
    a fifth to two thirds of a photo's) are left out of both fits: they are one point, and a GMM
    fitted with them puts a component of almost no variance there, whose Fisher entries magnify
    rounding a thousandfold. They are still encoded, at one exactly rounded point
    (:meth:`PcaProjection.transform`), so their encoding does not depend on the projection's rounding.
    """
    words = config.n_words
    if config.encoder == "fisher":
        nonzero = sample[np.any(sample != 0, axis=1)]
        if len(nonzero) >= max(words, config.pca_dims or 0):
            sample = nonzero
    projection = None
    if config.pca_dims is not None and config.pca_dims < sample.shape[1]:
        with running(f"PCA to {config.pca_dims} dims ({len(sample)} descriptors)", show_progress):
            projection = PcaProjection(n_components=config.pca_dims, random_state=seed).fit(sample)
        sample = projection.transform(sample)
    pyramid = SpatialPyramid() if config.pyramid else None
    if config.encoder == "fisher":
        vocabulary = GmmVocabulary(n_components=words, random_state=seed, backend=config.gmm_backend)
        if config.gmm_backend == "bowlrp":  # its EM reports every iteration itself
            vocabulary.fit(sample, show_progress=show_progress)
        else:
            with running(f"GMM ({config.gmm_backend}, K={words}, {len(sample)} descriptors)", show_progress):
                vocabulary.fit(sample)
        encoder = FisherEncoder(vocabulary, pyramid=pyramid, normalization=config.fisher_normalization,
                                weight_gradient=config.weight_gradient)
    else:
        # scikit-learn's KMeans: its Lloyd steps were the fastest measured (benchmarks/bench_gmm.py, kmeans_fit)
        with running(f"k-means ({words} words, {len(sample)} descriptors)", show_progress):
            vocabulary = KMeansVocabulary(n_clusters=words, random_state=seed).fit(sample)
        if config.encoder == "rankbow":
            encoder = RankBowEncoder(vocabulary, p=config.rank_p, n=config.rank_n, pyramid=pyramid,
                                     pooling=config.pooling)
        else:
            encoder = HardVqEncoder(vocabulary, pyramid=pyramid, pooling=config.pooling)
    return Block(scales=scales, projection=projection, encoder=encoder)


def fit_features(config: PipelineConfig, paths: Sequence[ImageInput], skips: SkipLog,
                 parallel: ParallelOptions | None = None) -> FeaturePipeline:
    """Fit projections and vocabularies on a descriptor sample drawn from ``paths`` (image files or arrays)."""
    sift = DenseSift(bin_sizes=config.bin_sizes, step=config.step, backend=config.sift_backend,
                     max_rows=config.max_rows, orientation=config.sift_orientation)
    scales = list(range(len(config.bin_sizes)))
    groups = [[s] for s in scales] if config.per_scale else [scales]
    per_image = max(1, math.ceil(config.max_descriptors / max(1, len(paths))))
    show_progress = (parallel or ParallelOptions()).progress
    items, names = image_items(paths)
    results = parallel_map(_sample_worker, list(range(len(items))),
                           lambda i: (items[i], names[i], i, sift, groups, per_image, config.seed), parallel,
                           "sampling descriptors")
    samples: list[list[np.ndarray]] = [[] for _ in groups]
    for res in results:
        if not res.ok:
            skips.add(res.item, res.skip_reason)
            continue
        for g, values in enumerate(res.value):
            samples[g].append(values)
    blocks = []
    for g, group in enumerate(groups):
        sample = np.concatenate(samples[g]) if samples[g] else np.zeros((0, 128), np.float32)
        if len(sample) < config.n_words:
            raise BowlrpError(f"only {len(sample)} descriptors to fit a vocabulary of {config.n_words} words; "
                              "use more images or a smaller n_words")
        kind = f"a {config.n_words}-component GMM" if config.encoder == "fisher" else f"{config.n_words} k-means words"
        log.info("fitting %s (block %d of %d) on %d descriptors", kind, g + 1, len(groups), len(sample))
        blocks.append(_make_block(config, group, sample, config.seed + g, show_progress))
    return FeaturePipeline(sift=sift, blocks=blocks)


def make_svm_kernel(config: PipelineConfig, features: FeaturePipeline):
    """The SVM kernel: one kernel, or a sum of one kernel per block (Eq. 2.67)."""
    if len(features.blocks) == 1:
        return make_kernel(config.kernel)
    n = len(features.blocks)
    return KernelSum([make_kernel(config.kernel) for _ in range(n)], features.block_slices, [1.0 / n] * n)


@dataclass
class BowModel(Model):
    """A trained BoW / FV classifier: features, one SVM per class, and how it was made.

    The ``"bow"`` family of :class:`bowlrp.model.Model`: explained with :class:`~bowlrp.lrp.BowLrp`
    (an encoder rule, a bias option, a depth).
    """

    family = "bow"
    explains_uint8 = True  # 8-bit images explained as uint8: 4x less memory while a photo is explained
    model_files = (MODEL_JSON, ARRAYS_NPZ)

    config: PipelineConfig
    features: FeaturePipeline
    classifier: OneVsRestSvm
    class_names: list[str]
    training: dict = field(default_factory=dict)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Scores f(x), ``(n, n_classes)`` float64."""
        return self.classifier.decision_function(X)

    def score_files(self, paths: Sequence[str | Path], skips: SkipLog,
                    parallel: ParallelOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Class scores of image files: ``(n_ok, n_classes)`` and the ok mask over ``paths``."""
        X, ok = encode_files(self.features, paths, skips, parallel, desc="scoring")
        scores = self.decision_function(X) if len(X) else np.zeros((0, len(self.class_names)))
        return scores, ok

    def score_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if not len(images):
            return np.zeros((0, len(self.class_names)))
        return self.decision_function(np.stack([self.features.encode_image(image) for image in images]))

    def region_scorer(self, image: np.ndarray):
        """An incremental scorer of region fills for a Fisher-vector model whose dense SIFT can be
        patched on this image (upright, VLFeat, not shrunk); else None (full recomputation)."""
        from .analysis.region_fisher import IncrementalRegionScorer
        from .features.dsift_patch import patchable

        if self.variant != "fv" or not patchable(self.features.sift, np.shape(image)[:2]):
            return None
        return IncrementalRegionScorer(self, image)

    @property
    def variant(self) -> str:
        return "fv" if self.config.encoder == "fisher" else "bow"

    def explanation_method(self, rule: str = "epsilon", eps: float = 0.0, alpha: float = 2.0, bias: str = "keep",
                           depth: str = "descriptors", taylor: str | None = None,
                           path_tolerance: float | None = None) -> BowLrp:
        """LRP with the encoder-layer ``rule`` (``"epsilon"`` with stabiliser ``eps``, ``"alphabeta"``
        with ``alpha`` and beta = alpha - 1, or ``"absz"``), the SVM ``bias`` option and ``depth``.

        ``taylor`` (``"path"``, the default, or ``"first-order"``) and ``path_tolerance`` choose how an
        exp-chi2 / RBF machine is decomposed from its root point (:mod:`bowlrp.lrp.taylor`); a model
        decomposed exactly (linear, HIK, additive chi2) refuses them.
        """
        exact = self.is_exactly_decomposable
        if exact and (taylor is not None or path_tolerance is not None):
            raise BowlrpError(f"this model's {self.config.kernel} kernel is decomposed exactly; the Taylor options "
                              f"(taylor, path_tolerance) apply to chi2 and rbf models")
        if taylor == "first-order" and path_tolerance is not None:
            raise BowlrpError("path_tolerance applies to taylor 'path', not 'first-order'")
        return BowLrp(EncoderRule(rule, eps=eps, alpha=alpha), bias, depth,
                      None if exact else (taylor or DEFAULT_TAYLOR),
                      DEFAULT_PATH_TOLERANCE if path_tolerance is None else path_tolerance)

    @property
    def is_exactly_decomposable(self) -> bool:
        """True when every class' machine is decomposed exactly (no root point, no Taylor option)."""
        return all(is_exactly_decomposable(m) for m in self.classifier.estimators_)

    def explain(self, image: np.ndarray | None, class_name: str, method: BowLrp, forward=None) -> Explanation:
        """:func:`bowlrp.lrp.explain.explain_image` with ``method``; ``forward`` an
        :func:`~bowlrp.lrp.explain.forward_image` of the image shared by several classes."""
        return explain_image(self, image, class_name, rule=method.rule, bias=method.bias, depth=method.depth,
                             taylor=method.taylor or DEFAULT_TAYLOR, path_tolerance=method.path_tolerance,
                             forward=forward)

    # --- persistence: JSON + npz, no pickle ---------------------------------------------
    def save(self, directory: str | Path) -> None:
        meta: dict = {
            "kind": "bowlrp.BowModel",
            "config": self.config.to_json(),
            "class_names": list(self.class_names),
            "training": self.training,
            "versions": software_versions(),
        }
        arrays: dict[str, np.ndarray] = {}
        stage_meta, stage_arrays = self.features.sift.get_state()
        meta["sift"] = stage_meta
        arrays.update(prefixed("sift", stage_arrays))
        meta["blocks"] = []
        for b, block in enumerate(self.features.blocks):
            entry: dict = {"scales": block.scales}
            for name in ("projection", "encoder"):
                stage = getattr(block, name)
                if stage is None:
                    entry[name] = None
                    continue
                m, a = stage.get_state()
                entry[name] = m
                arrays.update(prefixed(f"block{b}/{name}", a))
            meta["blocks"].append(entry)
        m, a = self.classifier.get_state()
        meta["classifier"] = m
        arrays.update(prefixed("classifier", a))
        save_stages(directory, meta, arrays)
        self.source = Path(directory)

    @classmethod
    def load(cls, directory: str | Path) -> "BowModel":
        """The model saved in ``directory``, every field of ``model.json`` and every array checked first
        (:mod:`bowlrp.model_schema`): a model that loads predicts with what it says it holds."""
        directory = Path(directory)
        meta = read_stage_meta(directory)
        if meta.get("kind") != "bowlrp.BowModel":
            raise ModelError(f"{directory}: not a BoW/FV model (kind={meta.get('kind')!r})")
        checked, layout = check_bow_meta(meta, directory / MODEL_JSON, PipelineConfig().to_json())
        arrays = read_declared_arrays(directory, meta, layout.specs)
        check_bow_arrays(arrays, layout, directory / ARRAYS_NPZ)
        config = PipelineConfig.from_json(checked)
        sift = DenseSift.from_state(meta["sift"], unprefixed("sift", arrays))
        try:
            sift.fit()  # resolves the stored backend now: one line here, not one skip per image later
        except BowlrpError as exc:
            raise ModelError(f"{directory / MODEL_JSON}: field sift.params.backend: {exc}") from None
        blocks = []
        for b, entry in enumerate(meta["blocks"]):
            projection = None
            if entry["projection"] is not None:
                projection = PcaProjection.from_state(entry["projection"], unprefixed(f"block{b}/projection", arrays))
            encoder_cls = {"fisher": FisherEncoder, "rankbow": RankBowEncoder, "vq": HardVqEncoder}[config.encoder]
            encoder = encoder_cls.from_state(entry["encoder"], unprefixed(f"block{b}/encoder", arrays))
            blocks.append(Block(scales=list(entry["scales"]), projection=projection, encoder=encoder))
        classifier = OneVsRestSvm.from_state(meta["classifier"], unprefixed("classifier", arrays))
        model = cls(config=config, features=FeaturePipeline(sift, blocks), classifier=classifier,
                    class_names=list(meta["class_names"]), training=meta.get("training", {}))
        model.source = Path(directory)
        return model


def load_bow_model(directory: str | Path, device: str | None = None) -> BowModel:
    """The ``"bow"`` family's loader for :func:`bowlrp.model.load_model`."""
    require_cpu("BoW/FV", device)
    return BowModel.load(directory)


def software_versions() -> dict:
    """Versions recorded in every model and benchmark file."""
    import importlib.metadata as md

    out = {"bowlrp": __version__, "python": platform.python_version()}
    for dist in ("numpy", "scipy", "scikit-learn", "opencv-python-headless", "cyvlfeat", "numba"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out


def train_model(config: PipelineConfig, paths: Sequence[ImageInput], labels: np.ndarray,
                class_names: Sequence[str], skips: SkipLog,
                parallel: ParallelOptions | None = None) -> BowModel:
    """Fit the whole pipeline on labelled image files (or image arrays).

    Parameters
    ----------
    labels : (n, n_classes) int8 in {1, -1, 0}
        0 means "difficult": the image is left out of that class' training.

    A class without a positive or without a negative training image cannot have a classifier: it
    is left out of the model, with a note (a ``WARNING`` of the ``bowlrp.pipeline`` logger, in
    the CLI's words), before any expensive stage; the model's ``class_names`` are the others, and
    ``training["left_out"]`` names them. No usable class at all is an error.
    """
    labels = np.asarray(labels, dtype=np.int8)
    if labels.ndim != 2 or labels.shape != (len(paths), len(class_names)):
        raise BowlrpError(f"labels must be (n_images, n_classes) = ({len(paths)}, {len(class_names)}), "
                          f"got {labels.shape}")
    keep, note = trainable_classes(labels, list(class_names))
    if not keep:
        raise BowlrpError(f"no class can be trained: {note.rsplit(';', 1)[0]}")
    left_out = [name for c, name in enumerate(class_names) if c not in keep]
    if note:
        log.warning(note)
    labels, class_names = labels[:, keep], [class_names[c] for c in keep]
    vocab_skips = SkipLog(strict=skips.strict)
    features = fit_features(config, paths, vocab_skips, parallel)
    X, ok = encode_files(features, paths, skips, parallel, desc="encoding training images")
    if len(X) == 0:
        raise BowlrpError("no usable training image")
    kept, note = trainable_classes(labels[ok], class_names)  # skipped images may have held a class' only positives
    if note:
        if not kept:
            raise BowlrpError(f"no class can be trained on the usable images: {note.rsplit(';', 1)[0]}")
        log.warning(note)
        left_out += [name for c, name in enumerate(class_names) if c not in kept]
        labels, class_names = labels[:, kept], [class_names[c] for c in kept]
    classifier = OneVsRestSvm(kernel=make_svm_kernel(config, features), C=config.C, random_state=config.seed)
    classifier.fit(X, labels[ok], list(class_names), show_progress=(parallel or ParallelOptions()).progress)
    training = {"n_images": int(ok.sum()), "n_skipped": int((~ok).sum()), "feature_dim": int(features.dim)}
    if left_out:
        training["left_out"] = left_out
    return BowModel(config=config, features=features, classifier=classifier, class_names=list(class_names),
                    training=training)
