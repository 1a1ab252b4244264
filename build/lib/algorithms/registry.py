"""Trainer registry: algorithm name -> (config class, train function), for the command line.

Every trainer follows one interface: a config dataclass extending
:class:`algorithms.config.TrainerConfig` and ``train(config, callback=None) -> TrainResult``.
Modules are imported on first use, so listing the names costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from algorithms.config import TrainerConfig
from algorithms.driver import TrainResult

#: name -> (module, config class name[, train function name: "train" when absent])
_TRAINERS: dict[str, tuple[str, ...]] = {
    "bc": ("algorithms.bc", "BCConfig"),
    "ppo": ("algorithms.ppo", "PPOConfig"),
    "grpo": ("algorithms.grpo", "GRPOConfig"),
    "dqn": ("algorithms.dqn", "DQNConfig"),
    "sb3-ppo": ("algorithms.sb3_baselines", "SB3PPOConfig", "train_ppo"),
    "sb3-dqn": ("algorithms.sb3_baselines", "SB3DQNConfig", "train_dqn"),
}

ALGORITHMS: tuple[str, ...] = tuple(_TRAINERS)


def get(name: str) -> tuple[type[TrainerConfig], Callable[..., TrainResult]]:
    """``(config class, train function)`` of a trainer.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    if name not in _TRAINERS:
        raise ValueError(f"unknown algorithm {name!r}; choose from {list(ALGORITHMS)}")
    module_name, config_name, *train_name = _TRAINERS[name]
    module = importlib.import_module(module_name)
    return getattr(module, config_name), getattr(module, train_name[0] if train_name else "train")


def make_config(name: str, **fields: Any) -> TrainerConfig:
    """Build (and so validate) trainer ``name``'s config from keyword fields."""
    config_class, _ = get(name)
    return config_class(**fields)


def train(config: TrainerConfig, callback: Callable[[int], None] | None = None) -> TrainResult:
    """Run the trainer that ``config`` belongs to."""
    for name in ALGORITHMS:
        config_class, train_fn = get(name)
        if type(config) is config_class:
            return train_fn(config, callback)
    raise TypeError(f"{type(config).__name__} is not a registered trainer config")
