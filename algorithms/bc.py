"""Behaviour cloning from the exact solver, with DAgger rounds.

One iteration is one gradient step (:func:`train`):

1. data: solver demonstrations (a trace dataset file, or generated here by running the solver
   with epsilon-random detours in the batched env: :func:`collect`), each step labelled with
   *every* optimal action of its state; at the start of each later phase, a DAgger round rolls
   out the current policy and labels the states it visits with the solver's optimal actions;
2. update: cross-entropy between the policy and the uniform distribution over the optimal
   actions (optionally one canonical action, label-smoothed, class-balanced, symmetry-augmented
   or with words of the instruction left out);
3. log.

Evaluation, checkpoints and resume are the driver's (:class:`algorithms.driver.TrainingRun`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.vector import AutoresetMode

from agents import MultimodalPolicy
from agents.files import atomic_write
from algorithms.augment import (
    SymmetryAugment,
    check_augment,
    corner_word_ids,
    drop_words,
    make_augmenter,
)
from algorithms.config import TrainerConfig, need
from algorithms.diagnostics import active_units
from algorithms.driver import Callback, TrainingRun, TrainResult
from algorithms.envs import make_vec_env
from algorithms.logger import EpisodeStats
from algorithms.optim import make_adam, set_learning_rate
from algorithms.seeding import data_seed
from algorithms.trainer_state import TrainerState
from fake_traces import solver
from penguin_env import NUM_ACTIONS
from penguin_env.core import Action


@dataclass
class BCConfig(TrainerConfig):
    """Behaviour cloning (+ DAgger) hyper-parameters (plus every
    :class:`~algorithms.config.TrainerConfig` field)."""

    env_id: str = "Penguin-Gold-v0"
    """Registered Penguin env id."""
    dataset: str | None = None
    """Path of a solver-trace dataset (``fake_traces.load``); None generates demonstrations here."""
    data_steps: int = 140_000
    """Demonstration steps generated when ``dataset`` is None."""
    expert_epsilon: float = 0.1
    """Probability of a random action while generating demonstrations (the solver recovers,
    so the data shows how to get back on track)."""
    num_envs: int = 32
    """Games stepped together when generating data and in DAgger rollouts."""
    total_steps: int = 6_000
    """Gradient steps over the whole run (all DAgger phases)."""
    dagger_rounds: int = 2
    """DAgger rounds; the run is split into ``dagger_rounds + 1`` equal training phases."""
    dagger_steps: int = 20_000
    """Policy steps collected (and labelled by the solver) per DAgger round."""
    dagger_epsilon: float = 0.05
    """Probability of a random action in DAgger rollouts (the policy acts greedily otherwise)."""
    batch_size: int = 128
    """Minibatch size."""
    learning_rate: float = 3e-3
    """Adam learning rate (peak, after warm-up)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over ``total_steps``."""
    warmup_steps: int = 1_000
    """Raise the learning rate linearly from 0 over the first steps. Adam moves every weight by
    about the learning rate from the first step, however small its gradient; early on every
    sample pushes the same way (towards the commonest action), so without warm-up a trunk unit
    with a large fan-in shifts for every input at once and most switch off (a flat start)."""
    weight_decay: float = 0.0
    """Adam weight decay (L2)."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    targets: str = "uniform"
    """``"canonical"``: one optimal action per state, the first in the order FORWARD, LEFT,
    RIGHT, BACKWARD, STOP (a deterministic expert, so the greedy policy has a clear margin
    and follows one consistent shortest path); ``"uniform"``: spread over every optimal
    action (a policy meant to be sampled)."""
    label_smoothing: float = 0.0
    """Mix this much of the uniform distribution into the targets."""
    augment: str = "off"
    """Symmetry augmentation (``algorithms.augment``): each sample turned by a random multiple
    of 90 degrees and mirrored half the time, labels and corner words mapped to match.
    ``"on"`` (an error if the env's frames are not symmetric), ``"auto"`` (on when they are:
    full view, no hint) or ``"off"``."""
    word_dropout: float = 0.0
    """Leave out each word of a sample's instruction with this probability (corner words are
    always kept; ``algorithms.augment.drop_words``), so the policy learns that every part of a
    phrasing carries its meaning and understands the held-out test phrasings, which recombine
    training words. 0: off."""
    class_balance: bool = False
    """Weight samples by the inverse frequency of their target actions."""
    max_dataset_steps: int = 300_000
    """Keep at most this many labelled steps (the oldest go first); bounds memory (12 kB a step
    at 64x64). The data lives in arrays of ``min(max_dataset_steps, data_steps + dagger_rounds
    * dagger_steps)`` rows allocated once."""
    eval_every: int = 1_000
    """Gradient steps between held-out evaluations (0: only at the end)."""
    log_every: int = 50
    """Gradient steps between TensorBoard dumps (0: after every step)."""
    checkpoint_every: int = 1_000
    """Gradient steps between resume checkpoints (also written by wall time, on Ctrl-C and at the end)."""

    def validate(self) -> None:
        super().validate()
        for name in ("total_steps", "num_envs", "batch_size", "max_dataset_steps"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("dagger_rounds", "dagger_steps", "log_every", "warmup_steps"):
            need(int(getattr(self, name)) >= 0, f"{name} must be >= 0, got {getattr(self, name)!r}")
        need(
            self.dataset is not None or self.data_steps >= 1,
            f"data_steps must be >= 1 when no dataset is given, got {self.data_steps!r}",
        )
        if self.dataset is not None and not Path(self.dataset).is_file():
            raise FileNotFoundError(
                f"dataset: no trace file at {self.dataset}; make one with fake_traces.generate "
                "or leave dataset unset to generate demonstrations"
            )
        need(0.0 <= self.word_dropout < 1.0, f"word_dropout must be in [0, 1), got {self.word_dropout!r}")
        for name in ("expert_epsilon", "dagger_epsilon", "label_smoothing"):
            value = getattr(self, name)
            need(0.0 <= value <= 1.0, f"{name} must be in [0, 1], got {value!r}")
        need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate!r}")
        need(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm!r}")
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay!r}")
        check_augment(self.env_id, self.env_kwargs, self.augment)
        need(self.targets in ("canonical", "uniform"), f"targets must be 'canonical' or 'uniform', got {self.targets!r}")

    @property
    def budget(self) -> tuple[int, str]:
        return int(self.total_steps), "gradient_steps"

    def capacity(self) -> int:
        """Rows of the labelled-step arrays (allocated once)."""
        planned = (self.data_steps if self.dataset is None else self.max_dataset_steps) + (
            self.dagger_rounds * self.dagger_steps
        )
        return max(1, min(self.max_dataset_steps, planned))


