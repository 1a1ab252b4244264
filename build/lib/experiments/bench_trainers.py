"""Trainer throughput: env steps per second of a short run of each reinforcement-learning trainer.

Every trainer in :data:`algorithms.registry.ALGORITHMS` with an env-step budget
(``total_env_steps``: ours and the stable-baselines3 baselines; behaviour cloning has none) runs
its preset for the env with the same env-step budget and the same torch thread count, one after
another in this process, so the figures compare like with like on one machine at one time.

A figure is env steps played / seconds of the whole ``train`` call: start-up (network, envs,
replay buffer), training, and a final held-out evaluation cut to one level plus the checkpoint
writes, which take a fraction of a second. (Timing up to a trainer's last step callback would
miss stable-baselines3 PPO's last update, which runs after its last callback.) Each timed run
follows an untimed short run of the same trainer, so no trainer pays the process's one-time
imports. Short runs favour
trainers that do little work early (e.g. DQN before ``learning_starts``); the trainer-steps
column shows how much each run did, in each trainer's own unit.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

from algorithms import registry
from algorithms.device import available_cores
from experiments.presets import Budget, build_config, config_fields

#: Env steps of the untimed run before each timed one (one PPO rollout of the presets).
WARMUP_ENV_STEPS = 4_096

#: Config fields that keep a throughput run to training alone.
QUIET = {
    "progress": False,
    "tensorboard": False,
    "eval_every": 0,
    "eval_episodes": 1,
    "final_eval_episodes": 1,
    "checkpoint_every": 0,
}


def rl_trainers() -> list[str]:
    """Registered trainers with an env-step budget, in registry order."""
    return [
        name
        for name in registry.ALGORITHMS
        if "total_env_steps" in config_fields(registry.get(name)[0])
    ]


def measure(algo: str, env_id: str, env_steps: int, threads: int, seed: int = 0) -> dict[str, Any]:
    """Train ``algo`` for ``env_steps`` env steps (in a temporary run directory) and time it."""
    _, train = registry.get(algo)
    with tempfile.TemporaryDirectory(prefix="penguin-bench-") as runs:
        config = build_config(
            algo,
            env_id,
            budget=Budget(env_steps=env_steps),
            seed=seed,
            overrides={**QUIET, "threads": threads, "runs_dir": runs, "run_name": algo},
        )
        start = time.perf_counter()
        result = train(config)
        seconds = time.perf_counter() - start
    return {
        "algo": algo,
        "env_steps": int(result.env_steps),
        "trainer_iterations": int(result.iterations),
        "seconds": seconds,
        "env_steps_per_s": result.env_steps / seconds if seconds > 0 else None,
    }


def run(
    env_id: str,
    env_steps: int,
    threads: int = 0,
    trainers: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure every trainer in ``trainers`` (default :func:`rl_trainers`) one after another."""
    names = list(trainers) if trainers is not None else rl_trainers()
    threads = threads or available_cores()
    rows = []
    log(f"trainer throughput on {env_id}: {env_steps:,} env steps each, {threads} torch threads")
    for name in names:
        # An untimed short run first: the modules a trainer imports on its first call (torch's
        # optimizers and autograd internals, stable-baselines3's) are loaded once per process,
        # and would otherwise be charged to whichever trainer happens to run first.
        measure(name, env_id, min(env_steps, WARMUP_ENV_STEPS), threads)
        row = measure(name, env_id, env_steps, threads)
        rows.append(row)
        log(f"  {name:<8} {row['env_steps_per_s']:>9,.0f} env steps/s  ({row['env_steps']:,} env steps, "
            f"{row['trainer_iterations']:,} iterations, {row['seconds']:.1f} s)")  # fmt: skip
    return {
        "config": {"env_id": env_id, "env_steps": env_steps, "threads": threads, "preset": "per (algorithm, env)"},
        "rows": rows,
    }


def to_markdown(result: dict[str, Any]) -> str:
    """The trainer rows as a markdown table."""
    c = result["config"]
    lines = [
        f"# Trainer throughput: {c['env_id']}, {c['env_steps']:,} env steps each, {c['threads']} torch threads",
        "",
        "Each trainer's preset for the env, one after another in one process. Env steps per second "
        "of the whole training call (start-up, training, a one-level final evaluation). An iteration "
        "is one pass of each trainer's loop (PPO: rollout and update; GRPO: groups and update; DQN "
        "and stable-baselines3: one vector-env step).",
        "",
        "| trainer | env steps/s | env steps | iterations | seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        rate = "n/a" if r["env_steps_per_s"] is None else f"{r['env_steps_per_s']:,.0f}"
        lines.append(f"| {r['algo']} | {rate} | {r['env_steps']:,} | {r.get('trainer_iterations', r.get('trainer_steps', 0)):,} | {r['seconds']:.1f} |")
    return "\n".join(lines) + "\n"
