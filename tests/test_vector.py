"""The native vector env: identical to N single envs, Gymnasium's VectorEnv API, clear errors."""

from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers.vector import RecordEpisodeStatistics
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import penguin_env
from penguin_env import InvalidAction
from penguin_env.vector import VECTOR_ENV_CLASSES, PenguinVectorEnv
from penguin_env.wrappers import TokenizeInstruction

ENV_IDS = penguin_env.ENV_IDS
MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)
# Small rooms and short episodes, so a few hundred steps cross many autoresets and truncations.
KWARGS: tuple[dict[str, Any], ...] = (
    {"size": 5, "max_steps": 9},
    {"size": 4, "image_size": 30, "max_steps": 6, "step_penalty": 0.1},
    {"size": 6, "view": "ego", "max_steps": 12},
    {"size": 5, "hint": True, "num_levels": 3, "start_level": 7, "max_steps": 10},
    {"size": 5, "paraphrases": "test", "max_steps": 8},
)


def _kwargs_for(env_id: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    if env_id == "Penguin-Bare-v0":
        return {**kwargs, "radius": 2}
    return kwargs


def make_pair(
    env_id: str, n: int, mode: AutoresetMode, **kwargs: Any
) -> tuple[PenguinVectorEnv, SyncVectorEnv]:
    vec = PenguinVectorEnv(env_id, n, autoreset_mode=mode, **kwargs)
    sync = SyncVectorEnv(
        [lambda: TokenizeInstruction(gym.make(env_id, **kwargs)) for _ in range(n)],
        autoreset_mode=mode,
    )
    return vec, sync


def assert_equal_values(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for key in a:
            assert_equal_values(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal_values(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert isinstance(b, np.ndarray) and b.dtype == object and a.shape == b.shape, where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equal_values(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), f"{where}: {type(b)} is not an array"
        assert a.dtype == b.dtype, f"{where}: dtype {a.dtype} != {b.dtype}"
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def assert_same_step(got: tuple, want: tuple, where: str) -> None:
    """Compare a ``reset`` (obs, infos) or ``step`` (obs, reward, terminated, truncated, infos)."""
    names = (
        ("obs", "infos") if len(got) == 2 else ("obs", "reward", "terminated", "truncated", "infos")
    )
    for name, x, y in zip(names, got, want, strict=True):
        assert_equal_values(x, y, f"{where} {name}")


def run_both(
    vec: PenguinVectorEnv, sync: SyncVectorEnv, seed: int | list, actions: np.ndarray
) -> dict[str, int]:
    """Step both envs through ``actions`` and fail at the first difference; count episode ends."""
    assert_same_step(vec.reset(seed=seed), sync.reset(seed=seed), "reset")
    ends = {"terminated": 0, "truncated": 0}
    for t, a in enumerate(actions):
        got, want = vec.step(a), sync.step(a)
        assert_same_step(got, want, f"step {t}")
        ends["terminated"] += int(got[2].sum())
        ends["truncated"] += int(got[3].sum())
    return ends


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_identical_to_single_envs(env_id: str, mode: AutoresetMode) -> None:
    kwargs = _kwargs_for(env_id, KWARGS[0])
    vec, sync = make_pair(env_id, 4, mode, **kwargs)
    actions = np.random.default_rng(1).integers(0, 5, size=(250, 4))
    ends = run_both(vec, sync, 123, actions)
    assert ends["terminated"] > 0 and ends["truncated"] > 0, ends


@pytest.mark.parametrize(
    "kwargs", KWARGS[1:], ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items())
)
def test_identical_with_kwargs(kwargs: dict[str, Any]) -> None:
    for i, env_id in enumerate(ENV_IDS):
        mode = MODES[i % 2]
        vec, sync = make_pair(env_id, 3, mode, **_kwargs_for(env_id, kwargs))
        actions = np.random.default_rng(i).integers(0, 5, size=(60, 3))
        run_both(vec, sync, [5, 900 + i, 2**40], actions)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    env_id=st.sampled_from(ENV_IDS),
    mode=st.sampled_from(MODES),
    kwargs=st.sampled_from(KWARGS),
    n=st.integers(1, 5),
    seed=st.integers(0, 2**32),
    actions=st.data(),
)
def test_identical_hypothesis(
    env_id: str, mode: AutoresetMode, kwargs: dict, n: int, seed: int, actions: Any
) -> None:
    steps = actions.draw(
        st.lists(st.lists(st.integers(0, 4), min_size=n, max_size=n), min_size=1, max_size=80)
    )
    vec, sync = make_pair(env_id, n, mode, **_kwargs_for(env_id, kwargs))
    run_both(vec, sync, seed, np.array(steps, dtype=np.int64))


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_identical_long(env_id: str, mode: AutoresetMode) -> None:
    for k, kwargs in enumerate(KWARGS):
        vec, sync = make_pair(env_id, 8, mode, **_kwargs_for(env_id, kwargs))
        actions = np.random.default_rng(k).integers(0, 5, size=(400, 8))
        run_both(vec, sync, 1000 * k, actions)


def test_reset_seeds_reproduce_and_unseeded_reset_continues() -> None:
    vec, sync = make_pair("Penguin-Lang-v0", 3, AutoresetMode.NEXT_STEP, size=5)
    first = vec.reset(seed=[4, None, 9])
    again = PenguinVectorEnv("Penguin-Lang-v0", 3, size=5).reset(seed=[4, 8, 9])
    np.testing.assert_array_equal(first[0]["image"][[0, 2]], again[0]["image"][[0, 2]])
    # reset() without seeds moves every game on to its next episode, as single envs do.
    assert_same_step(vec.reset(seed=7), sync.reset(seed=7), "seeded")
    for _ in range(3):
        assert_same_step(vec.reset(), sync.reset(), "next episode")
    # An int seed is the list [s, s + 1, ...].
    a = PenguinVectorEnv("Penguin-Walls-v0", 3).reset(seed=11)
    b = PenguinVectorEnv("Penguin-Walls-v0", 3).reset(seed=[11, 12, 13])
    assert_equal_values(a, b, "int seed vs list")


def test_reset_options_level_and_mask() -> None:
    vec, sync = make_pair("Penguin-Gold-v0", 3, AutoresetMode.NEXT_STEP, size=5)
    assert_same_step(
        vec.reset(seed=1, options={"level": 42}), sync.reset(seed=1, options={"level": 42}), "level"
    )
    obs, infos = vec.reset(options={"level": [1, 2, 3]})
    assert infos["level"].tolist() == [1, 2, 3]
    before = obs["image"].copy()
    obs, infos = vec.reset(
        seed=[50, 51, 52], options={"reset_mask": np.array([False, True, False])}
    )
    np.testing.assert_array_equal(obs["image"][[0, 2]], before[[0, 2]])
    solo = PenguinVectorEnv("Penguin-Gold-v0", 1, size=5).reset(seed=51)
    np.testing.assert_array_equal(obs["image"][1], solo[0]["image"][0])
    with pytest.raises(ValueError, match="reset_mask"):
        vec.reset(options={"reset_mask": np.zeros(3, dtype=bool)})
    with pytest.raises(ValueError, match="level"):
        vec.reset(options={"level": [1, 2]})
    with pytest.raises(ValueError, match="unknown reset option"):
        vec.reset(options={"difficulty": 3})
    with pytest.raises(ValueError, match="num_envs=3"):
        vec.reset(seed=[1, 2])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_and_api(env_id: str) -> None:
    n = 3
    vec = PenguinVectorEnv(env_id, n, size=6, render_mode="rgb_array")
    s = vec.config.image_size
    assert vec.observation_space["image"].shape == (n, s, s, 3)
    assert vec.observation_space["image"].dtype == np.uint8
    assert vec.observation_space["text"].shape == (n, vec.game.tokenizer.max_length)
    assert vec.observation_space["text"].dtype == np.int64
    assert vec.single_action_space == gym.spaces.Discrete(5)
    assert vec.action_space == gym.spaces.MultiDiscrete([5] * n)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    single = gym.make(env_id, size=6)
    assert vec.single_observation_space["image"] == single.observation_space["image"]
    assert (
        vec.single_observation_space["text"]
        == TokenizeInstruction(single).observation_space["text"]
    )
    vec.action_space.seed(0)
    obs, infos = vec.reset(seed=0)
    assert obs in vec.observation_space
    for _ in range(30):
        obs, reward, terminated, truncated, infos = vec.step(vec.action_space.sample())
        assert obs in vec.observation_space
        assert reward.shape == (n,) and reward.dtype == np.float64
        assert terminated.dtype == np.bool_ and truncated.dtype == np.bool_
        for key in ("task", "instruction", "success", "gold_left", "level"):
            assert infos[key].shape == (n,) and infos[f"_{key}"].all()
        for i, text in enumerate(infos["instruction"]):
            assert vec.game.tokenizer.decode(obs["text"][i]) == text
    frames = vec.render()
    assert isinstance(frames, tuple) and len(frames) == n and frames[0].shape == (s, s, 3)
    vec.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_vector_entry_point(env_id: str) -> None:
    vec = gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point", size=6)
    assert isinstance(vec.unwrapped, PenguinVectorEnv)
    assert type(vec.unwrapped) is VECTOR_ENV_CLASSES[env_id]
    assert vec.unwrapped.config.size == 6 and vec.num_envs == 4
    obs, _ = vec.reset(seed=0)
    assert obs["image"].shape == (4, 64, 64, 3)
    vec.step(np.zeros(4, dtype=np.int64))
    same = gym.make_vec(
        env_id,
        num_envs=2,
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.SAME_STEP,
        copy=False,
    )
    assert (
        same.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP and same.unwrapped.copy is False
    )


def test_copy_false_returns_buffers_that_the_next_step_overwrites() -> None:
    vec = PenguinVectorEnv("Penguin-Gold-v0", 4, copy=False)
    obs, _ = vec.reset(seed=0)
    assert np.shares_memory(obs["image"], vec.game.renderer.frames)
    assert np.shares_memory(obs["text"], vec.game.tokens)
    kept = obs["image"].copy()
    obs2, *_ = vec.step(np.full(4, 1))  # turning redraws every penguin
    assert obs2["image"] is obs["image"] or np.shares_memory(obs2["image"], obs["image"])
    assert not np.array_equal(obs["image"], kept)  # the old observation changed under our feet
    copied = PenguinVectorEnv("Penguin-Gold-v0", 4)
    obs, _ = copied.reset(seed=0)
    assert not np.shares_memory(obs["image"], copied.game.renderer.frames)
    kept = obs["image"].copy()
    copied.step(np.full(4, 1))
    np.testing.assert_array_equal(obs["image"], kept)


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (np.zeros(3, dtype=np.int64), r"shape \(4,\)"),
        (np.zeros((4, 1), dtype=np.int64), r"shape \(4,\)"),
        (3, r"shape \(4,\)"),
        (np.array([0, 1, 5, 2]), "game 2 got 5"),
        (np.array([0, -1, 2, 2]), "game 1 got -1"),
        (np.array([0, 1, 2, 7], dtype=np.uint8), "game 3 got 7"),
        (np.array([0.0, 1.5, 2.0, 3.0]), "whole numbers"),
        (np.array([True, False, True, False]), "integers"),
        (np.array(["a", "b", "c", "d"]), "integers"),
    ],
)
def test_invalid_actions_raise_clear_errors(actions: Any, match: str) -> None:
    vec = PenguinVectorEnv("Penguin-Bare-v0", 4)
    vec.reset(seed=0)
    with pytest.raises(InvalidAction, match=match):
        vec.step(actions)


