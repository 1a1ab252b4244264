"""Double DQN through the one policy network.

One iteration, top to bottom (:func:`train`):

1. act (:func:`act`): epsilon-greedy on the online network's Q head in ``num_envs`` games of
   the native vector env, epsilon decaying linearly from ``exploration_initial_eps`` to
   ``exploration_final_eps`` over ``exploration_fraction`` of the budget;
2. store the step in the replay ring (:mod:`algorithms.replay`: each frame once, next
   observations read from the following row of the same game, autoreset rows never sampled);
3. update (:func:`dqn_update`): every ``train_freq`` iterations, once ``learning_starts``
   transitions are stored, ``gradient_steps`` updates on minibatches of n-step transitions: the
   online network picks the next action, the target network values it (Double DQN, van Hasselt
   et al. 2016), Huber loss, gradient-norm clipping; optionally a large-margin loss towards the
   solver's optimal actions (DQfD's supervised loss) whose weight decays to 0; the target
   network follows the online one (``tau``-weighted) every ``target_update_interval`` steps;
4. log: stable-baselines3's DQN names.

Only the shared encoder and the Q head are trained (the optimizer holds just those
parameters); the policy's logits and value heads stay as they were (e.g. from BC). The trained
network acts through its Q head (``policy.acting_head = "q"``, saved in checkpoints), so
``evaluate`` and ``agents.load`` act with argmax Q on a DQN checkpoint.

Time-limit truncation is not termination: a truncated transition bootstraps from the episode's
last observation. Resume checkpoints leave the replay buffer out unless ``save_buffer``; with
it, a resumed run ends with exactly the weights of an uninterrupted one.

What keeps the trunk alive and the greedy policy sharp (the experiment log has the runs): a
small Q head and a learning-rate warm-up (large early steps switch the trunk's ReLUs off for
every input; ``train/active_units`` logs it), prioritized replay (reward transitions are rare),
``gamma=0.95``, advantage learning (it widens the small action gaps far from the gold), and STOP
kept out of epsilon's random actions in collect tasks.
"""

from __future__ import annotations

import copy
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
from algorithms.auxiliary import aux_loss, aux_targets, check_aux
from algorithms.config import CurriculumConfig, TrainerConfig, need
from algorithms.curriculum import RadiusCurriculum
from algorithms.diagnostics import active_units
from algorithms.driver import Callback, TrainingRun, TrainResult
from algorithms.envs import EnvStepper, make_vec_env
from algorithms.optim import make_adam, move_towards, set_learning_rate
from algorithms.replay import ReplayBatch, ReplayBuffer
from algorithms.trainer_state import TrainerState, make_generator
from fake_traces import solver
from penguin_env import NUM_ACTIONS
from penguin_env.core import Action


