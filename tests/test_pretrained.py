"""The shipped agents: every one listed loads, acts through its trainer's head, and beats a
random policy on its env's test levels."""

from __future__ import annotations

import numpy as np
import pytest

import agents
from algorithms.envs import HeldOut
from algorithms.evaluation import evaluate
from experiments.benchmark import ENTRIES
from experiments.ship_agents import SHIPPED

EXPECTED = sorted((ENTRIES[name].algo, ENTRIES[name].env_id) for name in SHIPPED)


def test_every_promised_agent_ships_and_is_small() -> None:
    assert sorted(agents.pretrained_agents()) == EXPECTED
    for algo, env_id in EXPECTED:
        path = agents.pretrained.pretrained_path(algo, env_id)
        assert path.is_file() and path.stat().st_size < 2 * 2**20, path


@pytest.mark.parametrize(("algo", "env_id"), EXPECTED)
def test_each_shipped_agent_beats_random(algo: str, env_id: str) -> None:
    policy = agents.load_pretrained(algo, env_id)
    assert policy.acting_head == ("q" if algo == "dqn" else "logits")
    levels = HeldOut(start_level=2_000_000, num_levels=60).env_kwargs({})
    rng = np.random.default_rng(0)
    random = evaluate(lambda obs, state: rng.integers(0, 5, len(obs["text"])), env_id, levels, 60)
    trained = evaluate(policy, env_id, levels, 60, num_envs=60)
    assert trained.success_rate > random.success_rate + 0.3, (trained.success_rate, random.success_rate)


def test_an_unshipped_pair_names_the_shipped_ones() -> None:
    with pytest.raises(ValueError, match="no shipped agent for dqn on Penguin-Walls-v0; shipped: "):
        agents.load_pretrained("dqn", "Penguin-Walls-v0")
