"""Double DQN through the one policy network: one loop, top to bottom.

Each iteration:

1. act: epsilon-greedy on the online network's Q head in ``num_envs`` games of the native
   vector env, epsilon decaying linearly from ``exploration_initial_eps`` to
   ``exploration_final_eps`` over ``exploration_fraction`` of the budget;
2. store the step in the replay ring (:mod:`algorithms.replay`: each frame once, next
   observations read from the following row of the same game, autoreset rows never sampled);
3. every ``train_freq`` iterations, once ``learning_starts`` transitions are stored,
   ``gradient_steps`` updates on minibatches of n-step transitions: the online network picks
   the next action, the target network values it (Double DQN, van Hasselt et al. 2016), Huber
   loss, gradient-norm clipping; optionally a large-margin loss towards the solver's optimal
   actions (DQfD's supervised loss) whose weight decays to 0;
4. target network: ``tau``-weighted copy (``tau=1``: hard copy) every
   ``target_update_interval`` updates;
5. stable-baselines3's DQN log names, held-out evaluation, checkpoints, progress bar.

Only the shared encoder and the Q head are trained (the optimizer holds just those
parameters); the policy's logits and value heads stay as they were (e.g. from BC). The trained
network acts through its Q head (``policy.acting_head = "q"``, saved in checkpoints), so
``evaluate`` and ``agents.load`` act with argmax Q on a DQN checkpoint.

Time-limit truncation is not termination: a truncated transition bootstraps from the episode's
last observation. Checkpoints leave the replay buffer out unless ``save_buffer``; with it,
a resumed run ends with exactly the weights of an uninterrupted one.

Choices that made it learn on ``Penguin-Bare-v0`` (measured, 2 CPU cores):

- The trunk died first. With the network's default Q head (orthogonal gain 1: initial Q values
  of about +-0.5 against returns near 0) and the full learning rate from the first step, the
  trunk's ReLUs switched off for every input one after another (87% active after 10k env steps,
  16% after 250k; ``train/active_units`` logs it) and Q became the same for every state. A
  small Q head (:attr:`DQNConfig.small_q_init`), a learning-rate warm-up, a lower rate
  (2.5e-4) and prioritized replay (reward transitions are ~0.2% of the data) together keep
  ~85% active (not separated: one run with all four).
- ``gamma=0.95``: see :attr:`DQNConfig.gamma`.
- Advantage learning (:attr:`DQNConfig.advantage_learning`, in the Bare preset): the greedy
  policy's remaining failures were loops far from the gold, where the best action leads the
  next by only ``gamma**d * (1 - gamma)``; widening that gap tenfold took the three seeds from
  85-88% to 90.6-97.0% greedy success in 20 minutes.
- Exploration over the first 10% of the budget: in collect tasks STOP ends the episode, so
  while epsilon is large episodes last ~5 steps; the greedy policy must take over early.
  :attr:`DQNConfig.explore_stop` off (in the Bare preset) keeps STOP out of the random actions
  instead: with it the slow seed's 20-minute greedy success went from 90.6% to 96.0% and the
  three seeds end at 95.4-96.8%.

On ``Penguin-Gold-v0`` (three gold pieces, no curriculum) three more things mattered:

- Without advantage learning the trunk died slowly (active units 0.27 after 2M env steps) and
  30 minutes ended at 0% greedy success; with it the trunk stays alive and the runs learn.
- STOP among epsilon's random actions ended the exploring episodes early (a random STOP every
  ~100 steps at epsilon 0.05), so the buffer held few episodes that collected all three pieces.
  Keeping STOP out of them (``explore_stop=False``, the Gold preset) took 30-minute greedy
  success from 6.6%, 38.4% and 15.4% (seeds 0-2) to 90.8%, 81.8% and 59.6%.
- The held-out phrasings were the rest of the gap: a run that played its training levels
  perfectly had 91.7% greedy success on held-out levels with training phrasings and 53.7% with
  the held-out ones. :attr:`DQNConfig.word_dropout` (0.35), with half the replay ratio (twice
  the env steps in 30 minutes), is the Gold preset (README, "Double DQN").
"""

from __future__ import annotations

import copy
import pickle
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

