"""``penguin compare``: several algorithms x seeds under one budget -> a table and learning curves.

Usage::

    penguin compare --quick                      # bc, ppo, grpo, dqn on Bare, 1 seed, minutes
    penguin compare --algos bc,ppo,grpo,dqn --env Penguin-Bare-v0 --seeds 3 --budget 10m
    penguin compare --algos ppo,sb3-ppo --env-steps 200000 --seeds 5 --set eval_every=20000
    penguin compare --algos bc,ppo --seeds 3 --budget 10m --backend ray   # Ray cluster or local Ray

Every algorithm gets the same budget (wall time or env steps) and its ``penguin train`` preset
for the env; each algorithm x seed trains in its own fresh worker process
(:mod:`experiments.compare.backends`), at most ``--workers`` at once with ``--threads`` torch
threads each, never more threads in all than the cores this process may use. Writes to
``--out`` (default ``results/compare/<env>/``):

- ``compare.md``: one row per algorithm: greedy and sampled held-out success as IQM with 95%
  stratified-bootstrap confidence intervals across seeds (``rliable``), SPL, return, env steps,
  wall time, env steps and wall time to 90% greedy success;
- ``compare.json``: the same numbers, every seed's values, the budget, machine and date;
- ``curves.png``: greedy success vs env steps and vs wall time, one line per algorithm;
- ``runs/<algo>/<run>/``: every run (config, eval.csv, checkpoints, TensorBoard, worker.log).

Running the same command again reuses finished runs (``--force`` trains them again); Ctrl-C
stops the workers after they save, keeps every finished run, and the same command continues
(a stopped run whose checkpoint cannot be read is reported and trained from scratch). One
comparison at a time may use an ``--out`` folder: a second is refused at once, naming the
first, or waits for it with ``--wait``.
``--backend ray`` runs the same jobs as Ray tasks: it joins the cluster named by
``RAY_ADDRESS`` or a head started on this machine (``ray start --head``), else starts Ray
locally; see :mod:`experiments.compare.backends` for pointing it at a cluster.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any, NoReturn

from agents.files import write_text_atomic
from algorithms import registry
from algorithms.device import available_cores
from experiments.compare.backends import LocalBackend, Outcome, RayBackend
from experiments.compare.grid import Job, make_jobs, prepare, read_result
from experiments.compare.lock import OutputLock
from experiments.compare.plots import plot_curves
from experiments.compare.report import build_report, markdown, pct
from experiments.errors import UsageError, user_input
from experiments.presets import Budget, config_fields, parse_budget, preset_fields

QUICK_ALGOS = ("bc", "ppo", "grpo", "dqn")
"""``--quick`` compares those of these that are registered."""
QUICK_BUDGET = "2m"
"""``--quick``'s wall-time budget per run: the same for every algorithm, so the table shows
what each does in the same time (an env-step budget that suits BC is nothing for RL)."""
QUICK_EVAL = {"eval_episodes": 100, "final_eval_episodes": 200}
"""``--quick`` evaluates on fewer held-out levels than the trainers' defaults (100 during
training, 200 at the end, instead of 200 and 500) to leave the time to training."""
QUICK_EVAL_EVERY = {"env_steps": 20_000, "gradient_steps": 500}
"""``--quick``'s evaluation period: in env steps for the RL trainers, gradient steps for bc."""

