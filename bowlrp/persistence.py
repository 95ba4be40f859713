"""Model files without pickle: JSON metadata plus one ``.npz`` of plain arrays.

Every fitted stage implements the *state protocol*::

    stage.get_state() -> (meta: dict, arrays: dict[str, np.ndarray])
    StageClass.from_state(meta, arrays) -> stage

``meta`` must be JSON-serialisable (str, int, float, bool, list, dict, None); arrays must
be numeric (no object dtype). :func:`save_stages` writes ``model.json`` and ``arrays.npz``
into a directory; :func:`load_stages` reads them back with ``allow_pickle=False``, so
loading a model a stranger sent cannot run code.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
ARRAYS_NPZ = "arrays.npz"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically (stable bytes for a stable object)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _check_arrays(arrays: dict[str, np.ndarray]) -> None:
    for key, value in arrays.items():
        arr = np.asarray(value)
        if arr.dtype == object:
            raise TypeError(f"array {key!r} has object dtype; model files hold numeric arrays only")


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` of ``arrays`` whose bytes depend on the arrays alone.

    ``np.savez`` stamps each member with the current time; a fixed stamp and sorted names make
    the same model give the same file, so "same seed, same model" can be checked byte for byte.
    """
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            array = np.asarray(arrays[key])  # 0-d stays 0-d (np.ascontiguousarray would make it 1-d)
            np.lib.format.write_array(member, array if array.flags.c_contiguous else array.copy(order="C"),
                                      allow_pickle=False)
            archive.writestr(info, member.getvalue())
    return buf.getvalue()


def save_stages(directory: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write a model directory: ``meta`` to ``model.json``, ``arrays`` to ``arrays.npz``.

    The arrays are written first, the JSON last, so a directory with a ``model.json`` is complete.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _check_arrays(arrays)
    atomic_write_bytes(directory / ARRAYS_NPZ, npz_bytes(arrays))
    atomic_write_json(directory / MODEL_JSON, {"format_version": FORMAT_VERSION, **meta})


def load_stages(directory: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a model directory written by :func:`save_stages` (no pickle, no code execution)."""
    directory = Path(directory)
    meta_path = directory / MODEL_JSON
    if not meta_path.is_file():
        raise ModelError(f"{directory}: not a bowlrp model directory (no {MODEL_JSON})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path}: malformed JSON ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{meta_path}: unsupported format_version {meta.get('format_version')!r}")
    try:
        with np.load(directory / ARRAYS_NPZ, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise ModelError(f"{directory}: {ARRAYS_NPZ} is missing") from None
    except ValueError as exc:
        raise ModelError(f"{directory / ARRAYS_NPZ}: refused ({exc})") from None
    return meta, arrays


def prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Namespace a stage's arrays as ``prefix/key`` inside the shared npz."""
    return {f"{prefix}/{k}": v for k, v in arrays.items()}


def unprefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of one stage, with its ``prefix/`` removed."""
    head = prefix + "/"
    return {k[len(head):]: v for k, v in arrays.items() if k.startswith(head)}
