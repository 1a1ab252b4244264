"""Level generation in array code.

A level is a pure function of its integer id and the variant's :class:`LevelSpec`. Random
numbers come from a counter-based hash (SplitMix64 over ``(level id, purpose, counter)``), so
a batch of levels is generated with whole-array operations and no per-level Python work.
That keeps autoresets in the vector env cheap and makes levels identical across processes,
platforms and NumPy versions.

Which level an episode plays is also a hash: episode ``e`` after ``reset(seed=s)`` plays
``episode_levels(s, e)``. With ``num_levels > 0`` the ids are drawn from
``start_level .. start_level + num_levels - 1`` (Procgen semantics), otherwise from
``start_level .. 2**31 - 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from penguin_env.core import CORNER_NAMES, NUM_HEADINGS, GameState, Task, corner_cells
from penguin_env.instructions import phrase_indices

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
MAX_LEVEL_ID = 2**31 - 1

# One salt per purpose, so the draws of different purposes are independent.
_SALT_WALLS, _SALT_CELLS, _SALT_GOLD, _SALT_MISC, _SALT_EPISODE = 1, 2, 3, 4, 5


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser over a uint64 array (wrapping arithmetic)."""
    x = x + _GOLDEN
    # In place after the first copy: level generation sits on the autoreset hot path.
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def hash_stream(keys: np.ndarray, salt: int, count: int) -> np.ndarray:
    """``(len(keys), count)`` pseudo-random uint64 values determined by ``keys`` and ``salt``."""
    keys = np.asarray(keys).astype(np.uint64).reshape(-1)
    base = _mix(_mix(keys) ^ _mix(np.full(1, salt, dtype=np.uint64)))
    return _mix(base[:, None] + np.arange(1, count + 1, dtype=np.uint64)[None, :] * _GOLDEN)


def _uniform(bits: np.ndarray) -> np.ndarray:
    """Floats in [0, 1) from uint64 bits."""
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def _below(bits: np.ndarray, n: np.ndarray | int) -> np.ndarray:
    """Integers in ``[0, n)`` from uint64 bits."""
    return np.floor(_uniform(bits) * n).astype(np.int64)


def episode_levels(
    seed_base: np.ndarray, episode: np.ndarray, num_levels: int, start_level: int
) -> np.ndarray:
    """Level id played in episode ``episode`` of a game seeded with ``seed_base``."""
    seed_base = np.asarray(seed_base, dtype=np.uint64).reshape(-1)
    episode = np.asarray(episode, dtype=np.uint64).reshape(-1)
    bits = _mix(_mix(seed_base ^ np.uint64(_SALT_EPISODE)) + episode * _GOLDEN)
    span = num_levels if num_levels > 0 else MAX_LEVEL_ID + 1 - start_level
    return start_level + _below(bits, span)


@dataclass(frozen=True)
class LevelSpec:
    """What a variant's levels look like.

    Attributes:
        size: interior side length.
        num_gold: gold pieces per level.
        walls: ``"none"``, ``"segments"`` (random interior wall segments) or ``"light"``
            (half the levels empty, half with a few short segments).
        tasks: tasks drawn uniformly per level.
        radius: if set, the (single) gold piece is within this Chebyshev distance of the penguin.
        paraphrases: ``"train"``, ``"test"`` or ``"all"``: which phrasings instructions use.
    """

    size: int
    num_gold: int
    walls: str = "none"
    tasks: tuple[Task, ...] = (Task.COLLECT,)
    radius: int | None = None
    paraphrases: str = "train"


def _segment_walls(level_ids: np.ndarray, spec: LevelSpec, attempt: int) -> np.ndarray:
    """Interior wall mask ``(B, size, size)`` made of random straight segments."""
    b, size = len(level_ids), spec.size
    if spec.walls == "segments":
        num_seg, max_len, active = max(2, size // 2), max(2, size // 2), np.ones(b, bool)
    else:  # light: only half the levels get walls, and fewer, shorter segments
        num_seg, max_len = max(1, size // 4), 2
        active = _uniform(hash_stream(level_ids, _SALT_WALLS + 100 * attempt, 1))[:, 0] < 0.5
    bits = hash_stream(level_ids, _SALT_WALLS + 100 * attempt + 7, 4 * num_seg).reshape(b, num_seg, 4)
    horizontal = bits[..., 0] % np.uint64(2) == 0
    length = 1 + _below(bits[..., 1], max_len)
    x0 = _below(bits[..., 2], size)
    y0 = _below(bits[..., 3], size)
    coord = np.arange(size)
    ys, xs = coord[None, None, :, None], coord[None, None, None, :]
    x0, y0, length = x0[..., None, None], y0[..., None, None], length[..., None, None]
    horizontal = horizontal[..., None, None]
    along_h = (ys == y0) & (xs >= x0) & (xs < x0 + length)
    along_v = (xs == x0) & (ys >= y0) & (ys < y0 + length)
    mask = np.where(horizontal, along_h, along_v).any(axis=1)
    return mask & active[:, None, None]


def _main_component(floor: np.ndarray) -> np.ndarray:
    """The largest 8-connected floor component of each level, ``(B, H, W)`` bool.

    Diagonal moves are blocked only by a wall in the target cell, so reachability is
    8-connectivity. Labels spread by max-pooling until nothing changes.
    """
    b, h, w = floor.shape
    labels = np.where(floor, np.arange(1, h * w + 1).reshape(1, h, w), 0)
    while True:
        padded = np.pad(labels, ((0, 0), (1, 1), (1, 1)))
        pooled = labels.copy()
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                np.maximum(pooled, padded[:, dy : dy + h, dx : dx + w], out=pooled)
        pooled = np.where(floor, pooled, 0)
        if np.array_equal(pooled, labels):
            break
        labels = pooled
    flat = labels.reshape(b, -1)
    counts = np.zeros((b, h * w + 1), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(b), h * w), flat.ravel()), 1)
    counts[:, 0] = 0
    main = counts.argmax(axis=1)
    return labels == main[:, None, None]