def test_valid_action_types_are_accepted() -> None:
    vec = PenguinVectorEnv("Penguin-Bare-v0", 4)
    ref = PenguinVectorEnv("Penguin-Bare-v0", 4)
    vec.reset(seed=0)
    ref.reset(seed=0)
    for actions in (
        [0, 1, 2, 3],
        np.array([2, 2, 1, 0], dtype=np.int32),
        np.array([2.0, 3.0, 0.0, 1.0]),
    ):
        got, want = vec.step(actions), ref.step(np.asarray(actions, dtype=np.int64))
        assert_same_step(got, want, str(actions))


def test_constructor_errors() -> None:
    with pytest.raises(ResetNeeded):
        PenguinVectorEnv("Penguin-Gold-v0", 2).step(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="autoreset_mode"):
        PenguinVectorEnv("Penguin-Gold-v0", 2, autoreset_mode=AutoresetMode.DISABLED)
    with pytest.raises(ValueError, match="num_envs"):
        PenguinVectorEnv("Penguin-Gold-v0", 0)
    with pytest.raises(ValueError, match="env_id"):
        PenguinVectorEnv("Penguin-Nope-v0", 2)
    with pytest.raises(TypeError, match="unknown keyword"):
        PenguinVectorEnv("Penguin-Gold-v0", 2, colour="red")
    with pytest.raises(ValueError, match="size"):
        PenguinVectorEnv("Penguin-Gold-v0", 2, size=1)
    assert (
        PenguinVectorEnv("Penguin-Gold-v0", 2, autoreset_mode="same_step").autoreset_mode
        == AutoresetMode.SAME_STEP
    )


