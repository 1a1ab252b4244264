"""The Gymnasium face of the envs: check_env, determinism, spaces, render modes, bad input."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import penguin_env
from penguin_env.env import InvalidAction

IDS = penguin_env.ENV_IDS
KWARGS = [
    {},
    {"size": 5},
    {"size": 12},
    {"image_size": 224},
    {"view": "ego"},
    {"view": "ego", "size": 5, "image_size": 224},
    {"hint": True},
    {"paraphrases": "test"},
    {"paraphrases": "all", "max_steps": 7, "step_penalty": 0.01},
    {"num_levels": 10, "start_level": 50},
]


@pytest.mark.parametrize(
    "kwargs", KWARGS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default"
)
@pytest.mark.parametrize("env_id", IDS)
def test_check_env(env_id: str, kwargs: dict) -> None:
    env = gym.make(env_id, **kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert set(info) >= {"task", "instruction", "success", "gold_left"}


@pytest.mark.parametrize("radius", [1, 3])
def test_check_env_bare_radius(radius: int) -> None:
    check_env(gym.make("Penguin-Bare-v0", radius=radius, size=6).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", IDS)
def test_render_check(env_id: str) -> None:
    check_env(gym.make(env_id, render_mode="rgb_array").unwrapped)


def test_spaces() -> None:
    env = gym.make("Penguin-Gold-v0", image_size=96)
    assert env.action_space == gym.spaces.Discrete(5)
    image = env.observation_space["image"]
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    assert isinstance(env.observation_space["text"], gym.spaces.Text)
    assert env.metadata["render_fps"] > 0


def _trajectory(env_id: str, seed: int, actions: list[int]) -> list:
    env = gym.make(env_id, size=6)
    obs, info = env.reset(seed=seed)
    out = [(obs["image"].tobytes(), obs["text"], info)]
    for a in actions:
        obs, reward, term, trunc, info = env.step(a)
        out.append((obs["image"].tobytes(), obs["text"], reward, term, trunc, info))
        if term or trunc:
            obs, info = env.reset()
            out.append((obs["image"].tobytes(), obs["text"], info))
    return out


@pytest.mark.parametrize("env_id", IDS)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), actions=st.lists(st.integers(0, 4), min_size=1, max_size=40))
def test_same_seed_same_trajectory(env_id: str, seed: int, actions: list[int]) -> None:
    assert _trajectory(env_id, seed, actions) == _trajectory(env_id, seed, actions)


def test_different_seeds_differ() -> None:
    firsts = {_trajectory("Penguin-Walls-v0", s, [])[0][0] for s in range(10)}
    assert len(firsts) == 10


def test_reset_without_seed_continues_the_sequence() -> None:
    a, b = gym.make("Penguin-Gold-v0"), gym.make("Penguin-Gold-v0")
    a.reset(seed=5)
    b.reset(seed=5)
    for _ in range(5):
        oa, _ = a.reset()
        ob, _ = b.reset()
        np.testing.assert_array_equal(oa["image"], ob["image"])
    levels = {a.reset()[1]["level"] for _ in range(20)}
    assert len(levels) > 15


def test_reset_level_option() -> None:
    env = gym.make("Penguin-Lang-v0")
    o1, i1 = env.reset(seed=1, options={"level": 42})
    o2, i2 = env.reset(seed=2, options={"level": 42})
    np.testing.assert_array_equal(o1["image"], o2["image"])
    assert i1["level"] == i2["level"] == 42 and o1["text"] == o2["text"]
    with pytest.raises(ValueError, match="level"):
        env.reset(options={"level": -1})
    with pytest.raises(ValueError, match="option"):
        env.reset(options={"lvl": 1})


def test_render_modes() -> None:
    env = gym.make("Penguin-Lang-v0", render_mode="rgb_array", size=6)
    obs, info = env.reset(seed=3)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    room = 8 * 32
    assert frame.shape[1] == room and frame.shape[0] > room
    band = frame[room:]
    dark = (band.max(axis=2) < 100).any(axis=1)
    assert dark.sum() > 10  # the instruction and status are written in dark ink
    other = gym.make("Penguin-Lang-v0", render_mode="rgb_array", size=6)
    other.reset(seed=3)
    other.unwrapped.set_state(
        {**other.unwrapped.get_state(), "task": "corner", "phrase": 4, "corner": 3}
    )
    assert not np.array_equal(other.render()[room:], band)  # a different instruction is drawn
    np.testing.assert_array_equal(other.render()[:room], frame[:room])

    ansi = gym.make("Penguin-Lang-v0", render_mode="ansi", size=6)
    ansi.reset(seed=3)
    text = ansi.render()
    heading = ansi.unwrapped.get_state()["heading"]
    assert "↑↗→↘↓↙←↖"[heading] in text and info["instruction"] in text
    assert text.splitlines()[0] == "#" * 8

    human = gym.make("Penguin-Gold-v0", render_mode="human")
    human.reset(seed=0)
    assert human.render() is None
    human.step(1)
    import pygame

    assert pygame.display.get_surface() is not None
    human.close()

    none = gym.make("Penguin-Gold-v0")
    none.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert none.unwrapped.render() is None
    with (
        pytest.warns(UserWarning, match="render_mode"),
        pytest.raises(ValueError, match="render_mode"),
    ):
        gym.make("Penguin-Gold-v0", render_mode="video")


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"colour": "red"}, TypeError, "unknown keyword.*colour"),
        ({"size": 2}, ValueError, "size must be an int in 3..32"),
        ({"size": 33}, ValueError, "size must be an int in 3..32"),
        ({"size": 5.0}, ValueError, "size"),
        ({"size": 20}, ValueError, "image_size must be an int in 88"),
        ({"image_size": 30}, ValueError, "image_size must be an int in 40"),
        ({"view": "side"}, ValueError, "view"),
        ({"max_steps": 0}, ValueError, "max_steps"),
        ({"step_penalty": -1}, ValueError, "step_penalty"),
        ({"paraphrases": "dev"}, ValueError, "paraphrases"),
        ({"num_levels": -1}, ValueError, "num_levels"),
        ({"start_level": -5}, ValueError, "start_level"),
        ({"hint": 1}, ValueError, "hint"),
        ({"radius": 2}, TypeError, "radius is only accepted by Penguin-Bare-v0"),
    ],
)
def test_bad_kwargs(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        gym.make("Penguin-Gold-v0", **kwargs)


def test_bad_radius() -> None:
    with pytest.raises(ValueError, match="radius"):
        gym.make("Penguin-Bare-v0", radius=0)


@pytest.mark.parametrize(
    "action", [5, -1, 1.5, np.array([1, 2]), np.array([2]), "2", None, True, float("nan")]
)
def test_bad_actions(action) -> None:
    env = gym.make("Penguin-Gold-v0").unwrapped
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match="0..4|Discrete"):
        env.step(action)
    assert env.get_state()["steps"] == 0  # nothing happened


def test_integer_like_actions_are_accepted() -> None:
    env = gym.make("Penguin-Gold-v0").unwrapped
    env.reset(seed=0)
    for a in (np.int64(1), np.array(1), 1.0, np.int32(0)):
        env.step(a)
    assert env.get_state()["steps"] == 4


def test_step_before_reset() -> None:
    env = penguin_env.PenguinGoldEnv()
    with pytest.raises(gym.error.ResetNeeded, match="reset"):
        env.step(0)
    with pytest.raises(TypeError, match="abstract"):
        penguin_env.PenguinEnv()


def test_make_with_module_prefix_in_fresh_process() -> None:
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'penguin_env' not in sys.modules\n"
        "env = gym.make('penguin_env:Penguin-Gold-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(obs['image'].shape, info['task'])\n"
    )
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert "(64, 64, 3) collect" in out.stdout


def test_pickle_round_trip() -> None:
    env = gym.make("Penguin-Walls-v0")
    env.reset(seed=4)
    env.step(2)
    clone = pickle.loads(pickle.dumps(env))
    a, b = env.step(1), clone.step(1)
    np.testing.assert_array_equal(a[0]["image"], b[0]["image"])
    assert a[1:] == b[1:]


def test_async_vector_env() -> None:
    fns = [lambda: gym.make("Penguin-Lang-v0", size=5) for _ in range(2)]
    vec = gym.vector.AsyncVectorEnv(fns)
    try:
        obs, infos = vec.reset(seed=[3, 4])
        assert obs["image"].shape == (2, 64, 64, 3) and len(obs["text"]) == 2
        for _ in range(20):
            obs, rewards, terms, truncs, infos = vec.step(np.array([2, 1]))
        assert rewards.shape == (2,) and "success" in infos
    finally:
        vec.close()
    single = gym.make("Penguin-Lang-v0", size=5)
    first, _ = single.reset(seed=3)
    vec = gym.vector.AsyncVectorEnv(fns)
    try:
        again, _ = vec.reset(seed=[3, 4])
        np.testing.assert_array_equal(again["image"][0], first["image"])
    finally:
        vec.close()
