"""Evaluation on held-out levels: success rate, mean return, mean length and SPL.

SPL (success weighted by path length, Anderson et al. 2018) per episode is
``success * optimal / max(optimal, actual)``, where ``optimal`` is the solver's shortest
number of actions from the episode's first state and ``actual`` the episode's length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode

from agents import MultimodalPolicy
from algorithms.envs import make_vec_env
from fake_traces import solver
from penguin_env.core import TASK_NAMES, GameState, Task, stop_succeeds

#: A time-limit failure whose last this many steps left the state unchanged counts as pressing
#: into a wall (a greedy policy that bumps once sees the same frame and bumps for ever).
STALL_STEPS = 10

#: Any policy: ``(obs batch, batched core state of the same games) -> (N,) actions``.
PolicyFn = Callable[[dict[str, np.ndarray], GameState], np.ndarray]


@dataclass
class EvalResult:
    """What :func:`evaluate` measured (means over episodes)."""

    success_rate: float
    mean_return: float
    mean_length: float
    spl: float
    num_episodes: int
    successes: np.ndarray = field(repr=False)
    returns: np.ndarray = field(repr=False)
    lengths: np.ndarray = field(repr=False)
    optimal_lengths: np.ndarray = field(repr=False)
    tasks: np.ndarray = field(repr=False)
    """Each episode's :class:`~penguin_env.core.Task` id."""
    timed_out: np.ndarray = field(repr=False)
    """Each episode ended at the time limit (truncated, not terminated): for a greedy policy,
    most often a loop between a few states."""
    final_stall: np.ndarray = field(repr=False)
    """Each episode's last steps in a row that left the penguin's cell and heading unchanged
    (a turn always changes the heading, so these are moves into a wall)."""
    final_other_corner: np.ndarray = field(repr=False)
    """Each corner-task episode that ended with the penguin in a corner other than the named one
    (a policy that goes to a corner without reading which)."""

    def by_task(self) -> dict[str, dict[str, float]]:
        """Per task present: episodes, success rate, SPL, and the failures split into those that
        ran to the time limit and those the episode ended early (a wrong STOP, a wrong heading);
        of the former, those whose last :data:`STALL_STEPS` steps were all moves into a wall (the
        same frame, so a greedy policy repeats the same blocked move until the time limit); of the
        latter, those that stopped in a corner other than the one named."""
        spl = episode_spl(self.successes, self.optimal_lengths, self.lengths)
        out: dict[str, dict[str, float]] = {}
        for task in np.unique(self.tasks):
            mask = self.tasks == task
            failed = mask & ~self.successes
            out[TASK_NAMES[int(task)]] = {
                "episodes": int(mask.sum()),
                "success_rate": float(self.successes[mask].mean()),
                "spl": float(spl[mask].mean()),
                "failures_at_time_limit": int((failed & self.timed_out).sum()),
                "failures_ended_early": int((failed & ~self.timed_out).sum()),
                "failures_pressing_into_a_wall": int((failed & self.timed_out & (self.final_stall >= STALL_STEPS)).sum()),
                "failures_at_another_corner": int((failed & ~self.timed_out & self.final_other_corner).sum()),
            }
        return out

    def scalars(self, prefix: str = "eval") -> dict[str, float]:
        """TensorBoard scalars under SB3's eval names plus success rate and SPL."""
        return {
            f"{prefix}/success_rate": self.success_rate,
            f"{prefix}/mean_reward": self.mean_return,
            f"{prefix}/mean_ep_length": self.mean_length,
            f"{prefix}/spl": self.spl,
        }


