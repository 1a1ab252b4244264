"""Run a training command in a child process, timed like a user would time it."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from algorithms.run_dir import RunDir


@dataclass
class TimedRun:
    """What one child process took, and the ``eval.csv`` rows of the run it wrote."""

    stdout: str
    wall_time_s: float
    peak_rss_gb: float | None
    """``/usr/bin/time -v``'s maximum resident set size in GiB (None where it is missing)."""
    curve: list[dict[str, float]]


def run_timed(command: list[str], runs_dir: Path, run_name: str) -> TimedRun:
    """Run ``command`` under ``/usr/bin/time -v`` (when present) and read its run's ``eval.csv``.

    Raises:
        RuntimeError: if the command fails, with the end of its stderr.
    """
    timed = Path("/usr/bin/time").exists()
    start = time.perf_counter()
    proc = subprocess.run((["/usr/bin/time", "-v"] if timed else []) + command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    rows = RunDir(runs_dir, run_name).read_eval()
    return TimedRun(
        stdout=proc.stdout,
        wall_time_s=wall,
        peak_rss_gb=int(peak.group(1)) / 1024**2 if peak else None,
        curve=[{k: float(v) for k, v in row.items()} for row in rows],
    )
