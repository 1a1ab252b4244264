"""What every algorithm reaches on every env, measured: ``python -m experiments.benchmark``.

Each entry of :data:`ENTRIES` is one plain ``penguin train --algo A --env E`` command (its
settings and budget from ``experiments/hyperparams/A.yml``, plus the entry's flags), run for
each seed in its own process under ``/usr/bin/time -v``, one after the other: never two
trainings at once. From each run it records the final greedy and sampled success and SPL on the
test levels (levels nothing was tuned on), the env steps and wall time, the env steps and
minutes to 90% and 95% greedy success on the validation levels evaluated during training, and
peak memory; per entry, the median and worst over the seeds and whether the target was met.

Writes ``benchmark.json``, ``benchmark.md`` and ``benchmark.png`` (validation success against
env steps and against wall time) to ``--out``. Re-running some entries or seeds replaces their
rows and keeps the others, each row naming the machine and date it was measured on.

Usage::

    python -m experiments.benchmark                          # every entry, seeds 0, 1, 2
    python -m experiments.benchmark --only ppo-bare grpo-bare --seeds 0
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.files import atomic_write, write_text_atomic
from experiments.machine import describe
from experiments.timed_run import run_timed

DEFAULT_SEEDS = (0, 1, 2)
LEVELS = (0.90, 0.95)  #: greedy success levels whose first crossing is reported


@dataclass(frozen=True)
class Entry:
    """One benchmarked command: ``penguin train --algo ALGO --env ENV FLAGS``."""

    algo: str
    env_id: str
    target: float | None = None
    """Greedy success on the test levels to reach (None: no target, a reference)."""
    minutes: float | None = None
    """Wall time the target allows (the settings file's budget is this time)."""
    flags: tuple[str, ...] = ()
    init_from: str | None = None
    """Another entry whose run of the same seed this one starts from (its ``final.pt``)."""
    note: str = ""

    def command(self, seed: int, runs_dir: Path, name: str, checkpoint: Path | None) -> list[str]:
        start = ["--init-from", str(checkpoint)] if checkpoint is not None else []
        return [sys.executable, "-m", "experiments.cli", "train", "--algo", self.algo, "--env", self.env_id,
                *self.flags, *start, "--seed", str(seed), "--out", str(runs_dir), "--run-name", name,
                "--no-progress"]


BARE, GOLD, WALLS, LANG = "Penguin-Bare-v0", "Penguin-Gold-v0", "Penguin-Walls-v0", "Penguin-Lang-v0"

#: name -> entry. The targets: every learner from scratch to 95% on Bare in 2 minutes (Double DQN
#: 3), PPO to 95% on Gold in 10 and the others to 90% in 15, first figures on Walls and Lang in 20.
ENTRIES: dict[str, Entry] = {
    "bc-bare": Entry("bc", BARE, 0.95, 2.0),
    "bc-gold": Entry("bc", GOLD, 0.95, 6.0),
    "bc-walls": Entry("bc", WALLS, 0.90, None),
    "bc-lang": Entry("bc", LANG, 0.90, 8.0),
    "ppo-bare": Entry("ppo", BARE, 0.95, 2.0),
    "grpo-bare": Entry("grpo", BARE, 0.95, 2.0),
    "dqn-bare": Entry("dqn", BARE, 0.95, 3.0),
    "sb3-ppo-bare": Entry("sb3-ppo", BARE, None, 2.0, ("--budget", "2m"),
                          note="stable-baselines3 PPO with our network, the same budget: the outside reference"),
    "ppo-gold": Entry("ppo", GOLD, 0.95, 10.0),
    "grpo-gold": Entry("grpo", GOLD, 0.90, 15.0),
    "dqn-gold": Entry("dqn", GOLD, 0.90, 15.0),
    "ppo-walls": Entry("ppo", WALLS, 0.90, 20.0),
    "grpo-walls": Entry("grpo", WALLS, None, 20.0),
    "dqn-walls": Entry("dqn", WALLS, None, 20.0),
    "ppo-lang": Entry("ppo", LANG, 0.90, 20.0),
    "grpo-lang": Entry("grpo", LANG, None, 20.0),
    "dqn-lang": Entry("dqn", LANG, None, 20.0),
    "ppo-finetune-gold": Entry("ppo", GOLD, None, None, ("--recipe", "finetune"), init_from="bc-gold",
                               note="from the bc-gold run of the same seed"),
    "grpo-finetune-gold": Entry("grpo", GOLD, None, None, ("--recipe", "finetune"), init_from="bc-gold",
                                note="from the bc-gold run of the same seed"),
}


def run_path(runs_dir: Path, name: str, seed: int) -> Path:
    """Where ``penguin train`` writes entry ``name``'s run for ``seed``."""
    entry = ENTRIES[name]
    return runs_dir / entry.env_id / entry.algo / f"{name}-s{seed}"


def first_reaching(curve: list[dict[str, float]], level: float) -> dict[str, float] | None:
    """The first evaluation on the validation levels with greedy success >= ``level``."""
    return next((row for row in curve if not row.get("test_levels") and row["success_rate"] >= level), None)


def measured_on() -> dict[str, str]:
    """``{"machine": ..., "date": ...}`` of a run measured now."""
    return {"machine": describe(), "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")}


