"""The whole backward pass for one image (Algorithm 2): f(x) → R_d → R_l → R_p.

Mirrors the forward pass of :mod:`bowlrp.pipeline` stage by stage::

    image ─DenseSift→ descriptors ─(PCA, encoder) per block→ x ─SVM→ f(x)
    R_p  ←pixels.py─  R_l         ←fisher.py / bow.py────── R_d ←svm.py / taylor.py─ f(x)

Bookkeeping, for every explanation: ``relevance.sum() + bias_relevance + absorbed + residual = score``
(to float rounding): ``bias_relevance`` is what the bias option left with b (or the Taylor
zero-order term), ``absorbed`` what the encoder rule did not hand on (eps share, alpha-beta
imbalance), ``residual`` the Taylor remainder (0 for sum-decomposable kernels).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.images import load_image
from ..encoding import FisherEncoder
from ..errors import BowlrpError
from ..persistence import atomic_write_bytes, npz_bytes
from .bow import bow_relevance
from .fisher import fisher_relevance
from .pixels import original_frames, pixel_relevance
from .projection import projection_relevance
from .rules import EncoderRule
from .svm import explain_svm

DEPTHS = ("descriptors", "bins")


@dataclass
class Explanation:
    """Relevance of one image for one class.

    Attributes
    ----------
    relevance : (H, W) float32
        Pixel relevance in the original image's coordinates.
    score : float
        f(x).
    bias_relevance, absorbed, residual : float
        See the module docstring.
    descriptor_relevance : (N,) float32
        R_l of every descriptor.
    descriptor_frames : (N, 4) float32
        x, y, bin size, angle of every descriptor, original-image pixels.
    feature_relevance : (D,) float32
        R_d of every feature dimension.
    class_name : str
    settings : dict
        EncoderRule, bias option and depth used.
    """

    relevance: np.ndarray
    score: float
    bias_relevance: float
    absorbed: float
    residual: float
    descriptor_relevance: np.ndarray
    descriptor_frames: np.ndarray
    feature_relevance: np.ndarray
    class_name: str
    settings: dict = field(default_factory=dict)

    @property
    def conservation_error(self) -> float:
        """``score - (sum R_p + bias_relevance + absorbed + residual)``: rounding only."""
        total = float(self.relevance.astype(np.float64).sum()) + self.bias_relevance + self.absorbed + self.residual
        return self.score - total

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the per-image ``.npz`` contract of ``bowlrp explain``."""
        return {
            "relevance": self.relevance.astype(np.float32),
            "score": np.float64(self.score),
            "bias_relevance": np.float64(self.bias_relevance),
            "residual": np.float64(self.residual),
            "absorbed": np.float64(self.absorbed),
            "descriptor_relevance": self.descriptor_relevance.astype(np.float32),
            "descriptor_frames": self.descriptor_frames.astype(np.float32),
        }

    def save_npz(self, path: str | Path) -> None:
        """Write the arrays atomically as a pickle-free ``.npz``."""
        atomic_write_bytes(path, npz_bytes(self.arrays()))


def explain_image(model, image: np.ndarray, class_name: str, rule: EncoderRule | None = None, bias: str = "keep",
                  depth: str = "descriptors", reference: np.ndarray | None = None) -> Explanation:
    """Explain ``model``'s score for ``class_name`` on one image.

    Parameters
    ----------
    model : BowModel
    image : (H, W, 3) or (H, W) float
        As :func:`bowlrp.data.load_image` returns it.
    class_name : str
        One of ``model.class_names``.
    rule : EncoderRule
        Encoder-layer rule (default: epsilon with eps = 0).
    bias : {"keep", "uniform", "weighted"}
    depth : {"descriptors", "bins"}
        ``"descriptors"``: each descriptor's relevance flat over its support. ``"bins"`` (Fisher-vector
        models, Appendix D.1): relevance per descriptor dimension (Eq. D.3), through the PCA (the
        same rule), per SIFT dimension, then flat over each of the 16 spatial bins' supports.
    reference : (M, D) float, optional
        Root-point candidates for non-decomposable kernels (default: the machine's support vectors).
    """
    rule = rule or EncoderRule()
    if depth not in DEPTHS:
        raise BowlrpError(f"unknown depth {depth!r}; choose one of {', '.join(DEPTHS)}")
    if class_name not in model.class_names:
        raise BowlrpError(f"unknown class {class_name!r}; the model knows {', '.join(model.class_names)}")
    machine = model.classifier.estimators_[model.class_names.index(class_name)]
    features = model.features
    by_bins = depth == "bins"
    if by_bins and not all(isinstance(b.encoder, FisherEncoder) for b in features.blocks):
        raise BowlrpError("depth 'bins' needs a Fisher-vector model (Appendix D.1); use depth 'descriptors'")
    descriptors = features.descriptors(image)
    forward = [block.forward(descriptors) for block in features.blocks]  # kept for the backward steps
    x = np.concatenate([f.vector for f in forward]).astype(np.float32)
    svm = explain_svm(machine, x, bias=bias, reference=reference)

    R_l = np.zeros((len(descriptors), descriptors.values.shape[1]) if by_bins else len(descriptors))
    absorbed = 0.0
    for block, span, f in zip(features.blocks, features.block_slices, forward):
        R_block = svm.relevance[span]
        if isinstance(block.encoder, FisherEncoder):
            r, a = fisher_relevance(block.encoder, f.values, f.positions, R_block, rule, per_dimension=by_bins,
                                    forward=f.kept)
            if by_bins and block.projection is not None:
                r, a_pca = projection_relevance(block.projection, descriptors.values[f.index], r, rule)
                a += a_pca
        else:
            r, a = bow_relevance(block.encoder, f.values, f.positions, R_block, rule)
        R_l[f.index] += r
        absorbed += a
    relevance = pixel_relevance(descriptors, R_l)
    if by_bins:
        R_l = R_l.sum(axis=1)
    return Explanation(
        relevance=relevance.astype(np.float32), score=svm.score, bias_relevance=svm.bias_relevance,
        absorbed=absorbed, residual=svm.residual, descriptor_relevance=R_l.astype(np.float32),
        descriptor_frames=original_frames(descriptors), feature_relevance=svm.relevance.astype(np.float32),
        class_name=class_name,
        settings={"rule": rule.name, "eps": rule.eps, "alpha": rule.alpha, "bias": bias, "depth": depth},
    )


def explain_path(model, path: str | Path, class_name: str, **options) -> Explanation:
    """:func:`explain_image` of an image file."""
    return explain_image(model, load_image(path), class_name, **options)