PARALLEL_VS_SEQUENTIAL: dict[str, Any] = {
    "grid": "bc, ppo, grpo, dqn on Penguin-Bare-v0, 1 seed, 20,000 env steps each, default networks, "
    "100 evaluation levels",
    "parallel_2_workers_x_1_thread_s": 60.2,
    "sequential_1_worker_x_2_threads_s": 96.4,
    "speedup": 1.6,
    "machine": "AMD EPYC, 2 cores",
    "date": "2026-11-24",
}
"""Wall time of the same grid run two ways on the 2-core development machine (``penguin compare
--algos bc,ppo,grpo,dqn --seeds 1 --env-steps 20000 --set eval_every=0 --set eval_episodes=100
--set final_eval_episodes=100 --force`` with ``--workers 2 --threads 1``, then ``--workers 1
--threads 2``): two one-thread workers finish the grid 1.6x sooner than one two-thread worker,
because a small network's forward and backward passes gain little from a second thread while
the env, evaluation and Python overhead gain nothing. Recorded in every local ``compare.json``;
the faster way is the default (:func:`default_workers`)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="penguin compare",
        description="Train algorithms x seeds under one budget in separate worker processes; "
        "write compare.md, compare.json and curves.png.",
        epilog="Run the same command again to reuse finished runs; Ctrl-C keeps them.",
    )
    p.add_argument("--algos", default=None, help=f"comma-separated algorithms, from {list(registry.ALGORITHMS)} "
                   f"(default: those of {','.join(QUICK_ALGOS)} that are registered)")
    p.add_argument("--env", default="Penguin-Bare-v0", help="env id (default Penguin-Bare-v0)")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 per algorithm (default 3; 1 with --quick)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget", default=None, help="wall time per run: 90s, 10m, 1.5h")
    budget.add_argument("--env-steps", type=int, default=None, help="env steps per run (bc: solver-labelled steps)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local worker processes (default) or Ray tasks (pip install -e \".[ray]\")")
    p.add_argument("--workers", type=int, default=None,
                   help="runs at once (local default: what is fastest on this machine, see compare.json)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default: cores / workers)")
    p.add_argument("--out", type=Path, default=None, help="output directory (default results/compare/<env>)")
    p.add_argument("--force", action="store_true", help="train again even where a finished run exists")
    p.add_argument("--wait", action="store_true",
                   help="if another comparison is using --out, wait for it to finish instead of stopping")
    p.add_argument("--quick", action="store_true",
                   help=f"bc, ppo, grpo, dqn on Bare, 1 seed, {QUICK_BUDGET} each, fewer evaluation levels (minutes)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="[ALGO:]FIELD=VALUE",
                   help="a config field for every algorithm, or for one with ALGO: in front (ignored when ALGO "
                   "is not compared); "
                   "policy.FIELD sets a network field; VALUE is JSON or a plain string (repeatable)")
    return p


def parse_value(text: str) -> Any:
    """``--set`` values: JSON (numbers, true/false, null, lists), else the plain string."""
    try:
        return json.loads(text)
    except ValueError:
        return {"True": True, "False": False, "None": None}.get(text, text)


def parse_sets(items: list[str], algos: list[str]) -> dict[str, dict[str, Any]]:
    """``--set`` items -> algorithm -> config fields (``policy`` as a partial dict)."""
    out: dict[str, dict[str, Any]] = {a: {} for a in algos}
    for item in items:
        target, eq, value = item.partition("=")
        if not eq or not target:
            raise UsageError(f"--set {item!r}: write FIELD=VALUE or ALGO:FIELD=VALUE")
        algo, colon, name = target.rpartition(":")
        if colon and algo not in registry.ALGORITHMS:
            raise UsageError(f"--set {item!r}: unknown algorithm {algo!r}; choose from {list(registry.ALGORITHMS)}")
        # a setting for a registered algorithm that is not compared this time is ignored, so
        # one command line can serve several --algos selections
        for a in ([algo] if algo in algos else []) if colon else algos:
            fields_ = out[a]
            if name.startswith("policy."):
                fields_.setdefault("policy", {})[name.split(".", 1)[1]] = parse_value(value)
            else:
                fields_[name.replace("-", "_")] = parse_value(value)
    return out


def with_preset_policy(algo: str, env_id: str, fields_: dict[str, Any]) -> dict[str, Any]:
    """Apply a partial ``policy`` override on top of the preset's network, not the defaults."""
    if not isinstance(fields_.get("policy"), dict):
        return fields_
    preset = preset_fields(algo, env_id).get("policy")
    base = dataclasses.asdict(preset) if dataclasses.is_dataclass(preset) else dict(preset or {})
    return {**fields_, "policy": {**base, **fields_["policy"]}}


def quick_overrides(algo: str) -> dict[str, Any]:
    """``--quick``'s evaluation settings for ``algo``."""
    config_class, _ = registry.get(algo)
    unit = "env_steps" if "total_env_steps" in config_fields(config_class) else "gradient_steps"
    return {**QUICK_EVAL, "eval_every": QUICK_EVAL_EVERY[unit]}


