"""``dsift``: our multi-scale dense SIFT (4 scales, step 3) against cyvlfeat's ``dsift`` called
directly on the same grid with the same smoothing, on one 375 x 500 image."""
from __future__ import annotations

import numpy as np

from bowlrp.features import DenseSift
from bowlrp.features.dsift import phow_bound_min, to_grey, vl_imsmooth

from .common import paired_median_seconds, record, voc_size_image


def run(repeats: int = 5) -> list[dict]:
    from cyvlfeat.sift import dsift

    image = voc_size_image()
    sift = DenseSift(backend="vlfeat")
    sizes = [int(b) for b in sift.bin_sizes]

    def anchor() -> int:
        grey = to_grey(image)
        n = 0
        for size in sizes:
            smoothed = vl_imsmooth(grey, size / sift.magnif)
            bound = phow_bound_min(size, max(sizes))
            frames, _ = dsift(smoothed, step=sift.step, size=size, fast=True, norm=True, float_descriptors=True,
                              window_size=sift.window_size,
                              bounds=np.array([bound, bound, grey.shape[0] - 1, grey.shape[1] - 1]))
            n += len(frames)
        return n

    n_ours = len(sift.extract(image))
    assert n_ours == anchor(), "the anchor must compute the same grid"
    ours_s, anchor_s = paired_median_seconds(lambda: sift.extract(image), anchor, repeats)
    return [record("dsift", ours_s, "cyvlfeat.sift.dsift per scale", anchor_s,
                   n_descriptors=n_ours, image_shape=list(image.shape[:2]))]