import agents
from agents.network import epsilon_greedy, orthogonal_init
from agents.spaces import space_differences, space_to_dict
from algorithms.augment import (
    SymmetryAugment,
    check_augment,
    corner_word_ids,
    drop_words,
    make_augmenter,
)
from algorithms.common import Callback, TrainerConfig, TrainingRun, TrainResult, make_adam, need
from algorithms.envs import make_vec_env
from algorithms.interrupt import GracefulInterrupt
from algorithms.logger import EpisodeStats
from algorithms.onpolicy import Every, RadiusCurriculum
from algorithms.progress import Progress
from algorithms.replay import ReplayBatch, ReplayBuffer
from fake_traces import solver
from penguin_env.core import Action


@dataclass
class DQNConfig(TrainerConfig):
    """Double DQN hyper-parameters (plus every :class:`~algorithms.common.TrainerConfig` field).

    :meth:`for_env` applies the per-env presets of :data:`ENV_PRESETS` (the benchmark's
    settings) to these defaults.
    """

    total_env_steps: int = 2_000_000
    """Env steps of training (the budget); ``time_limit`` may stop it earlier."""
    num_envs: int = 32
    """Games stepped together."""
    buffer_size: int = 100_000
    """Transitions the replay ring holds (rounded up to whole steps of ``num_envs`` games)."""
    learning_starts: int = 10_000
    """Transitions stored before the first update (after a resume without the buffer, the ring
    refills this far first)."""
    batch_size: int = 128
    """Transitions per gradient step."""
    learning_rate: float = 2.5e-4
    """Adam learning rate (constant after the warm-up)."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    warmup_steps: int = 500
    """Gradient steps of linear learning-rate warm-up from 0 (as BC's): large early steps switch
    the trunk's ReLUs off for every input, and a dead trunk makes Q the same for every state."""
    small_q_init: bool = True
    """Start the Q head with small weights (orthogonal, gain 0.01) unless ``init_from`` is a DQN
    checkpoint. The network's default Q head (gain 1) starts with Q values of about +-0.5, far
    from the returns of a sparse-reward task, and regressing them to 0 is fastest by switching
    the trunk off."""
    gamma: float = 0.95
    """Discount factor. Below the usual 0.99 on purpose: optimal paths are ~5-15 steps, and with
    0.99 a wasted turn changes Q by ~1%, less than the network's error, so greedy actions
    drift; with 0.95 it is ~5%."""
    n_step: int = 3
    """Rewards summed before bootstrapping (1: one-step DQN); a sum stops at its episode's end."""
    train_freq: int = 1
    """Vector-env steps (of ``num_envs`` games each) between rounds of updates."""
    gradient_steps: int = 1
    """Gradient steps per round. Replay ratio (samples trained per env step) =
    ``gradient_steps * batch_size / (train_freq * num_envs)``."""
    advantage_learning: float = 0.0
    """Advantage learning's ``alpha`` (Baird 1999; Bellemare et al. 2016, "Increasing the action
    gap"): each target loses ``alpha * (max_a Q_target(s, a) - Q_target(s, a_taken))``. The
    greedy action keeps its value and every other action's gap to it grows by ``1 / (1 -
    alpha)``, so the network's errors flip fewer greedy choices where the true gaps are small
    (far from the gold, ``gamma**d * (1 - gamma)``). 0: plain Double DQN. It costs the target
    network's pass over the observations too (one batched pass with the next observations)."""
    target_update_interval: int = 1_000
    """Gradient steps between target-network updates."""
    tau: float = 1.0
    """Target update weight: ``target <- tau * online + (1 - tau) * target`` (1: hard copy)."""
    exploration_fraction: float = 0.1
    """Fraction of the budget over which epsilon decays linearly."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start."""
    exploration_final_eps: float = 0.05
    """Epsilon after ``exploration_fraction`` of the budget."""
    explore_stop: bool = True
    """Whether epsilon's random actions include STOP. In the collect tasks STOP ends the episode
    as a failure, so uniformly random actions end most episodes within a few steps, while random
    moves and turns wander on and collect gold. Off, random actions are the four moves and turns
    and only the greedy choice can STOP (the rules are unchanged). Keep it on where a task
    succeeds by STOP (Lang's turn and go-to instructions): random STOPs find those successes."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""
    prioritized: bool = True
    """Proportional prioritized replay (draws in proportion to TD error, importance-weighted loss)."""
    priority_alpha: float = 0.6
    """Prioritization exponent (0: uniform)."""
    priority_beta: float = 0.4
    """Importance-weight exponent at the start; it grows linearly to 1 over the budget."""
    augment: str = "off"
    """Symmetry augmentation of replayed transitions (``algorithms.augment``): each sampled
    transition's observation and next observation are turned by the same random multiple of 90
    degrees and mirrored half the time, its action mapped to match (LEFT and RIGHT swap under a
    mirror). The game's rules are the same in every orientation, so each stored transition
    stands for eight. ``"on"`` (an error if the env's frames are not symmetric), ``"auto"`` (on
    when they are) or ``"off"``. Off by default: on Bare it helped per env step but cost about a
    third of the env steps per second on 2 cores, and ended lower in 20 minutes (README)."""
    word_dropout: float = 0.0
    """Leave out each word of a replayed transition's instruction with this probability (corner
    words are kept; ``algorithms.augment.drop_words``, as the other trainers' option). The
    observation and its next observation lose the same words, so the target values the same
    instruction the prediction sees; acting always reads the whole instruction. On
    ``Penguin-Gold-v0`` the instruction names no choice, yet Q learned from four training
    phrasings was far worse on the two held-out ones (one run: 91.7% greedy success with
    training phrasings, 53.7% with the held-out ones). 0: off."""
    bc_coef: float = 0.0
    """Weight of a large-margin loss towards the solver's optimal actions on replayed states
    (DQfD's supervised loss; 0: learning from reward alone)."""
    bc_margin: float = 0.8
    """Margin by which optimal actions' Q values must exceed the others' under ``bc_coef``."""
    bc_decay: float = 0.5
    """Fraction of the budget over which ``bc_coef`` decays linearly to 0."""
    curriculum: bool = False
    """``Penguin-Bare-v0`` only: start with gold within ``curriculum_start`` cells and widen the
    radius by one whenever the training success rate passes ``curriculum_threshold``, up to the
    env's own ``radius`` (anywhere if unset); as PPO's."""
    curriculum_start: int = 1
    """First curriculum radius."""
    curriculum_threshold: float = 0.8
    """Training success rate (last ``curriculum_window`` episodes, exploration included) that
    widens the radius."""
    curriculum_window: int = 256
    """Episodes the curriculum's success rate is measured over."""
    save_buffer: bool = False
    """Put the replay buffer in resume checkpoints (large: about 12 kB per transition at
    64x64), so a resumed run continues bit for bit; without it the ring refills on resume."""
    log_every: int = 10_000
    """Env steps between TensorBoard dumps."""
    eval_every: int = 200_000
    """Env steps between held-out evaluations (0: only at the end)."""
    eval_episodes: int = 200
    """Held-out levels per periodic evaluation."""
    checkpoint_every: int = 250_000
    """Env steps between resume checkpoints (also written on Ctrl-C and at the end)."""

    def validate(self) -> None:
        super().validate()
        for name in ("total_env_steps", "num_envs", "buffer_size", "batch_size", "train_freq",
                     "gradient_steps", "target_update_interval", "log_every"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps!r}")
        for name in ("curriculum_start", "curriculum_window"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(0.0 <= self.curriculum_threshold <= 1.0,
             f"curriculum_threshold must be in [0, 1], got {self.curriculum_threshold!r}")
        need(
            not self.curriculum or self.env_id == "Penguin-Bare-v0",
            f"curriculum grows Penguin-Bare-v0's radius; {self.env_id} has none (set curriculum=False)",
        )
        need(self.n_step >= 1, f"n_step must be >= 1 (1: one-step targets), got {self.n_step!r}")
        need(self.learning_starts >= 0, f"learning_starts must be >= 0, got {self.learning_starts!r}")
        need(
            self.buffer_size >= self.batch_size,
            f"buffer_size ({self.buffer_size}) must be >= batch_size ({self.batch_size})",
        )
        need(
            self.buffer_size >= self.num_envs * (self.n_step + 2),
            f"buffer_size ({self.buffer_size}) must hold n_step + 2 = {self.n_step + 2} steps of "
            f"num_envs={self.num_envs} games (>= {self.num_envs * (self.n_step + 2)})",
        )
        need(
            self.learning_starts <= self.buffer_size,
            f"learning_starts ({self.learning_starts}) must be <= buffer_size ({self.buffer_size})",
        )
        need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate!r}")
        need(self.adam_eps > 0, f"adam_eps must be > 0, got {self.adam_eps!r}")
        need(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm!r}")
        need(0.0 < self.tau <= 1.0, f"tau must be in (0, 1] (1: hard copy), got {self.tau!r}")
        need(0.0 <= self.advantage_learning < 1.0,
             f"advantage_learning must be in [0, 1) (0: plain Double DQN), got {self.advantage_learning!r}")
        for name in ("gamma", "exploration_fraction", "exploration_initial_eps",
                     "exploration_final_eps", "bc_decay", "priority_alpha", "priority_beta"):
            need(0.0 <= getattr(self, name) <= 1.0, f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        check_augment(self.env_id, self.env_kwargs, self.augment)
        need(0.0 <= self.word_dropout < 1.0, f"word_dropout must be in [0, 1) (0: off), got {self.word_dropout!r}")
        for name in ("bc_coef", "bc_margin"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.init_from is not None:
            check_checkpoint_spaces(self.init_from, self.env_id, self.train_env_kwargs())

    @classmethod
    def for_env(cls, env_id: str, **changes: Any) -> DQNConfig:
        """The benchmark settings for ``env_id`` (:data:`ENV_PRESETS`), with ``changes`` applied."""
        return cls(**{"env_id": env_id, **ENV_PRESETS.get(env_id, {}), **changes})

    @property
    def replay_ratio(self) -> float:
        """Samples trained per env step."""
        return self.gradient_steps * self.batch_size / (self.train_freq * self.num_envs)

    def epsilon(self, progress: float) -> float:
        """Exploration rate at ``progress`` (0..1) through the budget."""
        if self.exploration_fraction <= 0:
            return self.exploration_final_eps
        frac = min(1.0, progress / self.exploration_fraction)
        return self.exploration_initial_eps + frac * (self.exploration_final_eps - self.exploration_initial_eps)

    def lr_at(self, n_updates: int) -> float:
        """Learning rate of gradient step ``n_updates + 1`` (linear warm-up, then constant)."""
        if self.warmup_steps == 0:
            return self.learning_rate
        return self.learning_rate * min(1.0, (n_updates + 1) / self.warmup_steps)

    def bc_weight(self, progress: float) -> float:
        """Weight of the solver loss at ``progress`` through the budget."""
        if self.bc_decay <= 0:
            return 0.0
        return self.bc_coef * max(0.0, 1.0 - progress / self.bc_decay)


def check_checkpoint_spaces(path: str, env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Raise ``ValueError`` if the checkpoint at ``path`` was made for other observation or action
    spaces than ``env_id`` with ``env_kwargs`` has (before any folder is made or step played)."""
    data = agents.read(path)
    probe = make_vec_env(env_id, 1, env_kwargs)
    try:
        diffs = space_differences(
            data["observation_space"], space_to_dict(probe.single_observation_space), "observation_space"
        ) + space_differences(data["action_space"], space_to_dict(probe.single_action_space), "action_space")
    finally:
        probe.close()
    need(
        not diffs,
        f"init_from {path} was made for other spaces than {env_id} with {env_kwargs}:\n  "
        + "\n  ".join(d.replace(", policy has", ", the env has") for d in diffs)
        + "\nStart from a checkpoint of the same image size and view, or change env_kwargs to match it.",
    )


#: Per-env settings of :meth:`DQNConfig.for_env`, where they differ from the defaults.
ENV_PRESETS: dict[str, dict[str, Any]] = {
    # The radius curriculum gives rewards from the first episodes (seed 1: 80% held-out success
    # after 0.8M env steps, against 46-74% after 1.0M without it). A budget a 20-minute run can
    # nearly play on 2 cores (~1.1-1.9k env steps/s) ends epsilon's decay after 150k steps and
    # the importance-weight annealing near the time limit.
    # Advantage learning widens the small action gaps far from the gold, where the greedy
    # policy's failures were loops (seeds 0-2 in 20 minutes: 85-88% greedy without it). Keeping
    # STOP out of the random actions, as on Gold, evens out the seeds (96.8%, 95.4%, 96.0%
    # against 96.0%, 97.0%, 90.6% with STOP among them).
    "Penguin-Bare-v0": {"curriculum": True, "total_env_steps": 1_500_000, "advantage_learning": 0.9,
                        "explore_stop": False},
    # On Gold advantage learning keeps the trunk alive (active units 0.95-0.99, against 0.27
    # without it, which ended at 0% in 30 minutes). Random actions without STOP keep exploring
    # episodes going and collecting gold instead of ending them (seeds 0-2 in 30 minutes: 90.8%,
    # 81.8% and 59.6% greedy success, against 6.6%, 38.4% and 15.4% with STOP among them).
    # Word dropout closes the gap to the held-out phrasings (one run: 91.7% greedy success with
    # training phrasings, 53.7% with the held-out ones), and half the replay ratio (2) plays
    # twice the env steps in 30 minutes; epsilon still decays over the first 200k env steps
    # (seeds 0-2 in 30 minutes: 90.0%, 93.6% and 93.6% greedy success).
    "Penguin-Gold-v0": {"advantage_learning": 0.9, "explore_stop": False, "word_dropout": 0.35,
                        "train_freq": 2, "total_env_steps": 3_500_000, "exploration_fraction": 0.0571},
}


def double_dqn_targets(
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
    returns: torch.Tensor,
    discounts: torch.Tensor,
) -> torch.Tensor:
    """``returns + discounts * Q_target(s', argmax_a Q_online(s', a))``: the online network picks
    the next action and the target network values it (Double DQN)."""
    best = next_q_online.argmax(dim=1, keepdim=True)
    return returns + discounts * next_q_target.gather(1, best).squeeze(1)


def advantage_learning_targets(
    targets: torch.Tensor, q_target_now: torch.Tensor, actions: torch.Tensor, alpha: float
) -> torch.Tensor:
    """``targets - alpha * (max_a Q_target(s, a) - Q_target(s, a_taken))`` (advantage learning):
    unchanged for the target network's greedy action, lower for every other."""
    gap = q_target_now.max(dim=1).values - q_target_now.gather(1, actions[:, None]).squeeze(1)
    return targets - alpha * gap


@torch.no_grad()
def td_targets(
    online: agents.MultimodalPolicy, target: agents.MultimodalPolicy, batch: dict[str, Any], advantage_learning: float
) -> torch.Tensor:
    """The regression targets of a replayed ``batch`` (from :func:`to_tensors`): Double DQN's
    n-step targets, less advantage learning's gap term when ``advantage_learning > 0``."""
    next_online = online(batch["next_obs"], heads=("q",))["q"]
    if advantage_learning <= 0:
        next_target = target(batch["next_obs"], heads=("q",))["q"]
        return double_dqn_targets(next_online, next_target, batch["returns"], batch["discounts"])
    # One target pass over both observation batches: cheaper than two.
    both = {k: torch.cat([batch["next_obs"][k], batch["obs"][k]]) for k in ("image", "text")}
    next_target, target_now = target(both, heads=("q",))["q"].chunk(2)
    y = double_dqn_targets(next_online, next_target, batch["returns"], batch["discounts"])
    return advantage_learning_targets(y, target_now, batch["actions"], advantage_learning)


def margin_loss(q: torch.Tensor, optimal: torch.Tensor, margin: float) -> torch.Tensor | None:
    """DQfD's large-margin loss with a set of optimal actions:
    ``max_a [Q(s, a) + margin * (a not optimal)] - max_{a optimal} Q(s, a)``, averaged over the
    states that have an optimal action (None when none has)."""
    has = optimal.any(dim=1)
    if not has.any():
        return None
    q, optimal = q[has], optimal[has]
    augmented = q + margin * (~optimal).float()
    best_optimal = q.masked_fill(~optimal, float("-inf")).max(dim=1).values
    return (augmented.max(dim=1).values - best_optimal).mean()


def to_tensors(batch: ReplayBatch, device: torch.device) -> dict[str, Any]:
    def obs(o: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v).to(device) for k, v in o.items()}

    return {
        "obs": obs(batch.obs),
        "next_obs": obs(batch.next_obs),
        "actions": torch.from_numpy(batch.actions).to(device),
        "returns": torch.from_numpy(batch.returns).to(device),
        "discounts": torch.from_numpy(batch.discounts).to(device),
        "labels": None if batch.labels is None else torch.from_numpy(batch.labels).to(device),
    }


def augment_transitions(augmenter: SymmetryAugment, batch: dict[str, Any], rng: np.random.Generator) -> None:
    """Apply one random symmetry per transition of ``batch`` (from :func:`to_tensors`), in place:
    the same one to its observation and next observation, with its action and optimal-action
    labels mapped to match. Returns and discounts do not change: the transformed transition is
    a transition of the transformed game."""
    actions = batch["actions"]
    n, num_actions = actions.shape[0], len(Action)
    which = augmenter.draw(n, rng)
    per_action = F.one_hot(actions, num_actions)[:, None]
    if batch["labels"] is not None:
        per_action = torch.cat([per_action, batch["labels"][:, None].to(per_action.dtype)], dim=1)
    obs, next_obs = batch["obs"], batch["next_obs"]
    obs["image"], obs["text"], per_action = augmenter.apply_each(obs["image"], obs["text"], per_action, which)
    next_obs["image"], next_obs["text"], _ = augmenter.apply_each(
        next_obs["image"], next_obs["text"], per_action[:, 0], which
    )
    batch["actions"] = per_action[:, 0].argmax(dim=1)
    if batch["labels"] is not None:
        batch["labels"] = per_action[:, 1].bool()


def drop_replayed_words(
    batch: dict[str, Any], rate: float, rng: np.random.Generator, protected: torch.Tensor | None = None
) -> None:
    """Word dropout on a replayed ``batch`` (from :func:`to_tensors`), in place: each
    transition's observation and next observation lose the same words (they hold the same
    instruction: the replay ring never reads across an episode's end), so the target values
    the instruction the prediction sees. A next observation with another instruction than its
    observation would lose words of its own."""
    text, next_text = batch["obs"]["text"], batch["next_obs"]["text"]
    dropped = drop_words(text, rate, rng, protected)
    same = (next_text == text).all(dim=1, keepdim=True)
    if bool(same.all()):
        next_dropped = dropped.clone()
    else:
        next_dropped = torch.where(same, dropped, drop_words(next_text, rate, rng, protected))
    batch["obs"]["text"], batch["next_obs"]["text"] = dropped, next_dropped


def train(config: DQNConfig, callback: Callback | None = None) -> TrainResult:
    """Train with Double DQN and evaluate on held-out levels.

    ``callback(iteration)`` runs after every iteration (one vector-env step and its updates).
    Writes ``runs/<name>/`` (config.json, TensorBoard events, eval.csv, checkpoints/). Ctrl-C
    saves a resume checkpoint (network, target network, optimizer, RNGs, the vector env's exact
    state, and the replay buffer if ``save_buffer``) and returns; ``resume=True`` continues.
    ``TrainResult.steps`` counts gradient steps.
    """
    cfg = config
    session = TrainingRun(cfg, "dqn", acting_head="q")
    policy, rng, device, logger = session.policy, session.rng, session.device, session.logger
    from_dqn = session.init_checkpoint is not None and session.init_checkpoint.get("trainer") == "dqn"
    if cfg.small_q_init and not from_dqn:
        orthogonal_init(policy.q_head, 0.01)
    target = copy.deepcopy(policy)
    target.requires_grad_(False)
    target.eval()
    trained = list(policy.encoder.parameters()) + list(policy.q_head.parameters())
    optimizer = make_adam(trained, cfg.learning_rate, cfg.adam_eps)
    generator = torch.Generator().manual_seed(cfg.seed)
    random_actions = None if cfg.explore_stop else [int(a) for a in Action if a != Action.STOP]
    augmenter = make_augmenter(cfg.env_id, cfg.env_kwargs, cfg.augment)
    corner_ids = corner_word_ids()
    stats = EpisodeStats(cfg.num_envs)
    curriculum = RadiusCurriculum(cfg)  # type: ignore[arg-type]  # reads only the curriculum fields
    recent_successes: list[float] = []
    N = cfg.num_envs

    probe = make_vec_env(cfg.env_id, 1, cfg.train_env_kwargs())
    space = probe.single_observation_space
    probe.close()
    buffer = ReplayBuffer(
        cfg.buffer_size,
        N,
        space["image"].shape,
        space["text"].shape[0],
        int(np.max(space["text"].high)) + 1,
        int(session.action_space.n),
        labels=cfg.bc_coef > 0,
        prioritized=cfg.prioritized,
        alpha=cfg.priority_alpha,
        n_step=cfg.n_step,
    )

    iteration, env_steps, n_updates = 0, 0, 0
    saved = session.resume_state()
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        target.load_state_dict(saved["target"])
        iteration, env_steps, n_updates = (int(saved[k]) for k in ("iteration", "env_steps", "n_updates"))
        generator.set_state(saved["generator"])
        envs = pickle.loads(saved["envs"])
        obs = {k: v.numpy() for k, v in saved["obs"].items()}
        resetting = saved["resetting"].numpy()
        curriculum.radius = saved["radius"]
        recent_successes = list(saved["recent_successes"])
        if saved.get("buffer") is not None:
            buffer.load_state_dict(saved["buffer"])
    else:
        envs = make_vec_env(cfg.env_id, N, curriculum.env_kwargs(cfg.train_env_kwargs()))
        obs, _ = envs.reset(seed=cfg.seed)
        # Games whose last step ended an episode: their next step only resets them.
        resetting = np.zeros(N, dtype=bool)
        target.load_state_dict(policy.state_dict())
    session.write_config(bytes_per_transition=buffer.bytes_per_transition(), replay_ratio=cfg.replay_ratio)

    def resume_state() -> dict[str, Any]:
        return {
            "optimizer": optimizer.state_dict(),
            "target": target.state_dict(),
            "iteration": iteration,
            "env_steps": env_steps,
            "n_updates": n_updates,
            "generator": generator.get_state(),
            "rng": session.rng_state(),
            # The vector env's exact state, pickled: read back only when resuming this run.
            "envs": pickle.dumps(envs),
            "obs": {k: torch.from_numpy(np.array(v)) for k, v in obs.items()},
            "resetting": torch.from_numpy(resetting.copy()),
            "radius": curriculum.radius,
            "recent_successes": [float(x) for x in recent_successes],
            "buffer": buffer.state_dict() if cfg.save_buffer else None,
        }

    progress = Progress(cfg.total_env_steps, initial=env_steps, enabled=cfg.progress, desc=f"dqn {cfg.env_id}")
    eval_due, checkpoint_due = Every(cfg.eval_every, env_steps), Every(cfg.checkpoint_every, env_steps)
    log_due = Every(cfg.log_every, env_steps)
    losses: list[torch.Tensor] = []
    q_means: list[torch.Tensor] = []
    active: list[torch.Tensor] = []
    bc_losses: list[torch.Tensor] = []
    timing = {"act": 0.0, "env": 0.0, "train": 0.0}
    log_tick, log_steps = time.perf_counter(), env_steps
    with GracefulInterrupt() as stop:
        while env_steps < cfg.total_env_steps:
            done_frac = env_steps / cfg.total_env_steps
            epsilon = cfg.epsilon(done_frac)

            # -- 1. act ----------------------------------------------------------------------
            t0 = time.perf_counter()
            policy.eval()
            with torch.no_grad():
                q = policy({"image": obs["image"], "text": obs["text"]}, heads=("q",))["q"]
                actions = epsilon_greedy(q, epsilon, generator, random_actions).cpu().numpy()
            labels = solver.optimal_action_mask(envs.game.state) if buffer.labels is not None else None
            t1 = time.perf_counter()

            # -- 2. step and store ----------------------------------------------------------------
            next_obs, reward, term, trunc, info = envs.step(actions)
            buffer.add(obs, actions, reward, term, trunc, ~resetting, labels)
            stats.update(reward, term, trunc, info["success"])
            resetting = term | trunc
            if resetting.any() and curriculum.radius is not None:
                recent_successes.extend(info["success"][resetting].astype(float).tolist())
                recent_successes = recent_successes[-cfg.curriculum_window:]
            obs = next_obs
            env_steps += N
            iteration += 1
            t2 = time.perf_counter()

            # -- 3. learn --------------------------------------------------------------------------
            filled = min(buffer.count, buffer.rows) * N
            if filled >= max(cfg.learning_starts, cfg.batch_size) and iteration % cfg.train_freq == 0:
                policy.train()
                optimizer.param_groups[0]["lr"] = cfg.lr_at(n_updates)
                bc_coef = cfg.bc_weight(done_frac)
                beta = cfg.priority_beta + done_frac * (1.0 - cfg.priority_beta)
                for _ in range(cfg.gradient_steps):
                    drawn = buffer.sample(cfg.batch_size, rng, cfg.n_step, cfg.gamma, beta)
                    batch = to_tensors(drawn, device)
                    if augmenter is not None:
                        augment_transitions(augmenter, batch, rng)
                    if cfg.word_dropout > 0:
                        drop_replayed_words(batch, cfg.word_dropout, rng, corner_ids)
                    y = td_targets(policy, target, batch, cfg.advantage_learning)
                    out = policy(batch["obs"], heads=("q", "features"))
                    q_all = out["q"]
                    q_taken = q_all.gather(1, batch["actions"][:, None]).squeeze(1)
                    huber = F.smooth_l1_loss(q_taken, y, reduction="none")
                    if drawn.weights is not None:
                        loss = (torch.from_numpy(drawn.weights).to(device) * huber).mean()
                        buffer.update_priorities(drawn, (q_taken - y).detach().cpu().numpy())
                    else:
                        loss = huber.mean()
                    if bc_coef > 0 and batch["labels"] is not None:
                        bc_loss = margin_loss(q_all, batch["labels"], cfg.bc_margin)
                        if bc_loss is not None:
                            loss = loss + bc_coef * bc_loss
                            bc_losses.append(bc_loss.detach())
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(trained, cfg.max_grad_norm)
                    optimizer.step()
                    n_updates += 1
                    losses.append(loss.detach())
                    q_means.append(q_taken.detach().mean())
                    active.append((out["features"].detach() > 0).any(dim=0).float().mean())
                    # -- 4. target network ------------------------------------------------------
                    if n_updates % cfg.target_update_interval == 0:
                        with torch.no_grad():
                            for t_param, o_param in zip(target.parameters(), policy.parameters(), strict=True):
                                t_param.lerp_(o_param, cfg.tau)
            t3 = time.perf_counter()
            timing["act"] += t1 - t0
            timing["env"] += t2 - t1
            timing["train"] += t3 - t2

            # -- 5. curriculum, logging, evaluation, checkpoints ----------------------------------
            if curriculum.advance(recent_successes):
                # Cut every game's episode as a time limit would (the last step bootstraps from
                # the observation it reached, stored as an invalid row like an autoreset's),
                # then play the wider radius.
                buffer.truncate_last()
                buffer.add(obs, np.zeros(N, np.int64), np.zeros(N, np.float32), np.zeros(N, bool),
                           np.zeros(N, bool), np.zeros(N, bool),
                           None if buffer.labels is None else np.zeros((N, buffer.labels.shape[2]), bool))
                recent_successes.clear()
                envs.close()
                envs = make_vec_env(cfg.env_id, N, curriculum.env_kwargs(cfg.train_env_kwargs()))
                obs, _ = envs.reset(seed=cfg.seed + 7919 * iteration)
                resetting = np.zeros(N, dtype=bool)
                stats = EpisodeStats(N)
                progress.write(f"curriculum: radius {curriculum.radius} at {env_steps} env steps")
            if log_due.due(env_steps):
                now = time.perf_counter()
                logger.record_dict(stats.scalars())
                logger.record_dict({
                    "rollout/exploration_rate": epsilon,
                    "train/learning_rate": optimizer.param_groups[0]["lr"],
                    "train/n_updates": n_updates,
                    "time/fps": (env_steps - log_steps) / max(now - log_tick, 1e-9),
                    "time/total_timesteps": env_steps,
                    **{f"time/{k}_s": v for k, v in timing.items()},
                })
                if curriculum.radius is not None:
                    logger.record("curriculum/radius", curriculum.radius)
                if losses:
                    logger.record("train/loss", float(torch.stack(losses).mean()))
                    logger.record("train/q_mean", float(torch.stack(q_means).mean()))
                    # Share of trunk units active for some state of the batch (a dead trunk: ~0).
                    logger.record("train/active_units", float(torch.stack(active).mean()))
                if bc_losses:
                    logger.record("train/bc_loss", float(torch.stack(bc_losses).mean()))
                    logger.record("train/bc_coef", cfg.bc_weight(done_frac))
                logger.dump(env_steps)
                losses, q_means, active, bc_losses = [], [], [], []
                timing = dict.fromkeys(timing, 0.0)
                log_tick, log_steps = now, env_steps
                scalars = stats.scalars()
                progress.update(0, success=scalars.get("rollout/success_rate"), eps=epsilon,
                                eval=session.last_success)
            if eval_due.due(env_steps) and env_steps < cfg.total_env_steps:
                session.evaluate(env_steps, cfg.eval_episodes, resume_state, env_steps=env_steps)
                logger.dump(env_steps)
            if checkpoint_due.due(env_steps):
                session.save(session.run.last_checkpoint, resume_state(), env_steps=env_steps)
            progress.update(N)
            if session.loop_should_end(iteration, callback, stop):
                break
    progress.close()
    envs.close()
    return session.finish(n_updates, env_steps, resume_state, env_steps, {"env_steps": env_steps})
