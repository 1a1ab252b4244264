"""Trainers and the training core they share.

Shared core (one job per module): :mod:`~algorithms.seeding`, :mod:`~algorithms.device`,
:mod:`~algorithms.run_dir`, :mod:`~algorithms.logger` (SB3 scalar names),
:mod:`~algorithms.envs` (batched env, held-out levels), :mod:`~algorithms.evaluation`
(success, return, SPL), :mod:`~algorithms.interrupt` (Ctrl-C saves first),
:mod:`~algorithms.progress`. Trainers: :mod:`~algorithms.bc` (behaviour cloning + DAgger).
Checkpoints are :func:`agents.save` files with a ``resume`` entry.
"""

from __future__ import annotations