def default_workers(cores: int) -> int:
    """Local runs at once when neither ``--workers`` nor ``--threads`` is given: one per core,
    each on one thread, which beat one run at a time on all the cores
    (:data:`PARALLEL_VS_SEQUENTIAL`)."""
    return cores


def resolve_parallelism(
    backend: str, workers: int | None, threads: int | None, jobs: int, cores: int
) -> tuple[int, int]:
    """``(workers, threads)``; locally ``workers x threads`` may not exceed ``cores``.

    Raises:
        UsageError: a request that oversubscribes the CPU, or a count below 1.
    """
    for flag, value in (("--workers", workers), ("--threads", threads)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} must be >= 1, got {value}")
    if backend == "ray":  # Ray schedules tasks of `threads` CPUs each within its nodes' CPUs
        return workers or 0, threads or 1
    if workers is None and threads is None:
        workers = max(1, min(default_workers(cores), jobs))
    if threads is None:
        threads = max(1, cores // int(workers))
    if workers is None:
        workers = max(1, cores // threads)
    if workers * threads > cores:
        raise UsageError(
            f"--workers {workers} x --threads {threads} = {workers * threads} torch threads exceeds the "
            f"{cores} cores available; keep workers x threads <= {cores}"
        )
    return workers, threads


def resolve_algos(text: str | None) -> list[str]:
    if text is None:
        return [a for a in QUICK_ALGOS if a in registry.ALGORITHMS]
    algos = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in algos if a not in registry.ALGORITHMS]
    if unknown or not algos:
        raise UsageError(f"unknown algorithm(s) {unknown or [text]}; choose from {list(registry.ALGORITHMS)}")
    if len(set(algos)) != len(algos):
        raise UsageError(f"--algos names an algorithm twice: {text}")
    return algos


def resolve_budget(args: argparse.Namespace) -> Budget:
    if args.env_steps is not None:
        return Budget(env_steps=args.env_steps)
    if args.budget is not None:
        return parse_budget(args.budget)
    if args.quick:
        return parse_budget(QUICK_BUDGET)
    raise UsageError("give a budget: wall time (--budget 10m) or --env-steps N (or use --quick)")


def print_done(total: int) -> Any:
    count = [0]

    def on_done(job: Job, status: str, detail: Any) -> None:
        count[0] += 1
        head = f"[{count[0]}/{total}] {job.label}:"
        if status == "finished":
            g, s = detail["greedy"], detail["sampled"]
            print(f"{head} greedy {pct(g['success_rate'])}, sampled {pct(s['success_rate'])}, "
                  f"{detail['env_steps']:,} env steps, {detail['wall_time_s'] / 60:.1f} min", flush=True)
        elif status == "interrupted":
            print(f"{head} stopped (resume checkpoint saved)", flush=True)
        else:
            print(f"{head} FAILED ({detail}); log: {job.log_path}", flush=True)

    return on_done


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    algos = resolve_algos(args.algos)
    budget = resolve_budget(args)
    seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 3)))
    if not seeds:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    cores = available_cores()
    workers, threads = resolve_parallelism(args.backend, args.workers, args.threads, len(algos) * len(seeds), cores)
    out = (args.out or Path("results") / "compare" / args.env).resolve()
    overrides = parse_sets(args.sets, algos)
    for algo in algos:
        if args.quick:
            overrides[algo] = {**quick_overrides(algo), **overrides[algo]}
        overrides[algo] = with_preset_policy(algo, args.env, overrides[algo])
    with user_input():
        jobs = make_jobs(algos, args.env, seeds, budget, overrides, threads, out)
    backend: LocalBackend | RayBackend
    if args.backend == "ray":
        backend = RayBackend(threads, workers or None, cores)
        where = backend.connect()
    else:
        backend = LocalBackend(workers)
        where = f"local backend, up to {workers} worker process(es) at once on {cores} cores"

    with OutputLock(out, args.wait, "penguin compare " + shlex.join(argv)):
        return _run(args, argv, algos, budget, seeds, jobs, backend, where, workers, threads, out)


