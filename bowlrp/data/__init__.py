"""Data: image loading, dataset readers (Pascal VOC, image folders) and synthetic generators.

>>> from bowlrp.data import open_dataset, load_image
>>> ds = open_dataset("VOCdevkit/VOC2007")            # doctest: +SKIP
>>> img = load_image(ds.split("test")[0].path)        # doctest: +SKIP

The generators (:mod:`bowlrp.data.synth`) write the same formats, so one reader serves real and
synthetic data.
"""
from .dataset import VOC_CLASSES, Dataset, ObjectBox, Sample
from .opening import open_dataset
from .images import load_image

__all__ = ["VOC_CLASSES", "Dataset", "ObjectBox", "Sample", "open_dataset", "load_image"]
