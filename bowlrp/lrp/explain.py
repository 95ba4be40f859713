"""The whole backward pass for one image (Algorithm 2): f(x) → R_d → R_l → R_p.

Mirrors the forward pass of :mod:`bowlrp.pipeline` stage by stage::

    image ─DenseSift→ descriptors ─(PCA, encoder) per block→ x ─SVM→ f(x)
    R_p  ←pixels.py─  R_l         ←fisher.py / bow.py────── R_d ←svm.py / taylor.py─ f(x)

The books close as :mod:`bowlrp.explanation` says: ``bias_relevance`` is what the bias option left
with b (or the Taylor zero-order term), ``absorbed`` what the encoder rule did not hand on (eps
share, alpha-beta imbalance), ``residual`` the Taylor remainder (0 for sum-decomposable kernels).

:class:`BowLrp` is the family's :class:`~bowlrp.model.ExplanationMethod`: an encoder rule, a bias
option and a depth, recording only the parameters they use.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.images import read_image
from ..encoding import FisherEncoder
from ..encoding.bow import BowEncoder
from ..errors import BowlrpError
from ..explanation import Explanation
from .bow import bow_relevance
from .fisher import fisher_relevance
from .pixels import original_frames, pixel_relevance
from .projection import projection_relevance
from .rules import EncoderRule
from .svm import BIAS_MODES, explain_svm, is_exactly_decomposable
from .taylor import DEFAULT_PATH_TOLERANCE, DEFAULT_TAYLOR, check_taylor

DEPTHS = ("descriptors", "bins")
BINS_NEED_FV = "depth 'bins' needs a Fisher-vector model (Appendix D.1); use depth 'descriptors'"


@dataclass(frozen=True)
class BowLrp:
    """LRP for a BoW / FV model: the encoder-layer ``rule``, the SVM ``bias`` option
    (Eqs. 2.73, 2.74), the ``depth`` the map is resolved to (descriptors, or SIFT bins as in
    Appendix D.1) and, for kernels that need a root point (exp chi2, RBF), the ``taylor``
    decomposition (``"path"`` with its ``path_tolerance``, or ``"first-order"``; see
    :mod:`.taylor`). ``taylor=None`` marks a model decomposed exactly, which records no Taylor
    setting."""

    rule: EncoderRule = EncoderRule()
    bias: str = "keep"
    depth: str = "descriptors"
    taylor: str | None = DEFAULT_TAYLOR
    path_tolerance: float = DEFAULT_PATH_TOLERANCE

    def __post_init__(self) -> None:
        if self.bias not in BIAS_MODES:
            raise BowlrpError(f"unknown bias {self.bias!r}; choose one of {', '.join(BIAS_MODES)}")
        if self.depth not in DEPTHS:
            raise BowlrpError(f"unknown depth {self.depth!r}; choose one of {', '.join(DEPTHS)}")
        if self.taylor is not None:
            check_taylor(self.taylor, self.path_tolerance)

    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": "lrp", **self.rule.settings(), "bias": self.bias, "depth": self.depth}
        if self.taylor is not None:
            out["taylor"] = self.taylor
            if self.taylor == "path":
                out["path_tolerance"] = float(self.path_tolerance)
        return out

    def describe(self) -> str:
        taylor = {None: "", "path": ", path-integrated", "first-order": ", first-order Taylor"}[self.taylor]
        return f"{self.rule.describe()}, bias {self.bias}{taylor}" + (", per SIFT bin" if self.depth == "bins" else "")


@functools.singledispatch
def encoder_relevance(encoder, values: np.ndarray, positions: np.ndarray, relevance: np.ndarray,
                      rule: EncoderRule, per_dimension: bool, forward) -> tuple[np.ndarray, float]:
    """The encoder layer's backward step for any encoder type: ``(R_l, absorbed)``.

    One registration per encoder type (:func:`functools.singledispatch`), so a new encoder brings
    its relevance step without touching :func:`explain_image`.
    """
    raise BowlrpError(f"no relevance step for encoder {type(encoder).__name__}")


@encoder_relevance.register
def _(encoder: FisherEncoder, values, positions, relevance, rule, per_dimension, forward):
    return fisher_relevance(encoder, values, positions, relevance, rule, per_dimension=per_dimension,
                            forward=forward)


@encoder_relevance.register
def _(encoder: BowEncoder, values, positions, relevance, rule, per_dimension, forward):
    if per_dimension:
        raise BowlrpError(BINS_NEED_FV)
    return bow_relevance(encoder, values, positions, relevance, rule)


@dataclass(frozen=True)
class ImageForward:
    """One image's forward pass through a BoW/FV model's features, which every class' backward pass reads:
    its descriptors, each block's forward state (projected descriptors, posteriors) and the feature vector ``x``."""

    descriptors: Any
    blocks: list
    x: np.ndarray


