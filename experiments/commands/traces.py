"""``penguin traces``: solver-trace datasets (:mod:`fake_traces`).

Usage::

    penguin traces generate gold.h5 --env Penguin-Gold-v0 --episodes 1000 --epsilon 0.1
    penguin traces verify gold.h5        # replay every episode and compare everything stored
    penguin traces info gold.h5 [--json]

``verify`` exits with status 0 when the file checks out and 1 (with the first difference) when it
does not; a file that is missing exits with 2, like every bad argument.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

import penguin_env
from experiments.commands.flags import ArgumentParser, parse_args, parse_env_kwargs
from experiments.errors import UsageError, user_input

PROG = "penguin traces"


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Generate, verify or describe solver-trace datasets (one HDF5 file each).")
    sub = p.add_subparsers(dest="action", metavar="{generate,verify,info}")
    sub.required = True
    gen = sub.add_parser(
        "generate",
        help="play the exact solver on seeded levels and write a trace file",
        description="Play the exact solver on seeded levels (optionally with random detours it "
        "recovers from) and write observations, solver labels, actions, rewards and states to "
        "one HDF5 file (written to a temporary name, then renamed).",
    )
    gen.add_argument("out", type=Path, help="the .h5 file to write (replaced if it exists)")
    gen.add_argument("--env", default="Penguin-Gold-v0", help=f"env id, one of {list(penguin_env.ENV_IDS)} (default: %(default)s)")
    gen.add_argument("--episodes", type=int, default=1000, help="episodes to play (default: %(default)s)")
    gen.add_argument("--seed", type=int, default=0, help="base seed; the same seed gives the same file (default: %(default)s)")
    gen.add_argument("--epsilon", type=float, default=0.1, help="probability of a random non-STOP action per step; labels stay the solver's (default: %(default)s)")
    gen.add_argument("--env-kwargs", nargs="+", metavar="K=V", help="env keyword arguments (size=6 image_size=96 ...)")
    gen.add_argument("--workers", type=int, default=1, help="worker processes; the output is the same for any number (default: %(default)s)")
    gen.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ver = sub.add_parser("verify", help="replay every episode and check everything stored", description="Load (checking format and checksums), then replay every episode from its seed and stored actions and compare images, tokens, states, labels, rewards and flags.")
    ver.add_argument("path", type=Path, help="a trace file")
    info = sub.add_parser("info", help="what a trace file holds", description="Describe a trace file: env, settings, counts, success rate, episode lengths, tasks, versions.")
    info.add_argument("path", type=Path, help="a trace file")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _generate(args: argparse.Namespace) -> int:
    import fake_traces

    if args.env not in penguin_env.ENV_IDS:
        raise UsageError(f"unknown env id {args.env!r}; choose from {list(penguin_env.ENV_IDS)}")
    if args.out.suffix not in (".h5", ".hdf5"):
        raise UsageError(f"the output file should end in .h5 or .hdf5, got {args.out.name!r}")
    with user_input():
        path = fake_traces.generate(
            args.env, args.episodes, args.seed, args.out, epsilon=args.epsilon,
            env_kwargs=parse_env_kwargs(args.env_kwargs), workers=args.workers,
            progress=not args.no_progress,
        )  # fmt: skip
    with fake_traces.load(path, checksums=False) as ds:
        print(f"wrote {path}: {ds.num_episodes:,} episodes, {ds.num_steps:,} steps of {args.env} "
              f"({path.stat().st_size / 1e6:.1f} MB)")  # fmt: skip
    return 0


def _verify(args: argparse.Namespace) -> int:
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


def _info(args: argparse.Namespace) -> int:
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
    args = parse_args(build_parser(), argv)
    if args is None:
        return 0
    return {"generate": _generate, "verify": _verify, "info": _info}[args.action](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
