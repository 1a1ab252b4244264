"""The Gymnasium env classes: thin faces over the batched engine (the N=1 case)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from penguin_env import state as state_io
from penguin_env.config import EnvConfig, make_config
from penguin_env.core import NUM_ACTIONS
from penguin_env.engine import BatchGame
from penguin_env.instructions import text_space
from penguin_env.render import BatchRenderer, ansi_map
from penguin_env.text_overlay import text_band

RENDER_CELL = 32  #: pixels per cell of ``render()`` frames


class InvalidAction(ValueError):
    """An action outside ``Discrete(5)`` (or of the wrong shape) was given to ``step``."""


def validate_action(action: Any) -> int:
    """The action as a Python int in ``0..4``, or :class:`InvalidAction` saying what was wrong."""
    arr = np.asarray(action)
    integral_float = (
        np.issubdtype(arr.dtype, np.floating) and arr.shape == () and float(arr).is_integer()
    )
    if arr.shape != () or not (np.issubdtype(arr.dtype, np.integer) or integral_float):
        raise InvalidAction(
            f"action must be a single integer in 0..{NUM_ACTIONS - 1} (Discrete({NUM_ACTIONS})), got {action!r}"
        )
    if isinstance(action, bool) or arr.dtype == bool:
        raise InvalidAction(
            f"action must be an integer in 0..{NUM_ACTIONS - 1}, got the boolean {action!r}"
        )
    value = int(arr)
    if not 0 <= value < NUM_ACTIONS:
        raise InvalidAction(
            f"action {value} is outside Discrete({NUM_ACTIONS}): use 0=LEFT 1=RIGHT 2=FORWARD 3=BACKWARD 4=STOP"
        )
    return value


def _check_episode(episode: Any) -> dict[str, Any]:
    """Validate the env-level ``state["episode"]`` dict of :meth:`PenguinEnv.get_state`."""
    if not isinstance(episode, dict):
        raise state_io.StateError(f"state['episode'] must be a dict, got {type(episode).__name__}")
    allowed = ("seed_base", "index", "done", "return")
    unknown = sorted(set(episode) - set(allowed))
    if unknown:
        raise state_io.StateError(
            f"state['episode'] has unknown key(s) {unknown}; allowed: {list(allowed)}"
        )

    def is_int(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if "seed_base" in episode and not (
        is_int(episode["seed_base"]) and 0 <= episode["seed_base"] < 2**64
    ):
        raise state_io.StateError(
            f"state['episode']['seed_base'] must be an int in 0..2**64-1, got {episode['seed_base']!r}"
        )
    if "index" in episode and not (is_int(episode["index"]) and 0 <= episode["index"] < 2**62):
        raise state_io.StateError(
            f"state['episode']['index'] must be an int >= 0, got {episode['index']!r}"
        )
    if "done" in episode and not isinstance(episode["done"], bool):
        raise state_io.StateError(
            f"state['episode']['done'] must be True or False, got {episode['done']!r}"
        )
    if "return" in episode:
        ret = episode["return"]
        if (
            isinstance(ret, bool)
            or not isinstance(ret, (int, float, np.integer, np.floating))
            or not np.isfinite(ret)
        ):
            raise state_io.StateError(
                f"state['episode']['return'] must be a finite number, got {ret!r}"
            )
    return episode


class PenguinEnv(gym.Env):
    """Base class of the Penguin envs; use a registered id with ``gym.make``.

    ## Description
    A penguin in a walled room turns, walks and collects gold, following a written
    instruction. One task per episode: ``collect`` every gold piece, ``face`` or ``face_away``
    from the gold and STOP, or walk to a named ``corner`` and STOP.

    ## Action Space
    ``Discrete(5)``: 0 LEFT (turn 45 degrees counter-clockwise), 1 RIGHT (clockwise),
    2 FORWARD, 3 BACKWARD (one cell along/against the heading, diagonally for diagonal
    headings; blocked only if the target cell is a wall), 4 STOP (ends the episode).

    ## Observation Space
    ``Dict(image=Box(0, 255, (S, S, 3), uint8), text=Text(max_length=64))``: a top-down
    picture (``image_size`` S, default 64) and the instruction. Wrap with
    :class:`penguin_env.wrappers.TokenizeInstruction` for integer token ids instead of text.

    ## Rewards
    +1 per gold piece collected (collect tasks), +1 for a successful STOP, minus
    ``step_penalty`` every step.

    ## Termination
    Terminates when all gold is collected or on STOP; truncates after ``max_steps``
    (default ``4 * size**2``). ``info["success"]`` tells whether the instruction was carried out.
    ``info`` also has ``task``, ``instruction``, ``gold_left`` and ``level``.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "render_modes": ["rgb_array", "human", "ansi"],
        "render_fps": 8,
    }
    env_id: ClassVar[str] = ""

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if not self.env_id:
            raise TypeError(
                "PenguinEnv is abstract: use gym.make('Penguin-Gold-v0') or a variant class"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.config: EnvConfig = make_config(self.env_id, kwargs)
        self.render_mode = render_mode
        self.game = BatchGame(self.env_id, self.config, num=1)
        s = self.config.image_size
        self.observation_space = spaces.Dict(
            {"image": spaces.Box(0, 255, (s, s, 3), dtype=np.uint8), "text": text_space()}
        )
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self._seeded = False
        self._needs_reset = True
        self._last_reward = 0.0
        self._return = 0.0
        self._success = False
        self._big: BatchRenderer | None = None
        self._window = None
        self._clock = None

    # -- Gymnasium API ----------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode. ``options={"level": k}`` plays level id ``k``."""
        super().reset(seed=seed)
        level = None
        if options:
            unknown = set(options) - {"level"}
            if unknown:
                raise ValueError(
                    f"unknown reset option(s) {sorted(unknown)}; the only option is 'level'"
                )
            lv = options["level"]
            if isinstance(lv, bool) or not isinstance(lv, (int, np.integer)) or lv < 0:
                raise ValueError(f"options['level'] must be a non-negative int, got {lv!r}")
            level = np.array([lv])
        base = None
        if seed is not None:
            base = np.array([seed % 2**64], dtype=np.uint64)
            self._seeded = True
        elif not self._seeded:
            base = self.np_random.integers(0, 2**63, size=1, dtype=np.int64).astype(np.uint64)
            self._seeded = True
        self.game.reset(np.array([0]), base, level)
        self._needs_reset = False
        self._last_reward, self._return, self._success = 0.0, 0.0, False
        if self.render_mode == "human":
            self.render()
        return self._observation(), self._info(False)

    def step(self, action: Any):
        if self._needs_reset:
            raise ResetNeeded(
                "call reset() before step(): the episode has not started or has ended"
            )
        a = validate_action(action)
        out = self.game.step(np.array([a], dtype=np.int64))
        reward = float(out.reward[0])
        terminated, truncated, success = (
            bool(out.terminated[0]),
            bool(out.truncated[0]),
            bool(out.success[0]),
        )
        self._needs_reset = terminated or truncated
        self._last_reward, self._success = reward, success
        self._return += reward
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, terminated, truncated, self._info(success)

    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array', 'human' or 'ansi'"
            )
            return None
        if self.render_mode == "ansi":
            return self._ansi()
        frame = self._frame()
        if self.render_mode == "rgb_array":
            return frame
        self._show(frame)
        return None

    def close(self) -> None:
        if self._window is not None:
            import pygame

            pygame.display.quit()
            self._window = None

    # -- state ------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """The full game state as a plain JSON-serialisable dict (see :mod:`penguin_env.state`)."""
        if not self._seeded:
            raise ResetNeeded("call reset() before get_state(): there is no game yet")
        d = state_io.to_dict(self.game.state, 0)
        d["episode"] = {
            "seed_base": int(self.game.seed_base[0]),
            "index": int(self.game.episode[0]),
            "done": bool(self._needs_reset),
            "return": self._return,
        }
        return d

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`get_state`; later steps are as if it had never been left.

        Raises:
            penguin_env.state.StateError: if the dict is malformed or does not fit this env.
        """
        game = state_io.from_dict(state, size=self.config.size, num_gold=self.game.variant.num_gold)
        if int(game.task[0]) not in [int(t) for t in self.game.variant.tasks]:
            raise state_io.StateError(f"task {state['task']!r} does not occur in {self.env_id}")
        if int(game.steps[0]) > self.config.episode_limit:
            raise state_io.StateError(
                f"state['steps']={state['steps']} exceeds max_steps={self.config.episode_limit}"
            )
        episode = _check_episode(state.get("episode", {}))
        self.game.load(np.array([0]), game)
        if "seed_base" in episode:
            self.game.seed_base[0] = np.uint64(int(episode["seed_base"]) % 2**64)
            self.game.episode[0] = int(episode.get("index", 0))
        self._seeded = True
        self._needs_reset = bool(episode.get("done", False))
        self._return = float(episode.get("return", 0.0))
        self._last_reward, self._success = 0.0, False

    # -- helpers ----------------------------------------------------------------------------
    def _observation(self) -> dict[str, Any]:
        return {"image": self.game.images(copy=True)[0], "text": self.game.instruction(0)}

    def _info(self, success: bool) -> dict[str, Any]:
        return {
            "task": self.game.task_name(0),
            "instruction": self.game.instruction(0),
            "success": success,
            "gold_left": int(self.game.gold_left()[0]),
            "level": int(self.game.state.level[0]),
        }

    def _status(self) -> str:
        st = self.game.state
        status = f"step {int(st.steps[0])}/{self.config.episode_limit}  reward {self._last_reward:+.2f}  return {self._return:.2f}"
        if self._needs_reset:
            status += "  SUCCESS" if self._success else "  episode over"
        return status

    def _frame(self) -> np.ndarray:
        """A larger picture of the room with the instruction and status written under it."""
        if self._big is None:
            cells = self.config.size + 2
            self._big = BatchRenderer(
                1, self.config.size, RENDER_CELL * cells, "full", self.config.hint
            )
        self._big.render_full(self.game.state)
        room = self._big.observe(self.game.state, copy=False)[0]
        band = text_band([self.game.instruction(0), self._status()], room.shape[1])
        return np.concatenate([room, band], axis=0)

    def _ansi(self) -> str:
        return f"{ansi_map(self.game.state, 0)}\n{self.game.instruction(0)}\n{self._status()}\n"

    def _show(self, frame: np.ndarray) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        if self._window is None:
            pygame.display.init()
            pygame.display.set_caption(f"{self.env_id}")
            self._window = pygame.display.set_mode((frame.shape[1], frame.shape[0]))
            self._clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(frame.transpose(1, 0, 2))
        self._window.blit(surface, (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        if self._clock is not None:
            self._clock.tick(self.metadata["render_fps"])


class PenguinBareEnv(PenguinEnv):
    """``Penguin-Bare-v0``: an empty room and one gold piece; collect it.

    ## Registered Configurations
    ``Penguin-Bare-v0``. The extra keyword ``radius`` places the gold within that many cells
    (Chebyshev distance) of the penguin: a curriculum knob (None = anywhere).
    """

    env_id = "Penguin-Bare-v0"


class PenguinGoldEnv(PenguinEnv):
    """``Penguin-Gold-v0``: an empty room and three gold pieces anywhere; collect them all.

    ## Registered Configurations
    ``Penguin-Gold-v0``.
    """

    env_id = "Penguin-Gold-v0"


class PenguinWallsEnv(PenguinEnv):
    """``Penguin-Walls-v0``: random interior wall segments and three gold pieces; collect them all.

    Unreachable pockets are filled with wall, so every floor cell (and all gold) is reachable.

    ## Registered Configurations
    ``Penguin-Walls-v0``.
    """

    env_id = "Penguin-Walls-v0"


class PenguinLangEnv(PenguinEnv):
    """``Penguin-Lang-v0``: one gold piece, empty rooms or light walls, and four tasks.

    Tasks: collect the gold; turn toward it and STOP; turn away from it and STOP; walk to a
    named corner and STOP. In the last three the gold is a landmark and is not collected.
    ``paraphrases="test"`` uses phrasings never seen with ``"train"``.

    ## Registered Configurations
    ``Penguin-Lang-v0``.
    """

    env_id = "Penguin-Lang-v0"


ENV_CLASSES: dict[str, type[PenguinEnv]] = {
    cls.env_id: cls for cls in (PenguinBareEnv, PenguinGoldEnv, PenguinWallsEnv, PenguinLangEnv)
}