def run_one(name: str, seed: int, runs_dir: Path) -> dict[str, Any]:
    """Run entry ``name`` for ``seed`` in a fresh directory; its report row."""
    entry = ENTRIES[name]
    path = run_path(runs_dir, name, seed)
    shutil.rmtree(path, ignore_errors=True)
    checkpoint = None
    if entry.init_from is not None:
        checkpoint = run_path(runs_dir, entry.init_from, seed) / "checkpoints" / "final.pt"
        if not checkpoint.is_file():
            raise SystemExit(f"{name} starts from {entry.init_from}'s seed-{seed} run: run that entry first")
    command = entry.command(seed, runs_dir, path.name, checkpoint)
    run = run_timed(command, path.parent, path.name)
    return result_row(name, seed, command, run.wall_time_s, run.peak_rss_gb, run.curve)


def result_row(
    name: str, seed: int, command: list[str], wall_time_s: float, peak_rss_gb: float | None, curve: list[dict[str, float]]
) -> dict[str, Any]:
    """One run's report row from its ``eval.csv`` rows (the last: the test levels)."""
    entry = ENTRIES[name]
    final = curve[-1]
    row: dict[str, Any] = {
        "name": name, "algo": entry.algo, "env_id": entry.env_id, "seed": seed,
        "command": " ".join(["penguin", *command[command.index("train"):]]),
        "greedy_success": final["success_rate"], "greedy_spl": final["spl"],
        "sampled_success": final["sampled_success_rate"], "sampled_spl": final["sampled_spl"],
        "env_steps": int(final["env_steps"]), "wall_time_s": wall_time_s, "peak_rss_gb": peak_rss_gb,
        "curve": curve, **measured_on(),
    }
    for level in LEVELS:
        reached = first_reaching(curve, level)
        key = f"{round(level * 100)}"
        row[f"env_steps_to_{key}"] = int(reached["env_steps"]) if reached else None
        row[f"minutes_to_{key}"] = reached["wall_time"] / 60 if reached else None
    return row


