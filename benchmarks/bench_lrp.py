"""``explain_image``: the whole explanation of one 375 x 500 image by a K=256 FV + linear SVM model
(dense SIFT, PCA, FV, score, SVM and FV relevance, pixel map); no anchor. The median is timed in
process; peak memory is the maximum resident size of a separate ``bowlrp explain`` process (imports
included) on the same image and model, which also writes the npz and PNG files."""
from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from bowlrp.encoding import FisherEncoder, PcaProjection, SpatialPyramid
from bowlrp.features import DenseSift
from bowlrp.lrp import explain_image
from bowlrp.pipeline import Block, BowModel, FeaturePipeline, PipelineConfig
from bowlrp.svm import OneVsRestSvm

from .bench_fisher import fisher_setup
from .common import median_seconds, record, voc_size_image

_OTHER_IMAGES = ("astronaut", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


def benchmark_images() -> list[np.ndarray]:
    out = [voc_size_image()]
    for name in _OTHER_IMAGES:
        rgb = getattr(skimage.data, name)()
        out.append(cv2.resize(rgb, (500, 375), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)
    return out


def benchmark_model(k: int = 256, d: int = 80) -> BowModel:
    """A K=256, D=80 FV model with the 8-cell pyramid and a linear SVM trained on six images
    (the cat image positive): every stage real, only the GMM is shaped rather than fitted by EM."""
    encoder, _, _ = fisher_setup(k, d)
    sift = DenseSift(backend="vlfeat")
    images = benchmark_images()
    projection = PcaProjection(n_components=d).fit(sift.extract(images[0]).values)
    block = Block(scales=list(range(len(sift.bin_sizes))), projection=projection,
                  encoder=FisherEncoder(encoder.gmm, pyramid=SpatialPyramid()))
    features = FeaturePipeline(sift=sift, blocks=[block])
    X = np.stack([features.encode_image(im) for im in images])
    Y = np.where(np.arange(len(images)) < 3, 1, -1)[:, None]
    classifier = OneVsRestSvm(kernel="linear", C=1.0).fit(X, Y, ["cat"])
    config = PipelineConfig(n_words=k, pca_dims=d, sift_backend="vlfeat")
    return BowModel(config=config, features=features, classifier=classifier, class_names=["cat"])


def _cli_peak(model_dir: Path, image_path: Path, out_dir: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one ``bowlrp explain`` process."""
    code = "import sys; from bowlrp.cli import main; sys.exit(main(sys.argv[1:]))"
    args = [sys.executable, "-c", code, "explain", "--model", str(model_dir), "--class", "cat",
            "--out", str(out_dir), str(image_path)]
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    wall = time.perf_counter() - start
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def run(repeats: int = 5) -> list[dict]:
    model = benchmark_model()
    image = voc_size_image()
    ours_s = median_seconds(lambda: explain_image(model, image, "cat"), repeats)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model.save(tmp / "model")
        image_path = tmp / "cat.png"
        cv2.imwrite(str(image_path), cv2.cvtColor((image * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
        _cli_peak(tmp / "model", image_path, tmp / "warm")  # numba's on-disk cache filled
        cli_s, peak_mb = _cli_peak(tmp / "model", image_path, tmp / "out")
    explanation = explain_image(model, image, "cat")
    return [record("explain_image", ours_s, None, None, image_shape=list(image.shape[:2]), k=256, d=80,
                   n_descriptors=int(len(explanation.descriptor_relevance)),
                   conservation_error=float(explanation.conservation_error),
                   cli_process_s=cli_s, cli_peak_rss_mb=peak_mb)]
