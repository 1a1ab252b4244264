"""The checkpoint format: one file any trainer can write and any trainer can start from.

A checkpoint is ``torch.save`` of a plain dict::

    {
        "format": "penguin-policy", "format_version": 2,
        "trainer": "bc",                      # who wrote it: "bc", "ppo", "grpo", "dqn", ...
        "config": {...},                      # PolicyConfig fields
        "observation_space": {...},           # plain description (agents.spaces.space_to_dict)
        "action_space": {...},
        "state_dict": {...},                  # network weights
        "acting_head": "logits",              # head act() uses: "logits", or "q" for DQN
        "versions": {"penguin-rl": ..., "torch": ..., "gymnasium": ..., "numpy": ..., "python": ...},
        "created": "2026-01-01T00:00:00+00:00",
        "extra": {...},                       # free-form metadata from the trainer (metrics, env id)
        "resume": {...},                      # optional: optimizer, step counters, RNG states
    }

Files without ``acting_head`` (written before it existed) act through the logits head.
Everything in it is tensors and plain Python values, so it loads with ``weights_only=True``.
Writes are atomic: a temporary file in the same directory, then ``os.replace``.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from agents.config import PolicyConfig
from agents.files import atomic_write
from agents.network import MultimodalPolicy
from agents.spaces import space_differences, space_from_dict, space_to_dict

FORMAT = "penguin-policy"
FORMAT_VERSION = 2

#: Architecture fields added in format version 2, with the values every version-1 checkpoint
#: was built with (the ``"wide"`` preset's): old files load as the network they were.
V1_CONFIG_FIELDS = {"cnn_stem": "conv", "cnn_layers": 1, "film_kernel": 3, "trunk_norm": False, "keypoints": 0}

#: Architecture fields added since, with the value that builds the network files without them
#: were: a file written before a field existed loads (and warm-starts a trainer) unchanged.
LATER_CONFIG_FIELDS = {"glimpses": False, "aux_heads": False, "ego_keypoints": False, "ego_ring": False,
                       "nearest_keypoint": False}


class CheckpointMismatchError(ValueError):
    """A checkpoint's config or spaces differ from the policy it is being loaded into."""


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a checkpoint."""
    out = {"python": platform.python_version()}
    for name in ("penguin-rl", "torch", "gymnasium", "numpy", "stable-baselines3"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` via a temporary file and ``os.replace`` (never a
    half-written file; :class:`agents.files.DiskFullError` when the disk is full)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def checkpoint_dict(
    policy: MultimodalPolicy,
    trainer: str,
    extra: dict[str, Any] | None = None,
    resume: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict :func:`save` writes (useful to add fields before writing)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "trainer": str(trainer),
        "config": policy.config.to_dict(),
        "observation_space": space_to_dict(policy.observation_space),
        "action_space": space_to_dict(policy.action_space),
        "state_dict": {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()},
        "acting_head": policy.acting_head,
        "versions": package_versions(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "extra": dict(extra or {}),
        "resume": resume,
    }


def save(
    policy: MultimodalPolicy,
    path: str | os.PathLike,
    trainer: str = "unknown",
    extra: dict[str, Any] | None = None,
    resume: dict[str, Any] | None = None,
) -> Path:
    """Write ``policy`` to one checkpoint file, atomically.

    Args:
        policy: the network.
        path: destination file (parent directories are created).
        trainer: name of the trainer that produced the weights (``"bc"``, ``"ppo"``, ...).
        extra: plain metadata (env id, metrics); must be tensors or plain Python values.
        resume: trainer state for resuming (optimizer ``state_dict``, step counters, RNG states).
    """
    return atomic_torch_save(checkpoint_dict(policy, trainer, extra, resume), path)


def read(path: str | os.PathLike, device: str | torch.device | None = None) -> dict[str, Any]:
    """The raw checkpoint dict, validated to be a Penguin policy checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        data = torch.load(path, map_location=device or "cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise ValueError(
            f"{path} is not a readable checkpoint ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a Penguin policy checkpoint (no format={FORMAT!r} field); write it with agents.save"
        )
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {data['format_version']}, newer than this code's "
            f"{FORMAT_VERSION}; upgrade penguin-rl to read it"
        )
    if int(data.get("format_version", 0)) < 2:
        data["config"] = {**V1_CONFIG_FIELDS, **data["config"]}
        data["format_version"] = FORMAT_VERSION
    data["config"] = {**LATER_CONFIG_FIELDS, **data["config"]}
    return data


def load(path: str | os.PathLike, device: str | torch.device | None = None) -> MultimodalPolicy:
    """Rebuild the policy stored at ``path``, weights loaded, in eval mode, on ``device`` (default
    CPU), acting through the head its trainer acted with."""
    data = read(path)
    policy = MultimodalPolicy(
        space_from_dict(data["observation_space"]),
        space_from_dict(data["action_space"]),
        PolicyConfig.from_dict(data["config"]),
    )
    policy.load_state_dict(data["state_dict"])
    policy.acting_head = data.get("acting_head", "logits")
    return policy.to(device or "cpu").eval()


def differences(policy: MultimodalPolicy, data: dict[str, Any]) -> list[str]:
    """Every config or space field in which checkpoint ``data`` differs from ``policy``."""
    out: list[str] = []
    mine = policy.config.to_dict()
    theirs = data["config"]
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key, "<missing>") != theirs.get(key, "<missing>"):
            out.append(
                f"config.{key}: checkpoint has {theirs.get(key, '<missing>')!r}, policy has {mine.get(key, '<missing>')!r}"
            )
    out += space_differences(
        data["observation_space"], space_to_dict(policy.observation_space), "observation_space"
    )
    out += space_differences(
        data["action_space"], space_to_dict(policy.action_space), "action_space"
    )
    return out


def load_into(policy: MultimodalPolicy, path: str | os.PathLike) -> dict[str, Any]:
    """Load the weights at ``path`` into an existing ``policy`` (e.g. BC weights for PPO fine-tuning).

    The policy also takes the checkpoint's :attr:`~agents.MultimodalPolicy.acting_head` (a
    trainer that warm-starts from another trainer's checkpoint then sets its own, as
    :class:`algorithms.driver.TrainingRun` does). Returns the checkpoint dict (for its
    ``extra`` and ``resume`` entries).

    Raises:
        CheckpointMismatchError: if the checkpoint's config or spaces differ; the message lists
            every differing field, e.g. ``config.fusion: checkpoint has 'film', policy has 'concat'``.
    """
    data = read(path)
    diffs = differences(policy, data)
    if diffs:
        raise CheckpointMismatchError(
            f"checkpoint {path} does not fit this policy:\n  "
            + "\n  ".join(diffs)
            + "\nBuild the policy with the checkpoint's config and env settings (or use agents.load(path))."
        )
    policy.load_state_dict(data["state_dict"])
    policy.acting_head = data.get("acting_head", "logits")
    return data
