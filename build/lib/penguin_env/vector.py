"""The native batched vector env: N Penguin games stepped at once in array code.

:class:`PenguinVectorEnv` implements Gymnasium's :class:`gymnasium.vector.VectorEnv` on top of
:class:`~penguin_env.engine.BatchGame`, the same engine the single env runs on (as its N=1
case), so for the same seeds and actions it gives exactly the trajectories of
``SyncVectorEnv([gym.make(id) wrapped in TokenizeInstruction, ...])``.

Build one with ``gym.make_vec("Penguin-Gold-v0", num_envs=64,
vectorization_mode="vector_entry_point", **kwargs)`` or directly with
``PenguinVectorEnv("Penguin-Gold-v0", 64, **kwargs)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from penguin_env.config import VARIANTS, make_config
from penguin_env.core import NUM_ACTIONS, GameState
from penguin_env.engine import BatchGame
from penguin_env.env import InvalidAction

_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)
#: Version of :meth:`PenguinVectorEnv.state_dict`'s layout.
STATE_DICT_VERSION = 1
_INFO_KEYS = ("task", "instruction", "success", "gold_left", "level")


def _fields_of(state: GameState) -> dict[str, np.ndarray]:
    """A game state's arrays by field name (copies)."""
    return {f.name: getattr(state, f.name).copy() for f in dataclasses.fields(state)}


def _autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """The mode from an ``AutoresetMode``, its value (``"NextStep"``) or name (``"next_step"``)."""
    parsed = None
    for m in _MODES:
        if mode == m or (
            isinstance(mode, str) and mode.lower() in (m.value.lower(), m.name.lower())
        ):
            parsed = m
    if parsed is None:
        allowed = ", ".join(f"AutoresetMode.{m.name} ({m.value!r})" for m in _MODES)
        raise ValueError(f"autoreset_mode must be one of {allowed}, got {mode!r}")
    return parsed


