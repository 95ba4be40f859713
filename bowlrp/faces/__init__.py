"""Faces (dissertation Chapter 5, SPEC §6.5): age and gender models on Adience-layout data and the study of
how preprocessing and initialisation change their accuracy and strategy.

==================  ===============================================================================
:mod:`.models`      training (DNN and FV, one-vs-rest), 10-crop prediction, accuracy, 1-off, confusion
:mod:`.regions`     LRP maps of every class of a face, relevance on the landmark regions, bootstrap CIs
:mod:`.study`       the resumable study (``bowlrp faces study``): tables 5.2/5.3 analogues, maps, regions
==================  ===============================================================================

Nothing here imports PyTorch at module level.
"""
