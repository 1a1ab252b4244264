"""``penguin eval``: a checkpoint's success on levels it never trained on, with a confidence interval.

By default it plays the run's test levels (ids from 2,000,000): the levels nothing was tuned on,
as the benchmark tables and ``penguin compare`` report them; ``--levels validation`` plays the
levels evaluated during training (ids from 1,000,000, which chose ``best.pt``).

Usage::

    penguin eval runs/Penguin-Bare-v0/ppo/seed0-.../checkpoints/final.pt
    penguin eval CKPT --episodes 1000 --sample --json
    penguin eval CKPT --env Penguin-Gold-v0 --video first.gif

Besides the headline figures it prints success and SPL per task (collect, face, face_away,
corner) and splits each task's failures into episodes that ran to the time limit (and of those,
the ones that ended pressing into a wall) and episodes that ended early.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import tyro

from experiments.commands.flags import parse
from experiments.errors import UsageError

PROG = "penguin eval"
Z95 = 1.959963984540054  #: two-sided 95% quantile of the standard normal


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a success probability from ``successes`` out of ``n`` trials.

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0% or 100%.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # At 0 or n successes one end is exactly 0 or 1 (rounding would leave it a hair inside).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


@dataclass
class EvalFlags:
    """A checkpoint, and the levels and phrasings to evaluate it on."""

    checkpoint: tyro.conf.Positional[Annotated[str, tyro.conf.arg(metavar="CHECKPOINT")]]
    """A policy checkpoint (.pt), e.g. runs/ENV/ALGO/RUN/checkpoints/final.pt, or a shipped agent by its algorithm's name (bc, ppo, grpo, dqn) with --env."""
    env: Annotated[str | None, tyro.conf.arg(help_behavior_hint="(default: the env it was trained on)")] = None
    """The env id to evaluate on."""
    episodes: int = 500
    """Levels to play, one episode each."""
    levels: Literal["test", "validation"] = "test"
    """Test levels (ids from 2,000,000: nothing was tuned on them) or validation levels (ids from 1,000,000: evaluated during training, they chose best.pt)."""
    start_level: Annotated[int | None, tyro.conf.arg(help_behavior_hint="(default: the first of --levels)")] = None
    """First level id."""
    paraphrases: Literal["train", "test", "all"] = "test"
    """Instruction phrasings (test: never seen in training)."""
    sample: bool = False
    """Sample actions from the policy instead of taking the most likely one (greedy)."""
    seed: int = 0
    """Seed of sampled actions."""
    json: bool = False
    """Also print the results as one JSON object on the last line."""
    video: str | None = None
    """Write the first episodes as a video (OUT.gif or OUT.mp4), the instruction and the solver's path drawn on."""
    video_episodes: int = 3
    """Episodes in the video."""


def _check(args: EvalFlags) -> None:
    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    if args.video_episodes < 1:
        raise UsageError(f"--video-episodes must be >= 1, got {args.video_episodes}")
    if args.start_level is not None and args.start_level < 0:
        raise UsageError(f"--start-level must be >= 0, got {args.start_level}")


def print_by_task(by_task: dict[str, dict[str, float]]) -> None:
    """The per-task table: success, SPL, and how the failures ended (a greedy policy that runs to
    the time limit is usually looping between a few states; one that ends early chose STOP or a
    final heading wrongly; in brackets, the time-limit failures that ended pressing into a wall
    and the early ends in a corner other than the one named)."""
    print("  by task      episodes  success    SPL  failures: at time limit (pressing into a wall) / ended early (at another corner)")
    for task, row in by_task.items():
        at_limit = f"{row['failures_at_time_limit']} ({row['failures_pressing_into_a_wall']})"
        early = f"{row['failures_ended_early']}"
        if task == "corner":
            early += f" ({row['failures_at_another_corner']})"
        print(
            f"    {task:<10} {row['episodes']:>8}  {row['success_rate']:>7.1%}  {row['spl']:.3f}"
            f"  {at_limit:>32} / {early}"
        )


def main(argv: list[str]) -> int:
    """``penguin eval CKPT [flags]``."""
    description = ("Evaluate a checkpoint on levels its run never trained on (one episode per level) with "
                   "unseen instruction phrasings: the success rate with its 95% confidence interval (Wilson), "
                   "SPL, mean return and episode length, and per task how the failures ended.")
    try:
        args, _ = parse(EvalFlags, argv, PROG, description)
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return 0
        raise
    _check(args)
    from algorithms.envs import HeldOut
    from algorithms.evaluation import evaluate
    from experiments import video
    from experiments.checkpoints import load_for_env

    if args.video:
        video.check_video_path(args.video)
    loaded = load_for_env(args.checkpoint, args.env)
    start = loaded.levels[args.levels] if args.start_level is None else args.start_level
    kwargs = HeldOut(start, args.episodes, args.paraphrases).env_kwargs(loaded.env_kwargs)
    deterministic = not args.sample
    mode = "greedy" if deterministic else "sampled"
    result = evaluate(
        loaded.policy, loaded.env_id, kwargs, args.episodes, seed=args.seed, deterministic=deterministic
    )
    successes = int(result.successes.sum())
    low, high = wilson_interval(successes, result.num_episodes)
    out: dict[str, Any] = {
        "checkpoint": str(loaded.path),
        "trainer": loaded.trainer,
        "env_id": loaded.env_id,
        "env_kwargs": loaded.env_kwargs,
        "episodes": result.num_episodes,
        "start_level": start,
        "paraphrases": args.paraphrases,
        "mode": mode,
        "success": result.success_rate,
        "success_ci95": [low, high],
        "ci_method": "wilson",
        "spl": result.spl,
        "mean_return": result.mean_return,
        "mean_length": result.mean_length,
        "by_task": result.by_task(),
    }
    print(
        f"{loaded.env_id} ({loaded.trainer} checkpoint), {result.num_episodes} levels from id "
        f"{start:,}, {args.paraphrases} phrasings, {mode}"
    )
    print(f"  success      {result.success_rate:.1%}  (95% CI {low:.1%} to {high:.1%}, Wilson; {successes}/{result.num_episodes})")
    print(f"  SPL          {result.spl:.3f}")
    print(f"  mean return  {result.mean_return:.3f}")
    print(f"  mean length  {result.mean_length:.1f}")
    print_by_task(out["by_task"])
    if args.video:
        levels = [start + k for k in range(min(args.video_episodes, args.episodes))]
        frames, durations = video.record(
            loaded.policy, loaded.env_id, kwargs, levels, deterministic=deterministic, seed=args.seed
        )
        path = video.write(args.video, frames, durations)
        h, w = frames[0].shape[:2]
        out["video"] = str(path)
        print(f"  video        {path} ({len(levels)} episodes, {len(frames)} frames of {w}x{h})")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
