"""Shared fixtures.

VLFeat is the independent reference for dense SIFT and Fisher vectors. Where a test needs it,
it asks for :func:`require_cyvlfeat`: on a developer machine without libvlfeat the test is
skipped with a reason, but with ``BOWLRP_REQUIRE_VLFEAT=1`` (set by ``.ci/run``) a missing
cyvlfeat is a failure, so CI can never pass by skipping the reference checks.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bowlrp.data.synth import generate_toyvoc


def require_cyvlfeat(module: str = "cyvlfeat"):
    """Import a cyvlfeat module, or skip (fail under BOWLRP_REQUIRE_VLFEAT=1) when it is missing."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        if os.environ.get("BOWLRP_REQUIRE_VLFEAT") == "1":
            pytest.fail(f"cyvlfeat is required here (BOWLRP_REQUIRE_VLFEAT=1) but cannot be imported: {exc}")
        pytest.skip(f"cyvlfeat not installed ({exc}); the VLFeat reference checks need it",
                    allow_module_level=True)


def entity_bomb(levels: int, body: str) -> str:
    """A "billion laughs" VOC annotation: ``&lol<levels>;`` in ``body`` expands to 10**(levels - 1) "lol"s."""
    chain = "".join(f' <!ENTITY lol{i} "' + f"&lol{i - 1};" * 10 + '">\n' for i in range(2, levels + 1))
    return f'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol1 "lol">\n{chain}]>\n{body}\n'


@pytest.fixture(scope="session")
def small_toyvoc(tmp_path_factory) -> Path:
    """The small toyvoc set (80 images, 160 px, all 20 classes in both splits), generated once per test session."""
    return generate_toyvoc(tmp_path_factory.mktemp("toyvoc-small") / "toyvoc", seed=0, size="small")


@pytest.fixture(scope="session")
def small_toyfaces(tmp_path_factory) -> Path:
    """The small toyfaces set (Adience layout, both alignments, region sidecar), generated once per session."""
    from bowlrp.data.synth import generate_toyfaces

    return generate_toyfaces(tmp_path_factory.mktemp("toyfaces-small") / "toyfaces", seed=0, size="small")


@pytest.fixture(scope="session")
def small_faces_study(small_toyfaces, tmp_path_factory) -> Path:
    """One uninterrupted small faces study (``bowlrp faces study --size small``) of the small toyfaces set
    (about 45 s on 2 cores, 10 s of it the FV model), shared by the faces study test and, copied into the
    quick study's ``faces/``, the report's faces section."""
    import io

    from bowlrp.faces.study import run_faces_study

    out = tmp_path_factory.mktemp("faces-study") / "small"
    run_faces_study(small_toyfaces, out, size="small", stream=io.StringIO())
    return out


@pytest.fixture(scope="session")
def quick_study(small_toyvoc, small_faces_study, tmp_path_factory) -> Path:
    """One uninterrupted quick study (``bowlrp study --size quick``) of the small toyvoc set, with the small
    faces study in its ``faces/`` folder (as ``make demo`` writes it) and its report, shared by the study,
    report and browser tests (about a minute on 2 cores)."""
    import shutil

    from bowlrp.study import run_study

    out = tmp_path_factory.mktemp("study") / "quick"
    shutil.copytree(small_faces_study, out / "faces")
    run_study(small_toyvoc, out, size="quick", progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_fv_model(small_toyvoc, tmp_path_factory) -> Path:
    """A Fisher-vector model of 4 Gaussians for horse and boat on the small toyvoc set (a few seconds),
    for tests that need some saved model rather than a good one."""
    import numpy as np

    from bowlrp.data import open_dataset
    from bowlrp.errors import SkipLog
    from bowlrp.parallel import ParallelOptions
    from bowlrp.pipeline import PipelineConfig, train_model

    train = open_dataset(small_toyvoc, classes=["horse", "boat"]).split("trainval")
    model = train_model(PipelineConfig(encoder="fisher", kernel="linear", n_words=4, max_descriptors=20000, C=1.0),
                        [s.path for s in train], np.stack([s.labels for s in train]), ["horse", "boat"], SkipLog(),
                        ParallelOptions(progress=False))
    out = tmp_path_factory.mktemp("tiny-fv") / "model"
    model.save(out)
    return out
