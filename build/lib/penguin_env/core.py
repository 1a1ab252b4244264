"""The game rules, written once over a leading batch axis.

Every array in :class:`GameState` has the batch axis first, so the same code steps one game
(the single Gymnasium env), N games (the vector env) or every state of a level at once (the
solver's breadth-first search). Nothing here knows about Gymnasium, rendering or seeds.

Coordinates: ``x`` grows to the right, ``y`` grows downward, and ``(0, 0)`` is the top-left
*interior* cell. ``walls`` includes the outer ring, so the wall flag of interior cell ``(x, y)``
is ``walls[n, y + 1, x + 1]``.

Movement rule: a move (forward or backward, straight or diagonal) is blocked only when the
target cell is a wall; diagonal moves may pass between two walls that touch at a corner.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields

import numpy as np


class Action(enum.IntEnum):
    """The five actions of ``Discrete(5)``."""

    LEFT = 0  #: turn 45 degrees counter-clockwise
    RIGHT = 1  #: turn 45 degrees clockwise
    FORWARD = 2  #: move one cell along the heading
    BACKWARD = 3  #: move one cell against the heading
    STOP = 4  #: declare the instruction done; ends the episode


class Task(enum.IntEnum):
    """The four tasks an instruction can ask for."""

    COLLECT = 0
    FACE = 1
    FACE_AWAY = 2
    CORNER = 3


TASK_NAMES: tuple[str, ...] = ("collect", "face", "face_away", "corner")
HEADING_NAMES: tuple[str, ...] = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
CORNER_NAMES: tuple[str, ...] = ("top left", "top right", "bottom left", "bottom right")
NUM_ACTIONS = len(Action)
NUM_HEADINGS = 8

# Unit steps per heading, clockwise from north (y grows downward).
DX = np.array([0, 1, 1, 1, 0, -1, -1, -1], dtype=np.int64)
DY = np.array([-1, -1, 0, 1, 1, 1, 0, -1], dtype=np.int64)


def default_max_steps(size: int) -> int:
    """Episode length limit used when ``max_steps`` is not given (MiniGrid's ``4 * size**2``)."""
    return 4 * size * size


def corner_cells(corner: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Interior ``(x, y)`` of corners 0..3 (top left, top right, bottom left, bottom right)."""
    corner = np.asarray(corner)
    x = np.where(corner % 2 == 1, size - 1, 0)
    y = np.where(corner >= 2, size - 1, 0)
    return x, y


def bearing_sector(dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Heading index (0..7) of the 45-degree sector that contains the bearing ``(dx, dy)``.

    Sector ``h`` spans ``h * 45 +- 22.5`` degrees clockwise from north. Integer offsets never
    fall on a sector boundary (``tan 22.5`` is irrational), so there are no ties.
    """
    angle = np.arctan2(dx, -dy)  # clockwise from north, because y grows downward
    return np.rint(angle / (np.pi / 4)).astype(np.int64) % NUM_HEADINGS


@dataclass
class GameState:
    """The state of N games, one array per field with the batch axis first.

    Attributes:
        walls: ``(N, size + 2, size + 2)`` bool, True for wall; includes the outer ring.
        pos: ``(N, 2)`` int64 interior ``(x, y)`` of the penguin.
        heading: ``(N,)`` int64 in 0..7, clockwise from north.
        gold: ``(N, K, 2)`` int64 interior ``(x, y)`` of each gold piece.
        gold_left: ``(N, K)`` bool, True while that piece has not been collected.
        task: ``(N,)`` int64 :class:`Task`.
        corner: ``(N,)`` int64 target corner (0..3) of a corner task.
        phrase: ``(N,)`` int64 index of the instruction's paraphrase for its task.
        steps: ``(N,)`` int64 steps taken in the current episode.
        level: ``(N,)`` int64 id of the level the episode was generated from.
    """

    walls: np.ndarray
    pos: np.ndarray
    heading: np.ndarray
    gold: np.ndarray
    gold_left: np.ndarray
    task: np.ndarray
    corner: np.ndarray
    phrase: np.ndarray
    steps: np.ndarray
    level: np.ndarray

    @property
    def num(self) -> int:
        """Number of games in the batch."""
        return int(self.pos.shape[0])

    @property
    def size(self) -> int:
        """Interior side length of the room."""
        return int(self.walls.shape[1] - 2)

    @property
    def num_gold(self) -> int:
        """Gold pieces per game (``K``)."""
        return int(self.gold.shape[1])

    def copy(self) -> GameState:
        """A deep copy (every array copied)."""
        return GameState(**{f.name: getattr(self, f.name).copy() for f in fields(self)})

    def take(self, index: np.ndarray | slice) -> GameState:
        """The games at ``index`` as a new state (arrays copied)."""
        return GameState(**{f.name: getattr(self, f.name)[index].copy() for f in fields(self)})

    def put(self, index: np.ndarray, other: GameState) -> None:
        """Overwrite the games at ``index`` with the games of ``other`` (same order)."""
        for f in fields(self):
            getattr(self, f.name)[index] = getattr(other, f.name)

    @staticmethod
    def concatenate(states: list[GameState]) -> GameState:
        """Stack several batches along the batch axis."""
        return GameState(
            **{f.name: np.concatenate([getattr(s, f.name) for s in states]) for f in fields(GameState)}
        )


@dataclass(frozen=True)
class Rules:
    """Episode settings that are not part of a level.

    Attributes:
        max_steps: the episode is truncated after this many steps.
        step_penalty: subtracted from the reward at every step.
    """

    max_steps: int
    step_penalty: float = 0.0


@dataclass
class StepOutcome:
    """What one batched step produced; every array has shape ``(N,)``."""

    reward: np.ndarray  #: float64
    terminated: np.ndarray  #: bool: the task succeeded, failed by STOP, or all gold collected
    truncated: np.ndarray  #: bool: ``max_steps`` reached without termination
    success: np.ndarray  #: bool: the instruction was carried out on this step
    prev_pos: np.ndarray  #: ``(N, 2)`` penguin cell before the step (the renderer redraws it)


def stop_succeeds(state: GameState) -> np.ndarray:
    """Whether STOP in the current state would carry out each game's instruction.

    Face tasks look at the first gold piece; standing on it gives no bearing, so they fail there.
    Collect tasks never succeed by STOP.
    """
    x, y = state.pos[:, 0], state.pos[:, 1]
    dx = state.gold[:, 0, 0] - x
    dy = state.gold[:, 0, 1] - y
    toward = bearing_sector(dx, dy)
    has_bearing = (dx != 0) | (dy != 0)
    face_ok = has_bearing & (state.heading == toward)
    away_ok = has_bearing & (state.heading == (toward + 4) % NUM_HEADINGS)
    cx, cy = corner_cells(state.corner, state.size)
    corner_ok = (x == cx) & (y == cy)
    task = state.task
    return (
        ((task == Task.FACE) & face_ok)
        | ((task == Task.FACE_AWAY) & away_ok)
        | ((task == Task.CORNER) & corner_ok)
    )


def step(state: GameState, actions: np.ndarray, rules: Rules) -> StepOutcome:
    """Apply one action per game, in place, and return what happened.

    Gold is collected only in collect tasks; in the other tasks it is a landmark the penguin
    may walk over. Actions must already be validated integers in ``0..4``.
    """
    actions = np.asarray(actions, dtype=np.int64)
    n = state.num
    prev_pos = state.pos.copy()

    turn = (actions == Action.RIGHT).astype(np.int64) - (actions == Action.LEFT)
    state.heading += turn
    state.heading %= NUM_HEADINGS

    move = (actions == Action.FORWARD).astype(np.int64) - (actions == Action.BACKWARD)
    tx = prev_pos[:, 0] + move * DX[state.heading]
    ty = prev_pos[:, 1] + move * DY[state.heading]
    # The outer wall ring makes every one-cell move index inside the walls array.
    blocked = state.walls[np.arange(n), ty + 1, tx + 1]
    state.pos[:, 0] = np.where(blocked, prev_pos[:, 0], tx)
    state.pos[:, 1] = np.where(blocked, prev_pos[:, 1], ty)

    is_collect = state.task == Task.COLLECT
    on_gold = (state.gold == state.pos[:, None, :]).all(axis=2) & state.gold_left
    hit = on_gold & is_collect[:, None]
    state.gold_left &= ~hit
    collected = hit.sum(axis=1)
    all_collected = is_collect & ~state.gold_left.any(axis=1)

    stop = actions == Action.STOP
    stop_success = stop & stop_succeeds(state)
    success = all_collected | stop_success
    terminated = all_collected | stop

    state.steps += 1
    truncated = ~terminated & (state.steps >= rules.max_steps)
    reward = collected + stop_success - rules.step_penalty
    return StepOutcome(
        reward=reward.astype(np.float64),
        terminated=terminated,
        truncated=truncated,
        success=success,
        prev_pos=prev_pos,
    )
