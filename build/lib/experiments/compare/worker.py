"""What one worker process does: train one job of a comparison and record its result.

The same function runs in a local worker process and in a Ray task, so both backends give the
same files. The record is written atomically to ``result.json`` only after the final held-out
evaluation, so its presence means "finished".
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path
from typing import Any

from agents.files import write_text_atomic
from algorithms import registry
from algorithms.driver import TrainResult
from algorithms.evaluation import EvalResult
from experiments.compare.grid import INTERRUPTED_FILE, RESULT_FILE
from experiments.presets import Budget, build_config


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` so that a reader never sees a half-written file."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def curve_x(row: dict[str, float]) -> str:
    """The column of an ``eval.csv`` row that counts env steps (behaviour cloning: its labelled
    solver steps, ``data_steps``)."""
    for name in ("env_steps", "data_steps", "step"):
        if name in row:
            return name
    raise KeyError(f"eval.csv row without a step column: {sorted(row)}")


def _eval_numbers(result: EvalResult) -> dict[str, float]:
    return {
        "success_rate": float(result.success_rate),
        "spl": float(result.spl),
        "mean_return": float(result.mean_return),
        "mean_length": float(result.mean_length),
        "episodes": int(result.num_episodes),
    }


def budget_of(config: Any) -> str:
    """The budget a config trains for, in words (``"2 min wall time (at most 400,000 env steps)"``)."""
    total, unit = config.budget
    steps = f"{total:,} {unit.replace('_', ' ')}"
    return f"{config.time_limit:g} min wall time (at most {steps})" if config.time_limit else steps


def record_of(spec: dict[str, Any], result: TrainResult, threads: int, config: Any = None) -> dict[str, Any]:
    """The ``result.json`` record of a finished run."""
    assert result.final_eval is not None and result.final_eval_sampled is not None
    curve = [{k: float(v) for k, v in row.items()} for row in result.curve]
    x = curve_x(curve[-1])
    return {
        "status": "finished",
        "algo": spec["algo"],
        "seed": spec["seed"],
        "env_id": spec["env_id"],
        "key": spec["key"],
        "budget": budget_of(config) if config is not None and Budget(**spec["budget"]).own
        else Budget(**spec["budget"]).describe(),
        "threads": threads,
        "greedy": _eval_numbers(result.final_eval),
        "sampled": _eval_numbers(result.final_eval_sampled),
        "env_steps": int(result.env_steps),
        # eval.csv's clock continues across a resume; this call's alone would not.
        "wall_time_s": float(curve[-1]["wall_time"]),
        "curve_x": x,
        "curve": curve,
        "run_dir": str(result.run_dir),
        "host": platform.node(),
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Train the job described by ``spec`` (:meth:`~experiments.compare.grid.Job.spec`).

    Returns the finished run's record (also written to ``result.json``), or
    ``{"status": "interrupted"}`` when Ctrl-C stopped training after the resume checkpoint was
    saved (``interrupted.json`` marks the run for :func:`~experiments.compare.grid.prepare`).
    """
    config = build_config(
        spec["algo"],
        spec["env_id"],
        budget=Budget(**spec["budget"]),
        seed=spec["seed"],
        overrides=spec["overrides"],
    )
    run_dir = Path(config.runs_dir) / str(config.run_name)
    (run_dir / INTERRUPTED_FILE).unlink(missing_ok=True)
    result = registry.train(config)
    if result.interrupted:
        write_json_atomic(run_dir / INTERRUPTED_FILE, {"iterations": result.iterations, "key": spec["key"]})
        return {"status": "interrupted", "algo": spec["algo"], "seed": spec["seed"]}
    import torch  # imported by the trainer already

    record = record_of(spec, result, torch.get_num_threads(), config)
    write_json_atomic(run_dir / RESULT_FILE, record)
    return record
