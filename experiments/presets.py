"""Trainer configs as the command line builds them: per-(algorithm, env) presets and budgets.

``penguin train --algo X --env Y`` with no other flag uses the settings with which X's benchmark
reached (or came nearest to) its target on Y, so the README's figures are reproduced by the plain
command. A trainer module may carry its own presets as ``ConfigClass.for_env(env_id, **changes)``
(behaviour cloning does); :data:`PRESETS` holds the others. Flags and config files override both.

A budget is either wall time (``--budget 10m``: the config's ``time_limit``) or env steps
(``--env-steps N``: ``total_env_steps`` for the reinforcement-learning trainers, labelled steps
for behaviour cloning). The same budget is given to every algorithm of a comparison.
"""

from __future__ import annotations

import re
import sys
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from algorithms import registry
from algorithms.common import TrainerConfig
from experiments.errors import UsageError

#: (algorithm, env id) -> config fields, for trainers without their own ``for_env``.
PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("ppo", "Penguin-Bare-v0"): {"curriculum": True, "total_env_steps": 5_000_000},
    # Episodes cut near the shortest path (2 steps per cell of the curriculum's radius), many
    # groups per iteration, PPO's learning rate and a larger entropy bonus (at 0.01 one seed's
    # policy became deterministic and its groups all-equal): what made pseudo-GRPO learn
    # full-view Bare.
    ("grpo", "Penguin-Bare-v0"): {"curriculum": True, "total_env_steps": 5_000_000, "horizon_per_cell": 2,
                                  "num_groups": 128, "num_epochs": 4, "learning_rate": 1e-3, "ent_coef": 0.03},
    # Learning-rate annealing planned over 10M env steps; a 30-minute run stops on time near 4M.
    ("ppo", "Penguin-Gold-v0"): {"total_env_steps": 10_000_000},
}

_UNITS = {"s": 1 / 60, "sec": 1 / 60, "m": 1.0, "min": 1.0, "h": 60.0}
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)\s*$")


@dataclass(frozen=True)
class Budget:
    """Wall-time or env-step budget of one training run (exactly one is set)."""

    minutes: float | None = None
    env_steps: int | None = None

    def __post_init__(self) -> None:
        if (self.minutes is None) == (self.env_steps is None):
            raise UsageError("give exactly one budget: wall time (--budget 10m) or --env-steps N")
        if self.minutes is not None and self.minutes <= 0:
            raise UsageError(f"budget must be positive, got {self.minutes} minutes")
        if self.env_steps is not None and self.env_steps < 1:
            raise UsageError(f"--env-steps must be >= 1, got {self.env_steps}")

    def describe(self) -> str:
        """``"10 min wall time"`` or ``"200,000 env steps"``."""
        if self.minutes is not None:
            return f"{self.minutes:g} min wall time"
        return f"{self.env_steps:,} env steps"

    def slug(self) -> str:
        """A file-name-safe form (``10m``, ``200000steps``), used in run names."""
        return f"{self.minutes:g}m" if self.minutes is not None else f"{self.env_steps}steps"


def parse_budget(text: str) -> Budget:
    """``"90s"``, ``"10m"``, ``"1.5h"`` -> a wall-time :class:`Budget`."""
    match = _BUDGET.match(str(text))
    if not match:
        raise UsageError(
            f"malformed budget {text!r}; write a number and a unit: 90s, 10m or 1.5h "
            "(or give env steps with --env-steps N)"
        )
    return Budget(minutes=float(match.group(1)) * _UNITS[match.group(2)])


def config_fields(config_class: type[TrainerConfig]) -> set[str]:
    """Names of a config dataclass's fields."""
    return {f.name for f in fields(config_class)}


def budget_fields(config_class: type[TrainerConfig], budget: Budget, base: dict[str, Any]) -> dict[str, Any]:
    """The config fields that give a run ``budget`` (``base``: the preset's fields so far).

    Wall time sets ``time_limit`` and leaves the step budget as the preset has it (schedules such
    as learning-rate annealing keep their planned length). Env steps set ``total_env_steps``, or
    for behaviour cloning scale its demonstration and DAgger steps to add up to the budget.
    """
    names = config_fields(config_class)
    if budget.minutes is not None:
        return {"time_limit": budget.minutes}
    steps = int(budget.env_steps or 0)
    if "total_env_steps" in names:
        return {"time_limit": 0.0, "total_env_steps": steps}
    if "data_steps" in names:  # behaviour cloning: labelled steps are its env steps
        defaults = config_class(**{k: v for k, v in base.items() if k in names})
        data = int(defaults.data_steps)
        dagger = int(defaults.dagger_rounds) * int(defaults.dagger_steps)
        scale = steps / max(1, data + dagger)
        out: dict[str, Any] = {"time_limit": 0.0, "data_steps": max(1, round(data * scale))}
        if dagger:
            out["dagger_steps"] = max(1, round(int(defaults.dagger_steps) * scale))
        return out
    raise UsageError(f"{config_class.__name__} has no env-step budget; give a wall-time --budget")


