"""The numbers of a comparison: ``compare.json`` and the ``compare.md`` table made from it.

Success rates are aggregated across seeds as the interquartile mean (IQM) with a 95%
stratified-bootstrap confidence interval, as ``rliable`` computes them (Agarwal et al., 2021,
"Deep RL at the Edge of the Statistical Precipice"): one task (the env), the seeds as runs.
With one seed there is nothing to resample, so the interval is reported as missing (``null``
in the JSON, "n/a" in the table) instead of a zero-width interval.

The table is printed from the JSON's numbers, so the two never disagree.
"""

from __future__ import annotations

import datetime as _dt
import platform
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from experiments.machine import cpu_model, usable_cores

TARGET = 0.9
"""Greedy held-out success for the "to 90%" columns."""
BOOTSTRAP_REPS = 2000
"""Bootstrap resamples per interval (fixed seed: the same runs give the same intervals)."""


def machine() -> dict[str, Any]:
    """This machine, for the record."""
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "python": platform.python_version(),
    }


def iqm_with_ci(values: Sequence[float], seed: int = 0) -> tuple[float, list[float] | None]:
    """IQM of per-seed ``values`` and its 95% stratified-bootstrap interval (None for one seed)."""
    from rliable import library, metrics

    scores = np.asarray(values, dtype=float).reshape(-1, 1)  # (runs, tasks)
    iqm = float(metrics.aggregate_iqm(scores))
    if len(scores) < 2:
        return iqm, None
    with warnings.catch_warnings():  # arch: random_state is deprecated in favour of generator
        warnings.simplefilter("ignore", FutureWarning)
        _, intervals = library.get_interval_estimates(
            {"x": scores},
            lambda s: np.array([metrics.aggregate_iqm(s)]),
            reps=BOOTSTRAP_REPS,
            random_state=np.random.RandomState(seed),
        )
    low, high = intervals["x"][:, 0]
    return iqm, [float(low), float(high)]


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean (rliable's), without an interval."""
    from rliable import metrics

    return float(metrics.aggregate_iqm(np.asarray(values, dtype=float).reshape(-1, 1)))


def first_reaching(record: dict[str, Any], level: float = TARGET) -> tuple[int, float] | None:
    """``(env steps, seconds)`` of the first evaluation during training (on the validation
    levels) with greedy success >= ``level``."""
    x = record["curve_x"]
    for row in record["curve"]:
        if row["success_rate"] >= level and not row.get("test_levels"):
            return int(row[x]), float(row["wall_time"])
    return None


def per_seed(record: dict[str, Any]) -> dict[str, Any]:
    reached = first_reaching(record)
    return {
        "seed": record["seed"],
        "greedy_success": record["greedy"]["success_rate"],
        "sampled_success": record["sampled"]["success_rate"],
        "spl": record["greedy"]["spl"],
        "sampled_spl": record["sampled"]["spl"],
        "return": record["greedy"]["mean_return"],
        "env_steps": record["env_steps"],
        "wall_time_s": record["wall_time_s"],
        "env_steps_to_90": reached[0] if reached else None,
        "wall_time_to_90_s": reached[1] if reached else None,
        "threads": record["threads"],
        "run_dir": record["run_dir"],
    }


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One algorithm's row from its seeds' records."""
    seeds = sorted((per_seed(r) for r in records), key=lambda s: s["seed"])
    greedy, greedy_ci = iqm_with_ci([s["greedy_success"] for s in seeds])
    sampled, sampled_ci = iqm_with_ci([s["sampled_success"] for s in seeds], seed=1)
    reached = [s for s in seeds if s["env_steps_to_90"] is not None]
    return {
        "seeds": len(seeds),
        "budget": records[0].get("budget"),
        "greedy_success": {"iqm": greedy, "ci95": greedy_ci},
        "sampled_success": {"iqm": sampled, "ci95": sampled_ci},
        "spl": iqm([s["spl"] for s in seeds]),
        "return": iqm([s["return"] for s in seeds]),
        "env_steps": float(np.mean([s["env_steps"] for s in seeds])),
        "wall_time_s": float(np.mean([s["wall_time_s"] for s in seeds])),
        "seeds_reaching_90": len(reached),
        "env_steps_to_90": float(np.mean([s["env_steps_to_90"] for s in reached])) if reached else None,
        "wall_time_to_90_s": float(np.mean([s["wall_time_to_90_s"] for s in reached])) if reached else None,
        "per_seed": seeds,
    }


def build_report(
    records: dict[str, list[dict[str, Any]]], settings: dict[str, Any]
) -> dict[str, Any]:
    """``compare.json``'s content: ``settings`` (env, budget, workers, ...), the machine and
    date, and one summary per algorithm (in the order of ``records``)."""
    return {
        **settings,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "target_success": TARGET,
        "bootstrap_reps": BOOTSTRAP_REPS,
        "algorithms": {algo: summarise(rs) for algo, rs in records.items()},
    }


# -- markdown ------------------------------------------------------------------------------------

HEADER = (
    "| algorithm | seeds | greedy success, IQM [95% CI] | sampled success, IQM [95% CI] "
    "| SPL | return | env steps | wall time | env steps to 90% | wall time to 90% |"
)


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def with_ci(stat: dict[str, Any]) -> str:
    ci = stat["ci95"]
    return f"{pct(stat['iqm'])} [{'n/a' if ci is None else f'{100 * ci[0]:.1f}, {100 * ci[1]:.1f}'}]"


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.2f} min"


def table_row(algo: str, s: dict[str, Any]) -> str:
    def to90(value: float | None, fmt: Any) -> str:
        if value is None:
            return "—"
        partial = f" ({s['seeds_reaching_90']}/{s['seeds']} seeds)" if s["seeds_reaching_90"] < s["seeds"] else ""
        return fmt(value) + partial

    cells = [
        algo,
        str(s["seeds"]),
        with_ci(s["greedy_success"]),
        with_ci(s["sampled_success"]),
        f"{s['spl']:.3f}",
        f"{s['return']:.2f}",
        f"{s['env_steps']:,.0f}",
        minutes(s["wall_time_s"]),
        to90(s["env_steps_to_90"], lambda v: f"{v:,.0f}"),
        to90(s["wall_time_to_90_s"], minutes),
    ]
    return "| " + " | ".join(cells) + " |"


def _budget_sentence(report: dict[str, Any]) -> str:
    """The budget of every run: one for all, or each algorithm's own."""
    if not report["budget"].startswith("each algorithm's own"):
        return f"Budget: **{report['budget']}** per run, the same for every algorithm."
    each = "; ".join(f"{algo} {s.get('budget') or '?'}" for algo, s in report["algorithms"].items())
    return f"Budget: each algorithm's own, from its settings file: {each}."


def markdown(report: dict[str, Any]) -> str:
    """``compare.md``: what was run, the table, how to read it, the plot."""
    seeds = max((s["seeds"] for s in report["algorithms"].values()), default=0)
    m = report["machine"]
    lines = [
        f"# {', '.join(report['algorithms'])} on {report['env_id']}",
        "",
        f"`{report['command']}`",
        "",
        _budget_sentence(report) + f" {seeds} seed(s) per "
        f"algorithm; each run in its own process with {report['threads']} torch thread(s), at most "
        f"{report['workers']} at once ({report['backend']} backend). {m['cpu']}, {m['cores']} cores; "
        f"{report['date'][:10]}.",
        "",
        HEADER,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(table_row(algo, s) for algo, s in report["algorithms"].items()),
        "",
        f"Greedy and sampled success are on {report['final_eval_episodes']} test levels (ids from "
        f"{report.get('test_start_level', 2_000_000):,}, never trained or tuned on; unseen test phrasings); "
        f"the curves are the evaluations during training on {report['eval_episodes']} validation levels "
        f"(ids from {report.get('validation_start_level', report.get('heldout_start_level', 1_000_000)):,}; "
        f"{next(iter(report['algorithms']), 'every algorithm')}'s settings; the lines below name any "
        "algorithm whose differ). Success, SPL and return are the interquartile mean (IQM) over "
        "seeds; the intervals are 95% stratified-bootstrap confidence intervals "
        f"(`rliable`, {report['bootstrap_reps']} resamples)"
        + (" — with one seed there is no interval (n/a)." if seeds < 2 else ".")
        + " SPL and return are greedy. Env steps and wall time are means over seeds; wall time "
        "covers training and every held-out evaluation, not interpreter start-up. For bc, env "
        "steps are the solver-labelled steps it trained on. \"To 90%\" is the first evaluation "
        "with greedy success of at least 90% (mean over the seeds that reached it; — when none did).",
    ]
    if report.get("notes"):
        lines += ["", *report["notes"]]
    png = report.get("curves_png")
    if png:
        lines += ["", f"![greedy success vs env steps and wall time]({png['file']}) ({png['width']}×{png['height']} px)"]
    return "\n".join(lines) + "\n"
