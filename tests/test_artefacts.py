"""Artefact experiments (Sections 6.2-6.3): tag removal and pasting, padding strategies.

The model here scores what the experiments edit, in closed form, through the model interface only:
``f_horse`` is the mean redness ``R - G`` of the bottom-left corner minus 0.3, ``f_boat`` the mean blue
of the whole image. So removing a red tag from a black corner lowers ``f_horse`` by the tag's mean
redness there, pasting raises it by as much, and padding a grey image with a colour moves ``f_boat``
by the padded share of the pixels times the colour's blue minus the grey.
"""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import stats

from bowlrp.analysis.artefacts import change_summary, mean_interval
from bowlrp.analysis.padding import (REFERENCE, SKY_BLUE, STRATEGIES, make_square, orientation, padding_experiment,
                                     squared_versions)
from bowlrp.analysis.watermark import (TagRegion, clip_box, cut_patch, paste_patch, read_regions, region_mask,
                                       remove_tag, sidecar_regions, watermark_experiment)
from bowlrp.cli import main
from bowlrp.data.dataset import Sample
from bowlrp.errors import DataError
from test_model_interface import PixelLinear, stub_family

FORMAT = "test.corner-redness"
CLASSES = ["horse", "boat"]
CORNER = (16, 32)   # rows from the bottom, columns from the left
BIAS = 0.3


class CornerModel(PixelLinear):
    """``f_horse``: mean (R - G) over the bottom-left CORNER, minus BIAS; ``f_boat``: mean blue."""

    family = "corner"

    def __init__(self):
        super().__init__(np.zeros((2, 3)), np.zeros(2), list(CLASSES))
        self.batches: list[int] = []

    def score_images(self, images):
        self.batches.append(len(images))
        rows = []
        for image in images:
            corner = np.asarray(image, np.float64)[-CORNER[0]:, :CORNER[1]]
            rows.append([(corner[..., 0] - corner[..., 1]).mean() - BIAS, np.asarray(image, np.float64)[..., 2].mean()])
        return np.array(rows).reshape(len(images), 2)


def corner_score(image: np.ndarray) -> float:
    return CornerModel().score_images([image])[0, 0]


@pytest.fixture
def corner_model(tmp_path):
    yield from stub_family(tmp_path / "corner-model", "corner", {"format": FORMAT}, lambda d, device: CornerModel())


def _png(path, image: np.ndarray) -> None:
    Image.fromarray(np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)).save(path)


def _sample(tmp_path, image_id: str, image: np.ndarray, horse: bool) -> Sample:
    path = tmp_path / f"{image_id}.png"
    _png(path, image)
    return Sample(image_id, path, np.array([1 if horse else -1], np.int8))


def _tagged(red: float, shape=(40, 60)) -> np.ndarray:
    """A black image with a red 8 x 20 tag: rows 30..37, columns 4..23 (VOC box (5, 31, 24, 38))."""
    image = np.zeros((*shape, 3), np.float32)
    image[30:38, 4:24, 0] = red
    return image


TAG_BOX = (5.0, 31.0, 24.0, 38.0)


# --- statistics ----------------------------------------------------------------------------------------

