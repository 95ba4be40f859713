"""Context ratio mu (Eq. 4.11): exact on synthetic maps, end to end on FV and DNN stores, clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bowlrp.analysis.context import context_table
from bowlrp.cli import main
from bowlrp.data import load_image, open_dataset
from bowlrp.errors import BowlrpError
from bowlrp.store import SplitParts

CLASS = "boat"


def _synthetic_store(root, out, inside=2.0, outside=0.5, negative=-3.0):
    """A store of the test split whose maps are ``inside`` on the class' boxes, ``outside`` elsewhere,
    and ``negative`` on the first two rows (negative relevance must not count); scores are +1 on
    images labelled with the class, -1 otherwise (so AP is 1)."""
    dataset = open_dataset(root)
    samples = dataset.split("test")
    column = dataset.classes.index(CLASS)
    parts = SplitParts(out, len(samples), {"class_name": CLASS, "model_variant": "fv", "model_family": "bow",
                                           "image_ids": [s.image_id for s in samples]})
    for i, sample in enumerate(samples):
        h, w = load_image(sample.path).shape[:2]
        relevance = np.full((h, w), outside, dtype=np.float32)
        for obj in sample.objects:
            if obj.name == CLASS:
                xmin, ymin, xmax, ymax = map(int, obj.box)
                relevance[ymin - 1:ymax, xmin - 1:xmax] = inside
        relevance[:2] = np.where(relevance[:2] == outside, negative, relevance[:2])
        score = 1.0 if sample.labels[column] == 1 else -1.0
        parts.write(i, {"relevance": relevance, "score": np.float64(score), "bias_relevance": np.float64(0),
                        "residual": np.float64(0), "absorbed": np.float64(0),
                        "descriptor_relevance": np.zeros(0, np.float32),
                        "descriptor_frames": np.zeros((0, 4), np.float32)}, sample.image_id, sample.path)
    parts.assemble([])
    return samples


def _by_hand(sample, shape, inside=2.0, outside=0.5) -> float:
    """Eq. 4.11 counted pixel by pixel, VOC boxes 1-based and inclusive."""
    h, w = shape
    boxes = [obj.box for obj in sample.objects if obj.name == CLASS]
    n_in = n_out = 0
    sum_in = sum_out = 0.0
    for y in range(h):
        for x in range(w):
            is_in = any(x0 <= x + 1 <= x1 and y0 <= y + 1 <= y1 for x0, y0, x1, y1 in boxes)
            if is_in:
                n_in, sum_in = n_in + 1, sum_in + inside
            else:  # the first two rows hold negative relevance outside the boxes: R+ = 0 there
                n_out, sum_out = n_out + 1, sum_out + (outside if y >= 2 else 0.0)
    return (sum_out / n_out) / (sum_in / n_in)


def test_mu_is_eq_4_11_on_synthetic_maps(small_toyvoc, tmp_path):
    store = tmp_path / "boat.h5"
    samples = _synthetic_store(small_toyvoc, store)
    [result] = context_table([store], small_toyvoc)
    with_boat = [s for s in samples if any(o.name == CLASS for o in s.objects)]
    assert with_boat and set(result.per_image) == {s.image_id for s in with_boat}
    for sample in with_boat:
        expected = _by_hand(sample, load_image(sample.path).shape[:2])
        assert result.per_image[sample.image_id] == pytest.approx(expected, rel=1e-12)
    values = np.array([result.per_image[s.image_id] for s in with_boat])
    assert result.mu_mean == pytest.approx(values.mean()) and result.mu_median == pytest.approx(np.median(values))
    assert result.family == "fv" and result.ap == 1.0 and result.n_undefined == 0


def test_an_empty_inside_is_undefined_not_a_number_in_the_statistics(small_toyvoc, tmp_path):
    store = tmp_path / "boat.h5"
    _synthetic_store(small_toyvoc, store, inside=0.0)
    [result] = context_table([store], small_toyvoc)
    assert result.per_image == {} and result.n_undefined > 0


@pytest.fixture(scope="module")
def family_stores(small_toyvoc, tmp_path_factory):
    """An FV and a DNN store of the test split for 'boat', made by the command line."""
    root = tmp_path_factory.mktemp("context")
    fv, cnn = root / "fv", root / "cnn"
    assert main(["train", "--data", str(small_toyvoc), "--out", str(fv), "--gmm-k", "4", "--max-descriptors", "20000",
                 "--classes", "boat,horse", "--no-progress"]) == 0
    assert main(["dnn", "train", "--data", str(small_toyvoc), "--out", str(cnn), "--epochs", "1", "--no-progress"]) == 0
    stores = {}
    for name, command in (("fv", ["explain", "--eps", "100"]), ("dnn", ["dnn", "explain"])):
        stores[name] = root / name / "boat.h5"
        assert main([*command, "--model", str(root / ("fv" if name == "fv" else "cnn")), "--class", CLASS,
                     "--data", str(small_toyvoc), "--split", "test", "--store", str(stores[name]),
                     "--no-progress"]) == 0
    return stores


def test_context_command_puts_fv_and_dnn_side_by_side(family_stores, small_toyvoc, tmp_path, capsys):
    out, plot = tmp_path / "context.json", tmp_path / "context.png"
    capsys.readouterr()
    assert main(["context", "--store", str(family_stores["fv"].parent), "--store", str(family_stores["dnn"]),
                 "--data", str(small_toyvoc), "--json", str(out), "--plot", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "boat" in printed and "fv" in printed and "dnn" in printed
    rows = json.loads(out.read_text())["rows"]
    assert [(r["class"], r["family"]) for r in rows] == [(CLASS, "fv"), (CLASS, "dnn")]
    n_with_boat = sum(any(o.name == CLASS for o in s.objects) for s in open_dataset(small_toyvoc).split("test"))
    for row in rows:
        assert row["n_images"] + row["n_undefined"] == n_with_boat
        assert {"mu_mean", "mu_median", "mu_std", "ap", "store"} <= set(row) and 0 <= row["ap"] <= 1
        assert row["mu_mean"] == pytest.approx(np.mean(list(row["per_image"].values())))
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_requests_are_one_line_errors(family_stores, small_toyvoc, tmp_path, capsys):
    with pytest.raises(BowlrpError, match="no store holds class 'cat'"):
        context_table([family_stores["fv"]], small_toyvoc, classes=["cat"])
    folder = tmp_path / "folders"
    for name in ("boat", "cat"):
        (folder / name).mkdir(parents=True)
        (folder / name / "x.png").write_bytes((small_toyvoc / "JPEGImages").glob("*.jpg").__next__().read_bytes())
    capsys.readouterr()
    assert main(["context", "--store", str(family_stores["fv"]), "--data", str(folder), "--format", "folder"]) == 1
    err = capsys.readouterr().err
    assert "no bounding-box annotations" in err and len(err.strip().splitlines()) == 1
    assert main(["context", "--store", str(tmp_path / "nothing.h5"), "--data", str(small_toyvoc)]) == 1
    assert "no such store or folder" in capsys.readouterr().err
