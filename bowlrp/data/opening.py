"""Opening a dataset folder in any of the supported layouts."""
from __future__ import annotations

import os

from ..errors import DataError
from .dataset import Dataset
from .folder import FolderDataset
from .voc import VOCDataset, find_voc_root


def open_dataset(
    root: str | os.PathLike,
    format: str = "voc",
    classes: list[str] | None = None,
    strict: bool = False,
) -> Dataset:
    """Open a dataset folder.

    Parameters
    ----------
    root : str or PathLike
        For ``"voc"``: a devkit root, ``VOCdevkit/`` or ``VOCdevkit/VOC2007``. For ``"folder"``:
        a folder of class sub-folders (optionally under ``train/``, ``val/``, ``test/``).
    format : {"voc", "folder", "auto"}
        ``"auto"`` picks "voc" when a folder holding ``ImageSets/Main`` is found, else "folder".
    classes : list of str, optional
        Restrict labels to these classes, in this order.
    strict : bool
        Raise :class:`DataError` at the first bad annotation instead of counting a skip.
    """
    if format == "auto":
        try:
            find_voc_root(root)
            format = "voc"
        except DataError:
            format = "folder"
    if format == "voc":
        return VOCDataset(root, classes=classes, strict=strict)
    if format == "folder":
        return FolderDataset(root, classes=classes, strict=strict)
    raise DataError(f"unknown dataset format {format!r} (known: voc, folder, auto)")
