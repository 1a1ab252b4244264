"""Hand-built Penguin states for the tests (dicts in the format of ``penguin_env.state``)."""

from __future__ import annotations

from typing import Any


def make_state(
    size: int = 5,
    pos: tuple[int, int] = (0, 0),
    heading: int = 0,
    gold: list[tuple[int, int]] | None = None,
    gold_left: list[bool] | None = None,
    task: str = "collect",
    corner: int = 0,
    walls: list[tuple[int, int]] | None = None,
    steps: int = 0,
    phrase: int = 0,
) -> dict[str, Any]:
    """A state dict; ``walls`` lists interior wall cells ``(x, y)``."""
    gold = [(size - 1, size - 1)] if gold is None else gold
    rows = [["."] * size for _ in range(size)]
    for x, y in walls or []:
        rows[y][x] = "#"
    return {
        "version": 1,
        "size": size,
        "walls": ["".join(r) for r in rows],
        "pos": list(pos),
        "heading": heading,
        "gold": [list(g) for g in gold],
        "gold_left": list(gold_left) if gold_left is not None else [True] * len(gold),
        "task": task,
        "corner": corner,
        "phrase": phrase,
        "steps": steps,
        "level": 0,
    }
