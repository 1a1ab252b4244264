"""Fake traces: the exact solver of the penguin game and datasets of the episodes it plays.

* :mod:`fake_traces.solver`: breadth-first search on the game core's own step function;
  shortest plans, all optimal actions, distances (for SPL) and batched expert actions (DAgger).
* :func:`generate` / :func:`load` / :func:`verify`: solver-trace datasets (one HDF5 file each,
  format described in :mod:`fake_traces.dataset`).
* :class:`fake_traces.overlay.SolverPathOverlay`: draws the solver's remaining path on frames.
"""

from __future__ import annotations

from fake_traces.dataset import (
    CorruptTraceError,
    TraceChecksumError,
    TraceDataset,
    TraceEnvError,
    TraceFormatError,
    TraceMismatchError,
    TraceSchemaError,
    TraceVersionError,
    TruncatedTraceError,
    load,
)
from fake_traces.generate import generate, verify
from fake_traces.solver import (
    Unsolvable,
    best_actions,
    distance,
    distances,
    expert_actions,
    optimal_action_mask,
    plan,
)

__all__ = [
    "CorruptTraceError",
    "TraceChecksumError",
    "TraceDataset",
    "TraceEnvError",
    "TraceFormatError",
    "TraceMismatchError",
    "TraceSchemaError",
    "TraceVersionError",
    "TruncatedTraceError",
    "generate",
    "load",
    "verify",
    "Unsolvable",
    "best_actions",
    "distance",
    "distances",
    "expert_actions",
    "optimal_action_mask",
    "plan",
]
