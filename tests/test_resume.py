"""Resumed split runs: an image whose file changed since its part was written is explained again."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bowlrp.data import load_image, open_dataset
from bowlrp.data.dataset import Sample
from bowlrp.errors import BowlrpError
from bowlrp.model import load_model
from bowlrp.parallel import ParallelOptions
from bowlrp.runs import explain_split
from bowlrp.store import RelevanceStore, SplitParts


@pytest.fixture
def bmp_samples(small_toyvoc, tmp_path) -> list[Sample]:
    """Three toyvoc test images as BMP files: changing a pixel keeps a BMP's size to the byte."""
    samples = []
    for sample in open_dataset(small_toyvoc).split("test")[:3]:
        path = tmp_path / "images" / f"{sample.image_id}.bmp"
        path.parent.mkdir(exist_ok=True)
        Image.open(sample.path).convert("RGB").save(path)
        samples.append(Sample(sample.image_id, path, sample.labels))
    return samples


def _interrupted_run(model, samples, out, monkeypatch) -> None:
    """A run killed after its parts were written, before the store was assembled."""
    def crash(self, skipped):
        raise KeyboardInterrupt
    with monkeypatch.context() as patch:
        patch.setattr(SplitParts, "assemble", crash)
        with pytest.raises(KeyboardInterrupt):
            explain_split(model, samples, "horse", out, model.explanation_method(), parallel=ParallelOptions(progress=False))
    assert len(list(Path(str(out) + ".parts").glob("*.npz"))) == len(samples)


def test_an_image_changed_under_its_id_is_explained_again(tiny_fv_model, bmp_samples, tmp_path, monkeypatch):
    model = load_model(tiny_fv_model)
    out = tmp_path / "s.h5"
    _interrupted_run(model, bmp_samples, out, monkeypatch)

    changed = bmp_samples[1].path
    stat = changed.stat()
    pixels = np.asarray(Image.open(changed)).copy()
    pixels[40:120, 30:130] = 255 - pixels[40:120, 30:130]  # the same size, the same modification time
    Image.fromarray(pixels).save(changed)
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert changed.stat().st_size == stat.st_size

    summary = explain_split(model, bmp_samples, "horse", out, model.explanation_method(),
                            parallel=ParallelOptions(progress=False))
    assert (summary.n_explained, summary.n_resumed) == (1, 2)
    fresh = model.explain(load_image(changed), "horse", model.explanation_method())
    with RelevanceStore(out) as store:
        item = store[bmp_samples[1].image_id]
        np.testing.assert_array_equal(item["relevance"], fresh.relevance)
        assert item["score"] == fresh.score


def test_an_image_gone_since_its_part_leaves_no_stale_map(tiny_fv_model, bmp_samples, tmp_path, monkeypatch):
    model = load_model(tiny_fv_model)
    out = tmp_path / "s.h5"
    _interrupted_run(model, bmp_samples, out, monkeypatch)
    bmp_samples[2].path.unlink()
    summary = explain_split(model, bmp_samples, "horse", out, model.explanation_method(),
                            parallel=ParallelOptions(progress=False))
    assert [entry["file"] for entry in summary.skipped] == [str(bmp_samples[2].path)]
    with RelevanceStore(out) as store:
        assert store.ids == [s.image_id for s in bmp_samples[:2]]


def test_an_unreadable_record_of_an_interrupted_run_is_one_line(tiny_fv_model, bmp_samples, tmp_path):
    model = load_model(tiny_fv_model)
    parts = tmp_path / "s.h5.parts"
    parts.mkdir()
    (parts / "settings.json").write_text('{"class_name": "hor')  # cut short
    with pytest.raises(BowlrpError, match=r"s\.h5\.parts/settings\.json: unreadable record of an interrupted run"):
        explain_split(model, bmp_samples, "horse", tmp_path / "s.h5", model.explanation_method(),
                      parallel=ParallelOptions(progress=False))
