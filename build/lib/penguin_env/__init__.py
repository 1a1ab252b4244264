"""Penguin: a small multimodal (image + text) game as Gymnasium environments.

Importing this package registers ``Penguin-Bare-v0``, ``Penguin-Gold-v0``,
``Penguin-Walls-v0`` and ``Penguin-Lang-v0``; ``gym.make("penguin_env:Penguin-Gold-v0")``
works without importing it first.
"""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

from penguin_env.config import VARIANTS, EnvConfig
from penguin_env.core import NUM_ACTIONS, Action, GameState, Task
from penguin_env.env import (
    InvalidAction,
    PenguinBareEnv,
    PenguinEnv,
    PenguinGoldEnv,
    PenguinLangEnv,
    PenguinWallsEnv,
)
from penguin_env.instructions import Tokenizer
from penguin_env.state import StateError

__version__ = "0.1.0"

ENV_IDS: tuple[str, ...] = tuple(VARIANTS)

for _env_id in ENV_IDS:
    if _env_id not in registry:
        register(
            id=_env_id,
            entry_point=f"penguin_env.env:Penguin{_env_id.split('-')[1]}Env",
            vector_entry_point=f"penguin_env.vector:Penguin{_env_id.split('-')[1]}VectorEnv",
        )

__all__ = [
    "ENV_IDS",
    "NUM_ACTIONS",
    "Action",
    "EnvConfig",
    "GameState",
    "InvalidAction",
    "PenguinBareEnv",
    "PenguinEnv",
    "PenguinGoldEnv",
    "PenguinLangEnv",
    "PenguinWallsEnv",
    "StateError",
    "Task",
    "Tokenizer",
    "__version__",
]
