"""Image loading and dataset readers (VOC, folders) on files made in tmp_path."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bowlrp.data import VOC_CLASSES, load_image, open_dataset
from bowlrp.data.folder import TEST_FRACTION
from bowlrp.errors import DataError, ImageError
from conftest import entity_bomb


# --------------------------------------------------------------------------- load_image
def _check_rgb(img: np.ndarray, h: int, w: int) -> None:
    assert img.shape == (h, w, 3) and img.dtype == np.float32
    assert img.min() >= 0.0 and img.max() <= 1.0


def test_load_grey_png_repeats_channel(tmp_path):
    grey = np.arange(30, dtype=np.uint8).reshape(5, 6) * 8
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    img = load_image(tmp_path / "g.png")
    _check_rgb(img, 5, 6)
    for c in range(3):
        np.testing.assert_allclose(img[..., c], grey / 255.0, atol=1e-6)


def test_load_rgb_png_exact(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, size=(7, 4, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    img = load_image(tmp_path / "c.png")
    _check_rgb(img, 7, 4)
    np.testing.assert_allclose(img, rgb / 255.0, atol=1e-6)


def test_load_rgba_composites_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)      # opaque red stays red
    rgba[0, 1] = (0, 0, 0, 0)          # fully transparent black becomes white
    rgba[1, 0] = (0, 0, 0, 51)         # 20 % black on white -> 0.8 grey
    rgba[1, 1] = (0, 0, 255, 255)
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    _check_rgb(img, 2, 2)
    np.testing.assert_allclose(img[0, 0], [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(img[0, 1], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(img[1, 0], [0.8, 0.8, 0.8], atol=1e-6)
    np.testing.assert_allclose(img[1, 1], [0, 0, 1], atol=1e-6)


def test_load_la_composites_on_white(tmp_path):
    la = np.zeros((1, 2, 2), dtype=np.uint8)
    la[0, 0] = (0, 0)
    la[0, 1] = (100, 255)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    img = load_image(tmp_path / "la.png")
    np.testing.assert_allclose(img[0, 0], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(img[0, 1], [100 / 255] * 3, atol=1e-6)


def test_load_palette_png(tmp_path):
    pal = Image.new("P", (3, 1))
    pal.putpalette([10, 20, 30, 200, 100, 0] + [0] * (256 * 3 - 6))
    pal.putdata([0, 1, 1])
    pal.save(tmp_path / "p.png")
    img = load_image(tmp_path / "p.png")
    _check_rgb(img, 1, 3)
    np.testing.assert_allclose(img[0, 0], np.array([10, 20, 30]) / 255, atol=1e-6)
    np.testing.assert_allclose(img[0, 2], np.array([200, 100, 0]) / 255, atol=1e-6)


def test_load_palette_with_transparency_is_white(tmp_path):
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    pal.putdata([0, 1])
    pal.save(tmp_path / "pt.png", transparency=0)
    img = load_image(tmp_path / "pt.png")
    np.testing.assert_allclose(img[0, 0], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(img[0, 1], [0, 1, 0], atol=1e-6)


def test_load_16bit_png_scaled_by_65535(tmp_path):
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    img = load_image(tmp_path / "g16.png")
    _check_rgb(img, 1, 4)
    np.testing.assert_allclose(img[0, :, 1], values[0] / 65535.0, atol=1e-6)


def test_load_cmyk_jpeg(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (0, 0, 0, 0))      # no ink: white
    cmyk.paste((255, 0, 0, 0), (0, 0, 8, 16))              # full cyan: (0, 1, 1)
    cmyk.save(tmp_path / "cmyk.jpg", quality=100)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    img = load_image(tmp_path / "cmyk.jpg")
    _check_rgb(img, 16, 16)
    np.testing.assert_allclose(img[8, 2], [0, 1, 1], atol=0.05)
    np.testing.assert_allclose(img[8, 13], [1, 1, 1], atol=0.05)


def test_load_ignores_exif_orientation(tmp_path):
    rgb = np.zeros((4, 8, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90" — VOC boxes refer to stored pixels, so we must not apply it
    Image.fromarray(rgb).save(tmp_path / "o.jpg", exif=exif)
    assert load_image(tmp_path / "o.jpg").shape == (4, 8, 3)


def _jpeg_bytes(tmp_path) -> bytes:
    rgb = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "ok.jpg", quality=90)
    return (tmp_path / "ok.jpg").read_bytes()


def test_truncated_jpeg_raises_image_error(tmp_path):
    data = _jpeg_bytes(tmp_path)
    bad = tmp_path / "trunc.jpg"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="trunc.jpg"):
        load_image(bad)


def test_corrupt_and_empty_and_unknown_raise_image_error(tmp_path):
    data = _jpeg_bytes(tmp_path)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(data[:200] + b"\xff\xd9")  # header then an early end-of-image marker
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("this is not an image\n")
    for path in (corrupt, empty, text, tmp_path / "missing.png"):
        with pytest.raises(ImageError) as info:
            load_image(path)
        msg = str(info.value)
        assert path.name in msg and "\n" not in msg


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((40, 40), dtype=np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 px counts as a bomb now
    with pytest.raises(ImageError, match="bomb"):
        load_image(tmp_path / "big.png")


# --------------------------------------------------------------------------- VOC reader
BOMB = entity_bomb(9, "<annotation><object><name>&lol9;</name></object></annotation>")


def _xml(objects: list[tuple[str, int, tuple[int, int, int, int]]]) -> str:
    body = "".join(
        f"<object><name>{n}</name><pose>Left</pose><truncated>0</truncated><difficult>{d}</difficult>"
        f"<bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
        for n, d, b in objects
    )
    return f"<annotation><size><width>20</width><height>10</height><depth>3</depth></size>{body}</annotation>"


def _make_devkit(tmp_path: Path, with_class_files: bool, bomb: bool = False) -> Path:
    voc = tmp_path / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    annotations = {
        "000001": [("horse", 0, (1, 1, 10, 8)), ("person", 0, (3, 2, 6, 9))],
        "000002": [("dog", 1, (2, 2, 5, 5)), ("unicorn", 0, (1, 1, 4, 4))],  # difficult only; unknown name
        "000003": [("dog", 0, (4, 4, 9, 9)), ("dog", 1, (1, 1, 3, 3))],
        "000004": [("car", 0, (1, 1, 20, 10))],
    }
    for image_id, objects in annotations.items():
        (voc / "Annotations" / f"{image_id}.xml").write_text(_xml(objects))
        Image.new("RGB", (20, 10), (5, 5, 5)).save(voc / "JPEGImages" / f"{image_id}.jpg")
    # one image stored as PNG only: the reader must fall back to <id>.*
    (voc / "JPEGImages" / "000004.jpg").unlink()
    Image.new("RGB", (20, 10)).save(voc / "JPEGImages" / "000004.png")
    ids = list(annotations)
    if bomb:
        (voc / "Annotations" / "000005.xml").write_text(BOMB)
        Image.new("RGB", (20, 10)).save(voc / "JPEGImages" / "000005.jpg")
        ids.append("000005")
    main = voc / "ImageSets" / "Main"
    (main / "trainval.txt").write_text("\n".join(ids[:2]) + "\n")
    (main / "test.txt").write_text("\n".join(ids[2:]) + "\n")
    if with_class_files:
        # deliberately disagreeing with the XML for 000001/horse, to see which source wins
        (main / "horse_trainval.txt").write_text("000001 -1\n000002 -1\n")
        (main / "dog_trainval.txt").write_text("000001 -1\n000002  0\n")
    return tmp_path / "VOCdevkit"


def test_voc_labels_from_xml(tmp_path):
    ds = open_dataset(_make_devkit(tmp_path, with_class_files=False))
    assert ds.classes == list(VOC_CLASSES) and len(VOC_CLASSES) == 20
    assert ds.root.name == "VOC2007"
    assert ds.splits() == ["trainval", "test"]
    trainval = {s.image_id: s for s in ds.split("trainval")}
    test = {s.image_id: s for s in ds.split("test")}
    c = ds.class_index
    s1 = trainval["000001"]
    assert s1.labels.dtype == np.int8 and s1.labels.shape == (20,)
    assert s1.labels[c("horse")] == 1 and s1.labels[c("person")] == 1
    assert (np.delete(s1.labels, [c("horse"), c("person")]) == -1).all()
    assert trainval["000002"].labels[c("dog")] == 0           # only a difficult dog
    assert test["000003"].labels[c("dog")] == 1               # one clear dog is enough
    assert test["000004"].path.suffix == ".png"
    assert s1.objects[0].name == "horse" and s1.objects[0].box == (1.0, 1.0, 10.0, 8.0)
    assert "unicorn" in ds.unknown_names and len(ds.skips) == 0


def test_voc_labels_prefer_class_files(tmp_path):
    ds = open_dataset(_make_devkit(tmp_path, with_class_files=True) / "VOC2007")
    trainval = {s.image_id: s for s in ds.split("trainval")}
    c = ds.class_index
    assert trainval["000001"].labels[c("horse")] == -1        # class file says -1, XML says 1
    assert trainval["000001"].labels[c("person")] == 1        # no person file: from XML
    assert trainval["000002"].labels[c("dog")] == 0


def test_voc_classes_subset_and_unknown(tmp_path):
    root = _make_devkit(tmp_path, with_class_files=False)
    ds = open_dataset(root, classes=["person", "horse"])
    s1 = ds.split("trainval")[0]
    assert ds.classes == ["person", "horse"] and list(s1.labels) == [1, 1]
    with pytest.raises(DataError, match="unicorn.*valid: aeroplane"):
        open_dataset(root, classes=["horse", "unicorn"])
    with pytest.raises(DataError, match="no split"):
        ds.split("val")


def test_voc_bomb_is_counted_skip_and_strict_raises(tmp_path):
    root = _make_devkit(tmp_path, with_class_files=False, bomb=True)
    start = time.perf_counter()
    ds = open_dataset(root)
    test_ids = [s.image_id for s in ds.split("test")]
    assert time.perf_counter() - start < 5.0
    assert test_ids == ["000003", "000004"]
    assert len(ds.skips) == 1 and "000005.xml" in ds.skips.as_list()[0]["file"]
    strict = open_dataset(root, strict=True)
    with pytest.raises(DataError, match="000005.xml"):
        strict.split("test")


def test_voc_malformed_xml_and_missing_image_are_skips(tmp_path):
    root = _make_devkit(tmp_path, with_class_files=False)
    voc = root / "VOC2007"
    (voc / "Annotations" / "000003.xml").write_text("<annotation><object>")
    (voc / "JPEGImages" / "000004.png").unlink()
    ds = open_dataset(root)
    assert ds.split("test") == []
    reasons = " | ".join(e["reason"] for e in ds.skips.as_list())
    assert len(ds.skips) == 2 and "malformed" in reasons and "missing" in reasons


def test_voc_custom_classes_from_class_files(tmp_path):
    voc = tmp_path / "shapes"
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "JPEGImages").mkdir()
    for i in ("a", "b"):
        Image.new("L", (8, 8)).save(voc / "JPEGImages" / f"{i}.png")
    (voc / "ImageSets" / "Main" / "train.txt").write_text("a\nb\n")
    (voc / "ImageSets" / "Main" / "polygon_train.txt").write_text("a 1\nb -1\n")
    ds = open_dataset(voc)
    assert ds.classes == ["polygon"]
    assert [int(s.labels[0]) for s in ds.split("train")] == [1, -1]


def test_voc_not_a_devkit(tmp_path):
    with pytest.raises(DataError, match="ImageSets"):
        open_dataset(tmp_path)


# --------------------------------------------------------------------------- folder reader
def _make_folder(root: Path, classes: dict[str, int]) -> None:
    for cls, n in classes.items():
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (4, 4)).save(root / cls / f"{i:03d}.png")
        (root / cls / "readme.txt").write_text("not an image")


def test_folder_reader_hash_split(tmp_path):
    _make_folder(tmp_path, {"cat": 60, "dog": 40})
    ds = open_dataset(tmp_path, format="folder")
    assert ds.classes == ["cat", "dog"]
    ids = {s: [x.image_id for x in ds.split(s)] for s in ds.splits()}
    assert set(ids["train"]).isdisjoint(ids["val"]) and set(ids["trainval"]).isdisjoint(ids["test"])
    assert sorted(ids["trainval"]) == sorted(ids["train"] + ids["val"])
    assert len(ids["trainval"]) + len(ids["test"]) == 100
    assert abs(len(ids["test"]) / 100 - TEST_FRACTION) < 0.15
    for s in ds.split("test"):
        cls = s.image_id.split("/")[0]
        assert s.labels[ds.class_index(cls)] == 1 and (s.labels == 1).sum() == 1 and (s.labels == -1).sum() == 1
    again = open_dataset(tmp_path, format="folder")
    assert [x.image_id for x in again.split("test")] == ids["test"]
    assert open_dataset(tmp_path, format="auto").classes == ["cat", "dog"]


def test_folder_reader_split_dirs_and_subset(tmp_path):
    _make_folder(tmp_path / "train", {"a": 3, "b": 2, "c": 1})
    _make_folder(tmp_path / "test", {"a": 1, "b": 1})
    ds = open_dataset(tmp_path, format="folder", classes=["b", "a"])
    assert ds.splits() == ["train", "trainval", "test"]
    train = ds.split("train")
    assert len(train) == 5 and len(ds.split("test")) == 2
    assert all(s.image_id.startswith("train/") for s in train)
    b_labels = [s.labels.tolist() for s in train if s.image_id.startswith("train/b/")]
    assert b_labels == [[1, -1], [1, -1]]
    with pytest.raises(DataError, match="zebra"):
        open_dataset(tmp_path, format="folder", classes=["zebra"])
