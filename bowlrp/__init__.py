"""bowlrp: explain Bag-of-Words / Fisher-vector image classifiers with Layer-wise Relevance Propagation."""

__version__ = "0.1.0"
