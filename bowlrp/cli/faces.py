"""``bowlrp faces train | evaluate | study``: age and gender models on Adience-layout faces (real Adience or
``bowlrp data synth-faces``) and the preprocessing x initialisation study (dissertation Chapter 5).

PyTorch is imported only inside the handlers that train or score a network (:mod:`bowlrp.faces.models`)."""
from __future__ import annotations

import argparse
import sys

from ..data.adience import ALIGN_CHOICES, parse_folds
from ..errors import BowlrpError
from ..persistence import atomic_write_json
from .common import add_device, add_strict, non_negative_int, positive_float, positive_int, report_skips, skip_log


def _folds(text: str) -> tuple[int, ...]:
    try:
        return parse_folds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    faces = sub.add_parser("faces", help="age and gender models on Adience-layout faces, and their study",
                           description="Age (8 Adience groups) and gender classifiers on Adience-layout faces: "
                                       "networks (one-vs-rest hinge loss, 10-crop test-time oversampling) and "
                                       "Fisher-vector models, accuracy, 1-off accuracy and confusion matrices on "
                                       "held-out folds, and the preprocessing x initialisation study with LRP on "
                                       "facial regions.",
                           epilog="example: bowlrp data synth-faces --out data/toyfaces && "
                                  "bowlrp faces train --data data/toyfaces --task age --align inplane --out models/age "
                                  "&& bowlrp faces evaluate --model models/age --data data/toyfaces --json age.json")
    actions = faces.add_subparsers(dest="faces_command", required=True, metavar="ACTION")

    train = actions.add_parser("train", parents=[common], help="train an age or gender model on some folds",
                               description="Train on the faces of the given folds (each class' label as one-vs-rest "
                                           "targets; the prediction is the best-scoring class). Network: images "
                                           "squared to --size, 10 training crops of --crop px. Resumable like "
                                           "'bowlrp dnn train'.")
    train.add_argument("--data", required=True, metavar="DIR", help="Adience-layout root (fold_*_data.txt, faces/, aligned/)")
    train.add_argument("--task", required=True, choices=("age", "gender"), help="age: 8 groups; gender: f/m")
    train.add_argument("--align", required=True, choices=ALIGN_CHOICES,
                       help="rotation: faces/ (coarse tilt aligned); inplane: aligned/ (landmark aligned); "
                            "mixed: every face in both")
    train.add_argument("--model", dest="family", choices=("dnn", "fisher"), default="dnn",
                       help="dnn: a network (default); fisher: dense SIFT + Fisher vector + linear SVMs")
    train.add_argument("--out", required=True, metavar="MODEL", help="model directory to write")
    train.add_argument("--init", metavar="FILE", help="start the network from this model directory (or state-dict "
                                                       "file) of the same architecture, all but its last layer")
    train.add_argument("--folds", type=_folds, default=(0, 1, 2, 3), metavar="0,1,...",
                       help="training folds (default 0,1,2,3; fold 4 is then the test fold)")
    train.add_argument("--arch", default="smallcnn", help="network architecture (default smallcnn)")
    train.add_argument("--epochs", type=positive_int, default=3, help="passes over all 10 crops of every face (default 3)")
    train.add_argument("--lr", type=positive_float, default=2e-3, help="AdamW learning rate (default 2e-3)")
    train.add_argument("--batch-size", type=positive_int, default=32, help="crops per step (default 32)")
    train.add_argument("--size", type=positive_int, default=None, metavar="PX",
                       help="side of the squared face (default: the image side)")
    train.add_argument("--crop", type=positive_int, default=None, metavar="PX", help="crop side (default 7/8 of --size)")
    train.add_argument("--gmm-k", type=positive_int, default=32, metavar="K", help="fisher: GMM components (default 32)")
    train.add_argument("--seed", type=non_negative_int, default=0, help="seed of weights, batch order, sampling (default 0)")
    add_device(train)
    add_strict(train, "row or image")
    train.add_argument("--no-progress", action="store_true", help="no per-epoch messages")
    train.set_defaults(handler=run_train, outputs={"out": "folder"})

    evaluate = actions.add_parser("evaluate", parents=[common], help="accuracy, 1-off accuracy and confusion on folds",
                                  description="Score the faces of the given folds (networks: mean of the 10 crops) "
                                              "and report accuracy, 1-off accuracy (age: within one group) and the "
                                              "confusion matrix (rows: true class).")
    evaluate.add_argument("--model", required=True, metavar="MODEL", help="model directory of 'bowlrp faces train'")
    evaluate.add_argument("--data", required=True, metavar="DIR", help="Adience-layout root")
    evaluate.add_argument("--folds", type=_folds, default=(4,), metavar="4", help="test folds (default 4)")
    evaluate.add_argument("--align", choices=ALIGN_CHOICES, default=None,
                          help="test images of this alignment (default: the model's own; another one swaps the test "
                               "set, as Table 5.3)")
    evaluate.add_argument("--json", metavar="OUT.json",
                          help="write {task, accuracy, one_off_accuracy, n_images, confusion, classes, align, ...}")
    add_device(evaluate)
    add_strict(evaluate, "row or image")
    evaluate.set_defaults(handler=run_evaluate, outputs={"json": "file"})

    study = actions.add_parser("study", parents=[common], help="the preprocessing x initialisation study, resumable",
                               description="Train age and gender networks for every alignment ([r] rotation, [i] "
                                           "in-plane, [m] mixed) from random weights and from a checkpoint, and a "
                                           "Fisher-vector age model on in-plane faces; evaluate "
                                           "them on the held-out fold (Table 5.2 analogue) and on the other "
                                           "alignment (Table 5.3), explain every class of a few faces with LRP "
                                           "(Fig. D.4) and measure relevance on the landmark regions per age group "
                                           "and gender with bootstrap intervals (the smile bias); JSON and figures "
                                           "in STUDY. Each step is skipped when up to date, so an interrupted study "
                                           "continues where it stopped.")
    study.add_argument("--data", required=True, metavar="DIR", help="Adience-layout root with a regions/ sidecar "
                                                                    "(toyfaces) for the region analysis")
    study.add_argument("--out", required=True, metavar="STUDY", help="study folder to write (or continue)")
    study.add_argument("--size", choices=("small", "default"), default="default",
                       help="small: age task only, 2 epochs (CI, about 1 min); default: both tasks, 3 epochs")
    study.add_argument("--init", metavar="FILE", help="checkpoint for the 'pretrained' column (a DNN model "
                                                       "directory, e.g. trained on toyvoc); default: the network of "
                                                       "the other task on mixed faces of the training folds")
    study.add_argument("--seed", type=non_negative_int, default=0, help="seed of every random choice (default 0)")
    study.set_defaults(handler=run_study, outputs={"out": "folder"})


