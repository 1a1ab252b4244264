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

import dataclasses
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

import penguin_env
from agents.files import write_text_atomic
from algorithms import registry
from algorithms.device import available_cores
from experiments.compare.backends import LocalBackend, Outcome, RayBackend
from experiments.compare.grid import Job, make_jobs, prepare, read_result
from experiments.compare.lock import OutputLock
from experiments.compare.plots import plot_curves
from experiments.compare.report import build_report, markdown, pct
from experiments.errors import UsageError, user_input
from experiments.presets import Budget, config_fields, parse_budget

QUICK_ALGOS = ("bc", "ppo", "grpo", "dqn")
"""``--quick`` compares those of these that are registered, each with its own settings and budget
for Bare (``experiments/hyperparams/<algo>.yml``)."""
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


@dataclass
class CompareFlags:
    """Which algorithms, on which env, with how many seeds and what budget each; where it runs."""

    algos: Annotated[str | None, tyro.conf.arg(help_behavior_hint="(default: bc,ppo,grpo,dqn)")] = None
    """Comma-separated algorithms (bc, ppo, grpo, dqn, sb3-ppo, sb3-dqn)."""
    env: Annotated[str | None, tyro.conf.arg(help_behavior_hint="(required; Penguin-Bare-v0 with --quick)")] = None
    """The env id (Penguin-Bare-v0, Penguin-Gold-v0, Penguin-Walls-v0, Penguin-Lang-v0)."""
    seeds: Annotated[int | None, tyro.conf.arg(help_behavior_hint="(default: 3; 1 with --quick)")] = None
    """Seeds 0..N-1 per algorithm."""
    budget: Annotated[str | None, tyro.conf.arg(help_behavior_hint="(one of the two required, but with --quick)")] = None
    """Wall time of every run (90s, 10m, 1.5h), the same for every algorithm."""
    env_steps: Annotated[int | None, tyro.conf.arg(help_behavior_hint="")] = None
    """Env steps of every run (behaviour cloning: labelled steps), instead of --budget."""
    out: Annotated[Path | None, tyro.conf.arg(help_behavior_hint="(default: results/compare/ENV)")] = None
    """Folder of the report and the runs."""
    backend: Literal["local", "ray"] = "local"
    """Local worker processes, or Ray tasks (pip install -e ".[ray]")."""
    workers: Annotated[int | None, tyro.conf.arg(help_behavior_hint="(default: one per core)")] = None
    """Runs at once on this machine."""
    threads: Annotated[int | None, tyro.conf.arg(help_behavior_hint="(default: cores / workers)")] = None
    """Torch threads per run."""
    force: bool = False
    """Train again even where a finished run exists."""
    wait: bool = False
    """If another comparison is using --out, wait for it to finish instead of stopping."""
    quick: bool = False
    """bc, ppo, grpo and dqn on Penguin-Bare-v0, one seed each, with their own settings and budgets."""


OVERRIDES_HELP = """Any flag of `penguin train` sets that config field for every compared algorithm that has it
(--eval-episodes 100, --policy.hidden 64); prefixed with an algorithm, for that one only
(--ppo.num-envs 32, --dqn.learning-rate 5e-4)."""


def _flag_groups(args: list[str]) -> list[list[str]]:
    """``["--a", "1", "--b", "--c", "x", "y"]`` -> ``[["--a", "1"], ["--b"], ["--c", "x", "y"]]``."""
    groups: list[list[str]] = []
    for arg in args:
        if arg.startswith("--"):
            groups.append([arg])
        elif groups:
            groups[-1].append(arg)
        else:
            raise UsageError(f"unexpected argument {arg!r} (`penguin compare --help` lists the flags)")
    return groups


