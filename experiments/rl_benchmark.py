"""Reinforcement-learning targets, measured: ``python -m experiments.rl_benchmark [--only NAME ...]``.

Each entry of :data:`RUNS` is one plain command (``penguin train --algo <algo> ...``) run
for seeds 0 and 1 in its own process, one after the other (never two trainings at once), under
``/usr/bin/time -v``. From each run's ``eval.csv`` it records greedy and sampled held-out
success and SPL, env steps and wall time to 90% greedy success, peak resident memory, and the
learning curve. Writes ``rl_benchmark.json``, ``.md`` and ``.png`` (greedy success vs env steps
and vs wall time) to ``--out`` (default ``results/``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from experiments.machine import describe
from experiments.timed_run import TimedRun, run_timed


def flags(settings: dict[str, Any]) -> list[str]:
    """Command-line flags (``--field-name value``) for config fields."""
    out: list[str] = []
    for key, value in settings.items():
        name = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            out.append(name if value else "--no-" + key.replace("_", "-"))
        else:
            out += [name, str(value)]
    return out


#: name -> (algorithm, flags, target greedy success, minutes allowed). The plain commands take
#: the rest of their settings from ``experiments/hyperparams/<algo>.yml``.
RUNS: dict[str, tuple[str, list[str], float, float]] = {
    "ppo-bare": ("ppo", ["--env", "Penguin-Bare-v0", "--time-limit", "15"], 0.95, 15.0),
    "grpo-bare": ("grpo", ["--env", "Penguin-Bare-v0", "--time-limit", "20"], 0.90, 20.0),
    # The same task seen from the penguin (``view="ego"``: a window centred on it, heading up),
    # where "the gold is ahead" is a fixed place in the image instead of a relation to learn.
    "grpo-bare-ego": ("grpo", ["--env", "Penguin-Bare-v0", "--env-kwargs", "view=ego", "--curriculum",
                               "--time-limit", "20", "--total-env-steps", "5000000"], 0.90, 20.0),
    "ppo-gold": ("ppo", ["--env", "Penguin-Gold-v0", "--time-limit", "30"], 0.90, 30.0),
}


def kept_rows(report: Path, redone: set[tuple[str, int]]) -> list[dict]:
    """The rows of an earlier report (``--merge``) that this run does not redo, each with the
    machine and date it was measured on (taken from the report's header where a row lacks them)."""
    if not report.exists():
        return []
    saved = json.loads(report.read_text())
    meta = saved.get("meta", {})
    return [
        {"machine": meta.get("machine", "unknown"), "date": meta.get("date", "unknown"), **r}
        for r in saved["results"] if (r["name"], r["seed"]) not in redone
    ]


def measured_on() -> dict[str, str]:
    """``{"machine": ..., "date": ...}`` of a run measured now (recorded in its row)."""
    return {"machine": describe(), "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")}


def first_reaching(curve: list[dict], level: float) -> dict | None:
    """The first evaluation row of ``curve`` whose greedy success is at least ``level`` (None if none is)."""
    return next((row for row in curve if row["success_rate"] >= level), None)


def run_name(name: str, seed: int) -> str:
    """The run directory's name for benchmark entry ``name`` and ``seed``."""
    return f"{name}-s{seed}"


def run_path(runs_dir: Path, algo: str, flags: list[str], name: str, seed: int) -> Path:
    """Where ``penguin train`` writes the run of benchmark entry ``name`` for ``seed``:
    ``runs_dir/<env>/<algo>/NAME-sSEED``."""
    env_id = flags[flags.index("--env") + 1]
    return runs_dir / env_id / algo / run_name(name, seed)


def run_plain_command(
    name: str, algo: str, flags: list[str], seed: int, runs_dir: Path, extra: list[str]
) -> tuple[list[str], TimedRun]:
    """Run ``penguin train --algo ALGO FLAGS --seed SEED`` as :func:`run_path` (a fresh
    directory) in its own process under ``/usr/bin/time -v``; the command and its result."""
    path = run_path(runs_dir, algo, flags, name, seed)
    shutil.rmtree(path, ignore_errors=True)
    command = [sys.executable, "-m", "experiments.cli", "train", "--algo", algo, *flags, "--seed", str(seed),
               "--runs-dir", str(runs_dir), "--run-name", path.name, "--no-progress", *extra]
    return command, run_timed(command, path.parent, path.name)


