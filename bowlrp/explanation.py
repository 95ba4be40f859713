"""One image's explanation for one class, whatever the model family, and its per-image files.

The books close for every explanation: ``relevance.sum() + bias_relevance + absorbed + residual ==
score`` to float rounding. ``bias_relevance`` is the relevance a bias option left with the bias (or
a Taylor expansion's zero-order term), ``absorbed`` what the rules did not hand on (an epsilon
stabiliser's share, an alpha-beta imbalance, relevance a DNN rule leaves in biases), ``residual`` a
Taylor remainder (0 for exactly decomposed models).

Per image, :func:`write_outputs` writes ``<stem>.npz`` (:meth:`Explanation.arrays`, no pickle),
``<stem>.png`` (the map in the symmetric colour map) and ``<stem>_overlay.png`` (over the image).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .heatmap import colorize_bands, overlay_bands, write_png_bands
from .persistence import write_npz


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
        R_l of every local descriptor; empty for families without descriptors (DNNs).
    descriptor_frames : (N, 4) float32
        x, y, bin size, angle of every descriptor, original-image pixels; ``(0, 4)`` without.
    feature_relevance : (D,) float32
        R_d of every dimension of the image vector; empty where there is none.
    class_name : str
    settings : dict
        What the explanation used (the method's :meth:`~bowlrp.model.ExplanationMethod.settings`).
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
        total = self.relevance_sum() + self.bias_relevance + self.absorbed + self.residual
        return self.score - total

    def relevance_sum(self) -> float:
        """``sum R_p`` accumulated in float64 (without a float64 copy of the map)."""
        return float(np.sum(self.relevance, dtype=np.float64))

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the per-image ``.npz`` contract of ``bowlrp explain``."""
        return {
            "relevance": self.relevance.astype(np.float32, copy=False),  # no second full-size map
            "score": np.float64(self.score),
            "bias_relevance": np.float64(self.bias_relevance),
            "residual": np.float64(self.residual),
            "absorbed": np.float64(self.absorbed),
            "descriptor_relevance": self.descriptor_relevance.astype(np.float32),
            "descriptor_frames": self.descriptor_frames.astype(np.float32),
        }

    def save_npz(self, path: str | Path) -> None:
        """Write the arrays atomically as a pickle-free ``.npz`` (streamed into the file)."""
        write_npz(path, self.arrays())


    def summary(self) -> str:
        """The books in one line: score, summed relevance, bias, absorbed, residual."""
        return (f"f={self.score:+.4f}  sum R={self.relevance_sum():+.4f}  "
                f"bias={self.bias_relevance:+.4f}  absorbed={self.absorbed:+.4f}  residual={self.residual:+.2e}")


def write_outputs(explanation: Explanation, image: np.ndarray, out: str | Path, stem: str) -> None:
    """``out/<stem>.npz``, ``out/<stem>.png`` and ``out/<stem>_overlay.png`` of one explanation, each atomically.

    Each file is written a band of rows at a time: besides the map and the image, the memory used stays
    a few MB whatever the image size."""
    out = Path(out)
    explanation.save_npz(out / f"{stem}.npz")
    height, width = explanation.relevance.shape
    write_png_bands(out / f"{stem}.png", width, height, colorize_bands(explanation.relevance))
    write_png_bands(out / f"{stem}_overlay.png", width, height, overlay_bands(image, explanation.relevance))
