"""Proximal Policy Optimization through the one multimodal policy network.

The loop, top to bottom (one iteration = one rollout + one update):

1. rollout: ``num_envs`` games of the native vector env step ``num_steps`` times; the policy
   samples actions and records log-probabilities and values (and, with ``bc_coef > 0``, the
   solver's optimal actions for every visited state);
2. targets: GAE(lambda) over the rollout (``algorithms.advantages.gae``): time-limit
   truncations bootstrap, terminations do not, and the vector env's next-step autoreset steps
   are left out;
3. update: ``num_epochs`` passes of shuffled minibatches: clipped surrogate, value loss
   (optionally clipped), entropy bonus, optional behaviour-cloning auxiliary loss on the
   solver's labels with a coefficient decaying to 0, optional KL penalty to a frozen reference
   policy (e.g. the behaviour-cloned one being fine-tuned); per-minibatch advantage normalisation;
   global grad-norm clip; Adam (eps 1e-5); linear learning-rate annealing; optional
   target-KL early stop;
4. all along: stable-baselines3's TensorBoard names, held-out evaluation (greedy and sampled),
   atomic checkpoints, bit-identical resume, optional radius curriculum on ``Penguin-Bare-v0``.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from algorithms.advantages import gae
from algorithms.augment import corner_word_ids, drop_words
from algorithms.common import (
    Callback,
    TrainingRun,
    TrainResult,
    explained_variance,
    make_adam,
    need,
)
from algorithms.envs import make_vec_env
from algorithms.interrupt import GracefulInterrupt
from algorithms.logger import EpisodeStats
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


@dataclass
class PPOConfig(OnPolicyConfig):
    """PPO hyper-parameters (plus every :class:`~algorithms.onpolicy.OnPolicyConfig` field)."""

    num_envs: int = 64
    """Games stepped together."""
    num_steps: int = 64
    """Steps per game per rollout (a rollout is ``num_envs * num_steps`` transitions)."""
    num_epochs: int = 4
    """Passes over each rollout."""
    num_minibatches: int = 8
    """Minibatches per pass (more, smaller minibatches: more gradient steps for the same compute)."""
    gamma: float = 0.95
    """Discount factor. Rewards here are sparse (+1 per gold) and episodes run up to
    ``4 * size**2`` steps; with 0.99 a step of delay changes a state's value by about 1%, an
    advantage signal the noise drowns (from scratch on Bare: under 10% greedy success after 15
    minutes), while with 0.95 a detour costs 5% per step and PPO learns to go straight."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_vloss: bool = False
    """Clip the value loss around the rollout's values as well."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    target_kl: float = 0.0
    """Stop an update's epochs once the approximate KL exceeds this (0: never)."""
    norm_adv: bool = True
    """Normalise advantages per minibatch."""
    value_warmup: int = 0
    """Updates at the start that train only the value head, on frozen features, before the
    policy moves (0: none). Meant for a warm start (``init_from``) whose value head is fresh:
    its first advantages are noise, and acting on them undoes what the checkpoint knew (from
    behaviour cloning on Gold, greedy success fell from 88% to 80% while the value head learnt)."""

    def validate(self) -> None:
        super().validate()
        for name in ("num_envs", "num_steps", "num_epochs", "num_minibatches"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(
            (self.num_envs * self.num_steps) % self.num_minibatches == 0,
            f"num_envs * num_steps ({self.num_envs * self.num_steps}) must be divisible by "
            f"num_minibatches ({self.num_minibatches})",
        )
        for name in ("gamma", "gae_lambda"):
            need(0.0 <= getattr(self, name) <= 1.0, f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        need(self.value_warmup >= 0, f"value_warmup must be >= 0, got {self.value_warmup!r}")
        for name in ("vf_coef", "target_kl"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)!r}")

    @property
    def rollout_size(self) -> int:
        return self.num_envs * self.num_steps


def value_head_step(
    policy: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    obs: dict[str, torch.Tensor],
    returns: torch.Tensor,
    cfg: PPOConfig,
) -> float:
    """One gradient step of the value loss on the value head alone (the features are computed
    without gradient, so the policy is unchanged); returns the value loss."""
    with torch.no_grad():
        features = policy(obs, heads=("features",))["features"]
    v_loss = 0.5 * ((policy.value_head(features).squeeze(-1) - returns) ** 2).mean()
    optimizer.zero_grad(set_to_none=True)
    (cfg.vf_coef * v_loss).backward()
    torch.nn.utils.clip_grad_norm_(policy.value_head.parameters(), cfg.max_grad_norm)
    optimizer.step()
    return v_loss.item()


def train(config: PPOConfig, callback: Callback | None = None) -> TrainResult:
    """Train with PPO and evaluate on held-out levels. ``callback(update)`` runs after every update.

    Writes ``runs/<name>/`` (config.json, TensorBoard events, eval.csv, checkpoints/). Ctrl-C
    saves a resume checkpoint (network, optimizer, RNGs and the vector env's exact state) and
    returns; ``resume=True`` continues, ending with the same weights as an uninterrupted run.
    """
    cfg = config
    session = TrainingRun(cfg, "ppo")
    policy, rng, device, logger = session.policy, session.rng, session.device, session.logger
    optimizer = make_adam(policy.parameters(), cfg.learning_rate)
    reference = make_reference(cfg, policy, device)  # before a resume loads its later weights
    curriculum = RadiusCurriculum(cfg)
    num_updates = -(-cfg.total_env_steps // cfg.rollout_size)
    generator = torch.Generator().manual_seed(cfg.seed)
    corner_ids = corner_word_ids()
    stats = EpisodeStats(cfg.num_envs, window=max(100, cfg.curriculum_window))
    recent_successes: list[float] = []

    update, env_steps = 0, 0
    saved = session.resume_state()
    if saved is not None:
        optimizer.load_state_dict(saved["optimizer"])
        update, env_steps = int(saved["update"]), int(saved["env_steps"])
        curriculum.radius = saved["radius"]
        generator.set_state(saved["generator"])
        envs = pickle.loads(saved["envs"])
        obs = {k: v.numpy() for k, v in saved["obs"].items()}
        resetting = saved["resetting"].numpy()
        recent_successes = list(saved["recent_successes"])
        if reference is not None and cfg.reference is None:
            reference.load_state_dict(saved["reference"])  # the start, even if init_from has changed
    else:
        envs = make_vec_env(cfg.env_id, cfg.num_envs, curriculum.env_kwargs(cfg.train_env_kwargs()))
        obs, _ = envs.reset(seed=cfg.seed)
        # Games whose last step ended an episode: their next step only resets them.
        resetting = np.zeros(cfg.num_envs, dtype=bool)
    session.write_config()

    def resume_state() -> dict[str, Any]:
        state = {
            "optimizer": optimizer.state_dict(),
            "update": update,
            "env_steps": env_steps,
            "radius": curriculum.radius,
            "generator": generator.get_state(),
            "rng": session.rng_state(),
            # The vector env's exact state (games, level pools, autoreset flags), pickled: it is
            # read back only when resuming this run, never when loading weights.
            "envs": pickle.dumps(envs),
            "obs": {k: torch.from_numpy(np.array(v)) for k, v in obs.items()},
            "resetting": torch.from_numpy(resetting.copy()),
            "recent_successes": [float(x) for x in recent_successes],
        }
        if reference is not None and cfg.reference is None:
            state["reference"] = reference.state_dict()
        return state

    # Rollout storage, allocated once.
    T, N = cfg.num_steps, cfg.num_envs
    space = envs.single_observation_space
    images = np.zeros((T, N, *space["image"].shape), dtype=np.uint8)
    texts = np.zeros((T, N, *space["text"].shape), dtype=space["text"].dtype)
    actions = np.zeros((T, N), dtype=np.int64)
    logprobs = np.zeros((T, N), dtype=np.float32)
    values = np.zeros((T, N), dtype=np.float32)
    rewards = np.zeros((T, N), dtype=np.float32)
    terminated = np.zeros((T, N), dtype=bool)
    truncated = np.zeros((T, N), dtype=bool)
    valid = np.zeros((T, N), dtype=bool)
    labels = np.zeros((T, N, 5), dtype=bool)
    # The whole instructions, kept only when the BC loss trains on them (bc_whole_instruction).
    whole_texts = np.zeros_like(texts) if cfg.bc_whole_instruction else None

    progress = Progress(num_updates, initial=update, enabled=cfg.progress, desc=f"ppo {cfg.env_id}")
    eval_due, checkpoint_due = Every(cfg.eval_every, env_steps), Every(cfg.checkpoint_every, env_steps)
    with GracefulInterrupt() as stop:
        while update < num_updates:
            tick = time.perf_counter()
            lr, bc_coef = cfg.schedule(update / num_updates)
            optimizer.param_groups[0]["lr"] = lr

            # -- 1. rollout ------------------------------------------------------------------
            policy.eval()
            forward_time = 0.0
            with torch.no_grad():
                for t in range(T):
                    images[t], texts[t] = obs["image"], obs["text"]
                    if whole_texts is not None:
                        whole_texts[t] = obs["text"]
                    if cfg.word_dropout > 0:
                        texts[t] = drop_words(torch.from_numpy(texts[t]), cfg.word_dropout, rng, corner_ids).numpy()
                    valid[t] = ~resetting
                    if bc_coef > 0:
                        labels[t] = solver.optimal_action_mask(envs.game.state)
                    f0 = time.perf_counter()
                    out = policy({"image": images[t], "text": texts[t]}, heads=("logits", "value"))
                    logp_all = torch.log_softmax(out["logits"], dim=-1)
                    action = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
                    forward_time += time.perf_counter() - f0
                    actions[t] = action.numpy()
                    logprobs[t] = logp_all.gather(1, action[:, None]).squeeze(1).numpy()
                    values[t] = out["value"].numpy()
                    obs, reward, term, trunc, info = envs.step(actions[t])
                    rewards[t], terminated[t], truncated[t] = reward, term, trunc
                    stats.update(reward, term, trunc, info["success"])
                    done = term | trunc
                    if done.any():
                        recent_successes.extend(info["success"][done].astype(float).tolist())
                    resetting = done
                next_value = policy({"image": obs["image"], "text": obs["text"]}, heads=("value",))["value"].numpy()
            env_steps += T * N
            rollout_time = time.perf_counter() - tick

            # -- 2. targets ------------------------------------------------------------------
            advantages, returns = gae(
                rewards, values, next_value, terminated, truncated, valid, cfg.gamma, cfg.gae_lambda
            )

            # -- 3. update --------------------------------------------------------------------
            u0 = time.perf_counter()
            policy.train()
            flat_valid = np.flatnonzero(valid.reshape(-1))
            b_images = images.reshape(T * N, *images.shape[2:])
            b_texts = texts.reshape(T * N, *texts.shape[2:])
            b_actions = torch.from_numpy(actions.reshape(-1))
            b_logprobs = torch.from_numpy(logprobs.reshape(-1))
            b_values = torch.from_numpy(values.reshape(-1))
            b_adv = torch.from_numpy(advantages.reshape(-1))
            b_returns = torch.from_numpy(returns.reshape(-1))
            b_labels = torch.from_numpy(labels.reshape(T * N, 5))
            b_whole = whole_texts.reshape(b_texts.shape) if whole_texts is not None else None
            minibatch = max(1, len(flat_valid) // cfg.num_minibatches)
            clip_fracs, kls, pg_losses, v_losses, entropies, bc_losses = [], [], [], [], [], []
            ref_kls: list[float] = []
            stop_early = False
            warming_up = update < cfg.value_warmup
            for _epoch in range(cfg.num_epochs):
                order = flat_valid[rng.permutation(len(flat_valid))]
                for start in range(0, len(order) - minibatch + 1, minibatch):
                    idx = order[start : start + minibatch]
                    mb_obs = {"image": torch.from_numpy(b_images[idx]).to(device),
                              "text": torch.from_numpy(b_texts[idx]).to(device)}
                    if warming_up:
                        v_losses.append(value_head_step(policy, optimizer, mb_obs, b_returns[idx].to(device), cfg))
                        continue
                    out = policy(mb_obs, heads=("logits", "value"))
                    mb_actions = b_actions[idx].to(device)
                    logp_all = torch.log_softmax(out["logits"], dim=-1)
                    new_logp = logp_all.gather(1, mb_actions[:, None]).squeeze(1)
                    log_ratio = new_logp - b_logprobs[idx].to(device)
                    ratio = log_ratio.exp()
                    with torch.no_grad():
                        kls.append(float(((ratio - 1) - log_ratio).mean()))
                        clip_fracs.append(float(((ratio - 1).abs() > cfg.clip_coef).float().mean()))
                    mb_adv = b_adv[idx].to(device)
                    if cfg.norm_adv and len(idx) > 1:
                        mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                    pg_loss = torch.max(
                        -mb_adv * ratio, -mb_adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)
                    ).mean()
                    new_value = out["value"]
                    mb_returns = b_returns[idx].to(device)
                    if cfg.clip_vloss:
                        old = b_values[idx].to(device)
                        clipped = old + (new_value - old).clamp(-cfg.clip_coef, cfg.clip_coef)
                        v_loss = 0.5 * torch.max((new_value - mb_returns) ** 2, (clipped - mb_returns) ** 2).mean()
                    else:
                        v_loss = 0.5 * ((new_value - mb_returns) ** 2).mean()
                    entropy = -(logp_all.exp() * logp_all).sum(dim=1).mean()
                    loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
                    bc_loss = None
                    if bc_coef > 0:
                        whole = torch.from_numpy(b_whole[idx]).to(device) if b_whole is not None else None
                        bc_loss = update_bc_loss(policy, logp_all, mb_obs["image"], whole, b_labels[idx].to(device))
                    if bc_loss is not None:
                        loss = loss + bc_coef * bc_loss
                        bc_losses.append(bc_loss.item())
                    if reference is not None:
                        ref_kl = reference_kl(reference, mb_obs, mb_actions, new_logp)
                        loss = loss + cfg.kl_coef * ref_kl
                        ref_kls.append(ref_kl.item())
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
                    optimizer.step()
                    pg_losses.append(pg_loss.item())
                    v_losses.append(v_loss.item())
                    entropies.append(entropy.item())
                    if cfg.target_kl > 0 and kls[-1] > cfg.target_kl:
                        stop_early = True
                        break
                if stop_early:
                    break
            update += 1
            update_time = time.perf_counter() - u0

            # -- 4. curriculum, logging, evaluation, checkpoints -----------------------------------
            if curriculum.advance(recent_successes):
                recent_successes.clear()
                envs.close()
                envs = make_vec_env(cfg.env_id, N, curriculum.env_kwargs(cfg.train_env_kwargs()))
                obs, _ = envs.reset(seed=cfg.seed + 7919 * update)
                resetting = np.zeros(N, dtype=bool)
                progress.write(f"curriculum: radius {curriculum.radius} at {env_steps} env steps")
            recent_successes = recent_successes[-cfg.curriculum_window :]
            valid_values = values[valid]
            logger.record_dict(stats.scalars())
            logger.record_dict({
                "train/approx_kl": float(np.mean(kls)) if kls else 0.0,
                "train/clip_fraction": float(np.mean(clip_fracs)) if clip_fracs else 0.0,
                "train/explained_variance": explained_variance(valid_values, returns[valid]),
                "train/value_loss": float(np.mean(v_losses)) if v_losses else 0.0,
                "train/policy_gradient_loss": float(np.mean(pg_losses)) if pg_losses else 0.0,
                "train/entropy_loss": -float(np.mean(entropies)) if entropies else 0.0,
                "train/learning_rate": lr,
                "train/n_updates": update,
                "train/bc_coef": bc_coef,
                "time/fps": T * N / max(time.perf_counter() - tick, 1e-9),
                "time/total_timesteps": env_steps,
                "time/rollout_forward_s": forward_time,
                "time/rollout_env_s": rollout_time - forward_time,
                "time/update_s": update_time,
            })
            if bc_losses:
                logger.record("train/bc_loss", float(np.mean(bc_losses)))
            if ref_kls:
                logger.record("train/kl_ref", float(np.mean(ref_kls)))
            if curriculum.radius is not None:
                logger.record("curriculum/radius", curriculum.radius)
            logger.dump(env_steps)
            if eval_due.due(env_steps) and update < num_updates:
                session.evaluate(env_steps, cfg.eval_episodes, resume_state, env_steps=env_steps)
                logger.dump(env_steps)
            if checkpoint_due.due(env_steps):
                session.save(session.run.last_checkpoint, resume_state(), env_steps=env_steps)
            scalars = stats.scalars()
            progress.update(1, success=scalars.get("rollout/success_rate"), ret=scalars.get("rollout/ep_rew_mean"),
                            eval=session.last_success)
            if session.loop_should_end(update, callback, stop):
                break
    progress.close()
    envs.close()
    return session.finish(update, env_steps, resume_state, env_steps, {"env_steps": env_steps})
