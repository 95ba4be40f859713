"""Helpers shared by the generators: output folder preparation."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ...errors import DataError


def prepare_output(out: str | os.PathLike, overwrite: bool, owned: list[str]) -> Path:
    """Create the dataset root ``out``; refuse a non-empty one unless ``overwrite``.

    With ``overwrite`` only the generator's own sub-folders ``owned`` and ``ground_truth.json``
    are removed, so stale files of an earlier run cannot leak into the new set and nothing else
    in the folder is touched.
    """
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise DataError(f"{root}: exists and is not a directory")
    if root.is_dir() and any(root.iterdir()):
        if not overwrite:
            raise DataError(f"{root}: not empty (overwrite replaces a generated set)")
        for name in owned:
            if (root / name).is_dir():
                shutil.rmtree(root / name)
        (root / "ground_truth.json").unlink(missing_ok=True)
    for name in owned:
        (root / name).mkdir(parents=True, exist_ok=True)
    return root