class PenguinVectorEnv(VectorEnv):
    """N Penguin games of one variant, stepped together with numpy array operations.

    Args:
        env_id: a registered id (``"Penguin-Bare-v0"``, ``"Penguin-Gold-v0"``,
            ``"Penguin-Walls-v0"`` or ``"Penguin-Lang-v0"``).
        num_envs: number of games N (>= 1).
        copy: if True (default) every returned array is a fresh copy; if False, ``obs["image"]``
            and ``obs["text"]`` are the env's own buffers, overwritten by the next ``step`` or
            ``reset`` (copy them if you keep them; a rollout buffer that copies anyway then
            pays for one copy, not two).
        autoreset_mode: ``AutoresetMode.NEXT_STEP`` (default, as in Gymnasium: the step after
            an episode ends resets that game, ignores its action, and returns reward 0) or
            ``AutoresetMode.SAME_STEP`` (the game resets in the step that ends the episode;
            the last observation and info go to ``infos["final_obs"]`` and
            ``infos["final_info"]``). Also in ``metadata["autoreset_mode"]``.
        render_mode: None or ``"rgb_array"`` (``render()`` returns a tuple of N frames).
        **env_kwargs: the keyword arguments of the single env (``size``, ``image_size``,
            ``view``, ``max_steps``, ``step_penalty``, ``paraphrases``, ``num_levels``,
            ``start_level``, ``radius``, ``hint``), validated the same way.

    Observations are ``Dict(image=(N, S, S, 3) uint8, text=(N, L) int64 token ids)``; the
    instruction strings are in ``infos["instruction"]``. ``infos`` also holds ``task``,
    ``success``, ``gold_left`` and ``level``, each with its ``_key`` mask, as Gymnasium's
    vector envs do. ``reset(seed=s)`` seeds game i with ``s + i`` (as ``SyncVectorEnv`` does);
    ``reset(seed=[s0, s1, ...])`` seeds each game; ``options={"level": [...]}`` plays given
    level ids and ``options={"reset_mask": mask}`` resets only some games.

    :meth:`get_state` returns the batched game state (what an expert such as
    ``fake_traces.solver`` reads); :meth:`state_dict` and :meth:`load_state_dict` save and restore
    the whole env as arrays and plain values (a trainer's resume checkpoint).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 8}
    env_id: ClassVar[str] = ""

    def __init__(
        self,
        env_id: str | None = None,
        num_envs: int = 1,
        *,
        copy: bool = True,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        env_id = env_id or self.env_id
        if env_id not in VARIANTS:
            raise ValueError(f"env_id must be one of {sorted(VARIANTS)}, got {env_id!r}")
        if (
            isinstance(num_envs, bool)
            or not isinstance(num_envs, (int, np.integer))
            or num_envs < 1
        ):
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.env_id = env_id
        self.config = make_config(env_id, env_kwargs)
        self.num_envs = int(num_envs)
        self.copy = bool(copy)
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.render_mode = render_mode
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}

        # The batched engine (internal: experts read :meth:`get_state`).
        self.game = BatchGame(env_id, self.config, num=self.num_envs)
        s = self.config.image_size
        self.single_observation_space = spaces.Dict(
            {
                "image": spaces.Box(0, 255, (s, s, 3), dtype=np.uint8),
                "text": self.game.tokenizer.space(),
            }
        )
        self.single_action_space = spaces.Discrete(NUM_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        self._seeded = np.zeros(self.num_envs, dtype=bool)
        self._started = False
        self._autoreset = np.zeros(
            self.num_envs, dtype=bool
        )  # NEXT_STEP: reset these on the next step

    # The batched spaces hold (N, S, S, 3) low and high arrays, 25 MB for a thousand 64-pixel
    # games and all derived from the single spaces: a pickled env leaves them out and rebuilds
    # them (their sampling RNG starts afresh).
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["observation_space"], state["action_space"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    # -- state --------------------------------------------------------------------------------
    def get_state(self) -> GameState:
        """The batched game state of the N games (a copy; arrays with the game axis first).

        This is what an expert reads: ``fake_traces.solver.optimal_action_mask(envs.get_state())``
        gives every optimal action of every game. Unlike the single env's ``get_state`` (one
        game as a JSON-able dict), it is the engine's own arrays, so it costs one copy.
        """
        return self.game.state.copy()

    def state_dict(self) -> dict[str, Any]:
        """Everything the env's future depends on, as numpy arrays and plain values.

        Games, level pools, seeds and episode counters, autoreset flags and the env's RNG; frames
        and instructions are redrawn from the games on :meth:`load_state_dict`. Restoring it into
        an env built with the same id, ``num_envs`` and keyword arguments continues exactly where
        this one is (the same observations, rewards and autoresets for the same actions).
        """
        game = self.game
        rng = None if self._np_random is None else self._np_random.bit_generator.state
        return {
            "version": STATE_DICT_VERSION,
            "env_id": self.env_id,
            "num_envs": self.num_envs,
            "config": dataclasses.asdict(self.config),
            "autoreset_mode": self.autoreset_mode.value,
            "games": _fields_of(game.state),
            "seed_base": game.seed_base.copy(),
            "episode": game.episode.copy(),
            "pool": _fields_of(game._pool),
            "pool_seed": game._pool_seed.copy(),
            "pool_start": game._pool_start.copy(),
            "seeded": self._seeded.copy(),
            "started": self._started,
            "autoreset": self._autoreset.copy(),
            "np_random": rng,
            "np_random_seed": self._np_random_seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (arrays may be numpy arrays or CPU tensors).

        Raises:
            ValueError: if the state belongs to another env id, game count, configuration or
                autoreset mode (the message names the difference).
        """
        version = int(state.get("version", 0))
        if version != STATE_DICT_VERSION:
            raise ValueError(
                f"vector env state version {version} is not {STATE_DICT_VERSION}; it was written by "
                "another version of penguin_env"
            )
        mine = {
            "env_id": self.env_id,
            "num_envs": self.num_envs,
            "config": dataclasses.asdict(self.config),
            "autoreset_mode": self.autoreset_mode.value,
        }
        for key, value in mine.items():
            if state[key] != value:
                raise ValueError(
                    f"vector env state has {key}={state[key]!r}, this env has {value!r}; build the env "
                    "with the same id, num_envs, keyword arguments and autoreset mode"
                )
        game = self.game
        loaded = GameState(**{k: np.array(v) for k, v in state["games"].items()})
        game.seed_base[:] = np.asarray(state["seed_base"]).astype(np.uint64)
        game.episode[:] = np.asarray(state["episode"])
        for name, value in state["pool"].items():
            getattr(game._pool, name)[:] = np.asarray(value)
        game._pool_seed[:] = np.asarray(state["pool_seed"]).astype(np.uint64)
        game._pool_start[:] = np.asarray(state["pool_start"])
        game.load(np.arange(self.num_envs), loaded)
        self._seeded[:] = np.asarray(state["seeded"])
        self._started = bool(state["started"])
        self._autoreset[:] = np.asarray(state["autoreset"])
        if state["np_random"] is None:
            self._np_random = None
        else:
            bit_generator = getattr(np.random, state["np_random"]["bit_generator"])()
            bit_generator.state = state["np_random"]
            self._np_random = np.random.Generator(bit_generator)
        self._np_random_seed = state["np_random_seed"]

    # -- Gymnasium API ------------------------------------------------------------------------
    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Reset games and return the first observations and infos.

        Args:
            seed: None (games that were seeded move on to their next episode; others draw a
                seed from ``np_random``), an int ``s`` (game i gets ``s + i``), or a list of
                N ints or Nones.
            options: ``{"level": int or N ints}`` forces level ids; ``{"reset_mask": (N,) bool}``
                resets only the masked games (seeds and levels of the others are ignored).
        """
        n = self.num_envs
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            super().reset(seed=int(seed))
            seeds: list[int | None] = [int(seed) + i for i in range(n)]
        elif seed is None:
            seeds = [None] * n
        else:
            seeds = list(seed)
            if len(seeds) != n:
                raise ValueError(
                    f"a list of seeds must have num_envs={n} entries, got {len(seeds)}"
                )
            for s in seeds:
                if s is not None and (isinstance(s, bool) or not isinstance(s, (int, np.integer))):
                    raise ValueError(f"seeds must be ints or None, got {s!r}")

        options = dict(options or {})
        unknown = set(options) - {"level", "reset_mask"}
        if unknown:
            raise ValueError(
                f"unknown reset option(s) {sorted(unknown)}; allowed: 'level', 'reset_mask'"
            )
        mask = np.ones(n, dtype=bool)
        if "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (n,) or mask.dtype != np.bool_:
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({n},), got {mask!r}"
                )
            if not mask.any():
                raise ValueError("options['reset_mask'] must select at least one game")
        level = None
        if "level" in options:
            level = (
                np.broadcast_to(np.asarray(options["level"]), (n,))
                if np.ndim(options["level"]) == 0
                else np.asarray(options["level"])
            )
            if (
                level.shape != (n,)
                or not np.issubdtype(level.dtype, np.integer)
                or (level < 0).any()
            ):
                raise ValueError(
                    f"options['level'] must be a non-negative int or {n} non-negative ints, got {options['level']!r}"
                )

        index = np.flatnonzero(mask)
        given = np.array([seeds[i] is not None for i in index], dtype=bool)
        fresh = ~given & ~self._seeded[index]
        if given.any() or fresh.any():
            base = np.zeros(index.size, dtype=np.uint64)
            for j in np.flatnonzero(given):
                base[j] = np.uint64(int(seeds[index[j]]) % 2**64)
            if fresh.any():
                base[fresh] = self.np_random.integers(
                    0, 2**63, size=int(fresh.sum()), dtype=np.int64
                ).astype(np.uint64)
            restart = given | fresh
            self._seeded[index[restart]] = True
            # Seeded games restart their level sequence; the others move on to their next episode.
            self._reset_games(
                index[restart], base[restart], None if level is None else level[index[restart]]
            )
            index = index[~restart]
        self._reset_games(index, None, None if level is None else level[index])
        self._autoreset[mask] = False
        self._started = True
        return self._observation(), self._infos(np.zeros(n, dtype=bool))

    def step(
        self, actions: Any
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every game with ``actions`` (``(N,)`` ints in ``0..4``) and autoreset finished ones."""
        if not self._started:
            raise ResetNeeded("call reset() before step(): the games have not started")
        actions = self._validate(actions)
        game = self.game
        out = game.step(actions)
        reward, terminated, truncated, success = (
            out.reward,
            out.terminated,
            out.truncated,
            out.success,
        )
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            if self._autoreset.any():
                # Games that ended last step start their next episode now; their action is ignored.
                index = np.flatnonzero(self._autoreset)
                game.reset(index)
                reward[index] = 0.0
                terminated[index] = truncated[index] = success[index] = False
            np.logical_or(terminated, truncated, out=self._autoreset)
            return self._observation(), reward, terminated, truncated, self._infos(success)

        done = terminated | truncated
        infos = self._infos(success)
        if done.any():
            index = np.flatnonzero(done)
            images, tokens = game.images(copy=False), game.tokens
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in index.tolist():
                final_obs[i] = {"image": images[i].copy(), "text": tokens[i].copy()}
            final_info = {}
            for key in _INFO_KEYS:
                value = infos[key]
                kept = (
                    np.zeros_like(value)
                    if value.dtype != object
                    else np.full(self.num_envs, None, dtype=object)
                )
                kept[index] = value[index]
                final_info[key], final_info[f"_{key}"] = kept, done.copy()
            game.reset(index)
            infos = self._infos(np.where(done, False, success))
            infos["final_obs"], infos["_final_obs"] = final_obs, done
            infos["final_info"], infos["_final_info"] = final_info, done.copy()
        return self._observation(), reward, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """With ``render_mode="rgb_array"``: a tuple of the N current observation frames."""
        if self.render_mode is None:
            return None
        return tuple(self.game.images(copy=True))

    # -- helpers ------------------------------------------------------------------------------
    def _reset_games(
        self, index: np.ndarray, base: np.ndarray | None, level: np.ndarray | None
    ) -> None:
        if index.size == 0:
            return
        if level is not None:
            level = level.astype(np.int64)
        if base is not None:
            self.game.reset(index, base, level)
        elif level is not None:
            self.game.reset(index, None, level)
        else:
            self.game.reset(index)

    def _validate(self, actions: Any) -> np.ndarray:
        n = self.num_envs
        arr = np.asarray(actions)
        if arr.shape != (n,):
            raise InvalidAction(
                f"actions must have shape ({n},) (one action per game, num_envs={n}), got shape {arr.shape}"
            )
        if arr.dtype == np.int64:
            # One comparison catches both ends: negative values wrap to huge unsigned ones.
            if (arr.view(np.uint64) >= NUM_ACTIONS).any():
                raise InvalidAction(self._range_message(arr))
            return arr
        if arr.dtype == np.bool_ or not (
            np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        ):
            raise InvalidAction(
                f"actions must be integers in 0..{NUM_ACTIONS - 1}, got dtype {arr.dtype}"
            )
        if np.issubdtype(arr.dtype, np.floating) and not np.array_equal(arr, np.floor(arr)):
            raise InvalidAction(
                f"actions must be whole numbers in 0..{NUM_ACTIONS - 1}, got {arr!r}"
            )
        if ((arr < 0) | (arr >= NUM_ACTIONS)).any():
            raise InvalidAction(self._range_message(arr))
        return arr.astype(np.int64)

    @staticmethod
    def _range_message(arr: np.ndarray) -> str:
        bad = np.flatnonzero((arr < 0) | (arr >= NUM_ACTIONS))
        return (
            f"actions must lie in 0..{NUM_ACTIONS - 1} (0=LEFT 1=RIGHT 2=FORWARD 3=BACKWARD 4=STOP); "
            f"game {int(bad[0])} got {arr[bad[0]].item()!r}"
        )

    def _observation(self) -> dict[str, np.ndarray]:
        game = self.game
        if self.copy:
            return {"image": game.images(copy=True), "text": game.tokens.copy()}
        return {"image": game.images(copy=False), "text": game.tokens}

    def _infos(self, success: np.ndarray) -> dict[str, Any]:
        game, n = self.game, self.num_envs
        return {
            "task": game.task_names(),
            "_task": np.ones(n, dtype=bool),
            "instruction": game.instruction_array.copy(),
            "_instruction": np.ones(n, dtype=bool),
            "success": success,
            "_success": np.ones(n, dtype=bool),
            "gold_left": game.gold_left(),
            "_gold_left": np.ones(n, dtype=bool),
            "level": game.state.level.copy(),
            "_level": np.ones(n, dtype=bool),
        }


