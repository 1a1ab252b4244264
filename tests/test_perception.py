"""Perception reads the true state back from clean rendered images."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from penguin_states import make_state

import penguin_env  # noqa: F401  (registers the ids)
from penguin_env.perception import perceive
from penguin_env.render import PENGUIN_ON_GOLD, cell_codes


def _expected(env: gym.Env) -> dict:
    st = env.unwrapped.get_state()
    left = [g for g, k in zip(st["gold"], st["gold_left"], strict=True) if k]
    return {
        "walls": st["walls"],
        "pos": st["pos"],
        "heading": st["heading"],
        "gold": sorted(left, key=lambda g: (g[1], g[0])),
        "on_gold": st["pos"] in left,
    }


def _check(env: gym.Env, image: np.ndarray) -> None:
    got = perceive(image, env.unwrapped.config.size)
    want = _expected(env)
    for key, value in want.items():
        assert got[key] == value, key


@pytest.mark.parametrize("image_size", [64, 224])
@pytest.mark.parametrize("env_id", penguin_env.ENV_IDS)
def test_perception_recovers_random_states(env_id: str, image_size: int) -> None:
    env = gym.make(env_id, image_size=image_size)
    rng = np.random.default_rng(image_size)
    obs, _ = env.reset(seed=int(rng.integers(1000)))
    checked = 0
    for _ in range(150):
        _check(env, obs["image"])
        checked += 1
        action = int(rng.choice([0, 1, 2, 2, 2, 3]))  # no STOP: keep episodes long
        obs, _, term, trunc, _ = env.step(action)
        if term or trunc:
            obs, _ = env.reset()
    assert checked == 150


@pytest.mark.parametrize("image_size", [64, 224])
def test_perception_penguin_on_gold_landmark(image_size: int) -> None:
    env = gym.make("Penguin-Lang-v0", size=6, image_size=image_size)
    env.reset(seed=0)
    for task in ("face", "face_away", "corner"):
        for heading in range(8):
            env.unwrapped.set_state(
                make_state(size=6, pos=(2, 3), heading=heading, gold=[(2, 3)], task=task)
            )
            image = env.unwrapped._observation()["image"]
            got = perceive(image, 6)
            assert got["on_gold"] and got["pos"] == [2, 3] and got["heading"] == heading
            assert got["gold"] == [[2, 3]]
    # Walking off the landmark leaves the gold in place (it is not collected).
    env.unwrapped.set_state(make_state(size=6, pos=(2, 3), heading=2, gold=[(2, 3)], task="face"))
    obs, *_ = env.step(2)
    got = perceive(obs["image"], 6)
    assert got["pos"] == [3, 3] and not got["on_gold"] and got["gold"] == [[2, 3]]
    codes = cell_codes(env.unwrapped.game.state)[0]
    assert (codes < PENGUIN_ON_GOLD).all()


@pytest.mark.parametrize(
    "size,image_size", [(3, 20), (5, 64), (12, 64), (12, 224), (32, 136), (4, 1000)]
)
def test_perception_any_supported_size(size: int, image_size: int) -> None:
    env = gym.make("Penguin-Walls-v0", size=size, image_size=image_size)
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        _check(env, obs["image"])


def test_perception_rejects_bad_images() -> None:
    env = gym.make("Penguin-Gold-v0")
    obs, _ = env.reset(seed=1)
    image = obs["image"]
    with pytest.raises(ValueError, match="shape"):
        perceive(image[:, :, :2], 8)
    with pytest.raises(ValueError, match="shape"):
        perceive(image[:, :60], 8)
    with pytest.raises(ValueError, match="uint8"):
        perceive(image.astype(np.float32), 8)
    noisy = image.copy()
    cell, pad = 64 // 10, (64 - 60) // 2
    noisy[pad + 3 * cell + 1, pad + 2 * cell + 2, 0] ^= 1  # one pixel in cell (row 3, column 2)
    with pytest.raises(ValueError, match=r"row 3, column 2"):
        perceive(noisy, 8)
    with pytest.raises(ValueError, match="clean"):
        perceive(image, 7)  # wrong room size
    with pytest.raises(ValueError, match="size"):
        perceive(image, 0)
    hinted = gym.make("Penguin-Gold-v0", hint=True).reset(seed=1)[0]["image"]
    with pytest.raises(ValueError, match="matches no sprite"):
        perceive(hinted, 8)
    ego = gym.make("Penguin-Gold-v0", view="ego", image_size=90).reset(seed=1)[0]["image"]
    with pytest.raises(ValueError, match="clean"):
        perceive(ego, 8)
