"""Trainer configs as the command line builds them: the per-(algorithm, env) settings files,
recipes and budgets.

``penguin train --algo X --env Y`` with no other flag trains with the settings of
``experiments/hyperparams/X.yml`` for ``Y`` (rl-baselines3-zoo's layout: one YAML file per
algorithm, keyed by env id; an env without an entry uses the config's defaults). A file may also
hold named recipes (``--recipe finetune``): settings for a use other than training from
scratch, for every env (``default``) and per env. Config files (``--config``) and flags
override both.

A budget is either wall time (``--budget 10m``: the config's ``time_limit``) or env steps
(``--env-steps N``: ``total_env_steps`` for the reinforcement-learning trainers, labelled steps
for behaviour cloning). The same budget is given to every algorithm of a comparison.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import sys
import types
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import penguin_env
from algorithms import registry
from algorithms.config import TrainerConfig
from experiments.errors import UsageError

#: Folder of the settings files, one ``<algo>.yml`` per registered algorithm.
HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"

_UNITS = {"s": 1 / 60, "sec": 1 / 60, "m": 1.0, "min": 1.0, "h": 60.0}
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)\s*$")


@dataclass(frozen=True)
class Budget:
    """Wall-time or env-step budget of one training run (at most one is set; neither: each
    algorithm's own budget, from its settings file)."""

    minutes: float | None = None
    env_steps: int | None = None

    def __post_init__(self) -> None:
        if self.minutes is not None and self.env_steps is not None:
            raise UsageError("give one budget: wall time (--budget 10m) or --env-steps N")
        if self.minutes is not None and self.minutes <= 0:
            raise UsageError(f"budget must be positive, got {self.minutes} minutes")
        if self.env_steps is not None and self.env_steps < 1:
            raise UsageError(f"--env-steps must be >= 1, got {self.env_steps}")

    @property
    def own(self) -> bool:
        """Each algorithm trains for its own budget (its settings file's)."""
        return self.minutes is None and self.env_steps is None

    def describe(self) -> str:
        """``"10 min wall time"``, ``"200,000 env steps"`` or ``"each algorithm's own budget"``."""
        if self.minutes is not None:
            return f"{self.minutes:g} min wall time"
        if self.env_steps is not None:
            return f"{self.env_steps:,} env steps"
        return "each algorithm's own budget (its settings file)"

    def slug(self) -> str:
        """A file-name-safe form (``10m``, ``200000steps``, ``own``), used in run names."""
        if self.minutes is not None:
            return f"{self.minutes:g}m"
        return f"{self.env_steps}steps" if self.env_steps is not None else "own"


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
    if budget.own:
        return {}
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


def hyperparams_path(algo: str) -> Path:
    """The settings file of ``algo``."""
    return HYPERPARAMS_DIR / f"{algo}.yml"


@functools.cache
def _hyperparams(algo: str) -> dict[str, Any]:
    """The parsed settings file of ``algo`` (validated: every env id known, every key a field)."""
    path = hyperparams_path(algo)
    config_class, _ = registry.get(algo)
    raw = _read_mapping(path)
    out: dict[str, Any] = {"envs": {}, "recipes": {}}
    for key, entry in raw.items():
        if key == "recipes":
            if not isinstance(entry, dict):
                raise UsageError(f"{path}: 'recipes' must map recipe names to settings")
            for name, per_env in entry.items():
                if not isinstance(per_env, dict):
                    raise UsageError(f"{path}: recipe {name!r} must map 'default' or env ids to settings")
                for env_key, settings in per_env.items():
                    if env_key != "default":
                        _check_env_key(path, env_key)
                    out["recipes"].setdefault(str(name), {})[env_key] = _settings(
                        path, f"recipes.{name}.{env_key}", settings, config_class
                    )
            continue
        _check_env_key(path, key)
        out["envs"][key] = _settings(path, key, entry, config_class)
    return out


def _check_env_key(path: Path, key: Any) -> None:
    if key not in penguin_env.ENV_IDS:
        raise UsageError(
            f"{path}: unknown env id {key!r}; the keys are env ids {list(penguin_env.ENV_IDS)} and 'recipes'"
        )


def _settings(path: Path, where: str, entry: Any, config_class: type[TrainerConfig]) -> dict[str, Any]:
    """One entry's config fields, checked against ``config_class`` (``policy`` may name a preset)."""
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise UsageError(f"{path}: {where} must be a mapping of config fields")
    return config_mapping(entry, config_class, f"{path}: {where}")


def recipes(algo: str) -> list[str]:
    """Names of ``algo``'s recipes."""
    return sorted(_hyperparams(algo)["recipes"])


def preset_fields(algo: str, env_id: str, recipe: str | None = None) -> dict[str, Any]:
    """The config fields of ``algo`` on ``env_id`` from its settings file (empty where the
    defaults are the settings), with recipe ``recipe``'s on top.

    Raises:
        UsageError: an unknown recipe (naming the known ones).
    """
    settings = _hyperparams(algo)
    fields_: dict[str, Any] = {"env_id": env_id, **settings["envs"].get(env_id, {})}
    if recipe is not None:
        if recipe not in settings["recipes"]:
            known = sorted(settings["recipes"])
            raise UsageError(f"unknown recipe {recipe!r} for {algo}; {algo}'s recipes: {known or 'none'}")
        chosen = settings["recipes"][recipe]
        fields_.update(chosen.get("default", {}))
        fields_.update(chosen.get(env_id, {}))
    return copy.deepcopy(fields_)  # the parsed file is cached: callers get their own copy


def build_config(
    algo: str,
    env_id: str,
    *,
    budget: Budget | None = None,
    seed: int | None = None,
    overrides: dict[str, Any] | None = None,
    recipe: str | None = None,
) -> TrainerConfig:
    """Settings file (and recipe), then budget, then ``overrides`` (flags, config file) -> a
    validated config.

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
    merged = preset_fields(algo, env_id, recipe)
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
    path = Path(path)
    return config_mapping(_read_mapping(path), config_class, f"--config {path}", policy_presets=False)


def config_mapping(
    raw: dict[str, Any], config_class: type[TrainerConfig], where: str, policy_presets: bool = True
) -> dict[str, Any]:
    """A mapping of config fields, checked and brought to the fields' types.

    ``policy`` is a mapping of network fields, or (with ``policy_presets``) the name of a network
    preset (:meth:`agents.PolicyConfig.preset`), which becomes that preset's full config.

    Raises:
        UsageError: unknown fields, naming the allowed ones.
    """
    from agents import PolicyConfig

    types_ = _field_types(config_class)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name not in types_:
            raise UsageError(
                f"{where}: unknown config field {key!r} for {config_class.__name__}; allowed: {sorted(types_)}"
            )
        if name == "policy":
            if policy_presets and isinstance(value, str):
                try:
                    out["policy"] = PolicyConfig.preset(value)
                except ValueError as err:
                    raise UsageError(f"{where}: policy: {err}") from None
                continue
            if not isinstance(value, dict):
                raise UsageError(f"{where}: 'policy' must be a mapping of network fields")
            policy_types = _field_types(PolicyConfig)
            policy: dict[str, Any] = {}
            for pkey, pvalue in value.items():
                pname = str(pkey).replace("-", "_")
                if pname not in policy_types:
                    raise UsageError(
                        f"{where}: unknown network field 'policy.{pkey}'; allowed: {sorted(policy_types)}"
                    )
                policy[pname] = _coerce(pvalue, policy_types[pname], f"policy.{pname}")
            out["policy"] = policy if not policy_presets else dataclasses.replace(PolicyConfig(), **policy)
        elif name == "env_kwargs":
            if not isinstance(value, dict):
                raise UsageError(f"{where}: 'env_kwargs' must be a mapping of env keyword arguments")
            out[name] = dict(value)
        else:
            out[name] = _coerce(value, types_[name], name)
    return out
