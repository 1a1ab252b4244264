"""stable-baselines3's PPO and DQN with our features extractor, on the trainer interface.

They are the sanity baselines that sit beside our trainers in a comparison (``sb3-ppo`` and
``sb3-dqn`` in :mod:`algorithms.registry`): the same env, the same network architecture, the same
held-out evaluation and run directory, but stable-baselines3's training loops.

With ``net_arch=[]`` the stable-baselines3 network maps one-to-one onto
:class:`agents.MultimodalPolicy`: its features extractor is our encoder
(:class:`agents.sb3.PenguinFeaturesExtractor`), PPO's ``action_net``/``value_net`` are our policy
and value heads, DQN's one-layer ``q_net`` is our Q head. So a run starts from our policy's
weights (fresh or ``init_from``), is evaluated by copying the weights back, and is saved as an
ordinary Penguin checkpoint that ``penguin eval`` and every trainer can load; the
stable-baselines3 model is saved beside it as ``sb3_model.zip``.

Differences that matter when reading a comparison:

- stable-baselines3's DQN is vanilla DQN (the target network both picks and values the next
  action), not Double DQN, and its replay buffer stores every frame twice (``obs`` and
  ``next_obs``); its replay ratio is ``gradient_steps * batch_size / (train_freq * num_envs)``
  samples per env step (``train_freq`` counts steps of the whole vector env).
- It steps the same native vector env through :class:`penguin_env.sb3.PenguinSB3VecEnv`
  (same-step autoreset; truncation bootstraps as in stable-baselines3).
- A run cannot be resumed (``resume=True`` is refused); it is short by design.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import torch

from agents import MultimodalPolicy
from agents.files import atomic_write
from agents.sb3 import PenguinFeaturesExtractor
from algorithms.config import TrainerConfig, need
from algorithms.driver import Callback, TrainingRun, TrainResult
from algorithms.trainer_state import TrainerState


@dataclass
class SB3Config(TrainerConfig):
    """Fields of both stable-baselines3 baselines (plus :class:`~algorithms.config.TrainerConfig`'s)."""

    total_env_steps: int = 1_000_000
    """Env steps of training (the budget); ``time_limit`` may stop it earlier."""
    num_envs: int = 16
    """Games stepped together."""
    learning_rate: float = 1e-3
    """Adam learning rate."""
    gamma: float = 0.95
    """Discount factor (our trainers' value: with sparse +1 rewards and 0.99 a wasted step
    barely changes a return, see the experiment log)."""
    eval_every: int = 100_000
    """Env steps between held-out evaluations (0: only at the end)."""
    log_every: int = 10_000
    """Env steps between dumps of our TensorBoard scalars (stable-baselines3 logs its own)."""

    def validate(self) -> None:
        super().validate()
        need(
            not self.resume,
            "stable-baselines3 baseline runs cannot be resumed; start a new run (another run_name)",
        )
        need(self.ema_decay == 0, "ema_decay is for our trainers; the stable-baselines3 baselines train "
             f"their own copy of the weights (set ema_decay=0, got {self.ema_decay!r})")
        for name in ("total_env_steps", "num_envs"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate!r}")
        need(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma!r}")


@dataclass
class SB3PPOConfig(SB3Config):
    """stable-baselines3 PPO; the defaults mirror :class:`algorithms.ppo.PPOConfig`'s."""

    num_envs: int = 64
    """Games stepped together."""
    n_steps: int = 64
    """Steps per game per rollout."""
    batch_size: int = 512
    """Minibatch size (our PPO: ``num_envs * num_steps / num_minibatches``)."""
    n_epochs: int = 4
    """Passes over each rollout."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_range: float = 0.2
    """Importance-ratio clipping range."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""

    def validate(self) -> None:
        super().validate()
        for name in ("n_steps", "batch_size", "n_epochs"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(
            self.num_envs * self.n_steps > 1,
            "num_envs * n_steps must be > 1 (stable-baselines3 normalises advantages over the batch)",
        )


@dataclass
class SB3DQNConfig(SB3Config):
    """stable-baselines3 DQN (vanilla: no double Q-learning)."""

    learning_rate: float = 5e-4
    """Adam learning rate."""
    buffer_size: int = 50_000
    """Replay transitions (each stores its frame twice: about 25 KB per transition at 64x64)."""
    learning_starts: int = 5_000
    """Env steps of random play before the first update."""
    batch_size: int = 128
    """Transitions per gradient step."""
    train_freq: int = 1
    """Vector-env steps (``num_envs`` env steps each) between updates."""
    gradient_steps: int = 2
    """Gradient steps per update."""
    target_update_interval: int = 10_000
    """Env steps between hard target-network copies."""
    exploration_fraction: float = 0.2
    """Fraction of the budget over which epsilon falls from ``exploration_initial_eps``."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start."""
    exploration_final_eps: float = 0.05
    """Epsilon after ``exploration_fraction`` of the budget."""
    max_grad_norm: float = 10.0
    """Gradient-norm clip."""

    def validate(self) -> None:
        super().validate()
        for name in ("buffer_size", "batch_size", "train_freq", "gradient_steps", "target_update_interval"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(self.learning_starts >= 0, f"learning_starts must be >= 0, got {self.learning_starts!r}")
        need(
            self.buffer_size >= self.batch_size,
            f"buffer_size ({self.buffer_size}) must hold at least one batch ({self.batch_size})",
        )
        for name in ("exploration_fraction", "exploration_initial_eps", "exploration_final_eps"):
            need(0.0 <= getattr(self, name) <= 1.0, f"{name} must be in [0, 1], got {getattr(self, name)!r}")

    @property
    def replay_ratio(self) -> float:
        """Samples trained per env step."""
        return self.gradient_steps * self.batch_size / (self.train_freq * self.num_envs)


# -- weights between stable-baselines3 and MultimodalPolicy ------------------------------------------
def _pairs(model: Any, policy: MultimodalPolicy) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
    """(stable-baselines3 module, our module) pairs holding the same weights."""
    from stable_baselines3 import DQN

    if isinstance(model, DQN):
        pairs = []
        for net in (model.q_net, model.q_net_target):
            pairs += [(net.features_extractor.encoder, policy.encoder), (net.q_net[0], policy.q_head)]
        return pairs
    sb3 = model.policy
    return [
        (sb3.features_extractor.encoder, policy.encoder),
        (sb3.action_net, policy.policy_head),
        (sb3.value_net, policy.value_head),
    ]


def copy_to_sb3(policy: MultimodalPolicy, model: Any) -> None:
    """Load our policy's encoder and heads into a stable-baselines3 PPO or DQN model (DQN: both the
    online and the target network)."""
    for theirs, ours in _pairs(model, policy):
        theirs.load_state_dict(ours.state_dict())


def copy_from_sb3(model: Any, policy: MultimodalPolicy) -> None:
    """Load a stable-baselines3 model's trained weights into our policy."""
    for theirs, ours in _pairs(model, policy)[:3]:  # DQN: the online network only
        ours.load_state_dict(theirs.state_dict())


# -- the trainers --------------------------------------------------------------------------------
def _make_model(cfg: SB3Config, run: TrainingRun, venv: Any) -> Any:
    from stable_baselines3 import DQN, PPO

    policy_kwargs = {
        "features_extractor_class": PenguinFeaturesExtractor,
        "features_extractor_kwargs": {"config": run.policy.config},
        "net_arch": [],  # the extractor ends in the hidden layer our heads read
    }
    common = {
        "learning_rate": cfg.learning_rate,
        "gamma": cfg.gamma,
        "seed": cfg.seed,
        "device": run.device,
        "policy_kwargs": policy_kwargs,
        "verbose": 0,
    }
    if isinstance(cfg, SB3PPOConfig):
        return PPO(
            "MultiInputPolicy",
            venv,
            n_steps=cfg.n_steps,
            batch_size=cfg.batch_size,
            n_epochs=cfg.n_epochs,
            gae_lambda=cfg.gae_lambda,
            clip_range=cfg.clip_range,
            ent_coef=cfg.ent_coef,
            vf_coef=cfg.vf_coef,
            max_grad_norm=cfg.max_grad_norm,
            **common,
        )
    assert isinstance(cfg, SB3DQNConfig)
    return DQN(
        "MultiInputPolicy",
        venv,
        buffer_size=cfg.buffer_size,
        learning_starts=cfg.learning_starts,
        batch_size=cfg.batch_size,
        train_freq=cfg.train_freq,
        gradient_steps=cfg.gradient_steps,
        target_update_interval=cfg.target_update_interval,
        exploration_fraction=cfg.exploration_fraction,
        exploration_initial_eps=cfg.exploration_initial_eps,
        exploration_final_eps=cfg.exploration_final_eps,
        max_grad_norm=cfg.max_grad_norm,
        **common,
    )


@dataclass
class SB3State(TrainerState):
    """Nothing to carry: stable-baselines3 keeps its own state, and its runs are not resumed."""


def _train(cfg: SB3Config, algo: str, callback: Callback | None) -> TrainResult:
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import VecMonitor

    from penguin_env.sb3 import PenguinSB3VecEnv

    run = TrainingRun(cfg, algo, acting_head="q" if algo == "sb3-dqn" else "logits")
    venv = VecMonitor(PenguinSB3VecEnv(cfg.env_id, cfg.num_envs, **cfg.train_env_kwargs()))
    model = _make_model(cfg, run, venv)
    copy_to_sb3(run.policy, model)
    model.set_logger(configure(str(run.run.path / "sb3"), ["tensorboard"] if cfg.tensorboard else []))
    # Evaluations and checkpoints read our policy: copy stable-baselines3's weights in first.
    run.sync_policy = lambda: copy_from_sb3(model, run.policy)

    class Bridge(BaseCallback):
        """The driver's work between two of stable-baselines3's vector-env steps."""

        def _on_step(self) -> bool:
            run.counters.env_steps = int(self.model.num_timesteps)
            run.counters.gradient_steps = int(getattr(self.model, "_n_updates", 0))
            successes = getattr(self.model, "ep_success_buffer", None)
            run.show(success=sum(successes) / len(successes) if successes else None)
            return not run.end_iteration()

    with run.running(SB3State(), callback):
        model.learn(cfg.total_env_steps, callback=Bridge(), progress_bar=False)
    copy_from_sb3(model, run.policy)
    _save_model(model, run)
    venv.close()
    return run.finish()


def _save_model(model: Any, run: TrainingRun) -> None:
    """``sb3_model.zip`` in the run directory, written atomically."""
    buffer = io.BytesIO()  # stable-baselines3 writes only to its own file types
    model.save(buffer)
    atomic_write(run.run.path / "sb3_model.zip", lambda f: f.write(buffer.getvalue()))


def train_ppo(config: SB3PPOConfig, callback: Callback | None = None) -> TrainResult:
    """stable-baselines3 PPO with our extractor; evaluated and saved like every trainer."""
    return _train(config, "sb3-ppo", callback)


def train_dqn(config: SB3DQNConfig, callback: Callback | None = None) -> TrainResult:
    """stable-baselines3 DQN with our extractor; evaluated and saved like every trainer."""
    return _train(config, "sb3-dqn", callback)
