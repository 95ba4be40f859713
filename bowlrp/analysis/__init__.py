"""Analyses of relevance maps, for FV and DNN heatmaps alike (SPEC §6): regions (context ratio,
artefact boxes), descriptor and pixel perturbation, tiled maps."""
