"""Train any registered algorithm and report its held-out success.

Usage::

    python -m experiments.train ppo --env-id Penguin-Bare-v0 --curriculum
    python -m experiments.train grpo --env-id Penguin-Bare-v0 --group-size 8
    python -m experiments.train ppo --env-id Penguin-Gold-v0 --init-from runs/bc-.../checkpoints/final.pt
    python -m experiments.train bc --env-id Penguin-Gold-v0     # same as experiments.train_bc

The first argument names the trainer (``algorithms.registry.ALGORITHMS``); every field of its
config dataclass is a flag (``--help`` after the name lists them with their docstrings).
"""

from __future__ import annotations

import sys

import tyro

from algorithms import registry


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        print(f"error: name an algorithm first, one of {list(registry.ALGORITHMS)}", file=sys.stderr)
        raise SystemExit(2)
    algo, rest = argv[0], argv[1:]
    try:
        config_class, train = registry.get(algo)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    config = tyro.cli(config_class, args=rest, prog=f"python -m experiments.train {algo}")
    result = train(config)
    if result.interrupted:
        print(f"interrupted at step {result.steps}; continue with the same flags and "
              f"--run-name {result.run_dir.name} --resume")
        return
    print(result.summary())
    print(f"run directory {result.run_dir}")


if __name__ == "__main__":
    main()
