"""``dnn_lrp``: our LRP (thesis composite epsilon-alpha2beta1-flat) for VGG-16 on one 224 x 224 image,
against zennit's ``EpsilonAlpha2Beta1Flat`` (same rules, same canonizer-free model) and against a plain
forward + backward pass (gradient of the class score with respect to the input and all parameters)."""
from __future__ import annotations

import torch

from .common import median_seconds, record


def run(repeats: int = 5, size: int = 224, arch: str = "vgg16") -> list[dict]:
    from bowlrp.dnn import models
    from bowlrp.dnn.attribution import attribute
    from bowlrp.dnn.lrp.zennit_compat import import_zennit

    zennit = import_zennit()
    torch.manual_seed(0)
    model = models.build(arch, 20).eval()
    x = torch.randn(1, 3, size, size)
    target = 3

    def ours():
        return attribute(model, x, target)[0]

    def theirs():
        composite = zennit.composites.EpsilonAlpha2Beta1Flat(epsilon=0.01)
        with zennit.attribution.Gradient(model=model, composite=composite) as attributor:
            out = model(x)
            start = torch.zeros_like(out)
            start[:, target] = out[:, target]
            return attributor(x, start)[1]

    def plain():
        xr = x.clone().requires_grad_(True)
        model.zero_grad(set_to_none=True)
        model(xr)[:, target].sum().backward()
        return xr.grad

    diff = float((ours() - theirs()).abs().max() / theirs().abs().max())
    ours_s = median_seconds(ours, repeats)
    zennit_s = median_seconds(theirs, repeats)
    plain_s = median_seconds(plain, repeats)
    model.zero_grad(set_to_none=True)
    extra = {"arch": arch, "input": [1, 3, size, size], "composite": "epsilon-alpha2beta1-flat",
             "threads": torch.get_num_threads(), "max_abs_diff_vs_zennit_rel": diff,
             "zennit": getattr(zennit, "__version__", None) or _dist_version("zennit")}
    return [record("dnn_lrp_vs_zennit", ours_s, "zennit EpsilonAlpha2Beta1Flat", zennit_s, **extra),
            record("dnn_lrp_vs_fwd_bwd", ours_s, "plain forward + backward (input and parameter gradients)",
                   plain_s, **extra)]


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
