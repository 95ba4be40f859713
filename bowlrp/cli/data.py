"""``bowlrp data synth-voc | synth-shapes | synth-faces | inspect``: the embedded datasets, and a look at any dataset."""
from __future__ import annotations

import argparse

import numpy as np

from ..data import open_dataset
from ..data.synth import generate_shapes, generate_toyfaces, generate_toyvoc
from .common import add_data_source, non_negative_int, report_skips


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    data = sub.add_parser("data", help="synthesise or inspect datasets",
                          description="Synthesise the embedded datasets or inspect a dataset.")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    _add_synth_parser(actions, common, "synth-voc", run_synth_voc, ("small", "default", "large"),
                      "small: 80 tiny images (tests); default: 800 images of 240 px; large: 2000 VOC-size images",
                      help="write the toyvoc dataset (VOC format + ground_truth.json)",
                      description="Write toyvoc: a VOC-format multi-label dataset with planted "
                                  "artefacts (horse watermark, boats on water, aeroplanes in sky) "
                                  "and all 20 VOC classes in class-typical scenes, "
                                  "recorded in ground_truth.json. Same seed, same bytes.")
    _add_synth_parser(actions, common, "synth-shapes", run_synth_shapes, ("small", "default"),
                      "default: 24 training and 4 test images of 510 px (600 and 676 tiles); small: 2 and 1 "
                      "of 306 px (18 and 49 tiles, for tests)",
                      help="write the polygon-vs-round shapes task (Section 2.4.3)",
                      description="Write the shapes task: 102x102 tiles (VOC format, class "
                                  "'polygon') cut from large images, with pixel masks.")
    _add_synth_parser(actions, common, "synth-faces", run_synth_faces, ("small", "default"),
                      "small: 240 faces of 40 px (tests, CI); default: 2800 faces of 64 px",
                      help="write the toyfaces set (Adience format, both alignments, region maps)",
                      description="Write toyfaces: procedural faces whose age and gender show through "
                                  "cues (proportions, wrinkles, grey hair, beard, glasses, hair length), "
                                  "in the Adience layout (fold_0..4_data.txt; faces/ rotation aligned, "
                                  "aligned/ in-plane aligned), with region label maps under regions/ and "
                                  "ground_truth.json. Planted bias: smiling mostly in the groups 15-43. "
                                  "Same seed, same bytes.")
    inspect = actions.add_parser("inspect", parents=[common],
                                 help="summarise a dataset: splits, classes, positives per class")
    add_data_source(inspect)
    inspect.set_defaults(handler=run_inspect)


def _add_synth_parser(actions, common: argparse.ArgumentParser, name: str, handler, sizes: tuple[str, ...],
                      size_help: str, **texts: str) -> None:
    """One ``data synth-*`` action: the generator's ``--out``, ``--overwrite``, ``--seed`` and ``--size``."""
    parser = actions.add_parser(name, parents=[common], **texts)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the dataset into")
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset generated there before")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the generator (default 0)")
    parser.add_argument("--size", choices=sizes, default="default", help=size_help)
    parser.set_defaults(handler=handler, outputs={"out": "folder"})


def run_synth_voc(args: argparse.Namespace) -> int:
    root = generate_toyvoc(args.out, seed=args.seed, size=args.size, overwrite=args.overwrite)
    print(f"toyvoc ({args.size}, seed {args.seed}) written to {root}")
    return 0


def run_synth_shapes(args: argparse.Namespace) -> int:
    root = generate_shapes(args.out, seed=args.seed, size=args.size, overwrite=args.overwrite)
    print(f"shapes task (seed {args.seed}) written to {root}")
    return 0


def run_synth_faces(args: argparse.Namespace) -> int:
    root = generate_toyfaces(args.out, seed=args.seed, size=args.size, overwrite=args.overwrite)
    print(f"toyfaces ({args.size}, seed {args.seed}) written to {root}")
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    dataset = open_dataset(args.data, format=args.format, strict=args.strict)
    for split in dataset.splits():
        samples = dataset.split(split)
        print(f"{split}: {len(samples)} images")
        if samples:
            labels = np.stack([s.labels for s in samples])
            for c, name in enumerate(dataset.classes):
                n_pos = int((labels[:, c] == 1).sum())
                if n_pos:
                    print(f"  {name:<14} {n_pos:5d} positive")
    report_skips(dataset.skips)
    return 0
