"""The config fields every trainer has, and their validation.

Each trainer's config dataclass extends :class:`TrainerConfig` (on-policy trainers through
:class:`~algorithms.onpolicy.OnPolicyConfig`); those with a radius curriculum mix in
:class:`CurriculumConfig`. A config is validated when it is built, before any data is made or
any folder written, and the error names what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import penguin_env
from agents import PolicyConfig
from algorithms.envs import TEST_START_LEVEL, VALIDATION_START_LEVEL, HeldOut, check_disjoint
from penguin_env.config import make_config

#: Units a trainer's budget can be counted in (see :attr:`TrainerConfig.budget`).
BUDGET_UNITS = ("env_steps", "gradient_steps")


def need(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition`` (config validation)."""
    if not condition:
        raise ValueError(message)


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
    """Fields every trainer has. Trainer configs extend it; budgets and rates are their own."""

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
    """Budget units (env steps, or gradient steps for BC) between evaluations on the validation
    levels (they choose ``best.pt``); 0: only the final evaluation."""
    eval_episodes: int = 200
    """Validation levels per periodic evaluation."""
    final_eval_episodes: int = 500
    """Test levels of the final evaluation (the run's reported figure)."""
    validation_start_level: int = VALIDATION_START_LEVEL
    """First validation level id: evaluations during training and ``best.pt`` play these."""
    test_start_level: int = TEST_START_LEVEL
    """First test level id: the final evaluation plays these; nothing is tuned on them."""
    eval_paraphrases: str = "test"
    """Instruction phrasings at evaluation (``"test"``: never seen in training)."""
    final_weights: str = "last"
    """Weights that the final evaluation and ``final.pt`` hold: ``"last"`` (the last update's) or
    ``"best"`` (``best.pt``'s, chosen on validation levels, which never overlap the test levels;
    the last update's when no validation evaluation ran). ``last.pt`` keeps the last update's."""
    ema_decay: float = 0.0
    """Evaluate an exponential moving average of the trained weights (Polyak averaging),
    updated after every iteration as ``average <- decay * average + (1 - decay) * weights``: the
    evaluations, ``best.pt`` and ``final.pt`` hold the average, ``last.pt`` the trained weights
    (and the average, to resume). Averaging smooths the iteration-to-iteration noise that flips
    greedy choices; ``1 / (1 - decay)`` iterations is its horizon. 0: off."""
    log_every: int = 0
    """Budget units between TensorBoard dumps (0: after every iteration)."""
    time_limit: float = 0.0
    """Stop training after this many minutes of wall time (0: no limit), then evaluate."""
    checkpoint_every: int = 0
    """Budget units between resume checkpoints (0: only by wall time, at the end and on Ctrl-C)."""
    checkpoint_minutes: float = 5.0
    """Also write the resume checkpoint once this many minutes have passed since the last one,
    so a crash loses at most that much work on any machine (0: never by wall time)."""
    seed: int = 0
    """Seed of everything (levels, minibatches, initial weights, sampling)."""
    device: str = "auto"
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda[:N]"``."""
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

    @property
    def budget(self) -> tuple[int, str]:
        """``(total, unit)``: how long training runs, in one of :data:`BUDGET_UNITS`. Evaluation,
        checkpoint and log cadences and the progress bar count in the same unit."""
        return int(self.total_env_steps), "env_steps"  # type: ignore[attr-defined]

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field and what is allowed."""
        check_env(self.env_id, self.env_kwargs)
        splits = ("train", "test", "all")
        need(self.paraphrases in splits, f"paraphrases must be one of {splits}, got {self.paraphrases!r}")
        need(
            self.eval_paraphrases in splits,
            f"eval_paraphrases must be one of {splits}, got {self.eval_paraphrases!r}",
        )
        for name in ("num_levels", "start_level", "eval_every", "checkpoint_every", "log_every", "threads", "seed",
                     "validation_start_level", "test_start_level"):
            need(int(getattr(self, name)) >= 0, f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("eval_episodes", "final_eval_episodes"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        weights = ("last", "best")
        need(self.final_weights in weights, f"final_weights must be one of {weights}, got {self.final_weights!r}")
        need(0.0 <= self.ema_decay < 1.0, f"ema_decay must be in [0, 1) (0: off), got {self.ema_decay!r}")
        need(self.time_limit >= 0, f"time_limit must be >= 0 minutes (0 = none), got {self.time_limit!r}")
        need(
            self.checkpoint_minutes >= 0,
            f"checkpoint_minutes must be >= 0 (0 = never by wall time), got {self.checkpoint_minutes!r}",
        )
        need(
            self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda"),
            f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}",
        )
        need(not self.resume or self.run_name is not None, "resume=True needs run_name: the run directory to continue")
        if self.init_from is not None and not Path(self.init_from).is_file():
            raise FileNotFoundError(f"init_from: no checkpoint at {self.init_from}")
        validation, test = self.validation_levels(self.eval_episodes), self.test_levels(self.final_eval_episodes)
        check_disjoint(self.train_env_kwargs(), validation, "the validation levels")
        check_disjoint(self.train_env_kwargs(), test, "the test levels")
        check_disjoint(validation, test, "the test levels")

    def train_env_kwargs(self) -> dict[str, Any]:
        """Env keyword arguments of the training levels."""
        return {
            **self.env_kwargs,
            "num_levels": self.num_levels,
            "start_level": self.start_level,
            "paraphrases": self.paraphrases,
        }

    def validation_levels(self, num_episodes: int) -> dict[str, Any]:
        """Env keyword arguments of ``num_episodes`` validation levels (evaluation phrasings)."""
        return HeldOut(self.validation_start_level, num_episodes, self.eval_paraphrases).env_kwargs(self.env_kwargs)

    def test_levels(self, num_episodes: int) -> dict[str, Any]:
        """Env keyword arguments of ``num_episodes`` test levels (evaluation phrasings)."""
        return HeldOut(self.test_start_level, num_episodes, self.eval_paraphrases).env_kwargs(self.env_kwargs)


@dataclass
class CurriculumConfig:
    """The radius curriculum's fields, for trainers that play ``Penguin-Bare-v0`` with one
    (mixed into their config; see :class:`algorithms.curriculum.RadiusCurriculum`)."""

    curriculum: bool = False
    """``Penguin-Bare-v0`` only: start with gold within ``curriculum_start`` cells and widen the
    radius by one whenever the training success rate passes ``curriculum_threshold``, up to the
    env's own ``radius`` (anywhere if unset)."""
    curriculum_start: int = 1
    """First curriculum radius."""
    curriculum_threshold: float = 0.8
    """Training success rate (last ``curriculum_window`` episodes) that widens the radius."""
    curriculum_window: int = 256
    """Episodes the curriculum's success rate is measured over."""

    def validate_curriculum(self, env_id: str) -> None:
        """Raise ``ValueError`` for a bad curriculum field, or a curriculum on an env without a radius."""
        for name in ("curriculum_start", "curriculum_window"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(
            0.0 <= self.curriculum_threshold <= 1.0,
            f"curriculum_threshold must be in [0, 1], got {self.curriculum_threshold!r}",
        )
        need(
            not self.curriculum or env_id == "Penguin-Bare-v0",
            f"curriculum grows Penguin-Bare-v0's radius; {env_id} has none (set curriculum=False)",
        )
