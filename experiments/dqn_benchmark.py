"""Double DQN targets, measured: ``python -m experiments.dqn_benchmark [--only NAME ...] [--seeds ...]``.

Each entry of :data:`RUNS` is one plain command (``penguin train --algo <algo> ...``) run
per seed in its own process, one after the other (never two trainings at once), under
``/usr/bin/time -v``. ``sb3-dqn-bare`` is stable-baselines3's DQN with our features extractor on
the same env, budget, time limit, core count and replay ratio (samples trained per env step) as
``dqn-bare``. From each run it records greedy and sampled held-out success and SPL, env steps,
env steps per second, minutes to 90% greedy success, peak resident memory, the replay buffer's
bytes per transition (ours) and the learning curve. Writes ``dqn_benchmark.json``, ``.md`` and
``.png`` (greedy success vs env steps and vs wall time) to ``--out`` (default ``results/``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from algorithms.dqn import DQNConfig
from experiments.presets import build_config
from experiments.rl_benchmark import (
    flags,
    kept_rows,
    measured_on,
    plot_curves,
    result_row,
    run_path,
    run_plain_command,
)

BARE_MINUTES, GOLD_MINUTES = 20.0, 30.0


def sb3_flags(cfg: DQNConfig) -> list[str]:
    """stable-baselines3 DQN flags that match ``cfg``: the same games, batch, replay ratio, rate,
    exploration, buffer and target period (theirs counts env steps, ours gradient steps)."""
    env_steps_per_update = cfg.train_freq * cfg.num_envs / cfg.gradient_steps
    return flags({
        "num_envs": cfg.num_envs,
        "buffer_size": cfg.buffer_size,
        "learning_starts": cfg.learning_starts,
        "batch_size": cfg.batch_size,
        "train_freq": cfg.train_freq,
        "gradient_steps": cfg.gradient_steps,
        "learning_rate": cfg.learning_rate,
        "gamma": cfg.gamma,
        "target_update_interval": int(cfg.target_update_interval * env_steps_per_update),
        "exploration_fraction": cfg.exploration_fraction,
        "exploration_initial_eps": cfg.exploration_initial_eps,
        "exploration_final_eps": cfg.exploration_final_eps,
        "max_grad_norm": cfg.max_grad_norm,
        "total_env_steps": cfg.total_env_steps,
        "eval_every": cfg.eval_every,
    })


def run_table() -> dict[str, tuple[str, list[str], float | None, float]]:
    """name -> (algorithm, flags, target greedy success or None, minutes allowed)."""
    bare = build_config("dqn", "Penguin-Bare-v0")
    assert isinstance(bare, DQNConfig)
    return {
        "dqn-bare": ("dqn", ["--env", "Penguin-Bare-v0", "--time-limit", str(BARE_MINUTES)], 0.90, BARE_MINUTES),
        "sb3-dqn-bare": ("sb3-dqn", ["--env", "Penguin-Bare-v0", "--time-limit", str(BARE_MINUTES),
                                     *sb3_flags(bare)], None, BARE_MINUTES),
        # The same task seen from the penguin (``view="ego"``), as the RL benchmark's grpo-bare-ego.
        "dqn-bare-ego": ("dqn", ["--env", "Penguin-Bare-v0", "--env-kwargs", "view=ego",
                                 "--time-limit", str(BARE_MINUTES)], 0.90, BARE_MINUTES),
        "dqn-gold": ("dqn", ["--env", "Penguin-Gold-v0", "--time-limit", str(GOLD_MINUTES)], 0.80, GOLD_MINUTES),
    }


RUNS = run_table()


def replay_ratio(config: dict[str, Any]) -> float | None:
    """Samples trained per env step from a run's config (stable-baselines3's DQN config does not
    record it): ``gradient_steps * batch_size / (train_freq * num_envs)``."""
    fields = config.get("config", config)
    try:
        return fields["gradient_steps"] * fields["batch_size"] / (fields["train_freq"] * fields["num_envs"])
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def run_one(name: str, seed: int, runs_dir: Path, extra: list[str]) -> dict[str, Any]:
    """Run :data:`RUNS` entry ``name`` for ``seed`` and return its report row (the RL benchmark's
    columns plus env steps per second, bytes per transition and replay ratio)."""
    algo, run_flags, target, minutes = RUNS[name]
    command, run = run_plain_command(name, algo, run_flags, seed, runs_dir, extra)
    row = result_row(name, algo, seed, command, run, target, minutes)
    config = json.loads((run_path(runs_dir, algo, run_flags, name, seed) / "config.json").read_text())
    return {
        **row,
        # Training throughput: env steps over the run's own wall time (evaluations included).
        "env_steps_per_s": row["env_steps"] / max(run.curve[-1]["wall_time"], 1e-9),
        "bytes_per_transition": config.get("bytes_per_transition"),
        "replay_ratio": config.get("replay_ratio") or replay_ratio(config),
    }


def write_report(rows: list[dict[str, Any]], out: Path, meta: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "dqn_benchmark.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    lines = [
        "# Double DQN benchmark", "",
        f"`python -m experiments.dqn_benchmark`; last run on {meta['machine']}, {meta['date']}; each row "
        "names its own machine and date. 500 held-out levels, test phrasings; from scratch (reward only, "
        "no checkpoint, no solver labels). Env steps/s include the periodic evaluations.", "",
        "| run | seed | greedy success (SPL) | sampled success | target | env steps | env steps/s | wall time "
        "| to 90% (min) | bytes/transition | replay ratio | peak memory | machine, date |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        target = "n/a" if r["target"] is None else (
            f"{r['target']:.0%} in {r['minutes_allowed']:.0f} min: {'met' if r['met'] else 'NOT met'}")
        to90 = f"{r['minutes_to_90']:.1f}" if r["minutes_to_90"] is not None else "not reached"
        bpt = f"{r['bytes_per_transition']:,.0f}" if r["bytes_per_transition"] else "n/a"
        ratio = f"{r['replay_ratio']:g}" if r["replay_ratio"] else "n/a"
        peak = f"{r['peak_rss_gb']:.2f} GiB" if r["peak_rss_gb"] else "n/a"
        lines.append(
            f"| {r['name']} | {r['seed']} | {r['greedy_success']:.1%} ({r['greedy_spl']:.3f}) | {r['sampled_success']:.1%} "
            f"| {target} | {r['env_steps']:,} | {r['env_steps_per_s']:,.0f} | {r['wall_time_s'] / 60:.1f} min "
            f"| {to90} | {bpt} | {ratio} | {peak} | {r['machine']}, {r['date']} |"
        )
    lines += ["", "![learning curves](dqn_benchmark.png)"]
    (out / "dqn_benchmark.md").write_text("\n".join(lines) + "\n")
    plot_curves(rows, out / "dqn_benchmark.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=["dqn-bare", "sb3-dqn-bare"], choices=list(RUNS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--merge", action="store_true", help="keep other rows of an existing report")
    args, extra = parser.parse_known_args(argv)
    redone = {(n, s) for n in args.only for s in args.seeds}
    rows = kept_rows(args.out / "dqn_benchmark.json", redone) if args.merge else []
    meta = measured_on()
    for seed in args.seeds:
        for name in args.only:
            row = run_one(name, seed, args.runs_dir, extra)
            print(f"{name} seed {seed}: greedy {row['greedy_success']:.1%}, sampled {row['sampled_success']:.1%}, "
                  f"{row['env_steps']:,} env steps, {row['env_steps_per_s']:,.0f} env steps/s, "
                  f"{row['wall_time_s'] / 60:.1f} min", flush=True)
            rows.append(row)
            write_report(rows, args.out, meta)


if __name__ == "__main__":
    main()
