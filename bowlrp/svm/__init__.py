"""SVM layer: kernels (Eq. 2.66-2.69, Appendix A.1.1), SVM training through scikit-learn, VOC AP."""
from .classifier import BinarySvm, OneVsRestSvm, trainable_classes
from .kernels import (
    AdditiveChi2,
    ExpChi2,
    HistogramIntersection,
    Kernel,
    KernelSum,
    Linear,
    Rbf,
    make_kernel,
)
from .metrics import mean_ap, voc_ap_11point, voc_ap_area

__all__ = [
    "AdditiveChi2",
    "BinarySvm",
    "ExpChi2",
    "HistogramIntersection",
    "Kernel",
    "KernelSum",
    "Linear",
    "OneVsRestSvm",
    "Rbf",
    "make_kernel",
    "trainable_classes",
    "mean_ap",
    "voc_ap_11point",
    "voc_ap_area",
]
