"""Rendering: sprites, pixel-exact placement, incremental updates, ego view, hint, colours."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from penguin_states import make_state

import penguin_env
from penguin_env.render import (
    COLORS,
    FLOOR,
    GOLD,
    NUM_CODES,
    PENGUIN,
    PENGUIN_ON_GOLD,
    VOID,
    WALL,
    sprites,
)


@pytest.mark.parametrize("cell", range(4, 41))
def test_sprites_pairwise_distinct(cell: int) -> None:
    table = sprites(cell)
    assert table.shape == (NUM_CODES, cell, cell, 3) and table.dtype == np.uint8
    flat = table.reshape(NUM_CODES, -1)
    same = (flat[:, None, :] == flat[None, :, :]).all(axis=2)
    assert (same == np.eye(NUM_CODES, dtype=bool)).all()
    assert not table.flags.writeable


def test_sprite_too_small() -> None:
    with pytest.raises(ValueError, match="cell size"):
        sprites(3)


def _has(tile: np.ndarray, colour: str) -> bool:
    return bool((tile == np.array(COLORS[colour], np.uint8)).all(axis=-1).any())


@pytest.mark.parametrize("cell", [6, 22])
def test_sprite_colours(cell: int) -> None:
    table = sprites(cell)
    assert (table[FLOOR][cell // 2, cell // 2] == COLORS["floor"]).all()
    assert (table[WALL][cell // 2, cell // 2] == COLORS["wall"]).all()
    assert (table[GOLD][cell // 2, cell // 2] == COLORS["gold"]).all()
    assert (table[VOID] == 0).all()
    for code in range(PENGUIN, NUM_CODES):
        for colour in ("body", "belly", "beak"):
            assert _has(table[code], colour), (code, colour)
    for code in range(PENGUIN_ON_GOLD, NUM_CODES):
        assert _has(table[code], "gold")


@pytest.mark.parametrize("cell", [6, 8, 16, 22, 32])
def test_beak_points_along_the_heading(cell: int) -> None:
    table = sprites(cell)
    centre = (cell - 1) / 2
    for h in range(8):
        for base in (PENGUIN, PENGUIN_ON_GOLD):
            ys, xs = np.nonzero((table[base + h] == COLORS["beak"]).all(axis=-1))
            angle = np.degrees(np.arctan2(xs.mean() - centre, -(ys.mean() - centre))) % 360
            diff = min(abs(angle - 45 * h), 360 - abs(angle - 45 * h))
            assert diff < 10, (cell, h, angle)


def _expected_codes(st: dict) -> np.ndarray:
    """Cell codes worked out cell by cell from a state dict (outer ring included)."""
    n = st["size"]
    codes = np.full((n + 2, n + 2), WALL)
    for y, row in enumerate(st["walls"]):
        for x, ch in enumerate(row):
            codes[y + 1, x + 1] = WALL if ch == "#" else FLOOR
    for (gx, gy), left in zip(st["gold"], st["gold_left"], strict=True):
        if left:
            codes[gy + 1, gx + 1] = GOLD
    px, py = st["pos"]
    on_gold = codes[py + 1, px + 1] == GOLD
    codes[py + 1, px + 1] = (PENGUIN_ON_GOLD if on_gold else PENGUIN) + st["heading"]
    return codes


def _assert_pixel_exact(image: np.ndarray, st: dict) -> None:
    n = st["size"]
    s = image.shape[0]
    cell = s // (n + 2)
    pad = (s - cell * (n + 2)) // 2
    table = sprites(cell)
    codes = _expected_codes(st)
    for r in range(n + 2):
        for c in range(n + 2):
            tile = image[
                pad + r * cell : pad + (r + 1) * cell, pad + c * cell : pad + (c + 1) * cell
            ]
            assert (tile == table[codes[r, c]]).all(), (r, c)
    inner = np.zeros((s, s), bool)
    inner[pad : pad + cell * (n + 2), pad : pad + cell * (n + 2)] = True
    assert (image[~inner] == 0).all()


@pytest.mark.parametrize("image_size", [64, 224, 100])
@pytest.mark.parametrize("env_id", penguin_env.ENV_IDS)
def test_pixel_exact_along_trajectories(env_id: str, image_size: int) -> None:
    env = gym.make(env_id, image_size=image_size)
    rng = np.random.default_rng(image_size)
    obs, _ = env.reset(seed=3)
    for _ in range(60):
        _assert_pixel_exact(obs["image"], env.unwrapped.get_state())
        obs, _, term, trunc, _ = env.step(int(rng.choice([0, 1, 2, 2, 3])))
        if term or trunc:
            obs, _ = env.reset()


@pytest.mark.parametrize("env_id", penguin_env.ENV_IDS)
def test_incremental_frames_equal_full_redraws(env_id: str) -> None:
    env = gym.make(env_id, size=6)
    fresh = gym.make(env_id, size=6)
    fresh.reset(seed=0)
    rng = np.random.default_rng(0)
    env.reset(seed=5)
    for _ in range(150):
        obs, _, term, trunc, _ = env.step(int(rng.integers(0, 4)))
        fresh.unwrapped.set_state(env.unwrapped.get_state())  # set_state redraws every cell
        np.testing.assert_array_equal(obs["image"], fresh.unwrapped._observation()["image"])
        if term or trunc:
            env.reset()


def test_landmark_redrawn_after_walking_off() -> None:
    env = gym.make("Penguin-Lang-v0", size=5)
    env.reset(seed=0)
    env.unwrapped.set_state(make_state(size=5, pos=(1, 2), heading=2, gold=[(2, 2)], task="corner"))
    for action in (2, 2, 3, 3, 1):
        obs, *_ = env.step(action)
        _assert_pixel_exact(obs["image"], env.unwrapped.get_state())


def test_observation_is_a_copy() -> None:
    env = gym.make("Penguin-Gold-v0")
    obs, _ = env.reset(seed=0)
    before = obs["image"].copy()
    env.step(2)
    env.step(1)
    np.testing.assert_array_equal(obs["image"], before)


def _ego_env(**state):
    env = gym.make("Penguin-Lang-v0", size=6, view="ego", image_size=98)  # 7 cells of 14 px
    env.reset(seed=0)
    env.unwrapped.set_state(make_state(size=6, **state))
    return env


def _ego_codes(env) -> np.ndarray:
    image = env.unwrapped._observation()["image"]
    table = sprites(14).reshape(NUM_CODES, -1)
    tiles = image.reshape(7, 14, 7, 14, 3).transpose(0, 2, 1, 3, 4).reshape(49, -1)
    match = (tiles[:, None, :] == table[None]).all(axis=2)
    assert match.sum(axis=1).tolist() == [1] * 49  # every cell is exactly one sprite
    return match.argmax(axis=1).reshape(7, 7)


@pytest.mark.parametrize("heading,gold_cell", [(0, (3, 2)), (2, (5, 3)), (4, (3, 4)), (6, (1, 3))])
def test_ego_view_rotates_heading_up(heading: int, gold_cell: tuple[int, int]) -> None:
    # Gold one or two cells straight ahead along the heading: it shows straight above the penguin.
    env = _ego_env(pos=(3, 3), heading=heading, gold=[gold_cell], task="face")
    codes = _ego_codes(env)
    assert codes[3, 3] == PENGUIN  # centre cell, facing up
    ahead = max(abs(gold_cell[0] - 3), abs(gold_cell[1] - 3))
    assert codes[3 - ahead, 3] == GOLD


def test_ego_view_diagonal_and_void() -> None:
    env = _ego_env(pos=(0, 0), heading=1, gold=[(1, 0)], task="face")
    codes = _ego_codes(env)
    assert codes[3, 3] == PENGUIN + 1  # diagonal headings point up-right
    assert codes[3, 4] == GOLD  # no rotation for north-east: east of the penguin is to the right
    assert (codes == VOID).any()  # outside the room the window is black
    env.step(1)  # heading east: the view turns a quarter counter-clockwise
    codes = _ego_codes(env)
    assert codes[3, 3] == PENGUIN and codes[2, 3] == GOLD


def test_hint_line() -> None:
    hint_colour = np.array(COLORS["hint"], np.uint8)
    env = gym.make("Penguin-Gold-v0", size=5, hint=True)
    env.reset(seed=0)
    env.unwrapped.set_state(
        make_state(size=5, pos=(0, 2), heading=2, gold=[(1, 2), (4, 2), (4, 4)])
    )
    image = env.unwrapped._observation()["image"]
    blue = (image == hint_colour).all(axis=-1)
    ys, xs = np.nonzero(blue)
    cell, pad = 64 // 7, (64 - 7 * (64 // 7)) // 2
    # Nearest gold is (1, 2): the line stays on row 2 between the penguin and that gold.
    assert blue.any() and set(((ys - pad) // cell).tolist()) == {3}
    assert set(((xs - pad) // cell).tolist()) <= {1, 2}
    plain = gym.make("Penguin-Gold-v0", size=5)
    plain.reset(seed=0)
    plain.unwrapped.set_state(env.unwrapped.get_state())
    other = plain.unwrapped._observation()["image"]
    assert not (other == hint_colour).all(axis=-1).any()
    assert ((image != other).any(axis=-1) == blue).all()  # only the line differs
    # The line follows the nearest piece still left.
    env.step(2)  # collect (1, 2); nearest is now (4, 2)
    image = env.unwrapped._observation()["image"]
    ys, xs = np.nonzero((image == hint_colour).all(axis=-1))
    assert set(((ys - pad) // cell).tolist()) == {3} and set(((xs - pad) // cell).tolist()) == {
        2,
        3,
        4,
        5,
    }
    # With no gold left there is no line.
    env.unwrapped.set_state(
        make_state(size=5, pos=(0, 2), gold=[(1, 2), (4, 2), (4, 4)], gold_left=[False] * 3)
    )
    assert not (env.unwrapped._observation()["image"] == hint_colour).all(axis=-1).any()