def forward_image(model, image: np.ndarray) -> ImageForward:
    """The forward pass of ``image`` (as :func:`explain_image` takes it), to explain several classes from."""
    descriptors = model.features.descriptors(image)
    blocks = [block.forward(descriptors) for block in model.features.blocks]
    return ImageForward(descriptors, blocks, np.concatenate([f.vector for f in blocks]).astype(np.float32))


def explain_image(model, image: np.ndarray | None, class_name: str, rule: EncoderRule | None = None, bias: str = "keep",
                  depth: str = "descriptors", reference: np.ndarray | None = None, taylor: str = DEFAULT_TAYLOR,
                  path_tolerance: float = DEFAULT_PATH_TOLERANCE, forward: ImageForward | None = None) -> Explanation:
    """Explain ``model``'s score for ``class_name`` on one image.

    Parameters
    ----------
    model : BowModel
    image : (H, W, 3) or (H, W) float, or uint8
        As :func:`bowlrp.data.load_image` or :func:`bowlrp.data.images.read_image` returns it.
    class_name : str
        One of ``model.class_names``.
    rule : EncoderRule
        Encoder-layer rule (default: epsilon with eps = 0, which conserves exactly).
    bias : {"keep", "uniform", "weighted"}
    depth : {"descriptors", "bins"}
        ``"descriptors"``: each descriptor's relevance flat over its support. ``"bins"`` (Fisher-vector
        models, Appendix D.1): relevance per descriptor dimension (Eq. D.3), through the PCA (the
        same rule), per SIFT dimension, then flat over each of the 16 spatial bins' supports.
    reference : (M, D) float, optional
        Root-point candidates for non-decomposable kernels (default: the machine's support vectors).
    taylor : {"path", "first-order"}
        Non-decomposable kernels (exp chi2, RBF): the gradient integrated from the root point to x
        until ``|residual| <= path_tolerance · |f(x)|`` (default), or the first-order expansion at
        the root point (Eq. 2.76). Ignored, and not recorded, for exactly decomposed models.
    forward : ImageForward, optional
        The image's :func:`forward_image`, when several classes of one image are explained (``image`` is then
        not read); by default computed here and freed before the map is drawn.
    """
    machine = model.classifier.estimators_[model.class_index(class_name)]
    exact = is_exactly_decomposable(machine)
    method = BowLrp(rule or EncoderRule(), bias, depth, None if exact else taylor, path_tolerance)
    features = model.features
    by_bins = depth == "bins"
    if by_bins and not features.is_fisher:
        raise BowlrpError(BINS_NEED_FV)  # before the expensive part, not after it
    passed = forward if forward is not None else forward_image(model, image)  # kept for the backward steps
    descriptors, forward, x = passed.descriptors, passed.blocks, passed.x
    passed = None
    taylor_options = {} if exact else {"method": taylor, "path_tolerance": path_tolerance}
    svm = explain_svm(machine, x, bias=bias, reference=reference, **taylor_options)

    R_l = np.zeros((len(descriptors), descriptors.values.shape[1]) if by_bins else len(descriptors))
    absorbed = 0.0
    for block, span, f in zip(features.blocks, features.block_slices, forward):
        r, a = encoder_relevance(block.encoder, f.values, f.positions, svm.relevance[span], method.rule, by_bins,
                                 f.kept)
        if by_bins and block.projection is not None:
            r, a_pca = projection_relevance(block.projection, descriptors.values[f.index], r, method.rule)
            a += a_pca
        R_l[f.index] += r
        absorbed += a
    # the forward passes (projected descriptors, posteriors: ~150 MB for a 480-row image) are done
    # with; freed before the full-size map is made, so the two never add up
    forward = r = None
    # and so are the descriptor values (~50 MB): the map needs only where the descriptors lie
    descriptors = dataclasses.replace(descriptors, values=np.empty((len(descriptors), 0), np.float32))
    relevance = pixel_relevance(descriptors, R_l, dtype=np.float32)  # the map's only full-size array
    if by_bins:
        R_l = R_l.sum(axis=1)
    return Explanation(
        relevance=relevance, score=svm.score, bias_relevance=svm.bias_relevance,
        absorbed=absorbed, residual=svm.residual, descriptor_relevance=R_l.astype(np.float32),
        descriptor_frames=original_frames(descriptors), feature_relevance=svm.relevance.astype(np.float32),
        class_name=class_name, settings=method.settings())


def explain_path(model, path: str | Path, class_name: str, **options) -> Explanation:
    """:func:`explain_image` of an image file."""
    return explain_image(model, read_image(path), class_name, **options)
