"""Play the solver on seeded levels, write the episodes as a trace file, and replay-check files.

Episode ``e`` of ``generate(..., seed=s)`` depends only on ``(s, e)``: its reset seed and its
epsilon draws come from ``numpy.random.SeedSequence([s, e])``. Workers play contiguous blocks
of episodes and the parent writes the blocks in order, so a dataset is the same whatever the
number of workers.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pathlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

import penguin_env  # noqa: F401  (registers the envs)
from fake_traces import solver
from fake_traces.dataset import (
    EPISODE_KEYS,
    STEP_KEYS,
    TraceDataset,
    TraceMismatchError,
    TraceWriter,
    load,
)
from penguin_env.core import NUM_ACTIONS, Action

BLOCK = 8  #: episodes per work unit


@dataclass(frozen=True)
class GeneratorConfig:
    """Settings of one :func:`generate` run (recorded in the manifest under ``generator``).

    Attributes:
        env_id: registered Penguin env id.
        num_episodes: episodes to play.
        seed: base seed; episode ``e`` uses ``SeedSequence([seed, e])``.
        epsilon: probability of taking a uniformly random *non-STOP* action instead of the
            solver's (a detour the solver then recovers from; a random STOP would just end the
            episode). Labels are always the solver's action for the state actually seen.
        env_kwargs: keyword arguments of ``gym.make``.
    """

    env_id: str
    num_episodes: int
    seed: int
    epsilon: float = 0.0
    env_kwargs: dict[str, Any] = field(default_factory=dict)


def episode_seeds(seed: int, episode: int) -> tuple[int, np.random.Generator]:
    """The reset seed and the epsilon generator of one episode."""
    ss = np.random.SeedSequence([seed, episode])
    reset_seed = int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))  # fits int64
    return reset_seed, np.random.default_rng(ss.spawn(1)[0])


def _play_block(
    cfg: GeneratorConfig, first: int, count: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Play episodes ``first .. first + count - 1``; returns their step and episode arrays."""
    env = gym.make(cfg.env_id, **cfg.env_kwargs).unwrapped
    game = env.game
    steps: dict[str, list] = {k: [] for k in STEP_KEYS}
    # "start" (each episode's first step index) is filled in when the chunks are joined.
    eps: dict[str, list] = {k: [] for k in EPISODE_KEYS if k != "start"}
    for e in range(first, first + count):
        reset_seed, rng = episode_seeds(cfg.seed, e)
        obs, _ = env.reset(seed=reset_seed)
        st = game.state
        eps["seed"].append(reset_seed)
        eps["level"].append(int(st.level[0]))
        eps["optimal_length"].append(int(solver.distances(st)[0]))
        for k in ("walls", "gold", "task", "corner", "phrase"):
            eps[k].append(getattr(st, k)[0].copy())
        total, t, done, info = 0.0, 0, False, {"success": False}
        while not done:
            label = int(solver.expert_actions(st)[0])
            action = label
            if cfg.epsilon > 0 and rng.random() < cfg.epsilon:
                action = int(rng.integers(Action.STOP))  # 0..3: never a random STOP
            steps["image"].append(obs["image"])  # a fresh array each step (the env copies)
            steps["tokens"].append(game.tokens[0].copy())
            steps["pos"].append(st.pos[0].copy())
            steps["heading"].append(int(st.heading[0]))
            steps["gold_left"].append(st.gold_left[0].copy())
            steps["step"].append(t)
            steps["episode"].append(e)
            steps["label"].append(label)
            steps["action"].append(action)
            obs, reward, terminated, truncated, info = env.step(action)
            steps["reward"].append(reward)
            steps["terminated"].append(terminated)
            steps["truncated"].append(truncated)
            total += reward
            t += 1
            done = terminated or truncated
        eps["length"].append(t)
        eps["return"].append(total)
        eps["success"].append(bool(info["success"]))
    env.close()
    return {k: np.asarray(v) for k, v in steps.items()}, {k: np.asarray(v) for k, v in eps.items()}


def _play_block_star(args: tuple[GeneratorConfig, int, int]) -> tuple[dict, dict]:
    return _play_block(*args)


