"""Train a policy by behaviour cloning from the solver (+ DAgger) and report held-out success.

Usage::

    python -m experiments.train_bc                                  # Penguin-Gold-v0, a few minutes
    python -m experiments.train_bc --env Penguin-Bare-v0
    python -m experiments.train_bc --env Penguin-Lang-v0 --run-name lang1
    python -m experiments.train_bc --env Penguin-Lang-v0 --run-name lang1 --resume   # after Ctrl-C

``--env`` picks the env and its preset (``BCConfig.for_env``); every ``BCConfig`` field is a
flag (``--total-steps``, ``--dagger-rounds``, ...), the network's fields are
``--policy.<field>`` (e.g. ``--policy.fusion concat``). ``--help`` lists them all. The run goes
to ``runs/<name>/``: config.json, TensorBoard events, eval.csv, checkpoints/{last,best,final}.pt.
"""

from __future__ import annotations

import argparse
import resource
import sys

import tyro

from algorithms.bc import BCConfig, train


def parse(argv: list[str] | None) -> BCConfig:
    """``--env`` first (it chooses the defaults), then every config field through tyro."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env", default="Penguin-Gold-v0")
    known, rest = pre.parse_known_args(argv)
    try:
        defaults = BCConfig.for_env(known.env)
    except (ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        return tyro.cli(
            BCConfig, default=defaults, args=rest, prog="python -m experiments.train_bc",
            description=__doc__.split("\n\n")[0],
        )
    except (ValueError, TypeError, FileNotFoundError) as err:  # the config's own validation
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> None:
    config = parse(argv)
    result = train(config)
    if result.interrupted:
        print(f"interrupted at step {result.steps}; resume with --env {config.env_id} "
              f"--run-name {result.run_dir.name} --resume")
        return
    g, s = result.final_eval, result.final_eval_sampled
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"{config.env_id}: held-out success {g.success_rate:.1%} greedy (SPL {g.spl:.3f}, mean return "
        f"{g.mean_return:.2f}, mean length {g.mean_length:.1f}), {s.success_rate:.1%} sampled "
        f"({g.num_episodes} levels from id {config.heldout_start_level}, {config.eval_paraphrases} paraphrases)"
    )
    print(
        f"{result.steps} gradient steps on {result.env_steps} labelled steps in {result.wall_time / 60:.1f} min, "
        f"peak memory {peak_gb:.1f} GB; checkpoint {result.run_dir / 'checkpoints' / 'final.pt'}"
    )


if __name__ == "__main__":
    main()
