"""The report of a quick study as a person sees it: rendered by headless Chromium (Debian's ``chromium``
and ``chromium-driver``, driven through Selenium), with every image loaded, no console error, every
section on the page and a screenshot that is not blank (saved under the test's tmp dir).

Chromium is installed by ``make setup`` where apt works. On a developer machine without it the test
is skipped with the reason; in CI (``CI=true``, or ``BOWLRP_REQUIRE_CHROMIUM=1``) a missing browser is a
failure, as a missing VLFeat is (:func:`conftest.require_cyvlfeat`).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bowlrp.study.report import FACES_ONLY_SECTIONS, SECTIONS, build_report

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")


def _required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("BOWLRP_REQUIRE_CHROMIUM") == "1"


@pytest.fixture
def chromium():
    """A headless Chromium WebDriver with a fresh profile, its browser console log kept."""
    browser = next((p for p in CHROMIUM if Path(p).is_file()), None)
    missing = None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        missing = f"selenium not installed ({exc})"
    if missing is None and (browser is None or not Path(DRIVER).is_file()):
        missing = "Debian's chromium and chromium-driver are not installed (make setup installs them as root)"
    if missing:
        if _required():
            pytest.fail(f"the report's browser check is required here (CI) but {missing}")
        pytest.skip(missing)
    profile = tempfile.mkdtemp(prefix="bowlrp-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1280,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _loaded_page(chromium, page: Path, sections) -> list:
    """Open ``page``; check that every image loaded, every one of ``sections`` is shown with its heading and
    some text, and the console is free of errors; returns the images' ``[src, complete, width]``."""
    chromium.get(page.resolve().as_uri())
    assert chromium.execute_script("return document.readyState") == "complete"

    images = chromium.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);")
    broken = [src for src, complete, width in images if not complete or width == 0]
    assert not broken, f"images that did not load: {broken[:5]}"

    for section in sections:
        visible = chromium.execute_script(
            "const s = document.getElementById(arguments[0]);"
            "return s !== null && s.offsetHeight > 0 && s.querySelector('h2') !== null && s.innerText.length > 40;",
            section)
        assert visible, f"section {section!r} missing or empty"

    errors = [entry for entry in chromium.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]
    assert not errors, errors
    return images


FACES_FIGURES = {"figures/faces/evaluate/accuracy.png", "figures/faces/maps/maps.png",
                 "figures/faces/maps/maps-fisher.png", "figures/faces/regions/regions.png"}


@pytest.mark.slow
def test_report_renders_in_headless_chromium(quick_study, chromium, tmp_path):
    images = _loaded_page(chromium, quick_study / "report" / "index.html", SECTIONS)
    assert len(images) >= 10
    # the faces section (the faces study in quick_study/faces) with its four figures (the FV model's maps among them), drawn
    assert {src for src, _, _ in images if src.startswith("figures/faces/")} == FACES_FIGURES
    faces_images = chromium.execute_script(
        "return Array.from(document.querySelectorAll('#faces img')).map(i => i.naturalWidth);")
    assert len(faces_images) == len(FACES_FIGURES) and min(faces_images) > 100
    assert "lies above zero" in chromium.find_element("id", "smile-test").text

    height = int(chromium.execute_script("return document.body.scrollHeight"))
    chromium.set_window_size(1280, min(height, 12000))
    shot = tmp_path / "report.png"
    assert chromium.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float64)
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    assert pixels.std() > 20, "the screenshot is blank"
    # not a page of text alone: the heatmaps put strongly coloured pixels on it
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert (saturation > 100).mean() > 0.01


@pytest.mark.slow
def test_a_faces_study_alone_renders_in_headless_chromium(small_faces_study, chromium, tmp_path):
    faces = tmp_path / "faces"
    shutil.copytree(small_faces_study, faces, ignore=shutil.ignore_patterns("models", "report"))
    build_report(faces)
    images = _loaded_page(chromium, faces / "report" / "index.html", FACES_ONLY_SECTIONS)
    assert {src for src, _, _ in images} == FACES_FIGURES
    assert chromium.execute_script("return document.getElementById('data')") is None
