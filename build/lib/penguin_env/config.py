"""Env keyword arguments, their validation, and the registered variants."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from penguin_env.core import Rules, Task, default_max_steps
from penguin_env.instructions import PARAPHRASE_SPLITS
from penguin_env.levels import MAX_LEVEL_ID, LevelSpec
from penguin_env.render import ego_window, min_image_size

MIN_SIZE, MAX_SIZE = 3, 32
MAX_IMAGE_SIZE = 1024
VIEWS = ("full", "ego")


@dataclass(frozen=True)
class Variant:
    """What distinguishes one registered env id from another."""

    env_id: str
    num_gold: int
    walls: str
    tasks: tuple[Task, ...]
    has_radius: bool = False


VARIANTS: dict[str, Variant] = {
    v.env_id: v
    for v in (
        Variant("Penguin-Bare-v0", num_gold=1, walls="none", tasks=(Task.COLLECT,), has_radius=True),
        Variant("Penguin-Gold-v0", num_gold=3, walls="none", tasks=(Task.COLLECT,)),
        Variant("Penguin-Walls-v0", num_gold=3, walls="segments", tasks=(Task.COLLECT,)),
        Variant("Penguin-Lang-v0", num_gold=1, walls="light", tasks=tuple(Task)),
    )
}


@dataclass(frozen=True)
class EnvConfig:
    """Keyword arguments every Penguin env accepts (``gym.make(id, **kwargs)``).

    Attributes:
        size: interior cells per side (3..32).
        image_size: side of the square ``image`` observation in pixels (default 64).
        view: ``"full"`` top-down view, or ``"ego"``: a window centred on the penguin and
            rotated so it faces up.
        max_steps: truncation limit; default ``4 * size**2``.
        step_penalty: subtracted from the reward at every step (>= 0).
        paraphrases: instruction phrasings to draw from: ``"train"``, ``"test"`` or ``"all"``.
        num_levels: if > 0, play only levels ``start_level .. start_level + num_levels - 1``.
        start_level: first level id (Procgen semantics).
        radius: ``Penguin-Bare-v0`` only: the gold lies within this many cells (Chebyshev) of
            the penguin; None means anywhere.
        hint: draw a blue line from the penguin to the nearest gold on observations.
    """

    size: int = 8
    image_size: int = 64
    view: str = "full"
    max_steps: int | None = None
    step_penalty: float = 0.0
    paraphrases: str = "train"
    num_levels: int = 0
    start_level: int = 0
    radius: int | None = None
    hint: bool = False

    @property
    def episode_limit(self) -> int:
        """``max_steps`` with its default filled in."""
        return self.max_steps if self.max_steps is not None else default_max_steps(self.size)

    def rules(self) -> Rules:
        return Rules(max_steps=self.episode_limit, step_penalty=float(self.step_penalty))

    def level_spec(self, variant: Variant) -> LevelSpec:
        return LevelSpec(
            size=self.size,
            num_gold=variant.num_gold,
            walls=variant.walls,
            tasks=variant.tasks,
            radius=self.radius,
            paraphrases=self.paraphrases,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) or type(value).__name__.startswith("int")


def make_config(env_id: str, kwargs: dict[str, Any]) -> EnvConfig:
    """Validate ``kwargs`` for ``env_id`` and build its :class:`EnvConfig`.

    Raises:
        TypeError: for an unknown keyword.
        ValueError: for a value out of range; the message names what is allowed.
    """
    variant = VARIANTS[env_id]
    allowed = [f.name for f in fields(EnvConfig) if f.name != "radius" or variant.has_radius]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        hint = " (radius is only accepted by Penguin-Bare-v0)" if "radius" in unknown else ""
        raise TypeError(f"{env_id} got unknown keyword argument(s) {unknown}{hint}; allowed: {allowed}")
    cfg = EnvConfig(**kwargs)

    def need(cond: bool, message: str) -> None:
        if not cond:
            raise ValueError(f"{env_id}: {message}")

    need(_is_int(cfg.size) and MIN_SIZE <= cfg.size <= MAX_SIZE, f"size must be an int in {MIN_SIZE}..{MAX_SIZE}, got {cfg.size!r}")
    need(cfg.view in VIEWS, f"view must be one of {VIEWS}, got {cfg.view!r}")
    cells = cfg.size + 2 if cfg.view == "full" else ego_window(cfg.size)
    smallest = min_image_size(cells)
    need(
        _is_int(cfg.image_size) and smallest <= cfg.image_size <= MAX_IMAGE_SIZE,
        f"image_size must be an int in {smallest}..{MAX_IMAGE_SIZE} for size={cfg.size} and view={cfg.view!r} "
        f"({cells} cells of at least 4 pixels), got {cfg.image_size!r}",
    )
    need(cfg.max_steps is None or (_is_int(cfg.max_steps) and cfg.max_steps >= 1), f"max_steps must be None or an int >= 1, got {cfg.max_steps!r}")
    need(
        isinstance(cfg.step_penalty, (int, float)) and not isinstance(cfg.step_penalty, bool)
        and math.isfinite(cfg.step_penalty) and cfg.step_penalty >= 0,
        f"step_penalty must be a finite number >= 0, got {cfg.step_penalty!r}",
    )
    need(cfg.paraphrases in PARAPHRASE_SPLITS, f"paraphrases must be one of {PARAPHRASE_SPLITS}, got {cfg.paraphrases!r}")
    need(_is_int(cfg.num_levels) and cfg.num_levels >= 0, f"num_levels must be an int >= 0 (0 = unlimited), got {cfg.num_levels!r}")
    need(_is_int(cfg.start_level) and cfg.start_level >= 0, f"start_level must be an int >= 0, got {cfg.start_level!r}")
    need(
        cfg.start_level + max(cfg.num_levels, 1) - 1 <= MAX_LEVEL_ID,
        f"start_level + num_levels must not exceed {MAX_LEVEL_ID + 1}",
    )
    need(cfg.radius is None or (_is_int(cfg.radius) and cfg.radius >= 1), f"radius must be None or an int >= 1, got {cfg.radius!r}")
    need(isinstance(cfg.hint, bool), f"hint must be True or False, got {cfg.hint!r}")
    return cfg
