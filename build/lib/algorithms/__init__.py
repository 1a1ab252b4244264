"""Trainers and the training core they share.

Every trainer is a module with a config dataclass extending
:class:`algorithms.config.TrainerConfig` and ``train(config, callback=None) -> TrainResult``;
:mod:`algorithms.registry` maps names to them:

- :mod:`~algorithms.bc` (``"bc"``): behaviour cloning from the exact solver, with DAgger;
- :mod:`~algorithms.ppo` (``"ppo"``): PPO with GAE, an optional BC auxiliary loss and KL penalty;
- :mod:`~algorithms.grpo` (``"grpo"``): pseudo-GRPO, group-relative advantages, no critic;
- :mod:`~algorithms.dqn` (``"dqn"``): Double DQN with n-step, prioritized replay;
- :mod:`~algorithms.sb3_baselines` (``"sb3-ppo"``, ``"sb3-dqn"``): stable-baselines3's loops
  with our network, the outside reference.

Each ``train`` is one loop over :meth:`algorithms.driver.TrainingRun.iterations`, which does
what surrounds every algorithm (evaluation, checkpoints, resume, curriculum, progress, Ctrl-C).
Shared modules, one job each: :mod:`~algorithms.config` (config fields and validation),
:mod:`~algorithms.driver` (the run around the loop), :mod:`~algorithms.trainer_state` (what a
trainer saves), :mod:`~algorithms.envs` (the training games, held-out levels),
:mod:`~algorithms.curriculum`, :mod:`~algorithms.cadence`, :mod:`~algorithms.onpolicy` (what PPO
and pseudo-GRPO share), :mod:`~algorithms.advantages` (GAE, group advantages),
:mod:`~algorithms.replay`, :mod:`~algorithms.augment`, :mod:`~algorithms.evaluation` (success,
return, SPL), :mod:`~algorithms.logger` (SB3 scalar names), :mod:`~algorithms.diagnostics`,
:mod:`~algorithms.optim`, :mod:`~algorithms.seeding`, :mod:`~algorithms.device`,
:mod:`~algorithms.run_dir`, :mod:`~algorithms.interrupt`, :mod:`~algorithms.progress`.
"""

from __future__ import annotations
