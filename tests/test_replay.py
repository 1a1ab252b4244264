"""The frame-once replay ring: every transition it can return matches a plain list of the
transitions played (across episode ends, truncations, autoresets and ring wrap-around), n-step
returns match a hand computation, and a stored transition costs about one frame."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms.envs import make_vec_env
from algorithms.replay import ReplayBuffer, SumTree


def play(num_envs: int, capacity: int, max_steps: int, steps: int, seed: int, n_step: int = 1,
         prioritized: bool = False):
    """Random play (STOP included, so episodes terminate too) in small Bare games, stored in a
    buffer and, beside it, as a plain list of ``(step, game, obs, action, reward, terminated,
    truncated, next_obs)`` per game, autoreset steps left out."""
    envs = make_vec_env("Penguin-Bare-v0", num_envs, {"size": 4, "image_size": 24, "max_steps": max_steps})
    space = envs.single_observation_space
    buffer = ReplayBuffer(capacity, num_envs, space["image"].shape, space["text"].shape[0],
                          int(space["text"].high.max()) + 1, 5, prioritized=prioritized, n_step=n_step)
    rng = np.random.default_rng(seed)
    obs, _ = envs.reset(seed=seed)
    resetting = np.zeros(num_envs, dtype=bool)
    played: list[list[tuple]] = [[] for _ in range(num_envs)]
    for t in range(steps):
        actions = rng.integers(0, 5, num_envs)
        next_obs, reward, term, trunc, _ = envs.step(actions)
        buffer.add(obs, actions, reward, term, trunc, ~resetting)
        for e in np.flatnonzero(~resetting):
            played[e].append((t, int(e), obs["image"][e].copy(), obs["text"][e].copy(), int(actions[e]),
                              float(reward[e]), bool(term[e]), bool(trunc[e]),
                              next_obs["image"][e].copy(), next_obs["text"][e].copy()))
        resetting = term | trunc
        obs = next_obs
    return buffer, played


def n_step_reference(episode_list: list[tuple], j: int, n: int, gamma: float):
    """Hand computation over the plain list: rewards until n steps or the episode's end."""
    ret = 0.0
    for k in range(n):
        _, _, _, _, _, r, term, trunc, next_image, next_text = episode_list[j + k]
        ret += gamma**k * r
        if term:
            return ret, 0.0, next_image, next_text
        if trunc:
            return ret, gamma ** (k + 1), next_image, next_text
    return ret, gamma**n, episode_list[j + n - 1][8], episode_list[j + n - 1][9]


@settings(max_examples=30, deadline=None)
@given(
    num_envs=st.integers(1, 4),
    rows=st.integers(3, 12),
    max_steps=st.integers(1, 6),
    steps=st.integers(1, 40),
    n_step=st.integers(1, 4),
    seed=st.integers(0, 1000),
    prioritized=st.booleans(),
)
def test_every_readable_transition_matches_the_plain_list(
    num_envs, rows, max_steps, steps, n_step, seed, prioritized
) -> None:
    buffer, played = play(num_envs, rows * num_envs, max_steps, steps, seed, n_step, prioritized)
    gamma = 0.9
    first, last = max(0, steps - rows), steps - 1 - n_step
    expected = set()
    for e, transitions in enumerate(played):
        for j, tr in enumerate(transitions):
            if first <= tr[0] <= last:
                expected.add((tr[0], e, j))
    got_steps, got_games = buffer.positions(n_step)
    assert {(int(s), int(g)) for s, g in zip(got_steps, got_games, strict=True)} == {(s, e) for s, e, _ in expected}
    if not expected:
        with pytest.raises(ValueError, match="no sampleable"):
            buffer.sample(4, np.random.default_rng(0), n_step, gamma)
        return
    batch = buffer.get(got_steps, got_games, n_step, gamma)
    index = {(s, e): j for s, e, j in expected}
    for b, (s, e) in enumerate(zip(got_steps, got_games, strict=True)):
        transitions = played[e]
        j = index[(int(s), int(e))]
        _, _, image, text, action, *_ = transitions[j]
        assert np.array_equal(batch.obs["image"][b], image) and np.array_equal(batch.obs["text"][b], text)
        assert batch.actions[b] == action
        ret, discount, next_image, next_text = n_step_reference(transitions, j, n_step, gamma)
        assert batch.returns[b] == pytest.approx(ret, abs=1e-6)
        assert batch.discounts[b] == pytest.approx(discount, abs=1e-6)
        if discount > 0:
            assert np.array_equal(batch.next_obs["image"][b], next_image)
            assert np.array_equal(batch.next_obs["text"][b], next_text)
    sampled = buffer.sample(64, np.random.default_rng(seed), n_step, gamma)
    readable = set(zip((got_steps % buffer.rows).tolist(), got_games.tolist(), strict=True))
    assert set(zip(sampled.rows.tolist(), sampled.envs.tolist(), strict=True)) <= readable
    if prioritized:
        # Exactly the readable transitions carry a priority, and the weights are normalised.
        leaves = buffer.priorities.get(np.arange(buffer.capacity))
        assert {divmod(int(i), num_envs) for i in np.flatnonzero(leaves)} == readable
        assert buffer.live == len(readable)
        assert sampled.weights is not None and sampled.weights.max() == pytest.approx(1.0)
        fresh = buffer.get(got_steps, got_games, n_step, gamma)
        assert np.array_equal(sampled.obs["image"], fresh.obs["image"][[
            list(zip((got_steps % buffer.rows).tolist(), got_games.tolist(), strict=True)).index(p)
            for p in zip(sampled.rows.tolist(), sampled.envs.tolist(), strict=True)]])


