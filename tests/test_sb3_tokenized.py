"""stable-baselines3 trains on the tokenized env unchanged."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import penguin_env  # noqa: F401
from penguin_env.wrappers import TokenizeInstruction


def test_sb3_env_checker() -> None:
    sb3_check_env(TokenizeInstruction(gym.make("Penguin-Lang-v0")), warn=False)


def test_ppo_multi_input_policy_trains_on_the_tokenized_env(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path))  # SB3 would otherwise leave a log dir in /tmp
    torch.set_num_threads(1)
    env = TokenizeInstruction(gym.make("Penguin-Bare-v0", size=5, radius=1, max_steps=20))
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        verbose=0,
    )
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
    # The updates ran on the token observations: a finite loss, and the weights moved.
    assert np.isfinite(model.logger.name_to_value["train/loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))