def generate(
    env_id: str,
    num_episodes: int,
    seed: int,
    path: str | os.PathLike,
    epsilon: float = 0.0,
    env_kwargs: dict[str, Any] | None = None,
    workers: int = 1,
    progress: bool = True,
) -> pathlib.Path:
    """Play the solver for ``num_episodes`` seeded episodes and write a trace file.

    Args:
        env_id: a registered Penguin id, e.g. ``"Penguin-Gold-v0"``.
        num_episodes: how many episodes (>= 1).
        seed: base seed; the same seed gives the same dataset for any ``workers``.
        path: the ``.h5`` file to write (replaced atomically if it exists).
        epsilon: probability of a random non-STOP action at each step (0 = pure solver).
        env_kwargs: keyword arguments for ``gym.make`` (size, image_size, max_steps, ...).
        workers: worker processes (forked where the OS allows, else spawned); 1 plays in
            this process. Workers use only numpy, so forking a process that holds torch is safe.
        progress: show a tqdm progress bar over episodes.

    Returns:
        The path of the written file.
    """
    if env_id not in penguin_env.ENV_IDS:
        raise ValueError(f"env_id must be one of {penguin_env.ENV_IDS}, got {env_id!r}")
    if not isinstance(num_episodes, int) or num_episodes < 1:
        raise ValueError(f"num_episodes must be an int >= 1, got {num_episodes!r}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    cfg = GeneratorConfig(env_id, num_episodes, int(seed), float(epsilon), dict(env_kwargs or {}))
    probe = gym.make(env_id, **cfg.env_kwargs).unwrapped  # validates kwargs before any work
    size, image_size = probe.config.size, probe.config.image_size
    num_tokens, num_gold = probe.game.tokenizer.max_length, probe.game.variant.num_gold
    probe.close()

    jobs = [(cfg, b, min(BLOCK, num_episodes - b)) for b in range(0, num_episodes, BLOCK)]
    bar = tqdm(total=num_episodes, desc=f"traces {env_id}", unit="ep", disable=not progress)
    with TraceWriter(path, image_size, num_tokens, num_gold, size) as writer:
        pool = None
        if workers > 1 and len(jobs) > 1:
            # fork starts in milliseconds and needs no importable __main__; a crashed worker
            # raises BrokenProcessPool instead of hanging.
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=mp.get_context(method))
        try:
            results = pool.map(_play_block_star, jobs) if pool else map(_play_block_star, jobs)
            for (_, _, count), (steps, eps) in zip(jobs, results, strict=True):
                eps["start"] = writer.counts["steps"] + np.concatenate(
                    [[0], np.cumsum(eps["length"])[:-1]]
                )
                writer.append("steps", steps)
                writer.append("episodes", eps)
                bar.update(count)
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            bar.close()
        settings = asdict(cfg)
        manifest = {
            "env_id": env_id,
            "env_kwargs": settings.pop("env_kwargs"),
            "generator": {
                **settings,
                "label": "solver lowest-id optimal action",
                "random_actions": "uniform over 0..3",
            },
            "stats": {
                "success_rate": float(np.mean(writer.file["episodes"]["success"][()])),
            },
        }
        return writer.finish(manifest)


def verify(dataset: str | os.PathLike | TraceDataset) -> None:
    """Replay every episode from its seed and stored actions and compare everything stored.

    Checks, per step: the image and token ids, the game state before the step, the label
    (the solver's lowest optimal action), reward, terminated and truncated; per episode: the
    level, the optimal length, length, return and success.

    Raises:
        TraceMismatchError: naming the file, episode, step and field that differ.
        TraceFormatError: if ``dataset`` is a path that does not load.
    """
    ds = dataset if isinstance(dataset, TraceDataset) else load(dataset)
    env = gym.make(ds.env_id, **ds.env_kwargs).unwrapped
    game = env.game
    st_all = ds._steps
    where = ds.path

    def fail(e: int, t: int | None, what: str) -> None:
        at = f"episode {e}" + (f", step {t}" if t is not None else "")
        raise TraceMismatchError(
            f"{where}: {at}: {what} differs from a replay of the stored seed and actions"
        )

    for e in range(ds.num_episodes):
        start, length = int(ds.episode_starts[e]), int(ds.episode_lengths[e])
        images = ds.images[start : start + length]
        tokens = ds.tokens[start : start + length]
        obs, info = env.reset(seed=int(ds.seeds[e]))
        st = game.state
        if int(st.level[0]) != int(ds.levels[e]):
            fail(e, None, "level")
        if int(solver.distances(st)[0]) != int(ds.optimal_lengths[e]):
            fail(e, None, "optimal_length")
        total = 0.0
        for i in range(length):
            t = start + i
            if int(st_all["episode"][t]) != e or int(st_all["step"][t]) != i:
                fail(e, i, "episode/step index")
            if not np.array_equal(obs["image"], images[i]):
                fail(e, i, "image")
            if not np.array_equal(game.tokens[0], tokens[i]):
                fail(e, i, "tokens")
            if not (
                np.array_equal(st.pos[0], st_all["pos"][t])
                and int(st.heading[0]) == int(st_all["heading"][t])
                and np.array_equal(st.gold_left[0], st_all["gold_left"][t])
                and int(st.steps[0]) == i
            ):
                fail(e, i, "game state")
            if int(solver.expert_actions(st)[0]) != int(st_all["label"][t]):
                fail(e, i, "label")
            action = int(st_all["action"][t])
            if not 0 <= action < NUM_ACTIONS:
                fail(e, i, f"action {action} (out of range)")
            obs, reward, terminated, truncated, info = env.step(action)
            total += reward
            if reward != float(st_all["reward"][t]):
                fail(e, i, "reward")
            if terminated != bool(st_all["terminated"][t]) or truncated != bool(
                st_all["truncated"][t]
            ):
                fail(e, i, "terminated/truncated")
            if (terminated or truncated) != (i == length - 1):
                fail(e, i, "episode length")
        if total != float(ds.returns[e]):
            fail(e, None, "return")
        if bool(info["success"]) != bool(ds.successes[e]):
            fail(e, None, "success")
    env.close()
