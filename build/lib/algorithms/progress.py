"""A tqdm progress bar over training steps with live metrics."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


class Progress:
    """Steps done out of ``total``, with e.g. ``success=0.93 loss=0.12`` shown live.

    Args:
        total: steps of the whole run.
        initial: steps already done (after a resume).
        enabled: False shows nothing (tests, batch jobs).
        desc: label in front of the bar.
    """

    def __init__(
        self, total: int, initial: int = 0, enabled: bool = True, desc: str = "train"
    ) -> None:
        self._bar = tqdm(
            total=total, initial=initial, disable=not enabled, desc=desc, dynamic_ncols=True
        )
        self._shown: dict[str, str] = {}

    def update(self, steps: int = 1, **metrics: Any) -> None:
        """Advance by ``steps`` and refresh the metrics shown (None values are skipped)."""
        for key, value in metrics.items():
            if value is not None:
                self._shown[key] = f"{value:.3g}" if isinstance(value, float) else str(value)
        if metrics:
            self._bar.set_postfix(self._shown, refresh=False)
        self._bar.update(steps)

    def write(self, message: str) -> None:
        """Print a line without breaking the bar."""
        self._bar.write(message)

    def close(self) -> None:
        self._bar.close()
