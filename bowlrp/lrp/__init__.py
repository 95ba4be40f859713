"""Layer-wise Relevance Propagation for the BoW / Fisher-vector pipeline, one backward step per
forward stage (Fig. 2.11, Algorithm 2):

=====================  ==================================  =====================================
forward stage          computed in                          explained in
=====================  ==================================  =====================================
kernel SVM             :mod:`bowlrp.svm`                    :mod:`.svm` (exact), :mod:`.taylor`
Fisher vector          :mod:`bowlrp.encoding.fisher`        :mod:`.fisher`
rank-BoW / hard VQ     :mod:`bowlrp.encoding.bow`           :mod:`.bow`
dense SIFT             :mod:`bowlrp.features`               :mod:`.pixels`
the whole pipeline     :mod:`bowlrp.pipeline`               :mod:`.explain`
=====================  ==================================  =====================================

The encoder-layer rules (epsilon, alpha-beta, |z|) are in :mod:`.rules`.
"""
from ..explanation import Explanation
from .explain import BowLrp, explain_image, explain_path
from .rules import EncoderRule

__all__ = ["BowLrp", "EncoderRule", "Explanation", "explain_image", "explain_path"]
