"""Writing files so that a crash or a full disk never leaves a half-written one.

Every file the project writes for a user (checkpoints, ``eval.csv``, ``config.json``, labelled
steps, comparison reports) goes through :func:`atomic_write`: the data goes to a temporary file
in the same folder, is flushed to disk, and only then replaces the target with ``os.replace``.
A reader sees the old file or the new one. When the disk is full the temporary file is removed,
the old file stays, and :class:`DiskFullError` says which file could not be written and where
to free space.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

#: errno values that mean "no room on this disk".
_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """A file could not be written because its disk (or quota) is full; the file's previous
    version, if any, is unchanged."""

    def __init__(self, path: str | os.PathLike, cause: OSError | None = None) -> None:
        self.path = Path(path)
        code = cause.errno if cause is not None and cause.errno in _FULL else errno.ENOSPC
        super().__init__(code, self._message(), str(self.path))

    def _message(self) -> str:
        folder = self.path.parent
        try:
            free = f"{shutil.disk_usage(folder).free / 2**20:,.1f} MiB free"
        except OSError:
            free = "free space unknown"
        return (
            f"no space left on the disk of {folder} while writing {self.path.name} ({free} there, "
            f"not enough); free space on it (df -h {folder}) or write to another disk; the last "
            "complete files are kept"
        )

    def __str__(self) -> str:
        return self._message()


def disk_full_cause(err: BaseException) -> OSError | None:
    """The "no space" ``OSError`` behind ``err`` (itself, or what it was raised from or while
    handling: torch reports a failed write as a ``RuntimeError`` raised during the ``OSError``)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _FULL:
            return current
        current = current.__cause__ or current.__context__
    return None


class FileWriter(io.BufferedIOBase):
    """The binary file object :func:`atomic_write` hands to its writer: a thin wrapper whose
    :meth:`write` tests can make fail as a full disk does, and which has no file descriptor, so
    every byte goes through it."""

    def __init__(self, raw: BinaryIO, path: Path) -> None:
        super().__init__()
        self._raw = raw
        #: The file being written (the temporary file takes its place when complete).
        self.path = path

    def write(self, data: Any) -> int:  # type: ignore[override]
        return self._raw.write(data)

    def flush(self) -> None:
        self._raw.flush()

    def tell(self) -> int:
        return self._raw.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False


def atomic_write(path: str | os.PathLike, write: Callable[[FileWriter], Any]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, flush it to disk, then move it to
    ``path`` in one step.

    Raises:
        DiskFullError: when the disk or quota is full (the temporary file is removed and any
            previous ``path`` is left as it was).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        if err.errno in _FULL:
            raise DiskFullError(path, err) from err
        raise
    try:
        with os.fdopen(fd, "wb") as raw:
            write(FileWriter(raw, path))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        cause = disk_full_cause(err)
        if cause is not None:
            raise DiskFullError(path, cause) from err
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))
