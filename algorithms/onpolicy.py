"""What PPO and pseudo-GRPO share: budget and guidance fields, sampling actions, the
behaviour-cloning auxiliary loss, and the KL penalty to a reference policy."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

import agents
from algorithms.auxiliary import check_aux
from algorithms.config import CurriculumConfig, TrainerConfig, need


@dataclass
class OnPolicyConfig(TrainerConfig, CurriculumConfig):
    """Fields of every on-policy trainer (plus :class:`~algorithms.config.TrainerConfig`'s and the
    radius curriculum's)."""

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
    policy (0: none). When fine-tuning a good policy it keeps the updates from drifting where
    the reward does not tell actions apart."""
    reference: str | None = None
    """Checkpoint of the reference policy for the KL term; None uses the starting policy
    (``init_from``'s weights, or the initial weights)."""
    word_dropout: float = 0.0
    """Leave out each word of the instruction the policy acts on with this probability, at
    every step played (corner words are kept; ``algorithms.augment.drop_words``). The update
    trains on the instructions the policy acted on, so the ratio stays on-policy. Meant for
    fine-tuning a policy cloned with word dropout, whose held-out phrasings recombine training
    words. 0: off."""
    bc_whole_instruction: bool = False
    """With ``word_dropout`` and ``bc_coef``: train the behaviour-cloning loss on the whole
    instruction (one more forward pass per minibatch), not on the one the rollout acted on: the
    solver's labels belong to the whole instruction, and with words left out the text may no
    longer name the task."""
    aux_coef: float = 0.0
    """Weight of the auxiliary losses on what the state says: the penguin's cell and heading and
    the gold's cells (:mod:`algorithms.auxiliary`; needs ``policy.aux_heads``). 0: off."""
    aux_nearest: bool = False
    """Also train keypoint 2 to find the nearest gold still on the board (needs ``aux_coef > 0``
    and ``policy.nearest_keypoint``; not with ``augment``): with several pieces left, the gold
    keypoint's coordinates are their mean, and a memoryless greedy policy steered by a point
    between them can turn back and forth for ever."""
    eval_every: int = 100_000
    """Env steps between evaluations on the validation levels (0: only the final one)."""
    checkpoint_every: int = 100_000
    """Env steps between resume checkpoints (also written by wall time, on Ctrl-C and at the end)."""

    def validate(self) -> None:
        super().validate()
        self.validate_curriculum(self.env_id)
        need(int(self.total_env_steps) >= 1, f"total_env_steps must be >= 1, got {self.total_env_steps!r}")
        need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate!r}")
        need(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm!r}")
        for name in ("clip_coef", "ent_coef", "bc_coef", "kl_coef"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)!r}")
        need(0.0 <= self.bc_decay <= 1.0, f"bc_decay must be in [0, 1], got {self.bc_decay!r}")
        need(0.0 <= self.word_dropout < 1.0, f"word_dropout must be in [0, 1), got {self.word_dropout!r}")
        need(
            not self.bc_whole_instruction or (self.word_dropout > 0 and self.bc_coef > 0),
            "bc_whole_instruction changes the behaviour-cloning loss only when words are left out: "
            f"set word_dropout > 0 and bc_coef > 0 (got {self.word_dropout!r}, {self.bc_coef!r})",
        )
        if self.reference is not None and not Path(self.reference).is_file():
            raise FileNotFoundError(f"reference: no checkpoint at {self.reference}")
        need(self.aux_coef >= 0, f"aux_coef must be >= 0 (0: off), got {self.aux_coef!r}")
        check_aux(self)

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


def sample_actions(
    logits: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Actions drawn from the softmax of ``logits`` with ``generator`` (on the logits' device),
    and the log-probabilities of every action ``(B, A)``."""
    logp_all = torch.log_softmax(logits, dim=-1)
    action = torch.multinomial(logp_all.exp(), 1, generator=generator).squeeze(-1)
    return action, logp_all
