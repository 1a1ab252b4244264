"""The behaviour-cloning learning targets, measured.

Targets (500 held-out levels, test paraphrases, 2 CPU cores; success of the cloned policy
sampled, with greedy success and SPL reported next to it):

- ``Penguin-Bare-v0`` (gold anywhere): >= 95% success within 15 minutes;
- ``Penguin-Gold-v0``: >= 90% success within 15 minutes;
- ``Penguin-Lang-v0`` trained on train paraphrases: >= 85% with the test paraphrases.

Writes ``experiments/results/bc_benchmark.json``, ``.md`` and ``.png`` (success vs. gradient
steps). Usage::

    python -m experiments.bc_benchmark                      # all three
    python -m experiments.bc_benchmark --envs Penguin-Bare-v0 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from algorithms.bc import BCConfig, train_bc
from algorithms.evaluation import evaluate

RESULTS = Path(__file__).resolve().parent / "results"


def preset(env_id: str, **changes) -> BCConfig:
    """The benchmark's BC settings for ``env_id``: periodic evaluation on 100 held-out levels."""
    return BCConfig(env_id=env_id, eval_episodes=100, **changes)


#: Per env: the BC settings and the success target.
PRESETS: dict[str, tuple[BCConfig, float]] = {
    "Penguin-Bare-v0": (
        preset(
            "Penguin-Bare-v0",
            data_steps=20_000,
            total_steps=3_000,
            dagger_rounds=1,
            dagger_steps=8_000,
            eval_every=500,
        ),
        0.95,
    ),
    "Penguin-Gold-v0": (
        preset(
            "Penguin-Gold-v0",
            data_steps=200_000,
            total_steps=8_000,
            dagger_rounds=2,
            dagger_steps=20_000,
            eval_every=1_000,
        ),
        0.90,
    ),
    "Penguin-Lang-v0": (
        preset(
            "Penguin-Lang-v0",
            data_steps=200_000,
            total_steps=10_000,
            dagger_rounds=2,
            dagger_steps=20_000,
            eval_every=1_000,
        ),
        0.85,
    ),
}


def run_one(env_id: str, runs_dir: str, seed: int, scale: float, progress: bool) -> dict:
    """Train one preset (``scale`` multiplies its step budgets) and summarise it."""
    config, target = PRESETS[env_id]
    config = replace(
        config,
        seed=seed,
        runs_dir=runs_dir,
        run_name=f"bc-bench-{env_id}-s{seed}",
        total_steps=max(10, int(config.total_steps * scale)),
        data_steps=max(500, int(config.data_steps * scale)),
        dagger_steps=max(200, int(config.dagger_steps * scale)),
        eval_every=max(5, int(config.eval_every * scale)),
        progress=progress,
    )
    shutil.rmtree(Path(runs_dir) / config.run_name, ignore_errors=True)  # a benchmark starts afresh
    start = time.perf_counter()
    result = train_bc(config)
    wall = time.perf_counter() - start
    final = result.final_eval
    greedy = evaluate(
        result.policy,
        env_id,
        config.heldout(final.num_episodes),
        final.num_episodes,
        deterministic=True,
    )
    return {
        "env_id": env_id,
        "target_success": target,
        "success_rate": final.success_rate,
        "spl": final.spl,
        "mean_return": final.mean_return,
        "mean_length": final.mean_length,
        "greedy_success_rate": greedy.success_rate,
        "greedy_spl": greedy.spl,
        "heldout_episodes": final.num_episodes,
        "eval_paraphrases": config.eval_paraphrases,
        "met": final.success_rate >= target,
        "wall_time_s": wall,
        "gradient_steps": result.steps,
        "data_steps": result.data_steps,
        "curve": result.curve,
        "run_dir": str(result.run_dir),
        "config": asdict(config),
    }


def write_report(rows: list[dict], out: Path, note: str) -> None:
    """``bc_benchmark.json``, ``.md`` and ``.png`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "torch_threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "note": note,
    }
    (out / "bc_benchmark.json").write_text(
        json.dumps({"meta": meta, "results": rows}, indent=2) + "\n"
    )
    lines = [
        "# Behaviour cloning benchmark",
        "",
        f"Regenerate with `python -m experiments.bc_benchmark`. {note}",
        "",
        "| env | held-out success | target | SPL | greedy success (SPL) | wall time | gradient steps | data steps |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['env_id']} | {r['success_rate']:.1%} | {r['target_success']:.0%} {'met' if r['met'] else 'NOT met'} "
            f"| {r['spl']:.3f} | {r['greedy_success_rate']:.1%} ({r['greedy_spl']:.3f}) "
            f"| {r['wall_time_s'] / 60:.1f} min | {r['gradient_steps']} | {r['data_steps']} |"
        )
    lines += [
        "",
        f"Held-out: {rows[0]['heldout_episodes'] if rows else 0} levels from id 1,000,000, test paraphrases. "
        "Success and SPL are those of the trained policy sampled (its targets spread over every "
        "optimal action); the greedy column takes the most likely action instead. Wall time "
        "covers data generation, training, DAgger and the periodic evaluations; it does not "
        "include the greedy evaluation.",
        "",
    ]
    lines.append("![success vs gradient steps](bc_benchmark.png)")
    (out / "bc_benchmark.md").write_text("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        steps = [c["step"] for c in r["curve"]]
        success = [c["success_rate"] for c in r["curve"]]
        ax.plot(steps, success, marker="o", label=r["env_id"])
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("held-out success rate")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "bc_benchmark.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--envs", nargs="+", default=list(PRESETS), choices=list(PRESETS), help="envs to benchmark"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every step budget (e.g. 0.05 for a smoke run)",
    )
    parser.add_argument("--runs-dir", default="runs", help="where run directories go")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the report goes")
    parser.add_argument(
        "--merge", action="store_true", help="keep other envs' rows of an existing report"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    if args.merge and (args.out / "bc_benchmark.json").exists():
        old = json.loads((args.out / "bc_benchmark.json").read_text())["results"]
        rows = [r for r in old if r["env_id"] not in args.envs]
    for env_id in args.envs:
        row = run_one(env_id, args.runs_dir, args.seed, args.scale, not args.no_progress)
        print(
            f"{env_id}: held-out success {row['success_rate']:.1%} (target {row['target_success']:.0%}), "
            f"SPL {row['spl']:.3f}, {row['wall_time_s'] / 60:.1f} min, {row['gradient_steps']} gradient steps, "
            f"{row['data_steps']} data steps",
            flush=True,
        )
        rows.append(row)
        rows.sort(key=lambda r: list(PRESETS).index(r["env_id"]))
        write_report(
            rows,
            args.out,
            f"torch threads: {args.threads}; {os.cpu_count()} CPU cores; {time.strftime('%Y-%m-%d')}.",
        )


if __name__ == "__main__":
    main()
