"""The vector env's public state: ``state_dict`` round trips continue bit for bit (across
autoresets, through ``torch.load(weights_only=True)``), and ``get_state`` is what the solver's
oracle reads, the same as the single env's state."""

from __future__ import annotations

import io
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import penguin_env
from fake_traces import solver
from penguin_env import state as state_io
from penguin_env.vector import PenguinVectorEnv


def through_a_checkpoint(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` as a trainer's resume checkpoint holds it: arrays as tensors, saved and loaded
    with ``weights_only=True``."""

    def tensors(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: tensors(v) for k, v in value.items()}
        return torch.from_numpy(value) if isinstance(value, np.ndarray) else value

    buffer = io.BytesIO()
    torch.save(tensors(state), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)

    def arrays(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: arrays(v) for k, v in value.items()}
        return value.numpy() if isinstance(value, torch.Tensor) else value

    return arrays(loaded)


def assert_same_steps(a: PenguinVectorEnv, b: PenguinVectorEnv, rng: np.random.Generator, steps: int) -> None:
    for t in range(steps):
        actions = rng.integers(0, penguin_env.NUM_ACTIONS, a.num_envs)
        got, want = b.step(actions), a.step(actions)
        for key in ("image", "text"):
            np.testing.assert_array_equal(got[0][key], want[0][key], err_msg=f"step {t} {key}")
        for i in (1, 2, 3):
            np.testing.assert_array_equal(got[i], want[i], err_msg=f"step {t} item {i}")
        np.testing.assert_array_equal(got[4]["level"], want[4]["level"], err_msg=f"step {t} level")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    env_id=st.sampled_from(penguin_env.ENV_IDS),
    kwargs=st.sampled_from([{}, {"view": "ego"}, {"hint": True}, {"size": 5, "image_size": 28, "max_steps": 12}]),
    mode=st.sampled_from([AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP]),
    played=st.integers(0, 60),
    seed=st.integers(0, 2**16),
)
def test_state_dict_round_trip_continues_bit_for_bit(env_id, kwargs, mode, played, seed) -> None:
    rng = np.random.default_rng(seed)
    a = PenguinVectorEnv(env_id, 6, autoreset_mode=mode, **kwargs)
    a.reset(seed=seed)
    for _ in range(played):
        a.step(rng.integers(0, penguin_env.NUM_ACTIONS, 6))
    b = PenguinVectorEnv(env_id, 6, autoreset_mode=mode, **kwargs)
    b.reset(seed=seed + 1)  # another game entirely, replaced by the loaded state
    b.load_state_dict(through_a_checkpoint(a.state_dict()))
    # 80 more steps: several episodes end and autoreset (short episodes with max_steps=12).
    assert_same_steps(a, b, rng, 80)
    # Unseeded resets draw from the env's own RNG, which the state carries too.
    np.testing.assert_array_equal(a.reset()[0]["image"], b.reset()[0]["image"])


def test_state_dict_refuses_another_configuration() -> None:
    a = PenguinVectorEnv("Penguin-Bare-v0", 4)
    a.reset(seed=0)
    with pytest.raises(ValueError, match="num_envs=4, this env has 5"):
        PenguinVectorEnv("Penguin-Bare-v0", 5).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="config=.*build the env with the same"):
        PenguinVectorEnv("Penguin-Bare-v0", 4, size=6).load_state_dict(a.state_dict())
    with pytest.raises(ValueError, match="env_id='Penguin-Bare-v0', this env has 'Penguin-Gold-v0'"):
        PenguinVectorEnv("Penguin-Gold-v0", 4).load_state_dict(a.state_dict())


def test_get_state_is_a_copy() -> None:
    envs = PenguinVectorEnv("Penguin-Gold-v0", 3)
    envs.reset(seed=0)
    state = envs.get_state()
    positions = state.pos.copy()
    state.pos[:] = -1
    np.testing.assert_array_equal(envs.get_state().pos, positions)
    envs.step(np.full(3, 2))
    assert state.steps.tolist() == [0, 0, 0] and envs.get_state().steps.tolist() == [1, 1, 1]


@pytest.mark.parametrize("env_id", penguin_env.ENV_IDS)
def test_oracle_on_the_vector_env_equals_the_solver_on_single_env_states(env_id) -> None:
    n, rng = 8, np.random.default_rng(1)
    # Same-step autoreset: a finished game starts its next episode at once, as a single env does
    # when it is reset after the episode ends.
    envs = PenguinVectorEnv(env_id, n, autoreset_mode=AutoresetMode.SAME_STEP, max_steps=20)
    envs.reset(seed=10)
    singles = [gym.make(env_id, max_steps=20) for _ in range(n)]
    for i, env in enumerate(singles):
        env.reset(seed=10 + i)
    for _ in range(60):
        mask = solver.optimal_action_mask(envs.get_state())
        for i, env in enumerate(singles):
            one = state_io.from_dict(env.unwrapped.get_state())
            np.testing.assert_array_equal(mask[i], solver.optimal_action_mask(one)[0])
        actions = rng.integers(0, penguin_env.NUM_ACTIONS, n)
        envs.step(actions)
        for env, action in zip(singles, actions, strict=True):
            _, _, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                env.reset()
    for env in singles:
        env.close()
