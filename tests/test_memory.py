"""Memory bounded by the work image, not the photo (issue 14, defect 4): the pixel limit, uint8 images,
float32 maps made a band at a time, band-wise heatmaps and PNGs, and one explain process's peak."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bowlrp.cli import main
from bowlrp.data.images import MAX_IMAGE_PIXELS, PIXEL_LIMIT_ENV, load_image, read_image
from bowlrp.errors import ImageError
from bowlrp.heatmap import colorize, colorize_bands, overlay, overlay_bands, write_png, write_png_bands
from bowlrp.lrp.pixels import area_weights, to_original

ROOT = Path(__file__).resolve().parents[1]


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width x height`` RGB pixels and holds none (an empty IDAT): a file of a few
    dozen bytes that only a reader checking the header before decoding refuses cheaply."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def test_an_image_over_the_pixel_limit_is_refused_from_its_header_in_one_line(tmp_path):
    # 86.5 MP: over bowlrp's 85 MP, under PIL's own bomb threshold (89.5 MP), which let it through before
    path = png_header_only(tmp_path / "huge.png", 9300, 9300)
    assert 9300 * 9300 > MAX_IMAGE_PIXELS
    for reader in (load_image, read_image):
        with pytest.raises(ImageError) as caught:
            reader(path)
        message = str(caught.value)
        assert "\n" not in message and str(path) in message and "9300x9300" in message
        assert "pixel limit of 85 MP" in message and PIXEL_LIMIT_ENV in message


def test_the_pixel_limit_is_set_by_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    Image.new("RGB", (40, 30)).save(path)
    monkeypatch.setenv(PIXEL_LIMIT_ENV, "1000")
    with pytest.raises(ImageError, match="40x30 px .* over the pixel limit of 0.001 MP"):
        read_image(path)
    monkeypatch.setenv(PIXEL_LIMIT_ENV, "1200")
    assert read_image(path).shape == (30, 40, 3)
    monkeypatch.setenv(PIXEL_LIMIT_ENV, "lots")
    with pytest.raises(Exception, match=f"{PIXEL_LIMIT_ENV}='lots' is not a positive whole number"):
        read_image(path)


def test_explain_counts_an_over_limit_image_as_a_skip(tiny_fv_model, small_toyvoc, tmp_path, capsys):
    huge = png_header_only(tmp_path / "huge.png", 9300, 9300)
    good = sorted((small_toyvoc / "JPEGImages").glob("*.jpg"))[0]
    code = main(["explain", "--model", str(tiny_fv_model), "--class", "horse", "--out", str(tmp_path / "out"),
                 str(good), str(huge)])
    err = capsys.readouterr().err
    assert code == 0 and "skipped 1 file(s):" in err and f"{huge}: 9300x9300 px" in err and "Traceback" not in err
    assert (tmp_path / "out" / f"{good.stem}.npz").exists() and not (tmp_path / "out" / "huge.npz").exists()


def test_read_image_keeps_8_bit_images_as_uint8_with_load_images_values(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    files = {"rgb.png": Image.fromarray(rgb), "grey.png": Image.fromarray(rgb[..., 0]),
             "palette.png": Image.fromarray(rgb).convert("P"), "photo.jpg": Image.fromarray(rgb),
             "cmyk.jpg": Image.fromarray(rgb).convert("CMYK")}
    for name, img in files.items():
        img.save(tmp_path / name)
        compact, full = read_image(tmp_path / name), load_image(tmp_path / name)
        assert compact.dtype == np.uint8 and compact.shape == full.shape == (37, 53, 3), name
        assert np.array_equal(compact.astype(np.float32) / np.float32(255.0), full), name
    Image.fromarray(np.dstack([rgb, rgb[..., :1]]), "RGBA").save(tmp_path / "alpha.png")
    assert read_image(tmp_path / "alpha.png").dtype == np.float32  # composited on white: not k / 255


def test_the_map_is_made_in_float32_without_a_full_size_float64_array():
    rng = np.random.default_rng(1)
    work = rng.normal(size=(480, 640))
    shape = (3000, 4000)  # a 12 MP photo: its float32 map is 48 MB, a float64 one 96 MB
    tracemalloc.start()
    try:
        full = to_original(work, shape, dtype=np.float32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert full.dtype == np.float32 and full.shape == shape
    assert peak < full.nbytes + 40e6, peak / 1e6  # the map, bands of 8 MB and A_x (20 MB); no float64 map
    reference = area_weights(shape[0], 480).T @ work @ area_weights(shape[1], 640)
    np.testing.assert_allclose(full, reference, rtol=1e-6, atol=1e-12)
    assert abs(full.sum(dtype=np.float64) - work.sum()) < 1e-6 * np.abs(work).sum()


def test_band_wise_pictures_equal_the_whole_image_formulas(tmp_path, monkeypatch):
    import bowlrp.heatmap as heatmap

    rng = np.random.default_rng(2)
    R = rng.normal(size=(61, 47)).astype(np.float32)
    image = rng.integers(0, 256, (61, 47, 3), dtype=np.uint8)
    v = R.astype(np.float64) / np.abs(R.astype(np.float64)).max()  # the formulas, written out whole
    pos, neg = np.clip(v, 0, None), np.clip(-v, 0, None)
    heat = np.rint(np.stack([1 - neg, 1 - pos - neg, 1 - pos], axis=-1) * 255).astype(np.uint8)
    grey = (image.astype(np.float64) / 255.0) @ np.array([0.299, 0.587, 0.114])
    alpha = 0.85 * np.abs(v)[..., None]
    blended = np.rint((np.repeat(grey[..., None], 3, 2) * (1 - alpha) + heat / 255.0 * alpha) * 255).astype(np.uint8)
    monkeypatch.setattr(heatmap, "_BAND_PIXELS", 100)  # bands of 2 rows
    assert len(list(colorize_bands(R))) == 31
    assert np.array_equal(colorize(R), heat) and np.array_equal(np.concatenate(list(colorize_bands(R))), heat)
    assert np.array_equal(overlay(image, R), blended)
    assert np.array_equal(np.concatenate(list(overlay_bands(image, R))), blended)
    write_png(tmp_path / "heat.png", heat)
    write_png_bands(tmp_path / "blend.png", 47, 61, overlay_bands(image, R))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "heat.png")), heat)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "blend.png")), blended)
    with pytest.raises(ValueError, match="60 rows given for a PNG of 61"):
        write_png_bands(tmp_path / "short.png", 47, 61, [heat[:60]])
    assert not (tmp_path / "short.png").exists()


def test_explaining_a_12_mp_photo_stays_under_1_gb(tiny_fv_model, tmp_path):
    """One ``bowlrp explain`` process on a 4000 x 3000 JPEG, imports and outputs included (main: 2.5 GB)."""
    rng = np.random.default_rng(3)
    coarse = rng.integers(0, 256, (75, 100, 3), dtype=np.uint8)
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), cv2.resize(coarse, (4000, 3000), interpolation=cv2.INTER_CUBIC))
    # VmHWM: this process's own peak (ru_maxrss would include the pytest process it was forked from)
    code = ("import sys; from bowlrp.cli import main; code = main(sys.argv[1:]); "
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM'))); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code, "explain", "--model", str(tiny_fv_model), "--class", "horse",
                           "--out", str(tmp_path / "out"), str(photo)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    peak_mb = int(done.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mb < 1024, peak_mb
    saved = np.load(tmp_path / "out" / "photo.npz")["relevance"]
    assert saved.shape == (3000, 4000) and saved.dtype == np.float32
    assert np.asarray(Image.open(tmp_path / "out" / "photo_overlay.png")).shape == (3000, 4000, 3)


def test_a_store_part_is_written_without_its_archive_in_memory(tmp_path):
    # an 81 MP map's part file used to be built whole in memory (npz_bytes) before it was written, and
    # numpy's write_array copies up to 16 MB a piece: the map is written 1 MB at a time (31.6 MB before)
    from bowlrp.store import write_part

    rng = np.random.default_rng(0)
    relevance = rng.standard_normal((1500, 1500)).astype(np.float32)  # 9 MB that deflate cannot shrink
    image = tmp_path / "photo.png"
    image.write_bytes(b"not read: only its digest is taken")
    arrays = {"relevance": relevance, "score": np.array(1.0)}
    tracemalloc.start()
    try:
        write_part(tmp_path / "parts", 0, arrays, "photo", image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < relevance.nbytes / 2, f"writing the part peaked at {peak / 1e6:.1f} MB"
    with np.load(tmp_path / "parts" / "000000.npz", allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["relevance"], relevance)
        assert str(npz["image_id"]) == "photo"
