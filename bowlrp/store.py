"""Relevance maps of a whole dataset split in one HDF5 store, written resumably.

Any model family writes the same store (:func:`bowlrp.runs.explain_split` runs the split).

An HDF5 file that is killed mid-write can be unreadable as a whole, so finished work never lives
only there. Each explained image is first written as its own part file, ``OUT.h5.parts/<n>.npz``
(the per-image ``.npz`` contract of ``bowlrp explain`` plus the image id), to a temporary name and
renamed. A re-run with the same model and settings skips every image that has a part; when all
are done the parts are assembled into ``OUT.h5.tmp``, renamed to ``OUT.h5``, and the parts folder
is removed. Killing the run at any moment therefore loses at most the images in flight, and the
finished store does not depend on where (or whether) the run was interrupted.

One run at a time writes a store: a run holds an exclusive ``flock`` on ``OUT.h5.parts/lock``
(which records its pid) from before it reads the folder until the folder is gone, and a second
run refuses at once, naming the store and that pid. Two runs sharing the parts used to end in a
crash, an unreadable store, or one missing images. The operating system drops the lock of a
killed process, so a lock left by a killed run is never in the way.

Store layout (read it with :class:`RelevanceStore`)::

    /                      attrs: format, version, class_name, model_family, model_sha256, the
                                  explanation method's settings (method, and only the parameters it
                                  used: rule/eps/alpha/beta/bias/depth for BoW, composite/epsilon/
                                  alpha/beta/flat_depth or steps/... for DNNs), settings (JSON)
    /image_ids             (n,) UTF-8 strings, split order (skipped images left out)
    /images/<n>/           one group per image, <n> its position in image_ids (zero-padded)
        attrs: image_id, path, score, bias_relevance, residual, absorbed
        relevance              (H, W) float32, original image coordinates (chunked, gzip)
        descriptor_relevance   (N,) float32
        descriptor_frames      (N, 4) float32 (x, y, bin size, angle)
    /skipped               (m,) UTF-8 JSON strings {"file", "reason"}

Each part also records the SHA-256 of its image file's bytes as they were when its work began
(``image_sha256``); a re-run does an image again when its file has changed since or is gone, so a
store never holds the map of an image's old contents under its id. (Size and modification time
would miss an edit that keeps both.)
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import BowlrpError
from .persistence import atomic_write_json, file_sha256, write_npz

log = logging.getLogger(__name__)

IMAGE_DIGEST = "image_sha256"  # a part's record of its image file's contents
STORE_FORMAT = "bowlrp.relevance"
STORE_VERSION = 2  # 2: attributes hold only the settings the method used (1: rule/eps/alpha/bias/depth always)
_PART_DIGITS = 6
LOCK_FILE = "lock"


def part_name(index: int) -> str:
    """File name of the part holding the ``index``-th image of a split (zero-padded, sorts in order)."""
    return f"{index:0{_PART_DIGITS}d}.npz"


def _read_holder(fd: int) -> str:
    """The pid a lock file records ("unknown" while its holder has not written it yet)."""
    text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return text if text.isdigit() else "unknown"


def lock_parts(folder: Path, out: Path) -> int:
    """Create ``folder`` if need be and take the exclusive lock on ``folder/lock``; returns its file
    descriptor (closing it releases the lock). Refuses at once with a :class:`BowlrpError` naming
    ``out`` and the holder's pid when another run holds it.

    A finishing run deletes the folder, lock file included, while it holds the lock; a lock taken on
    a file that has since left the folder protects nothing, so it is taken again on the new one.
    """
    path = folder / LOCK_FILE
    while True:
        folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by worker processes
        except FileNotFoundError:  # the folder went away between the two calls
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise BowlrpError(f"{out}: another run (pid {holder}) is writing it; wait for that run to end "
                              "or stop it") from None
        try:
            current = os.stat(path)
            locked = os.fstat(fd)
            same = (current.st_dev, current.st_ino) == (locked.st_dev, locked.st_ino)
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            return fd
        os.close(fd)


class SplitParts:
    """The part files of one split run: ``OUT.h5.parts/`` (see the module docstring).

    Creating it takes the run's lock (refusing when another run holds it), checks that an
    interrupted run found there used the same ``settings`` (model digest, rule, image ids, ...) and
    records them; :meth:`pending` lists the images still to do, :meth:`write` stores one finished
    image atomically, :meth:`assemble` builds the store and removes the parts (and the lock). Use it
    as a context manager so that a run that fails keeps its parts but lets go of the lock. Model
    families share it: only the explanation differs.
    """

    def __init__(self, out: str | Path, n: int, settings: dict) -> None:
        self.out = Path(out)
        self.folder = Path(str(self.out) + ".parts")
        self.n = int(n)
        self.settings = settings
        self._lock: int | None = None
        self._lock = lock_parts(self.folder, self.out)
        try:
            settings_file = self.folder / "settings.json"
            if settings_file.is_file() and _read_settings(settings_file) != settings:
                raise BowlrpError(f"{self.folder} holds an interrupted run with other settings or another model; "
                                  "finish it with those settings or delete the folder")
            atomic_write_json(settings_file, settings)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the lock (the parts stay for a later run to resume)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> "SplitParts":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown; the process' end releases the lock anyway
            pass

    def remove(self) -> None:
        """Delete the parts folder once its work is in the run's output, then release the lock.

        The lock file goes last, and a folder that a run starting this instant has already put its own
        lock into is left to that run.
        """
        for entry in self.folder.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        (self.folder / LOCK_FILE).unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass
        self.close()

    def pending(self) -> list[int]:
        """Positions of the images without a finished part, in split order."""
        return [i for i in range(self.n) if not part_is_current(self.folder / part_name(i))]

    def write(self, index: int, arrays: dict[str, np.ndarray], image_id: str, path: str | Path) -> None:
        """Store one image's ``.npz`` contract (plus its id and path) as part ``index``, atomically."""
        write_part(self.folder, index, arrays, image_id, path)

    def assemble(self, skipped: list[dict]) -> None:
        """Write ``OUT.h5`` from the parts (via ``OUT.h5.tmp`` and a rename), then drop the parts."""
        _assemble(self.out, self.folder, self.n, self.settings, skipped)
        self.remove()


