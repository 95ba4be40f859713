"""Synthetic datasets written in the real formats, so the ordinary readers serve them.

- :func:`generate_shapes`: the polygons-vs-round-shapes tiles of the thesis toy task (VOC format,
  one class ``polygon``), with large images and pixel masks.
- :func:`generate_toyvoc`: a multi-label VOC-format set with class-typical context and planted
  artefacts (watermark on horses, water under boats, sky around aeroplanes).
- :func:`generate_toyfaces`: an Adience-format face set with age/gender cues, both alignments, region
  label maps and a planted smile bias (:mod:`.faces`).

Both write ``ground_truth.json`` at the dataset root (the folder holding ``ImageSets``) and give
byte-identical trees for the same seed and parameters on the same library versions.
"""
from .shapes import generate_shapes
from .faces import generate_toyfaces
from .toyvoc import generate_toyvoc

GENERATORS = {"shapes": generate_shapes, "toyvoc": generate_toyvoc, "toyfaces": generate_toyfaces}

__all__ = ["generate_shapes", "generate_toyvoc", "generate_toyfaces", "GENERATORS"]
