"""Opening a policy checkpoint for an env, for the commands that act with it (eval, play).

A checkpoint written by a trainer names the env it was trained on (``extra["env_id"]``) and its
env keyword arguments, so ``penguin eval CKPT`` needs no ``--env``. Another env may be asked for;
the env's observation and action spaces must then be those the network was built for, else the
error says which fields differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import agents
import agents.pretrained
import penguin_env
from agents.spaces import space_differences, space_to_dict
from algorithms.envs import TEST_START_LEVEL, VALIDATION_START_LEVEL, make_vec_env
from experiments.errors import UsageError, user_input
from penguin_env.config import VARIANTS

#: Env keyword arguments that choose levels and phrasings, not what the network sees.
LEVEL_KWARGS = ("num_levels", "start_level", "paraphrases")


@dataclass
class LoadedPolicy:
    """A checkpoint's network and the env it is to act in."""

    policy: agents.MultimodalPolicy
    path: Path
    env_id: str
    env_kwargs: dict[str, Any]
    """Keyword arguments of the env (image size, room size, ...), without level range or phrasings."""
    trainer: str
    levels: dict[str, int]
    """First level id of the run's ``validation`` and ``test`` levels (training never saw either)."""


def _trained_env(data: dict[str, Any]) -> tuple[str | None, dict[str, Any], dict[str, int]]:
    """``(env id, env kwargs, first validation and test level)`` recorded by the trainer (None,
    the defaults where absent)."""
    extra = data.get("extra") or {}
    config = extra.get("config") or {}
    kwargs = config.get("env_kwargs", extra.get("env_kwargs") or {})
    kwargs = {k: v for k, v in dict(kwargs).items() if k not in LEVEL_KWARGS}
    levels = {
        # checkpoints written before the split name one held-out range, the validation one
        "validation": int(config.get("validation_start_level", config.get("heldout_start_level", VALIDATION_START_LEVEL))),
        "test": int(config.get("test_start_level", TEST_START_LEVEL)),
    }
    return extra.get("env_id") or config.get("env_id"), kwargs, levels


#: The env a shipped agent named without ``--env`` plays (every algorithm has one there).
DEFAULT_AGENT_ENV = "Penguin-Gold-v0"


def agent_path(agent: str | Path, env_id: str | None) -> Path:
    """``agent`` as a checkpoint file: a path, or the name of a shipped agent (``"ppo"``) for
    ``env_id`` (:data:`DEFAULT_AGENT_ENV` if None).

    Raises:
        UsageError: a name with no shipped agent for that env (listing the shipped ones).
    """
    path = Path(agent)
    if path.exists() or str(agent) not in {a for a, _ in agents.pretrained_agents()}:
        return path
    with user_input():
        return agents.pretrained.pretrained_path(str(agent), env_id or DEFAULT_AGENT_ENV)


def load_for_env(
    path: str | Path, env_id: str | None = None, env_kwargs: dict[str, Any] | None = None
) -> LoadedPolicy:
    """Load the checkpoint at ``path`` (or the shipped agent so named, see :func:`agent_path`) for
    ``env_id`` (default: the env it was trained on), with the env keyword arguments it was
    trained with updated by ``env_kwargs``.

    Raises:
        UsageError: missing or unreadable file, no env known, an unknown env id, or an env whose
            spaces differ from the checkpoint's (naming the differing fields).
    """
    path = agent_path(path, env_id)
    try:
        data = agents.read(path)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    except ValueError as err:
        # torch's own message for a foreign file runs to many lines; name the cause only.
        cause = f" ({type(err.__cause__).__name__})" if err.__cause__ is not None else ""
        if cause or "not a Penguin policy checkpoint" in str(err):
            raise UsageError(
                f"{path} is not a readable Penguin policy checkpoint{cause}; give a .pt file "
                "written by penguin train (runs/<env>/<algo>/<run>/checkpoints/final.pt)"
            ) from None
        raise UsageError(str(err).splitlines()[0]) from None
    with user_input():
        policy = agents.load(path)
    trained_env, kwargs, levels = _trained_env(data)
    if env_id is None:
        if trained_env is None:
            raise UsageError(
                f"{path} does not say which env it was trained on; pass --env, one of {list(penguin_env.ENV_IDS)}"
            )
        env_id = trained_env
    if env_id not in penguin_env.ENV_IDS:
        raise UsageError(f"unknown env id {env_id!r}; choose from {list(penguin_env.ENV_IDS)}")
    if env_id != trained_env and not VARIANTS[env_id].has_radius:
        kwargs.pop("radius", None)  # a Penguin-Bare-v0 knob the other envs do not take
    kwargs.update(env_kwargs or {})
    with user_input():
        probe = make_vec_env(env_id, 1, kwargs)
    try:
        diffs = space_differences(
            data["observation_space"], space_to_dict(probe.single_observation_space), "observation_space"
        ) + space_differences(
            data["action_space"], space_to_dict(probe.single_action_space), "action_space"
        )
    finally:
        probe.close()
    if diffs:
        shown = "; ".join(
            d.replace(".spaces.", ".").replace("policy has", f"{env_id} gives") for d in diffs[:3]
        )
        trained = f" (it was trained on {trained_env} {kwargs})" if trained_env else ""
        raise UsageError(
            f"checkpoint {path} does not fit the spaces of {env_id}{trained}: {shown}"
        )
    return LoadedPolicy(
        policy=policy,
        path=path,
        env_id=env_id,
        env_kwargs=kwargs,
        trainer=str(data.get("trainer", "unknown")),
        levels=levels,
    )