def _top_k(keys: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` largest keys per row, largest first, ties to the lower index.

    The same as ``np.argsort(-keys, axis=1, kind="stable")[:, :k]``; for the few gold pieces of
    a level, ``k`` rounds of argmax (which returns the first maximum) are several times faster.
    """
    if k > 8:
        return np.argsort(-keys, axis=1, kind="stable")[:, :k]
    keys = keys.copy()
    rows = np.arange(keys.shape[0])
    out = np.empty((keys.shape[0], k), dtype=np.int64)
    for j in range(k):
        out[:, j] = keys.argmax(axis=1)
        keys[rows, out[:, j]] = -np.inf
    return out


def _generate_once(level_ids: np.ndarray, spec: LevelSpec, attempt: int) -> tuple[GameState, np.ndarray]:
    b, size, k = len(level_ids), spec.size, spec.num_gold
    walls = np.ones((b, size + 2, size + 2), dtype=bool)
    walls[:, 1:-1, 1:-1] = False
    valid = np.ones(b, dtype=bool)
    if spec.walls != "none":
        interior_walls = _segment_walls(level_ids, spec, attempt)
        floor = _main_component(~interior_walls)
        walls[:, 1:-1, 1:-1] = ~floor
        need = k + 1
        valid &= floor.reshape(b, -1).sum(axis=1) >= need
        if Task.CORNER in spec.tasks:
            cx, cy = corner_cells(np.arange(len(CORNER_NAMES)), size)
            valid &= floor[:, cy, cx].all(axis=1)
    floor_flat = ~walls[:, 1:-1, 1:-1].reshape(b, -1)

    # Penguin: the floor cell with the largest key.
    cell_keys = np.where(floor_flat, _uniform(hash_stream(level_ids, _SALT_CELLS + 100 * attempt, size * size)), -1.0)
    penguin = cell_keys.argmax(axis=1)
    px, py = penguin % size, penguin // size

    # Gold: the K eligible cells with the largest keys of an independent stream.
    eligible = floor_flat.copy()
    eligible[np.arange(b), penguin] = False
    if spec.radius is not None:
        cells = np.arange(size * size)
        cheb = np.maximum(np.abs(cells[None, :] % size - px[:, None]), np.abs(cells[None, :] // size - py[:, None]))
        eligible &= cheb <= spec.radius
    valid &= eligible.sum(axis=1) >= k
    gold_keys = np.where(eligible, _uniform(hash_stream(level_ids, _SALT_GOLD + 100 * attempt, size * size)), -1.0)
    gold_cells = _top_k(gold_keys, k)
    gold = np.stack([gold_cells % size, gold_cells // size], axis=2).astype(np.int64)

    misc = hash_stream(level_ids, _SALT_MISC, 4)
    heading = _below(misc[:, 0], NUM_HEADINGS)
    tasks = np.array(spec.tasks, dtype=np.int64)
    task = tasks[_below(misc[:, 1], len(tasks))]
    corner = _below(misc[:, 2], len(CORNER_NAMES))
    # Paraphrase: uniform over the split's phrasings of the level's task.
    phrase = np.zeros(b, dtype=np.int64)
    for t in np.unique(task):
        allowed = np.array(phrase_indices(Task(int(t)), spec.paraphrases), dtype=np.int64)
        sel = task == t
        phrase[sel] = allowed[_below(misc[sel, 3], len(allowed))]

    state = GameState(
        walls=walls,
        pos=np.stack([px, py], axis=1).astype(np.int64),
        heading=heading,
        gold=gold,
        gold_left=np.ones((b, k), dtype=bool),
        task=task,
        corner=corner,
        phrase=phrase,
        steps=np.zeros(b, dtype=np.int64),
        level=np.asarray(level_ids, dtype=np.int64).copy(),
    )
    return state, valid


def generate(level_ids: np.ndarray, spec: LevelSpec) -> GameState:
    """Generate the levels ``level_ids`` of ``spec`` as one batched :class:`GameState`.

    Every level is solvable: all floor cells form one 8-connected region (unreachable pockets
    are filled with wall), which holds the penguin, every gold piece and, when the variant has
    corner tasks, all four corners. A layout that cannot satisfy this is redrawn with the
    next attempt's hash stream (rare; deterministic per level id).
    """
    level_ids = np.asarray(level_ids, dtype=np.int64).reshape(-1)
    if level_ids.size and (level_ids.min() < 0 or level_ids.max() > MAX_LEVEL_ID):
        raise ValueError(f"level ids must lie in 0..{MAX_LEVEL_ID}")
    state, valid = _generate_once(level_ids, spec, attempt=0)
    attempt = 0
    while not valid.all():
        attempt += 1
        if attempt > 50:
            raise RuntimeError(f"could not generate a solvable level for ids {level_ids[~valid][:5]} with {spec}")
        redo = np.flatnonzero(~valid)
        fresh, fresh_valid = _generate_once(level_ids[redo], spec, attempt)
        state.put(redo, fresh)
        valid[redo] = fresh_valid
    return state
