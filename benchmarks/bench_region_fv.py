"""``perturb_regions_fv``: one full 100-step region perturbation curve (9 x 9 regions, MoRF order of the
LRP map, uniform fill; Section 3.4) on a 375 x 500 image with the K=256 FV model of ``explain_image``,
scored incrementally (:class:`bowlrp.analysis.region_fisher.IncrementalRegionScorer`: only the
descriptors a filled region touches are recomputed and re-encoded), against one ``explain_image`` of
the same image timed in alternation. ``naive_recompute_s`` is what scoring every perturbed image in
full costs (100 ``score_images`` calls, timed as one times 100)."""
from __future__ import annotations

import numpy as np

from bowlrp.analysis.region_perturbation import PerturbationConfig, map_order, perturbation_curves, region_grid, region_sums
from bowlrp.lrp import explain_image

from .bench_lrp import benchmark_model
from .common import median_seconds, paired_median_seconds, record, voc_size_image


def run(repeats: int = 3) -> list[dict]:
    model = benchmark_model()
    image = voc_size_image()
    config = PerturbationConfig(steps=100, repetitions=1)
    ids, n = region_grid(image.shape[:2], config.region)
    order = map_order(region_sums(explain_image(model, image, "cat").relevance, ids, n))
    assert model.region_scorer(image) is not None  # the incremental path, not the fallback

    def curve() -> np.ndarray:
        # includes the scorer's set-up: the base image's extraction and Fisher sums
        return perturbation_curves(model, image, "cat", {"lrp": order}, config, np.random.default_rng(0))["lrp"]

    ours_s, anchor_s = paired_median_seconds(curve, lambda: explain_image(model, image, "cat"), repeats)
    score_s = median_seconds(lambda: model.score_images([image]), repeats)
    return [record("perturb_regions_fv", ours_s, "explain_image (same image and model)", anchor_s,
                   image_shape=list(image.shape[:2]), steps=100, region=9, naive_recompute_s=100 * score_s)]
