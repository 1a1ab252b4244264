"""The multimodal policy network every trainer acts through."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Categorical

from agents.config import PolicyConfig
from agents.encoders import make_image_encoder, make_text_encoder
from agents.fusion import Fusion
from agents.spaces import ObsLayout, obs_layout, obs_to_tensors

#: Headings of the penguin (N, NE, ..., NW): the classes of the heading prediction.
NUM_HEADINGS = 8
#: Outputs of the auxiliary head: the heading (8 classes) and the bearing of the nearest gold
#: relative to it (8 sectors, and one more for none).
AUX_OUTPUTS = 2 * NUM_HEADINGS + 1

HEADS = ("logits", "value", "q", "features", "aux")

#: Heads :meth:`MultimodalPolicy.act` can act through (:attr:`MultimodalPolicy.acting_head`).
ACTING_HEADS = ("logits", "q")

#: Random-action probability of :meth:`MultimodalPolicy.act` when it samples through the Q head:
#: DQN's usual evaluation epsilon (a Q head defines no distribution to sample from).
Q_SAMPLING_EPSILON = 0.05


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> None:
    """Orthogonal weights with ``gain`` and zero biases for every conv and linear layer in ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.orthogonal_(m.weight, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _unique_rows(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(unique keys, index of one row per unique key, inverse)`` of a 1-D integer tensor."""
    unique, inverse = torch.unique(keys, return_inverse=True)
    first = torch.empty_like(unique).scatter_(0, inverse, torch.arange(len(keys), device=keys.device))
    return unique, first, inverse


def epsilon_greedy(
    q: torch.Tensor,
    epsilon: float,
    generator: torch.Generator | None = None,
    random_actions: Sequence[int] | None = None,
) -> torch.Tensor:
    """Per row of ``q`` ``(B, A)``: a random action with probability ``epsilon``, else the argmax.

    The random action is uniform over all ``A`` actions, or over ``random_actions`` when given
    (the greedy choice may still be any action). Random draws come from ``generator``, on its
    own device (``q``'s device without one), so they are reproducible.
    """
    greedy = q.argmax(dim=-1)
    n, num_actions = q.shape
    device = generator.device if generator is not None else q.device
    explore = torch.rand(n, generator=generator, device=device) < epsilon
    if random_actions is None:
        random = torch.randint(0, num_actions, (n,), generator=generator, device=device)
    else:
        choices = torch.as_tensor(list(random_actions), dtype=torch.long, device=device)
        if len(choices) == 0 or int(choices.min()) < 0 or int(choices.max()) >= num_actions:
            raise ValueError(f"random_actions must be a non-empty subset of 0..{num_actions - 1}, got {list(random_actions)}")
        random = choices[torch.randint(0, len(choices), (n,), generator=generator, device=device)]
    return torch.where(explore.to(q.device), random.to(q.device), greedy)


class MultimodalEncoder(nn.Module):
    """Image encoder + text encoder + fusion: observations -> ``(B, config.hidden)`` features.

    Shared by :class:`MultimodalPolicy` and the stable-baselines3 features extractor.
    Images may be uint8 (normalised here) or floats already in [0, 1], channels last or first
    as the observation space says; token ids may arrive as floats (stable-baselines3 casts Box
    observations to float) and are rounded back to ids.
    """

    def __init__(self, layout: ObsLayout, config: PolicyConfig) -> None:
        super().__init__()
        self.layout, self.config = layout, config
        self.image_encoder = make_image_encoder(config, layout.image_size)
        self.text_encoder = make_text_encoder(config, layout.vocab_size, layout.text_length)
        self.fusion = Fusion(config)
        orthogonal_init(self)

    def check_image(self, image: torch.Tensor) -> tuple[torch.Tensor, float]:
        """The image batch as given and the scale that maps its values to [0, 1]
        (1/255 for uint8, 1 for floats); the encoders normalise it themselves."""
        if image.dim() != 4:
            raise ValueError(
                f"expected a batch of images (B, S, S, 3) or (B, 3, S, S), got shape {tuple(image.shape)}"
            )
        return image, (1.0 / 255.0 if image.dtype == torch.uint8 else 1.0)

    def preprocess_text(self, text: torch.Tensor) -> torch.Tensor:
        if text.dim() != 2:
            raise ValueError(f"expected a batch of token ids (B, L), got shape {tuple(text.shape)}")
        if text.is_floating_point():
            text = text.round()
        return text.long().clamp_(0, self.layout.vocab_size - 1)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """``(B, hidden)`` features of a batch of raw images and token ids."""
        return self.features_and_scores(image, text)[0]

    def features_and_scores(
        self, image: torch.Tensor, text: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The features, the keypoints' ``(B, cells, K)`` score maps (None without keypoints)
        and the ego keypoints' ``(B, 8)`` heading logits (None without them)."""
        image, scale = self.check_image(image)
        image_map = self.image_encoder(image, self.layout.channels_last, scale)
        return self.fusion(image_map, self.encode_text(self.preprocess_text(text)))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """Instruction vectors ``(B, text_dim)``, each distinct instruction encoded once.

        A batch holds few distinct instructions (tens at most, from a closed grammar), and
        the recurrent text encoder is sequential over tokens, so encoding the distinct rows
        and gathering is exact (same values, same gradients) and many times cheaper.
        """
        vocab, length = self.layout.vocab_size, tokens.shape[1]
        if length * math.log2(max(vocab, 2)) < 62:
            # One exact integer key per row (the ids as digits in base ``vocab``): a 1-D unique
            # is far cheaper than torch.unique(dim=0), which compares rows one by one.
            digits = torch.tensor(
                [vocab**i for i in range(length - 1, -1, -1)], dtype=torch.int64, device=tokens.device
            )
            _, first, inverse = _unique_rows(tokens @ digits)
            return self.text_encoder(tokens[first])[inverse]
        unique, inverse = torch.unique(tokens, dim=0, return_inverse=True)
        return self.text_encoder(unique)[inverse]


class MultimodalPolicy(nn.Module):
    """One network for every trainer: action logits (BC, PPO, GRPO), value (PPO), Q values (DQN).

    Args:
        observation_space: ``Dict(image=Box(uint8, (S, S, 3)), text=Box(int, (L,)))``, i.e. a
            Penguin env wrapped in :class:`penguin_env.wrappers.TokenizeInstruction`.
        action_space: ``Discrete(A)``.
        config: architecture; defaults suit 64x64 images on a CPU.

    Example::

        env = TokenizeInstruction(gym.make("Penguin-Gold-v0"))
        policy = MultimodalPolicy(env.observation_space, env.action_space)
        obs, _ = env.reset(seed=0)
        action = policy.act(obs)                       # one observation -> one int
        out = policy({k: v[None] for k, v in obs.items()}, heads=("logits", "value"))

    :attr:`acting_head` says which head :meth:`act` uses: ``"logits"`` (BC, PPO, GRPO) or
    ``"q"`` (DQN). It is saved in checkpoints, so a loaded network acts as its trainer did.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        config: PolicyConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config or PolicyConfig()
        self.layout = obs_layout(observation_space, action_space)
        self.observation_space, self.action_space = observation_space, action_space
        self.encoder = MultimodalEncoder(self.layout, self.config)
        n = self.layout.num_actions
        self.policy_head = nn.Linear(self.config.hidden, n)
        self.value_head = nn.Linear(self.config.hidden, 1)
        self.q_head = nn.Linear(self.config.hidden, n)
        # Small policy logits start near uniform; value and Q heads start at unit scale (PPO practice).
        orthogonal_init(self.policy_head, 0.01)
        orthogonal_init(self.value_head, 1.0)
        orthogonal_init(self.q_head, 1.0)
        # Created last, so a network without them starts with the same weights as before.
        self.aux_head = nn.Linear(self.config.hidden, AUX_OUTPUTS) if self.config.aux_heads else None
        if self.aux_head is not None:
            orthogonal_init(self.aux_head, 1.0)
        self._acting_head = "logits"

    @property
    def acting_head(self) -> str:
        """Head :meth:`act` chooses actions with: ``"logits"`` (greedy = most likely action,
        sampled = drawn from the softmax) or ``"q"`` (greedy = argmax Q, sampled = epsilon-greedy
        with epsilon :data:`Q_SAMPLING_EPSILON`)."""
        return self._acting_head

    @acting_head.setter
    def acting_head(self, head: str) -> None:
        if head not in ACTING_HEADS:
            raise ValueError(f"acting_head must be one of {ACTING_HEADS}, got {head!r}")
        self._acting_head = head

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(
        self, obs: dict[str, Any], heads: Iterable[str] = ("logits", "value")
    ) -> dict[str, torch.Tensor]:
        """Compute the requested heads for a batch of observations.

        Args:
            obs: ``{"image": (B, S, S, 3) uint8, "text": (B, L) int}`` as numpy arrays or tensors.
            heads: any of ``"logits"`` ``(B, A)``, ``"value"`` ``(B,)``, ``"q"`` ``(B, A)``,
                ``"features"`` ``(B, hidden)``, and with ``config.aux_heads`` ``"aux"``: the
                predictions of :mod:`algorithms.auxiliary`'s targets, ``aux_penguin`` and
                ``aux_gold`` ``(B, cells)`` logits over the feature map's cells (keypoints 0
                and 1), ``aux_nearest`` the same of keypoint 2 when there is one, ``aux_heading``
                ``(B, 8)`` and ``aux_bearing`` ``(B, 9)``.
        """
        heads = tuple(heads)
        unknown = set(heads) - set(HEADS)
        if unknown:
            raise ValueError(f"unknown head(s) {sorted(unknown)}; choose from {HEADS}")
        if "aux" in heads and self.aux_head is None:
            raise ValueError("the 'aux' head needs a network built with PolicyConfig(aux_heads=True)")
        image, text = obs_to_tensors(obs, self.device)
        features, scores, ego_heading = self.encoder.features_and_scores(image, text)
        out: dict[str, torch.Tensor] = {}
        if "aux" in heads:
            assert scores is not None and self.aux_head is not None
            out["aux_penguin"], out["aux_gold"] = scores[:, :, 0], scores[:, :, 1]
            if scores.shape[2] > 2:
                out["aux_nearest"] = scores[:, :, 2]
            out["aux_heading"], out["aux_bearing"] = self.aux_head(features).split([NUM_HEADINGS, NUM_HEADINGS + 1], dim=1)
            if ego_heading is not None:  # the heading the ego keypoints turn by is the one to train
                out["aux_heading"] = ego_heading
        if "features" in heads:
            out["features"] = features
        if "logits" in heads:
            out["logits"] = self.policy_head(features)
        if "value" in heads:
            out["value"] = self.value_head(features).squeeze(-1)
        if "q" in heads:
            out["q"] = self.q_head(features)
        return out

    def distribution(self, obs: dict[str, Any]) -> Categorical:
        """The action distribution for a batch of observations."""
        return Categorical(logits=self(obs, heads=("logits",))["logits"])

    def evaluate_actions(
        self, obs: dict[str, Any], actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log_prob, entropy, value)`` of ``actions`` in one pass (what policy-gradient updates need)."""
        out = self(obs, heads=("logits", "value"))
        dist = Categorical(logits=out["logits"])
        actions = torch.as_tensor(actions, device=out["logits"].device).long()
        return dist.log_prob(actions), dist.entropy(), out["value"]

    @torch.no_grad()
    def act(
        self,
        obs: dict[str, Any],
        deterministic: bool = True,
        generator: torch.Generator | None = None,
    ) -> np.ndarray | torch.Tensor | int:
        """Choose actions through :attr:`acting_head`: greedy (``deterministic``) or sampled.

        With the logits head, sampled actions are drawn from the softmax; with the Q head they are
        epsilon-greedy (a uniformly random action with probability :data:`Q_SAMPLING_EPSILON`,
        else argmax Q), DQN's usual evaluation. Accepts one observation or a batch (leading
        axis), numpy or torch. Returns an int for one numpy observation, an int64 array for a
        numpy batch, a tensor for torch input.
        """
        image = obs["image"]
        single = np.ndim(image) == 3
        as_torch = isinstance(image, torch.Tensor)
        if single:
            obs = {
                k: (v[None] if isinstance(v, torch.Tensor) else np.asarray(v)[None])
                for k, v in obs.items()
            }
        scores = self(obs, heads=(self._acting_head,))[self._acting_head]
        if deterministic:
            actions = scores.argmax(dim=-1)
        elif self._acting_head == "q":
            actions = epsilon_greedy(scores, Q_SAMPLING_EPSILON, generator)
        else:
            probs = torch.softmax(scores, dim=-1)
            if generator is not None:  # draw on the generator's device
                probs = probs.to(generator.device)
            actions = torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(scores.device)
        if as_torch:
            return actions[0] if single else actions
        actions_np = actions.cpu().numpy().astype(np.int64)
        return int(actions_np[0]) if single else actions_np
