"""Speed benchmarks, each timing our code and its anchor side by side in the same run.

``make bench`` (``python -m benchmarks.run``) writes ``benchmarks/results/latest.json``: a list of
``{"name", "ours_s", "anchor", "anchor_s", "ratio", "machine", "versions"}`` records with
``ratio = ours_s / anchor_s`` (below 1: faster than the anchor). Times are medians of repeats.
"""
