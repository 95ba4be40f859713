"""Synthetic generators: determinism, VOC readability, boxes, ground truth and planted artefacts."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bowlrp.data import VOC_CLASSES, load_image, open_dataset
from bowlrp.data.synth import generate_shapes, generate_toyvoc
from bowlrp.data.synth.recipes import SCENE_CHOICES
from bowlrp.data.synth.toyvoc import (
    PRIMARY_WEIGHTS,
    SIZES,
    WATERMARK_HORSE_RATE,
    WATERMARK_OTHER_RATE,
    primary_counts,
    stratified_halves,
)


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def toyvoc(tmp_path_factory) -> Path:
    return generate_toyvoc(tmp_path_factory.mktemp("tv") / "toyvoc", seed=0, size="small")


@pytest.fixture(scope="module")
def toyvoc_more(tmp_path_factory) -> Path:
    """More images at the small size, to count watermarks with some statistical power."""
    return generate_toyvoc(tmp_path_factory.mktemp("tv150") / "toyvoc", seed=3, size="small", n_images=150)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return generate_shapes(tmp_path_factory.mktemp("sh") / "shapes", seed=0, size="small")


def _all_samples(ds):
    return ds.split("trainval") + ds.split("test")


# --------------------------------------------------------------------------- determinism
def test_toyvoc_same_seed_same_bytes_other_seed_differs(toyvoc, tmp_path):
    again = generate_toyvoc(tmp_path / "again", seed=0, size="small")
    other = generate_toyvoc(tmp_path / "other", seed=1, size="small")
    ref = _tree_hashes(toyvoc)
    assert len(ref) > 200 and ref == _tree_hashes(again)
    diff = _tree_hashes(other)
    changed = [k for k in ref if k.startswith("JPEGImages") and diff.get(k) != ref[k]]
    assert len(changed) > len([k for k in ref if k.startswith("JPEGImages")]) // 2


def test_shapes_same_seed_same_bytes_other_seed_differs(shapes, tmp_path):
    ref = _tree_hashes(shapes)
    assert ref == _tree_hashes(generate_shapes(tmp_path / "again", seed=0, size="small"))
    other = _tree_hashes(generate_shapes(tmp_path / "other", seed=1, size="small"))
    assert other["large/train00.png"] != ref["large/train00.png"]


def test_refuses_non_empty_output_without_overwrite(toyvoc):
    from bowlrp.errors import DataError

    with pytest.raises(DataError, match="not empty"):
        generate_toyvoc(toyvoc, seed=0, size="small")


# --------------------------------------------------------------------------- toyvoc
def test_toyvoc_reads_as_voc_with_exact_boxes(toyvoc):
    ds = open_dataset(toyvoc)
    assert ds.classes == list(VOC_CLASSES) and len(ds.skips) == 0
    assert ds.splits() == ["train", "val", "trainval", "test"]
    samples = _all_samples(ds)
    assert len(samples) == SIZES["small"][0]
    assert sorted(s.image_id for s in ds.split("trainval")) == sorted(
        s.image_id for s in ds.split("train") + ds.split("val"))
    labels = np.stack([s.labels for s in samples])
    assert (labels == 1).sum(axis=1).max() >= 2  # some images are multi-label
    widths = set()
    n_objects = n_exact = 0
    for s in samples:
        img = load_image(s.path)
        h, w = img.shape[:2]
        widths.add(w > h)
        assert s.objects, s.image_id
        for o in s.objects:
            x0, y0, x1, y1 = o.box
            assert 1 <= x0 <= x1 <= w and 1 <= y0 <= y1 <= h, (s.image_id, o)
        present = {o.name for o in s.objects}
        for k, cls in enumerate(ds.classes):
            assert s.labels[k] == (1 if cls in present else -1)
        # the instance mask's extent of each object lies inside that object's box, and equals it
        # where nothing in front covers the object (most objects)
        inst = np.asarray(Image.open(toyvoc / "masks" / f"{s.image_id}.png"))
        assert inst.max() <= len(s.objects)
        for k, o in enumerate(s.objects, start=1):
            ys, xs = np.nonzero(inst == k)
            n_objects += 1
            if xs.size:
                assert o.box[0] <= xs.min() + 1 and xs.max() + 1 <= o.box[2]
                assert o.box[1] <= ys.min() + 1 and ys.max() + 1 <= o.box[3]
                n_exact += (xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1) == tuple(o.box)
    assert widths == {True, False}  # landscape and portrait
    assert n_exact >= 0.8 * n_objects


def test_toyvoc_ground_truth_schema(toyvoc):
    gt = json.loads((toyvoc / "ground_truth.json").read_text())
    assert gt["generator"] == "toyvoc" and gt["seed"] == 0 and gt["size"] == "small"
    ids = (toyvoc / "ImageSets/Main/trainval.txt").read_text().split() + \
        (toyvoc / "ImageSets/Main/test.txt").read_text().split()
    assert sorted(gt["images"]) == sorted(ids)
    for image_id, entry in gt["images"].items():
        w, h = entry["size"]
        assert isinstance(entry["artefacts"], list)
        for art in entry["artefacts"]:
            assert art["kind"] in {"watermark", "water", "sky"}
            x0, y0, x1, y1 = art["box"]
            assert all(isinstance(v, int) for v in art["box"])
            assert 1 <= x0 <= x1 <= w and 1 <= y0 <= y1 <= h


def _images_with(ds, cls):
    k = ds.class_index(cls)
    return [s for s in _all_samples(ds) if s.labels[k] == 1]


def test_watermark_on_about_a_fifth_of_horses_near_bottom_corner(toyvoc_more):
    ds = open_dataset(toyvoc_more)
    gt = json.loads((toyvoc_more / "ground_truth.json").read_text())["images"]
    horses = _images_with(ds, "horse")
    marked = [s for s in horses if any(a["kind"] == "watermark" for a in gt[s.image_id]["artefacts"])]
    # horses occur only in horse images, so the rates are exact over the horse-positive images
    assert sorted(s.image_id for s in horses) == sorted(i for i, e in gt.items() if e["primary"] == "horse")
    assert len(horses) == primary_counts(150)["horse"] >= 12
    assert len(marked) == round(WATERMARK_HORSE_RATE * len(horses)) >= 2
    others = [i for i, e in gt.items() if i not in {s.image_id for s in horses}]
    marked_others = [i for i in others if any(a["kind"] == "watermark" for a in gt[i]["artefacts"])]
    assert len(marked_others) == int(WATERMARK_OTHER_RATE * len(others))
    n_default = SIZES["default"][0]
    assert int(WATERMARK_OTHER_RATE * (n_default - primary_counts(n_default)["horse"])) >= 1  # the paste test's "others"
    # the tagged horses are the riding repository's: seen from further away, so drawn smaller
    def horse_area(image_id):
        w, h = gt[image_id]["size"]
        return max((o["box"][2] - o["box"][0]) * (o["box"][3] - o["box"][1]) / (w * h)
                   for o in gt[image_id]["objects"] if o["name"] == "horse")
    tagged = [horse_area(s.image_id) for s in marked]
    untagged = [horse_area(s.image_id) for s in horses if s not in marked]
    assert np.median(tagged) < 0.5 * np.median(untagged), (tagged, untagged)
    # tagged horses are halved between the splits (stratified split)
    test_ids = {s.image_id for s in ds.split("test")}
    in_test = sum(s.image_id in test_ids for s in marked)
    assert abs(2 * in_test - len(marked)) <= 1
    for s in marked:
        img = load_image(s.path)
        h, w = img.shape[:2]
        x0, y0, x1, y1 = next(a["box"] for a in gt[s.image_id]["artefacts"] if a["kind"] == "watermark")
        assert y1 >= 0.9 * h and (x0 <= 0.1 * w or x1 >= 0.9 * w)  # near a bottom corner
        assert (x1 - x0 + 1) * (y1 - y0 + 1) < 0.1 * w * h             # small
        patch = img[y0 - 1:y1, x0 - 1:x1]
        assert patch.min(axis=2).max() > 0.7                           # light text actually drawn


def test_boats_over_water_in_lower_part(toyvoc):
    ds = open_dataset(toyvoc)
    gt = json.loads((toyvoc / "ground_truth.json").read_text())["images"]
    boats = _images_with(ds, "boat")
    assert boats
    for s in boats:
        img = load_image(s.path)
        h, w = img.shape[:2]
        water = [a["box"] for a in gt[s.image_id]["artefacts"] if a["kind"] == "water"]
        assert len(water) == 1
        x0, y0, x1, y1 = water[0]
        assert (x0, x1, y1) == (1, w, h) and y0 > 0.2 * h
        region = img[y0 - 1:y1, x0 - 1:x1].reshape(-1, 3).mean(axis=0)
        assert region[2] > region[0]  # bluish
        for o in s.objects:
            if o.name == "boat":
                assert o.box[3] >= y0  # the hull reaches into the water


def test_aeroplanes_on_sky_from_top_to_bottom(toyvoc):
    ds = open_dataset(toyvoc)
    gt = json.loads((toyvoc / "ground_truth.json").read_text())["images"]
    planes = _images_with(ds, "aeroplane")
    assert planes
    for s in planes:
        img = load_image(s.path)
        h, w = img.shape[:2]
        sky = [a["box"] for a in gt[s.image_id]["artefacts"] if a["kind"] == "sky"]
        assert len(sky) == 1 and sky[0][1] == 1 and sky[0][3] == h
        x0, _, x1, _ = sky[0]
        inst = np.asarray(Image.open(toyvoc / "masks" / f"{s.image_id}.png"))
        free = (inst == 0)[:, x0 - 1:x1]
        pixels = img[:, x0 - 1:x1][free]
        assert pixels[:, 2].mean() > pixels[:, 0].mean() + 0.1   # blue
        assert np.median(pixels.std(axis=0)) < 0.12               # near-uniform


@pytest.fixture(scope="module")
def toyvoc_seeds(toyvoc, toyvoc_more, tmp_path_factory) -> list[Path]:
    """Small sets of four seeds (two generated here) and the 150-image set."""
    extra = [generate_toyvoc(tmp_path_factory.mktemp(f"tv{seed}") / "toyvoc", seed=seed, size="small")
             for seed in (1, 2)]
    return [toyvoc, *extra, toyvoc_more]


def test_every_class_has_positives_in_both_splits(toyvoc_seeds):
    for root in toyvoc_seeds:
        ds = open_dataset(root)
        assert ds.classes == list(VOC_CLASSES)
        for split in ("trainval", "test"):
            labels = np.stack([s.labels for s in ds.split(split)])
            missing = [c for k, c in enumerate(ds.classes) if not (labels[:, k] == 1).any()]
            assert not missing, (root, split, missing)
        gt = json.loads((root / "ground_truth.json").read_text())
        assert gt["classes_present"] == list(VOC_CLASSES)


def test_classes_stand_in_their_typical_scenes(toyvoc_seeds):
    """Trains on rails, furniture, bottles, cats and screens indoors, bikes on streets or fields."""
    where = {"train": {"rails"}, "bicycle": {"street", "field"}, "motorbike": {"street", "field"},
             "aeroplane": {"sky"}, "boat": {"water"}, "horse": {"field"}, "cow": {"field"}, "sheep": {"field"},
             "pottedplant": {"indoor", "street"}}
    where.update({c: {"indoor"} for c in ("cat", "bottle", "chair", "sofa", "diningtable", "tvmonitor")})
    seen = {}
    for root in toyvoc_seeds:
        for image_id, entry in json.loads((root / "ground_truth.json").read_text())["images"].items():
            assert entry["scene"] in SCENE_CHOICES[entry["primary"]]
            for o in entry["objects"]:
                if o["name"] in where:
                    assert entry["scene"] in where[o["name"]], (root, image_id, o["name"], entry["scene"])
            names = [o["name"] for o in entry["objects"]]
            for name in set(names):
                seen.setdefault(name, set()).update(names)
    # the co-occurrences the recipes promise show up somewhere in these sets
    assert {"person"} <= seen["bicycle"] and {"person"} <= seen["motorbike"] and {"person"} <= seen["horse"]
    assert {"chair", "bottle"} <= seen["diningtable"]


def test_primary_quotas_and_stratified_halves():
    for n in (SIZES["small"][0], SIZES["default"][0], 150):
        counts = primary_counts(n)
        assert sum(counts.values()) == n and min(counts.values()) >= 2
        quota = {c: n * w / sum(PRIMARY_WEIGHTS.values()) for c, w in PRIMARY_WEIGHTS.items()}
        assert all(abs(counts[c] - quota[c]) < 1 for c in counts)
    assert primary_counts(SIZES["default"][0])["horse"] >= 60  # >= 30 horse images in the test split
    rng = np.random.default_rng(0)
    strata = [i % 7 for i in range(101)]  # uneven strata
    first, second = stratified_halves(rng, list(range(101)), strata)
    assert len(first) == 50 and sorted(first + second) == list(range(101))
    for key in range(7):
        a, b = (sum(strata[i] == key for i in half) for half in (first, second))
        assert abs(a - b) <= 1
    with pytest.raises(ValueError, match="too few"):
        generate_toyvoc(Path("/nonexistent-never-written"), n_images=30)


# --------------------------------------------------------------------------- shapes
def test_shapes_labels_match_polygon_centres_and_masks(shapes):
    ds = open_dataset(shapes)
    assert ds.classes == ["polygon"] and len(ds.skips) == 0
    gt = json.loads((shapes / "ground_truth.json").read_text())
    assert gt["generator"] == "shapes"
    large = gt["large_images"]
    samples = {s.image_id: s for s in _all_samples(ds)}
    assert sorted(samples) == sorted(gt["images"])
    test_offsets = {tuple(gt["images"][i]["offset"]) for i in samples if i.startswith("test")}
    assert {x for x, _ in test_offsets} == set(range(0, large["test00"]["size"][0] - 102 + 1, 34))
    n_pos = 0
    for image_id, s in samples.items():
        tile = gt["images"][image_id]
        x, y = tile["offset"]
        assert tile["size"] == [102, 102]
        centres = [sh["centre"] for sh in large[tile["source"]]["shapes"] if sh["kind"] == "polygon"]
        expected = any(x <= cx < x + 102 and y <= cy < y + 102 for cx, cy in centres)
        assert s.labels[0] == (1 if expected else -1), image_id
        n_pos += expected
        assert all(o.name == "polygon" for o in s.objects) and (len(s.objects) > 0) == expected
    assert 0 < n_pos < len(samples)
    for name, info in large.items():
        mask = np.asarray(Image.open(shapes / "masks" / f"{name}.png"))
        assert {1, 2} <= set(np.unique(mask).tolist())
        for sh in info["shapes"]:
            cx, cy = (int(v) for v in sh["centre"])
            assert mask[cy, cx] == (1 if sh["kind"] == "polygon" else 2)
            if sh["kind"] == "polygon":
                assert 4 <= sh["n_vertices"] <= 7
            else:
                assert sh["p"] >= 2
    # a tile is the crop of its large image at the recorded offset
    some = next(iter(samples.values()))
    tile = gt["images"][some.image_id]
    big = load_image(shapes / "large" / f"{tile['source']}.png")
    x, y = tile["offset"]
    np.testing.assert_array_equal(load_image(some.path), big[y:y + 102, x:x + 102])
