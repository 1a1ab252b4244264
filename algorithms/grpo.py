"""Pseudo-GRPO: group-relative policy optimisation over whole episodes, with no value function.

The loop, top to bottom (one iteration):

1. prompts: draw ``num_groups`` training levels (a level id fixes the room, the start state and
   the instruction);
2. groups: play ``group_size`` episodes from each level at once (the vector env's
   ``options={"level": ...}``), sampling from the current policy, until every episode ends;
3. advantages: each episode's return, normalised within its group,
   ``(R_i - mean(R)) / (std(R) + eps)`` (or the leave-one-out mean, ``baseline="rloo"``), is
   the advantage of every action in that episode; groups whose returns are all equal carry no
   signal and are dropped (their share is logged as ``train/zero_std_groups``);
4. update: a few epochs of the clipped importance-ratio objective over the steps of the other
   groups, an entropy bonus, and optionally a KL penalty to a frozen reference policy (the
   k3 estimator ``r - log r - 1`` with ``r = pi_ref / pi``, as in DeepSeekMath).

How it differs from PPO (``algorithms.ppo``): no critic, so no value loss and no GAE; the
baseline is the other episodes that started from the same state, which only exists because
the env can replay a level; every step of an episode shares one advantage (credit is assigned
to whole episodes, not steps); rollouts are whole episodes, not fixed-length slices; and the
optional KL term anchors the policy to a reference (e.g. the behaviour-cloned one) instead of
PPO's entropy-only regularisation. The price is variance on long horizons: it needs a policy
that succeeds sometimes within a group to learn at all, which a small curriculum radius or a
warm start provides.
"""

from __future__ import annotations

import copy
import pickle
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import agents
from algorithms.advantages import group_advantages
from algorithms.common import Callback, TrainerConfig, TrainingRun, TrainResult, need
from algorithms.envs import make_vec_env
from algorithms.interrupt import GracefulInterrupt
from algorithms.logger import EpisodeStats
from algorithms.ppo import RadiusCurriculum
from algorithms.progress import Progress
from fake_traces import solver


