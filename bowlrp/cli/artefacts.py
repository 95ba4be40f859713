"""``bowlrp artefacts watermark | padding``: prove a suspected Clever-Hans strategy by editing the images
(dissertation Sections 6.2-6.3: the copyright tag of "horse", the padding of "aeroplane")."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.padding import SKY_BLUE, STRATEGIES, format_padding_table, padding_experiment, plot_padding
from ..analysis.watermark import (DILATE, MARGIN, RADIUS, file_patch, plot_watermark, read_regions,
                                  sidecar_regions, watermark_experiment)
from ..errors import BowlrpError
from ..model import load_model
from ..persistence import atomic_write_json
from ..runs import contains_class, labelled_split
from .common import add_data_source, add_device, add_model, non_negative_int, note, positive_float, positive_int


def _colour(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"three comma-separated values in [0, 1] (R,G,B), got {text!r}")
    return values  # type: ignore[return-value]


def _common(parser: argparse.ArgumentParser, default_class: str) -> None:
    add_model(parser)
    add_data_source(parser)
    parser.add_argument("--split", default="test", help="split whose images are edited (default test)")
    parser.add_argument("--class", dest="class_name", required=True, metavar="NAME",
                        help=f"class whose score is measured (e.g. {default_class})")
    parser.add_argument("--n-images", type=positive_int, metavar="N", help="only the first N images (of each part)")
    parser.add_argument("--json", required=True, metavar="OUT.json", help="results (see the description)")
    parser.add_argument("--plot", metavar="OUT.png", help="bar chart with 95 %% intervals (default: OUT.json's "
                                                          "path with .png)")
    add_device(parser, None)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(outputs={"json": "file", "plot": "file"})


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("artefacts", help="remove/paste a tag, pad images: does the model use the artefact?",
                           description="Edit images and measure a class score, for BoW/FV and DNN models alike "
                                       "(dissertation Sections 6.2-6.3).")
    actions = group.add_subparsers(dest="artefacts_command", required=True, metavar="ACTION")

    watermark = actions.add_parser(
        "watermark", parents=[common], help="remove the copyright tag from tagged images, paste it onto others",
        description="Remove the tag from every tagged image of the split (OpenCV Telea inpainting of its box, grown "
                    "by --dilate pixels against JPEG smear) and paste it onto every untagged image without the "
                    "class (the box's pixels from one tagged image, at the same place relative to the bottom-left "
                    "corner, scaled by the long sides). Reports the change of the class score per image, its mean "
                    "with a 95% t-interval, and the share of decisions whose sign flips. As a control, the same patch "
                    "cut after removing its tag is pasted too (what the patch's background does alone). JSON: "
                    "{remove: {delta_mean, ci95, n, flip_share, per_image}, remove_with_class: {...}, paste: {...}, "
                    "paste_control: {...}, notes, skipped}. "
                    "Tag boxes come from toyvoc's ground_truth.json, or --boxes.",
        epilog="example: bowlrp artefacts watermark --model models/fv --data data/toyvoc --class horse "
               "--json wm.json   (writes wm.png beside it)")
    _common(watermark, "horse")
    watermark.add_argument("--boxes", metavar="FILE",
                           help="where the tag is, for data without ground_truth.json: a JSON file {\"<image id>\": "
                                "[[xmin, ymin, xmax, ymax], ...]}, a CSV file with the header "
                                "image_id,xmin,ymin,xmax,ymax, or a folder of masks <image id>.png (non-zero on the "
                                "tag); boxes 1-based inclusive as VOC's, clipped to the image")
    watermark.add_argument("--patch-from", metavar="ID",
                           help="image id to cut the pasted patch from (default: the first tagged image of the "
                                "split that contains the class)")
    watermark.add_argument("--patch", metavar="IMAGE",
                           help="paste this image instead, unscaled, --margin pixels from the left and bottom borders")
    watermark.add_argument("--margin", type=non_negative_int, default=MARGIN, help=f"see --patch (default {MARGIN})")
    watermark.add_argument("--dilate", type=non_negative_int, default=DILATE,
                           help=f"pixels the box grows before inpainting, to cover JPEG smear (default {DILATE})")
    watermark.add_argument("--radius", type=positive_float, default=RADIUS, help=f"inpainting radius (default {RADIUS})")
    watermark.set_defaults(handler=run_watermark)

    padding = actions.add_parser(
        "padding", parents=[common], help="six ways of making images square, score change vs copy-border",
        description="Make every image of the split square in six ways before the model sees it: "
                    f"{', '.join(STRATEGIES[1:])}, and {STRATEGIES[0]} (the reference). Reports the mean change of the class score vs "
                    "copy-border with a 95% t-interval, for images with and without the class, landscape "
                    "(padded above and below) and portrait (padded left and right) apart (Figs. 6.8, 6.11). JSON: "
                    "{rows: [{strategy, target, orientation, delta_mean, ci95, n}], overall: [...both orientations], "
                    "per_image, n_square}.",
        epilog="example: bowlrp artefacts padding --model models/cnn --data data/toyvoc --class aeroplane "
               "--json pad.json")
    _common(padding, "aeroplane")
    padding.add_argument("--seed", type=non_negative_int, default=0, help="seed of the noise and random colours (default 0)")
    padding.add_argument("--sky-colour", type=_colour, default=SKY_BLUE, metavar="R,G,B",
                         help="the sky-blue padding colour in [0, 1] (default %s: toyvoc's sky)"
                              % ",".join(f"{v:g}" for v in SKY_BLUE))
    padding.set_defaults(handler=run_padding)


def _open(args: argparse.Namespace):
    model = load_model(args.model, args.device)
    model.class_index(args.class_name)  # a class the model does not know: one line naming those it does
    dataset, samples, labels = labelled_split(args.data, args.split, args.format, classes=[args.class_name],
                                              strict=args.strict)
    return model, dataset, samples, contains_class(labels[:, 0])


def _plot_path(args: argparse.Namespace) -> Path:
    return Path(args.plot) if args.plot else Path(args.json).with_suffix(".png")


def run_watermark(args: argparse.Namespace) -> int:
    if args.patch and args.patch_from:
        raise BowlrpError("give --patch IMAGE or --patch-from ID, not both")
    if args.dilate < 0 or args.radius <= 0:
        raise BowlrpError("--dilate must be >= 0 and --radius > 0")
    model, dataset, samples, contains = _open(args)
    regions = read_regions(args.boxes) if args.boxes else sidecar_regions(dataset.root)
    patch = file_patch(args.patch, args.margin) if args.patch else None
    all_samples = [s for split in dataset.splits() for s in dataset.split(split)] if args.patch_from else None
    result = watermark_experiment(model, samples, contains, args.class_name, regions, patch=patch,
                                  patch_from=args.patch_from, all_samples=all_samples, n_images=args.n_images,
                                  dilate=args.dilate, radius=args.radius, show_progress=not args.no_progress)
    result["settings"].update({"data": str(Path(args.data).resolve()), "split": args.split,
                               "boxes": args.boxes or "ground_truth.json"})
    atomic_write_json(args.json, result)
    plot_watermark(result, _plot_path(args))
    print(f"f({args.class_name}) of {result['variant']} model {args.model}, split {args.split}:")
    for name, what in (("remove", "tag removed, tagged images"), ("remove_with_class", f"  of them with {args.class_name}"),
                       ("paste", f"tag pasted, images without {args.class_name}"),
                       ("paste_control", "  control: patch with the tag removed")):
        if name not in result:
            continue
        s = result[name]
        if not s["n"]:
            print(f"  {what:<40} no images")
            continue
        ci = "—" if s["ci95"][0] is None else f"[{s['ci95'][0]:+.3f}, {s['ci95'][1]:+.3f}]"
        print(f"  {what:<40} mean Δf {s['delta_mean']:+.3f}  95% CI {ci}  n={s['n']}  "
              f"flipped {s['flip_share']:.0%}")
    for message in result["notes"]:
        note(message)
    print(f"written {args.json} and {_plot_path(args)}")
    return 0


def run_padding(args: argparse.Namespace) -> int:
    model, _, samples, contains = _open(args)
    result = padding_experiment(model, samples, contains, args.class_name, seed=args.seed, sky=args.sky_colour,
                                n_images=args.n_images, show_progress=not args.no_progress)
    result["settings"].update({"data": str(Path(args.data).resolve()), "split": args.split})
    atomic_write_json(args.json, result)
    plot_padding(result, _plot_path(args))
    print(f"change of f({args.class_name}) vs copy-border, {result['variant']} model {args.model}, "
          f"split {args.split}:")
    print(format_padding_table(result))
    if result["n_square"]:
        note(f"{result['n_square']} square image(s) need no padding and are left out")
    if result["skipped"]:
        note(f"{len(result['skipped'])} unreadable image(s) skipped (see 'skipped' in the JSON)")
    print(f"written {args.json} and {_plot_path(args)}")
    return 0
