"""What every trainer shares: the config fields, validation, the result, and the run around the loop.

Each trainer (``bc``, ``ppo``, ``grpo``, ``dqn``) is a module with a config dataclass that
extends :class:`TrainerConfig` and a ``train(config, callback=None) -> TrainResult`` function.
:class:`TrainingRun` does the work that surrounds every training loop, so a trainer's module
shows only its algorithm: torch threads and denormals, seeding, the run directory, the policy
(fresh or warm-started from any checkpoint), TensorBoard, held-out evaluation (greedy and
sampled), atomic checkpoints and resume.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import agents
import penguin_env
from agents import MultimodalPolicy, PolicyConfig
from algorithms.device import select_device
from algorithms.envs import HELDOUT_START_LEVEL, HeldOut, check_disjoint, make_vec_env
from algorithms.evaluation import EvalResult, evaluate
from algorithms.interrupt import GracefulInterrupt
from algorithms.logger import Logger
from algorithms.run_dir import RunDir
from algorithms.seeding import rng_state, seed_everything, set_rng_state
from penguin_env.config import make_config

#: ``callback(step)`` after every trainer step (gradient step for BC, update for RL).
Callback = Callable[[int], None]


def available_cores() -> int:
    """CPU cores this process may run on (``os.sched_getaffinity`` where the OS has it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def configure_torch(threads: int = 0) -> int:
    """Set torch's CPU threads (0: every core the process may use, never more) and flush
    denormal floats to zero; returns the thread count.

    Denormals appear in Adam's moment estimates when gradients are tiny and make every step
    slower on x86 CPUs; flushing them changes no result that matters.
    """
    cores = available_cores()
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = all {cores} available cores), got {threads}")
    n = min(threads, cores) if threads > 0 else cores
    torch.set_num_threads(n)
    torch.set_flush_denormal(True)
    return n


def make_adam(params: Any, lr: float, eps: float = 1e-5, weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam over ``params``, with the fused kernel where this torch has one for their device.

    The fused kernel updates every parameter in one pass instead of a few small kernels per
    tensor: about half the optimizer's time for a network this small, the same arithmetic.
    Torch before 2.4 has no CPU kernel and gets the plain loop.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, eps=eps, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, eps=eps, weight_decay=weight_decay)


def check_env(env_id: str, env_kwargs: dict[str, Any]) -> None:
    """Raise a clear error for an unknown env id or bad env keyword arguments."""
    if env_id not in penguin_env.ENV_IDS:
        raise ValueError(f"unknown env id {env_id!r}; choose from {list(penguin_env.ENV_IDS)}")
    if not isinstance(env_kwargs, dict):
        raise TypeError(f"env_kwargs must be a dict, got {type(env_kwargs).__name__}")
    reserved = sorted({"num_levels", "start_level", "paraphrases"} & set(env_kwargs))
    if reserved:
        raise ValueError(
            f"set {reserved} through the config's own fields (num_levels, start_level, "
            "paraphrases, eval_paraphrases), not env_kwargs"
        )
    make_config(env_id, dict(env_kwargs))


