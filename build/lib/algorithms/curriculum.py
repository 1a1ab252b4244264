"""The radius curriculum of ``Penguin-Bare-v0``: gold near the penguin first, then farther."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from algorithms.config import CurriculumConfig


class RadiusCurriculum:
    """Gold within ``radius`` cells, widened by one each time training success passes a threshold.

    Trainers report every finished training episode's success with :meth:`record`; the driver
    calls :meth:`advance` after each iteration and, when it widens, restarts the training games
    with :meth:`env_kwargs`. Off (``cfg.curriculum`` False), :attr:`radius` is None and nothing
    changes.

    Args:
        cfg: a config with the curriculum's fields.
        env_kwargs: the env keyword arguments of training (their ``size`` and final ``radius``).
    """

    def __init__(self, cfg: CurriculumConfig, env_kwargs: dict[str, Any]) -> None:
        size = int(env_kwargs.get("size", 8))
        final = env_kwargs.get("radius")
        self.final = None if final is None else int(final)
        # The radius is a Chebyshev distance: at size - 1 every cell of the room is within it,
        # the same as "anywhere".
        self.limit = min(self.final, size - 1) if self.final is not None else size - 1
        self.radius: int | None = min(cfg.curriculum_start, self.limit) if cfg.curriculum else None
        self.threshold = cfg.curriculum_threshold
        self.window = cfg.curriculum_window
        self.successes: deque[float] = deque(maxlen=self.window)

    @property
    def active(self) -> bool:
        """Whether the radius can still widen."""
        return self.radius is not None and self.radius < self.limit

    def env_kwargs(self, base: dict[str, Any]) -> dict[str, Any]:
        """``base`` with the current radius (the env's own once the curriculum is done)."""
        if self.radius is None:
            return base
        return {**base, "radius": self.final if self.radius >= self.limit else self.radius}

    def record(self, successes: np.ndarray) -> None:
        """Add the success flags of training episodes that just ended."""
        if self.radius is not None:
            self.successes.extend(np.asarray(successes, dtype=float).tolist())

    def advance(self) -> bool:
        """Widen the radius if the last ``window`` episodes succeeded often enough."""
        if not self.active or len(self.successes) < self.window:
            return False
        if float(np.mean(self.successes)) < self.threshold:
            return False
        self.radius += 1  # type: ignore[operator]
        self.successes.clear()
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"radius": self.radius, "successes": list(self.successes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.radius = state["radius"]
        self.successes = deque((float(x) for x in state["successes"]), maxlen=self.window)
