"""Trainers and the training core they share.

Every trainer is a module with a config dataclass extending
:class:`algorithms.common.TrainerConfig` and ``train(config, callback=None) -> TrainResult``;
:mod:`algorithms.registry` maps names to them:

- :mod:`~algorithms.bc` (``"bc"``): behaviour cloning from the exact solver, with DAgger;
- :mod:`~algorithms.ppo` (``"ppo"``): PPO with GAE, curriculum and an optional BC auxiliary loss;
- :mod:`~algorithms.grpo` (``"grpo"``): pseudo-GRPO, group-relative advantages, no critic.

Shared core (one job per module): :mod:`~algorithms.common` (config fields, validation, the run
around a loop), :mod:`~algorithms.advantages` (GAE, group advantages), :mod:`~algorithms.seeding`,
:mod:`~algorithms.device`, :mod:`~algorithms.run_dir`, :mod:`~algorithms.logger` (SB3 scalar
names), :mod:`~algorithms.envs` (batched env, held-out levels), :mod:`~algorithms.evaluation`
(success, return, SPL), :mod:`~algorithms.interrupt` (Ctrl-C saves first),
:mod:`~algorithms.progress`. Checkpoints are :func:`agents.save` files with a ``resume`` entry.
"""

from __future__ import annotations
