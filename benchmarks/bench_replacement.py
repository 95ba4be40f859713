"""``perturb_descriptors_fv``: one 100-step descriptor-replacement curve (Appendix C.2, 10,000
descriptors in batches of 100) on a 375 x 500 image with the K=256 FV model of ``explain_image``,
against one ``explain_image`` of the same image timed in alternation. ``naive_recompute_s`` is what
re-encoding the whole image at every step would cost (100 encodings, timed as one times 100)."""
from __future__ import annotations

import numpy as np

from bowlrp.analysis.descriptor_replacement import replacement_curves
from bowlrp.lrp import explain_image

from .bench_lrp import benchmark_model
from .common import median_seconds, paired_median_seconds, record, voc_size_image


def run(repeats: int = 5) -> list[dict]:
    model = benchmark_model()
    image = voc_size_image()
    descriptors = model.features.descriptors(image)
    relevance = explain_image(model, image, "cat").descriptor_relevance

    def curve() -> np.ndarray:
        return replacement_curves(model, descriptors, "cat", {"lrp": relevance}, steps=100, batch=100, repeats=1)["lrp"]

    ours_s, anchor_s = paired_median_seconds(curve, lambda: explain_image(model, image, "cat"), repeats)
    encode_s = median_seconds(lambda: model.features.encode_descriptors(descriptors), repeats)
    return [record("perturb_descriptors_fv", ours_s, "explain_image (same image and model)", anchor_s,
                   n_descriptors=len(descriptors), steps=100, batch=100, naive_recompute_s=100 * encode_s)]
