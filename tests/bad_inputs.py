"""The bad-input corpus of the command line: arguments, outputs and model files a careless or hostile
user gives, each with the exit status and the one line it must end in.

Every case must end in exit 2 (a usage error, found while the arguments are read) or exit 1 (a file
that cannot be used), with one line on stderr that names the flag or the file, and never a
traceback. ``tests/test_bad_inputs.py`` runs the table through ``bowlrp.cli.main`` in-process.

As a script it writes the damaged model directories next to a good one and prints the table::

    python tests/bad_inputs.py CORPUS_DIR --model MODEL_DIR --data DATA_DIR

Placeholders in a case's arguments: ``{model}`` a good model directory, ``{data}`` a VOC dataset,
``{image}`` one of its images, ``{file}`` an existing plain file, ``{folder}`` an existing folder,
``{out}`` a fresh path that does not exist yet, ``{huge}`` an image over the pixel limit, ``{damaged:<name>}`` a damaged copy of ``{model}``
(:data:`DAMAGED_MODELS`).
"""
from __future__ import annotations

import argparse
import json
import shutil
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

USAGE, BAD_FILE = 2, 1


@dataclass(frozen=True)
class Case:
    """One bad command line: ``argv`` (with placeholders), the exit status, and what the line must name."""

    name: str
    argv: tuple[str, ...]
    exit_code: int
    names: str  # a flag ("--C") or a placeholder ("{file}") whose value the error line must contain


def _train(*extra: str) -> tuple[str, ...]:
    return ("train", "--data", "{data}", "--out", "{out}", *extra)


def _explain(*extra: str) -> tuple[str, ...]:
    return ("explain", "--model", "{model}", "--class", "horse", "--out", "{out}", "{image}", *extra)


def _perturb(*extra: str) -> tuple[str, ...]:
    return ("perturb", "--model", "{model}", "--data", "{data}", "--class", "horse", "--json", "{out}", *extra)


def _watermark(*extra: str) -> tuple[str, ...]:
    return ("artefacts", "watermark", "--model", "{model}", "--data", "{data}", "--class", "horse", "--json",
            "{out}", *extra)


USAGE_CASES = [
    Case("C negative", _train("--C", "-1"), USAGE, "--C"),
    Case("C nan", _train("--C", "nan"), USAGE, "--C"),
    Case("C inf", _train("--C", "inf"), USAGE, "--C"),
    Case("pca-dims negative", _train("--pca-dims", "-5"), USAGE, "--pca-dims"),
    Case("max-descriptors 0", _train("--max-descriptors", "0"), USAGE, "--max-descriptors"),
    Case("step 0", _train("--step", "0"), USAGE, "--step"),
    Case("max-rows 0", _train("--max-rows", "0"), USAGE, "--max-rows"),
    Case("bin-sizes 0", _train("--bin-sizes", "0"), USAGE, "--bin-sizes"),
    Case("bin-sizes not numbers", _train("--bin-sizes", "4,x"), USAGE, "--bin-sizes"),
    Case("bin-sizes empty", _train("--bin-sizes", ","), USAGE, "--bin-sizes"),
    Case("vq vocab-size 0", _train("--encoder", "vq", "--vocab-size", "0"), USAGE, "--vocab-size"),
    Case("gmm-k 0", _train("--gmm-k", "0"), USAGE, "--gmm-k"),
    Case("train seed negative", _train("--seed", "-1"), USAGE, "--seed"),
    Case("pooling below 1", _train("--pooling", "0.5"), USAGE, "--pooling"),
    Case("eps nan", _explain("--eps", "nan"), USAGE, "--eps"),
    Case("eps negative", _explain("--eps", "-1"), USAGE, "--eps"),
    Case("alpha below 1", _explain("--alpha", "0.5"), USAGE, "--alpha"),
    Case("dnn epochs 0", ("dnn", "train", "--data", "{data}", "--out", "{out}", "--epochs", "0"), USAGE, "--epochs"),
    Case("dnn lr 0", ("dnn", "train", "--data", "{data}", "--out", "{out}", "--lr", "0"), USAGE, "--lr"),
    Case("dnn batch-size 0", ("dnn", "train", "--data", "{data}", "--out", "{out}", "--batch-size", "0"), USAGE,
         "--batch-size"),
    Case("dnn crop 0", ("dnn", "train", "--data", "{data}", "--out", "{out}", "--crop", "0"), USAGE, "--crop"),
    Case("dnn flat-depth negative", ("dnn", "explain", "--model", "{model}", "--class", "horse", "--out", "{out}",
                                     "{image}", "--flat-depth", "-1"), USAGE, "--flat-depth"),
    Case("perturb region 0", _perturb("--region", "0"), USAGE, "--region"),
    Case("perturb steps 0", _perturb("--steps", "0"), USAGE, "--steps"),
    Case("perturb repetitions 0", _perturb("--repetitions", "0"), USAGE, "--repetitions"),
    Case("perturb per-step 0", _perturb("--per-step", "0"), USAGE, "--per-step"),
    Case("perturb batch-size 0", _perturb("--batch-size", "0"), USAGE, "--batch-size"),
    Case("perturb n-images 0", _perturb("--n-images", "0"), USAGE, "--n-images"),
    Case("perturb fill nan", _perturb("--fill", "nan"), USAGE, "--fill"),
    Case("spray sigma negative", ("spray", "--store", "{file}", "--out", "{out}", "--sigma", "-1"), USAGE, "--sigma"),
    Case("spray central 0", ("spray", "--store", "{file}", "--out", "{out}", "--central", "0"), USAGE, "--central"),
    Case("watermark radius 0", _watermark("--radius", "0"), USAGE, "--radius"),
    Case("watermark dilate negative", _watermark("--dilate", "-1"), USAGE, "--dilate"),
    Case("watermark n-images 0", _watermark("--n-images", "0"), USAGE, "--n-images"),
    Case("synth seed negative", ("data", "synth-voc", "--out", "{out}", "--seed", "-1"), USAGE, "--seed"),
    Case("study seed negative", ("study", "--data", "{data}", "--out", "{out}", "--seed", "-1"), USAGE, "--seed"),
    Case("demo seed negative", ("demo", "--out", "{out}", "--seed", "-1"), USAGE, "--seed"),
    Case("n-jobs 0", ("explain", "--model", "{model}", "--class", "horse", "--data", "{data}", "--store", "{out}",
                      "--n-jobs", "0"), USAGE, "--n-jobs"),
    Case("unknown command", ("nonsense",), USAGE, "nonsense"),
    Case("missing required", ("train", "--data", "{data}"), USAGE, "--out"),
]

