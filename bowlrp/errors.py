"""Error types and the skip ledger used by every dataset-scale command.

A dataset run never dies for one bad file: the file is recorded in a :class:`SkipLog`
with a one-line reason, counted, and named in the command's output. ``strict=True``
(``--strict`` on the CLI) turns the first skip into a :class:`BowlrpError` instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class BowlrpError(Exception):
    """An error with a one-line message meant for the user (the CLI prints it without a traceback)."""


class ImageError(BowlrpError):
    """An image file that cannot be used: unreadable, truncated, empty, or too small."""


class DataError(BowlrpError):
    """A dataset or annotation that cannot be used: missing folders, malformed or hostile XML, unknown classes."""


class ModelError(BowlrpError):
    """A model directory that is missing, incomplete or of an unknown format version."""


class OutputError(BowlrpError):
    """An output file or folder that cannot be written: no permission, a file where a folder must be, a full disk."""


@dataclass
class SkipLog:
    """Ledger of items left out of a run, each with the reason.

    Parameters
    ----------
    strict : bool
        If True, :meth:`add` raises :class:`BowlrpError` instead of recording.
    """

    strict: bool = False
    entries: list[dict] = field(default_factory=list)

    def add(self, item: str, reason: str) -> None:
        """Record that ``item`` (a file path or image id) was skipped because of ``reason``."""
        reason = " ".join(str(reason).split())  # one line, whatever the exception text was
        # messages of ImageError & co. already start with the file; the entry names it once
        prefix = f"{item}: "
        if reason.startswith(prefix):
            reason = reason[len(prefix):]
        if self.strict:
            raise BowlrpError(f"{item}: {reason}")
        self.entries.append({"file": str(item), "reason": reason})

    def extend(self, other: "SkipLog") -> None:
        for entry in other.entries:
            self.add(entry["file"], entry["reason"])

    def __len__(self) -> int:
        return len(self.entries)

    def as_list(self) -> list[dict]:
        return list(self.entries)
