"""Local image features: dense SIFT (VLFeat or OpenCV backend) and descriptor geometry."""
from .descriptors import DescriptorSet
from .dsift import DenseSift, available_backends, resolve_backend

__all__ = ["DenseSift", "DescriptorSet", "available_backends", "resolve_backend"]