@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_record_episode_statistics(mode: AutoresetMode) -> None:
    vec, sync = make_pair("Penguin-Gold-v0", 3, mode, size=4, max_steps=5)
    vec, sync = RecordEpisodeStatistics(vec), RecordEpisodeStatistics(sync)
    vec.reset(seed=3)
    sync.reset(seed=3)
    episodes = 0
    for a in np.random.default_rng(0).integers(0, 5, size=(40, 3)):
        *_, got = vec.step(a)
        *_, want = sync.step(a)
        assert ("episode" in got) == ("episode" in want)
        if "episode" in got:
            episodes += int(got["_episode"].sum())
            np.testing.assert_array_equal(got["_episode"], want["_episode"])
            np.testing.assert_array_equal(got["episode"]["r"], want["episode"]["r"])
            np.testing.assert_array_equal(got["episode"]["l"], want["episode"]["l"])
    assert episodes > 5
    assert list(vec.return_queue) == list(sync.return_queue)


def test_same_step_final_observation_is_the_last_frame() -> None:
    vec = PenguinVectorEnv(
        "Penguin-Gold-v0", 2, size=4, max_steps=3, autoreset_mode=AutoresetMode.SAME_STEP
    )
    single = gym.make("Penguin-Gold-v0", size=4, max_steps=3)
    vec.reset(seed=0)
    single.reset(seed=0)
    for a in (1, 1, 0):
        obs, _, _, truncated, infos = vec.step(np.array([a, a]))
        last, *_ = single.step(a)
    assert truncated.all() and infos["_final_obs"].all() and infos["_final_info"].all()
    np.testing.assert_array_equal(infos["final_obs"][0]["image"], last["image"])
    assert infos["final_info"]["_success"].all() and not infos["final_info"]["success"].any()
    assert not np.array_equal(obs["image"][0], last["image"])  # already the next episode
    assert (vec.game.state.steps == 0).all()


