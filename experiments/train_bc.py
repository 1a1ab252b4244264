"""Train a policy by behaviour cloning from the solver (+ DAgger) and report held-out success.

Usage::

    python -m experiments.train_bc                                  # Penguin-Gold-v0, a few minutes
    python -m experiments.train_bc --env Penguin-Bare-v0 --total-steps 2000
    python -m experiments.train_bc --env Penguin-Lang-v0 --run-name lang1
    python -m experiments.train_bc --run-name lang1 --resume         # continue after Ctrl-C

Every ``BCConfig`` field is a flag (``--dagger-rounds``, ``--label-smoothing``, ...); the
network's fields are ``--policy.<field>`` (e.g. ``--policy.fusion concat``). The run goes to
``runs/<name>/``: config.json, TensorBoard events, eval.csv, checkpoints/{last,best,final}.pt.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import textwrap
from typing import Any

import torch

from agents import PolicyConfig
from algorithms.bc import BCConfig, train_bc


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (what ``--help`` shows)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
        ):
            docs[node.target.id] = " ".join(str(after.value.value).split())  # type: ignore[attr-defined]
    return docs


def _parse_value(text: str, default: Any) -> Any:
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
        raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")
    if isinstance(default, int):
        return int(text.replace("_", ""))
    if isinstance(default, float):
        return float(text)
    if isinstance(default, dict):
        return json.loads(text)
    if default is None:
        return None if text.lower() == "none" else text
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.train_bc",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--env", dest="env_id", default=BCConfig.env_id, help="registered Penguin env id"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    docs = field_docs(BCConfig)
    defaults = BCConfig()
    for f in dataclasses.fields(BCConfig):
        if f.name in ("env_id", "policy"):
            continue
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=docs.get(f.name),
            )
        else:
            parser.add_argument(
                flag,
                dest=f.name,
                default=default,
                help=docs.get(f.name) + (" (JSON)" if isinstance(default, dict) else ""),
                type=lambda text, d=default: _parse_value(text, d),
            )
    policy_docs = field_docs(PolicyConfig)
    for f in dataclasses.fields(PolicyConfig):
        default = getattr(PolicyConfig(), f.name)
        parser.add_argument(
            f"--policy.{f.name}",
            dest=f"policy.{f.name}",
            default=default,
            help=policy_docs.get(f.name),
            type=lambda text, d=default: _parse_value(text, d),
        )
    return parser


def config_from_args(args: argparse.Namespace) -> BCConfig:
    values = vars(args)
    policy = PolicyConfig(
        **{f.name: values[f"policy.{f.name}"] for f in dataclasses.fields(PolicyConfig)}
    )
    kwargs = {f.name: values[f.name] for f in dataclasses.fields(BCConfig) if f.name != "policy"}
    return BCConfig(**kwargs, policy=policy)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    config = config_from_args(args)
    result = train_bc(config)
    if result.interrupted:
        print(
            f"interrupted at step {result.steps}; resume with --run-name {result.run_dir.name} --resume"
        )
        return
    final = result.final_eval
    print(
        f"{config.env_id}: held-out success {final.success_rate:.1%}, SPL {final.spl:.3f}, "
        f"mean return {final.mean_return:.2f}, mean length {final.mean_length:.1f} "
        f"({final.num_episodes} levels from id {config.heldout_start_level}, {config.eval_paraphrases} paraphrases, "
        f"{'greedy' if config.eval_deterministic else 'sampled'} actions)"
    )
    print(
        f"{result.steps} gradient steps on {result.data_steps} labelled steps in {result.wall_time / 60:.1f} min; "
        f"checkpoint {result.run_dir / 'checkpoints' / 'final.pt'}"
    )


if __name__ == "__main__":
    main()
