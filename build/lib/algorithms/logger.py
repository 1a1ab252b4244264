"""TensorBoard scalars under stable-baselines3's names, and episode statistics.

Names used by the trainers (SB3's where SB3 has one):

- ``rollout/ep_rew_mean``, ``rollout/ep_len_mean``, ``rollout/success_rate``
- ``train/loss``, ``train/policy_gradient_loss``, ``train/value_loss``, ``train/entropy_loss``,
  ``train/approx_kl``, ``train/clip_fraction``, ``train/learning_rate``, ``train/n_updates``
  (gradient steps), ``train/accuracy`` (BC), ``train/q_mean`` (DQN), ``train/active_units``
  (share of trunk units active for some input of a batch: a dying trunk falls towards 0)
- ``eval/success_rate``, ``eval/mean_reward``, ``eval/mean_ep_length``, ``eval/spl``
- ``time/fps``, ``time/total_timesteps``, ``time/time_elapsed``, ``time/iterations``, and
  ``time/<part>_s``: seconds spent in each timed part of the loop since the last dump
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.files import DiskFullError, disk_full_cause


def _mean(values: list[float | torch.Tensor]) -> float:
    """Mean of recorded values (tensors read in one transfer)."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if tensors:
        host = torch.stack([t.detach().float().reshape(()) for t in tensors]).cpu().tolist()
        values = [v for v in values if not isinstance(v, torch.Tensor)] + host
    return float(np.mean(values))


class Logger:
    """Collect scalars with :meth:`record`, write their means with :meth:`dump`.

    Args:
        log_dir: TensorBoard event directory; None keeps scalars in memory only (tests).
        purge_step: when resuming a run, the first step the resumed run will write: TensorBoard
            hides the events an interrupted run wrote at this step and later (after its last
            checkpoint), so the curves show each step once.
    """

    def __init__(self, log_dir: str | os.PathLike | None = None, purge_step: int | None = None) -> None:
        self._writer = None
        self._log_dir = Path(log_dir) if log_dir is not None else Path(".")
        if log_dir is not None:
            from torch.utils.tensorboard import (
                SummaryWriter,  # imported lazily: tensorboard is slow to import
            )

            self._writer = SummaryWriter(str(log_dir), purge_step=purge_step)
        self._values: dict[str, list[float]] = {}
        self.history: dict[str, list[tuple[int, float]]] = {}
        self.start_time = time.perf_counter()

    def record(self, key: str, value: float | torch.Tensor) -> None:
        """Add a value for ``key``; several values before a dump are averaged. A tensor is read
        only at the dump, so recording one does not wait for the device."""
        self._values.setdefault(key, []).append(value if isinstance(value, torch.Tensor) else float(value))

    def record_dict(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            self.record(key, value)

    def dump(self, step: int) -> dict[str, float]:
        """Write the means of everything recorded since the last dump at ``step``; return them."""
        means = {k: _mean(v) for k, v in self._values.items() if v}
        means["time/time_elapsed"] = time.perf_counter() - self.start_time
        for key, value in means.items():
            self.history.setdefault(key, []).append((int(step), value))
        self._values.clear()
        if self._writer is not None:
            try:
                for key, value in means.items():
                    self._writer.add_scalar(key, value, int(step))
                self._writer.flush()
            except Exception as err:  # the writer thread re-raises what failed there
                if disk_full_cause(err) is not None:
                    raise DiskFullError(self._log_dir / "events.out.tfevents", disk_full_cause(err)) from err
                raise
        return means

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class EpisodeStats:
    """Returns, lengths and successes of the last ``window`` finished episodes of a vector env.

    Call :meth:`update` after every ``step`` with what the vector env returned. With
    ``next_step_autoreset`` (Gymnasium's default mode) the step after an episode ends only
    resets that game, so it is not counted in the next episode.
    """

    def __init__(self, num_envs: int, window: int = 100, next_step_autoreset: bool = True) -> None:
        self._ret = np.zeros(num_envs)
        self._len = np.zeros(num_envs, dtype=np.int64)
        self._skip = np.zeros(num_envs, dtype=bool)
        self._next_step = next_step_autoreset
        self.returns: deque[float] = deque(maxlen=window)
        self.lengths: deque[int] = deque(maxlen=window)
        self.successes: deque[float] = deque(maxlen=window)
        self.episodes = 0

    def update(
        self, reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray, success: np.ndarray
    ) -> None:
        """``success``: the per-env success flag of the step that ended an episode."""
        live = ~self._skip
        self._ret[live] += np.asarray(reward)[live]
        self._len[live] += 1
        done = np.logical_or(terminated, truncated) & live
        if self._next_step:
            self._skip = done.copy()
        for i in np.flatnonzero(done):
            self.returns.append(float(self._ret[i]))
            self.lengths.append(int(self._len[i]))
            self.successes.append(float(success[i]))
            self._ret[i], self._len[i] = 0.0, 0
            self.episodes += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "ret": self._ret.copy(),
            "len": self._len.copy(),
            "skip": self._skip.copy(),
            "returns": list(self.returns),
            "lengths": list(self.lengths),
            "successes": list(self.successes),
            "episodes": self.episodes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._ret[:] = np.asarray(state["ret"])
        self._len[:] = np.asarray(state["len"])
        self._skip[:] = np.asarray(state["skip"])
        for name in ("returns", "lengths", "successes"):
            getattr(self, name).clear()
            getattr(self, name).extend(state[name])
        self.episodes = int(state["episodes"])

    def scalars(self) -> dict[str, float]:
        """``rollout/*`` means over the window (empty until an episode has finished)."""
        if not self.returns:
            return {}
        return {
            "rollout/ep_rew_mean": float(np.mean(self.returns)),
            "rollout/ep_len_mean": float(np.mean(self.lengths)),
            "rollout/success_rate": float(np.mean(self.successes)),
        }
