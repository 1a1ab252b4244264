"""Proximal Policy Optimization through the one multimodal policy network.

One iteration, top to bottom (:func:`train`):

1. collect (:func:`collect_rollout`): ``num_envs`` games of the native vector env step
   ``num_steps`` times; the policy samples actions and records log-probabilities and values
   (and, with ``bc_coef > 0``, the solver's optimal actions for every visited state);
2. targets: GAE(lambda) over the rollout (:func:`algorithms.advantages.gae`): time-limit
   truncations bootstrap, terminations do not, and the vector env's next-step autoreset steps
   are left out;
3. update (:func:`ppo_update`): ``num_epochs`` passes of shuffled minibatches of the clipped
   surrogate, value loss, entropy bonus, and the optional behaviour-cloning loss on the solver's
   labels and KL penalty to a frozen reference policy; per-minibatch advantage normalisation,
   global grad-norm clip, Adam (eps 1e-5), linear learning-rate annealing, optional target-KL
   early stop;
4. log: stable-baselines3's TensorBoard names.

Evaluation, checkpoints, resume and the radius curriculum are the driver's
(:class:`algorithms.driver.TrainingRun`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from algorithms.advantages import gae
from algorithms.augment import (
    SymmetryAugment,
    check_augment,
    corner_word_ids,
    drop_words,
    make_augmenter,
    transform_actions,
)
from algorithms.auxiliary import aux_loss, aux_targets
from algorithms.config import need
from algorithms.curriculum import RadiusCurriculum
from algorithms.diagnostics import explained_variance
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
from penguin_env import NUM_ACTIONS


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
    """Discount factor. Rewards are sparse (+1 per gold) and episodes run up to ``4 * size**2``
    steps: with 0.99 a step of delay changes a state's value by about 1%, a signal the rollout
    noise drowns; with 0.95 a detour costs 5% per step."""
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
    """Iterations at the start that train only the value head, on frozen features, before the
    policy moves (0: none). For a warm start (``init_from``) whose value head is fresh: its
    first advantages are noise, and acting on them undoes what the checkpoint knew."""
    augment: str = "off"
    """Symmetry augmentation of each update (``algorithms.augment``): every rollout sample is
    turned by a random multiple of 90 degrees and mirrored half the time, its action,
    instruction and auxiliary targets mapped to match (LEFT and RIGHT swap under a mirror); its
    logged log-probability, advantage and return stay, since the game is the same in every
    orientation (:func:`augment_rollout`). ``"on"`` (an error if the env's frames are not
    symmetric), ``"auto"`` (on when they are) or ``"off"``."""

    def validate(self) -> None:
        super().validate()
        check_augment(self.env_id, self.env_kwargs, self.augment)
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


@dataclass
class PPOState(TrainerState):
    """What PPO carries from one iteration to the next (saved in resume checkpoints)."""

    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    """Draws the sampled actions, on the policy's device."""
    envs: EnvStepper
    curriculum: RadiusCurriculum
    reference: torch.nn.Module | None
    """The frozen policy of the KL penalty (None without one)."""


class Rollout:
    """One rollout's ``(T, N)`` arrays, allocated once and overwritten every iteration."""

    def __init__(self, cfg: PPOConfig, space: dict) -> None:
        T, N = cfg.num_steps, cfg.num_envs
        self.images = np.zeros((T, N, *space["image"].shape), dtype=np.uint8)
        self.texts = np.zeros((T, N, *space["text"].shape), dtype=space["text"].dtype)
        # The whole instructions, kept only when the BC loss trains on them (bc_whole_instruction).
        self.whole_texts = np.zeros_like(self.texts) if cfg.bc_whole_instruction else None
        self.actions = np.zeros((T, N), dtype=np.int64)
        self.logprobs = np.zeros((T, N), dtype=np.float32)
        self.values = np.zeros((T, N), dtype=np.float32)
        self.rewards = np.zeros((T, N), dtype=np.float32)
        self.terminated = np.zeros((T, N), dtype=bool)
        self.truncated = np.zeros((T, N), dtype=bool)
        self.valid = np.zeros((T, N), dtype=bool)
        """False on the steps that only reset a game (next-step autoreset): no transition."""
        self.labels = np.zeros((T, N, NUM_ACTIONS), dtype=bool)
        self.next_value = np.zeros(N, dtype=np.float32)
        # What the state says (algorithms.auxiliary), kept only for the auxiliary losses.
        cells = cfg.policy.grid**2
        self.aux = None if cfg.aux_coef <= 0 else {
            "penguin": np.zeros((T, N), dtype=np.int64),
            "heading": np.zeros((T, N), dtype=np.int64),
            "bearing": np.zeros((T, N), dtype=np.int64),
            "gold": np.zeros((T, N, cells), dtype=np.float32),
            **({"nearest": np.zeros((T, N), dtype=np.int64)} if cfg.aux_nearest else {}),
        }

    @property
    def size(self) -> int:
        return self.actions.size


