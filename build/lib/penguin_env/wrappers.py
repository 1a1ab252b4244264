"""Observation wrappers."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium import spaces

from penguin_env.instructions import Tokenizer


class TokenizeInstruction(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Replace the ``text`` observation by a fixed-length ``Box`` of int64 token ids.

    For libraries that cannot take ``Text`` spaces (stable-baselines3's ``MultiInputPolicy``
    among them). Ids come from :class:`penguin_env.instructions.Tokenizer`; the instruction
    string stays available in ``info["instruction"]``.
    """

    def __init__(self, env: gym.Env, tokenizer: Tokenizer | None = None) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, tokenizer=tokenizer)
        super().__init__(env)
        if not isinstance(env.observation_space, spaces.Dict) or "text" not in env.observation_space.spaces:
            raise TypeError("TokenizeInstruction needs a Dict observation space with a 'text' key (a Penguin env)")
        self.tokenizer = tokenizer or Tokenizer()
        self.observation_space = spaces.Dict({**env.observation_space.spaces, "text": self.tokenizer.space()})

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {**observation, "text": self.tokenizer.encode(observation["text"])}