def test_n_step_return_stops_at_an_episode_end_and_bootstraps_only_truncations() -> None:
    # One game, frames numbered by step. Episode A: steps 0, 1 (terminates at 1); step 2 is the
    # autoreset row; episode B: steps 3, 4 (truncated at 4); step 5 autoreset; 6, 7, 8, 9 go on.
    buffer = ReplayBuffer(20, 1, (2, 2, 3), 3, 10, 5)
    rewards = [0.5, 1.0, 0.0, 0.25, 2.0, 0.0, 1.0, 0.0, 3.0, 0.0]
    term = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    trunc = [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    valid = [1, 1, 0, 1, 1, 0, 1, 1, 1, 1]
    for t in range(10):
        obs = {"image": np.full((1, 2, 2, 3), t, np.uint8), "text": np.full((1, 3), t % 10)}
        buffer.add(obs, np.array([t % 5]), np.array([rewards[t]]), np.array([bool(term[t])]),
                   np.array([bool(trunc[t])]), np.array([bool(valid[t])]))
    g = 0.5
    batch = buffer.get(np.array([0, 3, 4, 6]), np.zeros(4, np.int64), n_step=3, gamma=g)
    # From step 0: 0.5 + g * 1.0, then the termination: no bootstrap.
    assert batch.returns[0] == pytest.approx(0.5 + g * 1.0) and batch.discounts[0] == 0.0
    # From step 3: 0.25 + g * 2.0, truncated at step 4: bootstrap from its last frame (row 5).
    assert batch.returns[1] == pytest.approx(0.25 + g * 2.0) and batch.discounts[1] == pytest.approx(g**2)
    assert batch.next_obs["image"][1, 0, 0, 0] == 5
    # From step 4: the truncation at once.
    assert batch.returns[2] == pytest.approx(2.0) and batch.discounts[2] == pytest.approx(g)
    # From step 6: three steps, bootstrap from frame 9.
    assert batch.returns[3] == pytest.approx(1.0 + g * 0.0 + g**2 * 3.0)
    assert batch.discounts[3] == pytest.approx(g**3) and batch.next_obs["image"][3, 0, 0, 0] == 9
    steps, _ = buffer.positions(3)
    assert 2 not in steps and 5 not in steps and steps.max() == 6  # autoreset rows, and 7.. lack 3 next frames


def test_a_stored_transition_costs_one_frame_and_its_tokens_within_ten_percent() -> None:
    envs = make_vec_env("Penguin-Bare-v0", 16, {})
    space = envs.single_observation_space
    obs, _ = envs.reset(seed=0)
    capacity = 4_096
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        buffer = ReplayBuffer(capacity, 16, space["image"].shape, space["text"].shape[0],
                              int(space["text"].high.max()) + 1, 5)
        zeros = np.zeros(16, dtype=bool)
        for _ in range(buffer.rows + 3):  # fill the ring and wrap around
            buffer.add(obs, np.zeros(16, np.int64), np.zeros(16, np.float32), zeros, zeros, ~zeros)
        measured = (tracemalloc.get_traced_memory()[0] - before) / buffer.capacity
    finally:
        tracemalloc.stop()
    frame_and_tokens = space["image"].shape[0] * space["image"].shape[1] * 3 + obs["text"][0].nbytes
    assert measured <= 1.1 * frame_and_tokens, (measured, frame_and_tokens)
    assert buffer.bytes_per_transition() <= 1.1 * frame_and_tokens
    # Stored once: far below the two frames an (obs, next_obs) pair would take.
    assert measured < 1.5 * space["image"].shape[0] * space["image"].shape[1] * 3


def test_a_buffer_too_small_for_two_steps_is_refused() -> None:
    with pytest.raises(ValueError, match="at least two steps"):
        ReplayBuffer(15, 8, (4, 4, 3), 2, 10, 5)


def test_sum_tree_draws_in_proportion_to_priorities() -> None:
    tree = SumTree(5)
    tree.set(np.arange(5), np.array([1.0, 0.0, 3.0, 0.0, 4.0]))
    assert tree.total == 8.0
    assert tree.find(np.array([0.0, 0.99, 1.0, 3.99, 4.0, 7.99])).tolist() == [0, 0, 2, 2, 4, 4]
    tree.set(np.array([2]), np.array([0.0]))
    assert tree.total == 5.0 and tree.find(np.array([1.5])).tolist() == [4]


def test_prioritized_replay_draws_high_error_transitions_more_often_and_weights_them_less() -> None:
    buffer, _ = play(2, 40, 6, 30, seed=3, n_step=1, prioritized=True)
    rng = np.random.default_rng(0)
    batch = buffer.sample(64, rng)
    hot = (batch.rows[0], batch.envs[0])
    # One transition (wherever the batch holds it) has a large TD error, the rest small ones.
    errors = np.where((batch.rows == hot[0]) & (batch.envs == hot[1]), 10.0, 0.01)
    buffer.update_priorities(batch, errors)
    drawn = buffer.sample(2_000, rng)
    is_hot = (drawn.rows == hot[0]) & (drawn.envs == hot[1])
    assert is_hot.mean() > 0.1, is_hot.mean()  # one of ~50 transitions, drawn far more than uniformly
    assert drawn.weights[is_hot].max() < drawn.weights[~is_hot].min()


def test_episodes_cut_from_outside_bootstrap_from_the_observation_reached() -> None:
    # What the trainer does when it replaces the env (curriculum): the newest step is marked
    # truncated and the observation it reached is written as an invalid row.
    buffer = ReplayBuffer(10, 1, (1, 1, 3), 1, 5, 5, prioritized=True, n_step=3)

    def add(t: int, valid: bool = True) -> None:
        buffer.add({"image": np.full((1, 1, 1, 3), t, np.uint8), "text": np.zeros((1, 1), np.int64)},
                   np.array([0]), np.array([float(t)]), np.array([False]), np.array([False]), np.array([valid]))

    for t in range(3):
        add(t)
    buffer.truncate_last()
    add(3, valid=False)  # the observation step 2 reached, from the old env
    for t in range(4, 9):
        add(t)  # the new env's episodes
    batch = buffer.get(np.array([1, 2]), np.zeros(2, np.int64), gamma=0.5)
    assert batch.returns.tolist() == [1.0 + 0.5 * 2.0, 2.0]
    assert batch.discounts.tolist() == [0.25, 0.5]
    assert batch.next_obs["image"][:, 0, 0, 0].tolist() == [3, 3]
    steps, _ = buffer.positions()
    assert steps.tolist() == [0, 1, 2, 4, 5]
    assert buffer.live == 5
