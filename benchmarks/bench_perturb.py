"""``perturb_regions_dnn``: the region perturbation curves of one 375 x 500 image (a VOC-size photo) for a
smallcnn network (random weights: the cost does not depend on them), MoRF and random orders, 2 repetitions,
100 steps of 9 x 9 regions: 400 perturbed images. Ours streams them to ``score_images`` in batches of 64;
the anchor is the same curve with one forward pass per step (``batch_size=1``), measured in the same run."""
from __future__ import annotations

import numpy as np
import torch

from .common import paired_median_seconds, record, voc_size_image


def run(repeats: int = 5) -> list[dict]:
    from bowlrp.analysis.region_perturbation import PerturbationConfig, map_order, perturbation_curves, \
        region_grid, region_sums
    from bowlrp.dnn import models
    from bowlrp.dnn.classifier import DnnClassifier

    torch.manual_seed(0)
    network = models.build("smallcnn", 20).eval()
    size, crop = models.INPUT_GEOMETRY["smallcnn"]
    network.meta = {"size": size, "crop": crop, "classes": [f"c{i}" for i in range(20)]}
    model = DnnClassifier(network)
    image = voc_size_image()
    ids, n = region_grid(image.shape[:2], 9)
    relevance = np.random.default_rng(0).normal(size=image.shape[:2])
    orders = {"morf": map_order(region_sums(relevance, ids, n)), "random": None}

    def curves(batch_size: int) -> dict:
        config = PerturbationConfig(steps=100, repetitions=2, batch_size=batch_size)
        return perturbation_curves(model, image, "c3", orders, config, np.random.default_rng(0))

    ours_s, anchor_s = paired_median_seconds(lambda: curves(64), lambda: curves(1), repeats)
    a, b = curves(64), curves(1)
    diff = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    return [record("perturb_regions_dnn", ours_s, "the same curves, one forward pass per step", anchor_s,
                   arch="smallcnn", image_shape=list(image.shape[:2]), region=9, steps=100, repetitions=2,
                   orders=list(orders), n_scored=2 * 2 * 100 + 1, batch_size=64, threads=torch.get_num_threads(),
                   max_abs_diff_vs_anchor=diff)]