def result_row(
    name: str, algo: str, seed: int, command: list[str], run: TimedRun, target: float | None, minutes: float
) -> dict[str, Any]:
    """A report row for one run: final greedy and sampled held-out success and SPL, env steps,
    wall time and env steps to 90% greedy success, peak memory, whether ``target`` (greedy
    success within ``minutes``, two minutes' grace for start-up and the final evaluation) was
    met, the learning curve, and the machine and date."""
    final, reached = run.curve[-1], first_reaching(run.curve, 0.9)
    return {
        "name": name, "algo": algo, "seed": seed, "command": " ".join(command[1:]),
        "greedy_success": final["success_rate"], "greedy_spl": final["spl"],
        "sampled_success": final["sampled_success_rate"], "sampled_spl": final["sampled_spl"],
        "env_steps": int(final["env_steps"]), "wall_time_s": run.wall_time_s,
        "env_steps_to_90": int(reached["env_steps"]) if reached else None,
        "minutes_to_90": reached["wall_time"] / 60 if reached else None,
        "peak_rss_gb": run.peak_rss_gb,
        "target": target, "minutes_allowed": minutes,
        "met": None if target is None else bool(
            final["success_rate"] >= target and run.wall_time_s <= 60 * (minutes + 2)),
        "curve": run.curve,
        **measured_on(),
    }


def run_one(name: str, seed: int, runs_dir: Path, extra: list[str]) -> dict[str, Any]:
    """Run :data:`RUNS` entry ``name`` for ``seed`` and return its report row."""
    algo, flags, target, minutes = RUNS[name]
    command, run = run_plain_command(name, algo, flags, seed, runs_dir, extra)
    return result_row(name, algo, seed, command, run, target, minutes)


def legend_beside(ax: Any) -> None:
    """The axis's legend to its right, outside the plot, in as many columns as keep it about as
    tall as the plot (a benchmark's report may hold twenty runs; inside, they hide the curves).
    Save the figure with ``bbox_inches="tight"`` so the legend is not cut off."""
    entries = len(ax.get_legend_handles_labels()[1])
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              ncol=max(1, -(-entries // 18)))


def plot_curves(rows: list[dict], path: Path) -> None:
    """Greedy held-out success vs env steps and vs wall time, one line per run (``rows[i]["curve"]``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    # One colour per run name and one line style per seed, so more runs than a colour cycle
    # holds stay apart and a run's seeds read as one family.
    names = list(dict.fromkeys(r["name"] for r in rows))
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    styles = ["-", "--", ":", "-."]
    for r in rows:
        label = f"{r['name']} s{r['seed']}"
        look = {"color": colours(names.index(r["name"])), "linestyle": styles[r["seed"] % len(styles)],
                "marker": ".", "label": label}
        axes[0].plot([c["env_steps"] for c in r["curve"]], [c["success_rate"] for c in r["curve"]], **look)
        axes[1].plot([c["wall_time"] / 60 for c in r["curve"]], [c["success_rate"] for c in r["curve"]], **look)
    axes[0].set_xlabel("env steps")
    axes[1].set_xlabel("wall time (minutes)")
    for ax in axes:
        ax.set_ylabel("held-out greedy success")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    legend_beside(axes[1])
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_report(rows: list[dict], out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "rl_benchmark.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    lines = [
        "# Reinforcement-learning benchmark", "",
        f"`python -m experiments.rl_benchmark`; last run on {meta['machine']}, {meta['date']}; each row names "
        "its own machine and date. 500 held-out levels, test phrasings; from scratch (reward only, no "
        "checkpoint, no solver labels).", "",
        "| run | seed | greedy success (SPL) | sampled success | target | env steps | wall time | to 90% (env steps / min) | peak memory | machine, date |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        to90 = f"{r['env_steps_to_90']:,} / {r['minutes_to_90']:.1f}" if r["env_steps_to_90"] else "not reached"
        peak = f"{r['peak_rss_gb']:.2f} GB" if r["peak_rss_gb"] else "n/a"
        lines.append(
            f"| {r['name']} | {r['seed']} | {r['greedy_success']:.1%} ({r['greedy_spl']:.3f}) | {r['sampled_success']:.1%} "
            f"| {r['target']:.0%} in {r['minutes_allowed']:.0f} min: {'met' if r['met'] else 'NOT met'} "
            f"| {r['env_steps']:,} | {r['wall_time_s'] / 60:.1f} min | {to90} | {peak} | {r['machine']}, {r['date']} |"
        )
    lines += ["", "![learning curves](rl_benchmark.png)"]
    (out / "rl_benchmark.md").write_text("\n".join(lines) + "\n")
    plot_curves(rows, out / "rl_benchmark.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--merge", action="store_true", help="keep other rows of an existing report")
    args, extra = parser.parse_known_args(argv)
    redone = {(n, s) for n in args.only for s in args.seeds}
    rows = kept_rows(args.out / "rl_benchmark.json", redone) if args.merge else []
    meta = measured_on()
    for name in args.only:
        for seed in args.seeds:
            row = run_one(name, seed, args.runs_dir, extra)
            print(f"{name} seed {seed}: greedy {row['greedy_success']:.1%}, sampled {row['sampled_success']:.1%}, "
                  f"{row['env_steps']:,} env steps, {row['wall_time_s'] / 60:.1f} min", flush=True)
            rows.append(row)
            write_report(rows, args.out, meta)


if __name__ == "__main__":
    main()