FILE_CASES = [
    Case("explain --out is a file", ("explain", "--model", "{model}", "--class", "horse", "--out", "{file}", "{image}"),
         BAD_FILE, "{file}"),
    Case("train --out under a file", ("train", "--data", "{data}", "--out", "{file}/model"), BAD_FILE, "{file}"),
    Case("dnn train --out under a file", ("dnn", "train", "--data", "{data}", "--out", "{file}/model"), BAD_FILE,
         "{file}"),
    Case("predict --json under a file", ("predict", "--model", "{model}", "{image}", "--json", "{file}/p.json"),
         BAD_FILE, "{file}/p.json"),
    Case("predict --json is a folder", ("predict", "--model", "{model}", "{image}", "--json", "{folder}"), BAD_FILE,
         "{folder}"),
    Case("evaluate --json under a file", ("evaluate", "--model", "{model}", "--data", "{data}", "--json",
                                          "{file}/ap.json"), BAD_FILE, "{file}/ap.json"),
    Case("explain --store under a file", ("explain", "--model", "{model}", "--class", "horse", "--data", "{data}",
                                          "--store", "{file}/s.h5"), BAD_FILE, "{file}/s.h5"),
    Case("perturb --plot under a file", _perturb("--plot", "{file}/p.png"), BAD_FILE, "{file}/p.png"),
    Case("synth --out is a file", ("data", "synth-voc", "--out", "{file}"), BAD_FILE, "{file}"),
    Case("render --store not a store", ("render", "--store", "{file}", "--out", "{out}"), BAD_FILE, "{file}"),
    Case("render --store missing", ("render", "--store", "{out}", "--out", "{folder}"), BAD_FILE, "{out}"),
    Case("render --out under a file", ("render", "--store", "{file}", "--out", "{file}/figs"), BAD_FILE, "{file}"),
    Case("missing model", ("predict", "--model", "{out}", "{image}"), BAD_FILE, "{out}"),
    Case("missing dataset", ("data", "inspect", "--data", "{out}"), BAD_FILE, "{out}"),
    # 86.5 MP claimed by a 60-byte file: refused from its header (pixel limit), never decoded
    Case("image over the pixel limit", ("predict", "--model", "{model}", "{huge}", "--strict"), BAD_FILE, "{huge}"),
]
if Path("/sys").is_dir():  # Linux: no file can be created in /sys, not even by root
    FILE_CASES.append(Case("predict --json unwritable", ("predict", "--model", "{model}", "{image}", "--json",
                                                         "/sys/bowlrp-test.json"), BAD_FILE, "/sys/bowlrp-test.json"))


