"""What the network knows about the env: its observation and action spaces, in plain form.

The network is built from ``Dict(image=Box(uint8, (S, S, 3)), text=Box(int, (L,)))`` (a Penguin
env wrapped in ``TokenizeInstruction``) and ``Discrete(A)``. Spaces are described by plain
dicts so checkpoints can store them without pickling Gymnasium objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces


@dataclass(frozen=True)
class ObsLayout:
    """Shapes the network needs, read from the spaces.

    Attributes:
        image_size: image side S (square images).
        channels_last: True for ``(S, S, 3)`` images (the env), False for ``(3, S, S)``
            (stable-baselines3 transposes images before its feature extractor).
        text_length: tokens per instruction L.
        vocab_size: number of token ids (the text Box's ``high + 1``).
        num_actions: size of the ``Discrete`` action space.
    """

    image_size: int
    channels_last: bool
    text_length: int
    vocab_size: int
    num_actions: int


def _fail(message: str) -> None:
    raise TypeError(
        f"{message}. The network needs Dict(image=Box(0, 255, (S, S, 3), uint8), text=Box(int, (L,))) "
        "observations: wrap a Penguin env in penguin_env.wrappers.TokenizeInstruction."
    )


def obs_layout(observation_space: spaces.Space, action_space: spaces.Space | None) -> ObsLayout:
    """Check the spaces and read the shapes the network is built from.

    Raises:
        TypeError: if the spaces are not a Penguin-style image + token-id ``Dict`` and a
            ``Discrete`` action space; the message says which part is wrong.
    """
    if not isinstance(observation_space, spaces.Dict):
        _fail(f"observation space is {observation_space!r}, not a Dict")
    for key in ("image", "text"):
        if key not in observation_space.spaces:
            _fail(f"observation space has no {key!r} key (keys: {list(observation_space.spaces)})")
    image, text = observation_space["image"], observation_space["text"]
    if isinstance(text, spaces.Text):
        _fail("the 'text' observation is a Text space (strings)")
    if not isinstance(image, spaces.Box) or len(image.shape) != 3:
        _fail(f"'image' must be a 3-D Box, got {image!r}")
    if image.shape[-1] == 3 and image.shape[0] == image.shape[1]:
        channels_last, side = True, image.shape[0]
    elif image.shape[0] == 3 and image.shape[1] == image.shape[2]:
        channels_last, side = False, image.shape[1]
    else:
        _fail(f"'image' must be square RGB, (S, S, 3) or (3, S, S), got shape {image.shape}")
    if not isinstance(text, spaces.Box) or len(text.shape) != 1:
        _fail(f"'text' must be a 1-D Box of token ids, got {text!r}")
    vocab = int(np.max(text.high)) + 1
    num_actions = 0
    if action_space is not None:
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(f"the action space must be Discrete, got {action_space!r}")
        num_actions = int(action_space.n)
    return ObsLayout(int(side), channels_last, int(text.shape[0]), vocab, num_actions)


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A plain (JSON-friendly) description of a Box, Discrete or Dict space.

    Box bounds are stored as their overall minimum and maximum, which is all the network reads.
    """
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(v) for k, v in space.spaces.items()}}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": float(np.min(space.low)),
            "high": float(np.max(space.high)),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    raise TypeError(f"cannot describe space {space!r}: only Dict, Box and Discrete are supported")


def space_from_dict(data: dict[str, Any]) -> spaces.Space:
    """Rebuild a space from :func:`space_to_dict`."""
    kind = data.get("type")
    if kind == "Dict":
        return spaces.Dict({k: space_from_dict(v) for k, v in data["spaces"].items()})
    if kind == "Box":
        dtype = np.dtype(data["dtype"])
        low, high = data["low"], data["high"]
        if np.issubdtype(dtype, np.integer):
            low, high = int(low), int(high)
        return spaces.Box(low, high, shape=tuple(data["shape"]), dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    raise ValueError(f"unknown space description {data!r}")


def space_differences(expected: dict[str, Any], actual: dict[str, Any], prefix: str) -> list[str]:
    """Human-readable differences between two :func:`space_to_dict` descriptions."""
    out: list[str] = []
    for key in sorted(set(expected) | set(actual)):
        name = f"{prefix}.{key}"
        a, b = expected.get(key, "<missing>"), actual.get(key, "<missing>")
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(space_differences(a, b, name))
        elif a != b:
            out.append(f"{name}: checkpoint has {a!r}, policy has {b!r}")
    return out


def obs_to_tensors(obs: dict[str, Any], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(image, text)`` tensors on ``device`` from numpy or torch observations (uint8 kept as uint8)."""
    image, text = obs["image"], obs["text"]
    image = torch.as_tensor(
        np.asarray(image) if not isinstance(image, torch.Tensor) else image, device=device
    )
    text = torch.as_tensor(
        np.asarray(text) if not isinstance(text, torch.Tensor) else text, device=device
    )
    return image, text