def _report(args: argparse.Namespace):
    return (lambda msg: None) if getattr(args, "no_progress", False) else \
        (lambda msg: print(msg, file=sys.stderr, flush=True))


def run_train(args: argparse.Namespace) -> int:
    from ..dnn.config import TrainConfig
    from ..faces.models import FaceModelSpec, FisherSettings, train_face_model

    if args.family == "dnn":
        from ..dnn.classifier import check_device
        from ..dnn.models import ARCHITECTURES

        if args.arch not in ARCHITECTURES:
            raise BowlrpError(f"--arch {args.arch}: choose one of {', '.join(ARCHITECTURES)}")
        device = check_device(args.device)
    else:
        device = "cpu"
    spec = FaceModelSpec(task=args.task, align=args.align, family=args.family, folds=args.folds, init=args.init,
                         dnn=TrainConfig(arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                         size=args.size, crop=args.crop, seed=args.seed),
                         fisher=FisherSettings(gmm_k=args.gmm_k, seed=args.seed))
    skips = skip_log(args)
    record = train_face_model(args.data, spec, args.out, skips, _report(args), device)
    print(f"model written to {args.out}: {args.family} for {args.task} on {args.align} faces of folds "
          f"{','.join(map(str, args.folds))} ({record['n_images']} images)")
    report_skips(skips)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from ..faces.models import evaluate_face_model

    skips = skip_log(args)
    result = evaluate_face_model(args.model, args.data, args.folds, args.align, skips, args.device)
    one_off = "" if result["one_off_accuracy"] is None else f", 1-off {100 * result['one_off_accuracy']:.1f} %"
    print(f"{result['task']} on {result['align']} faces of folds {','.join(map(str, args.folds))}: accuracy "
          f"{100 * result['accuracy']:.1f} %{one_off} ({result['n_images']} images)")
    if args.json:
        atomic_write_json(args.json, result)
    report_skips(skips)
    return 0


def run_study(args: argparse.Namespace) -> int:
    from ..faces.study import run_faces_study

    summary = run_faces_study(args.data, args.out, args.size, args.init, args.seed)
    print(f"faces study written to {args.out} ({len(summary.ran)} step(s) run, {len(summary.skipped)} up to date)")
    return 0
