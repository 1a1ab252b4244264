"""get_state / set_state: exact round trips and clear errors on malformed states."""

from __future__ import annotations

import copy
import json

import gymnasium as gym
import numpy as np
import pytest
from penguin_states import make_state

import penguin_env
from penguin_env.state import StateError


def _roll(env: gym.Env, actions: list[int]) -> list:
    out = []
    for a in actions:
        obs, reward, term, trunc, info = env.step(a)
        out.append((obs["image"].copy(), obs["text"], reward, term, trunc, info))
        if term or trunc:
            obs, info = env.reset()
            out.append((obs["image"].copy(), obs["text"], info))
    return out


def _same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert len(x) == len(y)
        for u, v in zip(x, y, strict=True):
            if isinstance(u, np.ndarray):
                np.testing.assert_array_equal(u, v)
            else:
                assert u == v


@pytest.mark.parametrize("kwargs", [{}, {"hint": True}, {"view": "ego", "image_size": 72}])
@pytest.mark.parametrize("env_id", penguin_env.ENV_IDS)
def test_round_trip_mid_episode(env_id: str, kwargs: dict) -> None:
    rng = np.random.default_rng(7)
    env = gym.make(env_id, size=6, **kwargs)
    env.reset(seed=11)
    _roll(env, [int(a) for a in rng.integers(0, 4, size=9)])  # no STOP: stay mid-episode
    saved = env.unwrapped.get_state()
    restored_dict = json.loads(json.dumps(saved))
    assert restored_dict == saved
    # The rest of this episode and the following ones (with STOP and resets).
    actions = [int(a) for a in rng.choice([0, 1, 2, 2, 3, 4], size=80)]
    expected = _roll(env, actions)

    other = gym.make(env_id, size=6, **kwargs)
    other.reset(seed=999)
    other.unwrapped.set_state(restored_dict)
    assert other.unwrapped.get_state() == saved
    _same(_roll(other, actions), expected)


def test_restoring_a_finished_episode_needs_reset() -> None:
    env = gym.make("Penguin-Lang-v0")
    env.reset(seed=0)
    env.step(4)
    done = env.unwrapped.get_state()
    assert done["episode"]["done"] is True
    env.reset(seed=1)
    env.unwrapped.set_state(done)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)


def test_get_state_before_reset() -> None:
    env = gym.make("Penguin-Gold-v0")
    with pytest.raises(gym.error.ResetNeeded, match="reset"):
        env.unwrapped.get_state()


def test_set_state_without_reset_then_step() -> None:
    env = penguin_env.PenguinLangEnv(size=5)
    env.set_state(make_state(size=5, pos=(0, 0), heading=2, gold=[(4, 0)], task="face"))
    _, reward, term, _, info = env.step(4)
    assert term and info["success"] and reward == 1.0


BAD = [  # (field, bad value, substring of the message)
    ("version", 2, "version"),
    ("size", 6, "size=6"),
    ("size", "5", "size"),
    ("walls", ["....."] * 4, "walls"),
    ("walls", ["....x"] * 5, "walls"),
    ("walls", "." * 25, "walls"),
    ("pos", [5, 0], "outside"),
    ("pos", [1], "pair"),
    ("pos", [1.0, 2.0], "pair"),
    ("pos", [2, 2], "wall"),  # walls below put a wall on (2, 2)
    ("heading", 8, "heading"),
    ("heading", -1, "heading"),
    ("heading", True, "heading"),
    ("gold", [], "gold"),
    ("gold", [[1, 1], [3, 3]], "gold"),
    ("gold", [[9, 9]], "outside"),
    ("gold", [[2, 2]], "wall"),
    ("gold_left", [1], "booleans"),
    ("gold_left", [True, True], "same length"),
    ("task", "dance", "task"),
    ("task", "corners", "task"),
    ("corner", 4, "corner"),
    ("phrase", 99, "phrase"),
    ("steps", -1, "steps"),
    ("steps", 10**6, "max_steps"),
    ("level", "zero", "level"),
    ("episode", [], "episode"),
    ("episode", {"seed_base": "x"}, "seed_base"),
    ("episode", {"index": -1}, "index"),
    ("episode", {"done": "no"}, "done"),
    ("episode", {"return": float("nan")}, "return"),
    ("episode", {"colour": 1}, "unknown"),
]


@pytest.mark.parametrize("field,value,message", BAD)
def test_malformed_states_raise(field: str, value, message: str) -> None:
    env = gym.make("Penguin-Lang-v0", size=5)
    env.reset(seed=0)
    before = env.unwrapped.get_state()
    state = make_state(size=5, pos=(0, 0), gold=[(4, 4)], task="face", walls=[(2, 2)])
    state[field] = value
    with pytest.raises(StateError, match=message):
        env.unwrapped.set_state(state)
    assert env.unwrapped.get_state() == before  # a rejected state changes nothing


def test_more_malformed_states() -> None:
    env = gym.make("Penguin-Gold-v0", size=5)
    env.reset(seed=0)
    good = make_state(size=5, gold=[(1, 1), (2, 2), (3, 3)])
    env.unwrapped.set_state(good)
    with pytest.raises(StateError, match="dict"):
        env.unwrapped.set_state("state")
    missing = copy.deepcopy(good)
    del missing["heading"]
    with pytest.raises(StateError, match="missing.*heading"):
        env.unwrapped.set_state(missing)
    with pytest.raises(StateError, match="3"):  # Gold-v0 has three pieces
        env.unwrapped.set_state(make_state(size=5, gold=[(1, 1)]))
    with pytest.raises(StateError, match="does not occur"):
        env.unwrapped.set_state(make_state(size=5, gold=[(1, 1), (2, 2), (3, 3)], task="face"))
    with pytest.raises(StateError, match="two pieces"):
        env.unwrapped.set_state(make_state(size=5, gold=[(1, 1), (1, 1), (3, 3)]))
    with pytest.raises(StateError, match="still left"):
        env.unwrapped.set_state(make_state(size=5, pos=(1, 1), gold=[(1, 1), (2, 2), (3, 3)]))
    ok = make_state(
        size=5, pos=(1, 1), gold=[(1, 1), (2, 2), (3, 3)], gold_left=[False, True, True]
    )
    env.unwrapped.set_state(ok)
    assert env.unwrapped.get_state()["gold_left"] == [False, True, True]
