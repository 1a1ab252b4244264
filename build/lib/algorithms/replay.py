"""Replay memory for DQN that stores every uint8 frame and every instruction once.

The buffer is a ring of ``rows`` vector-env steps by ``num_envs`` games. Row ``t`` of game ``e``
holds the observation game ``e`` acted in at step ``t``, the action, the reward and the end
flags of that step; the next observation is row ``t + 1`` of the same game, so each frame is
stored once (not twice, as ``(obs, next_obs)`` pairs would) and a transition never mixes games.

Episode boundaries follow the vector env's next-step autoreset: after a step that ends an
episode the env returns the episode's last observation, and the *following* step only resets
the game (its action is ignored, its observation is the first of the next episode). That row
is stored with ``valid=False``: it is no transition and is never sampled, and an n-step return
stops at the end of its episode, so nothing reads across the boundary.

n-step targets are built when a batch is drawn: ``R = r_t + g r_{t+1} + ... + g^(k-1) r_{t+k-1}``
up to ``n`` steps or the episode's end, then bootstrapped from the observation reached with
discount ``g^k`` -- except after a termination (discount 0). A time-limit truncation is not a
termination: it bootstraps from the episode's last observation.

Optional proportional prioritized replay (Schaul et al. 2016): a transition is drawn with
probability ``p_i**alpha / sum_k p_k**alpha`` where ``p_i`` is its last absolute TD error (new
ones get the largest priority seen), and its loss is weighted by the normalised importance
weight ``(N P(i))**-beta / max_j (N P(j))**-beta``. Priorities live in a sum tree over the ring's
positions; autoreset rows and transitions whose n steps are not yet written have priority 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def compact_int_dtype(high: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds ``0 .. high``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if high <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


@dataclass
class ReplayBatch:
    """Transitions drawn from a :class:`ReplayBuffer` (numpy arrays, first axis the batch)."""

    obs: dict[str, np.ndarray]
    """``{"image": (B, S, S, 3) uint8, "text": (B, L)}`` where the actions were taken."""
    actions: np.ndarray
    """``(B,)`` int64."""
    returns: np.ndarray
    """``(B,)`` float32 discounted reward sum over the (up to) n steps."""
    discounts: np.ndarray
    """``(B,)`` float32 factor of the bootstrap value: ``gamma**k`` for the k steps summed, 0
    after a termination."""
    next_obs: dict[str, np.ndarray]
    """The observation to bootstrap from (meaningless where ``discounts`` is 0)."""
    rows: np.ndarray
    """``(B,)`` ring rows of the transitions (with ``envs``: where they sit in the buffer)."""
    envs: np.ndarray
    """``(B,)`` games of the transitions."""
    labels: np.ndarray | None = None
    """``(B, A)`` bool solver-optimal actions, if the buffer stores them."""
    extras: dict[str, np.ndarray] | None = None
    """Per-transition arrays the buffer was built to keep beside the observation (``extras``)."""
    weights: np.ndarray | None = None
    """``(B,)`` float32 importance weights (prioritized replay; None when drawn uniformly)."""


class SumTree:
    """Non-negative values at ``size`` leaves with their running sums, for proportional sampling.

    Updates and searches are vectorised over a batch of leaves (``log2(size)`` numpy steps).
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.leaves = 1 << max(0, (self.size - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def get(self, index: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(index) + self.leaves]

    def set(self, index: np.ndarray, values: np.ndarray) -> None:
        """Leaf ``index[i]`` <- ``values[i]`` (the last one wins for repeated indices)."""
        node = np.asarray(index, dtype=np.int64) + self.leaves
        self.tree[node] = values
        node = np.unique(node // 2)
        while node[0] >= 1:
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]
            if node[0] == 1:
                break
            node = np.unique(node // 2)

    def find(self, mass: np.ndarray) -> np.ndarray:
        """For each ``mass`` in ``[0, total)``, the leaf where the running sum passes it."""
        mass = np.array(mass, dtype=np.float64)
        node = np.ones(len(mass), dtype=np.int64)
        while node[0] < self.leaves:
            left = self.tree[2 * node]
            right = mass >= left
            mass -= np.where(right, left, 0.0)
            node = 2 * node + right
        return node - self.leaves


class ReplayBuffer:
    """A ring of the last ``rows`` steps of ``num_envs`` games, each frame stored once.

    Args:
        capacity: transitions held (``buffer_size``); rounded up to whole vector steps.
        num_envs: games of the vector env.
        image_shape: one frame's shape, e.g. ``(64, 64, 3)``.
        text_length: tokens per instruction.
        vocab_size: token ids are ``0 .. vocab_size - 1`` (stored in the smallest dtype).
        num_actions: width of the optional solver labels.
        labels: also store the solver's optimal-action mask of every step (auxiliary loss).
        extras: more per-step arrays to keep with each observation, by name: ``(shape, dtype)``
            of one game's value (e.g. auxiliary targets).
        prioritized: draw transitions in proportion to their TD error (:meth:`update_priorities`).
        alpha: prioritization exponent (0: uniform).
        n_step: the n of the n-step transitions drawn (a transition becomes drawable once its n
            following steps are written).

    Arrays are allocated once with ``np.zeros``, so memory is committed as rows are written.
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        image_shape: tuple[int, ...],
        text_length: int,
        vocab_size: int,
        num_actions: int,
        labels: bool = False,
        extras: dict[str, tuple[tuple[int, ...], Any]] | None = None,
        prioritized: bool = False,
        alpha: float = 0.6,
        n_step: int = 1,
    ) -> None:
        if num_envs < 1 or capacity < 2 * num_envs:
            raise ValueError(
                f"capacity ({capacity}) must hold at least two steps of num_envs={num_envs} games"
            )
        self.num_envs = int(num_envs)
        self.rows = -(-int(capacity) // self.num_envs)
        shape = (self.rows, self.num_envs)
        self.images = np.zeros((*shape, *image_shape), dtype=np.uint8)
        self.texts = np.zeros((*shape, text_length), dtype=compact_int_dtype(vocab_size - 1))
        self.actions = np.zeros(shape, dtype=compact_int_dtype(num_actions - 1))
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.truncated = np.zeros(shape, dtype=bool)
        self.valid = np.zeros(shape, dtype=bool)
        self.labels = np.zeros((*shape, num_actions), dtype=bool) if labels else None
        self.extras = {name: np.zeros((*shape, *each), dtype=dtype) for name, (each, dtype) in (extras or {}).items()}
        self.count = 0
        """Vector steps written since the start (row ``count % rows`` is written next)."""
        self.n_step, self.alpha = int(n_step), float(alpha)
        self.priorities = SumTree(self.rows * self.num_envs) if prioritized else None
        self.max_priority = 1.0
        """Largest ``p**alpha`` seen (given to new transitions)."""
        self.live = 0
        """Transitions with a nonzero priority (the N of the importance weights)."""

    # -- size ----------------------------------------------------------------------------------
    @property
    def capacity(self) -> int:
        """Transitions the ring holds."""
        return self.rows * self.num_envs

    @property
    def transitions_added(self) -> int:
        """Steps of every game written so far (all time, including overwritten ones)."""
        return self.count * self.num_envs

    def nbytes(self) -> int:
        """Bytes of all the buffer's arrays."""
        arrays = [self.images, self.texts, self.actions, self.rewards, self.terminated,
                  self.truncated, self.valid]
        if self.labels is not None:
            arrays.append(self.labels)
        return sum(a.nbytes for a in [*arrays, *self.extras.values()])

    def bytes_per_transition(self) -> float:
        """Memory of one stored transition (everything the ring holds, divided by its capacity)."""
        return self.nbytes() / self.capacity

    # -- writing -------------------------------------------------------------------------------
    def add(
        self,
        obs: dict[str, np.ndarray],
        actions: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        valid: np.ndarray,
        labels: np.ndarray | None = None,
        extras: dict[str, np.ndarray] | None = None,
    ) -> None:
        """Write one vector step: the observations acted in, and what the step returned.

        Args:
            obs: ``{"image": (N, S, S, 3), "text": (N, L)}`` the actions were chosen from.
            actions, rewards, terminated, truncated: ``(N,)`` as given to / returned by ``step``.
            valid: ``(N,)`` False for games whose step only reset them (the previous step
                ended their episode).
            labels: ``(N, A)`` solver-optimal actions in ``obs`` (buffers built with labels).
            extras: the ``extras`` of ``obs``'s games (buffers built with them; zeros if None).
        """
        row = self.count % self.rows
        self.images[row] = obs["image"]
        self.texts[row] = obs["text"]
        self.actions[row] = actions
        self.rewards[row] = rewards
        self.terminated[row] = terminated
        self.truncated[row] = truncated
        self.valid[row] = valid
        if self.labels is not None:
            if labels is None:
                raise ValueError("this buffer stores solver labels: pass labels= to add()")
            self.labels[row] = labels
        for name, array in self.extras.items():
            array[row] = 0 if extras is None else extras[name]
        self.count += 1
        if self.priorities is not None:
            tree, games = self.priorities, np.arange(self.num_envs)
            # The overwritten row leaves; the transition whose n steps are now written arrives.
            self.live -= int(np.count_nonzero(tree.get(row * self.num_envs + games)))
            tree.set(row * self.num_envs + games, np.zeros(self.num_envs))
            first, last = self.step_range(self.n_step)
            if first <= last:
                ready = last % self.rows
                valid = games[self.valid[ready]]
                if valid.size:
                    tree.set(ready * self.num_envs + valid, np.full(valid.size, self.max_priority))
                    self.live += valid.size

    def truncate_last(self) -> None:
        """Mark the newest row's steps as truncated (episodes cut from outside, e.g. when the
        trainer replaces the env): n-step returns stop there and bootstrap from the next row,
        which the caller writes with the observations reached and ``valid=False``."""
        if self.count == 0:
            raise ValueError("truncate_last needs a written row")
        self.truncated[(self.count - 1) % self.rows] = True

    def cut_episodes(self, obs: dict[str, np.ndarray]) -> None:
        """End every game's episode as a time limit would, after the last step added: that step
        bootstraps from ``obs`` (the observations it reached), stored as a row that is no
        transition, as an autoreset's. Used when the training games restart (a curriculum stage)."""
        self.truncate_last()
        n = self.num_envs
        labels = None if self.labels is None else np.zeros((n, self.labels.shape[2]), bool)
        self.add(obs, np.zeros(n, np.int64), np.zeros(n, np.float32), np.zeros(n, bool),
                 np.zeros(n, bool), np.zeros(n, bool), labels)

    # -- reading -------------------------------------------------------------------------------
    def step_range(self, n_step: int) -> tuple[int, int]:
        """``[first, last]`` vector steps (all-time numbering) whose n-step transitions can be read:
        still in the ring, with the ``n_step`` following observations written. Empty if first > last."""
        return max(0, self.count - self.rows), self.count - 1 - n_step

    def positions(self, n_step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every sampleable transition as ``(steps, games)`` (all-time step numbers)."""
        n_step = self.n_step if n_step is None else int(n_step)
        first, last = self.step_range(n_step)
        if first > last:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        steps = np.arange(first, last + 1)
        rows = steps % self.rows
        t, e = np.nonzero(self.valid[rows])
        return steps[t], e.astype(np.int64)

    def num_sampleable(self, n_step: int | None = None) -> int:
        return len(self.positions(n_step)[0])

    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        n_step: int | None = None,
        gamma: float = 0.99,
        beta: float = 1.0,
    ) -> ReplayBatch:
        """``batch_size`` n-step transitions (``n_step`` defaults to the buffer's), with replacement.

        Uniform: draws positions in the readable window and keeps the valid ones (a few percent
        of rows are autoreset rows), which is exactly uniform over valid transitions.
        Prioritized: stratified proportional draws from the sum tree, with importance weights
        of exponent ``beta``.

        Raises:
            ValueError: if the buffer holds no sampleable transition yet.
        """
        n_step = self.n_step if n_step is None else int(n_step)
        first, last = self.step_range(n_step)
        if first > last or not self.valid[np.arange(first, last + 1) % self.rows].any():
            raise ValueError("the replay buffer holds no sampleable transition yet")
        if self.priorities is not None:
            if n_step != self.n_step:
                raise ValueError(f"this prioritized buffer draws {self.n_step}-step transitions, not {n_step}")
            return self._sample_prioritized(batch_size, rng, gamma, beta)
        steps = np.zeros(0, np.int64)
        games = np.zeros(0, np.int64)
        while len(steps) < batch_size:
            want = 2 * (batch_size - len(steps)) + 8
            s = rng.integers(first, last + 1, size=want)
            g = rng.integers(0, self.num_envs, size=want)
            keep = self.valid[s % self.rows, g]
            steps = np.concatenate([steps, s[keep]])
            games = np.concatenate([games, g[keep]])
        return self.get(steps[:batch_size], games[:batch_size], n_step, gamma)

    def _sample_prioritized(
        self, batch_size: int, rng: np.random.Generator, gamma: float, beta: float
    ) -> ReplayBatch:
        tree = self.priorities
        assert tree is not None
        total = tree.total
        mass = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        leaf = tree.find(np.minimum(mass, np.nextafter(total, 0.0)))
        # Rounding can land on an empty leaf next to the last nonzero one: draw those again.
        empty = tree.get(leaf) <= 0
        while empty.any():
            leaf[empty] = tree.find(rng.random(int(empty.sum())) * total)
            empty = tree.get(leaf) <= 0
        rows, games = leaf // self.num_envs, leaf % self.num_envs
        first = max(0, self.count - self.rows)
        steps = first + (rows - first) % self.rows  # all-time step numbers of those rows
        batch = self.get(steps, games, self.n_step, gamma)
        probs = tree.get(leaf) / total
        weights = (self.live * probs) ** (-beta)
        batch.weights = (weights / weights.max()).astype(np.float32)
        return batch

    def update_priorities(self, batch: ReplayBatch, td_errors: np.ndarray, eps: float = 1e-6) -> None:
        """Set the drawn transitions' priorities to ``(|td_error| + eps) ** alpha``."""
        if self.priorities is None:
            raise ValueError("update_priorities needs a buffer built with prioritized=True")
        p = (np.abs(np.asarray(td_errors, dtype=np.float64)) + eps) ** self.alpha
        self.priorities.set(batch.rows * self.num_envs + batch.envs, p)
        self.max_priority = max(self.max_priority, float(p.max()))

    def get(self, steps: np.ndarray, games: np.ndarray, n_step: int | None = None, gamma: float = 0.99) -> ReplayBatch:
        """The n-step transitions starting at all-time vector ``steps`` of ``games``.

        The return sums rewards until ``n_step`` steps or the episode's end, whichever is first;
        the bootstrap observation is the one after the last summed step (for an episode that
        ended by truncation, its last observation), with discount 0 after a termination.
        """
        n_step = self.n_step if n_step is None else int(n_step)
        steps = np.asarray(steps, dtype=np.int64)
        games = np.asarray(games, dtype=np.int64)
        rows = steps % self.rows
        b = len(steps)
        returns = np.zeros(b, dtype=np.float64)
        discounts = np.zeros(b, dtype=np.float64)
        boot = steps + n_step
        alive = np.ones(b, dtype=bool)
        for k in range(n_step):
            r = (steps + k) % self.rows
            returns += np.where(alive, gamma**k * self.rewards[r, games], 0.0)
            term = self.terminated[r, games]
            ended = alive & (term | self.truncated[r, games])
            boot[ended] = steps[ended] + k + 1
            discounts[ended & ~term] = gamma ** (k + 1)
            alive &= ~ended
        discounts[alive] = gamma**n_step
        next_rows = boot % self.rows
        return ReplayBatch(
            obs={"image": self.images[rows, games], "text": self.texts[rows, games]},
            actions=self.actions[rows, games].astype(np.int64),
            returns=returns.astype(np.float32),
            discounts=discounts.astype(np.float32),
            next_obs={"image": self.images[next_rows, games], "text": self.texts[next_rows, games]},
            rows=rows,
            envs=games,
            labels=None if self.labels is None else self.labels[rows, games],
            extras={name: array[rows, games] for name, array in self.extras.items()} or None,
        )

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, object]:
        """The written part of the ring as tensors (for a checkpoint's resume entry)."""
        used = min(self.count, self.rows)
        out: dict[str, object] = {"count": self.count, "rows": self.rows}
        for name in self._array_names():
            out[name] = torch.from_numpy(self._array(name)[:used].copy())
        if self.priorities is not None:
            out["priorities"] = torch.from_numpy(self.priorities.tree.copy())
            out["max_priority"], out["live"] = self.max_priority, self.live
        return out

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore what :meth:`state_dict` returned (same capacity and number of games)."""
        if int(state["rows"]) != self.rows:  # type: ignore[arg-type]
            raise ValueError(
                f"saved replay buffer has {state['rows']} rows per game, this one {self.rows}: "
                "resume with the same buffer_size and num_envs"
            )
        self.count = int(state["count"])  # type: ignore[arg-type]
        for name in self._array_names():
            saved = state[name].numpy()  # type: ignore[union-attr]
            self._array(name)[: len(saved)] = saved
        if self.priorities is not None:
            self.priorities.tree[:] = state["priorities"].numpy()  # type: ignore[union-attr]
            self.max_priority = float(state["max_priority"])  # type: ignore[arg-type]
            self.live = int(state["live"])  # type: ignore[arg-type]

    def _array_names(self) -> list[str]:
        names = ["images", "texts", "actions", "rewards", "terminated", "truncated", "valid"]
        return names + (["labels"] if self.labels is not None else []) + [f"extras.{n}" for n in self.extras]

    def _array(self, name: str) -> np.ndarray:
        return self.extras[name[len("extras."):]] if name.startswith("extras.") else getattr(self, name)
