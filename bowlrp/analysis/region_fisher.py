"""Region perturbation curves of a Fisher-vector model without re-running its pipeline per step
(dissertation Section 3.4 for the curves; Appendix C.2, Eqs. C.1-C.2 for the incremental encoding).

Step ``k`` of a curve fills one more pixel region. Upright dense SIFT is local, so only the
descriptors whose dependency footprint meets that region change
(:class:`~bowlrp.features.dsift_patch.DenseSiftPatcher` finds and recomputes them on a crop), and a
Fisher vector is a sum over descriptors before its normalisation, so
:class:`~bowlrp.analysis.descriptor_replacement.IncrementalFisher` swaps their old contributions for
the new ones. A step costs the recomputation and two encodings of a few hundred to ~1,500
descriptors (a 9 x 9 region, the default four scales) instead of extracting and encoding the whole
image.

Used through :meth:`bowlrp.pipeline.BowModel.region_scorer`; images it cannot patch (shrunk to the
work image, dominant orientation, OpenCV backend) are scored by full recomputation instead.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import BowlrpError
from ..features.dsift import to_grey
from ..features.dsift_patch import DenseSiftPatcher
from ..parallel import one_thread
from .descriptor_replacement import IncrementalFisher

Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), half-open pixel ranges


class IncrementalRegionScorer:
    """Class scores of one image along region fills, updated step by step.

    Parameters
    ----------
    model : BowModel
        A Fisher-vector model whose dense SIFT is patchable for this image
        (:func:`~bowlrp.features.dsift_patch.patchable`).
    image : (H, W, 3) float in [0, 1]
        The unperturbed image; its descriptors and Fisher sums are computed once and shared by every curve.
    """

    def __init__(self, model, image: np.ndarray) -> None:
        self.model = model
        self.grey = to_grey(image)
        self.patcher = DenseSiftPatcher(model.features.sift, self.grey.shape)
        descriptors = model.features.descriptors(image)
        if len(descriptors) != self.patcher.n:
            raise BowlrpError("dense SIFT grid mismatch: the patcher and the extractor disagree")
        self.start = IncrementalFisher(model, descriptors)

    def curve(self, fill: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """Scores after each fill: step ``i`` copies ``fill``'s pixels in ``boxes[i]`` into the image
        (cumulatively, from the unperturbed image).

        Parameters
        ----------
        fill : (H, W, 3) float in [0, 1]
            The fill image.
        boxes : sequence of (y0, y1, x0, x1)
            The region of each step.

        Returns
        -------
        (len(boxes), n_classes) float64
        """
        state = self.start.copy()  # the sums are sequential per curve: each curve starts from the image
        grey, fill_grey = self.grey.copy(), to_grey(fill)
        out = np.empty((len(boxes), len(self.model.class_names)))
        with one_thread():  # many small steps: thread pools would cost more than they save
            for i, (y0, y1, x0, x1) in enumerate(boxes):
                grey[y0:y1, x0:x1] = fill_grey[y0:y1, x0:x1]
                touched = self.patcher.touched((y0, y1, x0, x1))
                if touched:
                    which = np.concatenate([self.patcher.indices(s, r, c) for s, r, c in touched])
                    values = np.concatenate([self.patcher.recompute(grey, s, r, c) for s, r, c in touched])
                    state.replace_raw(which, values)
                out[i] = self.model.decision_function(state.vector()[None])[0]
        return out
