"""Model files without pickle: JSON metadata plus one ``.npz`` of plain arrays.

Every fitted stage implements the *state protocol*::

    stage.get_state() -> (meta: dict, arrays: dict[str, np.ndarray])
    StageClass.from_state(meta, arrays) -> stage

``meta`` must be JSON-serialisable (str, int, float, bool, list, dict, None); arrays must
be numeric (no object dtype). :func:`save_stages` writes ``model.json`` and ``arrays.npz``
into a directory; :func:`load_stages` reads them back without pickle, so loading a model a
stranger sent cannot run code.

The two files are tied together: ``model.json`` records the SHA-256 of the ``arrays.npz`` it was
written with (``arrays_sha256``), and loading refuses a pair that does not match. Saving over a
model writes the arrays first and the JSON last, so a save killed between the two leaves the new
arrays beside the old JSON, which used to predict silently with one file of each model.

A loader that knows which arrays its ``model.json`` declares reads those members only, each
header checked against its :class:`ArraySpec` before any data is read
(:func:`read_declared_arrays`): an extra member, or a declared one whose header claims more
than the declared shape, costs nothing (a 4.6 MB file holding a 3 GB all-zero member was read
in full).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

import numpy as np

from .errors import BowlrpError, ModelError, OutputError

FORMAT_VERSION = 1
MODEL_JSON = "model.json"
ARRAYS_NPZ = "arrays.npz"
ARRAYS_DIGEST = "arrays_sha256"  # the model.json field tying it to its arrays.npz


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    The file gets the permissions ``open(path, "wb")`` would give it: an existing file's mode, else
    0666 less the umask (``tempfile.mkstemp`` made every file 0600). A file that cannot be written
    is an :class:`~bowlrp.errors.OutputError` naming ``path`` (not the temporary file).
    """
    with atomic_writer(path) as fh:
        fh.write(data)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """:func:`atomic_write_bytes` for output written piece by piece: a binary file handle on a temporary
    file beside ``path``, renamed to ``path`` when the block ends without an exception (removed if not).

    For large outputs (a full-size relevance map, a PNG of a 12 MP image) the bytes then never sit
    in memory whole.
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
        with os.fdopen(fd, "w+b") as fh:
            try:
                os.fchmod(fh.fileno(), os.stat(path).st_mode & 0o7777)  # replacing a file keeps its mode
            except FileNotFoundError:
                pass
            yield fh
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


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in ``path``, or None when there is no such file; a one-line :class:`BowlrpError`
    naming the file when it cannot be read or parsed."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BowlrpError(f"{path}: unreadable ({exc})") from None


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
    write_npz_to(buf, arrays)
    return buf.getvalue()


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """:func:`npz_bytes` written atomically to ``path``, each member streamed into the file: the same
    bytes, without the whole archive (or one member's ``.npy``) held in memory."""
    with atomic_writer(path) as fh:
        write_npz_to(fh, arrays)


def write_npz_to(fh: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """The archive of :func:`npz_bytes` into the seekable binary file ``fh``, member by member."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            array = np.asarray(arrays[key])  # 0-d stays 0-d (np.ascontiguousarray would make it 1-d)
            if not array.flags.c_contiguous:
                array = array.copy(order="C")
            if array.dtype.hasobject:
                raise ValueError(f"{key}: object arrays are not stored (they would need pickle)")
            header = _npy_header(array)
            # the size up front, as ZipFile.writestr knows it: the same zip64 choice and so the same bytes
            info.file_size = len(header) + array.nbytes
            data = memoryview(array.reshape(-1).view(np.uint8))
            with archive.open(info, "w") as member:
                member.write(header)
                # the .npy bytes write_array writes, a piece at a time: it copies up to 16 MB per piece
                # (tobytes), and more than that is never needed in memory at once
                for start in range(0, len(data), _NPY_PIECE):
                    member.write(data[start:start + _NPY_PIECE])


_NPY_PIECE = 1 << 20


def _npy_header(array: np.ndarray) -> bytes:
    """The ``.npy`` header ``np.lib.format.write_array`` writes for ``array``: format 1.0, or 2.0 when the
    header is too long for 1.0, as ``write_array`` chooses."""
    header, fields = io.BytesIO(), np.lib.format.header_data_from_array_1_0(array)
    try:
        np.lib.format.write_array_header_1_0(header, fields)
    except ValueError:
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, fields)
    return header.getvalue()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for piece in iter(lambda: fh.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def save_stages(directory: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write a model directory: ``meta`` to ``model.json``, ``arrays`` to ``arrays.npz``.

    The arrays are written first, the JSON last, so a directory with a ``model.json`` is complete;
    the JSON records the arrays' digest, so it is never taken for the JSON of other arrays.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _check_arrays(arrays)
    data = npz_bytes(arrays)
    atomic_write_bytes(directory / ARRAYS_NPZ, data)
    atomic_write_json(directory / MODEL_JSON, {"format_version": FORMAT_VERSION, **meta,
                                               ARRAYS_DIGEST: hashlib.sha256(data).hexdigest()})


def read_stage_meta(directory: str | os.PathLike) -> dict:
    """The ``model.json`` of a directory written by :func:`save_stages` (format version checked)."""
    directory = Path(directory)
    meta_path = directory / MODEL_JSON
    if not meta_path.is_file():
        raise ModelError(f"{directory}: not a bowlrp model directory (no {MODEL_JSON})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{meta_path}: malformed JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{meta_path}: not a JSON object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{meta_path}: unsupported format_version {meta.get('format_version')!r}")
    return meta


def check_file_digest(directory: str | os.PathLike, meta: dict, field: str, file_name: str, what: str) -> None:
    """Refuse a ``file_name`` in ``directory`` other than the one ``model.json`` recorded the SHA-256 of
    in ``field`` (``what`` names its contents in the message): a save killed between the two files,
    or an edited file. A ``model.json`` without the field (written before digests were recorded) is
    not checked."""
    directory = Path(directory)
    expected = meta.get(field)
    if expected is None:
        return
    if not isinstance(expected, str):
        raise ModelError(f"{directory / MODEL_JSON}: field {field}: not a digest")
    try:
        found = file_sha256(directory / file_name)
    except FileNotFoundError:
        raise ModelError(f"{directory}: {file_name} is missing") from None
    if found != expected:
        raise ModelError(f"{directory / file_name}: not the {what} {MODEL_JSON} was saved with (SHA-256 "
                         f"{found[:12]}..., {MODEL_JSON} records {expected[:12]}...): a save interrupted between "
                         "the two files, or an edited file; train the model again")


def check_arrays_digest(directory: str | os.PathLike, meta: dict) -> None:
    """:func:`check_file_digest` of ``arrays.npz``."""
    check_file_digest(directory, meta, ARRAYS_DIGEST, ARRAYS_NPZ, "arrays")


@dataclass(frozen=True)
class ArraySpec:
    """What a model's ``model.json`` declares about one member of its ``arrays.npz``.

    Attributes
    ----------
    shape : tuple of int
        The exact shape; -1 marks the one length ``model.json`` does not fix (the support vectors
        of a kernel machine), which must lie in ``1..max_length``.
    max_length : int
        Bound of the -1 length.
    floating : bool
        Real floating point only (no integers, booleans, complex numbers, strings or objects).
    """

    shape: tuple[int, ...]
    max_length: int = 0
    floating: bool = True

    def accepts(self, shape: tuple[int, ...]) -> bool:
        if len(shape) != len(self.shape):
            return False
        return all(got == want if want >= 0 else 1 <= got <= self.max_length for got, want in zip(shape, self.shape))

    def describe(self) -> str:
        dims = ", ".join(str(d) if d >= 0 else f"1..{self.max_length}" for d in self.shape)
        return f"({dims}{',' if len(self.shape) == 1 else ''})"


def _read_member(archive: zipfile.ZipFile, name: str, spec: ArraySpec | None, where: Path) -> np.ndarray:
    """One ``.npy`` member, its header checked against ``spec`` before its data is read."""
    try:
        info = archive.getinfo(name + ".npy")
    except KeyError:
        raise ModelError(f"{where}: {name}: missing") from None
    with archive.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ModelError(f"{where}: {name}: unsupported .npy version {version}")
        if dtype.hasobject:
            raise ModelError(f"{where}: {name}: refused (object arrays would need pickle)")
        if spec is not None:
            if spec.floating and dtype.kind != "f":
                raise ModelError(f"{where}: {name}: dtype {dtype} where real floating-point numbers are expected")
            if not spec.accepts(tuple(shape)):
                raise ModelError(f"{where}: {name}: shape {tuple(shape)} where model.json declares {spec.describe()}")
        size = math.prod(shape) * dtype.itemsize
        data = bytearray(size)
        view, got = memoryview(data), 0
        while got < size:
            n = fh.readinto(view[got:])
            if not n:
                raise ModelError(f"{where}: {name}: truncated ({got} of {size} bytes)")
            got += n
        if fh.read(1):
            raise ModelError(f"{where}: {name}: more data than its header declares")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def read_declared_arrays(directory: str | os.PathLike, meta: dict,
                         specs: Mapping[str, ArraySpec] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a model directory: the members ``specs`` names, each checked against its spec
    before its data is read (members it does not name are never read), or every member when
    ``specs`` is None. The digest ``meta`` records is checked first (:func:`check_arrays_digest`)."""
    directory = Path(directory)
    check_arrays_digest(directory, meta)
    path = directory / ARRAYS_NPZ
    try:
        with zipfile.ZipFile(path) as archive:
            names = specs if specs is not None else [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
            return {name: _read_member(archive, name, None if specs is None else specs[name], path)
                    for name in names}
    except FileNotFoundError:
        raise ModelError(f"{directory}: {ARRAYS_NPZ} is missing") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
        raise ModelError(f"{path}: unreadable ({' '.join(str(exc).split())[:200]})") from None


def load_stages(directory: str | os.PathLike,
                specs: Mapping[str, ArraySpec] | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a model directory written by :func:`save_stages` (no pickle, no code execution): its
    ``model.json`` (less the digest) and the arrays of :func:`read_declared_arrays`."""
    meta = read_stage_meta(directory)
    arrays = read_declared_arrays(directory, meta, specs)
    meta.pop(ARRAYS_DIGEST, None)
    return meta, arrays


def prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Namespace a stage's arrays as ``prefix/key`` inside the shared npz."""
    return {f"{prefix}/{k}": v for k, v in arrays.items()}


def unprefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays of one stage, with its ``prefix/`` removed."""
    head = prefix + "/"
    return {k[len(head):]: v for k, v in arrays.items() if k.startswith(head)}
