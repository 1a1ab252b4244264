"""A stable-baselines3 ``VecEnv`` over the native batched vector env.

``import penguin_env`` never imports stable-baselines3; only this module does::

    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor
    from penguin_env.sb3 import PenguinSB3VecEnv

    venv = VecMonitor(PenguinSB3VecEnv("Penguin-Gold-v0", num_envs=16, size=6))
    PPO("MultiInputPolicy", venv).learn(10_000)

Semantics follow SB3's ``DummyVecEnv``: a finished game is reset in the same step, its last
observation is in ``infos[i]["terminal_observation"]``, ``infos[i]["TimeLimit.truncated"]``
tells a time-limit truncation from a real termination, and the first info of the new
episode is in ``reset_infos[i]``. With the same seeds (``venv.seed(s)``) it gives the same
trajectories as ``DummyVecEnv`` over ``TokenizeInstruction(gym.make(env_id))``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from stable_baselines3.common.vec_env.base_vec_env import (
        VecEnv,
        VecEnvIndices,
        VecEnvObs,
        VecEnvStepReturn,
    )
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "penguin_env.sb3 needs stable-baselines3: pip install 'stable-baselines3>=2.4'"
    ) from exc

from gymnasium.vector import AutoresetMode

from penguin_env.vector import PenguinVectorEnv

_INFO_KEYS = ("task", "instruction", "success", "gold_left", "level")


class PenguinSB3VecEnv(VecEnv):
    """stable-baselines3 ``VecEnv`` adapter over :class:`~penguin_env.vector.PenguinVectorEnv`.

    Args:
        env_id: a registered Penguin id.
        num_envs: number of games.
        render_mode: None or ``"rgb_array"``.
        **env_kwargs: keyword arguments of the single env (``size``, ``image_size``, ...).

    Observations are ``{"image": (N, S, S, 3) uint8, "text": (N, L) int64}`` (use
    ``MultiInputPolicy``). Wrap in ``VecMonitor`` for ``rollout/ep_rew_mean`` logging.
    ``.venv`` is the wrapped Gymnasium vector env and ``.game`` its batched engine.
    """

    def __init__(
        self, env_id: str, num_envs: int = 1, render_mode: str | None = None, **env_kwargs: Any
    ) -> None:
        self.venv = PenguinVectorEnv(
            env_id,
            num_envs,
            copy=True,
            autoreset_mode=AutoresetMode.SAME_STEP,
            render_mode=render_mode,
            **env_kwargs,
        )
        self.game = self.venv.game
        self._actions: np.ndarray | None = None
        super().__init__(
            num_envs, self.venv.single_observation_space, self.venv.single_action_space
        )

    # -- VecEnv API ---------------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        """Reset every game (with the seeds from :meth:`seed`, if any) and return observations."""
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        options: dict[str, Any] = {}
        levels = [opt.get("level") for opt in self._options]
        if any(lv is not None for lv in levels):
            if any(lv is None for lv in levels):
                raise ValueError("set_options: give a 'level' for every env or for none of them")
            options["level"] = np.asarray(levels, dtype=np.int64)
        obs, infos = self.venv.reset(seed=seeds, options=options or None)
        self.reset_infos = self._split(infos)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() needs step_async(actions) first")
        obs, reward, terminated, truncated, infos = self.venv.step(self._actions)
        self._actions = None
        done = terminated | truncated
        out = self._split(infos)
        limit = (truncated & ~terminated).tolist()
        if done.any():
            final_obs, final_info = infos["final_obs"], infos["final_info"]
            for i in np.flatnonzero(done).tolist():
                # This step's info opens the new episode; the finished one's info is final_info.
                self.reset_infos[i] = out[i]
                out[i] = {key: _item(final_info[key][i]) for key in _INFO_KEYS}
                out[i]["terminal_observation"] = final_obs[i]
                # SB3's name for it: its loops then log rollout/success_rate.
                out[i]["is_success"] = bool(out[i]["success"])
        for i, info in enumerate(out):
            info["TimeLimit.truncated"] = limit[i]
        return obs, reward.astype(np.float32), done, out

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of the (shared) vector env, once per selected index."""
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the shared vector env (all games share it)."""
        setattr(self.venv, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the shared vector env once; its result is repeated per selected index."""
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """The games are not Gymnasium envs, so no wrapper ever wraps them."""
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        return list(self.game.images(copy=True))

    # -- helpers ------------------------------------------------------------------------------
    def _split(self, infos: dict[str, Any]) -> list[dict[str, Any]]:
        """Gymnasium's batched infos as SB3's list of per-env dicts."""
        columns = [infos[key].tolist() for key in _INFO_KEYS]
        return [dict(zip(_INFO_KEYS, row, strict=True)) for row in zip(*columns, strict=True)]


def _item(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
