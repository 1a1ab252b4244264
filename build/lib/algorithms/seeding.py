"""Seeding of Python, NumPy and PyTorch, and capturing their states for resume."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

#: Stride between the seeds of a run's derived streams (a prime, so the streams of nearby run
#: seeds do not collide for small indices).
SEED_STRIDE = 7919


def curriculum_seed(seed: int, iteration: int) -> int:
    """Seed of the training games restarted at a curriculum stage reached after ``iteration``."""
    return seed + SEED_STRIDE * iteration


def data_seed(seed: int, round_index: int) -> int:
    """Seed of behaviour cloning's data round ``round_index`` (0: the demonstrations, then each
    DAgger round)."""
    return seed * 1_000_003 + round_index * SEED_STRIDE + 17


def seed_everything(seed: int, deterministic: bool = True) -> np.random.Generator:
    """Seed ``random``, NumPy's legacy global RNG and PyTorch; return a fresh NumPy ``Generator``.

    Args:
        seed: the run's seed.
        deterministic: ask PyTorch for deterministic kernels (exact repeats on CPU; on CUDA it
            may be slower, and kernels without a deterministic version only warn).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    return np.random.default_rng(seed)


def rng_state(rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Every RNG state a trainer needs to resume bit-for-bit, as checkpoint-safe values."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy_legacy": [
            np.random.get_state()[0],
            np.random.get_state()[1].tolist(),
            *np.random.get_state()[2:],
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    if rng is not None:
        state["generator"] = rng.bit_generator.state
    return state


def set_rng_state(state: dict[str, Any], rng: np.random.Generator | None = None) -> None:
    """Restore what :func:`rng_state` captured (into ``rng`` too, if given)."""
    random.setstate(_tuples(state["python"]))
    legacy = state["numpy_legacy"]
    np.random.set_state((legacy[0], np.asarray(legacy[1], dtype=np.uint32), *legacy[2:]))
    torch.set_rng_state(state["torch"])
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["torch_cuda"])
    if rng is not None and "generator" in state:
        rng.bit_generator.state = state["generator"]


def _tuples(value: Any) -> Any:
    """Lists back to tuples (``random.setstate`` insists on tuples)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
