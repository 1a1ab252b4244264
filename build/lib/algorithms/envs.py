"""The batched env of training: building it, playing it across iterations, and which levels
are held out for evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from algorithms.logger import EpisodeStats
from algorithms.trainer_state import to_numpy_values
from penguin_env.vector import PenguinVectorEnv

#: First level id of the validation levels: evaluations during training, ``best.pt``, and
#: choosing settings. Training uses ids below it.
VALIDATION_START_LEVEL = 1_000_000
#: First level id of the test levels: the final evaluation, benchmark tables, ``penguin compare``
#: and ``penguin eval``. Nothing is tuned on them.
TEST_START_LEVEL = 2_000_000


def make_vec_env(
    env_id: str,
    num_envs: int,
    env_kwargs: dict[str, Any] | None = None,
    autoreset_mode: AutoresetMode = AutoresetMode.NEXT_STEP,
) -> PenguinVectorEnv:
    """The native batched Penguin vector env (its ``get_state()`` is what the solver reads)."""
    return PenguinVectorEnv(
        env_id, num_envs, autoreset_mode=autoreset_mode, **dict(env_kwargs or {})
    )


class EnvStepper:
    """The training games, played on from one iteration to the next (next-step autoreset).

    Holds the vector env, its last observation, which games only reset on their next step, and
    the statistics of finished episodes; :meth:`state_dict` saves all of it as arrays and plain
    values, and :meth:`restart` starts the games again with other env keyword arguments (a
    curriculum stage).

    Args:
        env_id: registered Penguin id.
        num_envs: games stepped together.
        env_kwargs: env keyword arguments of the training levels.
        seed: games are reset with ``seed`` (game ``i`` with ``seed + i``).
        stats_window: finished episodes the ``rollout/*`` statistics average over.
    """

    def __init__(
        self, env_id: str, num_envs: int, env_kwargs: dict[str, Any], seed: int, stats_window: int = 100
    ) -> None:
        self.env_id, self.num_envs, self.stats_window = env_id, int(num_envs), int(stats_window)
        self.envs: PenguinVectorEnv
        self.restart(env_kwargs, seed)

    @property
    def observation_space(self) -> spaces.Dict:
        """One game's observation space."""
        return self.envs.single_observation_space  # type: ignore[return-value]

    def restart(self, env_kwargs: dict[str, Any], seed: int) -> None:
        """New games with ``env_kwargs``, reset with ``seed``; the episode statistics start afresh."""
        if getattr(self, "envs", None) is not None:
            self.envs.close()
        self.env_kwargs = dict(env_kwargs)
        self.envs = make_vec_env(self.env_id, self.num_envs, self.env_kwargs)
        self.obs, _ = self.envs.reset(seed=int(seed))
        #: Games whose last step ended an episode: their next step only resets them.
        self.resetting = np.zeros(self.num_envs, dtype=bool)
        self.stats = EpisodeStats(self.num_envs, window=self.stats_window)

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset the games (the vector env's ``reset`` arguments) and keep the new observation."""
        self.obs, info = self.envs.reset(**kwargs)
        self.resetting[np.asarray((kwargs.get("options") or {}).get("reset_mask", True))] = False
        return self.obs, info

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every game; returns what the vector env returned and keeps the new observation."""
        obs, reward, terminated, truncated, info = self.envs.step(actions)
        self.stats.update(reward, terminated, truncated, info["success"])
        self.obs, self.resetting = obs, terminated | truncated
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self.envs.close()

    def state_dict(self) -> dict[str, Any]:
        return {
            "env_kwargs": dict(self.env_kwargs),
            "envs": self.envs.state_dict(),
            "obs": {k: np.array(v) for k, v in self.obs.items()},
            "resetting": self.resetting.copy(),
            "stats": self.stats.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = to_numpy_values(state)
        if dict(state["env_kwargs"]) != self.env_kwargs:
            self.restart(state["env_kwargs"], 0)  # the games of a later curriculum stage
        self.envs.load_state_dict(state["envs"])
        self.obs = {k: np.array(v) for k, v in state["obs"].items()}
        self.resetting = np.array(state["resetting"], dtype=bool)
        self.stats.load_state_dict(state["stats"])


@dataclass(frozen=True)
class HeldOut:
    """Which levels and phrasings count as held out.

    Attributes:
        start_level: first held-out level id (must be beyond every training level).
        num_levels: how many consecutive held-out levels evaluation plays (one episode each).
        paraphrases: instruction phrasings used at evaluation (``"test"``: never seen in training).
    """

    start_level: int = TEST_START_LEVEL
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


def check_disjoint(train_kwargs: dict[str, Any], heldout_kwargs: dict[str, Any], what: str = "the held-out levels") -> None:
    """Raise if the levels of ``train_kwargs`` could include those of ``heldout_kwargs``.

    Raises:
        ValueError: naming the ranges and how to fix them.
    """
    start, n = int(train_kwargs.get("start_level", 0)), int(train_kwargs.get("num_levels", 0))
    h_start, h_n = int(heldout_kwargs["start_level"]), int(heldout_kwargs.get("num_levels", 0))
    train_end = start + n if n > 0 else 2**31
    held_end = h_start + h_n if h_n > 0 else 2**31
    if start < held_end and h_start < train_end:
        raise ValueError(
            f"levels [{start}, {train_end}) overlap {what} [{h_start}, {held_end}); give each range its own "
            f"level ids (num_levels > 0 and start_level + num_levels <= {h_start})"
        )
