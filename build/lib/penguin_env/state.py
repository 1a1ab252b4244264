"""Plain, JSON-serialisable game states and their validation.

A state dict describes one game completely::

    {"version": 1, "size": 8,
     "walls": ["........", ...],          # interior rows, '#' wall, '.' floor
     "pos": [x, y], "heading": 0..7,
     "gold": [[x, y], ...], "gold_left": [true, ...],
     "task": "collect" | "face" | "face_away" | "corner", "corner": 0..3, "phrase": int,
     "steps": int, "level": int}

Env-level fields (seed base, episode counter, whether the episode is over) are added by the
env's ``get_state`` under ``"episode"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from penguin_env.core import CORNER_NAMES, NUM_HEADINGS, TASK_NAMES, GameState, Task
from penguin_env.instructions import PHRASES

STATE_VERSION = 1
_KEYS = (
    "version",
    "size",
    "walls",
    "pos",
    "heading",
    "gold",
    "gold_left",
    "task",
    "corner",
    "phrase",
    "steps",
    "level",
)


class StateError(ValueError):
    """A state dict is malformed or does not fit the env it is given to."""


def to_dict(state: GameState, i: int = 0) -> dict[str, Any]:
    """Game ``i`` of a batched state as a plain dict (ints, strings, lists)."""
    interior = state.walls[i, 1:-1, 1:-1]
    return {
        "version": STATE_VERSION,
        "size": state.size,
        "walls": ["".join("#" if w else "." for w in row) for row in interior.tolist()],
        "pos": [int(v) for v in state.pos[i]],
        "heading": int(state.heading[i]),
        "gold": [[int(x), int(y)] for x, y in state.gold[i]],
        "gold_left": [bool(v) for v in state.gold_left[i]],
        "task": TASK_NAMES[int(state.task[i])],
        "corner": int(state.corner[i]),
        "phrase": int(state.phrase[i]),
        "steps": int(state.steps[i]),
        "level": int(state.level[i]),
    }


def _int(d: dict, key: str, lo: int, hi: int) -> int:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise StateError(f"state[{key!r}] must be an int in {lo}..{hi}, got {value!r}")
    return int(value)


def _cell(value: Any, size: int, what: str) -> tuple[int, int]:
    if not (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        raise StateError(f"{what} must be a pair [x, y] of ints, got {value!r}")
    x, y = int(value[0]), int(value[1])
    if not (0 <= x < size and 0 <= y < size):
        raise StateError(f"{what}={value!r} lies outside the {size}x{size} room (0..{size - 1})")
    return x, y


def from_dict(d: Any, size: int | None = None, num_gold: int | None = None) -> GameState:
    """Build a batch-of-one :class:`GameState` from a state dict, checking every field.

    Args:
        d: the dict (as returned by :func:`to_dict`).
        size, num_gold: if given, the state must match them (the env's room size and gold count).

    Raises:
        StateError: naming the field that is missing, mistyped, out of range or inconsistent.
    """
    if not isinstance(d, dict):
        raise StateError(f"a state must be a dict, got {type(d).__name__}")
    missing = [k for k in _KEYS if k not in d]
    if missing:
        raise StateError(f"state is missing key(s) {missing}; expected keys {list(_KEYS)}")
    if d["version"] != STATE_VERSION:
        raise StateError(
            f"state version {d['version']!r} is not supported (expected {STATE_VERSION})"
        )
    n = _int(d, "size", 1, 64)
    if size is not None and n != size:
        raise StateError(f"state has size={n} but the env has size={size}")
    rows = d["walls"]
    if not (
        isinstance(rows, list)
        and len(rows) == n
        and all(isinstance(r, str) and len(r) == n and set(r) <= {"#", "."} for r in rows)
    ):
        raise StateError(f"state['walls'] must be {n} strings of {n} characters '#' or '.'")
    walls = np.ones((n + 2, n + 2), dtype=bool)
    walls[1:-1, 1:-1] = np.array([[ch == "#" for ch in r] for r in rows], dtype=bool)
    px, py = _cell(d["pos"], n, "state['pos']")
    if walls[py + 1, px + 1]:
        raise StateError(f"state['pos']={d['pos']} is a wall cell")
    heading = _int(d, "heading", 0, NUM_HEADINGS - 1)
    gold_list, left = d["gold"], d["gold_left"]
    if (
        not isinstance(gold_list, list)
        or not isinstance(left, list)
        or len(gold_list) != len(left)
        or not gold_list
    ):
        raise StateError(
            "state['gold'] and state['gold_left'] must be non-empty lists of the same length"
        )
    if num_gold is not None and len(gold_list) != num_gold:
        raise StateError(f"state has {len(gold_list)} gold pieces but the env has {num_gold}")
    gold = [_cell(g, n, f"state['gold'][{k}]") for k, g in enumerate(gold_list)]
    for k, (gx, gy) in enumerate(gold):
        if walls[gy + 1, gx + 1]:
            raise StateError(f"state['gold'][{k}]={list(gold[k])} is a wall cell")
    if len(set(gold)) != len(gold):
        raise StateError("state['gold'] has two pieces on the same cell")
    if not all(isinstance(v, bool) for v in left):
        raise StateError("state['gold_left'] must be a list of booleans")
    if d["task"] not in TASK_NAMES:
        raise StateError(f"state['task'] must be one of {TASK_NAMES}, got {d['task']!r}")
    task = TASK_NAMES.index(d["task"])
    if task == Task.COLLECT and any(g == (px, py) and k for g, k in zip(gold, left, strict=True)):
        # In collect tasks stepping onto gold collects it, so no reachable state has the
        # penguin on a piece that is still left.
        raise StateError(
            f"state['pos']={d['pos']} is on gold that is still left; in a collect task that piece is collected (set its gold_left to false)"
        )
    corner = _int(d, "corner", 0, len(CORNER_NAMES) - 1)
    phrase = _int(d, "phrase", 0, len(PHRASES[Task(task)]) - 1)
    steps = _int(d, "steps", 0, 2**62)
    level = _int(d, "level", 0, 2**62)
    return GameState(
        walls=walls[None],
        pos=np.array([[px, py]], dtype=np.int64),
        heading=np.array([heading], dtype=np.int64),
        gold=np.array([gold], dtype=np.int64),
        gold_left=np.array([left], dtype=bool),
        task=np.array([task], dtype=np.int64),
        corner=np.array([corner], dtype=np.int64),
        phrase=np.array([phrase], dtype=np.int64),
        steps=np.array([steps], dtype=np.int64),
        level=np.array([level], dtype=np.int64),
    )
