"""The multimodal policy network and its checkpoint format.

``agents`` knows observation and action spaces only (no env, no trainer):

- :class:`MultimodalPolicy` - image encoder (CNN or ViT-style), instruction encoder (GRU or
  transformer), FiLM or concat fusion, and action-logit / value / Q heads.
- :class:`PolicyConfig` - its architecture, stored in every checkpoint.
- :func:`save`, :func:`load`, :func:`load_into` - one-file checkpoints any trainer can resume
  or fine-tune from.
- :func:`load_pretrained` - the trained agents that ship with the package.
- :mod:`agents.sb3` - the same encoder as a stable-baselines3 features extractor.
"""

from __future__ import annotations

from agents.checkpoint import CheckpointMismatchError, load, load_into, read, save
from agents.config import PolicyConfig
from agents.network import MultimodalEncoder, MultimodalPolicy
from agents.pretrained import load_pretrained, pretrained_agents

__all__ = [
    "CheckpointMismatchError",
    "MultimodalEncoder",
    "MultimodalPolicy",
    "PolicyConfig",
    "load",
    "load_into",
    "load_pretrained",
    "pretrained_agents",
    "read",
    "save",
]
