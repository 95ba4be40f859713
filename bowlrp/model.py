"""The one interface every model family implements, and the registry that opens model directories.

Everything above the numeric core — scoring a split, per-image heatmap files, resumable relevance
stores, and the analyses built on them (:mod:`bowlrp.runs`) — talks to a model only through
:class:`Model`, so the BoW / Fisher-vector pipeline (:class:`bowlrp.pipeline.BowModel`), the PyTorch
networks (:class:`bowlrp.dnn.classifier.DnnClassifier`) and any third family are run, explained and
compared by the same code. A family provides:

* ``class_names``, :meth:`Model.score_files` and :meth:`Model.score_images`: class scores ``f(x)``
  of image files and of images in memory (what perturbation analyses feed in);
* :meth:`Model.explanation_method`: its options (rule, composite, ...) checked and turned into an
  :class:`ExplanationMethod`, which knows the settings it uses — and only those — for the record;
* :meth:`Model.explain`: one image, one class, one :class:`~bowlrp.explanation.Explanation` (the map
  in original image coordinates, the score, and the books: bias, absorbed, residual);
* ``source`` and ``model_files``: which files :meth:`Model.digest` pins a store to.

Model directories are opened with :func:`load_model`, which asks every registered family
(:func:`register_family`) whether it recognises the directory's ``model.json``.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import zipfile
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, Sequence, Union

import numpy as np

from .errors import BowlrpError, ModelError, SkipLog
from .persistence import MODEL_JSON

if TYPE_CHECKING:  # annotations only: the interface does not depend on the run machinery
    from .explanation import Explanation
    from .parallel import ParallelOptions


class ExplanationMethod(Protocol):
    """How a family explains: built by :meth:`Model.explanation_method`, immutable and picklable."""

    def settings(self) -> dict[str, Any]:
        """The parameters this explanation uses, and no other (str, int, float or bool values)."""

    def describe(self) -> str:
        """A short human-readable name, e.g. ``"epsilon (eps=1)"``."""


class Model(ABC):
    """What the run layer needs of a trained classifier; see the module docstring."""

    family: ClassVar[str]
    model_files: ClassVar[tuple[str, ...]]
    scoring_note: ClassVar[str] = ""  # how images are scored, when it matters to a reader ("centre crop")
    #: whether :meth:`explain` also takes 8-bit images as ``uint8`` (values ``k / 255``, as
    #: :func:`bowlrp.data.images.read_image` gives them: a quarter of float32's memory); a family that
    #: does not say so is given float images in [0, 1], as :func:`bowlrp.data.load_image` reads them
    explains_uint8: ClassVar[bool] = False
    class_names: list[str]
    source: Path | None = None  # the directory the model was loaded from or saved to

    @property
    def variant(self) -> str:
        """A short name of the kind of model within its family, for tables (``"fv"``, ``"bow"``,
        ``"dnn"``); the family's name unless the family says more."""
        return self.family

    @abstractmethod
    def score_files(self, paths: Sequence[str | Path], skips: SkipLog,
                    parallel: ParallelOptions | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Class scores of image files.

        Returns
        -------
        scores : (n_ok, n_classes) float
            One row per file that could be scored, in input order.
        ok : (n,) bool
            Which files have a row; the others were recorded in ``skips``.
        """

    @abstractmethod
    def score_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Class scores ``(n, n_classes)`` float64 of images ``(H, W, 3)`` in [0, 1] held in memory
        (families that can batch do so)."""

    def region_scorer(self, image: np.ndarray):
        """An object scoring region fills of ``image`` faster than :meth:`score_images` of every
        perturbed copy, or None (the default: region perturbation then scores full images in
        batches). It has ``curve(fill, boxes, class_index=None) -> (len(boxes), n_classes)``, the
        scores after each cumulative fill of ``fill``'s pixels in box ``(y0, y1, x0, x1)``, equal to
        scoring the perturbed images (one column with ``class_index``), and ``scores() -> (n_classes,)`` of the unchanged image (see
        :class:`bowlrp.analysis.region_fisher.IncrementalRegionScorer`)."""
        return None

    @abstractmethod
    def explanation_method(self, **options: Any) -> ExplanationMethod:
        """The family's explanation for keyword ``options`` (unset ones take the family's defaults);
        raises :class:`BowlrpError` for a bad value."""

    @abstractmethod
    def explain(self, image: np.ndarray, class_name: str, method: ExplanationMethod) -> Explanation:
        """Explain the score of ``class_name`` on ``image`` ``(H, W, 3)`` or ``(H, W)`` in [0, 1]
        (or ``uint8``, for a family with :attr:`explains_uint8`)."""

    def class_index(self, class_name: str) -> int:
        """Position of ``class_name`` in :attr:`class_names`; a one-line error naming the known ones."""
        try:
            return self.class_names.index(class_name)
        except ValueError:
            raise BowlrpError(f"unknown class {class_name!r}; the model knows {', '.join(self.class_names)}") \
                from None

    def digest(self) -> str:
        """SHA-256 over the model's files: which model a relevance store was made with."""
        if self.source is None:
            raise ModelError("the model has no directory yet; save it before writing a store")
        return files_digest(self.source, self.model_files)


def files_digest(directory: str | Path, files: Sequence[str]) -> str:
    """SHA-256 over ``files`` of ``directory``, in the given order."""
    digest = hashlib.sha256()
    for name in files:
        digest.update((Path(directory) / name).read_bytes())
    return digest.hexdigest()


def method_for(model: Model, options: dict[str, Any]) -> ExplanationMethod:
    """``model.explanation_method(**options)``, with a one-line error for an option the family does not take."""
    signature = inspect.signature(model.explanation_method)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = [name for name in options if name not in signature.parameters]
    if unknown and not takes_any:
        known = [name for name, p in signature.parameters.items() if p.kind is p.KEYWORD_ONLY
                 or p.kind is p.POSITIONAL_OR_KEYWORD]
        raise BowlrpError(f"a {model.family} model does not take {', '.join(map(repr, unknown))}; its explanation "
                          f"options are {', '.join(known) or 'none'}")
    return model.explanation_method(**options)


# --- families ---------------------------------------------------------------------------------

Loader = Union[Callable[..., Model], str]


@dataclass(frozen=True)
class Family:
    """A model family: which ``model.json`` it recognises and how it loads the directory.

    ``loader(directory, device)`` returns a :class:`Model`; it may be given as ``"module:function"``
    so that the built-in families are imported only when a model of theirs is opened (the DNN family
    imports torch).
    """

    name: str
    recognises: Callable[[dict], bool]
    loader: Loader

    def load(self, directory: Path, device: str | None) -> Model:
        loader = self.loader
        if isinstance(loader, str):
            module, _, attr = loader.partition(":")
            loader = getattr(importlib.import_module(module), attr)
        return loader(directory, device)


_FAMILIES: dict[str, Family] = {}


def register_family(name: str, recognises: Callable[[dict], bool], loader: Loader) -> Family:
    """Make :func:`load_model` open the directories whose ``model.json`` ``recognises`` accepts.

    Registering a name again replaces the earlier family (so a re-imported plug-in does not pile up).
    """
    family = Family(name, recognises, loader)
    _FAMILIES[name] = family
    return family


def unregister_family(name: str) -> None:
    _FAMILIES.pop(name, None)


def read_model_json(directory: str | Path) -> dict:
    path = Path(directory) / MODEL_JSON
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{directory}: not a model directory (no {MODEL_JSON})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{path}: not a JSON object")
    return meta


def read_image_for(model: Model, path: str | Path) -> np.ndarray:
    """The image file ``path`` as ``model.explain`` takes it: ``uint8`` where the family says it can
    (:attr:`Model.explains_uint8`), else float32 in [0, 1]."""
    from .data.images import load_image, read_image

    return read_image(path) if model.explains_uint8 else load_image(path)


def load_model(directory: str | Path, device: str | None = None) -> Model:
    """Open the model saved in ``directory``, whatever its family.

    ``device`` is for families that compute on one (``"cpu"``, ``"cuda"``, ``"cuda:1"``); the others
    accept only None or ``"cpu"``.
    """
    directory = Path(directory)
    family = _family_of(directory, read_model_json(directory))
    try:
        model = family.load(directory, device)
    except (BowlrpError, MemoryError, ImportError):
        raise
    except (ArithmeticError, AttributeError, EOFError, KeyError, LookupError, OSError, RuntimeError,
            TypeError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        # what reading a damaged or hand-edited file raises deep in a loader (a JSON field of the
        # wrong type, a cut or bit-flipped archive): one line naming the model, not KeyError: 'blocks'
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        raise ModelError(f"{directory}: damaged {family.name} model files, or not written by bowlrp "
                         f"({detail})") from exc
    model.source = directory
    return model


def family_of(directory: str | Path) -> str:
    """The name of the family whose model is saved in ``directory``, read from its ``model.json`` alone
    (nothing of the family is imported: telling a network from a BoW/FV model does not load PyTorch)."""
    return _family_of(Path(directory), read_model_json(directory)).name


def _family_of(directory: Path, meta: dict) -> Family:
    for family in _FAMILIES.values():
        if family.recognises(meta):
            return family
    raise ModelError(f"{directory / MODEL_JSON}: not a model of a known family ({', '.join(_FAMILIES)})")


def require_cpu(family: str, device: str | None) -> None:
    """For loaders of families that compute on the CPU only."""
    if device not in (None, "cpu"):
        raise BowlrpError(f"{family} models run on the CPU; device {device!r} does not apply")


register_family("bow", lambda meta: meta.get("kind") == "bowlrp.BowModel", "bowlrp.pipeline:load_bow_model")
register_family("dnn", lambda meta: meta.get("format") == "bowlrp.dnn", "bowlrp.dnn.classifier:load_dnn_classifier")