def _run(
    args: argparse.Namespace,
    argv: list[str],
    algos: list[str],
    budget: Budget,
    seeds: list[int],
    jobs: list[Job],
    backend: LocalBackend | RayBackend,
    where: str,
    workers: int,
    threads: int,
    out: Path,
) -> int:
    """The comparison itself, with ``out`` locked."""
    plan = []
    for job in jobs:
        action, note = prepare(job, args.force)
        if note is not None:
            print(f"{job.label}: cannot resume ({note}); training it from scratch", flush=True)
        plan.append((job, action))
    todo = [(job, action == "resume") for job, action in plan if action != "reuse"]
    reused = len(jobs) - len(todo)
    print(f"penguin compare: {', '.join(algos)} on {args.env}, {len(seeds)} seed(s), budget {budget.describe()} "
          f"per run; {where}; {threads} torch thread(s) per run")
    if args.quick:
        print(f"--quick: {QUICK_EVAL['eval_episodes']} held-out levels per evaluation during training, "
              f"{QUICK_EVAL['final_eval_episodes']} at the end (trainer defaults: 200 and 500)")
    print(f"{len(jobs)} runs: {reused} finished and reused, {len(todo)} to train "
          f"({sum(resume for _, resume in todo)} resumed); output in {out}", flush=True)

    outcome = backend.run(todo, print_done(len(todo))) if todo else Outcome()
    # continuing must not train the runs finished so far again
    again = "penguin compare " + shlex.join(a for a in argv if a != "--force")
    if outcome.stopped or outcome.interrupted:
        kept = reused + len(outcome.finished)
        print(f"stopped: {kept} of {len(jobs)} runs finished and kept in {out / 'runs'}; to continue, run the same "
              f"command again (finished runs are reused, stopped ones resume or restart):\n  {again}", file=sys.stderr)
        return 130
    if outcome.failed:
        print(f"{len(outcome.failed)} run(s) failed (logs above); fix and run the same command again, finished "
              f"runs are reused:\n  {again}", file=sys.stderr)
        return 1

    records: dict[str, list[dict[str, Any]]] = {a: [] for a in algos}
    for job in jobs:
        record = read_result(job)
        if record is None:  # a Ray task's record is written by the driver: present by now
            raise RuntimeError(f"{job.label}: no result in {job.result_path}")
        records[job.algo].append(record)
    first = jobs[0].config
    settings = {
        "env_id": args.env,
        "command": again,
        "budget": budget.describe(),
        "budget_minutes": budget.minutes,
        "budget_env_steps": budget.env_steps,
        "quick": args.quick,
        "backend": args.backend,
        "workers": workers if args.backend == "local" else (workers or "ray"),
        "threads": threads,
        "seeds": seeds,
        "eval_episodes": first.eval_episodes,
        "final_eval_episodes": first.final_eval_episodes,
        "validation_start_level": first.validation_start_level,
        "test_start_level": first.test_start_level,
        "notes": episode_notes(jobs),
    }
    if args.backend == "local":
        settings["parallel_vs_sequential"] = PARALLEL_VS_SEQUENTIAL
    out.mkdir(parents=True, exist_ok=True)
    settings["curves_png"] = plot_curves(records, out / "curves.png", f"{args.env}, {budget.describe()} per run")
    report = build_report(records, settings)
    write_text_atomic(out / "compare.json", json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    write_text_atomic(out / "compare.md", text)
    print()
    print(text)
    print(f"wrote {out / 'compare.md'}, {out / 'compare.json'}, {out / 'curves.png'}")
    return 0


def episode_notes(jobs: list[Job]) -> list[str]:
    """A line for algorithms whose evaluation sizes differ from the first's (presets may)."""
    first = jobs[0].config
    notes = []
    for job in {j.algo: j for j in jobs}.values():
        c = job.config
        if (c.eval_episodes, c.final_eval_episodes) != (first.eval_episodes, first.final_eval_episodes):
            notes.append(f"{job.algo} evaluates on {c.eval_episodes} levels during training and "
                         f"{c.final_eval_episodes} at the end.")
    return notes


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
