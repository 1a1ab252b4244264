"""A small network configuration and a small run that keep the trainer tests fast on a CPU."""

from __future__ import annotations

from typing import Any

from agents import PolicyConfig

SMALL_SETTINGS: dict[str, Any] = dict(
    channels=16,
    text_dim=32,
    word_dim=16,
    hidden=64,
    out_channels=8,
    grid=6,
    vit_heads=2,
    text_heads=2,
)


def small_policy(**changes: Any) -> PolicyConfig:
    """:data:`SMALL_SETTINGS` with ``changes`` applied."""
    return PolicyConfig(**{**SMALL_SETTINGS, **changes})


#: The easiest setting: Bare in a 4x4 room, gold next to the penguin, 24x24 images.
EASY_ENV: dict[str, Any] = {"size": 4, "image_size": 24, "radius": 1}


def tiny_run(tmp_path: Any, name: str, **changes: Any) -> dict[str, Any]:
    """Config fields every trainer shares, for a seeded, silent CPU run on :data:`EASY_ENV` in
    ``tmp_path/name`` with the small network (``changes`` applied on top)."""
    return {
        "env_id": "Penguin-Bare-v0",
        "env_kwargs": EASY_ENV,
        "num_levels": 1_000,
        "eval_every": 0,
        "checkpoint_every": 0,
        "eval_episodes": 50,
        "final_eval_episodes": 100,
        "seed": 0,
        "device": "cpu",
        "runs_dir": str(tmp_path),
        "run_name": name,
        "progress": False,
        "tensorboard": False,
        "policy": small_policy(),
        **changes,
    }
