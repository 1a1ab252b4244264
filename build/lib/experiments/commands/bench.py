"""``penguin bench``: env throughput and trainer throughput, in one run, to markdown and JSON.

Usage::

    penguin bench                       # results/bench.md and results/bench.json
    penguin bench --quick --out /tmp/b  # a smoke-sized run (seconds, not minutes)
    penguin bench --trainers ppo,sb3-ppo --trainer-steps 50000

The env table is :mod:`experiments.bench`'s (single env, Gymnasium vector envs, the native
vector env, MiniGrid when installed); the trainer table is :mod:`experiments.bench_trainers`'s
(every registered reinforcement-learning trainer, same env, same threads, one after another).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import tyro

import penguin_env
from experiments.commands.flags import parse
from experiments.errors import UsageError

PROG = "penguin bench"


@dataclass
class BenchFlags:
    """What to time, and where to write it."""

    env: str = "Penguin-Gold-v0"
    """The env id."""
    out: Path = Path("results")
    """Folder of bench.md and bench.json."""
    quick: bool = False
    """Smoke-sized: short timings, fewer env sizes, 1,024 env steps per trainer."""
    trainers: Annotated[str | None, tyro.conf.arg(help_behavior_hint="(default: every reinforcement-learning trainer)")] = None
    """Comma-separated trainers to time; none skips them."""
    trainer_steps: Annotated[int | None, tyro.conf.arg(help_behavior_hint="(default: 50,000; 1,024 with --quick)")] = None
    """Env steps of each trainer's timed run."""
    threads: int = 0
    """Torch threads of every trainer (0: every core this process may use)."""
    seconds: Annotated[float | None, tyro.conf.arg(help_behavior_hint="(default: 1; 0.05 with --quick)")] = None
    """Seconds per env timing."""
    repeats: Annotated[int | None, tyro.conf.arg(help_behavior_hint="(default: 3; 1 with --quick)")] = None
    """Timed runs per env figure, the best kept."""


def _trainers(text: str | None) -> list[str]:
    from experiments.bench_trainers import rl_trainers

    available = rl_trainers()
    if text is None:
        return available
    if text.strip().lower() == "none":
        return []
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(f"unknown or non-RL trainer(s) {unknown}; choose from {available} (or none)")
    return names


def main(argv: list[str]) -> int:
    """``penguin bench [flags]``."""
    description = ("Env steps per second of the env (single, Gymnasium vector envs, native vector env, MiniGrid if "
                   "installed) and of each reinforcement-learning trainer (ours and stable-baselines3's, same env "
                   "and threads), written as bench.md and bench.json.")
    try:
        args, _ = parse(BenchFlags, argv, PROG, description)
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return 0
        raise
    if args.env not in penguin_env.ENV_IDS:
        raise UsageError(f"unknown env id {args.env!r}; choose from {list(penguin_env.ENV_IDS)}")
    seconds = args.seconds if args.seconds is not None else (0.05 if args.quick else 1.0)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    steps = args.trainer_steps if args.trainer_steps is not None else (1024 if args.quick else 50_000)
    if seconds <= 0 or repeats < 1 or steps < 1 or args.threads < 0:
        raise UsageError("--seconds must be > 0, --repeats and --trainer-steps >= 1, --threads >= 0")
    trainers = _trainers(args.trainers)

    from experiments import bench, bench_trainers

    sizes = bench.QUICK_SIZES if args.quick else bench.NATIVE_SIZES
    env_result = bench.run(args.env, seconds, repeats, sizes=sizes)
    env_result["config"]["quick"] = bool(args.quick)
    trainer_result = bench_trainers.run(args.env, steps, args.threads, trainers) if trainers else None
    table = bench.to_markdown(env_result)
    if trainer_result is not None:
        table += "\n" + bench_trainers.to_markdown(trainer_result)
    print()
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    out = {"machine": env_result["machine"], "env": env_result, "trainers": trainer_result}
    (args.out / "bench.json").write_text(json.dumps(out, indent=2) + "\n")
    (args.out / "bench.md").write_text(table)
    print(f"wrote {args.out / 'bench.md'} and {args.out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
