"""GAE and group-relative advantages against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms.advantages import gae, group_advantages


def test_gae_by_hand_with_termination_truncation_and_next_step_reset() -> None:
    # One game, six steps: an episode that terminates at t=1, a reset step at t=2 (next-step
    # autoreset: action ignored), an episode truncated by the time limit at t=4, a reset at t=5.
    g, lam = 0.9, 0.5
    r = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0])[:, None]
    v = np.array([0.5, 0.8, 0.3, 0.2, 0.4, 0.6])[:, None]  # v[5] = V(last obs of the truncated episode)
    term = np.array([0, 1, 0, 0, 0, 0], bool)[:, None]
    trunc = np.array([0, 0, 0, 0, 1, 0], bool)[:, None]
    valid = np.array([1, 1, 0, 1, 1, 0], bool)[:, None]
    next_v = np.array([0.7])
    adv, ret = gae(r, v, next_v, term, trunc, valid, g, lam)
    d1 = 1.0 - 0.8  # terminated: no bootstrap
    d0 = 0.0 + g * 0.8 - 0.5
    d4 = 0.0 + g * 0.6 - 0.4  # truncated: bootstraps from the value of its last observation
    d3 = 0.0 + g * 0.4 - 0.2
    expected = [d0 + g * lam * d1, d1, 0.0, d3 + g * lam * d4, d4, 0.0]
    np.testing.assert_allclose(adv[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], np.where(valid[:, 0], np.array(expected) + v[:, 0], 0), rtol=1e-6)


def test_gae_bootstraps_the_rollout_end_and_matches_discounted_returns_when_lambda_is_one() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(size=(7, 3))
    v = rng.normal(size=(7, 3))
    next_v = rng.normal(size=3)
    no = np.zeros((7, 3), bool)
    adv, ret = gae(r, v, next_v, no, no, ~no, 0.95, 1.0)
    # lambda = 1, no episode end: return_t = sum_k g^k r_{t+k} + g^(T-t) V(s_T)
    for t in range(7):
        disc = sum(0.95**k * r[t + k] for k in range(7 - t)) + 0.95 ** (7 - t) * next_v
        np.testing.assert_allclose(ret[t], disc, rtol=1e-5)


def test_group_advantages_by_hand() -> None:
    returns = np.array([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    adv = group_advantages(returns, 4)
    # group 1: mean 0.5, population std 0.5
    np.testing.assert_allclose(adv[:4], [1.0, -1.0, -1.0, 1.0], atol=1e-5)
    assert (adv[4:] == 0).all()  # equal returns: exactly zero
    rloo = group_advantages(returns, 4, baseline="rloo")
    # leave-one-out mean for a 1 is (0 + 0 + 1) / 3; for a 0 it is 2 / 3
    np.testing.assert_allclose(rloo[:4], [(1 - 1 / 3) / 0.5, (0 - 2 / 3) / 0.5, (0 - 2 / 3) / 0.5, (1 - 1 / 3) / 0.5], atol=1e-5)
    assert (rloo[4:] == 0).all()
    unscaled = group_advantages(np.array([1.0, 0.0, 0.0, 1.0, 0.9, 1.0, 1.0, 1.0]), 4, scale=False)
    # Dr. GRPO: only centred; the near-equal group (mean 0.975) moves far less than the other
    np.testing.assert_allclose(unscaled, [0.5, -0.5, -0.5, 0.5, -0.075, 0.025, 0.025, 0.025], atol=1e-6)


def test_greedy_baseline_scores_each_group_against_its_first_episode() -> None:
    returns = np.array([0.0, 1.0, 1.0, 0.5, 1.0, 1.0, 0.0, 1.0, 0.3, 0.3, 0.3, 0.3])
    adv = group_advantages(returns, 4, baseline="greedy")
    # group 1: greedy 0; mean 0.625, variance (0.625^2 + 2 * 0.375^2 + 0.125^2) / 4 = 0.171875
    std1 = 0.171875**0.5
    np.testing.assert_allclose(adv[:4], [0.0, 1 / std1, 1 / std1, 0.5 / std1], rtol=1e-5)
    # group 2: greedy 1; mean 0.75, variance (3 * 0.25^2 + 0.75^2) / 4 = 0.1875
    np.testing.assert_allclose(adv[4:8], [0.0, 0.0, -1 / 0.1875**0.5, 0.0], rtol=1e-5)
    assert (adv[8:] == 0).all()  # all equal: no signal
    unscaled = group_advantages(returns, 4, baseline="greedy", scale=False)
    np.testing.assert_allclose(unscaled[:8], [0, 1, 1, 0.5, 0, 0, -1, 0], atol=1e-6)


@settings(deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=6, max_size=6), st.sampled_from([2, 3]))
def test_greedy_baseline_gives_the_greedy_episode_no_advantage(values, group) -> None:
    returns = np.array(values)
    adv = group_advantages(returns, group, baseline="greedy").reshape(-1, group)
    assert (adv[:, 0] == 0).all()
    # every other episode's advantage has the sign of its gap to the greedy one
    gaps = returns.reshape(-1, group)[:, 1:] - returns.reshape(-1, group)[:, :1]
    clear = np.abs(gaps) > 1e-3  # (gaps of 1e-139 underflow in float32)
    assert (np.sign(adv[:, 1:][clear]) == np.sign(gaps[clear])).all()
    assert (adv[:, 1:][gaps == 0] == 0).all()


@settings(deadline=None)  # a busy 2-core machine can exceed the default 200 ms per example
@given(st.lists(st.floats(-5, 5), min_size=6, max_size=6), st.sampled_from([2, 3]))
def test_group_advantages_are_centred_within_each_group(values, group) -> None:
    adv = group_advantages(np.array(values), group).reshape(-1, group)
    np.testing.assert_allclose(adv.sum(axis=1), 0.0, atol=1e-3)


def test_group_advantages_refuse_bad_groups() -> None:
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        group_advantages(np.zeros(4), 1)
    with pytest.raises(ValueError, match="do not split"):
        group_advantages(np.zeros(5), 2)