# --- damaged copies of a good BoW/FV model directory ------------------------------------------------------

def _truncate(model: Path) -> None:
    data = (model / "arrays.npz").read_bytes()
    (model / "arrays.npz").write_bytes(data[:len(data) // 2])


def _empty(model: Path) -> None:
    (model / "arrays.npz").write_bytes(b"")


def _flip(model: Path) -> None:
    data = bytearray((model / "arrays.npz").read_bytes())
    for at in range(len(data) // 3, len(data) // 3 + 64, 8):  # inside the first members' deflated data
        data[at] ^= 0xFF
    (model / "arrays.npz").write_bytes(bytes(data))


def _text(model: Path) -> None:
    (model / "arrays.npz").write_text("these are not the arrays you are looking for\n")


def _edit_json(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A damage that writes ``change(meta)`` as the model.json (the changed ``meta`` itself if that is None)."""
    def damage(model: Path) -> None:
        meta = json.loads((model / "model.json").read_text())
        replaced = change(meta)
        (model / "model.json").write_text(json.dumps(meta if replaced is None else replaced))
    return damage


def _drop(key: str) -> Callable[[dict], None]:
    def change(meta: dict) -> None:
        del meta[key]
    return change


DAMAGED_MODELS: dict[str, Callable[[Path], None]] = {
    "truncated-npz": _truncate,
    "empty-npz": _empty,
    "bit-flipped-npz": _flip,
    "text-as-npz": _text,
    "json-without-blocks": _edit_json(_drop("blocks")),
    "json-config-a-list": _edit_json(lambda meta: meta.update(config=[1, 2])),
    "json-sift-a-string": _edit_json(lambda meta: meta.update(sift="dense")),
    "json-block-without-fields": _edit_json(lambda meta: meta.update(blocks=[{"scales": [4]}])),
    "json-a-list": _edit_json(lambda meta: [meta]),
    "json-not-json": lambda model: (model / "model.json").write_text("{ this is not json"),
}

MODEL_CASES = [Case(f"model {name}", ("predict", "--model", "{damaged:%s}" % name, "{image}"), BAD_FILE,
                    "{damaged:%s}" % name) for name in DAMAGED_MODELS]


def cases() -> list[Case]:
    return USAGE_CASES + FILE_CASES + MODEL_CASES


def write_damaged_models(model: Path, out: Path) -> dict[str, Path]:
    """Copies of the model directory ``model`` under ``out``, one per :data:`DAMAGED_MODELS` entry."""
    made = {}
    for name, damage in DAMAGED_MODELS.items():
        target = out / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(model, target)
        damage(target)
        made[name] = target
    return made


def render(case: Case, places: dict[str, str]) -> tuple[list[str], str]:
    """``(argv, named)``: the case's arguments and the text its error line must contain, placeholders filled."""
    def fill(text: str) -> str:
        for key, value in places.items():
            text = text.replace("{" + key + "}", value)
        return text
    return [fill(arg) for arg in case.argv], fill(case.names)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG claiming ``width x height`` RGB pixels that holds none: a few dozen bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


def corpus(root: Path, model: Path, data: Path) -> dict[str, str]:
    """Write the corpus' files under ``root`` and return the placeholder values."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "a-file").write_text("not a folder\n")
    (root / "a-folder").mkdir(exist_ok=True)
    image = sorted((data / "JPEGImages").glob("*.jpg"))[0]
    huge = _png_header_only(root / "huge.png", 9300, 9300)
    places = {"model": str(model), "data": str(data), "image": str(image), "file": str(root / "a-file"),
              "huge": str(huge),
              "folder": str(root / "a-folder"), "out": str(root / "does-not-exist" / "out")}
    for name, path in write_damaged_models(model, root / "damaged").items():
        places[f"damaged:{name}"] = str(path)
    return places


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="folder to write the corpus into")
    parser.add_argument("--model", type=Path, required=True, help="a good BoW/FV model directory")
    parser.add_argument("--data", type=Path, required=True, help="a VOC-format dataset")
    args = parser.parse_args()
    places = corpus(args.root, args.model, args.data)
    for case in cases():
        argv, named = render(case, places)
        print(json.dumps({"name": case.name, "argv": argv, "exit": case.exit_code, "names": named}))
    sys.exit(0)
