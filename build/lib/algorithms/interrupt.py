"""Ctrl-C that lets a training loop save first: the signal only sets a flag the loop polls."""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType


class GracefulInterrupt:
    """Context manager: inside it, SIGINT (Ctrl-C) and SIGTERM set :attr:`requested`.

    The loop checks :attr:`requested` at a safe point (between updates), writes its resume
    checkpoint and returns. A second Ctrl-C restores the default behaviour and stops at once.
    Outside the main thread (where handlers cannot be installed) it is a no-op.
    """

    def __init__(self) -> None:
        self.requested = False
        #: The signal that asked to stop (``signal.SIGINT`` or ``signal.SIGTERM``), once one has.
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            self._restore()
            raise KeyboardInterrupt
        self.requested = True
        self.signal = signum

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def __enter__(self) -> GracefulInterrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._restore()