def preset_fields(algo: str, env_id: str) -> dict[str, Any]:
    """The preset fields of ``algo`` on ``env_id`` (empty where the defaults are the preset)."""
    config_class, _ = registry.get(algo)
    fields_: dict[str, Any] = {"env_id": env_id}
    for_env = getattr(config_class, "for_env", None)
    if for_env is not None:
        preset = for_env(env_id)
        defaults = config_class()
        changed = {
            f.name: getattr(preset, f.name)
            for f in fields(config_class)
            if getattr(preset, f.name) != getattr(defaults, f.name)
        }
        fields_.update(changed)
    fields_.update(PRESETS.get((algo, env_id), {}))
    return fields_


def build_config(
    algo: str,
    env_id: str,
    *,
    budget: Budget | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainerConfig:
    """Preset, then budget, then ``overrides`` (flags, config file) -> a validated config.

    Raises:
        UsageError: unknown algorithm or config field, or a budget the trainer cannot take.
        ValueError: a field value the config rejects (its message names what is allowed).
    """
    try:
        config_class, _ = registry.get(algo)
    except ValueError as err:
        raise UsageError(str(err)) from None
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - config_fields(config_class))
    if unknown:
        raise UsageError(
            f"unknown config field(s) {unknown} for {algo}; `penguin train --algo {algo} --help` lists them"
        )
    merged = preset_fields(algo, env_id)
    if budget is not None:
        merged.update(budget_fields(config_class, budget, merged))
    if seed is not None:
        merged["seed"] = seed
    merged.update(overrides)
    return config_class(**merged)


def _field_types(config_class: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of a dataclass."""
    return typing.get_type_hints(config_class)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Bring a file value to a field's type where the file format cannot say it.

    YAML reads ``3e-4`` (no dot) as a string and both formats read ``1`` for a float field as
    an int; anything else is left for the config's own validation.
    """
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    if value is None or isinstance(value, bool) or type(value) in options:
        return value
    if float in options and isinstance(value, (int, str)):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{where}: expected a number, got {value!r}") from None
    if int in options and isinstance(value, str):
        if not re.fullmatch(r"[+-]?\d[\d_]*", value.strip()):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return int(value.replace("_", ""))
    if int in options and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _read_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a ``.yaml``/``.yml`` or ``.toml`` file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise FileNotFoundError(f"--config: no file at {path}")
    text = path.read_text()
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise UsageError("--config: reading YAML needs PyYAML (pip install pyyaml); a .toml file needs nothing") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise UsageError(f"--config: {path} is not valid YAML ({' '.join(str(err).split())})") from None
    elif suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise UsageError("--config: reading TOML on Python 3.10 needs tomli (pip install tomli)") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise UsageError(f"--config: {path} is not valid TOML ({err})") from None
    else:
        raise UsageError(f"--config: {path} must end in .yaml, .yml or .toml")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--config: {path} must hold a mapping of config fields, got {type(data).__name__}")
    return data


def load_config_file(path: str | Path, config_class: type[TrainerConfig]) -> dict[str, Any]:
    """Config fields from a YAML or TOML file, as ``build_config`` overrides.

    Keys are field names (``learning_rate`` or ``learning-rate``); the network's fields go under a
    ``policy`` mapping and env keyword arguments under ``env_kwargs``. Returns the fields with
    ``policy`` as a plain dict of the fields given (to apply on top of the preset's network).

    Raises:
        UsageError: unknown fields (naming the allowed ones), an unreadable or malformed file.
    """
    from agents import PolicyConfig

    path = Path(path)
    raw = _read_mapping(path)
    types_ = _field_types(config_class)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in types_:
            raise UsageError(
                f"--config {path}: unknown config field {key!r} for {config_class.__name__}; "
                f"allowed: {sorted(types_)}"
            )
        if name == "policy":
            if not isinstance(value, dict):
                raise UsageError(f"--config {path}: 'policy' must be a mapping of network fields")
            policy_types = _field_types(PolicyConfig)
            policy: dict[str, Any] = {}
            for pkey, pvalue in value.items():
                pname = str(pkey).replace("-", "_")
                if pname not in policy_types:
                    raise UsageError(
                        f"--config {path}: unknown network field 'policy.{pkey}'; allowed: {sorted(policy_types)}"
                    )
                policy[pname] = _coerce(pvalue, policy_types[pname], f"policy.{pname}")
            out["policy"] = policy
        elif name == "env_kwargs":
            if not isinstance(value, dict):
                raise UsageError(f"--config {path}: 'env_kwargs' must be a mapping of env keyword arguments")
            out[name] = dict(value)
        else:
            out[name] = _coerce(value, types_[name], name)
    return out