def parse_overrides(args: list[str], algos: list[str], env_id: str) -> dict[str, dict[str, Any]]:
    """``penguin train`` flags given to ``penguin compare`` -> algorithm -> config fields.

    A plain flag applies to every compared algorithm whose config has it; ``--ALGO.flag`` to
    that algorithm only (ignored when ALGO is registered but not compared, so one command line
    can serve several ``--algos``). The values are parsed as ``penguin train`` parses them.

    Raises:
        UsageError: a flag no compared algorithm has, or a bad value.
    """
    from experiments.commands.flags import known_flags, parse, unknown_flags_error
    from experiments.commands.train import OWN_FIELDS, cli_class
    from experiments.presets import build_config

    groups = _flag_groups(args)
    per_algo: dict[str, list[str]] = {a: [] for a in algos}
    used = [False] * len(groups)
    flags_of: dict[str, tuple[type, Any, list[str]]] = {}
    base_policy: dict[str, Any] = {}
    for algo in algos:
        config_class, _ = registry.get(algo)
        flags_class = cli_class(config_class)
        with user_input():
            base = build_config(algo, env_id)
        default = _flags_default(flags_class, base)
        base_policy[algo] = base.policy
        known = [f for f in known_flags(flags_class, default) if not f.startswith(("--algo", "--env", "--recipe",
                                                                                    "--config", "--budget", "--out"))]
        flags_of[algo] = (flags_class, default, known)
    for i, group_ in enumerate(groups):
        flag = group_[0].split("=", 1)[0]
        prefix, dot, rest = flag[2:].partition(".")
        if dot and prefix in registry.ALGORITHMS:
            used[i] = True
            if prefix in per_algo:
                name = "--" + rest
                if name not in flags_of[prefix][2]:
                    raise unknown_flags_error([flag], [f"--{prefix}.{k[2:]}" for k in flags_of[prefix][2]],
                                              "penguin compare")
                per_algo[prefix] += [name + group_[0][len(flag):], *group_[1:]]
            continue
        for algo in algos:
            if flag in flags_of[algo][2]:
                used[i] = True
                per_algo[algo] += group_
    unused = [groups[i][0] for i in range(len(groups)) if not used[i]]
    if unused:
        every = sorted({f for _, _, known in flags_of.values() for f in known})
        raise unknown_flags_error(unused, every, "penguin compare")
    out: dict[str, dict[str, Any]] = {}
    for algo, given in per_algo.items():
        flags_class, default, _ = flags_of[algo]
        parsed, _ = parse(flags_class, given, f"penguin compare ({algo})", "", default=default)
        chosen = {**dataclasses.asdict(parsed.run), **dataclasses.asdict(parsed.algorithm)}
        before = {**dataclasses.asdict(default.run), **dataclasses.asdict(default.algorithm)}
        fields_ = {k: v for k, v in chosen.items() if v != before[k] and k not in OWN_FIELDS}
        if parsed.policy != default.policy:
            fields_["policy"] = type(base_policy[algo])(**dataclasses.asdict(parsed.policy))
        out[algo] = fields_
    return out


def _flags_default(flags_class: type, base: Any) -> Any:
    """The train flags' default instance holding ``base``'s values."""
    import typing

    def bare(t: Any) -> Any:
        return typing.get_args(t)[0] if typing.get_origin(t) is typing.Annotated else t

    types_ = {f.name: bare(f.type) for f in dataclasses.fields(flags_class)}
    values = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)}
    make = {name: types_[name](**{f.name: values[f.name] for f in dataclasses.fields(types_[name])})
            for name in ("run", "algorithm")}
    policy = types_["policy"](**dataclasses.asdict(base.policy))
    return flags_class(command=types_["command"](), policy=policy, **make)


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


def resolve_budget(args: CompareFlags) -> Budget:
    if args.env_steps is not None:
        return Budget(env_steps=args.env_steps)
    if args.budget is not None:
        return parse_budget(args.budget)
    if args.quick:
        return Budget()  # each algorithm's own settings and budget
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
    from experiments.commands.flags import parse

    description = ("Train algorithms x seeds under one budget in separate worker processes; write compare.md, "
                   "compare.json and curves.png. Run the same command again to reuse finished runs; Ctrl-C "
                   "keeps them. " + " ".join(OVERRIDES_HELP.split()))
    try:
        args, rest = parse(CompareFlags, argv, "penguin compare", description, allow_unknown=True)
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return 0
        raise
    if args.quick and args.env is None:
        args.env = "Penguin-Bare-v0"
    if args.env is None:
        raise UsageError("name an env with --env, one of " + str(list(penguin_env.ENV_IDS)))
    if args.env not in penguin_env.ENV_IDS:
        raise UsageError(f"unknown env id {args.env!r}; choose from {list(penguin_env.ENV_IDS)}")
    algos = resolve_algos(args.algos)
    budget = resolve_budget(args)
    seeds = list(range(args.seeds if args.seeds is not None else (1 if args.quick else 3)))
    if not seeds:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    cores = available_cores()
    workers, threads = resolve_parallelism(args.backend, args.workers, args.threads, len(algos) * len(seeds), cores)
    out = (args.out or Path("results") / "compare" / args.env).resolve()
    overrides = parse_overrides(rest, algos, args.env)
    for algo in algos:
        if args.quick:
            overrides[algo] = {**quick_overrides(algo), **overrides[algo]}
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
    args: CompareFlags,
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
    # Longest time limits first, so that parallel workers finish close together.
    todo.sort(key=lambda item: -(item[0].config.time_limit or 0.0))
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
