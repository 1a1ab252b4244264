"""Advantage estimates: GAE(lambda) for PPO, group-relative advantages for pseudo-GRPO.

Both are plain NumPy over arrays the trainers fill, so they can be checked against hand
computations (``tests/test_advantages.py``).
"""

from __future__ import annotations

import numpy as np

#: Baselines of :func:`group_advantages`.
GROUP_BASELINES = ("mean", "rloo", "greedy")


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    valid: np.ndarray,
    gamma: float,
    lam: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimates of a ``(T, N)`` rollout from a next-step-autoreset vector env.

    Step ``t`` of game ``n`` is the transition from observation ``t`` with the action taken there;
    ``values[t]`` is V(observation ``t``) and ``next_values`` V(the observation after the last
    step). With Gymnasium's next-step autoreset, the observation returned on the step that ends
    an episode is that episode's true last observation, and the *following* step only resets the
    game (its action is ignored): such reset steps are marked ``valid=False``.

    - A terminated step does not bootstrap: ``delta = r - V(s)``.
    - A truncated step (time limit) bootstraps from the value of its last observation, which is
      ``values[t + 1]`` (the reset step's observation) or ``next_values``: truncation is not
      termination.
    - The recursion stops at every episode end, so advantages never leak across episodes.
    - Reset steps get advantage 0 and return 0; the trainer leaves them out of its losses.

    Returns:
        ``(advantages, returns)``, both ``(T, N)``; ``returns = advantages + values`` on valid steps.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    steps = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    following = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in range(steps - 1, -1, -1):
        v_next = next_values if t == steps - 1 else values[t + 1]
        done = np.logical_or(terminated[t], truncated[t])
        delta = rewards[t] + gamma * v_next * (1.0 - terminated[t]) - values[t]
        following = delta + gamma * lam * (1.0 - done) * following
        following = np.where(valid[t], following, 0.0)
        advantages[t] = following
    returns = np.where(valid, advantages + values, 0.0)
    return advantages.astype(np.float32), returns.astype(np.float32)


def group_advantages(
    returns: np.ndarray, group_size: int, baseline: str = "mean", eps: float = 1e-6, scale: bool = True
) -> np.ndarray:
    """Group-relative advantages of episode returns (pseudo-GRPO).

    ``returns`` holds ``num_groups * group_size`` episode returns, group by group (episodes
    ``g * G .. g * G + G - 1`` share one start state). Each episode's advantage is

    - ``baseline="mean"`` (GRPO): ``(R_i - mean(R_group)) / (std(R_group) + eps)``;
    - ``baseline="rloo"`` (leave-one-out): ``(R_i - mean of the other G - 1 returns) / (std(R_group) + eps)``;
    - ``baseline="greedy"`` (self-critical, Rennie et al. 2017): the group's first episode was
      played greedily and is the baseline, ``(R_i - R_first) / (std(R_group) + eps)``; the
      first episode's own advantage is 0.

    ``std`` is the population standard deviation. With ``scale=False`` the centred returns are
    not divided by it (Dr. GRPO, Liu et al. 2025): a group whose returns differ a little (every
    episode succeeds, some a step sooner) then weighs less than one where some episodes fail,
    instead of the same. A group whose returns are all equal gets advantage 0 for every episode
    (it carries no signal about which actions were better).
    """
    returns = np.asarray(returns, dtype=np.float64)
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a group-relative baseline needs peers), got {group_size}")
    if returns.size % group_size:
        raise ValueError(f"{returns.size} returns do not split into groups of {group_size}")
    if baseline not in GROUP_BASELINES:
        raise ValueError(f"baseline must be one of {GROUP_BASELINES}, got {baseline!r}")
    grouped = returns.reshape(-1, group_size)
    mean = grouped.mean(axis=1, keepdims=True)
    std = grouped.std(axis=1, keepdims=True)
    if baseline == "mean":
        centred = grouped - mean
    elif baseline == "greedy":
        centred = grouped - grouped[:, :1]  # the first column becomes 0
    else:
        others = (grouped.sum(axis=1, keepdims=True) - grouped) / (group_size - 1)
        centred = grouped - others
    flat = std == 0  # all equal: exactly zero, not 0 / eps noise
    advantages = np.where(flat, 0.0, centred / (std + eps) if scale else centred)
    return advantages.reshape(-1).astype(np.float32)