class LabelledSteps:
    """Observations with the solver's optimal-action mask, in arrays allocated once.

    A ring: :meth:`add` writes in place, and once ``capacity`` rows are held the oldest are
    overwritten. Steps with no optimal action (the game is already won) teach nothing and are
    skipped. Only the rows written use memory (the arrays are allocated empty).

    Args:
        capacity: most rows held.
        image_shape: one image's shape, e.g. ``(64, 64, 3)``.
        text_length: tokens per instruction.
        num_actions: width of the optimal-action mask.
    """

    def __init__(
        self,
        capacity: int,
        image_shape: tuple[int, ...],
        text_length: int,
        num_actions: int = NUM_ACTIONS,
        text_dtype: np.dtype | type = np.int64,
    ) -> None:
        self.capacity = int(capacity)
        self.image = np.empty((self.capacity, *image_shape), dtype=np.uint8)
        self.text = np.empty((self.capacity, text_length), dtype=text_dtype)
        self.mask = np.zeros((self.capacity, num_actions), dtype=bool)
        self.size = 0
        self._next = 0

    def __len__(self) -> int:
        return self.size

    def add(self, image: np.ndarray, text: np.ndarray, mask: np.ndarray) -> int:
        """Write the rows that have an optimal action; returns how many were written."""
        keep = mask.any(axis=1)
        if not keep.all():
            image, text, mask = image[keep], text[keep], mask[keep]
        n = len(mask)
        if n > self.capacity:  # only the newest rows fit
            image, text, mask = (
                image[-self.capacity :],
                text[-self.capacity :],
                mask[-self.capacity :],
            )
            n = self.capacity
        first = min(n, self.capacity - self._next)
        for src, dst in (
            (slice(0, first), slice(self._next, self._next + first)),
            (slice(first, n), slice(0, n - first)),
        ):
            self.image[dst], self.text[dst], self.mask[dst] = image[src], text[src], mask[src]
        self._next = (self._next + n) % self.capacity
        self.size = min(self.capacity, self.size + n)
        return n

    def extend(self, other: LabelledSteps) -> None:
        """Add every row of ``other``."""
        self.add(other.image[: len(other)], other.text[: len(other)], other.mask[: len(other)])

    def save(self, path: Path) -> None:
        """Write the rows held (oldest first) to an ``.npz`` file, atomically."""
        order = np.roll(np.arange(self.size), -self._next if self.size == self.capacity else 0)
        atomic_write(path, lambda f: np.savez(f, image=self.image[order], text=self.text[order], mask=self.mask[order]))

    @classmethod
    def from_arrays(cls, image: np.ndarray, text: np.ndarray, mask: np.ndarray) -> LabelledSteps:
        """A store holding exactly these rows (those with an optimal action)."""
        store = cls(
            max(1, int(mask.any(axis=1).sum())),
            image.shape[1:],
            text.shape[1],
            mask.shape[1],
            text.dtype,
        )
        store.add(image, text, mask)
        return store

    @classmethod
    def load(cls, path: Path) -> LabelledSteps:
        with np.load(path) as z:
            return cls.from_arrays(z["image"], z["text"], z["mask"])

    @classmethod
    def from_trace_file(cls, path: str | Path, capacity: int | None = None) -> LabelledSteps:
        """Read a ``fake_traces`` dataset and label each step with *all* its optimal actions.

        The file stores one solver action per step; the full optimal set comes from the solver
        on the stored game states (ties between equally short paths are common here).
        """
        import fake_traces
        from penguin_env.core import GameState

        ds = fake_traces.load(path)
        states = GameState.concatenate([ds.game_state(t) for t in range(ds.num_steps)])
        mask = solver.optimal_action_mask(states)
        mask[np.arange(ds.num_steps), np.asarray(ds.labels)] |= ~mask.any(axis=1)
        images, tokens = ds.images, ds.tokens
        store = cls(
            capacity or ds.num_steps, images.shape[1:], tokens.shape[1], mask.shape[1], tokens.dtype
        )
        chunk = 4096  # read the file in chunks: no second full copy of the images
        for i in range(0, ds.num_steps, chunk):
            store.add(
                np.asarray(images[i : i + chunk]),
                np.asarray(tokens[i : i + chunk]),
                mask[i : i + chunk],
            )
        return store


