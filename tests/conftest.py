"""Test settings: headless pygame and matplotlib, one torch thread (the CI machine has 2 cores)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:  # torch is a core dependency, but keep env-only test runs light when it is absent
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    torch = None


@pytest.fixture(autouse=True)
def _denormals_back_on() -> Iterator[None]:
    """A trainer flushes denormal floats for the whole process (``configure_torch``); turn that
    off again after each test, or hypothesis's float strategies refuse to run in the tests after."""
    yield
    if torch is not None:
        torch.set_flush_denormal(False)
