"""What PPO and pseudo-GRPO share: budget and guidance fields, the radius curriculum, the
behaviour-cloning auxiliary loss, the KL penalty to a reference policy, and the schedule of
evaluations and checkpoints."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import agents
from algorithms.common import TrainerConfig, need


@dataclass
class OnPolicyConfig(TrainerConfig):
    """Fields of every on-policy trainer (plus :class:`~algorithms.common.TrainerConfig`'s)."""

    env_id: str = "Penguin-Bare-v0"
    """Registered Penguin env id."""
    total_env_steps: int = 1_000_000
    """Env steps of training (the budget); ``time_limit`` may stop it earlier."""
    learning_rate: float = 1e-3
    """Adam learning rate (start value when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the budget."""
    clip_coef: float = 0.2
    """Importance-ratio clipping range."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    bc_coef: float = 0.0
    """Weight of a behaviour-cloning auxiliary loss on the solver's optimal actions for the
    states the policy visits (0: learning from reward alone)."""
    bc_decay: float = 0.5
    """Fraction of the budget over which ``bc_coef`` decays linearly to 0."""
    kl_coef: float = 0.0
    """Weight of a KL penalty (k3 estimator, on the sampled actions) to a frozen reference
    policy (0: none; DeepSeekMath's GRPO used 0.04). When fine-tuning a good policy it keeps the
    updates from drifting where the reward does not tell actions apart."""
    reference: str | None = None
    """Checkpoint of the reference policy for the KL term; None uses the starting policy
    (``init_from``'s weights, or the initial weights)."""
    word_dropout: float = 0.0
    """Leave out each word of the instruction the policy acts on with this probability, at
    every step played (corner words are kept; ``algorithms.augment.drop_words``, as behaviour
    cloning's option). The update trains on the instructions the policy acted on, so the ratio
    stays on-policy. For fine-tuning a BC policy cloned with word dropout on
    ``Penguin-Lang-v0``: without it RL trains on whole training phrasings only, and the greedy
    policy's success on the held-out phrasings fell below BC's. 0: off."""
    bc_whole_instruction: bool = False
    """With ``word_dropout`` and ``bc_coef``: train the behaviour-cloning loss on the whole
    instruction (one more forward pass per minibatch), not on the one the rollout acted on. The
    solver's labels belong to the whole instruction; with words left out the text may no longer
    name the task (on ``Penguin-Lang-v0`` that loss pulled greedy success well below BC's early
    in a run)."""
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
    eval_every: int = 100_000
    """Env steps between held-out evaluations (0: only at the end)."""
    checkpoint_every: int = 100_000
    """Env steps between resume checkpoints (also written on Ctrl-C and at the end)."""

    def validate(self) -> None:
        super().validate()
        for name in ("total_env_steps", "curriculum_start", "curriculum_window"):
            need(int(getattr(self, name)) >= 1, f"{name} must be >= 1, got {getattr(self, name)!r}")
        need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate!r}")
        need(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm!r}")
        for name in ("clip_coef", "ent_coef", "bc_coef", "kl_coef"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("bc_decay", "curriculum_threshold"):
            need(0.0 <= getattr(self, name) <= 1.0, f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        need(0.0 <= self.word_dropout < 1.0, f"word_dropout must be in [0, 1), got {self.word_dropout!r}")
        need(
            not self.bc_whole_instruction or (self.word_dropout > 0 and self.bc_coef > 0),
            "bc_whole_instruction changes the behaviour-cloning loss only when words are left out: "
            f"set word_dropout > 0 and bc_coef > 0 (got {self.word_dropout!r}, {self.bc_coef!r})",
        )
        if self.reference is not None and not Path(self.reference).is_file():
            raise FileNotFoundError(f"reference: no checkpoint at {self.reference}")
        need(
            not self.curriculum or self.env_id == "Penguin-Bare-v0",
            f"curriculum grows Penguin-Bare-v0's radius; {self.env_id} has none (set curriculum=False)",
        )

    def schedule(self, progress: float) -> tuple[float, float]:
        """``(learning rate, BC coefficient)`` at ``progress`` (0..1) through the budget."""
        lr = self.learning_rate * (1.0 - progress if self.anneal_lr else 1.0)
        bc = self.bc_coef * max(0.0, 1.0 - progress / self.bc_decay) if self.bc_decay > 0 else 0.0
        return lr, bc


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-sample k3 estimate of KL(pi || pi_ref) from the log-probabilities of sampled actions:
    ``r - log r - 1`` with ``r = pi_ref / pi`` (non-negative, zero when the two agree)."""
    log_r = ref_logp - logp
    return log_r.exp() - log_r - 1.0


def make_reference(cfg: OnPolicyConfig, policy: torch.nn.Module, device: torch.device) -> torch.nn.Module | None:
    """The frozen reference policy of the KL term (None when ``kl_coef`` is 0): ``cfg.reference``
    loaded, or a copy of ``policy`` as it starts. A resumed run restores the copy's weights from
    its checkpoint (see :func:`reference_state`)."""
    if cfg.kl_coef <= 0:
        return None
    reference = agents.load(cfg.reference, device) if cfg.reference is not None else copy.deepcopy(policy)
    reference.eval()
    reference.requires_grad_(False)
    return reference


def reference_kl(
    reference: torch.nn.Module, obs: dict[str, torch.Tensor], actions: torch.Tensor, logp: torch.Tensor
) -> torch.Tensor:
    """Mean k3 KL to ``reference`` over a minibatch: ``logp`` are the trained policy's
    log-probabilities of ``actions`` in ``obs``."""
    with torch.no_grad():
        ref_logp_all = torch.log_softmax(reference(obs, heads=("logits",))["logits"], dim=-1)
    return k3_kl(logp, ref_logp_all.gather(1, actions[:, None]).squeeze(1)).mean()


class RadiusCurriculum:
    """Gold within ``radius`` cells, widened by one each time training success passes a threshold."""

    def __init__(self, cfg: OnPolicyConfig) -> None:
        size = int(cfg.env_kwargs.get("size", 8))
        final = cfg.env_kwargs.get("radius")
        self.final = None if final is None else int(final)
        # Beyond 2 * size every cell of the room is within the radius: the same as "anywhere".
        self.limit = self.final if self.final is not None else 2 * size
        self.radius = min(cfg.curriculum_start, self.limit) if cfg.curriculum else None
        self.threshold = cfg.curriculum_threshold
        self.window = cfg.curriculum_window

    def env_kwargs(self, base: dict[str, Any]) -> dict[str, Any]:
        """``base`` with the current radius (the env's own once the curriculum is done)."""
        if self.radius is None:
            return base
        at_end = self.radius >= self.limit
        return {**base, "radius": self.final if at_end else self.radius}

    def advance(self, successes: list[float]) -> bool:
        """Widen the radius if the last ``window`` episodes succeeded often enough."""
        if self.radius is None or self.radius >= self.limit or len(successes) < self.window:
            return False
        if float(np.mean(successes[-self.window :])) < self.threshold:
            return False
        self.radius += 1
        return True


def bc_aux_loss(logp_all: torch.Tensor, optimal: torch.Tensor) -> torch.Tensor | None:
    """Cross-entropy from the uniform distribution over each state's optimal actions to the
    policy (``optimal``: ``(B, A)`` bool); None when no state has an optimal action."""
    mask = optimal.float()
    has = mask.sum(dim=1) > 0
    if not has.any():
        return None
    target = mask[has] / mask[has].sum(dim=1, keepdim=True)
    return -(target * logp_all[has]).sum(dim=1).mean()


def update_bc_loss(
    policy: torch.nn.Module,
    logp_all: torch.Tensor,
    image: torch.Tensor,
    whole_text: torch.Tensor | None,
    optimal: torch.Tensor,
) -> torch.Tensor | None:
    """The update's behaviour-cloning loss: :func:`bc_aux_loss` of the update's own pass
    (``logp_all``), or with ``whole_text`` (``bc_whole_instruction``) of a pass of its own over
    ``image`` and the whole instructions, since the update's pass holds them with words left out."""
    if whole_text is not None:
        logits = policy({"image": image, "text": whole_text}, heads=("logits",))["logits"]
        logp_all = torch.log_softmax(logits, dim=-1)
    return bc_aux_loss(logp_all, optimal)


class Every:
    """Fires once each time a counter passes the next multiple of ``period`` (0: never)."""

    def __init__(self, period: int, start: int = 0) -> None:
        self.period = period
        self.next = (start // period + 1) * period if period > 0 else None

    def due(self, count: int) -> bool:
        if self.next is None or count < self.next:
            return False
        while self.next <= count:
            self.next += self.period
        return True
