"""Where the jobs of a comparison run: a local pool of fresh processes, or Ray tasks.

**Local** (default): each job runs in its own process started with ``multiprocessing``'s
*spawn* context, a fresh interpreter that imports only what training needs (no state inherited
from the parent, no fork of a process holding torch's thread pools), at most ``workers`` at
once. A worker process runs one job and exits, so memory is returned between jobs. We call the
trainer in-process (:func:`~experiments.compare.worker.run_job`) rather than shelling out to
``penguin train``, so the local and Ray backends share one code path and the worker reports
through a file it writes atomically instead of parsed console output.

Workers are put in their own process group, so a Ctrl-C in the terminal reaches only the
parent, which forwards one SIGINT to each running worker: the trainers treat it as "save a
resume checkpoint and stop" (:class:`algorithms.interrupt.GracefulInterrupt`). A second Ctrl-C
is forwarded too and stops the workers at once.

**Ray** (``--backend ray``, ``pip install -e ".[ray]"``): the same jobs as Ray tasks, each
asking ``num_cpus=threads`` so Ray never runs more at once than a node has cores, each in a
fresh worker process (``max_calls=1``). The driver joins an existing cluster when there is one
(``RAY_ADDRESS``, or a head started on this machine with ``ray start --head``), else starts a
local one with ``num_cpus`` = this machine's cores. To use a cluster: install the project on
every node, start the head (``ray start --head``) and the workers (``ray start
--address=HEAD:6379``), then run ``penguin compare --backend ray ...`` on the head, or
anywhere with ``RAY_ADDRESS=ray://HEAD:10001``. Each task returns its record to the driver,
which writes ``result.json`` under ``--out`` on its own machine; checkpoints and TensorBoard
files stay on the node that trained, unless ``--out`` is a filesystem every node shares.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from experiments.compare.grid import Job, read_result
from experiments.compare.worker import run_job, write_json_atomic
from experiments.errors import UsageError

EXIT_INTERRUPTED = 3
"""Exit status of a local worker stopped by Ctrl-C."""
EXIT_DISK_FULL = 74
"""Exit status of a local worker that could not write a file: the disk is full."""
RAY_INSTALL = 'pip install -e ".[ray]"'


@dataclass
class Outcome:
    """What became of the jobs handed to a backend."""

    finished: dict[Job, dict[str, Any]] = field(default_factory=dict)
    interrupted: list[Job] = field(default_factory=list)
    failed: dict[Job, str] = field(default_factory=dict)
    """job -> why (the end of its log or the task's error)."""
    stopped: bool = False
    """True when the user pressed Ctrl-C."""


#: ``on_done(job, status, record_or_message)`` after each job ends, for progress lines.
OnDone = Callable[[Job, str, Any], None]


def _redirect_output(log_path: Path) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab", buffering=0) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)


def _local_worker(spec: dict[str, Any], log_path: str) -> None:
    """Entry point of a local worker process (spawned; exits with its status)."""
    os.setpgrp()  # the terminal's Ctrl-C goes to the parent, which forwards it once
    _redirect_output(Path(log_path))
    try:
        record = run_job(spec)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except BaseException as err:
        from agents.files import DiskFullError, disk_full_cause

        cause = disk_full_cause(err)
        if cause is not None:  # one line, as the command line prints it
            full = err if isinstance(err, DiskFullError) else DiskFullError(cause.filename or ".", cause)
            print(f"error: {full}", file=sys.stderr, flush=True)
            sys.exit(EXIT_DISK_FULL)
        traceback.print_exc()
        sys.stderr.flush()
        sys.exit(1)
    sys.stdout.flush()
    sys.exit(0 if record["status"] == "finished" else EXIT_INTERRUPTED)


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) if text else "(empty log)"


