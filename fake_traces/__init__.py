"""Fake traces: the exact solver of the penguin game and datasets of the episodes it plays.

* :mod:`fake_traces.solver`: breadth-first search on the game core's own step function;
  shortest plans, all optimal actions, distances (for SPL) and batched expert actions (DAgger).
"""

from __future__ import annotations

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
    "Unsolvable",
    "best_actions",
    "distance",
    "distances",
    "expert_actions",
    "optimal_action_mask",
    "plan",
]
