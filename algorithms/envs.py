"""Building the batched env for training and describing held-out evaluation levels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gymnasium.vector import AutoresetMode

from penguin_env.vector import PenguinVectorEnv

#: First level id of the held-out evaluation levels; training uses ids below it.
HELDOUT_START_LEVEL = 1_000_000


def make_vec_env(
    env_id: str,
    num_envs: int,
    env_kwargs: dict[str, Any] | None = None,
    autoreset_mode: AutoresetMode = AutoresetMode.NEXT_STEP,
) -> PenguinVectorEnv:
    """The native batched Penguin vector env (its ``.game.state`` is what the solver reads)."""
    return PenguinVectorEnv(
        env_id, num_envs, autoreset_mode=autoreset_mode, **dict(env_kwargs or {})
    )


@dataclass(frozen=True)
class HeldOut:
    """Which levels and phrasings count as held out.

    Attributes:
        start_level: first held-out level id (must be beyond every training level).
        num_levels: how many consecutive held-out levels evaluation plays (one episode each).
        paraphrases: instruction phrasings used at evaluation (``"test"``: never seen in training).
    """

    start_level: int = HELDOUT_START_LEVEL
    num_levels: int = 500
    paraphrases: str = "test"

    def env_kwargs(self, train_kwargs: dict[str, Any] | None) -> dict[str, Any]:
        """The training env kwargs with the level range and phrasings swapped for held-out ones."""
        return {
            **dict(train_kwargs or {}),
            "start_level": self.start_level,
            "num_levels": self.num_levels,
            "paraphrases": self.paraphrases,
        }


def check_disjoint(train_kwargs: dict[str, Any], heldout_kwargs: dict[str, Any]) -> None:
    """Raise if the training levels could include held-out ones.

    Raises:
        ValueError: naming the ranges and how to fix them.
    """
    start, n = int(train_kwargs.get("start_level", 0)), int(train_kwargs.get("num_levels", 0))
    h_start, h_n = int(heldout_kwargs["start_level"]), int(heldout_kwargs.get("num_levels", 0))
    train_end = start + n if n > 0 else 2**31
    held_end = h_start + h_n if h_n > 0 else 2**31
    if start < held_end and h_start < train_end:
        raise ValueError(
            f"training levels [{start}, {train_end}) overlap the held-out levels [{h_start}, {held_end}); "
            f"train with num_levels > 0 and start_level + num_levels <= {h_start}"
        )
