"""Test settings: headless pygame and matplotlib, one torch thread (the CI machine has 2 cores)."""

from __future__ import annotations

import os

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:  # torch is a core dependency, but keep env-only test runs light when it is absent
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
