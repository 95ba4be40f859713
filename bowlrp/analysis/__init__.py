"""Analyses of relevance maps and of models, for FV and DNN alike (dissertation Chapters 3-4 and 6).

===========================  ==============================================================
:mod:`.regions`              relevance inside and outside boxes (Eq. 4.11; artefact boxes)
:mod:`.context`              mu per image and class from relevance stores (``bowlrp context``)
:mod:`.render`               a store's maps as figures: colour bar, score, books, panels (``bowlrp render``)
:mod:`.perturbation`         AOPC (Eq. 3.7), curve statistics and plots, resumable split runs
:mod:`.region_perturbation`  pixel-region MoRF curves for any model (Section 3.4)
:mod:`.region_fisher`        the same curves for FV models without re-running the pipeline
:mod:`.descriptor_replacement`  FV descriptors replaced by GMM samples (Appendix C.2)
:mod:`.tiles`                tile maps merged into their large images (Fig. 2.13)
:mod:`.artefacts`            score changes of edited images: t-intervals, flips, bar charts
:mod:`.watermark`            copyright tag removed (inpainting) and pasted (Sections 6.2-6.3)
:mod:`.padding`              six ways of squaring an image vs copy-border (Section 6.3.1)
:mod:`.spray`                SpRAy: spectral analysis of one set of maps (Ch. 6, Algorithm 3)
:mod:`.spray_classes`        SpRAy per class over relevance stores, classes ranked (``bowlrp spray``)
:mod:`.spray_plots`          SpRAy figures: spectra, t-SNE by cluster, central maps per cluster
:mod:`.virelay`              SpRAy results exported for the ViRelAy viewer
===========================  ==============================================================
"""
