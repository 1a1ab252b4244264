"""The jobs of a comparison (one per algorithm and seed), their run directories, and reuse.

Every job's config is built by :func:`experiments.presets.build_config`, exactly as ``penguin
train`` builds it, so a comparison and a plain training run with the same budget are the same
run. A job's run directory is named after its seed, budget and a hash of its resolved config::

    <out>/runs/<algo>/s<seed>-<budget>-<hash>/

so changing the budget, an override or the thread count gives a new run instead of silently
reusing one trained with other settings.

A run is *finished* when its worker has written ``result.json`` (atomically, after the final
held-out evaluation). A run stopped by Ctrl-C leaves ``interrupted.json`` beside its resume
checkpoint: with an env-step budget it is resumed (the trainers resume exactly); with a
wall-time budget it starts again, because a trainer's time limit counts from the start of each
call and a resumed run would get more time than the others. Anything else in the directory (a
crash, a killed process) is deleted and trained again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from algorithms.config import TrainerConfig
from experiments.errors import user_input
from experiments.presets import Budget, build_config

RESULT_FILE = "result.json"
"""Written by the worker once the run is finished (its final evaluation recorded)."""
INTERRUPTED_FILE = "interrupted.json"
"""Written by the worker when Ctrl-C stopped the run after it saved its resume checkpoint."""
LOG_FILE = "worker.log"
"""The worker process's stdout and stderr."""

#: Config fields that say where or how visibly a run is written, not what it trains.
_BOOKKEEPING = ("runs_dir", "run_name", "resume", "progress", "tensorboard")

Action = Literal["reuse", "resume", "train"]


def config_key(config: TrainerConfig) -> str:
    """Eight hex digits that change whenever a field that affects training changes."""
    data = {k: v for k, v in dataclasses.asdict(config).items() if k not in _BOOKKEEPING}
    data["__class__"] = type(config).__name__
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Job:
    """One algorithm x seed of a comparison."""

    algo: str
    seed: int
    env_id: str
    budget: Budget
    overrides: dict[str, Any] = field(hash=False)
    """Config fields on top of the preset and budget (including threads and the run directory)."""
    key: str
    """:func:`config_key` of the resolved config."""
    run_dir: Path
    config: TrainerConfig = field(hash=False, compare=False, repr=False)
    """The resolved config (as the worker will rebuild it)."""

    @property
    def result_path(self) -> Path:
        return self.run_dir / RESULT_FILE

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_FILE

    @property
    def label(self) -> str:
        return f"{self.algo} seed {self.seed}"

    def spec(self, resume: bool) -> dict[str, Any]:
        """What a worker process needs to rebuild the config: plain, picklable values only."""
        return {
            "algo": self.algo,
            "seed": self.seed,
            "env_id": self.env_id,
            "budget": {"minutes": self.budget.minutes, "env_steps": self.budget.env_steps},
            "overrides": {**self.overrides, "resume": resume},
            "key": self.key,
        }


def make_jobs(
    algos: list[str],
    env_id: str,
    seeds: list[int],
    budget: Budget,
    overrides: dict[str, dict[str, Any]],
    threads: int,
    out: Path,
) -> list[Job]:
    """Build and validate every job's config; seeds outermost, so the first finished runs cover
    every algorithm.

    Args:
        overrides: algorithm -> config fields for that algorithm (``--set``, ``--quick``).
        threads: torch threads of every run.
        out: the comparison's output directory (absolute, so Ray workers elsewhere agree).

    Raises:
        UsageError: an unknown algorithm or field, a bad value, a budget a trainer cannot take.
    """
    jobs = []
    for seed in seeds:
        for algo in algos:
            fields_ = {**overrides.get(algo, {}), "threads": threads, "progress": False}
            with user_input():
                config = build_config(algo, env_id, budget=budget, seed=seed, overrides=fields_)
            key = config_key(config)
            run_dir = out / "runs" / algo / f"s{seed}-{budget.slug()}-{key}"
            fields_ = {**fields_, "runs_dir": str(run_dir.parent), "run_name": run_dir.name}
            jobs.append(Job(algo, seed, env_id, budget, fields_, key, run_dir, config))
    return jobs


def read_result(job: Job) -> dict[str, Any] | None:
    """The finished run's record, or None if the run is not finished (or was trained with
    another config)."""
    try:
        record = json.loads(job.result_path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") != "finished" or record.get("key") != job.key:
        return None
    return record


def resume_problem(job: Job) -> str | None:
    """Why ``job``'s stopped run cannot be resumed (None when it can): its ``interrupted.json``
    must name this job's config, and its ``last.pt`` must be a resume checkpoint of this
    trainer that this version can read."""
    marker, last = job.run_dir / INTERRUPTED_FILE, job.run_dir / "checkpoints" / "last.pt"
    try:
        key = json.loads(marker.read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return f"{marker} is unreadable"
    if key != job.key:
        return f"{marker} belongs to another config ({key!r}, this job's is {job.key!r})"
    if not last.is_file():
        return f"{last} is missing"
    import agents
    from algorithms.driver import RESUME_VERSION

    try:
        data = agents.read(last)
    except ValueError as err:
        return " ".join(str(err).split())
    resume = data.get("resume")
    if data.get("trainer") != job.algo or not isinstance(resume, dict) or resume.get("version") != RESUME_VERSION:
        return (f"{last} is not a resume checkpoint of this version's {job.algo} trainer "
                f"(trainer {data.get('trainer')!r}, resume version "
                f"{resume.get('version') if isinstance(resume, dict) else None!r})")
    return None


def prepare(job: Job, force: bool) -> tuple[Action, str | None]:
    """Decide what to do with ``job`` and clear its directory when it must start again.

    Returns the action and, when a stopped run could not be resumed, why (to report).
    """
    if not force and read_result(job) is not None:
        return "reuse", None
    note = None
    if not force and job.budget.env_steps is not None and (job.run_dir / INTERRUPTED_FILE).exists():
        note = resume_problem(job)
        if note is None:
            return "resume", None
    if job.run_dir.exists():
        shutil.rmtree(job.run_dir)
    return "train", note
