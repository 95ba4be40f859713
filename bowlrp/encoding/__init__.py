"""Vocabularies (PCA, GMM, k-means) and encoders (Fisher vectors, rank-mapped and hard BoW)."""
from .bow import HardVqEncoder, RankBowEncoder
from .fisher import FisherEncoder
from .pooling import pool
from .posteriors import SparsePosteriors, sparse_posteriors
from .pyramid import SpatialPyramid
from .vocabulary import GmmVocabulary, KMeansVocabulary, LogJoint, PcaProjection, sample_rows

__all__ = [
    "FisherEncoder",
    "GmmVocabulary",
    "HardVqEncoder",
    "KMeansVocabulary",
    "LogJoint",
    "PcaProjection",
    "RankBowEncoder",
    "SparsePosteriors",
    "SpatialPyramid",
    "pool",
    "sample_rows",
    "sparse_posteriors",
]