def collect(
    env_id: str,
    env_kwargs: dict[str, Any],
    num_envs: int,
    num_steps: int,
    seed: int,
    epsilon: float,
    policy: MultimodalPolicy | None,
    stats: EpisodeStats | None = None,
    into: LabelledSteps | None = None,
) -> LabelledSteps:
    """Play ``num_steps`` steps and label every visited state with the solver's optimal actions.

    ``policy=None`` plays the solver itself (demonstrations); otherwise the policy acts greedily
    (DAgger). Either way a random move or turn replaces the chosen action with probability
    ``epsilon``. The steps are written straight into ``into`` (a new store of ``num_steps``
    rows if None), which is returned: no step is copied twice.
    """
    rng = np.random.default_rng(seed)
    envs = make_vec_env(env_id, num_envs, env_kwargs, autoreset_mode=AutoresetMode.SAME_STEP)
    if stats is None:
        stats = EpisodeStats(num_envs, next_step_autoreset=False)
    if into is None:
        space = envs.single_observation_space
        into = LabelledSteps(
            num_steps, space["image"].shape, space["text"].shape[0], text_dtype=space["text"].dtype
        )
    obs, _ = envs.reset(seed=seed)
    remaining = num_steps
    while remaining > 0:
        mask = solver.optimal_action_mask(envs.get_state())
        take = min(remaining, num_envs)
        into.add(obs["image"][:take], obs["text"][:take], mask[:take])
        remaining -= take
        if remaining == 0:
            break
        if policy is None:
            actions = solver.expert_actions(envs.get_state(), rng)
        else:
            actions = policy.act(obs, deterministic=True)
        # Random detours never STOP: a random STOP would end the episode instead of showing
        # the way back (as in fake_traces.generate).
        explore = rng.random(num_envs) < epsilon
        actions = np.where(explore, rng.integers(0, int(Action.STOP), num_envs), actions)
        obs, reward, terminated, truncated, info = envs.step(actions)
        done = terminated | truncated
        success = info["final_info"]["success"] if done.any() else np.zeros(num_envs, dtype=bool)
        stats.update(reward, terminated, truncated, success)
    envs.close()
    return into


