"""``penguin traces``: solver-trace datasets (:mod:`fake_traces`).

Usage::

    penguin traces generate gold.h5 --env Penguin-Gold-v0 --episodes 1000 --epsilon 0.1
    penguin traces verify gold.h5        # replay every episode and compare everything stored
    penguin traces info gold.h5 [--json]

``verify`` exits with status 0 when the file checks out and 1 (with the first difference) when it
does not; a file that is missing exits with 2, like every bad argument.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

import penguin_env
from experiments.commands.flags import parse, parse_env_kwargs
from experiments.errors import UsageError, user_input

PROG = "penguin traces"


@dataclass
class Generate:
    """Play the exact solver on seeded levels (optionally with random detours it recovers from) and
    write observations, solver labels, actions, rewards and states to one HDF5 file."""

    out: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="OUT.h5")]]
    """The file to write (replaced if it exists; written to a temporary name, then renamed)."""
    env: str = "Penguin-Gold-v0"
    """The env id."""
    episodes: int = 1000
    """Episodes to play."""
    seed: int = 0
    """Base seed; the same seed gives the same file."""
    epsilon: float = 0.1
    """Probability of a random non-STOP action per step; the labels stay the solver's."""
    env_kwargs: list[str] = field(default_factory=list)
    """Env keyword arguments, KEY=VALUE (size=6 image_size=96 ...)."""
    workers: int = 1
    """Worker processes; the file is the same for any number."""
    progress: bool = True
    """Show a progress bar."""


@dataclass
class Verify:
    """Load a trace file (checking its format and checksums), then replay every episode from its seed
    and stored actions and compare images, tokens, states, labels, rewards and flags."""

    path: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="FILE.h5")]]
    """A trace file."""


@dataclass
class Info:
    """Describe a trace file: env, settings, counts, success rate, episode lengths, tasks, versions."""

    path: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="FILE.h5")]]
    """A trace file."""
    json: bool = False
    """Print one JSON object."""


Action = (
    Annotated[Generate, tyro.conf.subcommand("generate")]
    | Annotated[Verify, tyro.conf.subcommand("verify")]
    | Annotated[Info, tyro.conf.subcommand("info")]
)


def _generate(args: Generate) -> int:
    import fake_traces

    if args.env not in penguin_env.ENV_IDS:
        raise UsageError(f"unknown env id {args.env!r}; choose from {list(penguin_env.ENV_IDS)}")
    if args.out.suffix not in (".h5", ".hdf5"):
        raise UsageError(f"the output file should end in .h5 or .hdf5, got {args.out.name!r}")
    with user_input():
        path = fake_traces.generate(
            args.env, args.episodes, args.seed, args.out, epsilon=args.epsilon,
            env_kwargs=parse_env_kwargs(args.env_kwargs), workers=args.workers,
            progress=args.progress,
        )  # fmt: skip
    with fake_traces.load(path, checksums=False) as ds:
        print(f"wrote {path}: {ds.num_episodes:,} episodes, {ds.num_steps:,} steps of {args.env} "
              f"({path.stat().st_size / 1e6:.1f} MB)")  # fmt: skip
    return 0


def _verify(args: Verify) -> int:
    import fake_traces

    if not args.path.is_file():
        raise UsageError(f"no trace file at {args.path}")
    try:
        with fake_traces.load(args.path) as ds:
            fake_traces.verify(ds)
            episodes, steps = ds.num_episodes, ds.num_steps
    except fake_traces.TraceFormatError as err:
        print(f"FAILED: {err}", file=sys.stderr)
        return 1
    print(f"OK: {args.path}: {episodes:,} episodes, {steps:,} steps; checksums match and every "
          "episode replays exactly")  # fmt: skip
    return 0


def describe(path: Path) -> dict[str, Any]:
    """What ``penguin traces info`` reports about a trace file (checksums not read)."""
    import fake_traces

    with user_input(), fake_traces.load(path, checksums=False) as ds:
        m = ds.manifest
        lengths, optimal = ds.episode_lengths, ds.optimal_lengths
        return {
            "path": str(path),
            "size_mb": round(path.stat().st_size / 1e6, 3),
            "format": f"{m['format']} v{m['format_version']}",
            "env_id": ds.env_id,
            "env_kwargs": ds.env_kwargs,
            "generator": m["generator"],
            "episodes": ds.num_episodes,
            "steps": ds.num_steps,
            "image_shape": list(ds.images.shape[1:]),
            "success_rate": float(np.mean(ds.successes)),
            "mean_length": float(np.mean(lengths)),
            "mean_optimal_length": float(np.mean(optimal)),
            "tasks": dict(Counter(ds.task_names())),
            "versions": m.get("versions", {}),
        }


def _info(args: Info) -> int:
    if not args.path.is_file():
        raise UsageError(f"no trace file at {args.path}")
    d = describe(args.path)
    if args.json:
        print(json.dumps(d))
        return 0
    g = d["generator"]
    print(f"{d['path']} ({d['size_mb']:.1f} MB, {d['format']})")
    print(f"  env          {d['env_id']} {d['env_kwargs'] or ''}".rstrip())
    print(f"  generator    seed {g.get('seed')}, epsilon {g.get('epsilon')}, labels: {g.get('label', 'solver')}")
    print(f"  episodes     {d['episodes']:,}  (success {d['success_rate']:.1%})")
    print(f"  steps        {d['steps']:,}  (images {'x'.join(map(str, d['image_shape']))} uint8)")
    print(f"  length       mean {d['mean_length']:.1f} steps, solver's optimal {d['mean_optimal_length']:.1f}")
    print(f"  tasks        {', '.join(f'{k} {v}' for k, v in d['tasks'].items())}")
    versions = ", ".join(f"{k} {v}" for k, v in d["versions"].items())
    print(f"  written by   {versions}")
    return 0


def main(argv: list[str]) -> int:
    """``penguin traces generate|verify|info ...``."""
    try:
        args, _ = parse(Action, argv, PROG, "Generate, verify or describe solver-trace datasets (one HDF5 file each).")  # type: ignore[arg-type]
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return 0
        raise
    if isinstance(args, Generate):
        return _generate(args)
    return _verify(args) if isinstance(args, Verify) else _info(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
