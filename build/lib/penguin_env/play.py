"""Play a Penguin env by hand in a pygame window, or watch an agent play.

Usage::

    python -m penguin_env.play --env Penguin-Lang-v0 --seed 3

Keys: LEFT/RIGHT turn, UP moves forward, DOWN moves backward, SPACE is STOP, ``r`` restarts
the same level, ``n`` goes to the next level, Esc or closing the window quits. With an agent
(``PlaySession(agent=...)``, ``penguin play --agent CKPT``) the agent moves, SPACE pauses and
resumes, ``s`` takes one step and pauses, and a finished episode moves on to the next level.

:class:`PlaySession` holds the game and the window; :meth:`PlaySession.run` processes pygame's
event queue, so a test can post key events and drive it headless (``SDL_VIDEODRIVER=dummy``).
Without a display, SDL would quietly draw into an offscreen buffer that nobody sees; the session
refuses (:class:`NoDisplayError`) unless a headless driver was asked for in ``SDL_VIDEODRIVER``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402  (after the environment variable that silences its banner)

import penguin_env  # noqa: E402  (registers the ids)
from penguin_env.core import Action  # noqa: E402
from penguin_env.env import PenguinEnv  # noqa: E402
from penguin_env.text_overlay import text_band  # noqa: E402

#: pygame key -> game action.
KEY_ACTIONS: dict[int, Action] = {
    pygame.K_LEFT: Action.LEFT,
    pygame.K_RIGHT: Action.RIGHT,
    pygame.K_UP: Action.FORWARD,
    pygame.K_DOWN: Action.BACKWARD,
    pygame.K_SPACE: Action.STOP,
}
HELP_LINES = ("arrows: turn / move   space: stop", "r: restart   n: next level   esc: quit")
AGENT_HELP_LINES = ("space: pause / resume   s: one step", "r: restart   n: next level   esc: quit")
MAX_WINDOW = 900  #: frames wider or taller than this are scaled down to fit
HEADLESS_DRIVERS = ("offscreen", "dummy")  #: SDL video drivers that show no window

#: An agent: the env's observation (``image`` array and ``text`` string) -> an action id.
Agent = Callable[[dict[str, Any]], int]


class NoDisplayError(RuntimeError):
    """No display to open a window on, and no headless driver was asked for."""


def check_display() -> None:
    """Raise :class:`NoDisplayError` if SDL fell back to a driver that shows no window although
    ``SDL_VIDEODRIVER`` did not ask for one (call after ``pygame.display.init()``)."""
    driver = pygame.display.get_driver()
    if driver in HEADLESS_DRIVERS and not os.environ.get("SDL_VIDEODRIVER"):
        raise NoDisplayError(
            f"no display found (SDL fell back to its {driver!r} video driver, so no window would "
            "appear); run this where a display is available (check DISPLAY or WAYLAND_DISPLAY), "
            "or set SDL_VIDEODRIVER=dummy to run without a window on purpose"
        )


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gym.make(env_id, render_mode="rgb_array", **env_kwargs)`` for a Penguin id.

    Raises:
        ValueError: if ``env_id`` is not registered or is not a Penguin env.
    """
    module, _, name = env_id.rpartition(":")  # gym.make's "module:Env-v0" form imports module first
    if module:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ValueError(f"cannot import {module!r} for env id {env_id!r}: {err}") from err
    if name not in gym.registry:
        raise ValueError(
            f"unknown env id {env_id!r}; registered Penguin ids: {list(penguin_env.ENV_IDS)}"
        )
    env = gym.make(env_id, render_mode="rgb_array", **(env_kwargs or {}))
    if not isinstance(env.unwrapped, PenguinEnv):
        env.close()
        raise ValueError(
            f"{env_id!r} is not a Penguin env; play supports {list(penguin_env.ENV_IDS)}"
        )
    return env


