"""The exact solver: optimality against independent brute force, and plans that work in the env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import penguin_env  # noqa: F401  (registers the envs)
from fake_traces import solver
from penguin_env import levels
from penguin_env.config import VARIANTS, make_config
from penguin_env.core import NUM_ACTIONS, GameState, Rules, Task, step
from penguin_env.engine import BatchGame
from penguin_env.state import to_dict

ENV_IDS = tuple(VARIANTS)
NO_LIMIT = Rules(max_steps=10**9)


def random_states(env_id: str, size: int, n: int, seed: int) -> GameState:
    """``n`` states of random levels with the penguin, heading and gold left also randomised."""
    rng = np.random.default_rng(seed)
    spec = make_config(env_id, {"size": size}).level_spec(VARIANTS[env_id])
    game = levels.generate(rng.integers(0, 2**31 - 1, size=n), spec)
    for i in range(n):
        floor = np.argwhere(~game.walls[i, 1:-1, 1:-1])  # (y, x) rows
        y, x = floor[rng.integers(len(floor))]
        game.pos[i] = (x, y)
        game.heading[i] = rng.integers(8)
        if game.task[i] == Task.COLLECT:
            left = rng.random(game.num_gold) < 0.6
            left[rng.integers(game.num_gold)] = True  # at least one piece left
            game.gold_left[i] = left
    return game


def expand(game: GameState) -> tuple[GameState, object]:
    """Every game of ``game`` followed by each of the 5 actions (rows ``5 * i + a``), via the core."""
    children = game.take(np.repeat(np.arange(game.num), NUM_ACTIONS))
    out = step(children, np.tile(np.arange(NUM_ACTIONS), game.num), NO_LIMIT)
    return children, out


def exhaustive(game: GameState, depth: int) -> tuple[np.ndarray, list[set[int]]]:
    """Iterative deepening over *all* action sequences up to ``depth`` (no pruning, no memo).

    Returns each game's shortest success length (-1 if none within ``depth``) and the set of
    first actions of the successful sequences of that length.
    """
    n = game.num
    found = np.full(n, -1)
    firsts: list[set[int]] = [set() for _ in range(n)]
    for d in range(1, depth + 1):
        # Every sequence of length d, replayed from the start state: 5**d copies of each game.
        count = NUM_ACTIONS**d
        seqs = np.arange(count)
        batch = game.take(np.repeat(np.arange(n), count))
        alive = np.ones(n * count, dtype=bool)
        success = np.zeros(n * count, dtype=bool)
        for t in range(d):
            digit = (seqs // NUM_ACTIONS ** (d - 1 - t)) % NUM_ACTIONS
            out = step(batch, np.tile(digit, n), NO_LIMIT)
            if t == d - 1:
                success = alive & out.success
            alive &= ~out.terminated
        success = success.reshape(n, count)
        for i in np.flatnonzero(success.any(axis=1) & (found < 0)):
            found[i] = d
            firsts[i] = {int(s // NUM_ACTIONS ** (d - 1)) for s in np.flatnonzero(success[i])}
    return found, firsts


def forward_bfs(game: GameState, max_depth: int = 200) -> np.ndarray:
    """Shortest success length of each game by forward breadth-first search over distinct states."""
    n = game.num
    answer = np.full(n, -1)
    frontier = game.copy()
    owner = np.arange(n)
    seen: set[tuple] = set()
    for d in range(1, max_depth + 1):
        if frontier.num == 0:
            break
        children, out = expand(frontier)
        child_owner = np.repeat(owner, NUM_ACTIONS)
        for i in np.unique(child_owner[out.success]):
            if answer[i] < 0:
                answer[i] = d
        keep = ~out.terminated & (answer[child_owner] < 0)
        rows = []
        for r in np.flatnonzero(keep):
            key = (
                int(child_owner[r]),
                *children.pos[r].tolist(),
                int(children.heading[r]),
                children.gold_left[r].tobytes(),
            )
            if key not in seen:
                seen.add(key)
                rows.append(r)
        frontier = children.take(np.array(rows, dtype=np.int64))
        owner = child_owner[rows]
    return answer


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("size", [3, 4])
def test_matches_exhaustive_search(env_id: str, size: int) -> None:
    depth = 5
    game = random_states(env_id, size, 150, seed=size * 100 + ENV_IDS.index(env_id))
    brute, firsts = exhaustive(game, depth)
    dist = solver.distances(game)
    mask = solver.optimal_action_mask(game)
    for i in range(game.num):
        if brute[i] >= 0:
            assert dist[i] == brute[i], to_dict(game, i)
            assert set(np.flatnonzero(mask[i]).tolist()) == firsts[i], to_dict(game, i)
        else:
            assert dist[i] > depth, to_dict(game, i)
    assert (brute >= 0).mean() > 0.3  # the check is not vacuous


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("size", [3, 4])
def test_matches_forward_bfs(env_id: str, size: int) -> None:
    game = random_states(env_id, size, 300, seed=7 + size * 10 + ENV_IDS.index(env_id))
    np.testing.assert_array_equal(solver.distances(game), forward_bfs(game))


def test_collect_order_is_optimal_not_greedy() -> None:
    # All on row 2, penguin at x=2 facing east, gold at x=0, 3 and 7. Nearest-first goes
    # to x=3, back to x=0, then to x=7: 1 + 3 + 7 = 11 moves. West first: 2 + 7 = 9.
    state = {
        "version": 1,
        "size": 8,
        "walls": ["........"] * 8,
        "pos": [2, 2],
        "heading": 2,
        "gold": [[0, 2], [3, 2], [7, 2]],
        "gold_left": [True, True, True],
        "task": "collect",
        "corner": 0,
        "phrase": 0,
        "steps": 0,
        "level": 0,
    }
    assert solver.distance(state) == 9
    assert solver.best_actions(state) == {3}  # BACKWARD, not toward the nearest piece
    assert forward_bfs(penguin_env.state.from_dict(state))[0] == 9


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_best_actions_lead_one_step_closer(env_id: str) -> None:
    game = random_states(env_id, 8, 120, seed=11 + ENV_IDS.index(env_id))
    dist = solver.distances(game)
    mask = solver.optimal_action_mask(game)
    children, out = expand(game)
    child_dist = solver.distances(children)
    for i in range(game.num):
        for a in range(NUM_ACTIONS):
            r = i * NUM_ACTIONS + a
            if out.success[r]:
                good = dist[i] == 1
            elif out.terminated[r]:
                good = False
            else:
                good = child_dist[r] == dist[i] - 1
                assert child_dist[r] >= dist[i] - 1  # no action gains more than one step
            assert mask[i, a] == good, (to_dict(game, i), a)
        assert mask[i].any()


def test_best_actions_in_the_real_env() -> None:
    env = gym.make("Penguin-Lang-v0", size=5)
    for seed in range(40):
        env.reset(seed=seed)
        start = env.unwrapped.get_state()
        d = solver.distance(start)
        best = solver.best_actions(start)
        assert best and best <= set(range(NUM_ACTIONS))
        for a in range(NUM_ACTIONS):
            env.unwrapped.set_state(start)
            _, _, terminated, _, info = env.step(a)
            if a in best:
                assert (
                    info["success"]
                    if d == 1
                    else solver.distance(env.unwrapped.get_state()) == d - 1
                )
            else:
                assert not info["success"] or d != 1
                assert terminated or solver.distance(env.unwrapped.get_state()) >= d


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_expert_solves_2000_levels(env_id: str) -> None:
    """Batched: 2,000 levels of the variant played to the end by the expert in the engine."""
    n = 2000
    game = BatchGame(env_id, make_config(env_id, {}), n)
    game.reset(np.arange(n), level=np.arange(n))
    optimal = solver.distances(game.state)
    done = np.zeros(n, dtype=bool)
    success = np.zeros(n, dtype=bool)
    length = np.zeros(n, dtype=np.int64)
    for _ in range(int(optimal.max())):
        out = game.step(solver.expert_actions(game.state))
        length += ~done
        success |= out.success & ~done
        done |= out.terminated | out.truncated
        if done.all():
            break
    assert success.all(), f"{(~success).sum()} of {n} levels not solved"
    np.testing.assert_array_equal(length, optimal)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_plan_succeeds_in_gym_env(env_id: str) -> None:
    env = gym.make(env_id)
    for seed in range(15):
        env.reset(seed=seed)
        state = env.unwrapped.get_state()
        actions = solver.plan(state)
        assert len(actions) == solver.distance(state)
        for i, a in enumerate(actions):
            _, _, terminated, truncated, info = env.step(a)
            assert terminated == (i == len(actions) - 1) and not truncated
        assert info["success"]


def test_random_expert_picks_only_optimal_actions() -> None:
    game = random_states("Penguin-Gold-v0", 6, 200, seed=3)
    mask = solver.optimal_action_mask(game)
    rng = np.random.default_rng(0)
    picks = np.stack([solver.expert_actions(game, rng) for _ in range(20)])
    assert mask[np.arange(game.num)[None, :], picks].all()
    multi = mask.sum(axis=1) > 1
    assert multi.any() and (picks[:, multi].min(axis=0) != picks[:, multi].max(axis=0)).any()
    np.testing.assert_array_equal(solver.expert_actions(game), mask.argmax(axis=1))


def test_won_and_unsolvable_states() -> None:
    env = gym.make("Penguin-Bare-v0", size=4)
    env.reset(seed=0)
    state = env.unwrapped.get_state()
    won = {**state, "gold_left": [False]}
    assert (
        solver.distance(won) == 0 and solver.plan(won) == [] and solver.best_actions(won) == set()
    )
    walled = {**state, "walls": ["..#.", "..#.", "###.", "...."], "pos": [0, 0], "gold": [[3, 3]]}
    with pytest.raises(solver.Unsolvable, match="no sequence of actions"):
        solver.distance(walled)
    assert solver.best_actions(walled) == set()


def test_cache_reuses_level_tables() -> None:
    solver.clear_cache()
    game = random_states("Penguin-Walls-v0", 6, 5, seed=1)
    first = solver.distances(game)
    assert solver.cache_info()["misses"] == 5
    np.testing.assert_array_equal(solver.distances(game), first)
    assert solver.cache_info()["hits"] == 5
    solver.set_cache_limit(0)
    assert solver.cache_info()["levels"] == 0
    solver.set_cache_limit(1 << 21)


def test_bad_state_arguments() -> None:
    with pytest.raises(TypeError, match="get_state"):
        solver.distance([1, 2, 3])  # type: ignore[arg-type]
    game = random_states("Penguin-Bare-v0", 4, 2, seed=0)
    with pytest.raises(ValueError, match="batch-of-one"):
        solver.plan(game)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_matches_forward_bfs_larger_rooms(env_id: str) -> None:
    game = random_states(env_id, 6, 400, seed=99 + ENV_IDS.index(env_id))
    np.testing.assert_array_equal(solver.distances(game), forward_bfs(game))


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_matches_exhaustive_search_deeper(env_id: str) -> None:
    game = random_states(env_id, 4, 40, seed=500 + ENV_IDS.index(env_id))
    brute, firsts = exhaustive(game, 7)
    mask = solver.optimal_action_mask(game)
    for i in np.flatnonzero(brute >= 0):
        assert solver.distances(game)[i] == brute[i]
        assert set(np.flatnonzero(mask[i]).tolist()) == firsts[i]
