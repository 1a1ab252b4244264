"""The run around every trainer's loop, written once.

A trainer builds a :class:`TrainingRun` (torch settings, seeds, run directory, policy), puts
what it carries between iterations in a :class:`~algorithms.trainer_state.TrainerState`, and
loops::

    run = TrainingRun(cfg, "ppo")
    state = PPOState(...)
    for iteration in run.iterations(state, callback):
        ...                                  # collect, targets, update
        run.count(env_steps=n, gradient_steps=k)
        run.log({...})
    return run.finish()

Between two iterations :meth:`TrainingRun.iterations` does what surrounds every algorithm: the
radius curriculum's step, TensorBoard dumps, evaluations on the validation levels (greedy and
sampled, with ``best.pt``), resume checkpoints (by budget units and by wall time), the progress bar, the
user's callback, Ctrl-C and SIGTERM (save, then stop) and the time limit. :meth:`finish` writes
the last checkpoint, evaluates on the test levels and writes ``final.pt``.

A resume checkpoint is ``last.pt``: the policy, plus a ``resume`` entry of tensors and plain
values (counters, every RNG, the trainer state, how many ``eval.csv`` rows it has seen), so it
loads with ``torch.load(weights_only=True)``; ``resume=True`` continues bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import agents
from agents import MultimodalPolicy, PolicyConfig
from algorithms.cadence import Every, EveryMinutes
from algorithms.config import TrainerConfig
from algorithms.curriculum import RadiusCurriculum
from algorithms.device import configure_torch, select_device
from algorithms.envs import make_vec_env
from algorithms.evaluation import EvalResult, evaluate
from algorithms.interrupt import GracefulInterrupt
from algorithms.logger import Logger
from algorithms.optim import move_towards
from algorithms.progress import Progress
from algorithms.run_dir import RunDir
from algorithms.seeding import curriculum_seed, rng_state, seed_everything, set_rng_state
from algorithms.trainer_state import TrainerState, to_checkpoint_values

#: ``callback(iteration)`` after every iteration of a trainer's loop (iterations done so far).
Callback = Callable[[int], None]

#: Version of the ``resume`` entry's layout; older checkpoints are refused with what to do.
RESUME_VERSION = 2

#: Games an evaluation plays at once (each level is still played once, whatever this is).
EVAL_GAMES = 128


@dataclass
class Counters:
    """How far a run has come (saved in resume checkpoints)."""

    iteration: int = 0
    """Iterations of the trainer's loop done."""
    env_steps: int = 0
    """Env steps played in training (BC: labelled steps generated)."""
    gradient_steps: int = 0
    """Optimizer steps taken."""


@dataclass
class TrainResult:
    """What every trainer's ``train`` returns."""

    algo: str
    policy: MultimodalPolicy
    """The network ``final.pt`` holds."""
    run_dir: Path
    iterations: int
    """Iterations of the trainer's loop, counting those before a resume."""
    gradient_steps: int
    """Optimizer steps, counting those before a resume."""
    env_steps: int
    """Env steps played in training (BC: labelled steps generated)."""
    final_eval: EvalResult | None
    """Greedy evaluation on the test levels at the end (None if interrupted): the headline figure."""
    final_eval_sampled: EvalResult | None
    """The same levels with sampled actions."""
    curve: list[dict[str, float]]
    """One row per evaluation (the rows of ``eval.csv``): on validation levels during training,
    the last one on the test levels (``test_levels`` 1)."""
    wall_time: float
    """Seconds spent in this call."""
    interrupted: bool
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    """Every logged scalar as ``(budget count, value)`` pairs."""
    stop_signal: int | None = None
    """The signal that interrupted the run (``signal.SIGINT``: Ctrl-C, ``signal.SIGTERM``)."""

    def summary(self) -> str:
        """One line: greedy and sampled success on the test levels, SPL, return."""
        if self.final_eval is None:
            return f"{self.algo}: interrupted after {self.iterations} iterations"
        g, s = self.final_eval, self.final_eval_sampled
        sampled = f", sampled {s.success_rate:.1%} (SPL {s.spl:.3f})" if s is not None else ""
        return (
            f"{self.algo}: test-level success {g.success_rate:.1%} greedy (SPL {g.spl:.3f}, "
            f"return {g.mean_return:.2f}, length {g.mean_length:.1f}){sampled}, "
            f"{g.num_episodes} levels, {self.env_steps} env steps, {self.wall_time / 60:.1f} min"
        )


class OldCheckpointError(ValueError):
    """A resume checkpoint written by an older version of the trainers."""


