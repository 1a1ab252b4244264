"""A wrapper that draws the solver's remaining path on rendered frames (for play and videos)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from fake_traces import solver
from penguin_env.core import GameState, Rules, step
from penguin_env.render import COLORS

_NO_LIMIT = Rules(max_steps=np.iinfo(np.int64).max)


def path_cells(game: GameState) -> list[tuple[int, int]]:
    """Interior cells the penguin visits along the solver's plan, starting where it stands.

    Consecutive repeats (turns, the final STOP) are dropped; empty if the game is won or
    cannot be won.
    """
    try:
        actions = solver.plan(game)
    except solver.Unsolvable:
        return []
    game = game.copy()
    cells = [tuple(int(v) for v in game.pos[0])]
    for a in actions:
        step(game, np.array([a]), _NO_LIMIT)
        cell = tuple(int(v) for v in game.pos[0])
        if cell != cells[-1]:
            cells.append(cell)
    return cells if len(cells) > 1 else []


def draw_polyline(
    frame: np.ndarray, points: list[tuple[float, float]], color: tuple[int, int, int], width: int
) -> None:
    """Draw straight segments between pixel ``points`` (x, y) into ``frame`` in place."""
    h, w = frame.shape[:2]
    r = width // 2
    for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=True):
        n = int(max(abs(x1 - x0), abs(y1 - y0))) * 2 + 2
        t = np.linspace(0.0, 1.0, n)
        xs = np.rint(x0 + (x1 - x0) * t).astype(np.int64)
        ys = np.rint(y0 + (y1 - y0) * t).astype(np.int64)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                frame[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)] = color


class SolverPathOverlay(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Draw the solver's remaining path as a blue polyline on ``render()`` frames.

    Works with ``render_mode="rgb_array"`` (the returned frame carries the line) and
    ``"human"`` (the window shows it). The line joins the centres of the cells the penguin
    will visit on a shortest plan from the current state; observations are not changed.

    Args:
        env: a Penguin env (possibly wrapped).
        width: line width in pixels.
    """

    def __init__(self, env: gym.Env, width: int = 3) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, width=width)
        super().__init__(env)
        if not hasattr(env.unwrapped, "game"):
            raise TypeError(
                "SolverPathOverlay needs a Penguin env (made with gym.make('Penguin-...'))"
            )
        self.width = width

    def _overlay(self, frame: np.ndarray) -> np.ndarray:
        base = self.env.unwrapped
        game = base.game.state
        cells = path_cells(game.take(slice(0, 1)))
        if not cells:
            return frame
        cell = frame.shape[1] // (game.size + 2)  # render frames show the room, outer ring included
        frame = frame.copy()
        points = [((x + 1.5) * cell, (y + 1.5) * cell) for x, y in cells]
        draw_polyline(frame, points, COLORS["hint"], self.width)
        return frame

    def render(self) -> Any:
        mode = self.env.unwrapped.render_mode
        if mode == "rgb_array":
            return self._overlay(self.env.render())
        if mode == "human":
            base = self.env.unwrapped
            base._show(self._overlay(base._frame()))
            return None
        return self.env.render()
