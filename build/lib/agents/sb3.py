"""The policy network's image + text encoder as a stable-baselines3 features extractor.

Usage::

    import gymnasium as gym
    import penguin_env
    from penguin_env.wrappers import TokenizeInstruction
    from stable_baselines3 import PPO
    from agents import PolicyConfig
    from agents.sb3 import PenguinFeaturesExtractor

    env = TokenizeInstruction(gym.make("Penguin-Gold-v0"))
    model = PPO(
        "MultiInputPolicy",
        env,
        policy_kwargs={
            "features_extractor_class": PenguinFeaturesExtractor,
            "features_extractor_kwargs": {"config": PolicyConfig()},
            "net_arch": [],  # the extractor already ends in a hidden layer
        },
    )
    model.learn(10_000)

stable-baselines3 transposes images to channels-first and divides them by 255 before the
extractor, and casts the token ids to float; the encoder accepts both forms.
"""

from __future__ import annotations

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from agents.config import PolicyConfig
from agents.network import MultimodalEncoder
from agents.spaces import obs_layout


class PenguinFeaturesExtractor(BaseFeaturesExtractor):
    """:class:`agents.MultimodalEncoder` (the same encoders and fusion as the policy network).

    Args:
        observation_space: the ``Dict(image, text)`` space stable-baselines3 passes in.
        config: the network architecture; ``features_dim`` is ``config.hidden``.
    """

    def __init__(self, observation_space: spaces.Dict, config: PolicyConfig | None = None) -> None:
        config = config or PolicyConfig()
        super().__init__(observation_space, features_dim=config.hidden)
        self.encoder = MultimodalEncoder(obs_layout(observation_space, None), config)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encoder(observations["image"], observations["text"])
