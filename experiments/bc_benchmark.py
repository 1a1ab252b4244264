"""The behaviour-cloning targets, measured with the plain command a user runs.

For each env this runs ``penguin train --algo bc --env <id>`` (its settings in
``experiments/hyperparams/bc.yml``) in a fresh process under ``/usr/bin/time -v`` and records greedy and
sampled held-out success, SPL, wall time and peak resident memory. Targets (500 held-out
levels, test phrasings, greedy actions):

- ``Penguin-Bare-v0`` >= 95% within 2 minutes;
- ``Penguin-Gold-v0`` >= 95% within 6 minutes;
- ``Penguin-Lang-v0`` >= 90% within 8 minutes;
- ``Penguin-Walls-v0`` >= 90% (time reported).

Writes ``bc_benchmark.json``, ``.md`` and ``.png`` (greedy success vs. wall time) to ``--out``
(default ``results/``). Usage::

    python -m experiments.bc_benchmark
    python -m experiments.bc_benchmark --envs Penguin-Bare-v0 --out experiments/results
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shutil
import sys
from pathlib import Path

from experiments.machine import describe
from experiments.timed_run import run_timed

#: env id -> (greedy success target, minutes allowed or None)
TARGETS: dict[str, tuple[float, float | None]] = {
    "Penguin-Bare-v0": (0.95, 2.0),
    "Penguin-Gold-v0": (0.95, 6.0),
    "Penguin-Lang-v0": (0.90, 8.0),
    "Penguin-Walls-v0": (0.90, None),
}


def run_path(runs_dir: Path, env_id: str, seed: int) -> Path:
    """Where ``penguin train`` writes the benchmark's BC run on ``env_id`` for ``seed``."""
    return runs_dir / env_id / "bc" / f"bc-bench-{env_id}-s{seed}"


def run_one(env_id: str, runs_dir: Path, seed: int, extra: list[str]) -> dict:
    """Run the plain command for ``env_id`` in a child process and summarise its run."""
    name = f"bc-bench-{env_id}-s{seed}"
    path = run_path(runs_dir, env_id, seed)
    shutil.rmtree(path, ignore_errors=True)  # a benchmark starts afresh
    command = [
        sys.executable, "-m", "experiments.cli", "train", "--algo", "bc", "--env", env_id, "--seed", str(seed),
        "--runs-dir", str(runs_dir), "--run-name", name, "--no-progress", *extra,
    ]
    run = run_timed(command, path.parent, name)
    wall, curve = run.wall_time_s, run.curve
    final = curve[-1]
    target, minutes = TARGETS[env_id]
    return {
        "env_id": env_id,
        "seed": seed,
        "command": " ".join(command[1:]),
        "greedy_success": final["success_rate"],
        "greedy_spl": final["spl"],
        "sampled_success": final["sampled_success_rate"],
        "sampled_spl": final["sampled_spl"],
        "mean_return": final["mean_reward"],
        "gradient_steps": int(final["step"]),
        "data_steps": int(final["data_steps"]),
        "wall_time_s": wall,
        "peak_rss_gb": run.peak_rss_gb,
        "target": target,
        "minutes_allowed": minutes,
        "met": final["success_rate"] >= target and (minutes is None or wall <= 60 * minutes),
        "curve": curve,
        "stdout": run.stdout.strip().splitlines()[-2:],
    }


def write_report(rows: list[dict], out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bc_benchmark.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    lines = [
        "# Behaviour cloning benchmark",
        "",
        f"`python -m experiments.bc_benchmark`: the plain `penguin train --algo bc --env <id>` per env, "
        f"in its own process. {meta['machine']}; {meta['date']}.",
        "",
        "| env | greedy success (SPL) | sampled success (SPL) | target | wall time | peak memory | gradient steps | data steps |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        limit = f" in {r['minutes_allowed']:.0f} min" if r["minutes_allowed"] else ""
        peak = f"{r['peak_rss_gb']:.2f} GB" if r["peak_rss_gb"] is not None else "n/a"
        lines.append(
            f"| {r['env_id']} | {r['greedy_success']:.1%} ({r['greedy_spl']:.3f}) | {r['sampled_success']:.1%} "
            f"({r['sampled_spl']:.3f}) | {r['target']:.0%}{limit}: {'met' if r['met'] else 'NOT met'} "
            f"| {r['wall_time_s'] / 60:.1f} min | {peak} | {r['gradient_steps']:,} | {r['data_steps']:,} |"
        )
    lines += [
        "",
        "500 held-out levels from id 1,000,000 with the test phrasings. Wall time is the whole command "
        "(start-up, data generation, training, DAgger, evaluations); peak memory is `/usr/bin/time -v`'s "
        "maximum resident set size.",
        "",
        "![greedy success vs wall time](bc_benchmark.png)",
    ]
    (out / "bc_benchmark.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.plot([c["wall_time"] / 60 for c in r["curve"]], [c["success_rate"] for c in r["curve"]],
                marker="o", label=r["env_id"])
    ax.set_xlabel("wall time (minutes)")
    ax.set_ylabel("held-out greedy success")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "bc_benchmark.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--merge", action="store_true", help="keep other envs' rows of an existing report")
    args, extra = parser.parse_known_args(argv)
    rows: list[dict] = []
    if args.merge and (args.out / "bc_benchmark.json").exists():
        rows = [r for r in json.loads((args.out / "bc_benchmark.json").read_text())["results"]
                if r["env_id"] not in args.envs]
    meta = {
        "date": _dt.date.today().isoformat(),
        "machine": describe(),
        "python": platform.python_version(),
    }
    for env_id in args.envs:
        row = run_one(env_id, args.runs_dir, args.seed, extra)
        print(
            f"{env_id}: greedy {row['greedy_success']:.1%} (SPL {row['greedy_spl']:.3f}), sampled "
            f"{row['sampled_success']:.1%}, {row['wall_time_s'] / 60:.1f} min, peak {row['peak_rss_gb']} GB, "
            f"target {'met' if row['met'] else 'NOT met'}",
            flush=True,
        )
        rows.append(row)
        rows.sort(key=lambda r: list(TARGETS).index(r["env_id"]))
        write_report(rows, args.out, meta)


if __name__ == "__main__":
    main()