@pytest.mark.parametrize("env_id", ["Penguin-Gold-v0", "Penguin-Walls-v0"])
def test_episodes_play_their_levels_and_frames_match_a_fresh_render(env_id: str) -> None:
    """Prefetched levels and incremental frames are exactly what a from-scratch run gives."""
    from dataclasses import fields

    from penguin_env import levels
    from penguin_env.render import BatchRenderer

    n, seed = 5, 40
    vec = PenguinVectorEnv(env_id, n, size=5, max_steps=7, copy=False)
    cfg = vec.config
    obs, infos = vec.reset(seed=seed)
    episode = np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(0)
    for _ in range(120):
        started = vec._autoreset.copy()
        obs, _, _, _, infos = vec.step(rng.integers(0, 5, n))
        episode += started
        want = levels.episode_levels(
            np.arange(seed, seed + n), episode, cfg.num_levels, cfg.start_level
        )
        np.testing.assert_array_equal(infos["level"], want)
        for i in np.flatnonzero(started):
            fresh = levels.generate(want[i : i + 1], vec.game.spec)
            for f in fields(fresh):
                np.testing.assert_array_equal(
                    getattr(vec.game.state, f.name)[i], getattr(fresh, f.name)[0]
                )
        scratch = BatchRenderer(n, cfg.size, cfg.image_size)
        scratch.render_full(vec.game.state)
        np.testing.assert_array_equal(obs["image"], scratch.frames)
    assert episode.min() >= 3


def test_pickled_vector_env_continues_exactly_and_leaves_the_batched_spaces_out() -> None:
    env = PenguinVectorEnv("Penguin-Gold-v0", num_envs=64)
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    env.step(rng.integers(0, 5, 64))
    blob = pickle.dumps(env)
    clone = pickle.loads(blob)
    # The (64, 64, 64, 3) low and high arrays of the batched image space are 1.5 MB each.
    low_high = 2 * env.observation_space["image"].low.nbytes
    assert len(pickle.dumps(env.observation_space)) > low_high > len(blob) - len(pickle.dumps(env.game))
    assert clone.observation_space == env.observation_space and clone.action_space == env.action_space
    for _ in range(20):
        actions = rng.integers(0, 5, 64)
        a, b = env.step(actions), clone.step(actions)
        for x, y in zip(a, b, strict=True):
            if isinstance(x, dict):
                assert x.keys() == y.keys()
                for k in x:
                    np.testing.assert_array_equal(x[k], y[k])
            else:
                np.testing.assert_array_equal(x, y)