class PenguinBareVectorEnv(PenguinVectorEnv):
    """``Penguin-Bare-v0`` as a native vector env (see :class:`PenguinVectorEnv`)."""

    env_id = "Penguin-Bare-v0"

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        super().__init__(self.env_id, num_envs, **kwargs)


class PenguinGoldVectorEnv(PenguinVectorEnv):
    """``Penguin-Gold-v0`` as a native vector env (see :class:`PenguinVectorEnv`)."""

    env_id = "Penguin-Gold-v0"

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        super().__init__(self.env_id, num_envs, **kwargs)


class PenguinWallsVectorEnv(PenguinVectorEnv):
    """``Penguin-Walls-v0`` as a native vector env (see :class:`PenguinVectorEnv`)."""

    env_id = "Penguin-Walls-v0"

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        super().__init__(self.env_id, num_envs, **kwargs)


class PenguinLangVectorEnv(PenguinVectorEnv):
    """``Penguin-Lang-v0`` as a native vector env (see :class:`PenguinVectorEnv`)."""

    env_id = "Penguin-Lang-v0"

    def __init__(self, num_envs: int = 1, **kwargs: Any) -> None:
        super().__init__(self.env_id, num_envs, **kwargs)


VECTOR_ENV_CLASSES: dict[str, type[PenguinVectorEnv]] = {
    cls.env_id: cls
    for cls in (
        PenguinBareVectorEnv,
        PenguinGoldVectorEnv,
        PenguinWallsVectorEnv,
        PenguinLangVectorEnv,
    )
}
