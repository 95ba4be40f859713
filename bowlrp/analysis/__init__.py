"""Analyses of relevance maps, for FV and DNN heatmaps alike (dissertation Chapters 3-4):
regions (context ratio, Eq. 4.11; artefact boxes, Section 4.5.3), descriptor and pixel perturbation
(Section 3.4.1, Appendix C.2), tiled maps (Fig. 2.13)."""
