"""Each rule of the game on hand-built states (``set_state``)."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
from penguin_states import make_state

import penguin_env  # noqa: F401
from penguin_env.core import Action

L, R, F, B, STOP = (int(a) for a in Action)


def _env(env_id: str = "Penguin-Lang-v0", **kwargs) -> gym.Env:
    env = gym.make(env_id, size=kwargs.pop("size", 5), **kwargs)
    env.reset(seed=0)
    return env


def _load(env: gym.Env, **state) -> None:
    env.unwrapped.set_state(make_state(size=env.unwrapped.config.size, **state))


def _sector(dx: int, dy: int) -> int:
    """Independent bearing: the heading whose direction is closest in angle to (dx, dy)."""
    angle = math.degrees(math.atan2(dx, -dy)) % 360
    return min(range(8), key=lambda h: min(abs(angle - 45 * h), 360 - abs(angle - 45 * h)))


def test_turns() -> None:
    env = _env()
    _load(env, pos=(2, 2), heading=0, task="corner")
    headings = []
    for a in (L, L, R, R, R, R, R, R, R, R, R):
        env.step(a)
        headings.append(env.unwrapped.get_state()["heading"])
    assert headings == [7, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("heading", range(8))
def test_forward_and_backward_in_every_heading(heading: int) -> None:
    dx = [0, 1, 1, 1, 0, -1, -1, -1][heading]
    dy = [-1, -1, 0, 1, 1, 1, 0, -1][heading]
    env = _env()
    _load(env, pos=(2, 2), heading=heading, task="corner", gold=[(0, 4)])
    env.step(F)
    assert env.unwrapped.get_state()["pos"] == [2 + dx, 2 + dy]
    env.step(B)
    env.step(B)
    assert env.unwrapped.get_state()["pos"] == [2 - dx, 2 - dy]


def test_walls_block_and_the_step_counts() -> None:
    env = _env()
    _load(env, pos=(2, 2), heading=2, task="corner", walls=[(3, 2)], gold=[(0, 4)])
    _, reward, term, trunc, _ = env.step(F)
    st = env.unwrapped.get_state()
    assert st["pos"] == [2, 2] and st["steps"] == 1 and reward == 0 and not term and not trunc
    # The outer wall blocks too, forward and backward.
    _load(env, pos=(0, 0), heading=0, task="corner", gold=[(0, 4)])
    env.step(F)
    env.step(R)
    env.step(R)
    env.step(R)
    env.step(R)  # heading south; backward goes north into the outer wall
    env.step(B)
    assert env.unwrapped.get_state()["pos"] == [0, 0]


def test_diagonal_rule_blocked_only_by_the_target_cell() -> None:
    env = _env()
    # Both orthogonal neighbours are walls; the diagonal target is free: the move succeeds.
    _load(env, pos=(1, 2), heading=1, task="corner", walls=[(2, 2), (1, 1)], gold=[(4, 4)])
    env.step(F)
    assert env.unwrapped.get_state()["pos"] == [2, 1]
    # Backward through the same corner gap.
    env.step(B)
    assert env.unwrapped.get_state()["pos"] == [1, 2]
    # A wall on the diagonal target blocks, even with free orthogonal neighbours.
    _load(env, pos=(1, 2), heading=1, task="corner", walls=[(2, 1)], gold=[(4, 4)])
    env.step(F)
    assert env.unwrapped.get_state()["pos"] == [1, 2]
    # Diagonal into the outer wall corner.
    _load(env, pos=(0, 0), heading=7, task="corner", gold=[(4, 4)])
    env.step(F)
    assert env.unwrapped.get_state()["pos"] == [0, 0]


BEARINGS = [  # (gold offset dx, dy) -> sector; worked out by hand
    ((0, -2), 0),
    ((2, -2), 1),
    ((1, -2), 1),
    ((2, -1), 1),
    ((2, 0), 2),
    ((2, 1), 3),
    ((1, 2), 3),
    ((0, 2), 4),
    ((-1, 2), 5),
    ((-2, 2), 5),
    ((-2, 0), 6),
    ((-2, -1), 7),
    ((-1, -2), 7),
    ((1, -1), 1),
    ((-1, 1), 5),
    ((0, -1), 0),
]


@pytest.mark.parametrize("offset,sector", BEARINGS)
def test_face_and_face_away_sectors(offset: tuple[int, int], sector: int) -> None:
    assert _sector(*offset) == sector
    env = _env()
    gold = (2 + offset[0], 2 + offset[1])
    for task, want in (("face", sector), ("face_away", (sector + 4) % 8)):
        for heading in range(8):
            _load(env, pos=(2, 2), heading=heading, gold=[gold], task=task)
            _, reward, term, trunc, info = env.step(STOP)
            assert term and not trunc
            assert info["success"] == (heading == want), (task, heading)
            assert reward == (1.0 if heading == want else 0.0)


def test_face_sector_matches_independent_bearing_everywhere() -> None:
    env = _env(size=7)
    for gx in range(7):
        for gy in range(7):
            if (gx, gy) == (3, 3):
                continue
            want = _sector(gx - 3, gy - 3)
            for heading in (want, (want + 1) % 8, (want + 7) % 8):
                _load(env, pos=(3, 3), heading=heading, gold=[(gx, gy)], task="face")
                assert env.step(STOP)[4]["success"] == (heading == want)


def test_face_on_the_gold_fails() -> None:
    env = _env()
    for task in ("face", "face_away"):
        for heading in range(8):
            _load(env, pos=(2, 2), heading=heading, gold=[(2, 2)], task=task)
            assert not env.step(STOP)[4]["success"]


@pytest.mark.parametrize("corner,cell", [(0, (0, 0)), (1, (4, 0)), (2, (0, 4)), (3, (4, 4))])
def test_corner(corner: int, cell: tuple[int, int]) -> None:
    env = _env()
    for other in [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (cell[0], 2)]:
        _load(env, pos=other, heading=3, gold=[(2, 1)], task="corner", corner=corner)
        _, reward, term, _, info = env.step(STOP)
        assert term and info["success"] == (other == cell) and reward == float(other == cell)
    corner_names = ["top left", "top right", "bottom left", "bottom right"]
    _load(env, pos=(2, 2), gold=[(2, 1)], task="corner", corner=corner)
    assert corner_names[corner] in env.unwrapped.game.instruction(0)


def test_walking_into_a_corner_then_stop() -> None:
    env = _env()
    _load(env, pos=(2, 2), heading=7, gold=[(3, 3)], task="corner", corner=0)
    assert env.step(F)[4]["success"] is False
    assert env.step(F)[2] is False
    _, reward, term, _, info = env.step(STOP)
    assert term and info["success"] and reward == 1.0


def test_stop_in_collect_is_failure() -> None:
    env = _env()
    _load(env, pos=(2, 2), gold=[(4, 4)], task="collect")
    _, reward, term, trunc, info = env.step(STOP)
    assert term and not trunc and not info["success"] and reward == 0.0 and info["gold_left"] == 1


def test_collecting_all_gold_terminates_with_success() -> None:
    env = _env("Penguin-Gold-v0")
    _load(env, pos=(0, 2), heading=2, gold=[(1, 2), (2, 2), (4, 2)], task="collect")
    rewards, infos = [], []
    for _ in range(4):
        _, reward, term, trunc, info = env.step(F)
        rewards.append(reward)
        infos.append(info)
    assert rewards == [1.0, 1.0, 0.0, 1.0]
    assert [i["gold_left"] for i in infos] == [2, 1, 1, 0]
    assert [i["success"] for i in infos] == [False, False, False, True]
    assert term and not trunc
    with pytest.raises(gym.error.ResetNeeded):
        env.step(F)


def test_collected_gold_stays_collected() -> None:
    env = _env("Penguin-Gold-v0")
    _load(env, pos=(0, 2), heading=2, gold=[(1, 2), (3, 3), (4, 4)], task="collect")
    assert env.step(F)[1] == 1.0
    assert env.step(B)[1] == 0.0
    assert env.step(F)[1] == 0.0
    assert env.unwrapped.get_state()["gold_left"] == [False, True, True]


@pytest.mark.parametrize("task", ["face", "face_away", "corner"])
def test_gold_is_a_landmark_in_non_collect_tasks(task: str) -> None:
    env = _env()
    _load(env, pos=(0, 2), heading=2, gold=[(1, 2)], task=task, corner=3)
    for _ in range(3):
        _, reward, term, trunc, info = env.step(F)
        assert reward == 0.0 and not term and not trunc
        assert info["gold_left"] == 1 and not info["success"]
    assert env.unwrapped.get_state()["gold_left"] == [True]


def test_truncation_at_max_steps() -> None:
    env = _env(max_steps=3)
    _load(env, pos=(2, 2), gold=[(4, 4)], task="collect")
    outs = [env.step(L) for _ in range(3)]
    assert [o[3] for o in outs] == [False, False, True]
    assert not any(o[2] for o in outs)
    assert outs[-1][4]["success"] is False
    # A state restored near the limit truncates on time too.
    _load(env, pos=(2, 2), gold=[(4, 4)], task="collect", steps=2)
    assert env.step(L)[3] is True
    # Success on the last allowed step is termination, not truncation.
    _load(env, pos=(2, 2), heading=2, gold=[(3, 2)], task="collect", steps=2)
    _, reward, term, trunc, info = env.step(F)
    assert term and not trunc and info["success"] and reward == 1.0


def test_default_max_steps_scales_with_size() -> None:
    for size in (3, 8):
        env = gym.make("Penguin-Gold-v0", size=size)
        env.reset(seed=0)
        n = 0
        while True:
            n += 1
            _, _, term, trunc, _ = env.step(L)
            if term or trunc:
                break
        assert trunc and n == 4 * size * size


def test_step_penalty() -> None:
    env = _env(step_penalty=0.25)
    _load(env, pos=(0, 2), heading=2, gold=[(1, 2)], task="collect")
    _, reward, term, _, _ = env.step(L)
    assert reward == -0.25
    env.step(R)
    _, reward, term, _, info = env.step(F)
    assert reward == 0.75 and term and info["success"]
    _load(env, pos=(0, 0), heading=2, gold=[(1, 2)], task="corner", corner=0)
    assert env.step(STOP)[1] == 0.75