def summarise(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and worst over an entry's seeds, and whether its target was met: every seed's
    greedy test success at the target and its run within the time allowed (the final evaluation
    included, plus half a minute for interpreter start-up)."""
    entry = ENTRIES[name]
    success = [r["greedy_success"] for r in rows]
    out: dict[str, Any] = {
        "name": name, "algo": entry.algo, "env_id": entry.env_id, "seeds": [r["seed"] for r in rows],
        "target": entry.target, "minutes_allowed": entry.minutes, "note": entry.note,
        "greedy_median": statistics.median(success), "greedy_worst": min(success),
        "sampled_median": statistics.median(r["sampled_success"] for r in rows),
        "spl_median": statistics.median(r["greedy_spl"] for r in rows),
        "wall_minutes_median": statistics.median(r["wall_time_s"] / 60 for r in rows),
        "env_steps_median": statistics.median(r["env_steps"] for r in rows),
        "command": rows[0]["command"].replace(f"--seed {rows[0]['seed']}", "--seed S").split(" --out")[0],
    }
    for key in ("90", "95"):
        for what in ("minutes", "env_steps"):
            values = [r[f"{what}_to_{key}"] for r in rows]
            reached = [v for v in values if v is not None]
            out[f"{what}_to_{key}_median"] = statistics.median(values) if len(reached) == len(values) else None
            out[f"{what}_to_{key}_worst"] = max(reached) if len(reached) == len(values) else None
    if entry.target is not None:
        allowed = None if entry.minutes is None else 60 * entry.minutes + 30
        out["met"] = all(
            r["greedy_success"] >= entry.target and (allowed is None or r["wall_time_s"] <= allowed) for r in rows
        )
    return out


def report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every row, and one summary per entry (in :data:`ENTRIES` order)."""
    by_entry: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_entry.setdefault(row["name"], []).append(row)
    summaries = [summarise(name, sorted(by_entry[name], key=lambda r: r["seed"]))
                 for name in ENTRIES if name in by_entry]
    return {"entries": summaries, "results": rows}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def markdown(data: dict[str, Any]) -> str:
    """The report as Markdown: one row per entry, then one per run."""
    lines = [
        "# Benchmark", "",
        "`python -m experiments.benchmark`: each entry is the plain `penguin train` command shown, its settings and "
        "budget from `experiments/hyperparams/`, one process per seed with nothing else running. Greedy and sampled "
        "success and SPL are on 500 test levels (ids from 2,000,000, unseen phrasings), never trained or tuned on; "
        "\"to 95%\" is the first evaluation during training on the validation levels (ids from 1,000,000) at 95% "
        "greedy success or more, in wall time (evaluations included) and env steps. Median and worst over the "
        "seeds; a target is met when every seed reaches it within the time allowed.", "",
        "| entry | seeds | greedy success (median / worst) | target | to 95%: minutes (median / worst) "
        "| to 95%: env steps (median / worst) | wall time | SPL | command |",
        "|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for s in data["entries"]:
        target = "—" if s["target"] is None else (
            f"{s['target']:.0%}" + (f" in {s['minutes_allowed']:g} min" if s["minutes_allowed"] else "")
            + (": met" if s.get("met") else ": **not met**"))
        lines.append(
            f"| {s['name']} | {len(s['seeds'])} | {_pct(s['greedy_median'])} / {_pct(s['greedy_worst'])} | {target} "
            f"| {_num(s['minutes_to_95_median'], '.1f')} / {_num(s['minutes_to_95_worst'], '.1f')} "
            f"| {_num(s['env_steps_to_95_median'], ',.0f')} / {_num(s['env_steps_to_95_worst'], ',.0f')} "
            f"| {s['wall_minutes_median']:.1f} min | {s['spl_median']:.3f} | `{s['command']}` |")
    notes = [f"- {s['name']}: {s['note']}" for s in data["entries"] if s["note"]]
    if notes:
        lines += ["", *notes]
    lines += ["", "## Runs", "",
              "| entry | seed | greedy (SPL) | sampled | env steps | wall time | to 90% (min / env steps) "
              "| to 95% (min / env steps) | peak memory | machine, date |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in sorted(data["results"], key=lambda r: (list(ENTRIES).index(r["name"]) if r["name"] in ENTRIES else 99, r["seed"])):
        lines.append(
            f"| {r['name']} | {r['seed']} | {_pct(r['greedy_success'])} ({r['greedy_spl']:.3f}) | {_pct(r['sampled_success'])} "
            f"| {r['env_steps']:,} | {r['wall_time_s'] / 60:.1f} min "
            f"| {_num(r['minutes_to_90'], '.1f')} / {_num(r['env_steps_to_90'], ',.0f')} "
            f"| {_num(r['minutes_to_95'], '.1f')} / {_num(r['env_steps_to_95'], ',.0f')} "
            f"| {_num(r['peak_rss_gb'], '.2f')} GiB | {r['machine']}, {r['date']} |")
    lines += ["", "![validation success during training](benchmark.png)"]
    return "\n".join(lines) + "\n"


def plot_color(name: str) -> str:
    """The colour of entry ``name``'s curves: one per learner (the name without its env), so an
    algorithm looks the same in every env's panel."""
    learners = list(dict.fromkeys(n.rsplit("-", 1)[0] for n in ENTRIES))
    learner = name.rsplit("-", 1)[0]
    return f"C{learners.index(learner) % 10}" if learner in learners else "black"


def _steps_label(x: float, _position: object) -> str:
    """Env-step tick labels short enough not to run into each other: 250k, 1.5M."""
    return f"{x / 1e6:g}M" if abs(x) >= 1e6 else f"{x / 1e3:g}k" if x else "0"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Validation greedy success against env steps and wall time, one panel pair per env."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    envs = list(dict.fromkeys(r["env_id"] for r in rows))
    fig, axes = plt.subplots(len(envs), 2, figsize=(11, 3.4 * len(envs)), squeeze=False)
    for (ax_steps, ax_time), env_id in zip(axes, envs, strict=True):
        for r in rows:
            if r["env_id"] != env_id:
                continue
            curve = [c for c in r["curve"] if not c.get("test_levels")]
            look = {"color": plot_color(r["name"]), "linestyle": ["-", "--", ":", "-."][r["seed"] % 4],
                    "label": f"{r['name']} s{r['seed']}", "marker": "."}
            ax_steps.plot([c["env_steps"] for c in curve], [c["success_rate"] for c in curve], **look)
            ax_time.plot([c["wall_time"] / 60 for c in curve], [c["success_rate"] for c in curve], **look)
        ax_steps.set_title(env_id, fontsize=9)
        ax_steps.set_xlabel("env steps")
        ax_steps.xaxis.set_major_formatter(FuncFormatter(_steps_label))
        ax_time.set_xlabel("wall time (minutes)")
        for ax in (ax_steps, ax_time):
            ax.set_ylabel("validation greedy success")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
        ax_time.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, dpi=110, bbox_inches="tight", format="png"))
    plt.close(fig)


def write(rows: list[dict[str, Any]], out: Path) -> None:
    data = report(rows)
    write_text_atomic(out / "benchmark.json", json.dumps(data, indent=2) + "\n")
    write_text_atomic(out / "benchmark.md", markdown(data))
    plot(rows, out / "benchmark.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", default=list(ENTRIES), choices=list(ENTRIES), metavar="ENTRY",
                        help=f"entries to run (default: all): {', '.join(ENTRIES)}")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS))
    parser.add_argument("--runs-dir", type=Path, default=Path("runs") / "benchmark")
    parser.add_argument("--out", type=Path, default=Path("experiments") / "results")
    args = parser.parse_args(argv)
    saved = args.out / "benchmark.json"
    redone = {(n, s) for n in args.only for s in args.seeds}
    rows = [r for r in json.loads(saved.read_text())["results"] if (r["name"], r["seed"]) not in redone] \
        if saved.exists() else []
    for seed in args.seeds:
        for name in args.only:
            row = run_one(name, seed, args.runs_dir)
            print(f"{name} seed {seed}: greedy {row['greedy_success']:.1%} (test levels), "
                  f"{row['env_steps']:,} env steps, {row['wall_time_s'] / 60:.1f} min, "
                  f"to 95%: {_num(row['minutes_to_95'], '.1f')} min", flush=True)
            rows.append(row)
            write(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
