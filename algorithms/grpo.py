"""Pseudo-GRPO: group-relative policy optimisation over whole episodes, with no value function.

One iteration, top to bottom (:func:`train`):

1. collect (:func:`play_groups`): draw ``num_groups`` training levels (a level id fixes the room,
   the start state and the instruction) and play ``group_size`` episodes from each at once (the
   vector env's ``options={"level": ...}``), sampling from the current policy, until every
   episode ends or is cut;
2. targets: each episode's score (its return, discounted by ``gamma`` so that of two
   successful episodes the shorter scores higher), normalised within its group,
   ``(R_i - mean(R)) / (std(R) + eps)`` (or the leave-one-out mean, ``baseline="rloo"``, or the
   score of one episode of the group played greedily, ``baseline="greedy"``), is the advantage
   of every action in that episode; groups whose scores are all equal carry no signal and are
   dropped (their share is logged as ``train/zero_std_groups``);
3. update (:func:`grpo_update`): a few epochs of the clipped importance-ratio objective over the
   steps of the other groups (each episode weighing the same, as in DeepSeekMath's GRPO: a step
   weighs ``1 / length`` of its episode), an entropy bonus, and optionally a KL penalty to a
   frozen reference policy (the k3 estimator ``r - log r - 1`` with ``r = pi_ref / pi``);
4. log.

How it differs from PPO (:mod:`algorithms.ppo`): no critic, so no value loss and no GAE; the
baseline is the other episodes that started from the same state, which only exists because
the env can replay a level; every step of an episode shares one advantage (credit goes to whole
episodes, not steps); rollouts are whole episodes, not fixed-length slices; and the optional KL
term anchors the policy to a reference (e.g. the behaviour-cloned one). The price is variance
on long horizons: a success credits every action of its episode alike, so group episodes are
best cut near the shortest path (``horizon_per_cell``), where only the episodes that head for
the gold succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from algorithms.advantages import GROUP_BASELINES, group_advantages
from algorithms.augment import corner_word_ids, drop_words
from algorithms.auxiliary import aux_loss, aux_targets
from algorithms.config import need
from algorithms.curriculum import RadiusCurriculum
from algorithms.driver import Callback, TrainingRun, TrainResult
from algorithms.envs import EnvStepper
from algorithms.onpolicy import (
    OnPolicyConfig,
    make_reference,
    reference_kl,
    sample_actions,
    update_bc_loss,
)
from algorithms.optim import make_adam, set_learning_rate
from algorithms.trainer_state import TrainerState, make_generator
from fake_traces import solver
from penguin_env.config import EnvConfig, make_config


@dataclass
class GRPOConfig(OnPolicyConfig):
    """Pseudo-GRPO hyper-parameters (plus every :class:`~algorithms.onpolicy.OnPolicyConfig` field)."""

    learning_rate: float = 3e-4
    """Adam learning rate (start value when annealed)."""
    group_size: int = 8
    """Episodes per group (all from one start state); at least 2."""
    num_groups: int = 16
    """Groups (levels) per iteration; ``num_groups * group_size`` games run at once."""
    baseline: str = "mean"
    """``"mean"`` (GRPO: the group's mean score), ``"rloo"`` (leave-one-out mean) or
    ``"greedy"`` (self-critical, Rennie et al. 2017): the first episode of every group plays
    the policy's most likely actions and its score is the baseline of the other ``G - 1``, which
    sample; the greedy episode itself is not trained on. Sampled episodes are pushed up exactly
    where they beat the greedy policy, the gap an evaluation with greedy actions measures.
    Costs one episode in ``G``; logs ``rollout/greedy_success_rate``."""
    scale_advantages: bool = True
    """Divide each group's centred scores by their standard deviation (GRPO). Off (Dr. GRPO), a
    group whose episodes all succeed and differ only in length pushes the policy far less than a
    group where some episodes fail; on, both push as hard."""
    num_epochs: int = 2
    """Passes over each iteration's steps."""
    minibatch_size: int = 512
    """Steps per minibatch (an iteration's step count varies with its episodes' lengths, so
    minibatches have a fixed size, not a fixed number; this also bounds the update's memory)."""
    gamma: float = 0.99
    """Discount of the episode score ``sum_t gamma^t r_t`` that ranks a group's episodes. With
    1.0 every success scores the same, so a group that always succeeds teaches nothing about
    reaching the goal sooner; below 1 the faster episodes get the positive advantages."""
    weighting: str = "episode"
    """``"episode"`` (DeepSeekMath's GRPO: each episode weighs the same, its steps share
    ``1 / length`` of it) or ``"step"`` (every step weighs the same: a failing episode that
    wanders to the time limit then outweighs a two-step success a hundred times over)."""
    max_episode_steps: int = 0
    """Cut group episodes after this many steps (0: the env's own ``max_steps``)."""
    horizon_per_cell: int = 0
    """Cut group episodes after ``horizon_per_cell * (d + 1)`` steps, where ``d`` is the
    farthest the gold can lie (Chebyshev cells): the curriculum's radius, the env's ``radius``,
    or ``size - 1`` for gold anywhere (0: off; with ``max_episode_steps`` too, the shorter cut
    wins). Meant for one gold piece, as on Bare: collecting several takes longer. Every action
    of an episode shares its score, so over a long time limit a success credits a hundred
    wandering actions as much as the one that reached the gold; a horizon near the shortest
    path (a path to gold ``d`` cells away takes at most ``d + 2`` steps) keeps the credit on the
    actions that earned it."""

    def validate(self) -> None:
        super().validate()
        need(self.group_size >= 2, f"group_size must be >= 2 (a group baseline needs peers), got {self.group_size}")
        for name in ("num_groups", "num_epochs", "minibatch_size"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(self.baseline in GROUP_BASELINES, f"baseline must be one of {GROUP_BASELINES}, got {self.baseline!r}")
        need(self.max_episode_steps >= 0, f"max_episode_steps must be >= 0, got {self.max_episode_steps!r}")
        need(self.horizon_per_cell >= 0, f"horizon_per_cell must be >= 0, got {self.horizon_per_cell!r}")
        need(0.0 < self.gamma <= 1.0, f"gamma must be in (0, 1], got {self.gamma!r}")
        need(self.weighting in ("episode", "step"), f"weighting must be 'episode' or 'step', got {self.weighting!r}")

    @property
    def num_envs(self) -> int:
        return self.num_groups * self.group_size


@dataclass
class GRPOState(TrainerState):
    """What pseudo-GRPO carries from one iteration to the next (saved in resume checkpoints)."""

    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    """Draws the sampled actions, on the policy's device."""
    envs: EnvStepper
    curriculum: RadiusCurriculum
    reference: torch.nn.Module | None
    """The frozen policy of the KL penalty (None without one)."""


@dataclass
class Groups:
    """One iteration's episodes: every step played, and each episode's outcome."""

    steps: list[tuple[Any, ...]]
    """Per step: (games still playing, image, text acted on, action, log-prob, solver labels,
    whole text for the BC loss, auxiliary targets)."""
    returns: np.ndarray
    scores: np.ndarray
    """Discounted returns: what ranks a group's episodes."""
    lengths: np.ndarray
    successes: np.ndarray

    @property
    def env_steps(self) -> int:
        return sum(len(step[0]) for step in self.steps)


def grpo_loss(
    new_logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    clip_coef: float,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped importance-ratio objective (to minimise) and the ratio: the mean over steps, or
    with ``weights`` the weighted mean ``sum(w * l) / sum(w)``."""
    ratio = (new_logp - old_logp).exp()
    loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef))
    if weights is None:
        return loss.mean(), ratio
    return (weights * loss).sum() / weights.sum(), ratio


def episode_cut(cfg: GRPOConfig, env_config: EnvConfig) -> int:
    """Steps after which a group episode is cut: the env's time limit, shortened by
    ``max_episode_steps`` and by ``horizon_per_cell`` (see :class:`GRPOConfig`). The
    curriculum's radius is the training env's ``radius``."""
    limit = env_config.episode_limit
    if cfg.max_episode_steps:
        limit = min(limit, cfg.max_episode_steps)
    if cfg.horizon_per_cell:
        farthest = env_config.size - 1
        if env_config.radius is not None:
            farthest = min(farthest, env_config.radius)
        limit = min(limit, cfg.horizon_per_cell * (farthest + 1))
    return limit


def train(config: GRPOConfig, callback: Callback | None = None) -> TrainResult:
    """Train with pseudo-GRPO and evaluate on held-out levels. ``callback(iteration)`` runs after
    every iteration. Run directory, checkpoints and resume as :func:`algorithms.ppo.train`."""
    cfg = config
    run = TrainingRun(cfg, "grpo")
    policy = run.policy
    curriculum = RadiusCurriculum(cfg, cfg.env_kwargs)
    state = GRPOState(
        optimizer=make_adam(policy.parameters(), cfg.learning_rate),
        generator=make_generator(cfg.seed, run.device),
        envs=EnvStepper(cfg.env_id, cfg.num_envs, curriculum.env_kwargs(cfg.train_env_kwargs()), cfg.seed),
        curriculum=curriculum,
        reference=make_reference(cfg, policy, run.device),  # the start, before a resume loads later weights
    )
    greedy_member = np.zeros(cfg.num_envs, dtype=bool)  # games that play greedily (self-critical baseline)
    if cfg.baseline == "greedy":
        greedy_member[:: cfg.group_size] = True
    for _iteration in run.iterations(state, callback, curriculum=state.curriculum, restart=state.envs.restart):
        lr, bc_coef = cfg.schedule(run.counters.env_steps / cfg.total_env_steps)
        set_learning_rate(state.optimizer, lr)

        with run.timer("rollout"):
            groups = play_groups(policy, state, cfg, bc_coef, greedy_member, run.rng)
        state.curriculum.record(groups.successes)
        run.count(env_steps=groups.env_steps)

        advantages = group_advantages(groups.scores, cfg.group_size, cfg.baseline, scale=cfg.scale_advantages)
        group_std = groups.scores.reshape(-1, cfg.group_size).std(axis=1)
        informative = np.repeat(group_std > 0, cfg.group_size) & ~greedy_member  # greedy games are baselines only

        with run.timer("update"):
            losses = grpo_update(policy, state, groups, advantages, informative, cfg, bc_coef, run.rng)
        run.count(gradient_steps=losses.pop("gradient_steps"))

        rollout = {
            "rollout/ep_rew_mean": float(groups.returns.mean()),
            "rollout/ep_len_mean": float(groups.lengths.mean()),
            "rollout/success_rate": float(groups.successes.mean()),
        }
        if greedy_member.any():
            rollout["rollout/greedy_success_rate"] = float(groups.successes[greedy_member].mean())
        run.log({
            **rollout,
            **{name: torch.stack(values).mean() for name, values in losses.items() if values},
            "train/zero_std_groups": float(np.mean(group_std == 0)),
            "train/group_return_std": float(np.mean(group_std)),
            "train/learning_rate": lr,
            "train/bc_coef": bc_coef,
        })
    state.envs.close()
    return run.finish()


@torch.no_grad()
def play_groups(
    policy: torch.nn.Module,
    state: GRPOState,
    cfg: GRPOConfig,
    bc_coef: float,
    greedy_member: np.ndarray,
    rng: np.random.Generator,
) -> Groups:
    """Play ``group_size`` episodes from each of ``num_groups`` random training levels at once,
    until every episode ends or is cut (an episode cut early keeps the return it had)."""
    policy.eval()
    envs, G, N = state.envs, cfg.group_size, cfg.num_envs
    span = cfg.num_levels if cfg.num_levels > 0 else 2**31 - 1 - cfg.start_level
    levels = cfg.start_level + rng.integers(0, span, cfg.num_groups)
    obs, _ = envs.reset(options={"level": np.repeat(levels, G)})
    limit = episode_cut(cfg, make_config(cfg.env_id, envs.env_kwargs))
    corner_ids = corner_word_ids()
    alive = np.ones(N, dtype=bool)
    returns, scores = np.zeros(N), np.zeros(N)
    lengths, successes = np.zeros(N, dtype=np.int64), np.zeros(N, dtype=bool)
    steps: list[tuple[Any, ...]] = []
    greedy_games = torch.from_numpy(greedy_member).to(next(policy.parameters()).device)
    for _ in range(limit):
        rows = np.flatnonzero(alive)
        if rows.size == 0:
            break
        image, text = obs["image"][rows], obs["text"][rows]  # indexing copies: kept as is
        whole = text if cfg.bc_whole_instruction and bc_coef > 0 else None
        if cfg.word_dropout > 0:
            text = drop_words(torch.from_numpy(text), cfg.word_dropout, rng, corner_ids).numpy()
        game = envs.envs.get_state().take(rows) if bc_coef > 0 or cfg.aux_coef > 0 else None
        labels = solver.optimal_action_mask(game) if bc_coef > 0 else None
        aux = aux_targets(game, cfg.policy.grid, cfg.aux_nearest) if cfg.aux_coef > 0 else None
        logits = policy({"image": image, "text": text}, heads=("logits",))["logits"]
        action, logp_all = sample_actions(logits, state.generator)
        if greedy_member.any():
            action = torch.where(greedy_games[rows], logits.argmax(dim=-1), action)
        logp = logp_all.gather(1, action[:, None]).squeeze(1)
        # One copy to the host per step: actions and log-probabilities together.
        host = torch.stack((action.to(logp.dtype), logp)).cpu().numpy()
        taken = host[0].astype(np.int64)
        steps.append((rows, image, text, taken, host[1], labels, whole, aux))
        actions = np.zeros(N, dtype=np.int64)
        actions[rows] = taken
        obs, reward, terminated, truncated, info = envs.step(actions)
        returns[rows] += reward[rows]
        scores[rows] += cfg.gamma ** lengths[rows] * reward[rows]
        lengths[rows] += 1
        done = (terminated | truncated) & alive
        successes[done] = info["success"][done]
        alive &= ~done
    return Groups(steps, returns, scores, lengths, successes)


def _gather(steps: list[tuple[Any, ...]], picks: list[np.ndarray], field: int) -> np.ndarray:
    """Field ``field`` of every recorded step, only the picked rows, in one copy."""
    return np.concatenate([step[field][pick] for step, pick in zip(steps, picks, strict=True)])


def grpo_update(
    policy: torch.nn.Module,
    state: GRPOState,
    groups: Groups,
    advantages: np.ndarray,
    informative: np.ndarray,
    cfg: GRPOConfig,
    bc_coef: float,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The update's gradient steps; returns each loss term per minibatch and ``gradient_steps``."""
    device = next(policy.parameters()).device
    losses: dict[str, Any] = {name: [] for name in (
        "train/policy_gradient_loss", "train/entropy_loss", "train/clip_fraction", "train/kl_ref", "train/bc_loss")}
    losses["gradient_steps"] = 0
    # Steps of equal-score groups carry no policy gradient; they are trained on only when the
    # behaviour-cloning loss gives them something to learn (the auxiliary losses ride along on
    # the steps trained anyway). Each step's rows are selected before concatenating, so the
    # frames are copied once.
    steps = groups.steps
    picks = [np.ones(len(st[0]), bool) if bc_coef > 0 else informative[st[0]] for st in steps]
    b_rows = np.concatenate([st[0][pick] for st, pick in zip(steps, picks, strict=True)])
    if not b_rows.size:
        return losses
    batch = {
        "image": _gather(steps, picks, 1),
        "text": _gather(steps, picks, 2),
        "action": _gather(steps, picks, 3),
        "logp": _gather(steps, picks, 4),
        "advantage": advantages[b_rows],
        "informative": informative[b_rows],
        "weight": (1.0 / np.maximum(groups.lengths[b_rows], 1) if cfg.weighting == "episode"
                   else np.ones(len(b_rows))).astype(np.float32),
        "labels": _gather(steps, picks, 5) if bc_coef > 0 else None,
        "whole_text": _gather(steps, picks, 6) if bc_coef > 0 and cfg.bc_whole_instruction else None,
        **({f"aux_{name}": np.concatenate([st[7][name][pick] for st, pick in zip(steps, picks, strict=True)])
            for name in ("penguin", "heading", "bearing", "gold", *(("nearest",) if cfg.aux_nearest else ()))}
           if cfg.aux_coef > 0 else {}),
    }
    groups.steps = []  # the frames now live in the batch only
    policy.train()
    total = len(b_rows)
    size = min(total, cfg.minibatch_size)
    for _epoch in range(cfg.num_epochs):
        order = rng.permutation(total)
        for start in range(0, total - size + 1, size):
            idx = order[start : start + size]
            mb = {k: None if v is None else torch.from_numpy(v[idx]).to(device) for k, v in batch.items()}
            loss = grpo_minibatch_loss(policy, mb, cfg, bc_coef, state.reference, losses)
            if loss is None:
                continue
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            state.optimizer.step()
            losses["gradient_steps"] += 1
    return losses


def grpo_minibatch_loss(
    policy: torch.nn.Module,
    mb: dict[str, torch.Tensor],
    cfg: GRPOConfig,
    bc_coef: float,
    reference: torch.nn.Module | None,
    losses: dict[str, Any],
) -> torch.Tensor | None:
    """The loss of one minibatch (None when it has nothing to learn from), its terms appended to
    ``losses``: the clipped objective and entropy bonus on the steps of informative groups, the
    KL penalty on them, and the behaviour-cloning loss on every step."""
    obs = {"image": mb["image"], "text": mb["text"]}
    out = policy(obs, heads=("logits", "aux") if cfg.aux_coef > 0 else ("logits",))
    logp_all = torch.log_softmax(out["logits"], dim=-1)
    new_logp = logp_all.gather(1, mb["action"][:, None]).squeeze(1)
    use = mb["informative"]
    loss = torch.zeros((), device=new_logp.device)
    if use.any():
        pg, ratio = grpo_loss(new_logp[use], mb["logp"][use], mb["advantage"][use], cfg.clip_coef, mb["weight"][use])
        entropy = -(logp_all[use].exp() * logp_all[use]).sum(dim=1).mean()
        loss = pg - cfg.ent_coef * entropy
        losses["train/policy_gradient_loss"].append(pg.detach())
        losses["train/entropy_loss"].append(-entropy.detach())
        losses["train/clip_fraction"].append(((ratio - 1).abs() > cfg.clip_coef).float().mean().detach())
        if reference is not None:
            used = {k: v[use] for k, v in obs.items()}
            kl = reference_kl(reference, used, mb["action"][use], new_logp[use])
            loss = loss + cfg.kl_coef * kl
            losses["train/kl_ref"].append(kl.detach())
    if mb["labels"] is not None:
        bc_loss = update_bc_loss(policy, logp_all, mb["image"], mb["whole_text"], mb["labels"])
        if bc_loss is not None:
            loss = loss + bc_coef * bc_loss
            losses["train/bc_loss"].append(bc_loss.detach())
    if cfg.aux_coef > 0:
        aux, terms = aux_loss(out, {k[4:]: v for k, v in mb.items() if k.startswith("aux_")})
        loss = loss + cfg.aux_coef * aux
        for name, value in terms.items():
            losses.setdefault(name, []).append(value)
    return loss if loss.requires_grad else None
