"""Pseudo-GRPO: group-relative policy optimisation over whole episodes, with no value function.

The loop, top to bottom (one iteration):

1. prompts: draw ``num_groups`` training levels (a level id fixes the room, the start state and
   the instruction);
2. groups: play ``group_size`` episodes from each level at once (the vector env's
   ``options={"level": ...}``), sampling from the current policy, until every episode ends;
3. advantages: each episode's score (its return, discounted by ``gamma`` so that of two
   successful episodes the shorter scores higher), normalised within its group,
   ``(R_i - mean(R)) / (std(R) + eps)`` (or the leave-one-out mean, ``baseline="rloo"``, or
   the score of one episode of the group played greedily, ``baseline="greedy"``), is
   the advantage of every action in that episode; groups whose returns are all equal carry no
   signal and are dropped (their share is logged as ``train/zero_std_groups``);
4. update: a few epochs of the clipped importance-ratio objective over the steps of the other
   groups (each episode weighing the same, as in DeepSeekMath: a step weighs ``1 / length`` of
   its episode), an entropy bonus, and optionally a KL penalty to a frozen reference policy (the
   k3 estimator ``r - log r - 1`` with ``r = pi_ref / pi``, as in DeepSeekMath).

How it differs from PPO (``algorithms.ppo``): no critic, so no value loss and no GAE; the
baseline is the other episodes that started from the same state, which only exists because
the env can replay a level; every step of an episode shares one advantage (credit is assigned
to whole episodes, not steps); rollouts are whole episodes, not fixed-length slices; and the
optional KL term anchors the policy to a reference (e.g. the behaviour-cloned one) instead of
PPO's entropy-only regularisation. The price is variance on long horizons: it needs a policy
that succeeds sometimes within a group to learn at all, which a small curriculum radius or a
warm start provides, and a success credits every action of its episode alike, so over the env's
time limit (256 steps on Bare) it learns which actions pay on average, not where the gold is.
``horizon_per_cell`` cuts the group episodes near the shortest path instead (2 steps per cell
the gold may lie away), so only episodes that head for the gold succeed and their few actions
take the credit; with it, many groups per iteration, PPO's learning rate and a larger entropy
bonus (the command line's Bare preset) it learns full-view Bare from scratch (README).
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from algorithms.advantages import GROUP_BASELINES, group_advantages
from algorithms.augment import corner_word_ids, drop_words
from algorithms.common import Callback, TrainingRun, TrainResult, make_adam, need
from algorithms.envs import make_vec_env
from algorithms.interrupt import GracefulInterrupt
from algorithms.onpolicy import (
    Every,
    OnPolicyConfig,
    RadiusCurriculum,
    make_reference,
    reference_kl,
    update_bc_loss,
)
from algorithms.progress import Progress
from fake_traces import solver
from penguin_env.config import EnvConfig


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
    """``"mean"`` (GRPO: the group's mean return), ``"rloo"`` (leave-one-out mean) or
    ``"greedy"`` (self-critical, Rennie et al. 2017): the first episode of every group plays
    the policy's most likely actions and its score is the baseline of the other ``G - 1``, which
    sample; the greedy episode itself is not trained on. Sampled episodes are pushed up exactly
    where they beat the greedy policy (e.g. a state where the greedy action loops while samples
    walk out), the gap that an evaluation with greedy actions measures. Costs one episode in
    ``G`` of the env steps; logs ``rollout/greedy_success_rate``."""
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
    1.0 (undiscounted) every success scores the same, so a group that always succeeds teaches
    nothing about reaching the goal sooner; below 1 the faster episodes get the positive
    advantages."""
    weighting: str = "episode"
    """``"episode"`` (DeepSeekMath's GRPO: each episode weighs the same, its steps share
    ``1 / length`` of it) or ``"step"`` (every step weighs the same). With ``"step"`` a failing
    episode that wanders to the time limit outweighs a two-step success a hundred times over, and
    on Bare the policy stayed near uniform (training success ~50% at radius 1 after 1M steps)."""
    max_episode_steps: int = 0
    """Cut group episodes after this many steps (0: the env's own ``max_steps``)."""
    horizon_per_cell: int = 0
    """Cut group episodes after ``horizon_per_cell * (d + 1)`` steps, where ``d`` is the
    farthest the gold can lie (Chebyshev cells): the curriculum's radius, the env's ``radius``,
    or ``size - 1`` for gold anywhere (0: off; with ``max_episode_steps`` too, the shorter cut
    wins). Meant for one gold piece, as on Bare: collecting several takes longer. Every
    action of an episode shares its score, so over a time limit of ``4 * size**2`` steps a
    success credits a hundred wandering actions as much as the one that reached the gold; a
    horizon near the shortest path keeps the credit on the actions that earned it, and only
    episodes that head for the gold succeed. With 2 (a path to gold ``d`` cells away takes at
    most ``d + 2`` steps) and the command line's Bare preset pseudo-GRPO learns full-view Bare
    from scratch; with the env's own time limit it learned only which actions pay on average
    (README)."""

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


def _gather(steps: list[tuple], picks: list[np.ndarray], field: int) -> np.ndarray:
    """Field ``field`` of every recorded step, only the picked rows, in one copy."""
    return np.concatenate([step[field][pick] for step, pick in zip(steps, picks, strict=True)])


def train(config: GRPOConfig, callback: Callback | None = None) -> TrainResult:
    """Train with pseudo-GRPO and evaluate on held-out levels. ``callback(iteration)`` runs after
    every update. Run directory, checkpoints and resume as :func:`algorithms.ppo.train`."""
    cfg = config
    session = TrainingRun(cfg, "grpo")
    policy, rng, device, logger = session.policy, session.rng, session.device, session.logger
    optimizer = make_adam(policy.parameters(), cfg.learning_rate)
    curriculum = RadiusCurriculum(cfg)
    generator = torch.Generator().manual_seed(cfg.seed)
    G, N = cfg.group_size, cfg.num_envs
    greedy_member = np.zeros(N, dtype=bool)  # games that play greedily (the self-critical baseline)
    if cfg.baseline == "greedy":
        greedy_member[::G] = True
    recent_successes: list[float] = []

    reference = make_reference(cfg, policy, device)
    corner_ids = corner_word_ids()

    iteration, env_steps = 0, 0
    saved = session.resume_state()
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        iteration, env_steps = int(saved["iteration"]), int(saved["env_steps"])
        curriculum.radius = saved["radius"]
        generator.set_state(saved["generator"])
        recent_successes = list(saved["recent_successes"])
        if reference is not None and cfg.reference is None:
            reference.load_state_dict(saved["reference"])
        envs = pickle.loads(saved["envs"])
    else:
        envs = make_vec_env(cfg.env_id, N, curriculum.env_kwargs(cfg.train_env_kwargs()))
        envs.reset(seed=cfg.seed)
    session.write_config()

    def resume_state() -> dict[str, Any]:
        state = {
            "optimizer": optimizer.state_dict(),
            "iteration": iteration,
            "env_steps": env_steps,
            "radius": curriculum.radius,
            "generator": generator.get_state(),
            "rng": session.rng_state(),
            "recent_successes": [float(x) for x in recent_successes],
            "envs": pickle.dumps(envs),  # read back only when resuming this run
        }
        if reference is not None and cfg.reference is None:
            state["reference"] = reference.state_dict()
        return state

    level_span = cfg.num_levels if cfg.num_levels > 0 else 2**31 - 1 - cfg.start_level
    progress = Progress(cfg.total_env_steps, initial=env_steps, enabled=cfg.progress, desc=f"grpo {cfg.env_id}")
    eval_due, checkpoint_due = Every(cfg.eval_every, env_steps), Every(cfg.checkpoint_every, env_steps)
    with GracefulInterrupt() as stop:
        while env_steps < cfg.total_env_steps:
            tick = time.perf_counter()
            lr, bc_coef = cfg.schedule(env_steps / cfg.total_env_steps)
            optimizer.param_groups[0]["lr"] = lr

            # -- 1-2. groups of episodes from shared start states ------------------------------
            levels = cfg.start_level + rng.integers(0, level_span, cfg.num_groups)
            obs, _ = envs.reset(options={"level": np.repeat(levels, G)})
            limit = episode_cut(cfg, envs.config)
            alive = np.ones(N, dtype=bool)
            episode_return = np.zeros(N)
            episode_score = np.zeros(N)  # discounted return: what ranks the group's episodes
            episode_length = np.zeros(N, dtype=np.int64)
            episode_success = np.zeros(N, dtype=bool)
            # (rows, image, text acted on, action, log-prob, solver labels, whole text for the BC loss)
            steps: list[tuple[np.ndarray, ...]] = []
            policy.eval()
            with torch.no_grad():
                for _ in range(limit):
                    rows = np.flatnonzero(alive)
                    if rows.size == 0:
                        break
                    image, text = obs["image"][rows], obs["text"][rows]  # indexing copies: kept as is
                    whole = text if cfg.bc_whole_instruction and bc_coef > 0 else None
                    if cfg.word_dropout > 0:
                        text = drop_words(torch.from_numpy(text), cfg.word_dropout, rng, corner_ids).numpy()
                    labels = solver.optimal_action_mask(envs.game.state.take(rows)) if bc_coef > 0 else None
                    logits = policy({"image": image, "text": text}, heads=("logits",))["logits"]
                    logp_all = torch.log_softmax(logits, dim=-1)
                    action = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
                    greedy = torch.from_numpy(greedy_member[rows])
                    if greedy.any():
                        action = torch.where(greedy, logits.argmax(dim=-1), action)
                    logp = logp_all.gather(1, action[:, None]).squeeze(1)
                    steps.append((rows, image, text, action.numpy(), logp.numpy(), labels, whole))
                    actions = np.zeros(N, dtype=np.int64)
                    actions[rows] = action.numpy()
                    obs, reward, term, trunc, info = envs.step(actions)
                    episode_return[rows] += reward[rows]
                    episode_score[rows] += cfg.gamma ** episode_length[rows] * reward[rows]
                    episode_length[rows] += 1
                    done = (term | trunc) & alive
                    episode_success[done] = info["success"][done]
                    alive &= ~done
            # Episodes cut by max_episode_steps end here, unfinished (their return so far counts).
            episode_stats = {
                "rollout/ep_rew_mean": float(episode_return.mean()),
                "rollout/ep_len_mean": float(episode_length.mean()),
                "rollout/success_rate": float(episode_success.mean()),
            }
            if greedy_member.any():
                episode_stats["rollout/greedy_success_rate"] = float(episode_success[greedy_member].mean())
            recent_successes.extend(episode_success.astype(float).tolist())
            played = sum(len(s[0]) for s in steps)
            env_steps += played
            rollout_time = time.perf_counter() - tick

            # -- 3. group-relative advantages ---------------------------------------------------
            advantages = group_advantages(episode_score, G, cfg.baseline, scale=cfg.scale_advantages)
            group_std = episode_score.reshape(-1, G).std(axis=1)
            informative = np.repeat(group_std > 0, G) & ~greedy_member  # the greedy games are baselines only

            # -- 4. update ------------------------------------------------------------------------
            u0 = time.perf_counter()
            pg_losses, kls, entropies, clip_fracs, bc_losses = [], [], [], [], []
            # Steps of equal-return groups carry no policy gradient; they are trained on only
            # when the behaviour-cloning loss gives them something to learn. Each step's rows are
            # selected before concatenating, so the frames are copied once.
            picks = [np.ones(len(st[0]), bool) if bc_coef > 0 else informative[st[0]] for st in steps]
            b_rows = np.concatenate([st[0][pick] for st, pick in zip(steps, picks, strict=True)])
            if b_rows.size:
                b_image, b_text = _gather(steps, picks, 1), _gather(steps, picks, 2)
                b_action = torch.from_numpy(_gather(steps, picks, 3))
                b_logp = torch.from_numpy(_gather(steps, picks, 4))
                b_adv = torch.from_numpy(advantages[b_rows])
                b_informative = torch.from_numpy(informative[b_rows])
                lengths = np.maximum(episode_length[b_rows], 1)
                b_weight = torch.from_numpy(
                    (1.0 / lengths if cfg.weighting == "episode" else np.ones(len(b_rows))).astype(np.float32)
                )
                b_labels = torch.from_numpy(_gather(steps, picks, 5)) if bc_coef > 0 else None
                b_whole = _gather(steps, picks, 6) if bc_coef > 0 and cfg.bc_whole_instruction else None
                del steps
                policy.train()
                total = len(b_action)
                minibatch = min(total, cfg.minibatch_size)
                for _epoch in range(cfg.num_epochs):
                    order = rng.permutation(total)
                    for start in range(0, total - minibatch + 1, minibatch):
                        idx = order[start : start + minibatch]
                        batch = {"image": torch.from_numpy(b_image[idx]).to(device),
                                 "text": torch.from_numpy(b_text[idx]).to(device)}
                        logits = policy(batch, heads=("logits",))["logits"]
                        logp_all = torch.log_softmax(logits, dim=-1)
                        mb_action = b_action[idx].to(device)
                        new_logp = logp_all.gather(1, mb_action[:, None]).squeeze(1)
                        use = b_informative[idx].to(device)
                        loss = torch.zeros((), device=device)
                        if use.any():
                            pg, ratio = grpo_loss(
                                new_logp[use], b_logp[idx].to(device)[use], b_adv[idx].to(device)[use], cfg.clip_coef,
                                b_weight[idx].to(device)[use],
                            )
                            entropy = -(logp_all[use].exp() * logp_all[use]).sum(dim=1).mean()
                            loss = pg - cfg.ent_coef * entropy
                            pg_losses.append(pg.item())
                            entropies.append(entropy.item())
                            clip_fracs.append(float(((ratio - 1).abs() > cfg.clip_coef).float().mean()))
                            if reference is not None:
                                used = {k: v[use] for k, v in batch.items()}
                                kl = reference_kl(reference, used, mb_action[use], new_logp[use])
                                loss = loss + cfg.kl_coef * kl
                                kls.append(kl.item())
                        bc_loss = None
                        if b_labels is not None:
                            whole = torch.from_numpy(b_whole[idx]).to(device) if b_whole is not None else None
                            bc_loss = update_bc_loss(policy, logp_all, batch["image"], whole, b_labels[idx].to(device))
                        if bc_loss is not None:
                            loss = loss + bc_coef * bc_loss
                            bc_losses.append(bc_loss.item())
                        if not loss.requires_grad:
                            continue
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
                        optimizer.step()
            iteration += 1
            update_time = time.perf_counter() - u0

            # -- curriculum, logging, evaluation, checkpoints ---------------------------------------
            if curriculum.advance(recent_successes):
                recent_successes.clear()
                envs.close()
                envs = make_vec_env(cfg.env_id, N, curriculum.env_kwargs(cfg.train_env_kwargs()))
                envs.reset(seed=cfg.seed + 7919 * iteration)
                progress.write(f"curriculum: radius {curriculum.radius} at {env_steps} env steps")
            recent_successes = recent_successes[-cfg.curriculum_window :]
            logger.record_dict(episode_stats)
            logger.record_dict({
                "train/policy_gradient_loss": float(np.mean(pg_losses)) if pg_losses else 0.0,
                "train/entropy_loss": -float(np.mean(entropies)) if entropies else 0.0,
                "train/clip_fraction": float(np.mean(clip_fracs)) if clip_fracs else 0.0,
                "train/zero_std_groups": float(np.mean(group_std == 0)),
                "train/group_return_std": float(np.mean(group_std)),
                "train/learning_rate": lr,
                "train/n_updates": iteration,
                "train/bc_coef": bc_coef,
                "time/fps": played / max(time.perf_counter() - tick, 1e-9),
                "time/total_timesteps": env_steps,
                "time/rollout_s": rollout_time,
                "time/update_s": update_time,
            })
            if kls:
                logger.record("train/kl_ref", float(np.mean(kls)))
            if bc_losses:
                logger.record("train/bc_loss", float(np.mean(bc_losses)))
            if curriculum.radius is not None:
                logger.record("curriculum/radius", curriculum.radius)
            logger.dump(env_steps)
            if eval_due.due(env_steps) and env_steps < cfg.total_env_steps:
                session.evaluate(env_steps, cfg.eval_episodes, resume_state, env_steps=env_steps)
                logger.dump(env_steps)
            if checkpoint_due.due(env_steps):
                session.save(session.run.last_checkpoint, resume_state(), env_steps=env_steps)
            progress.update(played, success=episode_stats["rollout/success_rate"], eval=session.last_success)
            if session.loop_should_end(iteration, callback, stop):
                break
    progress.close()
    envs.close()
    return session.finish(iteration, env_steps, resume_state, env_steps, {"env_steps": env_steps})
