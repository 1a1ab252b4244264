"""The exact planner: breadth-first search over (cell, heading, gold still left).

For every level the solver enumerates the whole abstract state space of that level: each
interior cell x 8 headings x each subset of gold still to collect (collect tasks; in the other
tasks gold is a landmark and never changes, so there is one subset). All states x 5 actions
are pushed through the game core's own :func:`penguin_env.core.step` in one batched call, so
the solver cannot disagree with the rules. A backward breadth-first search from the
successful transitions then gives the exact number of actions to success (the final STOP
included) for *every* state of the level, and from it all optimal actions of every state.

The tables are cached per level (key: walls, gold cells, task, corner), so after the first
query on a level every later query on it is an array lookup: cheap enough for DAgger at every
step. Several levels asked for at once are built together in batched calls.

Conventions:

* A collect state with no gold left is already won: distance 0, empty plan, no best action.
* A state from which success cannot be reached (only possible for hand-made states) has no
  best action; :func:`distance` and :func:`plan` raise :class:`Unsolvable` for it.
* The step counter and ``max_steps`` are ignored: distances count actions, not time left.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from penguin_env import state as state_io
from penguin_env.core import NUM_ACTIONS, NUM_HEADINGS, GameState, Rules, Task, step

__all__ = [
    "LevelTable",
    "Unsolvable",
    "best_actions",
    "cache_info",
    "clear_cache",
    "distance",
    "distances",
    "expert_actions",
    "optimal_action_mask",
    "plan",
    "set_cache_limit",
]

UNREACHABLE = np.iinfo(np.int32).max  #: distance of a state that cannot reach success
_NO_STEP_LIMIT = Rules(max_steps=np.iinfo(np.int64).max)  # truncation is irrelevant to planning
_MAX_ROWS_PER_CALL = 1 << 16  # transitions per batched core.step call (bounds the wall copies)


class Unsolvable(ValueError):
    """No sequence of actions reaches success from the given state."""


@dataclass(frozen=True)
class LevelTable:
    """Exact solution of one level: every abstract state's distance and optimal actions.

    A state's index is ``((mask * size + y) * size + x) * 8 + heading`` where bit ``k`` of
    ``mask`` is set while gold piece ``k`` is left (collect tasks; ``mask`` is 0 otherwise).

    Attributes:
        size: interior side length.
        collect: whether gold is collected (the mask is part of the state).
        dist: ``(S,)`` int32 actions to success, :data:`UNREACHABLE` if none.
        best: ``(S,)`` uint8, bit ``a`` set when action ``a`` is optimal.

    Only these 5 bytes per state are kept (not the transitions), so thousands of levels fit in
    the cache at once; :func:`plan` replays its actions through the core instead.
    """

    size: int
    collect: bool
    dist: np.ndarray
    best: np.ndarray

    @property
    def num_states(self) -> int:
        return int(self.dist.shape[0])

    def index(self, game: GameState) -> np.ndarray:
        """Abstract state index of every game of ``game`` (all on this level)."""
        return _index(game, np.full(game.num, self.collect))


def _index(game: GameState, collect: np.ndarray) -> np.ndarray:
    """``(N,)`` abstract state index of each game; ``collect`` says whose mask counts."""
    size = game.size
    idx = (game.pos[:, 1] * size + game.pos[:, 0]) * NUM_HEADINGS + game.heading
    mask = np.zeros(game.num, dtype=np.int64)
    for k in range(game.num_gold):
        mask |= game.gold_left[:, k].astype(np.int64) << k
    return idx + np.where(collect, mask, 0) * (size * size * NUM_HEADINGS)


# -- the cache -----------------------------------------------------------------------------
_cache: OrderedDict[tuple, LevelTable] = OrderedDict()
_cache_lock = threading.Lock()
_cache_states = 0
_cache_limit = 1 << 24  # abstract states kept (5 bytes each, so at most ~84 MB)
_stats = {"hits": 0, "misses": 0}


def set_cache_limit(max_states: int) -> None:
    """Keep at most ``max_states`` abstract states (summed over levels) in the LRU cache."""
    global _cache_limit
    if max_states < 0:
        raise ValueError(f"max_states must be >= 0, got {max_states}")
    _cache_limit = int(max_states)
    with _cache_lock:
        _evict()


def clear_cache() -> None:
    """Forget every cached level table (the next query on each level rebuilds it)."""
    global _cache_states
    with _cache_lock:
        _cache.clear()
        _cache_states = 0
        _stats.update(hits=0, misses=0)


def cache_info() -> dict[str, int]:
    """Levels and states in the cache, and hit/miss counts since the last :func:`clear_cache`."""
    with _cache_lock:
        return {"levels": len(_cache), "states": _cache_states, "limit": _cache_limit, **_stats}


def _evict() -> None:
    global _cache_states
    while _cache and _cache_states > _cache_limit:
        _, old = _cache.popitem(last=False)
        _cache_states -= old.num_states


def _level_key(game: GameState, i: int) -> tuple:
    return (
        game.size,
        game.walls[i].tobytes(),
        game.gold[i].tobytes(),
        int(game.task[i]),
        int(game.corner[i]),
    )


# -- building tables -----------------------------------------------------------------------
def _build(game: GameState, rows: list[int]) -> list[LevelTable]:
    """Solve the levels of games ``rows`` (distinct levels of one size and gold count).

    Levels are solved in chunks of about :data:`_MAX_ROWS_PER_CALL` transitions: big enough
    to amortise Python overhead, small enough to stay in cache.
    """
    size, k = game.size, game.num_gold
    cells = size * size
    collect = [int(game.task[i]) == Task.COLLECT for i in rows]
    num_states = [(1 << k if c else 1) * cells * NUM_HEADINGS for c in collect]
    tables: list[LevelTable] = []
    start = 0
    while start < len(rows):
        stop, chunk = start + 1, num_states[start]
        while stop < len(rows) and (chunk + num_states[stop]) * NUM_ACTIONS <= _MAX_ROWS_PER_CALL:
            chunk += num_states[stop]
            stop += 1
        tables.extend(
            _solve_chunk(game, rows[start:stop], collect[start:stop], num_states[start:stop])
        )
        start = stop
    return tables


def _solve_chunk(
    game: GameState, rows: list[int], collect: list[bool], num_states: list[int]
) -> list[LevelTable]:
    """Transition table, backward BFS and optimal actions of a few levels at once."""
    cells = game.size * game.size
    offsets = np.concatenate([[0], np.cumsum(num_states)]).astype(np.int64)
    total = int(offsets[-1])
    nxt, succ = _transitions(game, rows, collect, offsets)
    terminal = nxt < 0

    # Backward BFS over the union of the levels' graphs (they are disjoint). Predecessor
    # lists come from sorting the non-terminal transitions by their target (CSR layout).
    dist = np.full(total, UNREACHABLE, dtype=np.int32)
    for j, c in enumerate(collect):
        if c:  # mask 0 = every piece collected: the episode is already won
            dist[offsets[j] : offsets[j] + cells * NUM_HEADINGS] = 0
    flat = nxt.ravel()
    live = np.flatnonzero(flat >= 0)
    order = np.argsort(flat[live], kind="stable")
    pred = (live // NUM_ACTIONS)[order]
    counts = np.bincount(flat[live], minlength=total)
    first = np.cumsum(counts) - counts
    frontier = np.flatnonzero((dist == UNREACHABLE) & succ.any(axis=1))
    d = 1
    while frontier.size:
        dist[frontier] = d
        lens = counts[frontier]
        ends = np.cumsum(lens)
        pos = np.arange(int(ends[-1]) if ends.size else 0) + np.repeat(
            first[frontier] - (ends - lens), lens
        )
        cand = pred[pos]
        frontier = np.unique(cand[dist[cand] == UNREACHABLE])
        d += 1

    # Optimal actions: success in one step, or a non-terminal step one layer closer.
    dist_ext = np.append(dist, UNREACHABLE).astype(np.int64)
    here = dist.astype(np.int64)[:, None]
    best_mask = (
        (here < UNREACHABLE)
        & (here > 0)
        & ((succ & (here == 1)) | (~terminal & (dist_ext[nxt] == here - 1)))
    )
    best = np.zeros(total, dtype=np.uint8)
    for a in range(NUM_ACTIONS):  # column loop: numpy reduces short rows slowly
        best |= best_mask[:, a].astype(np.uint8) << a

    tables = []
    for j in range(len(rows)):
        lo, hi = int(offsets[j]), int(offsets[j + 1])
        tables.append(
            LevelTable(
                size=game.size, collect=collect[j], dist=dist[lo:hi].copy(), best=best[lo:hi].copy()
            )
        )
    return tables


def _transitions(
    game: GameState,
    rows: list[int],
    collect: list[bool],
    offsets: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Step every (state, action) of the levels ``rows`` with one ``core.step`` call.

    Returns ``(S, 5)`` next-state indices into the chunk (-1 when the episode ends) and
    ``(S, 5)`` success flags.
    """
    size, k = game.size, game.num_gold
    cells = size * size
    base = int(offsets[0])
    n_states = int(offsets[-1]) - base
    local = np.arange(n_states, dtype=np.int64)
    level = np.repeat(np.arange(len(rows)), np.diff(offsets))
    local -= offsets[:-1][level] - base
    heading = local % NUM_HEADINGS
    cell = (local // NUM_HEADINGS) % cells
    mask = local // (NUM_HEADINGS * cells)
    src = np.asarray(rows)[level]
    gold_left = (mask[:, None] >> np.arange(k)) & 1 == 1
    is_collect = np.asarray(collect)[level]
    gold_left |= ~is_collect[:, None]  # landmarks stay put in the other tasks

    rep = lambda a: np.repeat(a, NUM_ACTIONS, axis=0)  # noqa: E731
    batch = GameState(
        walls=game.walls[rep(src)],
        pos=rep(np.stack([cell % size, cell // size], axis=1)),
        heading=rep(heading),
        gold=game.gold[rep(src)],
        gold_left=rep(gold_left),
        task=game.task[rep(src)],
        corner=game.corner[rep(src)],
        phrase=np.zeros(n_states * NUM_ACTIONS, dtype=np.int64),
        steps=np.zeros(n_states * NUM_ACTIONS, dtype=np.int64),
        level=np.zeros(n_states * NUM_ACTIONS, dtype=np.int64),
    )
    actions = np.tile(np.arange(NUM_ACTIONS), n_states)
    out = step(batch, actions, _NO_STEP_LIMIT)

    new = (batch.pos[:, 1] * size + batch.pos[:, 0]) * NUM_HEADINGS + batch.heading
    new_mask = np.zeros(n_states * NUM_ACTIONS, dtype=np.int64)
    for j in range(k):
        new_mask |= batch.gold_left[:, j].astype(np.int64) << j
    new_mask[~rep(is_collect)] = 0
    new = new + new_mask * (cells * NUM_HEADINGS) + rep(offsets[:-1][level])
    nxt = np.where(out.terminated, -1, new).reshape(n_states, NUM_ACTIONS)
    return nxt, out.success.reshape(n_states, NUM_ACTIONS)


def tables_for(game: GameState) -> list[LevelTable]:
    """The solved table of each game's level (built and cached on first use)."""
    global _cache_states
    keys = [_level_key(game, i) for i in range(game.num)]
    found: dict[tuple, LevelTable] = {}
    missing: dict[tuple, int] = {}
    with _cache_lock:
        for i, key in enumerate(keys):
            if key in found or key in missing:
                continue
            table = _cache.get(key)
            if table is None:
                missing[key] = i
                _stats["misses"] += 1
            else:
                _cache.move_to_end(key)
                found[key] = table
                _stats["hits"] += 1
    if missing:
        built = _build(game, list(missing.values()))
        with _cache_lock:
            for key, table in zip(missing, built, strict=True):
                found[key] = table
                if key not in _cache:
                    _cache[key] = table
                    _cache_states += table.num_states
            _evict()
    return [found[key] for key in keys]


# -- queries -------------------------------------------------------------------------------
def _lookup(game: GameState) -> tuple[np.ndarray, np.ndarray]:
    """``(N,)`` distances and ``(N,)`` optimal-action bit masks of a batched state."""
    dist = np.empty(game.num, dtype=np.int64)
    best = np.empty(game.num, dtype=np.uint8)
    tables = tables_for(game)
    if not tables:
        return dist, best
    collect = np.array([t.collect for t in tables])
    idx = _index(game, collect)
    for i, table in enumerate(tables):
        dist[i], best[i] = table.dist[idx[i]], table.best[idx[i]]
    return dist, best


def _as_game(state: Mapping[str, Any] | GameState) -> GameState:
    if isinstance(state, GameState):
        if state.num != 1:
            raise ValueError(
                f"expected a batch-of-one GameState, got {state.num} games; "
                "use optimal_action_mask/expert_actions/distances for batches"
            )
        return state
    if isinstance(state, Mapping):
        return state_io.from_dict(dict(state))
    raise TypeError(
        f"state must be a dict from env.unwrapped.get_state() or a GameState, got {type(state).__name__}"
    )


def distances(game: GameState) -> np.ndarray:
    """``(N,)`` int64 shortest number of actions to success of every game of a batched state.

    :data:`UNREACHABLE` marks games that cannot succeed; 0 marks collect games already won.
    """
    return _lookup(game)[0]


def distance(state: Mapping[str, Any] | GameState) -> int:
    """Length of a shortest action sequence from ``state`` to success (STOP included).

    Args:
        state: the dict of ``env.unwrapped.get_state()`` (its ``"episode"`` key is ignored) or
            a batch-of-one :class:`~penguin_env.core.GameState`.

    Raises:
        Unsolvable: if no action sequence succeeds from this state.
    """
    game = _as_game(state)
    d = int(_lookup(game)[0][0])
    if d >= UNREACHABLE:
        raise Unsolvable(
            "no sequence of actions reaches success from this state (is the gold walled in?)"
        )
    return d


def best_actions(state: Mapping[str, Any] | GameState) -> set[int]:
    """Every action that starts a shortest action sequence from ``state``.

    Empty for a won or unsolvable state. Accepts the same ``state`` forms as :func:`distance`.
    """
    game = _as_game(state)
    bits = int(_lookup(game)[1][0])
    return {a for a in range(NUM_ACTIONS) if bits >> a & 1}


def plan(state: Mapping[str, Any] | GameState) -> list[int]:
    """A shortest action sequence from ``state`` to success (the lowest optimal id each step).

    Raises:
        Unsolvable: if no action sequence succeeds from this state.
    """
    game = _as_game(state)
    table = tables_for(game)[0]
    idx = int(table.index(game)[0])
    if table.dist[idx] >= UNREACHABLE:
        raise Unsolvable(
            "no sequence of actions reaches success from this state (is the gold walled in?)"
        )
    actions: list[int] = []
    game = game.copy()
    for _ in range(int(table.dist[idx])):
        bits = int(table.best[idx])
        a = (bits & -bits).bit_length() - 1
        actions.append(a)
        step(game, np.array([a]), _NO_STEP_LIMIT)
        idx = int(table.index(game)[0])
    return actions


def optimal_action_mask(game: GameState) -> np.ndarray:
    """``(N, 5)`` bool: every optimal action of every game of a batched core state.

    Pass e.g. ``env.unwrapped.game.state`` or a vector env's ``game.state``. Rows of games that
    are already won or cannot succeed are all False.
    """
    bits = _lookup(game)[1]
    return (bits[:, None] >> np.arange(NUM_ACTIONS, dtype=np.uint8)) & 1 == 1


def expert_actions(game: GameState, rng: np.random.Generator | None = None) -> np.ndarray:
    """``(N,)`` int64: one optimal action per game.

    Args:
        game: a batched core state.
        rng: None picks the lowest optimal action id; a generator picks uniformly among the
            optimal actions.

    Games with no optimal action (already won, or unsolvable) get action 0 (LEFT), which is
    harmless: an autoresetting vector env ignores the action after an episode ends.
    """
    mask = optimal_action_mask(game)
    if rng is None:
        return mask.argmax(axis=1).astype(np.int64)
    keys = rng.random(mask.shape) + mask  # optimal actions get keys in [1, 2)
    return keys.argmax(axis=1).astype(np.int64)