def _read_settings(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BowlrpError(f"{path}: unreadable record of an interrupted run ({exc}); delete {path.parent} to "
                          "start again") from None


def image_digest(path: str | Path) -> str:
    """SHA-256 (hex) of an image file's bytes; "" when it cannot be read (its work will be a skip)."""
    try:
        return file_sha256(path)
    except OSError:
        return ""


def part_is_current(part: Path) -> bool:
    """Whether ``part`` exists and was made from its image file as the file is now. A part of a
    changed, vanished or unreadable image, or one that cannot itself be read, is deleted (so that
    neither it nor a later skip of its image leaves stale maps in the store) and False returned."""
    if not part.is_file():
        return False
    try:
        with np.load(part, allow_pickle=False) as npz:
            path, recorded = str(npz["path"]), str(npz[IMAGE_DIGEST])
    except Exception:  # any part that cannot be read (or has no digest) is simply done again
        recorded = ""
    if recorded and recorded == image_digest(path):
        return True
    log.info("%s: its image changed since it was written, or it is unreadable; doing it again", part)
    part.unlink(missing_ok=True)
    return False


def write_part(folder: str | Path, index: int, arrays: dict[str, np.ndarray], image_id: str, path: str | Path,
               digest: str | None = None) -> None:
    """:meth:`SplitParts.write` for worker processes, which get the folder rather than the object.

    ``digest`` is the image file's :func:`image_digest` taken *before* the image was read (a file that
    changes while it is worked on is then done again on resumption); by default it is taken now.
    """
    digest = image_digest(path) if digest is None else digest
    arrays = dict(arrays, image_id=np.array(image_id), path=np.array(str(path)), **{IMAGE_DIGEST: np.array(digest)})
    write_npz(Path(folder) / part_name(index), arrays)  # streamed: an 81 MP map's archive never sits in memory


def _assemble(out: Path, parts: Path, n: int, settings: dict, skipped: list[dict]) -> None:
    import h5py

    tmp = Path(str(out) + ".tmp")
    strings = h5py.string_dtype("utf-8")
    ids = []
    with h5py.File(tmp, "w") as h5:
        for key, value in settings.items():
            if isinstance(value, (str, int, float, bool)):  # the scalars; lists stay in the JSON
                h5.attrs[key] = value
        h5.attrs["format"] = STORE_FORMAT
        h5.attrs["version"] = STORE_VERSION
        h5.attrs["settings"] = json.dumps({k: v for k, v in settings.items() if k != "image_ids"}, sort_keys=True)
        images = h5.create_group("images")
        for i in range(n):
            part = parts / part_name(i)
            if not part.is_file():
                continue
            with np.load(part, allow_pickle=False) as npz:
                group = images.create_group(f"{len(ids):0{_PART_DIGITS}d}")
                ids.append(str(npz["image_id"]))
                group.attrs["image_id"] = ids[-1]
                group.attrs["path"] = str(npz["path"])
                for key in ("score", "bias_relevance", "residual", "absorbed"):
                    group.attrs[key] = float(npz[key])
                relevance = npz["relevance"]
                group.create_dataset("relevance", data=relevance, compression="gzip", shuffle=True,
                                     chunks=tuple(min(64, s) for s in relevance.shape) if relevance.size else None)
                for key in ("descriptor_relevance", "descriptor_frames"):
                    group.create_dataset(key, data=npz[key], compression="gzip", shuffle=True)
        h5.create_dataset("image_ids", data=np.array(ids, dtype=object), dtype=strings)
        h5.create_dataset("skipped", data=np.array([json.dumps(s, sort_keys=True) for s in skipped], dtype=object),
                          dtype=strings)
    os.replace(tmp, out)


def recorded_image_path(recorded: str, store_path: str | Path) -> str:
    """The image file a store recorded: as given when it exists, else relative to the store's
    folder or one of its parents (stores written with relative paths from another folder)."""
    if not recorded or Path(recorded).is_absolute() or Path(recorded).exists():
        return recorded
    for folder in Path(store_path).resolve().parents:
        if (folder / recorded).exists():
            return str(folder / recorded)
    return recorded


class RelevanceStore:
    """Read access to a store written by :func:`bowlrp.runs.explain_split`.

    >>> store = RelevanceStore("maps.h5")            # doctest: +SKIP
    >>> for image_id, item in store.items(): ...     # doctest: +SKIP
    """

    def __init__(self, path: str | Path):
        import h5py

        self.path = Path(path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise BowlrpError(f"{self.path}: not a readable HDF5 store ({exc})") from None
        if self._h5.attrs.get("format") != STORE_FORMAT:
            self._h5.close()
            raise BowlrpError(f"{self.path}: not a bowlrp relevance store")
        self.ids: list[str] = [s.decode() if isinstance(s, bytes) else str(s) for s in self._h5["image_ids"][()]]
        self._index = {image_id: i for i, image_id in enumerate(self.ids)}
        self.attrs = dict(self._h5.attrs)
        self.skipped = [json.loads(s) for s in self._h5["skipped"].asstr()[()]]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, image_id: str) -> dict:
        """``{"relevance", "descriptor_relevance", "descriptor_frames", "score", ...}`` of one image."""
        group = self._group(image_id)
        item = {key: group[key][()] for key in ("relevance", "descriptor_relevance", "descriptor_frames")}
        item.update({key: group.attrs[key] for key in group.attrs})
        return item

    def relevance(self, image_id: str) -> np.ndarray:
        """The ``(H, W)`` pixel map of one image alone (without the descriptor arrays)."""
        return self._group(image_id)["relevance"][()]

    def image_attrs(self, image_id: str) -> dict:
        """One image's attributes: ``image_id, path, score, bias_relevance, residual, absorbed``."""
        return dict(self._group(image_id).attrs)

    def _group(self, image_id: str):
        if image_id not in self._index:
            raise KeyError(image_id)
        return self._h5["images"][f"{self._index[image_id]:0{_PART_DIGITS}d}"]

    def items(self) -> Iterator[tuple[str, dict]]:
        for image_id in self.ids:
            yield image_id, self[image_id]

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> "RelevanceStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
