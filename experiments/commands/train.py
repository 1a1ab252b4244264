"""``penguin train``: train one algorithm on one env and report its held-out success.

Usage::

    penguin train --algo ppo --env Penguin-Bare-v0                   # the preset for (ppo, Bare)
    penguin train --algo bc --env Penguin-Gold-v0 --budget 5m --seed 1
    penguin train --algo ppo --env Penguin-Gold-v0 --init-from runs/.../final.pt --learning-rate 3e-4
    penguin train --algo grpo --config grpo.yaml --group-size 8    # file first, flags override
    penguin train --algo ppo --help                                 # every field of PPO's config

Settings are resolved in this order, later ones winning: the algorithm's settings file for the
env (``experiments/hyperparams/<algo>.yml``, with ``--recipe``'s on top), the ``--config``
file, the budget (``--budget``/``--env-steps``), then the config flags. The run goes to ``<runs-dir>/<env>/<algo>/<run-name>/`` with
``config.json`` (the resolved config), TensorBoard events, ``eval.csv`` and
``checkpoints/{last,best,final}.pt``.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from pathlib import Path
from typing import Any

from algorithms import registry
from algorithms.config import TrainerConfig
from experiments.commands.flags import ArgumentParser, parse_config, parse_env_kwargs
from experiments.errors import UsageError, user_input
from experiments.presets import Budget, budget_fields, build_config, load_config_file, parse_budget

PROG = "penguin train"

#: The flags of ``penguin train`` itself; every other flag is a field of the algorithm's config.
OWN_FLAGS = """\
flags of penguin train (before or after the config fields):
  --algo NAME           algorithm: {algos}
  --env ID              env id (also --env-id; default: the algorithm's default env)
  --budget 10m          wall-time budget (90s, 10m, 1.5h)   | at most one of the two;
  --env-steps N         env-step budget (BC: labelled steps) | default: the preset's budget
  --recipe NAME         a named recipe of the algorithm's settings file (e.g. finetune)
  --config FILE         YAML or TOML file of config fields (network under `policy:`), read
                        first: flags override it
  --env-kwargs K=V ...  env keyword arguments (size=6 image_size=96 ...)
  --runs-dir DIR        root of the run directories (default: runs); a run goes to
                        DIR/<env>/<algo>/<run-name>
  --seed S, --init-from CKPT, --run-name NAME, --resume, --policy.hidden 64, ...:
                        fields of the algorithm's config (`penguin train --algo NAME --help`)"""


def _pre_parser() -> ArgumentParser:
    """The flags that choose the config class and its defaults (everything else goes to tyro)."""
    p = ArgumentParser(prog=PROG, add_help=False, allow_abbrev=False)
    p.add_argument("--algo")
    p.add_argument("--env", "--env-id", dest="env")
    p.add_argument("--budget")
    p.add_argument("--env-steps", type=int)
    p.add_argument("--recipe")
    p.add_argument("--config", type=Path)
    p.add_argument("--env-kwargs", nargs="+")
    p.add_argument("--runs-dir", type=Path)
    return p


def usage() -> str:
    """Help of ``penguin train`` before an algorithm is chosen."""
    first = (__doc__ or "").split("\n\n", 1)[0]
    return f"{first}\n\n{OWN_FLAGS.format(algos=', '.join(registry.ALGORITHMS))}\n"


def _fields(config: TrainerConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def resolve(argv: list[str]) -> TrainerConfig:
    """The config that ``penguin train argv`` runs (printing help and exiting on ``--help``);
    see :func:`resolve_algo`."""
    return resolve_algo(argv)[1]


def resolve_algo(argv: list[str]) -> tuple[str, TrainerConfig]:
    """``(algorithm, config)`` that ``penguin train argv`` runs (printing help and exiting on
    ``--help``).

    Args:
        argv: the command line after ``penguin train``.

    Raises:
        UsageError: unknown algorithm, env or field, malformed budget, bad file or value.
    """
    pre = _pre_parser()
    known, rest = pre.parse_known_args(argv)
    wants_help = any(a in ("-h", "--help") for a in rest)
    if known.algo is None:
        if wants_help:
            print(usage())
            raise SystemExit(0)
        raise UsageError(f"name an algorithm with --algo, one of {list(registry.ALGORITHMS)}")
    with user_input():
        config_class, _ = registry.get(known.algo)
    if known.budget is not None and known.env_steps is not None:
        raise UsageError("give one budget: --budget (wall time) or --env-steps, not both")
    budget: Budget | None = None
    if known.budget is not None:
        budget = parse_budget(known.budget)
    elif known.env_steps is not None:
        budget = Budget(env_steps=known.env_steps)

    with user_input():
        file_fields = load_config_file(known.config, config_class) if known.config else {}
    policy_fields = file_fields.pop("policy", None)
    root = known.runs_dir or Path(file_fields.pop("runs_dir", "runs"))
    file_fields.pop("runs_dir", None)
    env_id = known.env or file_fields.pop("env_id", None) or config_class.env_id
    file_fields.pop("env_id", None)
    if known.env_kwargs:
        file_fields["env_kwargs"] = {**file_fields.get("env_kwargs", {}), **parse_env_kwargs(known.env_kwargs)}

    with user_input():
        base = build_config(known.algo, env_id, overrides=file_fields, recipe=known.recipe)
        if policy_fields:
            base = dataclasses.replace(base, policy=dataclasses.replace(base.policy, **policy_fields))
        if budget is not None:
            base = dataclasses.replace(base, **budget_fields(config_class, budget, _fields(base)))
    description = (
        f"Train {known.algo} on {env_id}. Defaults shown are the preset for this env "
        f"(plus --config and budget).\n\n{OWN_FLAGS.format(algos=', '.join(registry.ALGORITHMS))}"
    )
    config = parse_config(config_class, base, rest, f"{PROG} --algo {known.algo}", description)
    runs_dir = root / config.env_id / known.algo
    run_name = config.run_name or f"seed{config.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    with user_input():
        config = dataclasses.replace(config, runs_dir=str(runs_dir), run_name=run_name)
    path = runs_dir / run_name
    if not config.resume and ((path / "eval.csv").exists() or (path / "checkpoints" / "last.pt").exists()):
        raise UsageError(
            f"{path} already holds a run; add --resume to continue it or choose another --run-name"
        )
    return known.algo, config


def run(argv: list[str]) -> int:
    """Resolve the config, train, and print the held-out result; returns the exit status."""
    try:
        algo, config = resolve_algo(argv)
    except SystemExit as exit_:  # --help
        if exit_.code in (0, None):
            return 0
        raise
    path = Path(config.runs_dir) / str(config.run_name)
    print(f"TensorBoard logs: {path}   (tensorboard --logdir {path})", flush=True)
    _, train = registry.get(algo)
    result = train(config)
    if result.interrupted:
        print(
            f"interrupted after {result.iterations} iterations; continue with the same command and "
            f"--run-name {config.run_name} --resume"
        )
        return 128 + int(result.stop_signal or signal.SIGINT)  # 130 after Ctrl-C, 143 after SIGTERM
    print(result.summary())
    print(f"run directory: {result.run_dir}   checkpoint: {result.run_dir / 'checkpoints' / 'final.pt'}")
    return 0


def main(argv: list[str]) -> int:
    """``penguin train [flags]``."""
    return run(list(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
