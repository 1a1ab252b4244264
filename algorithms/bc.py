"""Behaviour cloning from the exact solver, with DAgger rounds.

The loop, top to bottom:

1. data: solver demonstrations (a trace dataset file, or generated here on the fly by running
   the solver with epsilon-random detours in the batched env), each step labelled with *every*
   optimal action of its state;
2. train: cross-entropy between the policy and the uniform distribution over the optimal
   actions (optionally label-smoothed and class-balanced);
3. DAgger: after each phase, roll out the current policy, label the states it visits with the
   solver's optimal actions, add them to the data, and train on;
4. all along: TensorBoard scalars, held-out evaluation, atomic checkpoints, resume after Ctrl-C.

Run it from the command line with ``python -m experiments.train_bc``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium.vector import AutoresetMode

import agents
from agents import MultimodalPolicy, PolicyConfig
from algorithms.augment import SymmetryAugment, symmetry_problem
from algorithms.device import select_device
from algorithms.envs import HELDOUT_START_LEVEL, HeldOut, check_disjoint, make_vec_env
from algorithms.evaluation import EvalResult, evaluate
from algorithms.interrupt import GracefulInterrupt
from algorithms.logger import EpisodeStats, Logger
from algorithms.progress import Progress
from algorithms.run_dir import RunDir
from algorithms.seeding import rng_state, seed_everything, set_rng_state
from fake_traces import solver
from penguin_env.core import Action

NUM_ACTIONS = 5


@dataclass
class BCConfig:
    """Behaviour cloning (+ DAgger) hyper-parameters."""

    env_id: str = "Penguin-Gold-v0"
    """Registered Penguin env id."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra env keyword arguments (``size``, ``image_size``, ``radius``, ...) for training and evaluation."""
    num_levels: int = 100_000
    """Training plays levels ``start_level .. start_level + num_levels - 1``."""
    start_level: int = 0
    """First training level id."""
    paraphrases: str = "train"
    """Instruction phrasings seen in training."""
    dataset: str | None = None
    """Path of a solver-trace dataset (``fake_traces.load``); None generates demonstrations here."""
    data_steps: int = 200_000
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
    """Adam learning rate."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over ``total_steps``."""
    weight_decay: float = 0.0
    """Adam weight decay (L2)."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    label_smoothing: float = 0.0
    """Mix this much of the uniform distribution into the targets."""
    augment: str = "off"
    """Symmetry augmentation (``algorithms.augment``): each sample turned by a random multiple
    of 90 degrees and mirrored half the time, labels and corner words mapped to match.
    ``"on"`` (an error if the env's frames are not symmetric), ``"auto"`` (on when they are:
    full view, no hint) or ``"off"``."""
    class_balance: bool = False
    """Weight samples by the inverse frequency of their target actions."""
    max_dataset_steps: int = 300_000
    """Keep at most this many labelled steps (the oldest go first); bounds memory (12 kB a step at 64x64)."""
    eval_every: int = 1_000
    """Gradient steps between held-out evaluations (0: only at the end)."""
    eval_episodes: int = 200
    """Held-out levels per periodic evaluation."""
    final_eval_episodes: int = 500
    """Held-out levels of the final evaluation."""
    heldout_start_level: int = HELDOUT_START_LEVEL
    """First held-out level id (beyond every training level)."""
    eval_paraphrases: str = "test"
    """Instruction phrasings at evaluation (``"test"``: never seen in training)."""
    eval_deterministic: bool = False
    """Greedy actions at evaluation instead of sampled ones. The targets spread probability over
    every optimal action, so the cloned policy is meant to be sampled; greedy actions break ties
    the same way every time, and a rare wrong one can then repeat in a cycle until the time limit."""
    log_every: int = 50
    """Gradient steps between TensorBoard dumps."""
    checkpoint_every: int = 1_000
    """Gradient steps between resume checkpoints (also written on Ctrl-C and at the end)."""
    seed: int = 0
    """Seed of everything (data, minibatches, initial weights, rollouts)."""
    device: str = "auto"
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``."""
    runs_dir: str = "runs"
    """Parent directory of run directories."""
    run_name: str | None = None
    """Run directory name; None makes ``bc-<env>-<time>``."""
    resume: bool = False
    """Continue the run in ``runs_dir/run_name`` from its last checkpoint."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Write TensorBoard event files into the run directory."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Network architecture."""

    def train_env_kwargs(self) -> dict[str, Any]:
        return {
            **self.env_kwargs,
            "num_levels": self.num_levels,
            "start_level": self.start_level,
            "paraphrases": self.paraphrases,
        }

    def heldout(self, num_episodes: int) -> dict[str, Any]:
        return HeldOut(self.heldout_start_level, num_episodes, self.eval_paraphrases).env_kwargs(
            self.env_kwargs
        )


