"""Region perturbation curves of a Fisher-vector model without re-running its pipeline per step
(dissertation Section 3.4 for the curves; Appendix C.2, Eqs. C.1-C.2 for the incremental encoding).

Step ``k`` of a curve fills one more pixel region. Upright dense SIFT is local, so only the
descriptors whose dependency footprint meets that region change
(:class:`~bowlrp.features.dsift_patch.PatchedSift` finds them and reads them back from per-pixel
SIFT planes it updates around the region), and a Fisher vector is a sum over descriptors before its
normalisation, so :class:`~bowlrp.analysis.descriptor_replacement.IncrementalFisher` swaps their old
contributions for the new ones. A step costs the plane updates and the moments of a few hundred to ~1,500 descriptors
(a 9 x 9 region, the default four scales) instead of extracting and encoding the whole image.

Used through :meth:`bowlrp.pipeline.BowModel.region_scorer`; images it cannot patch (shrunk to the
work image, dominant orientation, OpenCV backend) are scored by full recomputation instead.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numba
import numpy as np

from ..errors import BowlrpError, ImageError
from ..features.dsift import to_grey
from ..features.dsift_patch import DenseSiftPatcher, PatchedSift
from ..parallel import one_thread
from .descriptor_replacement import IncrementalFisher, step_scorer

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
        grey = to_grey(image)
        self.patcher = DenseSiftPatcher(model.features.sift, grey.shape)
        self.start_sift = PatchedSift.start(self.patcher, grey)
        # in fast mode the planes give every descriptor: no second extraction by VLFeat
        descriptors = self.start_sift.descriptors()
        if len(descriptors) == 0:
            raise ImageError(f"image of {grey.shape[1]}x{grey.shape[0]} px is too small for one descriptor")
        if len(descriptors) != self.patcher.n:
            raise BowlrpError("dense SIFT grid mismatch: the patcher and the extractor disagree")
        self.start = IncrementalFisher(model, descriptors)

    def scores(self) -> np.ndarray:
        """Class scores of the unchanged image, ``(n_classes,)`` float64 (from the sums already built)."""
        return np.asarray(self.model.decision_function(self.start.vector()[None])[0], dtype=np.float64)

    def curve(self, fill: np.ndarray, boxes: Sequence[Box], class_index: int | None = None) -> np.ndarray:
        """Scores after each fill: step ``i`` copies ``fill``'s pixels in ``boxes[i]`` into the image
        (cumulatively, from the unperturbed image).

        Parameters
        ----------
        fill : (H, W, 3) float in [0, 1]
            The fill image.
        boxes : sequence of (y0, y1, x0, x1)
            The region of each step.
        class_index : int, optional
            Score only this class (one SVM instead of all: a linear FV model reads ~1 MB of weights
            per class and step).

        Returns
        -------
        (len(boxes), n_classes) float64, or (len(boxes), 1) with ``class_index``.
        """
        # the sums and the image are sequential per curve: each curve starts from the unchanged image
        step_scorer(self.model, self.start, class_index)  # tracked once per class; copies carry the sums
        state, sift = self.start.copy(), self.start_sift.copy()
        score = step_scorer(self.model, state, class_index)
        fill_grey = to_grey(fill)
        out = np.empty((len(boxes), len(self.model.class_names) if class_index is None else 1))
        if not len(boxes):
            return out
        # the descriptors of step i + 1 need only the image, not step i's encoding: a second thread
        # fills and reads the planes one step ahead while this one encodes (both release the GIL)
        workers = min(2, numba.get_num_threads())
        with one_thread(), ThreadPoolExecutor(max(1, workers - 1)) as ahead:
            run = ahead.submit if workers > 1 else _now
            pending = run(sift.fill, fill_grey, boxes[0])
            for i in range(len(boxes)):
                which, values = pending.result()
                if i + 1 < len(boxes):
                    pending = run(sift.fill, fill_grey, boxes[i + 1])
                if len(which):
                    state.replace_raw(which, values)
                out[i] = score()
        return out


class _Done:
    """A finished call with the interface of a future (the sequential path of :meth:`curve`)."""

    def __init__(self, value) -> None:
        self.value = value

    def result(self):
        return self.value


def _now(func, *args) -> _Done:
    return _Done(func(*args))
