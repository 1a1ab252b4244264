"""Trained agents that ship with the package, to watch and evaluate without training first.

Each is the final checkpoint of one benchmark run (``python -m experiments.benchmark``), copied
by ``python -m experiments.ship_agents`` into ``agents/pretrained/<algo>-<env id>.pt`` with an
entry in ``index.json`` (the command that trained it, its greedy success on the test levels, the
machine and date)::

    policy = agents.load_pretrained("ppo", "Penguin-Gold-v0")
    penguin play --agent ppo --env Penguin-Gold-v0
    penguin eval ppo --env Penguin-Gold-v0
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from agents.checkpoint import load
from agents.network import MultimodalPolicy

#: Folder of the shipped checkpoints and their ``index.json``.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def pretrained_index() -> dict[str, dict[str, Any]]:
    """``"<algo>-<env id>"`` -> what is known of that shipped agent (file, success, command, date)."""
    path = PRETRAINED_DIR / "index.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def pretrained_agents() -> list[tuple[str, str]]:
    """``(algorithm, env id)`` of every shipped agent."""
    return [(entry["algo"], entry["env_id"]) for entry in pretrained_index().values()]


def pretrained_path(algo: str, env_id: str) -> Path:
    """The shipped checkpoint of ``algo`` on ``env_id``.

    Raises:
        ValueError: when none ships, naming the ones that do.
    """
    entry = pretrained_index().get(f"{algo}-{env_id}")
    if entry is None:
        shipped = ", ".join(f"{a} on {e}" for a, e in pretrained_agents()) or "none"
        raise ValueError(f"no shipped agent for {algo} on {env_id}; shipped: {shipped}")
    return PRETRAINED_DIR / entry["file"]


def load_pretrained(algo: str, env_id: str, device: str | torch.device | None = None) -> MultimodalPolicy:
    """The shipped policy of ``algo`` on ``env_id``, in eval mode, acting as its trainer did
    (:func:`agents.load`).

    Raises:
        ValueError: when none ships for that pair (the message lists those that do).
    """
    return load(pretrained_path(algo, env_id), device)
