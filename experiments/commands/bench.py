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

import argparse
import json
import sys
from pathlib import Path

import penguin_env
from experiments.commands.flags import ArgumentParser, parse_args
from experiments.errors import UsageError

PROG = "penguin bench"


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog=PROG,
        description="Env steps per second of the env (single, Gymnasium vector envs, native vector "
        "env, MiniGrid if installed) and of each reinforcement-learning trainer (ours and "
        "stable-baselines3's, same env and threads), written as bench.md and bench.json.",
    )
    p.add_argument("--env", default="Penguin-Gold-v0", help=f"env id, one of {list(penguin_env.ENV_IDS)} (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("results"), help="output directory (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="smoke-sized: short timings, fewer env sizes, 1,024 env steps per trainer")
    p.add_argument("--trainers", help="comma-separated trainers to time (default: every registered RL trainer); 'none' skips them")
    p.add_argument("--trainer-steps", type=int, default=None, help="env steps per trainer run (default: 50,000, past DQN's learning_starts; quick: 1,024)")
    p.add_argument("--threads", type=int, default=0, help="torch threads for every trainer (default: every core this process may use)")
    p.add_argument("--seconds", type=float, default=None, help="seconds per env timing (default 1.0; quick 0.05)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per env figure, best kept (default 3; quick 1)")
    return p


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
    args = parse_args(build_parser(), argv)
    if args is None:
        return 0
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