class PlaySession:
    """One window, one env, and the keyboard between them.

    Args:
        env_id: a registered Penguin id.
        seed: seed of the first ``reset`` (None: random).
        env_kwargs: keyword arguments for ``gym.make`` (``size``, ``hint``, ...).
        fps: frame rate cap of :meth:`run` (0: no cap, for tests).
        state: if given, the first episode starts from this state dict (``set_state``).
        agent: if given, it plays instead of the keyboard (see the module docstring).
        agent_name: shown in the window (e.g. the checkpoint's trainer).
        agent_speed: agent steps per second (0: one step per frame).
        agent_hold: seconds a finished episode stays on screen before the next level.

    Raises:
        NoDisplayError: no display and ``SDL_VIDEODRIVER`` does not ask for a headless driver.
    """

    def __init__(
        self,
        env_id: str = "Penguin-Lang-v0",
        seed: int | None = None,
        env_kwargs: dict[str, Any] | None = None,
        fps: int = 30,
        state: dict[str, Any] | None = None,
        agent: Agent | None = None,
        agent_name: str = "agent",
        agent_speed: float = 4.0,
        agent_hold: float = 1.5,
    ) -> None:
        self.env = make_env(env_id, env_kwargs)
        self.game: PenguinEnv = self.env.unwrapped  # type: ignore[assignment]
        self.env_id, self.fps = env_id, fps
        self.agent, self.agent_name = agent, agent_name
        self.agent_speed, self.agent_hold = agent_speed, agent_hold
        self.paused = False
        self._next_agent_time = 0.0
        self.obs, _ = self.env.reset(seed=seed)
        if state is not None:
            self.game.set_state(state)
            self.obs = self.game._observation()
        self.start_state = self.game.get_state()
        self._episode_start()
        self.running = True
        self.frames = 0
        self._screen: pygame.Surface | None = None
        self._clock: pygame.time.Clock | None = None
        self.draw()  # open the window now, so key events can be queued before run()

    # -- game ------------------------------------------------------------------------------
    def _episode_start(self) -> None:
        self.steps = 0
        self.last_reward = 0.0
        self.episode_return = 0.0
        self.done = False
        self.success = False
        self.last_action: Action | None = None

    def act(self, action: Action | int) -> None:
        """Take one game step (ignored once the episode is over: press ``r`` or ``n``)."""
        if self.done:
            return
        self.obs, reward, terminated, truncated, info = self.env.step(int(action))
        self.last_action = Action(int(action))
        self.steps += 1
        self.last_reward = float(reward)
        self.episode_return += float(reward)
        self.done = bool(terminated or truncated)
        self.success = bool(info["success"])

    def restart(self) -> None:
        """Play the current level again from its first state."""
        self.game.set_state(self.start_state)
        self.obs = self.game._observation()
        self._episode_start()

    def next_level(self) -> None:
        """Move on to the next level of the seeded sequence."""
        self.obs, _ = self.env.reset()
        self.start_state = self.game.get_state()
        self._episode_start()

    def agent_step(self) -> None:
        """Let the agent take one step (nothing without an agent or once the episode is over)."""
        if self.agent is not None and not self.done:
            self.act(int(self.agent(self.obs)))

    def _tick_agent(self) -> None:
        """Between frames: the agent's next step when due; after an episode, the next level."""
        if self.agent is None or self.paused:
            return
        now = time.monotonic()
        if now < self._next_agent_time:
            return
        if self.done:
            self.next_level()
        else:
            self.agent_step()
        wait = self.agent_hold if self.done else (1 / self.agent_speed if self.agent_speed > 0 else 0)
        self._next_agent_time = now + wait

    def handle_key(self, key: int) -> None:
        """React to one key press."""
        if key == pygame.K_ESCAPE:
            self.running = False
        elif key == pygame.K_r:
            self.restart()
        elif key == pygame.K_n:
            self.next_level()
        elif self.agent is not None:
            if key == pygame.K_SPACE:
                self.paused = not self.paused
            elif key == pygame.K_s:
                self.paused = True
                self.agent_step()
        elif key in KEY_ACTIONS:
            self.act(KEY_ACTIONS[key])

    # -- screen ----------------------------------------------------------------------------
    def status_lines(self) -> list[str]:
        """The lines written under the room."""
        info = self.game.game
        if self.done:
            outcome = "SUCCESS" if self.success else "failed"
            result = f"{outcome}: press r to retry or n for the next level"
        else:
            result = "success: not yet"
        head = f"{self.env_id}  level {int(info.state.level[0])}  gold left {int(info.gold_left()[0])}"
        if self.agent is None:
            return [head, result, *HELP_LINES]
        playing = "PAUSED" if self.paused else "playing"
        return [head, f"{result}   {self.agent_name}: {playing}", *AGENT_HELP_LINES]

    def frame(self) -> np.ndarray:
        """The picture shown in the window: the env's render frame and a status band."""
        room = self.env.render()  # instruction, step count, reward and return are written on it
        band = text_band(self.status_lines(), room.shape[1], line_px=18)
        return np.concatenate([room, band], axis=0)

    def draw(self) -> None:
        """Draw the current frame into the window (opened on first use)."""
        frame = self.frame()
        h, w = frame.shape[:2]
        scale = min(1.0, MAX_WINDOW / max(h, w))
        size = (max(1, int(w * scale)), max(1, int(h * scale)))
        if self._screen is None or self._screen.get_size() != size:
            pygame.display.init()
            try:
                check_display()
            except NoDisplayError:
                pygame.display.quit()
                raise
            pygame.display.set_caption(f"Penguin: {self.env_id}")
            self._screen = pygame.display.set_mode(size)
            self._clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(frame.transpose(1, 0, 2))
        if scale < 1.0:
            surface = pygame.transform.smoothscale(surface, size)
        self._screen.blit(surface, (0, 0))
        pygame.display.flip()

    def run(self, max_frames: int | None = None) -> int:
        """Process events and redraw until quit (or ``max_frames`` frames); returns frames drawn."""
        drawn = 0
        while self.running and (max_frames is None or drawn < max_frames):
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    self.running = False
                elif event.type == pygame.KEYDOWN:
                    self.handle_key(event.key)
                if not self.running:
                    break
            if not self.running:
                break
            self._tick_agent()
            self.draw()
            drawn += 1
            self.frames += 1
            if self._clock is not None and self.fps > 0:
                self._clock.tick(self.fps)
        return drawn

    def close(self) -> None:
        """Close the env and the window."""
        self.env.close()
        if self._screen is not None:
            pygame.display.quit()
            self._screen = None


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of ``python -m penguin_env.play``."""
    p = argparse.ArgumentParser(
        prog="python -m penguin_env.play",
        description="Play a Penguin env by hand. Keys: LEFT/RIGHT turn, UP forward, DOWN backward, "
        "SPACE stop, r restart the level, n next level, Esc quit.",
    )
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser, env_default: str | None = "Penguin-Lang-v0") -> None:
    """Add the env and window options of :func:`build_parser` to ``p`` (``penguin play`` adds its
    own). ``env_default=None`` leaves the choice of env to the caller (Penguin-Lang-v0 if it has
    none)."""
    shown = env_default or "the agent's env with --agent, else Penguin-Lang-v0"
    p.add_argument(
        "--env",
        default=env_default,
        help=f"env id, one of {list(penguin_env.ENV_IDS)} (default: {shown})",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="seed of the first reset (default: random)"
    )
    p.add_argument("--size", type=int, default=None, help="interior cells per side (3..32)")
    p.add_argument(
        "--max-steps", type=int, default=None, help="truncate episodes after this many steps"
    )
    p.add_argument(
        "--step-penalty", type=float, default=None, help="subtracted from the reward at every step"
    )
    p.add_argument(
        "--paraphrases",
        choices=["train", "test", "all"],
        default=None,
        help="instruction phrasings",
    )
    p.add_argument(
        "--num-levels", type=int, default=None, help="play only this many levels (0 = unlimited)"
    )
    p.add_argument("--start-level", type=int, default=None, help="first level id")
    p.add_argument(
        "--radius", type=int, default=None, help="Penguin-Bare-v0 only: gold within this many cells"
    )
    p.add_argument(
        "--hint", action="store_true", help="draw a blue line from the penguin to the nearest gold"
    )
    p.add_argument("--fps", type=int, default=30, help="frame rate cap (default: %(default)s)")
    p.add_argument(
        "--max-frames",
        type=int,
        default=None,
        help="quit after this many frames (for scripted runs)",
    )


def env_kwargs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``gym.make`` keyword arguments given on the command line (unset options omitted)."""
    names = (
        "size",
        "max_steps",
        "step_penalty",
        "paraphrases",
        "num_levels",
        "start_level",
        "radius",
    )
    kwargs = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    if args.hint:
        kwargs["hint"] = True
    return kwargs


def play(open_session: Callable[[], PlaySession], prog: str, max_frames: int | None = None) -> int:
    """Open a window with ``open_session``, play until it closes (or ``max_frames``) and clean
    up; the exit code: 0, or 1 with a one-line error on stderr when there is no display."""
    try:
        session = open_session()
    except NoDisplayError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    try:
        session.run(max_frames=max_frames)
    finally:
        session.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m penguin_env.play``."""
    parser = build_parser()
    args = parser.parse_args(argv)

    def open_session() -> PlaySession:
        try:
            return PlaySession(args.env, seed=args.seed, env_kwargs=env_kwargs_from_args(args), fps=args.fps)
        except (ValueError, TypeError) as err:
            parser.error(str(err))

    return play(open_session, parser.prog, args.max_frames)


if __name__ == "__main__":
    sys.exit(main())