@dataclass
class BCResult:
    """What :func:`train_bc` returns."""

    policy: MultimodalPolicy
    run_dir: Path
    steps: int
    """Gradient steps done (counting the steps before a resume)."""
    data_steps: int
    """Labelled steps in the training data at the end."""
    final_eval: EvalResult | None
    """Held-out evaluation at the end (None if the run was interrupted)."""
    curve: list[dict[str, float]]
    """One entry per held-out evaluation: step, data_steps, success_rate, spl, ..."""
    losses: list[tuple[int, float]]
    """``(step, train/loss)`` at each log dump."""
    wall_time: float
    """Seconds spent in this call."""
    interrupted: bool


class LabelledSteps:
    """Observations with the solver's optimal-action mask, kept as uint8/int arrays."""

    def __init__(self, image: np.ndarray, text: np.ndarray, mask: np.ndarray) -> None:
        keep = mask.any(axis=1)  # states with no optimal action (already won) teach nothing
        self.image, self.text, self.mask = image[keep], text[keep], mask[keep].astype(bool)

    def __len__(self) -> int:
        return len(self.mask)

    def extend(self, other: LabelledSteps, limit: int) -> None:
        """Append ``other``; drop the oldest steps beyond ``limit``."""
        self.image = np.concatenate([self.image, other.image])[-limit:]
        self.text = np.concatenate([self.text, other.text])[-limit:]
        self.mask = np.concatenate([self.mask, other.mask])[-limit:]

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, image=self.image, text=self.text, mask=self.mask)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> LabelledSteps:
        with np.load(path) as z:
            return cls(z["image"], z["text"], z["mask"])

    @classmethod
    def from_trace_file(cls, path: str | Path) -> LabelledSteps:
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
        return cls(np.asarray(ds.images[:]), np.asarray(ds.tokens[:]), mask)


