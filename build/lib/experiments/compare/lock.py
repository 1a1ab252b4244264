"""One comparison at a time per output folder.

``penguin compare`` holds an exclusive lock on ``<out>/.lock`` while it runs, so a second
comparison on the same folder cannot delete the first one's run directories or overwrite its
report. The lock is the operating system's (``flock``): it is released when the process ends,
however it ends (``kill -9`` included), so a stale lock file never blocks anyone. The file holds
who has the lock (process id, host, start time, command), for the message the second one gets.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from experiments.errors import UsageError

LOCK_FILE = ".lock"


class OutputLock:
    """Context manager: the exclusive lock on ``out``.

    Args:
        out: the comparison's output folder (created if missing).
        wait: block until the holder is done instead of refusing at once.
        command: the command line, recorded for others to see.

    Raises:
        UsageError: (without ``wait``) when another process holds the lock, naming it.
    """

    def __init__(self, out: Path, wait: bool = False, command: str = "") -> None:
        self.path = Path(out) / LOCK_FILE
        self.wait, self.command = wait, command
        self._fd: int | None = None

    def holder(self) -> dict[str, Any]:
        """What the lock file says about the process holding it (empty if unreadable)."""
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def describe_holder(self) -> str:
        info = self.holder()
        if not info:
            return "another process"
        return (f"pid {info.get('pid')} on {info.get('host')}, since {info.get('started')}: "
                f"{info.get('command') or 'penguin compare'}")

    def __enter__(self) -> OutputLock:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; comparisons there are not guarded
            print("note: this platform has no flock; --out is not locked", file=sys.stderr)
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not self.wait:
                os.close(fd)
                raise UsageError(
                    f"{self.path.parent} is in use by another penguin compare ({self.describe_holder()}); "
                    "wait for it to finish, add --wait to start when it has, or choose another --out"
                ) from None
            print(f"waiting for {self.describe_holder()} to finish with {self.path.parent}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        info = {
            "pid": os.getpid(),
            "host": platform.node(),
            "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": self.command,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None