class LocalBackend:
    """At most ``workers`` jobs at once, each in a fresh spawned process."""

    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._running: dict[int, tuple[mp.process.BaseProcess, Job]] = {}
        self._signals = 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            print(
                f"\nstopping: {len(self._running)} running worker(s) save a resume checkpoint "
                "(Ctrl-C again to stop them at once)",
                file=sys.stderr,
                flush=True,
            )
        for proc, _ in self._running.values():
            if proc.pid is not None and proc.is_alive():
                try:
                    os.kill(proc.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass

    def run(self, jobs: list[tuple[Job, bool]], on_done: OnDone) -> Outcome:
        """Run ``(job, resume)`` pairs; returns when all ended or, after Ctrl-C, when the
        running ones have saved and exited (jobs not started are left alone)."""
        ctx = mp.get_context("spawn")
        outcome = Outcome()
        pending = deque(jobs)
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in handlers:
            signal.signal(sig, self._on_signal)
        try:
            while (pending and not self._signals) or self._running:
                while pending and not self._signals and len(self._running) < self.workers:
                    job, resume = pending.popleft()
                    job.run_dir.mkdir(parents=True, exist_ok=True)
                    proc = ctx.Process(
                        target=_local_worker,
                        args=(job.spec(resume), str(job.log_path)),
                        name=f"penguin-compare {job.label}",
                    )
                    proc.start()
                    self._running[proc.sentinel] = (proc, job)
                if not self._running:
                    break
                for sentinel in mp.connection.wait(list(self._running), timeout=1.0):
                    proc, job = self._running.pop(sentinel)  # type: ignore[call-overload]
                    proc.join()
                    self._collect(job, proc.exitcode, outcome, on_done)
        finally:
            for proc, _ in self._running.values():  # only after an unexpected error
                proc.terminate()
                proc.join()
            self._running.clear()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        outcome.stopped = self._signals > 0
        return outcome

    def _collect(self, job: Job, exitcode: int | None, outcome: Outcome, on_done: OnDone) -> None:
        record = read_result(job) if exitcode == 0 else None
        if record is not None:
            outcome.finished[job] = record
            on_done(job, "finished", record)
        elif exitcode in (EXIT_INTERRUPTED, -signal.SIGINT) or self._signals:
            outcome.interrupted.append(job)
            on_done(job, "interrupted", None)
        else:
            why = f"exit status {exitcode}: {_log_tail(job.log_path)}"
            outcome.failed[job] = why
            on_done(job, "failed", why)


def _ray_task(spec: dict[str, Any], log_path: str) -> dict[str, Any]:
    """A Ray task: the local worker's job, returning the record to the driver."""
    _redirect_output(Path(log_path))
    try:
        return run_job(spec)
    except KeyboardInterrupt:  # ray.cancel
        return {"status": "interrupted", "algo": spec["algo"], "seed": spec["seed"]}


def import_ray() -> Any:
    """The ``ray`` module, or a :class:`UsageError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--backend ray needs Ray, an optional extra: {RAY_INSTALL}") from None
    return ray


class RayBackend:
    """The jobs as Ray tasks of ``threads`` CPUs each (at most ``workers`` in flight if given).

    Args:
        threads: torch threads (and Ray CPUs) per task.
        workers: cap on tasks in flight; None leaves it to Ray's CPU accounting.
        local_cores: ``num_cpus`` of a local Ray instance started here.
    """

    name = "ray"

    def __init__(self, threads: int, workers: int | None, local_cores: int) -> None:
        self.ray = import_ray()
        self.threads, self.workers, self.local_cores = threads, workers, local_cores

    def connect(self) -> str:
        """Join a running cluster or start a local instance; returns which, for the output."""
        ray = self.ray
        if not ray.is_initialized():
            if os.environ.get("RAY_ADDRESS"):
                ray.init(log_to_driver=False)
            else:
                try:
                    ray.init(address="auto", log_to_driver=False)
                except ConnectionError:
                    ray.init(num_cpus=self.local_cores, include_dashboard=False, log_to_driver=False)
        node_cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
        if self.threads > max(node_cpus, default=0):
            raise UsageError(
                f"--threads {self.threads} exceeds the largest Ray node ({max(node_cpus, default=0):g} CPUs); "
                "no task could be scheduled"
            )
        return f"Ray cluster: {len(node_cpus)} node(s), {sum(node_cpus):g} CPUs"

    def run(self, jobs: list[tuple[Job, bool]], on_done: OnDone) -> Outcome:
        ray = self.ray
        task = ray.remote(num_cpus=self.threads, max_calls=1)(_ray_task)
        outcome = Outcome()
        pending = deque(jobs)
        flight: dict[Any, Job] = {}
        limit = self.workers or len(jobs)
        # Ctrl-C must reach this loop as KeyboardInterrupt whatever handler the process had.
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGINT)
        if main_thread:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            while pending or flight:
                while pending and len(flight) < limit:
                    job, resume = pending.popleft()
                    job.run_dir.mkdir(parents=True, exist_ok=True)
                    flight[task.remote(job.spec(resume), str(job.log_path))] = job
                done, _ = ray.wait(list(flight), num_returns=1, timeout=1.0)
                for ref in done:
                    self._collect(ref, flight.pop(ref), outcome, on_done)
        except KeyboardInterrupt:
            outcome.stopped = True
            print(
                f"\nstopping: {len(flight)} running task(s) save a resume checkpoint",
                file=sys.stderr,
                flush=True,
            )
            for ref in flight:
                ray.cancel(ref)
            deadline = time.monotonic() + 300
            while flight and time.monotonic() < deadline:
                done, _ = ray.wait(list(flight), num_returns=1, timeout=1.0)
                for ref in done:
                    self._collect(ref, flight.pop(ref), outcome, on_done)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)
            ray.shutdown()
        return outcome

    def _collect(self, ref: Any, job: Job, outcome: Outcome, on_done: OnDone) -> None:
        ray = self.ray
        try:
            record = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            record = {"status": "interrupted"}
        except ray.exceptions.RayError as err:
            why = " ".join(str(err).split())[-600:]
            outcome.failed[job] = why
            on_done(job, "failed", why)
            return
        if record.get("status") == "finished":
            if read_result(job) is None:  # the task ran on a node without our filesystem
                write_json_atomic(job.result_path, record)
            outcome.finished[job] = record
            on_done(job, "finished", record)
        else:
            outcome.interrupted.append(job)
            on_done(job, "interrupted", None)