def test_mean_interval_is_scipys_t_interval():
    values = np.random.default_rng(3).normal(0.4, 2.0, 23)
    mean, lo, hi = mean_interval(values)
    ref = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean())
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)
    assert np.isnan(mean_interval([1.5])[1]) and mean_interval([1.5])[0] == 1.5
    assert all(np.isnan(mean_interval([])))
    assert mean_interval([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)


def test_change_summary_counts_sign_flips_both_ways():
    summary = change_summary(np.array([0.5, -0.5, 0.2, -1.0]), np.array([-0.1, 0.3, 0.4, -2.0]))
    assert summary["n"] == 4 and summary["n_flipped"] == 2 and summary["flip_share"] == 0.5
    assert summary["delta_mean"] == pytest.approx(np.mean([-0.6, 0.8, 0.2, -1.0]))
    assert summary["positive_before"] == 0.5 and summary["positive_after"] == 0.5
    empty = change_summary(np.zeros(0), np.zeros(0))
    assert empty["n"] == 0 and empty["delta_mean"] is None and empty["ci95"] == [None, None]


# --- removing and pasting ------------------------------------------------------------------------------

def test_removal_fills_the_box_from_its_surroundings_and_keeps_the_rest():
    image = _tagged(1.0)
    image[:5] = 0.25  # pixels far from the box must not change at all
    mask = region_mask(TagRegion(boxes=(TAG_BOX,)), image.shape[:2]).mask
    assert mask.sum() == 8 * 20 and mask[30:38, 4:24].all()
    out = remove_tag(image, mask)
    np.testing.assert_array_equal(out[30:38, 4:24], 0.0)  # black all around: inpainting gives black
    np.testing.assert_array_equal(out[:5], image[:5])
    assert corner_score(out) - corner_score(image) == pytest.approx(-(8 * 20) / (CORNER[0] * CORNER[1]))


def test_pasting_puts_the_patch_at_the_same_bottom_left_place_scaled_by_the_long_side():
    source = _tagged(1.0)
    patch = cut_patch(source, region_mask(TagRegion(boxes=(TAG_BOX,)), source.shape[:2]).mask, "src")
    assert patch.pixels.shape == (8, 20, 3) and (patch.left, patch.bottom, patch.long_side) == (4, 2, 60)
    same = paste_patch(np.zeros((40, 60, 3), np.float32), patch)
    np.testing.assert_array_equal(same.image, source)
    assert not same.clipped
    # twice the long side: a 16 x 40 patch, 8 px from the left, 4 px above the bottom
    big = paste_patch(np.zeros((120, 80, 3), np.float32), patch)  # portrait, long side 120: scale 2
    expected = np.zeros((120, 80, 3), np.float32)
    expected[100:116, 8:48, 0] = 1.0
    np.testing.assert_array_equal(big.image, expected)
    # a narrower image cuts the patch at its right border: clipped, and said so
    narrow = paste_patch(np.zeros((60, 20, 3), np.float32), patch)  # long side 60: scale 1
    assert narrow.clipped and not narrow.empty
    np.testing.assert_array_equal(narrow.image[50:58, 4:20, 0], 1.0)


def test_experiment_lowers_and_raises_the_corner_score_by_the_tag_and_counts_flips(tmp_path):
    model = CornerModel()
    tagged = [_sample(tmp_path, "t1", _tagged(1.0), True), _sample(tmp_path, "t2", _tagged(128 / 255), True),
              _sample(tmp_path, "t3", _tagged(250 / 255), False)]
    grey = np.zeros((40, 60, 3), np.float32)
    green = 26 / 255  # about 0.1, exactly what a PNG keeps
    grey[..., 1] = green  # some green in the corner: the targets start below zero
    others = [_sample(tmp_path, f"o{i}", grey, False) for i in range(4)]
    horse_untagged = _sample(tmp_path, "h", grey, True)  # not a paste target: it contains the class
    samples = tagged + others + [horse_untagged]
    contains = np.array([s.labels[0] == 1 for s in samples])
    regions = {s.image_id: TagRegion(boxes=(TAG_BOX,)) for s in tagged}
    result = watermark_experiment(model, samples, contains, "horse", regions, show_progress=False)

    area = CORNER[0] * CORNER[1]
    reds = np.array([255, 128, 250]) / 255
    np.testing.assert_allclose([r["delta"] for r in result["remove"]["per_image"]], -(8 * 20) * reds / area,
                               atol=1e-6)
    assert result["remove"]["n"] == 3 and result["remove_with_class"]["n"] == 2
    # before: 160 * red / 512 - 0.3 = +0.0125, -0.143, +0.0064; after: -0.3 for all -> two flip
    assert result["remove"]["flip_share"] == pytest.approx(2 / 3)
    mean, lo, hi = mean_interval(-(8 * 20) * reds / area)
    assert result["remove"]["delta_mean"] == pytest.approx(mean, abs=1e-6)
    assert result["remove"]["ci95"] == pytest.approx([lo, hi], abs=1e-6)
    # the patch comes from t1 (the first tagged image with the class): red 1.0 over green 0.1
    paste = result["paste"]
    assert [r["id"] for r in paste["per_image"]] == ["o0", "o1", "o2", "o3"]
    expected_delta = (8 * 20) * (1.0 + green) / area  # R - G goes from -green to +1.0 on the tag's pixels
    np.testing.assert_allclose([r["delta"] for r in paste["per_image"]], expected_delta, atol=1e-6)
    assert paste["flip_share"] == 0.0  # -0.4 -> -0.056: raised, still negative
    assert result["settings"]["patch_source"] == "t1"
    # the control pastes t1's patch after inpainting: black, R - G from -green to 0
    np.testing.assert_allclose([r["delta"] for r in result["paste_control"]["per_image"]], (8 * 20) * green / area,
                               atol=1e-6)
    assert result["notes"] == [] and result["skipped"] == []


def test_boxes_outside_the_image_are_clipped_and_vanished_ones_skipped(tmp_path):
    assert clip_box((50, 30, 70, 38), (40, 60)) == ((50, 30, 60, 38), True)
    assert clip_box((5, 31, 24, 38), (40, 60)) == ((5, 31, 24, 38), False)
    assert clip_box((61, 1, 80, 10), (40, 60)) == (None, True)
    samples = [_sample(tmp_path, "a", _tagged(1.0), True), _sample(tmp_path, "b", _tagged(1.0), True),
               _sample(tmp_path, "c", np.zeros((40, 60, 3), np.float32), False)]
    regions = {"a": TagRegion(boxes=((5, 31, 24, 45),)),   # reaches below the image: clipped
               "b": TagRegion(boxes=((100, 100, 120, 110),))}  # wholly outside: skipped
    result = watermark_experiment(CornerModel(), samples, np.array([True, True, False]), "horse", regions,
                                  show_progress=False)
    assert result["remove"]["n"] == 1
    assert result["skipped"] == [{"id": "b", "reason": "the tag box lies outside the image"}]
    assert any("1 tag box(es) reached outside their image and were clipped" in n for n in result["notes"])
    assert result["remove"]["per_image"][0]["delta"] == pytest.approx(-(8 * 20) / (CORNER[0] * CORNER[1]), abs=1e-6)


def test_region_files_json_csv_and_masks(tmp_path):
    (tmp_path / "boxes.json").write_text(json.dumps({"a": [1, 2, 3, 4], "b": [[1, 1, 2, 2], [5, 5, 9, 9]]}))
    regions = read_regions(tmp_path / "boxes.json")
    assert regions["a"].boxes == ((1, 2, 3, 4),) and len(regions["b"].boxes) == 2
    (tmp_path / "boxes.csv").write_text("image_id,xmin,ymin,xmax,ymax\na,1,2,3,4\na,5,6,7,8\n")
    assert read_regions(tmp_path / "boxes.csv")["a"].boxes == ((1, 2, 3, 4), (5, 6, 7, 8))
    masks = tmp_path / "masks"
    masks.mkdir()
    mask = np.zeros((40, 60), np.uint8)
    mask[30:38, 4:24] = 255
    cv2.imwrite(str(masks / "a.png"), mask)
    found = region_mask(read_regions(masks)["a"], (40, 60)).mask
    np.testing.assert_array_equal(found, mask > 0)
    with pytest.raises(DataError, match="mask is 60x40, the image 50x40"):
        region_mask(read_regions(masks)["a"], (40, 50))
    (tmp_path / "bad.csv").write_text("id,x,y\n")
    with pytest.raises(DataError, match="header image_id,xmin,ymin,xmax,ymax"):
        read_regions(tmp_path / "bad.csv")
    (tmp_path / "bad.json").write_text(json.dumps({"a": [1, 2, "x", 4]}))
    with pytest.raises(DataError, match="four numbers"):
        read_regions(tmp_path / "bad.json")
    with pytest.raises(DataError, match="no ground_truth.json.*--boxes"):
        sidecar_regions(tmp_path)


# --- padding -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 8), (8, 5), (6, 9)])
def test_padding_geometry_matches_opencv_borders(shape):
    image = np.random.default_rng(1).random((*shape, 3), dtype=np.float32)
    h, w = shape
    d = abs(h - w)
    a, b = d // 2, d - d // 2
    borders = (a, b, 0, 0) if w > h else (0, 0, a, b)
    for strategy, flag in (("copy-border", cv2.BORDER_REPLICATE), ("mirror", cv2.BORDER_REFLECT)):
        np.testing.assert_array_equal(make_square(image, strategy), cv2.copyMakeBorder(image, *borders, flag))
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    np.testing.assert_array_equal(make_square(image, "centre-crop"), image[y:y + s, x:x + s])
    rng = np.random.default_rng(0)
    top, left = borders[0], borders[2]
    for strategy in ("noise", "random-colour", "sky-blue"):
        out = make_square(image, strategy, rng)
        assert out.shape == (max(h, w), max(h, w), 3)
        np.testing.assert_array_equal(out[top:top + h, left:left + w], image)
        pad = np.ones(out.shape[:2], bool)
        pad[top:top + h, left:left + w] = False
        values = out[pad]
        assert ((values >= 0) & (values <= 1)).all()
        distinct = len(np.unique(values, axis=0))
        assert distinct > 1 if strategy == "noise" else distinct == 1
    np.testing.assert_allclose(make_square(image, "sky-blue")[pad][0], SKY_BLUE, rtol=1e-6)
    assert orientation(image.shape) == ("landscape" if w > h else "portrait")


def test_squared_versions_are_seeded_per_image():
    image = np.full((4, 7, 3), 0.5, np.float32)
    one, again, other = squared_versions(image, 0, 3), squared_versions(image, 0, 3), squared_versions(image, 0, 4)
    assert [x.shape for x in one] == [(7, 7, 3)] * 2 + [(4, 4, 3)] + [(7, 7, 3)] * 3
    for x, y in zip(one, again):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(one[3], other[3]) and not np.array_equal(one[4], other[4])


def test_padding_rows_split_target_and_orientation_with_the_closed_form_change(tmp_path):
    # f_boat = mean blue; a grey image (0.5) padded with a colour of blue c changes it by p (c - 0.5),
    # p the padded share of the square; copy-border, mirror and centre-crop keep it at 0.5
    g = 128 / 255  # what a PNG keeps of 0.5
    grey = lambda h, w: np.full((h, w, 3), g, np.float32)  # noqa: E731
    shapes = {"l1": (30, 40), "l2": (30, 40), "p1": (40, 30), "p2": (40, 24), "sq": (20, 20)}
    target = {"l1": True, "l2": False, "p1": False, "p2": False, "sq": False}
    samples = [_sample(tmp_path, i, grey(*shapes[i]), target[i]) for i in shapes]
    model = CornerModel()
    result = padding_experiment(model, samples, np.array([target[s.image_id] for s in samples]), "boat",
                                show_progress=False)
    assert result["n_square"] == 1 and result["reference"] == REFERENCE
    share = {"l1": 1 - 30 * 40 / 1600, "l2": 1 - 30 * 40 / 1600, "p1": 1 - 30 * 40 / 1600, "p2": 1 - 24 * 40 / 1600}
    rows = {(r["strategy"], r["target"], r["orientation"]): r for r in result["rows"]}
    assert len(result["rows"]) == (len(STRATEGIES) - 1) * 2 * 2
    assert rows["sky-blue", True, "landscape"]["n"] == 1 and rows["sky-blue", True, "portrait"]["n"] == 0
    assert rows["sky-blue", False, "landscape"]["n"] == 1 and rows["sky-blue", False, "portrait"]["n"] == 2
    blue = SKY_BLUE[2] - g
    assert rows["sky-blue", True, "landscape"]["delta_mean"] == pytest.approx(share["l1"] * blue, abs=1e-6)
    assert rows["sky-blue", False, "portrait"]["delta_mean"] == pytest.approx(
        np.mean([share["p1"] * blue, share["p2"] * blue]), abs=1e-6)
    assert rows["sky-blue", True, "portrait"]["delta_mean"] is None
    assert rows["sky-blue", True, "portrait"]["positive_share"] is None
    assert rows["sky-blue", False, "portrait"]["positive_share"] == 1.0  # mean blue > 0 always
    for strategy in ("mirror", "centre-crop"):
        assert rows[strategy, False, "portrait"]["delta_mean"] == pytest.approx(0.0, abs=1e-6)
    overall = {(r["strategy"], r["target"]): r for r in result["overall"]}
    assert overall["sky-blue", False]["n"] == 3 and overall["sky-blue", False]["orientation"] == "all"
    # random-colour: each image's own colour, drawn as squared_versions draws it
    per_image = {r["id"]: r for r in result["per_image"]}
    for index, image_id in enumerate(shapes):
        if image_id == "sq":
            continue
        rng = np.random.default_rng([0, index])
        rng.random((40, 40, 3), dtype=np.float32)  # the noise comes first
        colour = rng.random(3)
        assert per_image[image_id]["scores"]["random-colour"] - per_image[image_id]["scores"][REFERENCE] == \
            pytest.approx(share[image_id] * (colour[2] - g), abs=1e-6)
    assert max(model.batches) == len(STRATEGIES) * 4  # one score_images call per batch of images


# --- the command line ----------------------------------------------------------------------------------

def test_cli_watermark_and_padding_end_to_end(corner_model, small_toyvoc, tmp_path, capsys):
    out = tmp_path / "wm.json"
    assert main(["artefacts", "watermark", "--model", str(corner_model), "--data", str(small_toyvoc), "--class",
                 "horse", "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    gt = json.loads((small_toyvoc / "ground_truth.json").read_text())["images"]
    test_ids = (small_toyvoc / "ImageSets" / "Main" / "test.txt").read_text().split()
    tagged = [i for i in test_ids if any(a["kind"] == "watermark" for a in gt[i]["artefacts"])]
    assert [r["id"] for r in result["remove"]["per_image"]] == tagged and result["remove"]["n"] == len(tagged)
    for key in ("delta_mean", "ci95", "n", "flip_share", "per_image"):
        assert key in result["remove"] and key in result["paste"]
    # the tag is bright: white letters raise R and G alike, so only the dark rim moves R - G; the
    # model sees what was edited — the deltas are not all zero
    assert result["paste"]["n"] > 0 and any(abs(r["delta"]) > 0 for r in result["paste"]["per_image"])
    assert (tmp_path / "wm.png").stat().st_size > 0
    assert "tag removed" in capsys.readouterr().out

    pad = tmp_path / "pad.json"
    assert main(["artefacts", "padding", "--model", str(corner_model), "--data", str(small_toyvoc), "--class", "boat",
                 "--json", str(pad), "--plot", str(tmp_path / "p.png"), "--n-images", "6", "--no-progress"]) == 0
    rows = json.loads(pad.read_text())["rows"]
    assert all({"strategy", "target", "orientation", "delta_mean", "ci95", "n"} <= set(r) for r in rows)
    assert sum(r["n"] for r in rows if r["strategy"] == "sky-blue") == 6
    assert (tmp_path / "p.png").stat().st_size > 0


def test_cli_bad_input_is_one_line(corner_model, small_toyvoc, tmp_path, capsys):
    def error(*argv) -> str:
        assert main(list(argv)) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return err

    base = ["--model", str(corner_model), "--json", str(tmp_path / "x.json"), "--no-progress"]
    assert "unknown class 'zebra'; the model knows horse, boat" in error(
        "artefacts", "padding", *base, "--data", str(small_toyvoc), "--class", "zebra")
    bare = tmp_path / "bare"
    shutil.copytree(small_toyvoc, bare, ignore=shutil.ignore_patterns("ground_truth.json"))
    assert "no ground_truth.json" in error("artefacts", "watermark", *base, "--data", str(bare), "--class", "horse")
    assert "no such box file" in error("artefacts", "watermark", *base, "--data", str(bare), "--class", "horse",
                                       "--boxes", str(tmp_path / "missing.json"))
    # boxes for images of another split only
    (tmp_path / "b.json").write_text(json.dumps({"nope": [1, 1, 5, 5]}))
    assert "no image of the split has a tag region" in error(
        "artefacts", "watermark", *base, "--data", str(bare), "--class", "horse", "--boxes", str(tmp_path / "b.json"))
    # a user box half outside its image works, with a note that it was clipped
    image_id = (bare / "ImageSets" / "Main" / "test.txt").read_text().split()[0]
    (tmp_path / "c.json").write_text(json.dumps({image_id: [140, 100, 400, 300]}))
    assert main(["artefacts", "watermark", *base, "--data", str(bare), "--class", "horse",
                 "--boxes", str(tmp_path / "c.json")]) == 0
    assert "note: 1 tag box(es) reached outside their image and were clipped" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["artefacts", "padding", *base, "--data", str(bare), "--class", "boat", "--sky-colour", "1,2"])
    assert "three comma-separated values" in capsys.readouterr().err