def episode_spl(successes: np.ndarray, optimal_lengths: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each episode's success weighted by path length: ``S * l / max(l, p)`` (Anderson et al. 2018),
    with ``l`` the solver's shortest length and ``p`` the length played."""
    return successes * optimal_lengths / np.maximum(np.maximum(optimal_lengths, lengths), 1)


def policy_fn(
    policy: MultimodalPolicy | PolicyFn, deterministic: bool = True, seed: int = 0
) -> PolicyFn:
    """Turn a network (greedy or sampled actions) or a callable into a :data:`PolicyFn`."""
    if isinstance(policy, MultimodalPolicy):
        generator = torch.Generator(device=policy.device).manual_seed(seed)

        def act(obs: dict[str, np.ndarray], state: GameState) -> np.ndarray:
            return policy.act(obs, deterministic=deterministic, generator=generator)

        return act
    if not callable(policy):
        raise TypeError(
            f"policy must be a MultimodalPolicy or a callable (obs, state) -> actions, got {type(policy).__name__}"
        )
    return policy


def in_another_corner(state: GameState) -> np.ndarray:
    """Per game: a corner task whose penguin stands in a corner other than the one named (the
    named one is where the game's own rule, :func:`~penguin_env.core.stop_succeeds`, says STOP
    succeeds)."""
    edges = (0, state.size - 1)
    at_a_corner = np.isin(state.pos[:, 0], edges) & np.isin(state.pos[:, 1], edges)
    return (state.task == Task.CORNER) & at_a_corner & ~stop_succeeds(state)


def solver_policy(obs: dict[str, np.ndarray], state: GameState) -> np.ndarray:
    """The exact solver as a :data:`PolicyFn` (an SPL of 1 by construction)."""
    return solver.expert_actions(state)


def evaluate(
    policy: MultimodalPolicy | PolicyFn,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    num_episodes: int = 500,
    seed: int = 0,
    deterministic: bool = True,
    num_envs: int = 32,
) -> EvalResult:
    """Play one episode on each of ``num_episodes`` consecutive levels and measure it.

    Episode ``k`` plays level ``start_level + k`` (wrapping within ``num_levels`` when that is
    set), so a held-out range such as ``start_level=1_000_000, num_levels=500`` is covered
    exactly once whatever ``num_envs`` is. Pass ``paraphrases="test"`` in ``env_kwargs`` for
    unseen phrasings.

    Args:
        policy: a :class:`~agents.MultimodalPolicy` or any callable ``(obs, state) -> actions``
            (``state`` is the vector env's batched :class:`~penguin_env.core.GameState`).
        env_id: registered Penguin id.
        env_kwargs: env keyword arguments (level range, phrasings, image size, ...).
        num_episodes: episodes (levels) to play.
        seed: seeds the sampling of a stochastic policy.
        deterministic: greedy actions from a network (ignored for callables).
        num_envs: games stepped together.
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be >= 1, got {num_episodes}")
    kwargs = dict(env_kwargs or {})
    start, span = int(kwargs.get("start_level", 0)), int(kwargs.get("num_levels", 0))
    levels = np.arange(num_episodes, dtype=np.int64)
    levels = start + (levels % span if span > 0 else levels)
    act = policy_fn(policy, deterministic, seed)
    was_training = isinstance(policy, MultimodalPolicy) and policy.training
    if isinstance(policy, MultimodalPolicy):
        policy.eval()

    n = min(num_envs, num_episodes)
    envs = make_vec_env(env_id, n, kwargs, autoreset_mode=AutoresetMode.NEXT_STEP)
    successes = np.zeros(num_episodes, dtype=bool)
    returns = np.zeros(num_episodes)
    lengths = np.zeros(num_episodes, dtype=np.int64)
    optimal = np.zeros(num_episodes, dtype=np.int64)
    tasks = np.zeros(num_episodes, dtype=np.int64)
    timed_out = np.zeros(num_episodes, dtype=bool)
    final_stall = np.zeros(num_episodes, dtype=np.int64)
    final_other_corner = np.zeros(num_episodes, dtype=bool)
    episode = np.arange(n)  # which episode each game is playing; -1 once the game is idle
    obs, _ = envs.reset(seed=seed, options={"level": levels[:n]})
    first = envs.get_state()
    optimal[:n] = solver.distances(first)
    tasks[:n] = first.task
    next_episode = n
    try:
        while (episode >= 0).any():
            before = envs.get_state()
            actions = np.asarray(act(obs, before), dtype=np.int64)
            obs, reward, terminated, truncated, info = envs.step(actions)
            live = episode >= 0
            idx = episode[live]
            # With next-step autoreset the game state still holds a finished episode's last state.
            after = envs.get_state()
            unchanged = (after.pos == before.pos).all(axis=1) & (after.heading == before.heading)
            final_stall[idx] = np.where(unchanged[live], final_stall[idx] + 1, 0)
            returns[idx] += reward[live]
            lengths[idx] += 1
            done = (terminated | truncated) & live
            if not done.any():
                continue
            successes[episode[done]] = info["success"][done]
            timed_out[episode[done]] = (truncated & ~terminated)[done]
            final_other_corner[episode[done]] = in_another_corner(after)[done]
            finished = np.flatnonzero(done)
            restart = finished[: max(0, num_episodes - next_episode)]
            episode[finished] = -1
            if restart.size:
                new = np.arange(next_episode, next_episode + restart.size)
                next_episode += restart.size
                mask = np.zeros(n, dtype=bool)
                mask[restart] = True
                level = np.zeros(n, dtype=np.int64)
                level[restart] = levels[new]
                obs, _ = envs.reset(options={"level": level, "reset_mask": mask})
                episode[restart] = new
                restarted = envs.get_state().take(restart)
                optimal[new] = solver.distances(restarted)
                tasks[new] = restarted.task
    finally:
        envs.close()
        if was_training:
            policy.train()

    spl = episode_spl(successes, optimal, lengths)
    return EvalResult(
        success_rate=float(successes.mean()),
        mean_return=float(returns.mean()),
        mean_length=float(lengths.mean()),
        spl=float(spl.mean()),
        num_episodes=num_episodes,
        successes=successes,
        returns=returns,
        lengths=lengths,
        optimal_lengths=optimal,
        tasks=tasks,
        timed_out=timed_out,
        final_stall=final_stall,
        final_other_corner=final_other_corner,
    )
