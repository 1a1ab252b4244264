"""Fine-tuning from behaviour cloning, measured: ``python -m experiments.finetune_benchmark``.

For each env it first runs the plain behaviour-cloning command (``penguin train --algo bc --env ID``,
seed 0, as :mod:`experiments.bc_benchmark` does) and then, from that run's ``final.pt``, each
entry of :data:`FINE_TUNES` (PPO's and pseudo-GRPO's ``finetune`` recipes) for every
seed, each in its own process under ``/usr/bin/time -v``, one after the other. A fine-tuning run
meets its target when it ends above the BC policy it started from in both greedy held-out
success and SPL (500 held-out levels, test phrasings); the aims of 97% (Gold) and 95% (Lang)
greedy success are reported beside it. Writes ``finetune_benchmark.json``, ``.md`` and ``.png``
(greedy success vs env steps and vs wall time, BC's level dashed) to ``--out``.

Usage::

    python -m experiments.finetune_benchmark --envs Penguin-Gold-v0 Penguin-Lang-v0 --seeds 0 1
    python -m experiments.finetune_benchmark --bc-checkpoint Penguin-Gold-v0=runs/bc/checkpoints/final.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from experiments import bc_benchmark
from experiments.rl_benchmark import legend_beside, measured_on, result_row, run_plain_command

#: name -> (algorithm, flags after ``--init-from BC.pt``): the settings files' fine-tuning
#: recipes (``experiments/hyperparams/<algo>.yml``).
FINE_TUNES: dict[str, tuple[str, list[str]]] = {
    "ppo-ft": ("ppo", ["--recipe", "finetune"]),
    "grpo-ft": ("grpo", ["--recipe", "finetune"]),
}

#: env id -> greedy success aimed for (beyond the target of ending above BC)
AIMS: dict[str, float] = {"Penguin-Gold-v0": 0.97, "Penguin-Lang-v0": 0.95, "Penguin-Walls-v0": 0.90}


def parse_checkpoints(pairs: list[str]) -> dict[str, Path]:
    """``["Penguin-Gold-v0=path.pt", ...]`` as a dict; raises ``SystemExit`` naming a bad pair."""
    out: dict[str, Path] = {}
    for pair in pairs:
        env_id, sep, path = pair.partition("=")
        if not sep or env_id not in AIMS:
            raise SystemExit(f"--bc-checkpoint wants ENV=PATH with ENV one of {list(AIMS)}, got {pair!r}")
        if not Path(path).is_file():
            raise SystemExit(f"--bc-checkpoint: no checkpoint file at {path}")
        # Its BC row is read from the run it came from: <run>/checkpoints/NAME.pt beside <run>/eval.csv.
        if not (Path(path).parent.parent / "eval.csv").is_file():
            raise SystemExit(f"--bc-checkpoint: {path} is not in a run directory with an eval.csv "
                             "(give a run's checkpoints/final.pt)")
        out[env_id] = Path(path)
    return out


def entry_of(row: dict[str, Any]) -> str:
    """The :data:`FINE_TUNES` entry a report row ran (``ppo-ft`` for ``ppo-ft-gold``)."""
    return row.get("entry") or row["name"].rsplit("-", 1)[0]


def kept_rows(report: Path) -> tuple[list[dict], list[dict]]:
    """The BC and fine-tuning rows of an earlier report (``--merge``), each with the machine and
    date it was measured on (from the report's header where it lacks them)."""
    if not report.exists():
        return [], []
    saved = json.loads(report.read_text())
    meta = {k: saved.get("meta", {}).get(k, "unknown") for k in ("machine", "date")}
    return [{**meta, **b} for b in saved["bc"]], [{**meta, **r} for r in saved["results"]]


def above_bc(row: dict[str, Any], bc: dict[str, Any]) -> bool:
    """The target: a fine-tuned policy ends above its BC start in greedy success *and* SPL."""
    return bool(row["greedy_success"] > bc["greedy_success"] and row["greedy_spl"] > bc["greedy_spl"])


def bc_baseline(env_id: str, runs_dir: Path, given: Path | None, extra: list[str]) -> tuple[dict[str, Any], Path]:
    """The BC row and checkpoint to start from: a fresh run of the plain BC command (seed 0), or
    ``given`` with the greedy success and SPL its run's ``eval.csv`` recorded last."""
    if given is None:
        row = bc_benchmark.run_one(env_id, runs_dir, 0, extra)
        return row, bc_benchmark.run_path(runs_dir, env_id, 0) / "checkpoints" / "final.pt"
    from algorithms.run_dir import RunDir

    run_root = given.parent.parent  # <run>/checkpoints/final.pt
    evaluations = RunDir(run_root.parent, run_root.name).read_eval()
    if not evaluations:
        raise SystemExit(f"--bc-checkpoint: {run_root / 'eval.csv'} holds no evaluation; let that BC run finish")
    last = evaluations[-1]
    row = {"env_id": env_id, "seed": 0, "command": f"(given) {given}", "wall_time_s": None, "peak_rss_gb": None,
           "greedy_success": float(last["success_rate"]), "greedy_spl": float(last["spl"]),
           "sampled_success": float(last["sampled_success_rate"]), "sampled_spl": float(last["sampled_spl"])}
    return row, given


def fine_tune(name: str, env_id: str, seed: int, checkpoint: Path, bc: dict, runs_dir: Path,
              extra: list[str]) -> dict[str, Any]:
    """Run :data:`FINE_TUNES` entry ``name`` on ``env_id`` from ``checkpoint``; its report row."""
    algo, flags = FINE_TUNES[name]
    full_name = f"{name}-{env_id.split('-')[1].lower()}"
    command, run = run_plain_command(
        full_name, algo, ["--env", env_id, "--init-from", str(checkpoint), *flags], seed, runs_dir, extra)
    row = result_row(full_name, algo, seed, command, run, None, 0.0)
    row.update(
        entry=name, env_id=env_id, bc_success=bc["greedy_success"], bc_spl=bc["greedy_spl"], aim=AIMS[env_id],
        met=above_bc(row, bc),
    )
    return row


def plot(bcs: list[dict], rows: list[dict], path: Path) -> None:
    """Greedy success vs env steps and vs wall time for each fine-tuning run, BC's level dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = [b["env_id"] for b in bcs]
    fig, axes = plt.subplots(len(envs), 2, figsize=(10, 3.6 * len(envs)), squeeze=False)
    for i, bc in enumerate(bcs):
        runs = [r for r in rows if r["env_id"] == bc["env_id"]]
        colours = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20")  # no colour twice
        for j, r in enumerate(runs):
            look = {"marker": ".", "label": f"{r['name']} s{r['seed']}", "color": colours(j % 20)}
            ys = [c["success_rate"] for c in r["curve"]]
            axes[i][0].plot([c["env_steps"] for c in r["curve"]], ys, **look)
            axes[i][1].plot([c["wall_time"] / 60 for c in r["curve"]], ys, **look)
        for ax, xlabel in zip(axes[i], ("env steps", "wall time (minutes)"), strict=True):
            ax.axhline(bc["greedy_success"], color="black", linestyle="--", linewidth=1, label="BC (start)")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{bc['env_id']} greedy success")
            ax.grid(alpha=0.3)
        legend_beside(axes[i][1])
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_report(bcs: list[dict], rows: list[dict], out: Path, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "finetune_benchmark.json").write_text(
        json.dumps({"meta": meta, "bc": bcs, "results": rows}, indent=2) + "\n")
    lines = [
        "# Fine-tuning from behaviour cloning", "",
        f"`python -m experiments.finetune_benchmark`; last run on {meta['machine']}, {meta['date']}. Each env's BC "
        "checkpoint is the plain BC command's run (seed 0); every fine-tuning run starts from it. "
        "500 held-out levels, test phrasings. Target: greedy success and SPL both above BC's.", "",
        "| env | run | seed | greedy success (SPL) | sampled success | above BC | aim | env steps | wall time | peak memory | machine, date |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for bc in bcs:
        wall = f"{bc['wall_time_s'] / 60:.1f} min" if bc["wall_time_s"] else ""
        peak = f"{bc['peak_rss_gb']:.2f} GiB" if bc["peak_rss_gb"] else ""
        lines.append(
            f"| {bc['env_id']} | BC (start) | 0 | {bc['greedy_success']:.1%} ({bc['greedy_spl']:.3f}) "
            f"| {bc['sampled_success']:.1%} | | | | {wall} | {peak} | {bc['machine']}, {bc['date']} |")
        for r in (r for r in rows if r["env_id"] == bc["env_id"]):
            peak = f"{r['peak_rss_gb']:.2f} GiB" if r["peak_rss_gb"] else "n/a"
            lines.append(
                f"| {r['env_id']} | {r['name']} | {r['seed']} | {r['greedy_success']:.1%} ({r['greedy_spl']:.3f}) "
                f"| {r['sampled_success']:.1%} | {'yes' if r['met'] else 'NO'} "
                f"| {r['aim']:.0%}: {'met' if r['greedy_success'] >= r['aim'] else 'not met'} "
                f"| {r['env_steps']:,} | {r['wall_time_s'] / 60:.1f} min | {peak} | {r['machine']}, {r['date']} |")
    lines += ["", "Each run's full command is in `finetune_benchmark.json`.", "",
              "![fine-tuning curves](finetune_benchmark.png)"]
    (out / "finetune_benchmark.md").write_text("\n".join(lines) + "\n")
    plot(bcs, rows, out / "finetune_benchmark.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=["Penguin-Gold-v0", "Penguin-Lang-v0"], choices=list(AIMS))
    parser.add_argument("--only", nargs="+", default=list(FINE_TUNES), choices=list(FINE_TUNES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--bc-checkpoint", nargs="+", default=[], metavar="ENV=PATH",
                        help="start from this BC checkpoint instead of training one")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--out", type=Path, default=Path("results"))
    parser.add_argument("--merge", action="store_true",
                        help="keep an existing report's rows that this run does not redo (with --bc-checkpoint, "
                             "an env's BC row and other runs too; a BC trained afresh replaces its env's rows)")
    args, extra = parser.parse_known_args(argv)
    given = parse_checkpoints(args.bc_checkpoint)
    meta = measured_on()
    bcs, rows = kept_rows(args.out / "finetune_benchmark.json") if args.merge else ([], [])
    redone = {(e, n, s) for e in args.envs for n in args.only for s in args.seeds}
    rows = [r for r in rows if (r["env_id"], entry_of(r), r["seed"]) not in redone]
    for env_id in args.envs:
        old_bc = next((b for b in bcs if b["env_id"] == env_id), None)
        if env_id in given and old_bc is not None:
            bc, checkpoint = old_bc, given[env_id]  # the same start: its row (wall time, memory) stays
        else:
            bc, checkpoint = bc_baseline(env_id, args.runs_dir, given.get(env_id), extra)
            bc.pop("curve", None)
            bc.update(measured_on())
            bcs = [b for b in bcs if b["env_id"] != env_id] + [bc]
            if env_id not in given:  # a new BC policy: earlier fine-tunings started from another
                rows = [r for r in rows if r["env_id"] != env_id]
        print(f"{env_id} BC: greedy {bc['greedy_success']:.1%} (SPL {bc['greedy_spl']:.3f})", flush=True)
        for name in args.only:
            for seed in args.seeds:
                row = fine_tune(name, env_id, seed, checkpoint, bc, args.runs_dir, extra)
                print(f"{env_id} {name} seed {seed}: greedy {row['greedy_success']:.1%} (SPL {row['greedy_spl']:.3f}), "
                      f"{row['env_steps']:,} env steps, {row['wall_time_s'] / 60:.1f} min", flush=True)
                rows.append(row)
                write_report(bcs, rows, args.out, meta)


if __name__ == "__main__":
    main()
