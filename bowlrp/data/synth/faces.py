"""``toyfaces``: an Adience-format face set (SPEC §2.4) read by :mod:`bowlrp.data.adience`.

Each face (drawn by :mod:`.facedraw`) is written in both alignments, ``faces/<user>/coarse_tilt_aligned_face.
<face_id>.<image>`` (rotation, black corners) and ``aligned/<user>/landmark_aligned_face.<face_id>.<image>``
(in-plane affine to an adult layout), with a region label map beside each under ``regions/`` (same relative
path, ``.png``; codes in :data:`~.facedraw.REGION_LABELS`) and a row in ``fold_<k>_data.txt``. Users are
whole within a fold, as in the benchmark.

Ages are drawn uniformly within a group's range (60+: 60-85), groups and genders balanced. The planted bias
(dissertation Appendix D.2): a face smiles with probability :data:`SMILE_IN` in the groups 15-20, 25-32 and
38-43 and :data:`SMILE_OUT` otherwise. Label quirks of the real files appear too: ages written as ranges, a
few as bare numbers (:data:`BARE_AGE`) or ``None`` (:data:`NO_AGE`), a few genders ``u`` (:data:`NO_GENDER`).

``ground_truth.json`` records every face's cues (age in years, group, gender, smiling, glasses, beard,
hairstyle, wrinkles, grey, tilt) and the bias. Same seed and size, same bytes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ...persistence import atomic_write_bytes, atomic_write_json
from ..adience import AGE_GROUPS, AGE_RANGES, ALIGNMENTS, COLUMNS, GENDERS, N_FOLDS
from .common import prepare_output
from .facedraw import REGION_LABELS, align_inplane, align_rotation, draw_photo, look
from .vocwriter import write_jpeg, write_png

SIZES = {"small": {"faces_per_fold": 48, "side": 40, "per_user": 6},
         "default": {"faces_per_fold": 560, "side": 64, "per_user": 8}}
SMILING_GROUPS = ("15-20", "25-32", "38-43")
SMILE_IN, SMILE_OUT = 0.85, 0.08
BARE_AGE, NO_AGE, NO_GENDER = 0.05, 0.02, 0.02
REGIONS_DIR = "regions"
FORMAT = "bowlrp.toyfaces"


def region_path(root: str | Path, image: str | Path) -> Path:
    """The region label map of a face image of the dataset ``root`` (``regions/<same path>.png``)."""
    rel = Path(image).resolve().relative_to(Path(root).resolve())
    return Path(root) / REGIONS_DIR / rel.with_suffix(".png")


def _age_text(rng: np.random.Generator, group: int, years: float) -> str:
    u = rng.random()
    if u < NO_AGE:
        return "None"
    if u < NO_AGE + BARE_AGE:
        return str(int(years))
    lo, hi = AGE_RANGES[group]
    return f"({lo}, {100 if hi == np.inf else hi})"


def _row(values: list) -> str:
    return "\t".join(str(v) for v in values)


def generate_toyfaces(out: str | Path, seed: int = 0, size: str = "default", overwrite: bool = False,
                      faces_per_fold: int | None = None) -> Path:
    """Write toyfaces into ``out`` (see the module docstring); returns the dataset root.

    ``faces_per_fold`` overrides the size's count (tests); images are ``SIZES[size]["side"]`` px square.
    """
    if size not in SIZES:
        raise ValueError(f"size {size!r}: choose one of {', '.join(SIZES)}")
    p = SIZES[size]
    root = prepare_output(out, overwrite, [ALIGNMENTS[a][0] for a in ALIGNMENTS] + [REGIONS_DIR])
    side, n = p["side"], faces_per_fold or p["faces_per_fold"]
    faces_gt = []
    for fold in range(N_FOLDS):
        rows = ["\t".join(COLUMNS)]
        for i in range(n):
            index = fold * n + i
            rng = np.random.default_rng([seed, index])
            group = index % len(AGE_GROUPS)
            gender = GENDERS[(index // len(AGE_GROUPS)) % 2]
            lo, hi = AGE_RANGES[group]
            years = float(rng.uniform(lo, 85 if hi == np.inf else hi + 0.99))
            smiling = bool(rng.random() < (SMILE_IN if AGE_GROUPS[group] in SMILING_GROUPS else SMILE_OUT))
            user = f"{10000000 + seed * 100000 + fold * 1000 + i // p['per_user']}@N0{fold}"
            image = f"{1000000000 + index * 7919}_{hashlib.sha1(f'{seed}/{index}'.encode()).hexdigest()[:10]}_o.jpg"
            face_id = index + 1
            f = look(rng, years, gender, smiling)
            tilt = float(rng.uniform(-25, 25))
            photo = draw_photo(f, rng, 2 * side, tilt)
            for alignment, (pixels, labels) in (("rotation", align_rotation(photo, rng, side)),
                                                ("inplane", align_inplane(photo, f, side))):
                folder, prefix = ALIGNMENTS[alignment]
                rel = Path(folder) / user / f"{prefix}.{face_id}.{image}"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                write_jpeg(root / rel, pixels)
                (root / REGIONS_DIR / rel).parent.mkdir(parents=True, exist_ok=True)
                write_png((root / REGIONS_DIR / rel).with_suffix(".png"), labels)
            gender_text = "u" if rng.random() < NO_GENDER else gender
            x, y, dx, dy = photo.box
            rows.append(_row([user, image, face_id, _age_text(rng, group, years), gender_text, x, y, dx, dy,
                              round(tilt, 2), 0, int(rng.integers(40, 120))]))
            faces_gt.append({"fold": fold, "user_id": user, "face_id": str(face_id), "original_image": image,
                             "age_years": round(years, 2), "group": AGE_GROUPS[group], "gender": gender,
                             "smiling": smiling, "glasses": f.glasses, "beard": f.beard, "hairstyle": f.hairstyle,
                             "wrinkles": f.wrinkles, "grey": round(f.grey, 3), "tilt": round(tilt, 2)})
        atomic_write_bytes(root / f"fold_{fold}_data.txt", ("\n".join(rows) + "\n").encode())
    atomic_write_json(root / "ground_truth.json", {
        "format": FORMAT, "seed": seed, "size": size, "image_side": side, "region_labels": REGION_LABELS,
        "regions": REGIONS_DIR, "bias": {"smiling_groups": list(SMILING_GROUPS), "p_smile_in": SMILE_IN,
                                         "p_smile_out": SMILE_OUT},
        "faces": faces_gt})
    return root
