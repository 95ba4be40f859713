"""``explain_memory``: peak resident memory of one ``bowlrp explain`` process (imports included, writing
the npz and both PNGs) on synthetic photos of 0.3, 12 and 81 MP, with a K=16 FV model trained once on
the small toyvoc set. Target: under 1 GB at every size (issue 14, defect 4).

Each size runs in its own process, so the peaks do not mix (the child's own peak resident size,
``VmHWM``, which unlike ``ru_maxrss`` leaves out the parent it was forked from). The anchor, measured in the same run and the same way, is merely decoding the same
file with PIL into a float64 array, as the image loading used to; explaining then cost several such
copies (main before the fix: 0.64 GB at 0.3 MP, 2.5 GB at 12 MP, MemoryError at 81 MP after 11.8 GB).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from .common import record

SIZES = {"0.3mp": (480, 640), "12mp": (3000, 4000), "81mp": (9000, 9000)}
TARGET_MB = 1024
ROOT = Path(__file__).resolve().parents[1]
# the peak is the child's own VmHWM, printed as it ends: its ru_maxrss would include the benchmark
# process it was forked from (hundreds of MB), which exec does not reset
PEAK = "; print('PEAK_KB', next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))"
ANCHOR = ("import sys; import numpy as np; from PIL import Image; "
          "a = np.asarray(Image.open(sys.argv[1]).convert('RGB'), dtype=np.float64)" + PEAK)
EXPLAIN = "import sys; from bowlrp.cli import main; code = main(sys.argv[1:])" + PEAK + "; sys.exit(code)"


def synthetic_photo(path: Path, rows: int, cols: int, seed: int = 0) -> None:
    """A smooth random colour texture of ``rows x cols`` as a JPEG: random colours on a coarse grid,
    bicubically enlarged (fast at any size, and not a flat image a decoder could shortcut)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, rows // 40), max(2, cols // 40), 3), dtype=np.uint8)
    cv2.imwrite(str(path), cv2.resize(coarse, (cols, rows), interpolation=cv2.INTER_CUBIC),
                [cv2.IMWRITE_JPEG_QUALITY, 90])


def child_peak(args: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process, which must succeed."""
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    peak_kb = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("PEAK_KB")][-1]
    return wall, int(peak_kb) / 1024.0


def bowlrp(*args: str) -> list[str]:
    return [sys.executable, "-c", EXPLAIN, *args]


def run(repeats: int = 1) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run(bowlrp("data", "synth-voc", "--out", str(tmp / "toy"), "--size", "small"), cwd=ROOT,
                       check=True, capture_output=True)
        subprocess.run(bowlrp("train", "--data", str(tmp / "toy"), "--out", str(tmp / "model"), "--gmm-k", "16",
                              "--classes", "horse,boat", "--C", "1", "--max-descriptors", "20000", "--no-progress"),
                       cwd=ROOT, check=True, capture_output=True)
        child_peak(bowlrp("explain", "--model", str(tmp / "model"), "--class", "horse", "--out", str(tmp / "warm"),
                          str(next((tmp / "toy" / "JPEGImages").glob("*.jpg")))))  # numba's on-disk cache filled
        for name, (height, width) in SIZES.items():
            image = tmp / f"photo-{name}.jpg"
            synthetic_photo(image, height, width)
            seconds, peak = child_peak(bowlrp("explain", "--model", str(tmp / "model"), "--class", "horse",
                                              "--out", str(tmp / f"out-{name}"), str(image)))
            anchor_s, anchor_peak = child_peak([sys.executable, "-c", ANCHOR, str(image)])
            relevance = np.load(tmp / f"out-{name}" / f"photo-{name}.npz")["relevance"]
            rows.append(record(f"explain_memory_{name}", seconds, "PIL decode to float64 (the old image loading)",
                               anchor_s, image_shape=[height, width], megapixels=height * width / 1e6,
                               peak_rss_mb=peak, target_mb=TARGET_MB, meets_target=peak < TARGET_MB,
                               anchor_peak_rss_mb=anchor_peak, rss_ratio=peak / anchor_peak,
                               map_shape=list(relevance.shape), map_dtype=str(relevance.dtype)))
            print(f"{name}: explain peak {peak:.0f} MB in {seconds:.1f} s; PIL float64 decode {anchor_peak:.0f} MB",
                  flush=True)
            image.unlink()
    return rows


def run_store(repeats: int = 1) -> list[dict]:
    """``explain_store_memory``: the same peak for the other two ways an 81 MP photo is explained — a split
    into a relevance store (``explain --store``: the part file written streaming, then assembled into the
    HDF5 file), and a network (``dnn explain``, PyTorch's own ~200 MB included). The 1 GB target is the
    FV command's (issue 14); the network's figure is reported beside it, not held to it."""
    rows = []
    height, width = SIZES["81mp"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        quiet = {"cwd": ROOT, "check": True, "capture_output": True}
        subprocess.run(bowlrp("data", "synth-voc", "--out", str(tmp / "toy"), "--size", "small"), **quiet)
        subprocess.run(bowlrp("train", "--data", str(tmp / "toy"), "--out", str(tmp / "model"), "--gmm-k", "16",
                              "--classes", "horse,boat", "--C", "1", "--max-descriptors", "20000", "--no-progress"),
                       **quiet)
        subprocess.run(bowlrp("dnn", "train", "--data", str(tmp / "toy"), "--out", str(tmp / "cnn"), "--epochs", "1",
                              "--no-progress"), **quiet)
        folder = tmp / "folder"  # an image-folder dataset whose test split is the one photo
        for split, name in (("test", "horse"), ("test", "boat"), ("train", "horse"), ("train", "boat")):
            (folder / split / name).mkdir(parents=True)
        image = folder / "test" / "horse" / "photo.jpg"
        synthetic_photo(image, height, width)
        anchor_s, anchor_peak = child_peak([sys.executable, "-c", ANCHOR, str(image)])
        runs = {
            "explain_store_memory_81mp": (bowlrp("explain", "--model", str(tmp / "model"), "--class", "horse",
                                                 "--data", str(folder), "--format", "folder", "--split", "test",
                                                 "--store", str(tmp / "fv.h5"), "--no-progress"), True),
            "dnn_explain_memory_81mp": (bowlrp("dnn", "explain", "--model", str(tmp / "cnn"), "--class", "horse",
                                               "--out", str(tmp / "dnn-out"), str(image)), False),
        }
        for name, (command, held_to_target) in runs.items():
            seconds, peak = child_peak(command)
            rows.append(record(name, seconds, "PIL decode to float64 (the old image loading)", anchor_s,
                               image_shape=[height, width], megapixels=height * width / 1e6, peak_rss_mb=peak,
                               target_mb=TARGET_MB if held_to_target else None,
                               meets_target=(peak < TARGET_MB) if held_to_target else None,
                               anchor_peak_rss_mb=anchor_peak, rss_ratio=peak / anchor_peak))
            print(f"{name}: peak {peak:.0f} MB in {seconds:.1f} s", flush=True)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