@dataclass
class GRPOConfig(TrainerConfig):
    """Pseudo-GRPO hyper-parameters (plus every :class:`~algorithms.common.TrainerConfig` field)."""

    env_id: str = "Penguin-Bare-v0"
    """Registered Penguin env id."""
    total_env_steps: int = 1_000_000
    """Env steps of training (the budget); ``time_limit`` may stop it earlier."""
    group_size: int = 8
    """Episodes per group (all from one start state); at least 2."""
    num_groups: int = 16
    """Groups (levels) per iteration; ``num_groups * group_size`` games run at once."""
    baseline: str = "mean"
    """``"mean"`` (GRPO: the group's mean return) or ``"rloo"`` (leave-one-out mean)."""
    num_epochs: int = 2
    """Passes over each iteration's steps."""
    num_minibatches: int = 4
    """Minibatches per pass."""
    learning_rate: float = 3e-4
    """Adam learning rate (start value when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the budget."""
    clip_coef: float = 0.2
    """Importance-ratio clipping range."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient."""
    kl_coef: float = 0.0
    """Weight of the KL penalty to the frozen reference policy (0: none; DeepSeekMath used 0.04)."""
    reference: str | None = None
    """Checkpoint of the reference policy for the KL term; None uses the starting policy
    (``init_from``'s weights, or the initial weights)."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    max_episode_steps: int = 0
    """Cut group episodes after this many steps (0: the env's own ``max_steps``)."""
    bc_coef: float = 0.0
    """Weight of a behaviour-cloning auxiliary loss on the solver's optimal actions for the
    visited states (0: learning from reward alone)."""
    bc_decay: float = 0.5
    """Fraction of the budget over which ``bc_coef`` decays linearly to 0."""
    curriculum: bool = False
    """``Penguin-Bare-v0`` only: grow the gold radius from ``curriculum_start`` (see PPO)."""
    curriculum_start: int = 1
    """First curriculum radius."""
    curriculum_threshold: float = 0.8
    """Training success rate (last ``curriculum_window`` episodes) that widens the radius."""
    curriculum_window: int = 256
    """Episodes the curriculum's success rate is measured over."""
    eval_every: int = 100_000
    """Env steps between held-out evaluations (0: only at the end)."""
    checkpoint_every: int = 100_000
    """Env steps between resume checkpoints (also written on Ctrl-C and at the end)."""

    def validate(self) -> None:
        super().validate()
        need(self.group_size >= 2, f"group_size must be >= 2 (a group baseline needs peers), got {self.group_size}")
        for name in ("total_env_steps", "num_groups", "num_epochs", "num_minibatches",
                     "curriculum_start", "curriculum_window"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(self.baseline in ("mean", "rloo"), f"baseline must be 'mean' or 'rloo', got {self.baseline!r}")
        need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate!r}")
        for name in ("clip_coef", "ent_coef", "kl_coef", "bc_coef", "max_episode_steps"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("bc_decay", "curriculum_threshold"):
            need(0.0 <= getattr(self, name) <= 1.0, f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        need(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm!r}")
        need(
            not self.curriculum or self.env_id == "Penguin-Bare-v0",
            f"curriculum grows Penguin-Bare-v0's radius; {self.env_id} has none (set curriculum=False)",
        )
        if self.reference is not None:
            from pathlib import Path

            if not Path(self.reference).is_file():
                raise FileNotFoundError(f"reference: no checkpoint at {self.reference}")

    @property
    def num_envs(self) -> int:
        return self.num_groups * self.group_size


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-sample k3 estimate of KL(pi || pi_ref) from the log-probabilities of sampled actions:
    ``r - log r - 1`` with ``r = pi_ref / pi`` (non-negative, zero when the two agree)."""
    log_r = ref_logp - logp
    return log_r.exp() - log_r - 1.0


def grpo_loss(
    new_logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    clip_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped importance-ratio objective (to minimise) and the ratio, per step averaged."""
    ratio = (new_logp - old_logp).exp()
    loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip_coef, 1 + clip_coef))
    return loss.mean(), ratio


def train(config: GRPOConfig, callback: Callback | None = None) -> TrainResult:
    """Train with pseudo-GRPO and evaluate on held-out levels. ``callback(iteration)`` runs after
    every update. Run directory, checkpoints and resume as :func:`algorithms.ppo.train`."""
    cfg = config
    session = TrainingRun(cfg, "grpo")
    policy, rng, device, logger = session.policy, session.rng, session.device, session.logger
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, eps=1e-5)
    curriculum = RadiusCurriculum(cfg)  # type: ignore[arg-type]  (same curriculum fields as PPO)
    generator = torch.Generator().manual_seed(cfg.seed)
    G, N = cfg.group_size, cfg.num_envs
    stats = EpisodeStats(N, window=max(100, cfg.curriculum_window), next_step_autoreset=False)
    recent_successes: list[float] = []

    reference = None
    if cfg.kl_coef > 0:
        if cfg.reference is not None:
            reference = agents.load(cfg.reference, device)
        else:
            reference = copy.deepcopy(policy).eval()
        for p in reference.parameters():
            p.requires_grad_(False)

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

    def checkpoint(path) -> None:
        session.save(path, resume_state(), env_steps=env_steps)

    level_span = cfg.num_levels if cfg.num_levels > 0 else 2**31 - 1 - cfg.start_level
    progress = Progress(cfg.total_env_steps, initial=env_steps, enabled=cfg.progress, desc=f"grpo {cfg.env_id}")
    interrupted = False
    next_eval = (env_steps // cfg.eval_every + 1) * cfg.eval_every if cfg.eval_every else None
    next_ckpt = (env_steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every if cfg.checkpoint_every else None
    with GracefulInterrupt() as stop:
        while env_steps < cfg.total_env_steps:
            tick = time.perf_counter()
            frac = env_steps / cfg.total_env_steps
            lr = cfg.learning_rate * (1.0 - frac if cfg.anneal_lr else 1.0)
            optimizer.param_groups[0]["lr"] = lr
            bc_coef = cfg.bc_coef * max(0.0, 1.0 - frac / cfg.bc_decay) if cfg.bc_decay > 0 else 0.0

            # -- 1-2. groups of episodes from shared start states ------------------------------
            levels = cfg.start_level + rng.integers(0, level_span, cfg.num_groups)
            obs, _ = envs.reset(options={"level": np.repeat(levels, G)})
            limit = cfg.max_episode_steps or envs.config.episode_limit()
            alive = np.ones(N, dtype=bool)
            episode_return = np.zeros(N)
            episode_success = np.zeros(N, dtype=bool)
            steps: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]] = []
            policy.eval()
            with torch.no_grad():
                for _ in range(limit):
                    rows = np.flatnonzero(alive)
                    if rows.size == 0:
                        break
                    image, text = obs["image"][rows], obs["text"][rows]
                    labels = solver.optimal_action_mask(envs.game.state.take(rows)) if bc_coef > 0 else None
                    logits = policy({"image": image, "text": text}, heads=("logits",))["logits"]
                    logp_all = torch.log_softmax(logits, dim=-1)
                    action = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
                    logp = logp_all.gather(1, action[:, None]).squeeze(1)
                    steps.append((rows, image.copy(), text.copy(), action.numpy(), logp.numpy(), labels))
                    actions = np.zeros(N, dtype=np.int64)
                    actions[rows] = action.numpy()
                    obs, reward, term, trunc, info = envs.step(actions)
                    episode_return[rows] += reward[rows]
                    done = (term | trunc) & alive
                    episode_success[done] = info["success"][done]
                    alive &= ~done
            # Episodes cut by max_episode_steps end here, unfinished (their return so far counts).
            finished = np.ones(N, dtype=bool)
            stats.update(episode_return, finished, np.zeros(N, dtype=bool), episode_success)
            recent_successes.extend(episode_success.astype(float).tolist())
            played = sum(len(s[0]) for s in steps)
            env_steps += played
            # Reset every game next iteration (a fresh group), so no episode leaks across.
            rollout_time = time.perf_counter() - tick

            # -- 3. group-relative advantages ---------------------------------------------------
            advantages = group_advantages(episode_return, G, cfg.baseline)
            group_std = episode_return.reshape(-1, G).std(axis=1)
            informative = np.repeat(group_std > 0, G)

            # -- 4. update ------------------------------------------------------------------------
            u0 = time.perf_counter()
            pg_losses, kls, entropies, clip_fracs, bc_losses = [], [], [], [], []
            rows_all = np.concatenate([st[0] for st in steps])
            # Steps of equal-return groups carry no policy gradient; they are trained on only
            # when the behaviour-cloning loss gives them something to learn.
            train_rows = np.ones(len(rows_all), bool) if bc_coef > 0 else informative[rows_all]
            if train_rows.any():
                b_image = np.concatenate([st[1] for st in steps])[train_rows]
                b_text = np.concatenate([st[2] for st in steps])[train_rows]
                b_action = torch.from_numpy(np.concatenate([st[3] for st in steps])[train_rows])
                b_logp = torch.from_numpy(np.concatenate([st[4] for st in steps])[train_rows])
                b_adv = torch.from_numpy(advantages[rows_all[train_rows]])
                b_informative = torch.from_numpy(informative[rows_all[train_rows]])
                b_labels = (
                    torch.from_numpy(np.concatenate([st[5] for st in steps])[train_rows])
                    if bc_coef > 0 else None
                )
                policy.train()
                total = len(b_action)
                minibatch = max(1, total // cfg.num_minibatches)
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
                                new_logp[use], b_logp[idx].to(device)[use], b_adv[idx].to(device)[use], cfg.clip_coef
                            )
                            entropy = -(logp_all[use].exp() * logp_all[use]).sum(dim=1).mean()
                            loss = pg - cfg.ent_coef * entropy
                            pg_losses.append(pg.item())
                            entropies.append(entropy.item())
                            clip_fracs.append(float(((ratio - 1).abs() > cfg.clip_coef).float().mean()))
                            if reference is not None:
                                with torch.no_grad():
                                    ref_logits = reference(batch, heads=("logits",))["logits"][use]
                                ref_logp = torch.log_softmax(ref_logits, dim=-1).gather(1, mb_action[use][:, None]).squeeze(1)
                                kl = k3_kl(new_logp[use], ref_logp).mean()
                                loss = loss + cfg.kl_coef * kl
                                kls.append(kl.item())
                        if b_labels is not None:
                            mask = b_labels[idx].to(device).float()
                            has = mask.sum(dim=1) > 0
                            if has.any():
                                target = mask[has] / mask[has].sum(dim=1, keepdim=True)
                                bc_loss = -(target * logp_all[has]).sum(dim=1).mean()
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
            logger.record_dict(stats.scalars())
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
            if next_eval is not None and env_steps >= next_eval and env_steps < cfg.total_env_steps:
                session.evaluate(env_steps, cfg.eval_episodes, resume_state, env_steps=env_steps)
                logger.dump(env_steps)
                while next_eval <= env_steps:
                    next_eval += cfg.eval_every
            if next_ckpt is not None and env_steps >= next_ckpt:
                checkpoint(session.run.last_checkpoint)
                while next_ckpt <= env_steps:
                    next_ckpt += cfg.checkpoint_every
            scalars = stats.scalars()
            progress.update(played, success=scalars.get("rollout/success_rate"), eval=session.last_success)
            if callback is not None:
                callback(iteration)
            if stop.requested:
                interrupted = True
                break
            if session.out_of_time():
                break
    progress.close()

    checkpoint(session.run.last_checkpoint)
    envs.close()
    final = None
    if not interrupted:
        final = session.evaluate(env_steps, cfg.final_eval_episodes, resume_state, env_steps=env_steps)
        logger.dump(env_steps)
        checkpoint(session.run.checkpoints / "final.pt")
    return session.result(iteration, env_steps, final, interrupted)
