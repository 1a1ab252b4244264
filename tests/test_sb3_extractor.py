"""The stable-baselines3 bridge: our encoder inside SB3's PPO."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO

import penguin_env  # noqa: F401
from agents import MultimodalPolicy, PolicyConfig
from agents.sb3 import PenguinFeaturesExtractor
from penguin_env.wrappers import TokenizeInstruction

SMALL = PolicyConfig(channels=16, text_dim=32, word_dim=16, hidden=64, out_channels=8, grid=6)


def test_ppo_trains_a_few_hundred_steps_with_our_extractor(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))  # SB3 would otherwise leave a log dir in /tmp
    env = TokenizeInstruction(gym.make("Penguin-Bare-v0", radius=2, max_steps=20))
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=64,
        batch_size=32,
        n_epochs=2,
        seed=0,
        device="cpu",
        policy_kwargs={
            "features_extractor_class": PenguinFeaturesExtractor,
            "features_extractor_kwargs": {"config": SMALL},
            "net_arch": [],
        },
    )
    extractor = model.policy.features_extractor
    assert isinstance(extractor, PenguinFeaturesExtractor) and extractor.features_dim == 64
    before = [p.detach().clone() for p in extractor.parameters()]
    model.learn(256)
    assert model.num_timesteps >= 256
    changed = [not torch.equal(a, b) for a, b in zip(before, extractor.parameters(), strict=True)]
    assert all(changed), "some encoder parameters were not updated by PPO"
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


def test_extractor_matches_the_policy_encoder() -> None:
    """SB3's preprocessed input (channels first, /255, float ids) gives the policy's features."""
    env = TokenizeInstruction(gym.make("Penguin-Lang-v0"))
    policy = MultimodalPolicy(env.observation_space, env.action_space, SMALL)
    chw = gym.spaces.Dict(
        {
            "image": gym.spaces.Box(0, 255, (3, 64, 64), np.uint8),
            "text": env.observation_space["text"],
        }
    )
    extractor = PenguinFeaturesExtractor(chw, SMALL)
    extractor.encoder.load_state_dict(policy.encoder.state_dict())
    obs, _ = env.reset(seed=0)
    batch = {k: v[None] for k, v in obs.items()}
    want = policy(batch, heads=("features",))["features"]
    got = extractor(
        {
            "image": torch.as_tensor(batch["image"]).permute(0, 3, 1, 2).float() / 255.0,
            "text": torch.as_tensor(batch["text"]).float(),
        }
    )
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