@dataclass
class TrainerConfig:
    """Fields every trainer has. Trainer configs extend it; budgets and rates are their own.

    Every config is validated when it is built (:meth:`validate`), before any data is made or
    any folder written; the error names what is allowed.
    """

    env_id: str = "Penguin-Bare-v0"
    """Registered Penguin env id."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra env keyword arguments (``size``, ``image_size``, ``radius``, ...) for training and evaluation."""
    num_levels: int = 100_000
    """Training plays levels ``start_level .. start_level + num_levels - 1``."""
    start_level: int = 0
    """First training level id."""
    paraphrases: str = "train"
    """Instruction phrasings seen in training (``"train"``, ``"test"`` or ``"all"``)."""
    eval_every: int = 0
    """Trainer steps between held-out evaluations, in the unit of the trainer's budget
    (gradient steps for BC, env steps for PPO, GRPO and DQN); 0: only at the end."""
    eval_episodes: int = 200
    """Held-out levels per periodic evaluation."""
    final_eval_episodes: int = 500
    """Held-out levels of the final evaluation."""
    heldout_start_level: int = HELDOUT_START_LEVEL
    """First held-out level id (beyond every training level)."""
    eval_paraphrases: str = "test"
    """Instruction phrasings at evaluation (``"test"``: never seen in training)."""
    time_limit: float = 0.0
    """Stop training after this many minutes of wall time (0: no limit), then evaluate."""
    checkpoint_every: int = 0
    """Trainer steps between resume checkpoints (0: only at the end and on Ctrl-C)."""
    seed: int = 0
    """Seed of everything (levels, minibatches, initial weights, sampling)."""
    device: str = "auto"
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``."""
    threads: int = 0
    """Torch CPU threads (0: every core this process may use)."""
    runs_dir: str = "runs"
    """Parent directory of run directories."""
    run_name: str | None = None
    """Run directory name; None makes ``<algo>-<env>-<time>``."""
    resume: bool = False
    """Continue the run in ``runs_dir/run_name`` from its last checkpoint."""
    init_from: str | None = None
    """Start from this checkpoint's weights (any trainer's; its architecture is used)."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Write TensorBoard event files into the run directory."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Network architecture (ignored with ``init_from``: the checkpoint's is used)."""

    def __post_init__(self) -> None:
        if isinstance(self.policy, dict):
            self.policy = PolicyConfig.from_dict(self.policy)
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field and what is allowed."""
        check_env(self.env_id, self.env_kwargs)
        splits = ("train", "test", "all")
        need(
            self.paraphrases in splits,
            f"paraphrases must be one of {splits}, got {self.paraphrases!r}",
        )
        need(
            self.eval_paraphrases in splits,
            f"eval_paraphrases must be one of {splits}, got {self.eval_paraphrases!r}",
        )
        for name in (
            "num_levels",
            "start_level",
            "eval_every",
            "checkpoint_every",
            "threads",
            "seed",
        ):
            need(int(getattr(self, name)) >= 0, f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("eval_episodes", "final_eval_episodes"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(
            self.time_limit >= 0,
            f"time_limit must be >= 0 minutes (0 = none), got {self.time_limit!r}",
        )
        need(
            self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda"),
            f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}",
        )
        need(
            not self.resume or self.run_name is not None,
            "resume=True needs run_name: the run directory to continue",
        )
        if self.init_from is not None and not Path(self.init_from).is_file():
            raise FileNotFoundError(f"init_from: no checkpoint at {self.init_from}")
        check_disjoint(
            self.train_env_kwargs(), self.heldout(max(self.eval_episodes, self.final_eval_episodes))
        )

    def train_env_kwargs(self) -> dict[str, Any]:
        """Env keyword arguments of the training levels."""
        return {
            **self.env_kwargs,
            "num_levels": self.num_levels,
            "start_level": self.start_level,
            "paraphrases": self.paraphrases,
        }

    def heldout(self, num_episodes: int) -> dict[str, Any]:
        """Env keyword arguments of ``num_episodes`` held-out levels."""
        return HeldOut(self.heldout_start_level, num_episodes, self.eval_paraphrases).env_kwargs(
            self.env_kwargs
        )


def need(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition`` (config validation)."""
    if not condition:
        raise ValueError(message)


@dataclass
class TrainResult:
    """What every trainer's ``train`` returns."""

    algo: str
    policy: MultimodalPolicy
    run_dir: Path
    steps: int
    """Trainer steps done (gradient steps for BC, updates for RL), counting before a resume."""
    env_steps: int
    """Env steps played in training (BC: steps of labelled data)."""
    final_eval: EvalResult | None
    """Greedy held-out evaluation at the end (None if interrupted): the headline figure."""
    final_eval_sampled: EvalResult | None
    """The same levels with sampled actions."""
    curve: list[dict[str, float]]
    """One row per held-out evaluation (the rows of ``eval.csv``)."""
    wall_time: float
    """Seconds spent in this call."""
    interrupted: bool
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    """Every logged scalar as ``(step, value)`` pairs."""

    def summary(self) -> str:
        """One line: greedy and sampled held-out success, SPL, return."""
        if self.final_eval is None:
            return f"{self.algo}: interrupted at step {self.steps}"
        g, s = self.final_eval, self.final_eval_sampled
        sampled = f", sampled {s.success_rate:.1%} (SPL {s.spl:.3f})" if s is not None else ""
        return (
            f"{self.algo}: held-out success {g.success_rate:.1%} greedy (SPL {g.spl:.3f}, "
            f"return {g.mean_return:.2f}, length {g.mean_length:.1f}){sampled}, "
            f"{g.num_episodes} levels, {self.env_steps} env steps, {self.wall_time / 60:.1f} min"
        )


class TrainingRun:
    """The run around a training loop.

    Builds, in this order and only after the config is valid: torch settings, seeds, the run
    directory (refusing to overwrite a finished run unless resuming), the policy (fresh, or
    warm-started from ``init_from``), the logger. Trainers call :meth:`evaluate` for held-out
    evaluations, :meth:`save` for checkpoints and :meth:`result` at the end.

    Args:
        cfg: the trainer's config.
        algo: trainer name (``"ppo"``, ...), written into checkpoints.
        acting_head: the head the trainer acts and is evaluated through (``"logits"``, or
            ``"q"`` for DQN); set after ``init_from``, so a PPO run started from a DQN
            checkpoint acts through its logits and a DQN run from a BC one through its Q head.
    """

    def __init__(self, cfg: TrainerConfig, algo: str, acting_head: str = "logits") -> None:
        self.cfg, self.algo = cfg, algo
        self.wall_start = time.perf_counter()
        self.threads = configure_torch(cfg.threads)
        self.device = select_device(cfg.device)
        self.rng = seed_everything(cfg.seed)
        self.run = RunDir(cfg.runs_dir, cfg.run_name, prefix=f"{algo}-{cfg.env_id}")
        if not cfg.resume and (self.run.last_checkpoint.exists() or self.run.eval_csv.exists()):
            raise FileExistsError(
                f"run directory {self.run.path} already holds a run; pass resume=True (--resume) "
                "to continue it, or choose another run_name"
            )
        if cfg.resume and not self.run.last_checkpoint.exists():
            raise FileNotFoundError(
                f"resume=True but {self.run.last_checkpoint} does not exist; start the run without resume"
            )
        probe = make_vec_env(cfg.env_id, 1, cfg.train_env_kwargs())
        self.observation_space = probe.single_observation_space
        self.action_space = probe.single_action_space
        probe.close()
        policy_config = cfg.policy
        self.init_checkpoint: dict[str, Any] | None = None
        if cfg.init_from is not None:
            self.init_checkpoint = agents.read(cfg.init_from)
            policy_config = PolicyConfig.from_dict(self.init_checkpoint["config"])
        self.policy = MultimodalPolicy(self.observation_space, self.action_space, policy_config)
        if cfg.init_from is not None:
            agents.load_into(self.policy, cfg.init_from)
        self.policy.acting_head = acting_head
        self.policy.to(self.device)
        self.logger = Logger(self.run.path if cfg.tensorboard else None)
        self.curve = [{k: float(v) for k, v in row.items()} for row in self.run.read_eval()]
        self.best_success = max((c["success_rate"] for c in self.curve), default=-1.0)
        self.last_success: float | None = self.curve[-1]["success_rate"] if self.curve else None
        # Wall time of the run before a resume, so eval.csv's wall-time column continues.
        self.time_before = self.curve[-1]["wall_time"] if cfg.resume and self.curve else 0.0
        #: Set when Ctrl-C (or SIGTERM) ended the loop: the run can be resumed.
        self.interrupted = False

    # -- time ---------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since this run (this call) started."""
        return time.perf_counter() - self.wall_start

    def out_of_time(self) -> bool:
        """True once ``time_limit`` minutes have passed."""
        return self.cfg.time_limit > 0 and self.elapsed() >= 60 * self.cfg.time_limit

    def loop_should_end(self, iteration: int, callback: Callback | None, stop: GracefulInterrupt) -> bool:
        """The tail of every trainer's iteration: run the user's ``callback(iteration)``, then say
        whether the loop ends here, on Ctrl-C (which sets :attr:`interrupted`: :meth:`finish`
        then saves the resume checkpoint only) or once ``time_limit`` minutes have passed."""
        if callback is not None:
            callback(iteration)
        if stop.requested:
            self.interrupted = True
            return True
        return self.out_of_time()

    # -- checkpoints ----------------------------------------------------------------------------
    def write_config(self, **more: Any) -> None:
        """``config.json`` with the resolved config and the policy actually built."""
        self.run.write_config(self.cfg, policy=self.policy.config, env_id=self.cfg.env_id, **more)

    def save(self, path: Path, resume: dict[str, Any] | None = None, **extra: Any) -> None:
        """Atomic checkpoint of the policy (+ resume state) that any trainer can start from."""
        info = {
            "env_id": self.cfg.env_id,
            "env_kwargs": self.cfg.train_env_kwargs(),
            "config": dataclasses.asdict(self.cfg),
            **extra,
        }
        agents.save(self.policy, path, trainer=self.algo, extra=info, resume=resume)

    def resume_state(self) -> dict[str, Any] | None:
        """The ``resume`` entry of the last checkpoint (weights loaded into the policy), or None."""
        if not self.cfg.resume:
            return None
        saved = agents.load_into(self.policy, self.run.last_checkpoint)["resume"]
        set_rng_state(saved["rng"], self.rng)
        return saved

    def rng_state(self) -> dict[str, Any]:
        return rng_state(self.rng)

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(
        self,
        step: int,
        num_episodes: int,
        resume: Callable[[], dict[str, Any]] | None = None,
        **row_extra: float,
    ) -> tuple[EvalResult, EvalResult]:
        """Greedy and sampled evaluation on held-out levels; logs, appends ``eval.csv``, and writes
        ``best.pt`` when greedy success improves. Returns ``(greedy, sampled)``."""
        kwargs = self.cfg.heldout(num_episodes)
        greedy = evaluate(self.policy, self.cfg.env_id, kwargs, num_episodes, seed=self.cfg.seed)
        sampled = evaluate(
            self.policy,
            self.cfg.env_id,
            kwargs,
            num_episodes,
            seed=self.cfg.seed,
            deterministic=False,
        )
        self.logger.record_dict(greedy.scalars("eval"))
        self.logger.record_dict(sampled.scalars("eval_sampled"))
        row = {
            "step": step,
            **row_extra,
            "success_rate": greedy.success_rate,
            "spl": greedy.spl,
            "mean_reward": greedy.mean_return,
            "mean_ep_length": greedy.mean_length,
            "sampled_success_rate": sampled.success_rate,
            "sampled_spl": sampled.spl,
            "wall_time": self.elapsed() + self.time_before,
        }
        self.run.append_eval(row)
        self.curve.append({k: float(v) for k, v in row.items()})
        self.last_success = greedy.success_rate
        if greedy.success_rate > self.best_success:
            self.best_success = greedy.success_rate
            self.save(self.run.checkpoints / "best.pt", resume() if resume else None)
        return greedy, sampled

    def finish(
        self,
        steps: int,
        env_steps: int,
        resume: Callable[[], dict[str, Any]],
        at: int,
        row_extra: dict[str, float] | None = None,
    ) -> TrainResult:
        """End of every trainer: the resume checkpoint, then (unless interrupted) the final
        held-out evaluation, logged at step ``at`` with ``row_extra`` in its ``eval.csv`` row,
        and ``final.pt``; returns the :class:`TrainResult`."""
        self.save(self.run.last_checkpoint, resume(), env_steps=env_steps)
        final = None
        if not self.interrupted:
            final = self.evaluate(at, self.cfg.final_eval_episodes, resume, **(row_extra or {}))
            self.logger.dump(at)
            self.save(self.run.checkpoints / "final.pt", resume(), env_steps=env_steps)
        return self.result(steps, env_steps, final, self.interrupted)

    def result(
        self,
        steps: int,
        env_steps: int,
        final: tuple[EvalResult, EvalResult] | None,
        interrupted: bool,
    ) -> TrainResult:
        self.logger.close()
        return TrainResult(
            algo=self.algo,
            policy=self.policy,
            run_dir=self.run.path,
            steps=steps,
            env_steps=env_steps,
            final_eval=final[0] if final else None,
            final_eval_sampled=final[1] if final else None,
            curve=self.curve,
            wall_time=self.elapsed(),
            interrupted=interrupted,
            history=dict(self.logger.history),
        )


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """``1 - Var[target - predicted] / Var[target]`` (NaN when the target is constant)."""
    var = float(np.var(target))
    return float("nan") if var == 0 else 1.0 - float(np.var(target - predicted)) / var
