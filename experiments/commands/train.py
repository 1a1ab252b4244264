"""``penguin train``: train one algorithm on one env and report its success on the test levels.

Usage::

    penguin train --algo ppo --env Penguin-Bare-v0                 # its settings for Bare
    penguin train --algo bc --env Penguin-Gold-v0 --budget 5m --seed 1
    penguin train --algo ppo --env Penguin-Gold-v0 --recipe finetune --init-from runs/.../final.pt
    penguin train --algo grpo --env Penguin-Bare-v0 --config grpo.yaml --group-size 8
    penguin train --algo ppo --env Penguin-Bare-v0 --help            # every flag, with its value

Settings are resolved in this order, later ones winning: the algorithm's settings file for the
env (``experiments/hyperparams/<algo>.yml``, with ``--recipe``'s on top), the ``--config`` file,
the budget (``--budget``, ``--env-steps``), then the flags. The run goes to
``<out>/<env>/<algo>/<run-name>/`` with ``config.json`` (the resolved config), TensorBoard
events, ``eval.csv`` and ``checkpoints/{last,best,final}.pt``.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import tyro

from experiments.commands.flags import group, parse, parse_env_kwargs
from experiments.errors import UsageError, user_input

PROG = "penguin train"

#: Config fields set through the command's own flags, not as flags of their own.
OWN_FIELDS = ("env_id", "env_kwargs", "time_limit", "total_env_steps", "runs_dir", "policy")


@dataclass
class Command:
    """What to train, on which env, for how long, and where it is written."""

    algo: str = ""
    """The algorithm: bc, ppo, grpo, dqn, sb3-ppo or sb3-dqn."""
    env: str = ""
    """The env id: Penguin-Bare-v0, Penguin-Gold-v0, Penguin-Walls-v0 or Penguin-Lang-v0."""
    recipe: str | None = None
    """A named recipe of the algorithm's settings file (e.g. finetune) on top of the env's settings."""
    config: Path | None = None
    """A YAML or TOML file of config fields (the network's under policy:), read before the flags."""
    budget: str | None = None
    """Wall time to train for (90s, 10m, 1.5h), then evaluate. Default: the settings file's."""
    env_steps: int | None = None
    """Env steps to train for (behaviour cloning: labelled steps). With --budget too, whichever ends first."""
    env_kwargs: list[str] = field(default_factory=list)
    """Env keyword arguments, KEY=VALUE (size=6 image_size=96 ...)."""
    out: Path = Path("runs")
    """Folder of the runs: a run goes to OUT/ENV/ALGO/RUN-NAME."""


def _pre_parser() -> argparse.ArgumentParser:
    """The flags that choose the config class and its defaults (tyro then parses everything)."""
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--algo")
    p.add_argument("--env")
    p.add_argument("--recipe")
    p.add_argument("--config", type=Path)
    p.add_argument("--budget")
    p.add_argument("--env-steps", type=int)
    p.add_argument("--env-kwargs", nargs="+", default=[])
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.error = lambda message: (_ for _ in ()).throw(UsageError(f"{message} (`{PROG} --help` lists the flags)"))  # type: ignore[method-assign]
    return p


def usage() -> str:
    """Help of ``penguin train`` before an algorithm is chosen."""
    from algorithms import registry

    first = (__doc__ or "").split("\n\n", 1)[0]
    return (f"{first}\n\nusage: {PROG} --algo ALGO --env ENV [flags]\n\n"
            f"  --algo ALGO   one of {', '.join(registry.ALGORITHMS)}\n"
            f"  --env ENV     one of {', '.join(_env_ids())}\n\n"
            f"`{PROG} --algo ALGO --env ENV --help` lists the algorithm's flags with their settings for that env.\n")


def _env_ids() -> list[str]:
    import penguin_env

    return list(penguin_env.ENV_IDS)


def cli_class(config_class: type) -> type:
    """The flags of ``penguin train`` for ``config_class``: the command's own, then the run's
    (fields every trainer has), the algorithm's and the network's, each group in its own part of
    the help."""
    from agents import PolicyConfig
    from algorithms.config import TrainerConfig

    shared = {f.name for f in dataclasses.fields(TrainerConfig)}
    names = [f.name for f in dataclasses.fields(config_class) if f.name not in OWN_FIELDS]
    run = group("run", config_class, [n for n in names if n in shared])
    algorithm = group("algorithm", config_class, [n for n in names if n not in shared])
    policy = group("policy", PolicyConfig, [f.name for f in dataclasses.fields(PolicyConfig)])
    policy.__doc__ = "The network (agents.PolicyConfig); a warm start (--init-from) keeps its checkpoint's."
    omit = tyro.conf.OmitArgPrefixes
    return dataclasses.make_dataclass("TrainFlags", [
        ("command", Annotated[Command, omit], field(default_factory=Command)),
        ("run", Annotated[run, omit], field(default_factory=run)),
        ("algorithm", Annotated[algorithm, omit], field(default_factory=algorithm)),
        ("policy", policy, field(default_factory=policy)),
    ])


def resolve(argv: list[str]) -> Any:
    """The config that ``penguin train argv`` runs (printing help and exiting on ``--help``);
    see :func:`resolve_algo`."""
    return resolve_algo(argv)[1]


def resolve_algo(argv: list[str]) -> tuple[str, Any]:
    """``(algorithm, config)`` that ``penguin train argv`` runs (printing help and exiting on
    ``--help``).

    Raises:
        UsageError: a missing or unknown algorithm or env, an unknown flag or field, a malformed
            budget, a bad file or value.
    """
    from algorithms import registry
    from experiments.presets import (
        Budget,
        budget_fields,
        build_config,
        load_config_file,
        parse_budget,
    )

    known, _ = _pre_parser().parse_known_args(argv)
    wants_help = any(a in ("-h", "--help") for a in argv)
    if known.algo is None:
        if wants_help:
            print(usage())
            raise SystemExit(0)
        raise UsageError(f"name an algorithm with --algo, one of {list(registry.ALGORITHMS)}")
    with user_input():
        config_class, _ = registry.get(known.algo)
    if known.env is None and not wants_help:
        raise UsageError(f"name an env with --env, one of {_env_ids()}")
    env_id = known.env or config_class.env_id

    with user_input():
        file_fields = load_config_file(known.config, config_class) if known.config else {}
    policy_fields = file_fields.pop("policy", None)
    for name in ("env_id", "runs_dir"):
        file_fields.pop(name, None)
    # The env and the network are applied with the flags, after the settings file: checked
    # apart, a smaller room and the network that matches it would each look inconsistent.
    env_kwargs = file_fields.pop("env_kwargs", None)
    if known.env_kwargs:
        env_kwargs = {**(env_kwargs or {}), **parse_env_kwargs(known.env_kwargs)}
    with user_input():
        base = build_config(known.algo, env_id, overrides=file_fields, recipe=known.recipe)
        values = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
        if policy_fields:
            values["policy"] = dataclasses.replace(base.policy, **policy_fields)
        if env_kwargs is not None:
            values["env_kwargs"] = env_kwargs
        if known.env_steps is not None:
            values.update(budget_fields(config_class, Budget(env_steps=known.env_steps), values))
        if known.budget is not None:
            values["time_limit"] = parse_budget(known.budget).minutes

    flags_class = cli_class(config_class)
    fields_of = {f.name: typing.get_args(f.type)[0] if typing.get_origin(f.type) is Annotated else f.type
                 for f in dataclasses.fields(flags_class)}
    groups = {name: {f.name for f in dataclasses.fields(fields_of[name])} for name in ("run", "algorithm")}
    default = flags_class(
        command=Command(known.algo, env_id, known.recipe, known.config, known.budget, known.env_steps,
                        list(known.env_kwargs), known.out),
        run=fields_of["run"](**{k: values[k] for k in groups["run"]}),
        algorithm=fields_of["algorithm"](**{k: values[k] for k in groups["algorithm"]}),
        policy=fields_of["policy"](**dataclasses.asdict(values["policy"])),
    )
    description = (f"Train {known.algo} on {env_id}. The defaults shown are its settings for this env "
                   "(with --recipe, --config and the budget applied).")
    parsed, _ = parse(flags_class, argv, f"{PROG} --algo {known.algo}", description, default=default)
    chosen = {**values, **dataclasses.asdict(parsed.run), **dataclasses.asdict(parsed.algorithm)}
    chosen["policy"] = type(values["policy"])(**dataclasses.asdict(parsed.policy))
    runs_dir = known.out / env_id / known.algo
    chosen["runs_dir"] = str(runs_dir)
    chosen["run_name"] = chosen["run_name"] or f"seed{chosen['seed']}-{time.strftime('%Y%m%d-%H%M%S')}"
    with user_input():
        config = config_class(**chosen)
    path = runs_dir / config.run_name
    if not config.resume and ((path / "eval.csv").exists() or (path / "checkpoints" / "last.pt").exists()):
        raise UsageError(f"{path} already holds a run; add --resume to continue it or choose another --run-name")
    return known.algo, config


def run(argv: list[str]) -> int:
    """Resolve the config, train, and print the result on the test levels; returns the exit status."""
    try:
        algo, config = resolve_algo(argv)
    except SystemExit as exit_:  # --help
        if exit_.code in (0, None):
            return 0
        raise
    from algorithms import registry

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