def train(config: PPOConfig, callback: Callback | None = None) -> TrainResult:
    """Train with PPO and evaluate on held-out levels. ``callback(iteration)`` runs after every
    iteration.

    Writes ``runs_dir/run_name/`` (config.json, TensorBoard events, eval.csv, checkpoints/). Ctrl-C
    saves a resume checkpoint and returns; ``resume=True`` continues, ending with the same
    weights as an uninterrupted run.
    """
    cfg = config
    run = TrainingRun(cfg, "ppo")
    policy = run.policy
    curriculum = RadiusCurriculum(cfg, cfg.env_kwargs)
    state = PPOState(
        optimizer=make_adam(policy.parameters(), cfg.learning_rate),
        generator=make_generator(cfg.seed, run.device),
        envs=EnvStepper(cfg.env_id, cfg.num_envs, curriculum.env_kwargs(cfg.train_env_kwargs()), cfg.seed,
                        stats_window=max(100, cfg.curriculum_window)),
        curriculum=curriculum,
        reference=make_reference(cfg, policy, run.device),  # the start, before a resume loads later weights
    )
    rollout = Rollout(cfg, state.envs.observation_space)
    augmenter = make_augmenter(cfg.env_id, cfg.env_kwargs, cfg.augment)
    num_iterations = -(-cfg.total_env_steps // cfg.rollout_size)
    for iteration in run.iterations(state, callback, curriculum=state.curriculum, restart=state.envs.restart):
        lr, bc_coef = cfg.schedule(iteration / num_iterations)
        set_learning_rate(state.optimizer, lr)

        with run.timer("rollout"):
            collect_rollout(policy, state, rollout, cfg, bc_coef, run.rng)
        run.count(env_steps=rollout.size)

        advantages, returns = gae(
            rollout.rewards, rollout.values, rollout.next_value, rollout.terminated, rollout.truncated,
            rollout.valid, cfg.gamma, cfg.gae_lambda,
        )

        with run.timer("update"):
            losses = ppo_update(policy, state, rollout, advantages, returns, cfg, bc_coef, run.rng,
                                value_only=iteration < cfg.value_warmup, augmenter=augmenter)
        run.count(gradient_steps=len(losses["train/value_loss"]))

        run.log({
            **state.envs.stats.scalars(),
            **{name: torch.stack(values).mean() for name, values in losses.items()},
            "train/explained_variance": explained_variance(rollout.values[rollout.valid], returns[rollout.valid]),
            "train/learning_rate": lr,
            "train/bc_coef": bc_coef,
        })
    state.envs.close()
    return run.finish()


@torch.no_grad()
def collect_rollout(
    policy: torch.nn.Module,
    state: PPOState,
    rollout: Rollout,
    cfg: PPOConfig,
    bc_coef: float,
    rng: np.random.Generator,
) -> None:
    """Play ``num_steps`` steps of every game into ``rollout``, sampling from ``policy``."""
    policy.eval()
    envs, corner_ids = state.envs, corner_word_ids()
    for t in range(cfg.num_steps):
        rollout.images[t], rollout.texts[t] = envs.obs["image"], envs.obs["text"]
        if rollout.whole_texts is not None:
            rollout.whole_texts[t] = envs.obs["text"]
        if cfg.word_dropout > 0:
            rollout.texts[t] = drop_words(torch.from_numpy(rollout.texts[t]), cfg.word_dropout, rng, corner_ids).numpy()
        rollout.valid[t] = ~envs.resetting
        if bc_coef > 0 or rollout.aux is not None:
            game = envs.envs.get_state()
            if bc_coef > 0:
                rollout.labels[t] = solver.optimal_action_mask(game)
            if rollout.aux is not None:
                for name, value in aux_targets(game, cfg.policy.grid, cfg.aux_nearest).items():
                    rollout.aux[name][t] = value
        out = policy({"image": rollout.images[t], "text": rollout.texts[t]}, heads=("logits", "value"))
        action, logp_all = sample_actions(out["logits"], state.generator)
        logp = logp_all.gather(1, action[:, None]).squeeze(1)
        # One copy to the host per step: actions, log-probabilities and values together.
        host = torch.stack((action.to(logp.dtype), logp, out["value"])).cpu().numpy()
        rollout.actions[t], rollout.logprobs[t], rollout.values[t] = host[0], host[1], host[2]
        _, reward, terminated, truncated, info = envs.step(rollout.actions[t])
        rollout.rewards[t], rollout.terminated[t], rollout.truncated[t] = reward, terminated, truncated
        state.curriculum.record(info["success"][terminated | truncated])
    rollout.next_value[:] = policy(envs.obs, heads=("value",))["value"].cpu().numpy()


def minibatches(rows: np.ndarray, cfg: PPOConfig, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``num_epochs`` passes over ``rows`` in shuffled minibatches of ``len(rows) //
    num_minibatches`` (each epoch's order drawn when the epoch starts)."""
    size = max(1, len(rows) // cfg.num_minibatches)
    for _epoch in range(cfg.num_epochs):
        order = rows[rng.permutation(len(rows))]
        for start in range(0, len(order) - size + 1, size):
            yield order[start : start + size]


def ppo_update(
    policy: torch.nn.Module,
    state: PPOState,
    rollout: Rollout,
    advantages: np.ndarray,
    returns: np.ndarray,
    cfg: PPOConfig,
    bc_coef: float,
    rng: np.random.Generator,
    value_only: bool = False,
    augmenter: SymmetryAugment | None = None,
) -> dict[str, list[torch.Tensor]]:
    """The update's gradient steps on the rollout's valid steps, each turned by a random symmetry
    when ``augmenter`` is given; returns each loss term per minibatch (``train/value_loss`` has
    one entry per gradient step)."""
    policy.train()
    device = next(policy.parameters()).device
    T, N = rollout.actions.shape
    flat = {
        "image": rollout.images.reshape(T * N, *rollout.images.shape[2:]),
        "text": rollout.texts.reshape(T * N, *rollout.texts.shape[2:]),
        "whole_text": None if rollout.whole_texts is None else rollout.whole_texts.reshape(T * N, -1),
        "actions": rollout.actions.reshape(-1),
        "logprobs": rollout.logprobs.reshape(-1),
        "values": rollout.values.reshape(-1),
        "advantages": advantages.reshape(-1),
        "returns": returns.reshape(-1),
        "labels": rollout.labels.reshape(T * N, NUM_ACTIONS),
        **{f"aux_{k}": v.reshape(T * N, *v.shape[2:]) for k, v in (rollout.aux or {}).items()},
    }
    if augmenter is not None:
        augment_rollout(augmenter, flat, cfg.policy.grid, rng)
    losses: dict[str, list[torch.Tensor]] = defaultdict(list)
    for idx in minibatches(np.flatnonzero(rollout.valid.reshape(-1)), cfg, rng):
        mb = {k: None if v is None else torch.from_numpy(v[idx]).to(device) for k, v in flat.items()}
        if value_only:
            losses["train/value_loss"].append(value_head_step(policy, state.optimizer, mb, cfg))
            continue
        loss, terms = ppo_loss(policy, mb, cfg, bc_coef, state.reference)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
        state.optimizer.step()
        for name, value in terms.items():
            losses[name].append(value)
        if cfg.target_kl > 0 and float(terms["train/approx_kl"]) > cfg.target_kl:
            break
    return losses


def augment_rollout(
    augmenter: SymmetryAugment, flat: dict[str, np.ndarray | None], grid: int, rng: np.random.Generator
) -> None:
    """Turn every sample of a flattened rollout by its own random symmetry, in place: the frame,
    the instruction (and the whole instruction), the action, the solver's labels and the
    auxiliary targets alike.

    The logged log-probability, advantage and return stay: the game is the same in every
    orientation, so a turned sample is what the symmetric image of the playing policy would have
    played, and the clipped ratio keeps the new policy at the turned state near the old policy at
    the original one. (Recomputing the log-probability under the turned observation instead made
    the ratios of actions that the unturned policy rarely takes explode on Gold.)"""
    which = augmenter.draw(len(flat["actions"]), rng)
    image, text, labels = augmenter.apply_each(
        torch.from_numpy(flat["image"]), torch.from_numpy(flat["text"]), torch.from_numpy(flat["labels"]), which
    )
    flat["image"], flat["text"], flat["labels"] = image.numpy(), text.numpy(), labels.numpy()
    if flat["whole_text"] is not None:
        flat["whole_text"] = augmenter.transform_text(torch.from_numpy(flat["whole_text"]), which).numpy()
    flat["actions"] = transform_actions(torch.from_numpy(flat["actions"]), which).numpy()
    aux_names = [k for k in flat if k.startswith("aux_")]
    if aux_names:
        turned = augmenter.transform_aux({k[4:]: torch.from_numpy(flat[k]) for k in aux_names}, which, grid)
        for name, value in turned.items():
            flat[f"aux_{name}"] = value.numpy()


def ppo_loss(
    policy: torch.nn.Module,
    mb: dict[str, torch.Tensor],
    cfg: PPOConfig,
    bc_coef: float,
    reference: torch.nn.Module | None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PPO's loss on one minibatch and its terms (detached, under their TensorBoard names)."""
    obs = {"image": mb["image"], "text": mb["text"]}
    out = policy(obs, heads=("logits", "value", "aux") if cfg.aux_coef > 0 else ("logits", "value"))
    logp_all = torch.log_softmax(out["logits"], dim=-1)
    new_logp = logp_all.gather(1, mb["actions"][:, None]).squeeze(1)
    log_ratio = new_logp - mb["logprobs"]
    ratio = log_ratio.exp()
    adv = mb["advantages"]
    if cfg.norm_adv and len(adv) > 1:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef)).mean()
    value, ret = out["value"], mb["returns"]
    if cfg.clip_vloss:
        clipped = mb["values"] + (value - mb["values"]).clamp(-cfg.clip_coef, cfg.clip_coef)
        v_loss = 0.5 * torch.max((value - ret) ** 2, (clipped - ret) ** 2).mean()
    else:
        v_loss = 0.5 * ((value - ret) ** 2).mean()
    entropy = -(logp_all.exp() * logp_all).sum(dim=1).mean()
    loss = pg_loss - cfg.ent_coef * entropy + cfg.vf_coef * v_loss
    with torch.no_grad():
        terms = {
            "train/approx_kl": ((ratio - 1) - log_ratio).mean(),
            "train/clip_fraction": ((ratio - 1).abs() > cfg.clip_coef).float().mean(),
            "train/policy_gradient_loss": pg_loss.detach(),
            "train/value_loss": v_loss.detach(),
            "train/entropy_loss": -entropy.detach(),
        }
    if bc_coef > 0:
        bc_loss = update_bc_loss(policy, logp_all, mb["image"], mb["whole_text"], mb["labels"])
        if bc_loss is not None:
            loss = loss + bc_coef * bc_loss
            terms["train/bc_loss"] = bc_loss.detach()
    if reference is not None:
        ref_kl = reference_kl(reference, obs, mb["actions"], new_logp)
        loss = loss + cfg.kl_coef * ref_kl
        terms["train/kl_ref"] = ref_kl.detach()
    if cfg.aux_coef > 0:
        aux, aux_terms = aux_loss(out, {k[4:]: v for k, v in mb.items() if k.startswith("aux_")})
        loss = loss + cfg.aux_coef * aux
        terms.update(aux_terms)
    return loss, terms


def value_head_step(
    policy: torch.nn.Module, optimizer: torch.optim.Optimizer, mb: dict[str, torch.Tensor], cfg: PPOConfig
) -> torch.Tensor:
    """One gradient step of the value loss on the value head alone (the features are computed
    without gradient, so the policy is unchanged); returns the value loss."""
    with torch.no_grad():
        features = policy({"image": mb["image"], "text": mb["text"]}, heads=("features",))["features"]
    v_loss = 0.5 * ((policy.value_head(features).squeeze(-1) - mb["returns"]) ** 2).mean()
    optimizer.zero_grad(set_to_none=True)
    (cfg.vf_coef * v_loss).backward()
    torch.nn.utils.clip_grad_norm_(policy.value_head.parameters(), cfg.max_grad_norm)
    optimizer.step()
    return v_loss.detach()
