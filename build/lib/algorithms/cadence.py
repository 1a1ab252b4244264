"""When periodic work is due: every so many budget units, or every so many minutes."""

from __future__ import annotations

import time
from collections.abc import Callable


class Every:
    """Fires once each time a counter passes the next multiple of ``period`` (0: never).

    Args:
        period: the counter's step between firings.
        start: the counter's value now (a resumed run fires at the same multiples as an
            uninterrupted one).
    """

    def __init__(self, period: int, start: int = 0) -> None:
        self.period = int(period)
        self.next = (start // self.period + 1) * self.period if self.period > 0 else None

    def due(self, count: int) -> bool:
        """True (once) when ``count`` has reached the next multiple."""
        if self.next is None or count < self.next:
            return False
        while self.next <= count:
            self.next += self.period
        return True


class EveryMinutes:
    """Fires once ``minutes`` of wall time have passed since it last fired (0: never).

    :meth:`reset` restarts the wait (after the work was done for another reason).
    """

    def __init__(self, minutes: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = 60.0 * float(minutes)
        self._clock = clock
        self._last = clock()

    def due(self) -> bool:
        """True when the period has passed (the caller then does the work and calls :meth:`reset`)."""
        return self.seconds > 0 and self._clock() - self._last >= self.seconds

    def reset(self) -> None:
        """Start a new period now."""
        self._last = self._clock()
