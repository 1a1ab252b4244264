"""A trainer's state between iterations, saved in resume checkpoints as tensors and plain values.

Each trainer keeps what it carries from one iteration to the next (optimizer, sampling
generator, the games being played, curriculum, target network, ...) in a dataclass extending
:class:`TrainerState`. Its :meth:`~TrainerState.state_dict` saves every field: a part with its
own ``state_dict()`` (optimizers, modules, the vector env's stepper, the curriculum) through it,
a ``torch.Generator`` through ``get_state()``, anything else as the plain value it is. A resume
checkpoint then holds no pickled objects and loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    """A seeded ``torch.Generator`` on ``device``: sampling draws on the tensors' own device."""
    return torch.Generator(device=device).manual_seed(int(seed))


def _save(part: Any) -> Any:
    if part is None:
        return None
    if isinstance(part, torch.Generator):
        return part.get_state()
    if hasattr(part, "state_dict"):
        return part.state_dict()
    return part


@dataclasses.dataclass
class TrainerState:
    """Base of every trainer's state: a dataclass whose fields are saved and restored."""

    def state_dict(self) -> dict[str, Any]:
        """Every field as tensors, arrays and plain values."""
        return {f.name: _save(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned into the live parts (a part saved as None
        is left as it is: e.g. a replay buffer the checkpoint does not hold)."""
        for f in dataclasses.fields(self):
            part, saved = getattr(self, f.name), state.get(f.name)
            if saved is None and part is not None:
                continue
            if isinstance(part, torch.Generator):
                part.set_state(saved)
            elif hasattr(part, "load_state_dict"):
                part.load_state_dict(saved)
            else:
                setattr(self, f.name, saved)


def to_checkpoint_values(value: Any) -> Any:
    """``value`` with numpy arrays as tensors and numpy scalars as Python numbers, recursively.

    Raises:
        TypeError: for bytes or any object ``torch.load(weights_only=True)`` would refuse, naming
            where it sits.
    """
    return _convert(value, "resume")


def _convert(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _convert(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_convert(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{where}: object arrays cannot go into a checkpoint")
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (torch.Tensor, str, int, float, bool, type(None))):
        return value
    raise TypeError(f"{where}: {type(value).__name__} is not a tensor or plain value; give it a state_dict()")


def to_numpy_values(value: Any) -> Any:
    """``value`` with tensors as numpy arrays, recursively (the inverse of
    :func:`to_checkpoint_values` for parts that keep numpy arrays, such as the vector env)."""
    if isinstance(value, dict):
        return {k: to_numpy_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [to_numpy_values(v) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value
