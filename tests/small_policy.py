"""A small network configuration that keeps the network tests fast on a CPU."""

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