def collect(
    env_id: str,
    env_kwargs: dict[str, Any],
    num_envs: int,
    num_steps: int,
    seed: int,
    epsilon: float,
    policy: MultimodalPolicy | None,
    stats: EpisodeStats | None = None,
) -> LabelledSteps:
    """Play ``num_steps`` steps and label every visited state with the solver's optimal actions.

    ``policy=None`` plays the solver itself (demonstrations); otherwise the policy acts greedily
    (DAgger). Either way a random move or turn replaces the chosen action with probability
    ``epsilon``.
    """
    rng = np.random.default_rng(seed)
    envs = make_vec_env(env_id, num_envs, env_kwargs, autoreset_mode=AutoresetMode.SAME_STEP)
    if stats is None:
        stats = EpisodeStats(num_envs, next_step_autoreset=False)
    obs, _ = envs.reset(seed=seed)
    images, texts, masks = [], [], []
    for _ in range(-(-num_steps // num_envs)):
        mask = solver.optimal_action_mask(envs.game.state)
        images.append(obs["image"])
        texts.append(obs["text"])
        masks.append(mask)
        if policy is None:
            actions = solver.expert_actions(envs.game.state, rng)
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
    cut = slice(0, num_steps)
    return LabelledSteps(
        np.concatenate(images)[cut], np.concatenate(texts)[cut], np.concatenate(masks)[cut]
    )


def bc_loss(
    logits: torch.Tensor,
    mask: torch.Tensor,
    label_smoothing: float = 0.0,
    class_weight: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy to the uniform distribution over each state's optimal actions.

    Returns the loss and diagnostics: accuracy (greedy action is optimal) and entropy.
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
    return loss, {"train/accuracy": float(accuracy), "train/entropy_loss": -float(entropy)}


def _class_weight(data: LabelledSteps, device: torch.device) -> torch.Tensor:
    share = (data.mask / data.mask.sum(axis=1, keepdims=True)).mean(axis=0)
    weight = 1.0 / (NUM_ACTIONS * np.maximum(share, 1e-3))
    return torch.as_tensor(weight, dtype=torch.float32, device=device)


def _augmenter(cfg: BCConfig) -> SymmetryAugment | None:
    if cfg.augment not in ("auto", "on", "off"):
        raise ValueError(f"augment must be 'auto', 'on' or 'off', got {cfg.augment!r}")
    if cfg.augment == "off":
        return None
    problem = symmetry_problem(cfg.env_id, cfg.env_kwargs)
    if problem is None:
        return SymmetryAugment()
    if cfg.augment == "on":
        raise ValueError(f"augment='on' needs symmetric frames, but {problem}; use augment='off'")
    return None


def _round_seed(seed: int, round_index: int) -> int:
    return seed * 1_000_003 + round_index * 7919 + 17


def train_bc(config: BCConfig, callback: Callable[[int], None] | None = None) -> BCResult:
    """Train a policy by behaviour cloning (+ DAgger) and evaluate it on held-out levels.

    ``callback(step)`` is called after every gradient step (for custom logging or stopping).

    Writes ``runs/<name>/`` (config.json, TensorBoard events, checkpoints/, eval.csv, and the
    DAgger rounds' labelled steps in data/).
    Ctrl-C saves a resume checkpoint and returns; ``resume=True`` continues from it, and a
    resumed run ends with the same weights as an uninterrupted one with the same seed.
    """
    wall_start = time.perf_counter()
    cfg = config
    augmenter = _augmenter(cfg)
    if cfg.resume and cfg.run_name is None:
        raise ValueError("resume=True needs run_name: the run directory to continue")
    train_kwargs = cfg.train_env_kwargs()
    check_disjoint(train_kwargs, cfg.heldout(max(cfg.eval_episodes, cfg.final_eval_episodes)))
    run = RunDir(cfg.runs_dir, cfg.run_name, prefix=f"bc-{cfg.env_id}")
    if not cfg.resume and (run.last_checkpoint.exists() or run.eval_csv.exists()):
        raise FileExistsError(
            f"run directory {run.path} already holds a run; pass resume=True (--resume) to continue it, "
            "or choose another run_name"
        )
    data_dir = run.path / "data"
    data_dir.mkdir(exist_ok=True)
    device = select_device(cfg.device)
    rng = seed_everything(cfg.seed)

    probe = make_vec_env(cfg.env_id, 1, train_kwargs)
    policy = MultimodalPolicy(
        probe.single_observation_space, probe.single_action_space, cfg.policy
    ).to(device)
    probe.close()
    optimizer = torch.optim.Adam(
        policy.parameters(), lr=cfg.learning_rate, eps=1e-5, weight_decay=cfg.weight_decay
    )
    phase_len = max(1, cfg.total_steps // (cfg.dagger_rounds + 1))

    step, rounds_done = 0, 0
    resume_path = run.last_checkpoint
    if cfg.resume and resume_path.exists():
        saved = agents.load_into(policy, resume_path)["resume"]
        optimizer.load_state_dict(saved["optimizer"])
        step, rounds_done = int(saved["step"]), int(saved["rounds_done"])
        set_rng_state(saved["rng"], rng)
    elif cfg.resume:
        raise FileNotFoundError(
            f"resume=True but {resume_path} does not exist; start the run without resume"
        )
    run.write_config(cfg, policy=cfg.policy, env_id=cfg.env_id)
    logger = Logger(run.path if cfg.tensorboard else None)

    # -- data: demonstrations (round 0) and the DAgger rounds done so far ----------------------
    def round_file(k: int) -> Path:
        return data_dir / f"round{k}.npz"

    # The solver's demonstrations are a pure function of the seed, so a resumed run generates
    # them again instead of keeping gigabytes of frames on disk; DAgger rounds depend on the
    # policy of their time and are saved.
    if cfg.dataset is not None:
        data = LabelledSteps.from_trace_file(cfg.dataset)
    else:
        data = collect(
            cfg.env_id,
            train_kwargs,
            cfg.num_envs,
            cfg.data_steps,
            _round_seed(cfg.seed, 0),
            cfg.expert_epsilon,
            None,
        )
    for k in range(1, rounds_done + 1):
        data.extend(LabelledSteps.load(round_file(k)), cfg.max_dataset_steps)
    class_weight = _class_weight(data, device) if cfg.class_balance else None

    def checkpoint(path: Path) -> None:
        resume = {
            "optimizer": optimizer.state_dict(),
            "step": step,
            "rounds_done": rounds_done,
            "rng": rng_state(rng),
        }
        extra = {
            "env_id": cfg.env_id,
            "env_kwargs": train_kwargs,
            "data_steps": len(data),
            "config": dataclasses.asdict(cfg),
        }
        agents.save(policy, path, trainer="bc", extra=extra, resume=resume)

    curve = [{k: float(v) for k, v in row.items() if k != "wall_time"} for row in run.read_eval()]
    last_success: float | None = curve[-1]["success_rate"] if curve else None
    best_success = max((c["success_rate"] for c in curve), default=-1.0)

    def held_out_eval(num_episodes: int) -> EvalResult:
        nonlocal last_success, best_success
        result = evaluate(
            policy,
            cfg.env_id,
            cfg.heldout(num_episodes),
            num_episodes,
            seed=cfg.seed,
            deterministic=cfg.eval_deterministic,
        )
        logger.record_dict(result.scalars())
        row = {
            "step": step,
            "data_steps": len(data),
            **result.scalars("eval"),
            "wall_time": time.perf_counter() - wall_start,
        }
        row = {k.replace("eval/", ""): v for k, v in row.items()}
        run.append_eval(row)
        curve.append({k: float(v) for k, v in row.items() if k != "wall_time"})
        last_success = result.success_rate
        if result.success_rate > best_success:
            best_success = result.success_rate
            checkpoint(run.checkpoints / "best.pt")
        return result

    progress = Progress(
        cfg.total_steps, initial=step, enabled=cfg.progress, desc=f"bc {cfg.env_id}"
    )
    interrupted = False
    tick, tick_step = time.perf_counter(), step
    policy.train()
    with GracefulInterrupt() as stop:
        while step < cfg.total_steps:
            # DAgger: at the start of each later phase, label what the current policy visits.
            if rounds_done < cfg.dagger_rounds and step >= (rounds_done + 1) * phase_len:
                rounds_done += 1
                stats = EpisodeStats(cfg.num_envs, next_step_autoreset=False)
                policy.eval()
                new = collect(
                    cfg.env_id,
                    train_kwargs,
                    cfg.num_envs,
                    cfg.dagger_steps,
                    _round_seed(cfg.seed, rounds_done),
                    cfg.dagger_epsilon,
                    policy,
                    stats,
                )
                policy.train()
                new.save(round_file(rounds_done))
                data.extend(new, cfg.max_dataset_steps)
                if cfg.class_balance:
                    class_weight = _class_weight(data, device)
                logger.record_dict(stats.scalars())
                progress.write(
                    f"DAgger round {rounds_done}: +{len(new)} labelled steps (now {len(data)}), rollout {stats.scalars()}"
                )

            idx = rng.integers(0, len(data), cfg.batch_size)
            batch = {
                "image": torch.from_numpy(data.image[idx]).to(device),
                "text": torch.from_numpy(data.text[idx]).to(device),
            }
            mask = torch.from_numpy(data.mask[idx]).to(device)
            if augmenter is not None:
                batch["image"], batch["text"], mask = augmenter(
                    batch["image"], batch["text"], mask, rng
                )
            if cfg.anneal_lr:
                optimizer.param_groups[0]["lr"] = cfg.learning_rate * (1 - step / cfg.total_steps)
            logits = policy(batch, heads=("logits",))["logits"]
            loss, diagnostics = bc_loss(logits, mask, cfg.label_smoothing, class_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), cfg.max_grad_norm)
            optimizer.step()
            step += 1

            logger.record("train/loss", loss.item())
            logger.record_dict(diagnostics)
            logger.record("train/grad_norm", float(grad_norm))
            if step % cfg.log_every == 0 or step == cfg.total_steps:
                now = time.perf_counter()
                logger.record(
                    "time/fps", (step - tick_step) * cfg.batch_size / max(now - tick, 1e-9)
                )
                logger.record("train/learning_rate", optimizer.param_groups[0]["lr"])
                logger.record("train/n_updates", step)
                logger.record("train/data_steps", len(data))
                logger.dump(step)
                tick, tick_step = now, step
            if cfg.eval_every > 0 and step % cfg.eval_every == 0 and step < cfg.total_steps:
                policy.eval()
                held_out_eval(cfg.eval_episodes)
                policy.train()
                logger.dump(step)
            if cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0:
                checkpoint(resume_path)
            progress.update(
                1, loss=loss.item(), acc=diagnostics["train/accuracy"], success=last_success
            )
            if callback is not None:
                callback(step)
            if stop.requested:
                interrupted = True
                break
    progress.close()

    checkpoint(resume_path)
    final = None
    if not interrupted:
        policy.eval()
        final = held_out_eval(cfg.final_eval_episodes)
        logger.dump(step)
        checkpoint(run.checkpoints / "final.pt")
    logger.close()
    losses = list(logger.history.get("train/loss", []))
    return BCResult(
        policy=policy,
        run_dir=run.path,
        steps=step,
        data_steps=len(data),
        final_eval=final,
        curve=curve,
        losses=losses,
        wall_time=time.perf_counter() - wall_start,
        interrupted=interrupted,
    )