@dataclass
class DQNConfig(TrainerConfig, CurriculumConfig):
    """Double DQN hyper-parameters (plus every :class:`~algorithms.config.TrainerConfig` field
    and the radius curriculum's)."""

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
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over the planned ``total_env_steps`` (after the
    warm-up), as PPO does, so that late updates shrink."""
    warmup_steps: int = 500
    """Gradient steps of linear learning-rate warm-up from 0 (as BC's): large early steps switch
    the trunk's ReLUs off for every input, and a dead trunk makes Q the same for every state."""
    small_q_init: bool = True
    """Start the Q head with small weights (orthogonal, gain 0.01) unless ``init_from`` is a DQN
    checkpoint. The network's default Q head (gain 1) starts with Q values of about +-0.5, far
    from the returns of a sparse-reward task, and regressing them to 0 is fastest by switching
    the trunk off."""
    gamma: float = 0.95
    """Discount factor. Below the usual 0.99 on purpose: with 0.99 a wasted turn changes Q by
    about 1%, less than the network's error, so greedy actions drift; with 0.95 by about 5%."""
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
    when they are) or ``"off"``."""
    word_dropout: float = 0.0
    """Leave out each word of a replayed transition's instruction with this probability (corner
    words are kept; ``algorithms.augment.drop_words``, as the other trainers' option). The
    observation and its next observation lose the same words, so the target values the same
    instruction the prediction sees; acting always reads the whole instruction. Q fitted to the
    training phrasings alone carries over poorly to the held-out ones, even where the
    instruction names no choice. 0: off."""
    bc_coef: float = 0.0
    """Weight of a large-margin loss towards the solver's optimal actions on replayed states
    (DQfD's supervised loss; 0: learning from reward alone)."""
    bc_margin: float = 0.8
    """Margin by which optimal actions' Q values must exceed the others' under ``bc_coef``."""
    bc_decay: float = 0.5
    """Fraction of the budget over which ``bc_coef`` decays linearly to 0."""
    aux_coef: float = 0.0
    """Weight of the auxiliary losses on what the state says: the penguin's cell and heading and
    the gold's cells, on every replayed observation (:mod:`algorithms.auxiliary`; needs
    ``policy.aux_heads``; not with ``augment``). 0: off."""
    aux_nearest: bool = False
    """Also train keypoint 2 to find the nearest gold still on the board (needs ``aux_coef > 0``
    and ``policy.nearest_keypoint``; see :attr:`algorithms.onpolicy.OnPolicyConfig.aux_nearest`)."""
    save_buffer: bool = False
    """Put the replay buffer in resume checkpoints (large: about 12 kB per transition at
    64x64), so a resumed run continues bit for bit; without it the ring refills on resume."""
    log_every: int = 10_000
    """Env steps between TensorBoard dumps (0: after every iteration)."""
    eval_every: int = 200_000
    """Env steps between held-out evaluations (0: only at the end)."""
    eval_episodes: int = 200
    """Held-out levels per periodic evaluation."""
    checkpoint_every: int = 250_000
    """Env steps between resume checkpoints (also written by wall time, on Ctrl-C and at the end)."""

    def validate(self) -> None:
        super().validate()
        self.validate_curriculum(self.env_id)
        for name in ("total_env_steps", "num_envs", "buffer_size", "batch_size", "train_freq",
                     "gradient_steps", "target_update_interval"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(self.warmup_steps >= 0, f"warmup_steps must be >= 0, got {self.warmup_steps!r}")
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
        for name in ("bc_coef", "bc_margin", "aux_coef"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.aux_coef > 0:
            need(self.augment == "off", "aux_coef > 0 and augment: the auxiliary targets are not turned with the "
                 "images; set augment='off' or aux_coef=0")
        check_aux(self)
        if self.init_from is not None:
            check_checkpoint_spaces(self.init_from, self.env_id, self.train_env_kwargs())

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

    def lr_at(self, n_updates: int, progress: float = 0.0) -> float:
        """Learning rate of gradient step ``n_updates + 1`` at ``progress`` (0..1) through the
        budget: linear warm-up, then constant, or with ``anneal_lr`` falling linearly to 0."""
        warm = 1.0 if self.warmup_steps == 0 else min(1.0, (n_updates + 1) / self.warmup_steps)
        anneal = max(0.0, 1.0 - progress) if self.anneal_lr else 1.0
        return self.learning_rate * warm * anneal

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
    n, num_actions = actions.shape[0], NUM_ACTIONS
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


@dataclass
class DQNState(TrainerState):
    """What Double DQN carries from one iteration to the next (saved in resume checkpoints; the
    replay buffer only with ``save_buffer``)."""

    optimizer: torch.optim.Optimizer
    target: torch.nn.Module
    generator: torch.Generator
    """Draws epsilon's random actions, on the policy's device."""
    envs: EnvStepper
    curriculum: RadiusCurriculum
    buffer: ReplayBuffer
    save_buffer: bool = False

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if not self.save_buffer:
            state["buffer"] = None
        return state


def train(config: DQNConfig, callback: Callback | None = None) -> TrainResult:
    """Train with Double DQN and evaluate on held-out levels. ``callback(iteration)`` runs after
    every iteration (one vector-env step and its updates).

    Writes ``runs_dir/run_name/`` (config.json, TensorBoard events, eval.csv, checkpoints/). Ctrl-C
    saves a resume checkpoint (with the replay buffer if ``save_buffer``) and returns;
    ``resume=True`` continues.
    """
    cfg = config
    run = TrainingRun(cfg, "dqn", acting_head="q")
    policy = run.policy
    from_dqn = run.init_checkpoint is not None and run.init_checkpoint.get("trainer") == "dqn"
    if cfg.small_q_init and not from_dqn:
        orthogonal_init(policy.q_head, 0.01)
    target = copy.deepcopy(policy).requires_grad_(False).eval()
    curriculum = RadiusCurriculum(cfg, cfg.env_kwargs)
    state = DQNState(
        optimizer=make_adam([*policy.encoder.parameters(), *policy.q_head.parameters()], cfg.learning_rate, cfg.adam_eps),
        target=target,
        generator=make_generator(cfg.seed, run.device),
        envs=EnvStepper(cfg.env_id, cfg.num_envs, curriculum.env_kwargs(cfg.train_env_kwargs()), cfg.seed),
        curriculum=curriculum,
        buffer=make_buffer(cfg, run.observation_space),
        save_buffer=cfg.save_buffer,
    )
    augmenter = make_augmenter(cfg.env_id, cfg.env_kwargs, cfg.augment)
    run.start(state, bytes_per_transition=state.buffer.bytes_per_transition(), replay_ratio=cfg.replay_ratio)

    def restart(env_kwargs: dict[str, Any], seed: int) -> None:
        """A curriculum stage: cut every game's episode as a time limit would (its last step
        bootstraps from the observation reached), then play the wider radius."""
        state.buffer.cut_episodes(state.envs.obs)
        state.envs.restart(env_kwargs, seed)

    for iteration in run.iterations(state, callback, curriculum=state.curriculum, restart=restart):
        progress = run.counters.env_steps / cfg.total_env_steps
        epsilon = cfg.epsilon(progress)

        with run.timer("act"):
            actions, labels, aux = act(policy, state, epsilon, cfg)
        with run.timer("env"):
            obs, valid = state.envs.obs, ~state.envs.resetting
            _, reward, terminated, truncated, info = state.envs.step(actions)
            state.buffer.add(obs, actions, reward, terminated, truncated, valid, labels, aux)
            state.curriculum.record(info["success"][terminated | truncated])
        run.count(env_steps=cfg.num_envs)

        filled = min(state.buffer.count, state.buffer.rows) * cfg.num_envs
        if filled >= max(cfg.learning_starts, cfg.batch_size) and (iteration + 1) % cfg.train_freq == 0:
            with run.timer("train"):
                losses = dqn_update(policy, state, cfg, progress, run.counters.gradient_steps, run.rng, augmenter)
            run.count(gradient_steps=cfg.gradient_steps)
            run.log(losses)
        run.log({
            **state.envs.stats.scalars(),
            "rollout/exploration_rate": epsilon,
            "train/learning_rate": state.optimizer.param_groups[0]["lr"],
        })
        run.show(eps=epsilon)
    state.envs.close()
    return run.finish()


def replayed_aux_targets(batch: ReplayBatch, device: torch.device) -> dict[str, torch.Tensor]:
    """The auxiliary targets stored with a replayed batch's observations, as :func:`aux_loss` takes them."""
    assert batch.extras is not None
    return {
        "penguin": torch.from_numpy(batch.extras["penguin"].astype(np.int64)).to(device),
        "heading": torch.from_numpy(batch.extras["heading"].astype(np.int64)).to(device),
        "bearing": torch.from_numpy(batch.extras["bearing"].astype(np.int64)).to(device),
        "gold": torch.from_numpy(batch.extras["gold"].astype(np.float32)).to(device),
        **({"nearest": torch.from_numpy(batch.extras["nearest"].astype(np.int64)).to(device)}
           if "nearest" in batch.extras else {}),
    }


def make_buffer(cfg: DQNConfig, space: Any) -> ReplayBuffer:
    """The replay ring for ``cfg`` and the env's observation space (with the auxiliary targets
    of every observation when ``aux_coef > 0``)."""
    cells = cfg.policy.grid**2
    extras = {"penguin": ((), np.int16), "heading": ((), np.uint8), "bearing": ((), np.uint8),
              "gold": ((cells,), np.float16), **({"nearest": ((), np.int16)} if cfg.aux_nearest else {})}
    return ReplayBuffer(
        cfg.buffer_size,
        cfg.num_envs,
        space["image"].shape,
        space["text"].shape[0],
        int(np.max(space["text"].high)) + 1,
        NUM_ACTIONS,
        labels=cfg.bc_coef > 0,
        extras=extras if cfg.aux_coef > 0 else None,
        prioritized=cfg.prioritized,
        alpha=cfg.priority_alpha,
        n_step=cfg.n_step,
    )


@torch.no_grad()
def act(
    policy: torch.nn.Module, state: DQNState, epsilon: float, cfg: DQNConfig
) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray] | None]:
    """Epsilon-greedy actions of every game (STOP among the random ones only with
    ``explore_stop``), the solver's optimal actions when the margin loss needs them, and the
    auxiliary targets when their loss does."""
    policy.eval()
    random_actions = None if cfg.explore_stop else [int(a) for a in Action if a != Action.STOP]
    q = policy(state.envs.obs, heads=("q",))["q"]
    actions = epsilon_greedy(q, epsilon, state.generator, random_actions).cpu().numpy()
    game = state.envs.envs.get_state() if state.buffer.labels is not None or cfg.aux_coef > 0 else None
    labels = solver.optimal_action_mask(game) if state.buffer.labels is not None else None
    aux = aux_targets(game, cfg.policy.grid, cfg.aux_nearest) if cfg.aux_coef > 0 else None
    return actions, labels, aux


def dqn_update(
    policy: torch.nn.Module,
    state: DQNState,
    cfg: DQNConfig,
    progress: float,
    gradient_steps: int,
    rng: np.random.Generator,
    augmenter: SymmetryAugment | None = None,
) -> dict[str, torch.Tensor]:
    """``cfg.gradient_steps`` gradient steps on replayed minibatches (``gradient_steps``: those
    taken before), each transition turned by a random symmetry when ``augmenter`` is given;
    returns the mean loss terms (tensors, read when logged)."""
    policy.train()
    device = next(policy.parameters()).device
    trained = [p for group in state.optimizer.param_groups for p in group["params"]]
    corner_ids = corner_word_ids()
    bc_coef = cfg.bc_weight(progress)
    beta = cfg.priority_beta + progress * (1.0 - cfg.priority_beta)
    set_learning_rate(state.optimizer, cfg.lr_at(gradient_steps, progress))
    terms: dict[str, list[torch.Tensor]] = {"train/loss": [], "train/q_mean": [], "train/active_units": []}
    for _ in range(cfg.gradient_steps):
        drawn = state.buffer.sample(cfg.batch_size, rng, cfg.n_step, cfg.gamma, beta)
        batch = to_tensors(drawn, device)
        if augmenter is not None:
            augment_transitions(augmenter, batch, rng)
        if cfg.word_dropout > 0:
            drop_replayed_words(batch, cfg.word_dropout, rng, corner_ids)
        y = td_targets(policy, state.target, batch, cfg.advantage_learning)
        out = policy(batch["obs"], heads=("q", "features", "aux") if cfg.aux_coef > 0 else ("q", "features"))
        q_all = out["q"]
        q_taken = q_all.gather(1, batch["actions"][:, None]).squeeze(1)
        huber = F.smooth_l1_loss(q_taken, y, reduction="none")
        if drawn.weights is not None:
            loss = (torch.from_numpy(drawn.weights).to(device) * huber).mean()
            state.buffer.update_priorities(drawn, (q_taken - y).detach().cpu().numpy())
        else:
            loss = huber.mean()
        if cfg.aux_coef > 0:
            aux, aux_terms = aux_loss(out, replayed_aux_targets(drawn, device))
            loss = loss + cfg.aux_coef * aux
            for name, value in aux_terms.items():
                terms.setdefault(name, []).append(value)
        if bc_coef > 0 and batch["labels"] is not None:
            bc_loss = margin_loss(q_all, batch["labels"], cfg.bc_margin)
            if bc_loss is not None:
                loss = loss + bc_coef * bc_loss
                terms.setdefault("train/bc_loss", []).append(bc_loss.detach())
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, cfg.max_grad_norm)
        state.optimizer.step()
        gradient_steps += 1
        terms["train/loss"].append(loss.detach())
        terms["train/q_mean"].append(q_taken.detach().mean())
        terms["train/active_units"].append(active_units(out["features"]))
        if gradient_steps % cfg.target_update_interval == 0:
            move_towards(state.target, policy, cfg.tau)
    out_terms = {name: torch.stack(values).mean() for name, values in terms.items()}
    if "train/bc_loss" in out_terms:
        out_terms["train/bc_coef"] = torch.tensor(bc_coef)
    return out_terms