#: Tie-break order of canonical targets: move on when moving is optimal, then turn, back up, stop.
CANONICAL_ORDER = (int(Action.FORWARD), int(Action.LEFT), int(Action.RIGHT), int(Action.BACKWARD), int(Action.STOP))


def canonical_targets(mask: torch.Tensor) -> torch.Tensor:
    """One-hot ``(B, A)`` of each row's first optimal action in :data:`CANONICAL_ORDER`."""
    order = torch.tensor(CANONICAL_ORDER, device=mask.device)
    first = mask[:, order].float().argmax(dim=1)  # first True in priority order
    out = torch.zeros_like(mask)
    out[torch.arange(len(mask), device=mask.device), order[first]] = True
    return out


def bc_loss(
    logits: torch.Tensor,
    mask: torch.Tensor,
    label_smoothing: float = 0.0,
    class_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy to the uniform distribution over each state's optimal actions.

    Returns the loss and diagnostics (0-d tensors): accuracy (the greedy action is a target
    action) and entropy.
    """
    target = mask.float() / mask.float().sum(dim=1, keepdim=True)
    if label_smoothing > 0:
        target = (1 - label_smoothing) * target + label_smoothing / logits.shape[1]
    logp = F.log_softmax(logits, dim=1)
    per_sample = -(target * logp).sum(dim=1)
    if class_weight is not None:
        w = (mask.float() / mask.float().sum(dim=1, keepdim=True) * class_weight).sum(dim=1)
        loss = (w * per_sample).sum() / w.sum()
    else:
        loss = per_sample.mean()
    with torch.no_grad():
        accuracy = mask.gather(1, logits.argmax(dim=1, keepdim=True)).float().mean()
        entropy = -(logp.exp() * logp).sum(dim=1).mean()
    return loss, {"train/accuracy": accuracy, "train/entropy_loss": -entropy}


def _class_weight(data: LabelledSteps, device: torch.device) -> torch.Tensor:
    share = (data.mask / data.mask.sum(axis=1, keepdims=True)).mean(axis=0)
    weight = 1.0 / (NUM_ACTIONS * np.maximum(share, 1e-3))
    return torch.as_tensor(weight, dtype=torch.float32, device=device)


def learning_rate(cfg: BCConfig, step: int) -> float:
    """Warm-up, then constant or linearly annealed to 0 at ``total_steps``."""
    lr = cfg.learning_rate * (1 - step / cfg.total_steps if cfg.anneal_lr else 1.0)
    if step < cfg.warmup_steps:
        lr *= (step + 1) / (cfg.warmup_steps + 1)
    return lr


@dataclass
class BCState(TrainerState):
    """What behaviour cloning carries between gradient steps (saved in resume checkpoints). The
    labelled steps are not: the demonstrations are a pure function of the seed and are made
    again, and each DAgger round's steps are saved in the run directory's ``data/``."""

    optimizer: torch.optim.Optimizer
    rounds_done: int = 0
    """DAgger rounds collected so far."""


def train(config: BCConfig, callback: Callback | None = None) -> TrainResult:
    """Train a policy by behaviour cloning (+ DAgger) and evaluate it on held-out levels.

    ``callback(iteration)`` is called after every gradient step. Writes ``runs_dir/run_name/``
    (config.json, TensorBoard events, checkpoints/, eval.csv, and the DAgger rounds' labelled
    steps in data/). Ctrl-C saves a resume checkpoint and returns; ``resume=True`` continues,
    ending with the same weights as an uninterrupted run.
    """
    cfg = config
    augmenter = make_augmenter(cfg.env_id, cfg.env_kwargs, cfg.augment)
    run = TrainingRun(cfg, "bc")
    policy = run.policy
    state = BCState(optimizer=make_adam(policy.parameters(), cfg.learning_rate, weight_decay=cfg.weight_decay))
    resumed = run.start(state)
    data_dir = run.run.path / "data"
    data_dir.mkdir(exist_ok=True)
    data = demonstrations(cfg, run.observation_space)
    if not resumed and cfg.dataset is None:
        run.count(env_steps=cfg.data_steps)
    for k in range(1, state.rounds_done + 1):
        data.extend(LabelledSteps.load(data_dir / f"round{k}.npz"))
    class_weight = _class_weight(data, run.device) if cfg.class_balance else None
    run.eval_columns = lambda: {"data_steps": len(data)}
    phase_len = max(1, cfg.total_steps // (cfg.dagger_rounds + 1))

    policy.train()
    for iteration in run.iterations(state, callback):
        if state.rounds_done < cfg.dagger_rounds and iteration >= (state.rounds_done + 1) * phase_len:
            state.rounds_done += 1
            new, stats = dagger_round(policy, cfg, state.rounds_done)
            new.save(data_dir / f"round{state.rounds_done}.npz")
            data.extend(new)
            run.count(env_steps=cfg.dagger_steps)
            if cfg.class_balance:
                class_weight = _class_weight(data, run.device)
            run.log(stats.scalars())

        idx = run.rng.integers(0, len(data), cfg.batch_size)
        batch = {"image": torch.from_numpy(data.image[idx]).to(run.device),
                 "text": torch.from_numpy(data.text[idx]).to(run.device)}
        mask = torch.from_numpy(data.mask[idx]).to(run.device)
        set_learning_rate(state.optimizer, learning_rate(cfg, iteration))
        scalars = bc_update(policy, state.optimizer, batch, mask, cfg, class_weight, run.rng, augmenter)
        run.count(gradient_steps=1)
        run.log({**scalars, "train/learning_rate": state.optimizer.param_groups[0]["lr"],
                 "train/data_steps": len(data)})
    return run.finish()


def demonstrations(cfg: BCConfig, space: Any) -> LabelledSteps:
    """The solver's demonstrations: the trace file ``cfg.dataset``, or ``cfg.data_steps`` steps
    played here (data round 0), in arrays sized for the DAgger rounds to come."""
    if cfg.dataset is not None:
        return LabelledSteps.from_trace_file(cfg.dataset, cfg.capacity())
    data = LabelledSteps(cfg.capacity(), space["image"].shape, space["text"].shape[0], text_dtype=space["text"].dtype)
    collect(cfg.env_id, cfg.train_env_kwargs(), cfg.num_envs, cfg.data_steps, data_seed(cfg.seed, 0),
            cfg.expert_epsilon, None, into=data)
    return data


def dagger_round(policy: MultimodalPolicy, cfg: BCConfig, round_index: int) -> tuple[LabelledSteps, EpisodeStats]:
    """DAgger round ``round_index``: ``dagger_steps`` steps of the current policy (greedy, with
    ``dagger_epsilon`` random moves), each labelled with the solver's optimal actions."""
    stats = EpisodeStats(cfg.num_envs, next_step_autoreset=False)
    policy.eval()
    new = collect(cfg.env_id, cfg.train_env_kwargs(), cfg.num_envs, cfg.dagger_steps,
                  data_seed(cfg.seed, round_index), cfg.dagger_epsilon, policy, stats)
    policy.train()
    return new, stats


def bc_update(
    policy: MultimodalPolicy,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    mask: torch.Tensor,
    cfg: BCConfig,
    class_weight: torch.Tensor | None,
    rng: np.random.Generator,
    augmenter: SymmetryAugment | None,
) -> dict[str, torch.Tensor]:
    """One gradient step on a minibatch of labelled steps (``mask``: every optimal action);
    returns the loss and diagnostics as 0-d tensors."""
    if augmenter is not None:
        batch["image"], batch["text"], mask = augmenter(batch["image"], batch["text"], mask, rng)
    if cfg.word_dropout > 0:
        batch["text"] = drop_words(batch["text"], cfg.word_dropout, rng, corner_word_ids())
    out = policy(batch, heads=("logits", "features"))
    target_mask = canonical_targets(mask) if cfg.targets == "canonical" else mask
    loss, scalars = bc_loss(out["logits"], target_mask, cfg.label_smoothing, class_weight)
    with torch.no_grad():  # greedy action optimal (any optimal action counts)
        scalars["train/accuracy"] = mask.gather(1, out["logits"].argmax(dim=1, keepdim=True)).float().mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
    optimizer.step()
    return {**scalars, "train/loss": loss.detach(), "train/grad_norm": grad_norm.detach(),
            "train/active_units": active_units(out["features"])}
