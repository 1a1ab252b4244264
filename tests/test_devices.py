"""Devices: every trainer runs where its policy lives (on CUDA when a GPU is present), and the GPU
check says clearly when there is none."""

from __future__ import annotations

import pytest
import torch

from agents.network import epsilon_greedy
from algorithms import registry
from experiments import gpu_check
from tests.small_policy import tiny_run

CUDA = torch.cuda.is_available()

#: Per trainer: a run of a few seconds.
TINY = {
    "ppo": dict(total_env_steps=512, num_envs=8, num_steps=32),
    "grpo": dict(total_env_steps=400, group_size=2, num_groups=4, max_episode_steps=12),
    "dqn": dict(total_env_steps=800, num_envs=8, buffer_size=4_000, learning_starts=200, batch_size=32),
    "bc": dict(total_steps=20, data_steps=300, dagger_rounds=1, dagger_steps=100, batch_size=16, num_envs=8),
    "sb3-ppo": dict(total_env_steps=512, num_envs=8, n_steps=32, batch_size=64),
    "sb3-dqn": dict(total_env_steps=800, num_envs=8, learning_starts=200, batch_size=32),
}


@pytest.mark.skipif(CUDA, reason="a GPU is present: the message is for machines without one")
def test_gpu_check_says_so_when_there_is_no_gpu(capsys) -> None:
    assert gpu_check.main([]) == 1
    assert "no CUDA GPU is present" in capsys.readouterr().err


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("algo", list(TINY))
def test_every_trainer_trains_on_the_gpu(tmp_path, algo) -> None:
    config_class, train = registry.get(algo)
    result = train(config_class(**tiny_run(tmp_path, algo, device="cuda", final_eval_episodes=8, **TINY[algo])))
    assert result.final_eval is not None
    assert all(p.device.type == "cuda" for p in result.policy.parameters())


def test_epsilon_greedy_draws_on_its_generators_device() -> None:
    q = torch.zeros(64, 5)
    q[:, 2] = 1.0
    generator = torch.Generator(device="cpu").manual_seed(0)
    again = torch.Generator(device="cpu").manual_seed(0)
    a, b = epsilon_greedy(q, 0.5, generator), epsilon_greedy(q, 0.5, again)
    assert torch.equal(a, b) and a.device == q.device
    assert (a == 2).float().mean() > 0.4 and (a != 2).any()
