"""Level generation: every level solvable, level ids restricted, radius respected."""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
import pytest

import penguin_env
from penguin_env import levels
from penguin_env.config import VARIANTS, make_config


def _spec(env_id: str, **kwargs):
    return make_config(env_id, kwargs).level_spec(VARIANTS[env_id])


def _reachable(walls: np.ndarray, start: tuple[int, int]) -> set[tuple[int, int]]:
    """Interior cells reachable from ``start`` under the game's move rule: one step in any of
    the 8 directions, blocked only when the target cell is a wall (``walls`` includes the ring)."""
    size = walls.shape[0] - 2
    seen = {start}
    todo = deque([start])
    while todo:
        x, y = todo.popleft()
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                nx, ny = x + dx, y + dy
                if (
                    0 <= nx < size
                    and 0 <= ny < size
                    and not walls[ny + 1, nx + 1]
                    and (nx, ny) not in seen
                ):
                    seen.add((nx, ny))
                    todo.append((nx, ny))
    return seen


def _check_solvable(state, corners_needed: bool) -> None:
    size = state.size
    for i in range(state.num):
        walls = state.walls[i]
        assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
        pos = (int(state.pos[i, 0]), int(state.pos[i, 1]))
        assert not walls[pos[1] + 1, pos[0] + 1]
        region = _reachable(walls, pos)
        floor = {(x, y) for y in range(size) for x in range(size) if not walls[y + 1, x + 1]}
        assert region == floor, f"level {int(state.level[i])}: unreachable floor cells"
        gold = [(int(x), int(y)) for x, y in state.gold[i]]
        assert len(set(gold)) == len(gold) and pos not in gold
        assert all(g in region for g in gold), f"level {int(state.level[i])}: unreachable gold"
        if corners_needed:
            for c in [(0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)]:
                assert c in region, f"level {int(state.level[i])}: corner {c} unreachable"


@pytest.mark.parametrize("size", [3, 5, 8, 12])
@pytest.mark.parametrize("env_id", penguin_env.ENV_IDS)
def test_every_level_solvable(env_id: str, size: int) -> None:
    count = 3000 if size == 8 else 600
    rng = np.random.default_rng(size)
    ids = np.concatenate([np.arange(count // 2), rng.integers(0, levels.MAX_LEVEL_ID, count // 2)])
    state = levels.generate(ids, _spec(env_id, size=size, image_size=max(64, 4 * (size + 2))))
    _check_solvable(state, corners_needed=env_id == "Penguin-Lang-v0")
    assert state.gold.shape[1] == VARIANTS[env_id].num_gold


@pytest.mark.slow
@pytest.mark.parametrize("env_id", penguin_env.ENV_IDS)
def test_every_level_solvable_many(env_id: str) -> None:
    for size in (3, 4, 6, 9, 16, 24, 32):
        state = levels.generate(np.arange(5000), _spec(env_id, size=size, image_size=4 * 34))
        _check_solvable(state, corners_needed=env_id == "Penguin-Lang-v0")


@pytest.mark.parametrize("env_id", penguin_env.ENV_IDS)
def test_env_plays_generated_levels(env_id: str) -> None:
    env = gym.make(env_id)
    for seed in range(200):
        env.reset(seed=seed)
        st = env.unwrapped.game.state
        _check_solvable(st, corners_needed=env_id == "Penguin-Lang-v0")
        again = levels.generate(st.level, _spec(env_id))
        np.testing.assert_array_equal(again.walls, st.walls)
        np.testing.assert_array_equal(again.gold, st.gold)


def test_walls_variant_has_walls_and_lang_mixes() -> None:
    walls = levels.generate(np.arange(500), _spec("Penguin-Walls-v0")).walls[:, 1:-1, 1:-1]
    assert (walls.reshape(500, -1).any(axis=1)).mean() > 0.9
    lang = levels.generate(np.arange(500), _spec("Penguin-Lang-v0"))
    has = lang.walls[:, 1:-1, 1:-1].reshape(500, -1).any(axis=1)
    assert 0.2 < has.mean() < 0.8
    assert set(np.unique(lang.task).tolist()) == {0, 1, 2, 3}
    for env_id in ("Penguin-Bare-v0", "Penguin-Gold-v0"):
        assert not levels.generate(np.arange(200), _spec(env_id)).walls[:, 1:-1, 1:-1].any()


def test_levels_are_pure_functions_of_their_id() -> None:
    spec = _spec("Penguin-Walls-v0")
    a = levels.generate(np.array([7, 123, 99999]), spec)
    b = levels.generate(np.array([99999, 7]), spec)
    np.testing.assert_array_equal(a.walls[[2, 0]], b.walls)
    np.testing.assert_array_equal(a.pos[[2, 0]], b.pos)
    np.testing.assert_array_equal(a.gold[[2, 0]], b.gold)
    with pytest.raises(ValueError, match="level ids"):
        levels.generate(np.array([-1]), spec)


@pytest.mark.parametrize("num_levels,start_level", [(1, 0), (5, 100), (50, 7)])
def test_num_levels_and_start_level(num_levels: int, start_level: int) -> None:
    env = gym.make("Penguin-Gold-v0", num_levels=num_levels, start_level=start_level)
    seen = set()
    for seed in range(40):
        _, info = env.reset(seed=seed)
        seen.add(info["level"])
        for _ in range(5):
            seen.add(env.reset()[1]["level"])
    allowed = set(range(start_level, start_level + num_levels))
    assert seen <= allowed
    assert len(seen) >= min(num_levels, 40)


def test_unrestricted_levels_use_a_wide_range() -> None:
    env = gym.make("Penguin-Gold-v0", start_level=1000)
    seen = [env.reset(seed=s)[1]["level"] for s in range(100)]
    assert min(seen) >= 1000 and len(set(seen)) == 100 and max(seen) > 10**6
    with pytest.raises(ValueError, match="start_level"):
        gym.make("Penguin-Gold-v0", start_level=levels.MAX_LEVEL_ID, num_levels=5)


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_radius_respected(radius: int) -> None:
    env = gym.make("Penguin-Bare-v0", radius=radius)
    distances = []
    for seed in range(300):
        env.reset(seed=seed)
        st = env.unwrapped.get_state()
        (gx, gy), (px, py) = st["gold"][0], st["pos"]
        distances.append(max(abs(gx - px), abs(gy - py)))
    assert 1 <= min(distances) and max(distances) == radius


def test_without_radius_gold_is_anywhere() -> None:
    env = gym.make("Penguin-Bare-v0")
    far = 0
    for seed in range(200):
        env.reset(seed=seed)
        st = env.unwrapped.get_state()
        (gx, gy), (px, py) = st["gold"][0], st["pos"]
        far += max(abs(gx - px), abs(gy - py)) > 3
    assert far > 20
