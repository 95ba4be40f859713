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

from .errors import ModelError, OutputError

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
ARRAYS_NPZ = "arrays.npz"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The file gets the permissions ``open(path, "wb")`` would give it: an existing file's mode, else
    0666 less the umask (``tempfile.mkstemp`` made every file 0600). A file that cannot be written
    is an :class:`~bowlrp.errors.OutputError` naming ``path`` (not the temporary file).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create its folder {path.parent} ({exc.strerror or exc})") from None
    if path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file")
    tmp = None
    try:
        fd, tmp = _create_temporary(path)
        with os.fdopen(fd, "wb") as fh:
            try:
                os.fchmod(fh.fileno(), os.stat(path).st_mode & 0o7777)  # replacing a file keeps its mode
            except FileNotFoundError:
                pass
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty ``.<name>.<random>.tmp`` beside ``path``, opened for writing, created with mode 0666
    so that the umask applies as it does for ``open``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def check_writable(path: str | os.PathLike, folder: bool = False) -> None:
    """Refuse now an output that could not be written later (before the training, not after it).

    ``path`` is a file to write (``folder=False``) or a folder to write into. Refused, with an
    :class:`~bowlrp.errors.OutputError` naming ``path``: a folder where a file must go or the
    reverse, a file on the way to it, and a place where no file can be created (tried for real,
    with a file created and removed at once, so permissions, read-only mounts and ACLs all count).
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder")
    if not folder and path.is_dir():
        raise OutputError(f"{path}: is a folder, not a file")
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{path}: {existing} is a file, not a folder")
    try:
        fd, probe = _create_temporary(existing / ".bowlrp-write-test")
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {existing} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


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