class TrainingRun:
    """The run around a training loop.

    Builds, in this order and only after the config is valid: torch settings, seeds, the run
    directory (refusing to overwrite a finished run unless resuming), the policy (fresh, or
    warm-started from ``init_from``) on its device.

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

        self.total, self.unit = cfg.budget
        self.counters = Counters()
        self.curve: list[dict[str, float]] = []
        self.best_success = -1.0
        #: Set when Ctrl-C (or SIGTERM) ended the loop: the run can be resumed.
        self.interrupted = False
        self.stop_signal: int | None = None
        #: Extra ``eval.csv`` columns, evaluated at each evaluation (e.g. BC's data size).
        self.eval_columns: Callable[[], dict[str, float]] | None = None
        #: Called before every evaluation and checkpoint, for a trainer whose weights live
        #: elsewhere until copied into :attr:`policy` (the stable-baselines3 baselines).
        self.sync_policy: Callable[[], None] | None = None
        #: The exponential moving average of the weights that evaluations and ``best.pt`` use
        #: (``ema_decay > 0``), else None.
        self.average: MultimodalPolicy | None = None
        self.state: TrainerState | None = None
        self.logger: Logger | None = None
        self._time_before = 0.0  # wall time of the run before a resume
        self._started = False
        self._timings: dict[str, float] = {}
        self._shown: dict[str, Any] = {}

    # -- the loop -------------------------------------------------------------------------------
    def count(self, env_steps: int = 0, gradient_steps: int = 0) -> None:
        """Add the env steps played and gradient steps taken in this iteration."""
        self.counters.env_steps += int(env_steps)
        self.counters.gradient_steps += int(gradient_steps)

    @property
    def done(self) -> int:
        """Budget units done (env steps, or gradient steps for a budget in those)."""
        return getattr(self.counters, self.unit)

    def start(self, state: TrainerState, **describe: Any) -> bool:
        """Take ``state`` as the trainer's state, load the last checkpoint into the policy and it
        when resuming, and write ``config.json`` (with ``describe`` as extra sections). Returns
        whether the run was resumed. :meth:`iterations` calls it if the trainer has not."""
        self.state = state
        if self.cfg.ema_decay > 0:
            self.average = copy.deepcopy(self.policy).requires_grad_(False).eval()
        resumed = False
        if self.cfg.resume:
            self._restore(state)
            resumed = True
        self.logger = Logger(
            self.run.path if self.cfg.tensorboard else None, purge_step=self.done + 1 if resumed else None
        )
        self.run.write_config(self.cfg, policy=self.policy.config, env_id=self.cfg.env_id, **describe)
        self._started = True
        return resumed

    def iterations(
        self,
        state: TrainerState,
        callback: Callback | None = None,
        *,
        curriculum: RadiusCurriculum | None = None,
        restart: Callable[[dict[str, Any], int], None] | None = None,
    ) -> Iterator[int]:
        """Yield the index of each iteration until the budget is spent, the time limit passes or
        Ctrl-C arrives; between two iterations do everything that surrounds the algorithm.

        Args:
            state: the trainer's state (saved in every resume checkpoint).
            callback: ``callback(iterations_done)`` after every iteration.
            curriculum: widened after an iteration when training success allows; then
                ``restart(env_kwargs, seed)`` starts the training games again with the new
                radius.
        """
        with self.running(state, callback, curriculum=curriculum, restart=restart):
            while self.done < self.total:
                yield self.counters.iteration
                if self.end_iteration():
                    break

    @contextlib.contextmanager
    def running(
        self,
        state: TrainerState,
        callback: Callback | None = None,
        *,
        curriculum: RadiusCurriculum | None = None,
        restart: Callable[[dict[str, Any], int], None] | None = None,
    ) -> Iterator[TrainingRun]:
        """The loop's surroundings for a trainer whose loop is not a Python ``for`` (the
        stable-baselines3 baselines call :meth:`end_iteration` from their callback)."""
        if not self._started:
            self.start(state)
        self._callback, self._curriculum, self._restart = callback, curriculum, restart
        done = self.done
        self._eval_due, self._checkpoint_due = Every(self.cfg.eval_every, done), Every(self.cfg.checkpoint_every, done)
        self._log_due = Every(self.cfg.log_every, done)
        self._checkpoint_clock = EveryMinutes(self.cfg.checkpoint_minutes)
        self._tick, self._tick_env_steps, self._shown_done = time.perf_counter(), self.counters.env_steps, done
        self._progress = Progress(self.total, initial=done, enabled=self.cfg.progress, desc=f"{self.algo} {self.cfg.env_id}")
        try:
            with GracefulInterrupt() as self._stop:
                yield self
        finally:
            self._progress.close()

    def end_iteration(self) -> bool:
        """Count the iteration and do what is due after it; True when the loop must end (Ctrl-C,
        SIGTERM or the time limit)."""
        self.counters.iteration += 1
        self._update_average()
        curriculum = self._curriculum
        if curriculum is not None and curriculum.advance():
            assert self._restart is not None, "a curriculum needs restart= to play its new radius"
            self._restart(
                curriculum.env_kwargs(self.cfg.train_env_kwargs()),
                curriculum_seed(self.cfg.seed, self.counters.iteration),
            )
            self._progress.write(f"curriculum: radius {curriculum.radius} at {self.counters.env_steps} env steps")
        if curriculum is not None and curriculum.radius is not None:
            self.log({"curriculum/radius": curriculum.radius})
        if self.cfg.log_every == 0 or self._log_due.due(self.done):
            self._dump()
        if self._eval_due.due(self.done) and self.done < self.total:
            self.evaluate(self.cfg.eval_episodes)
            self._dump()
        if self._checkpoint_due.due(self.done) or self._checkpoint_clock.due():
            self.save_resume_checkpoint()
        self._progress.update(self.done - self._shown_done, **self._shown)
        self._shown_done = self.done
        if self._callback is not None:
            self._callback(self.counters.iteration)
        if self._stop.requested:
            self.interrupted, self.stop_signal = True, self._stop.signal
            return True
        return self.out_of_time()

    @property
    def evaluated_policy(self) -> MultimodalPolicy:
        """The network evaluations play and ``best.pt`` and ``final.pt`` hold: the weights'
        moving average with ``ema_decay``, else the trained policy."""
        return self.average if self.average is not None else self.policy

    def _update_average(self) -> None:
        if self.average is not None:
            move_towards(self.average, self.policy, 1.0 - self.cfg.ema_decay)

    # -- logging --------------------------------------------------------------------------------
    def log(self, scalars: dict[str, Any]) -> None:
        """Record scalars (floats or 0-d tensors); their means are written at the next dump."""
        assert self.logger is not None, "call run.start() or iterate run.iterations() first"
        self.logger.record_dict(scalars)
        for key, short in (("rollout/success_rate", "success"), ("train/loss", "loss")):
            if key in scalars and not hasattr(scalars[key], "device"):
                self._shown[short] = float(scalars[key])

    def show(self, **metrics: Any) -> None:
        """Values to show on the progress bar (None values are skipped)."""
        self._shown.update({k: v for k, v in metrics.items() if v is not None})

    @contextlib.contextmanager
    def timer(self, name: str) -> Iterator[None]:
        """Add the seconds spent in the block to ``time/<name>_s`` (summed between dumps)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._timings[name] = self._timings.get(name, 0.0) + time.perf_counter() - start

    def _dump(self) -> None:
        assert self.logger is not None
        now = time.perf_counter()
        c = self.counters
        self.logger.record_dict({
            "time/fps": (c.env_steps - self._tick_env_steps) / max(now - self._tick, 1e-9),
            "time/total_timesteps": c.env_steps,
            "time/iterations": c.iteration,
            "train/n_updates": c.gradient_steps,
            **{f"time/{k}_s": v for k, v in self._timings.items()},
        })
        self.logger.dump(self.done)
        self._timings.clear()
        self._tick, self._tick_env_steps = now, c.env_steps

    # -- time -----------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Seconds since this run (this call) started."""
        return time.perf_counter() - self.wall_start

    def out_of_time(self) -> bool:
        """True once ``time_limit`` minutes have passed."""
        return self.cfg.time_limit > 0 and self.elapsed() >= 60 * self.cfg.time_limit

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, num_episodes: int, test: bool = False) -> tuple[EvalResult, EvalResult]:
        """Greedy and sampled evaluation on ``num_episodes`` validation levels (``test``: test
        levels, the final evaluation); logs it and adds an ``eval.csv`` row. A validation
        evaluation writes ``best.pt`` when greedy success improves. Returns ``(greedy, sampled)``."""
        assert self.logger is not None
        if self.sync_policy is not None:
            self.sync_policy()
        kwargs = self.cfg.test_levels(num_episodes) if test else self.cfg.validation_levels(num_episodes)
        # Many games at once: the network's cost per game falls with the batch.
        games = min(num_episodes, EVAL_GAMES)
        greedy = evaluate(self.evaluated_policy, self.cfg.env_id, kwargs, num_episodes, seed=self.cfg.seed, num_envs=games)
        sampled = evaluate(
            self.evaluated_policy, self.cfg.env_id, kwargs, num_episodes, seed=self.cfg.seed, deterministic=False, num_envs=games
        )
        prefix = "test" if test else "eval"
        self.logger.record_dict(greedy.scalars(prefix))
        self.logger.record_dict(sampled.scalars(f"{prefix}_sampled"))
        row = {
            "step": self.done,
            "env_steps": self.counters.env_steps,
            **(self.eval_columns() if self.eval_columns is not None else {}),
            "success_rate": greedy.success_rate,
            "spl": greedy.spl,
            "mean_reward": greedy.mean_return,
            "mean_ep_length": greedy.mean_length,
            "sampled_success_rate": sampled.success_rate,
            "sampled_spl": sampled.spl,
            "wall_time": self._time_before + self.elapsed(),
            "test_levels": float(test),
        }
        self.curve.append({k: float(v) for k, v in row.items()})
        self.run.write_eval(self.curve)
        if not test:
            self.show(eval=greedy.success_rate)
            if greedy.success_rate > self.best_success:
                self.best_success = greedy.success_rate
                self.save(self.run.checkpoints / "best.pt")
        return greedy, sampled

    # -- checkpoints ----------------------------------------------------------------------------
    def save(self, path: Path, resume: dict[str, Any] | None = None) -> None:
        """Atomic checkpoint that any trainer can start from: of the trained policy with a resume
        entry, else of :attr:`evaluated_policy`."""
        if self.sync_policy is not None:
            self.sync_policy()
        info = {
            "env_id": self.cfg.env_id,
            "env_kwargs": self.cfg.train_env_kwargs(),
            "config": to_checkpoint_values(dataclasses.asdict(self.cfg)),
            "env_steps": self.counters.env_steps,
        }
        network = self.policy if resume is not None else self.evaluated_policy
        agents.save(network, path, trainer=self.algo, extra=info, resume=resume)

    def save_resume_checkpoint(self) -> None:
        """Write ``last.pt``: the policy and everything needed to continue bit for bit."""
        assert self.state is not None
        resume = {
            "version": RESUME_VERSION,
            "counters": dataclasses.asdict(self.counters),
            "rng": rng_state(self.rng),
            "trainer": self.state.state_dict(),
            "eval_rows": len(self.curve),
            "best_success": self.best_success,
            "wall_time": self._time_before + self.elapsed(),
            "average": None if self.average is None else self.average.state_dict(),
        }
        self.save(self.run.last_checkpoint, to_checkpoint_values(resume))
        self._checkpoint_clock.reset()

    def _restore(self, state: TrainerState) -> None:
        path = self.run.last_checkpoint
        saved = agents.load_into(self.policy, path).get("resume")
        if not isinstance(saved, dict) or saved.get("version") != RESUME_VERSION:
            raise OldCheckpointError(
                f"{path} was written by an older version of the trainers (its resume state is not "
                f"version {RESUME_VERSION}) and cannot be resumed; its weights still load: start a new "
                f"run from them with init_from={str(path)!r} (--init-from {path})"
            )
        state.load_state_dict(saved["trainer"])
        self.counters = Counters(**{k: int(v) for k, v in saved["counters"].items()})
        set_rng_state(saved["rng"], self.rng)
        # Rows an interrupted run wrote after this checkpoint are dropped: the resumed run writes
        # them again.
        self.curve = self.run.read_eval()[: int(saved["eval_rows"])]
        self.run.write_eval(self.curve)
        self.best_success = float(saved["best_success"])
        if self.average is not None:
            if saved.get("average") is None:
                raise ValueError(f"{path} holds no weight average; resume it with ema_decay=0, as it was trained")
            self.average.load_state_dict(saved["average"])
        self._time_before = float(saved["wall_time"])

    # -- the end --------------------------------------------------------------------------------
    def finish(self) -> TrainResult:
        """End of every trainer: the resume checkpoint, then (unless interrupted) the final
        evaluation on the test levels and ``final.pt`` (of ``best.pt``'s weights with
        ``final_weights="best"``); returns the :class:`TrainResult`."""
        assert self.logger is not None
        self.save_resume_checkpoint()
        final = None
        if not self.interrupted:
            best = self.run.checkpoints / "best.pt"
            if self.cfg.final_weights == "best" and best.exists():
                agents.load_into(self.policy, best)
                self.sync_policy = None  # the loaded weights are the ones to evaluate and save
                self.average = None
            final = self.evaluate(self.cfg.final_eval_episodes, test=True)
            self._dump()
            self.save(self.run.checkpoints / "final.pt")
        self.logger.close()
        return TrainResult(
            algo=self.algo,
            policy=self.evaluated_policy,
            run_dir=self.run.path,
            iterations=self.counters.iteration,
            gradient_steps=self.counters.gradient_steps,
            env_steps=self.counters.env_steps,
            final_eval=final[0] if final else None,
            final_eval_sampled=final[1] if final else None,
            curve=self.curve,
            wall_time=self.elapsed(),
            interrupted=self.interrupted,
            history=dict(self.logger.history),
            stop_signal=self.stop_signal,
        )
