"""Solver speed: states planned per second, cold (level table built) and cached.

For each variant and room size, random states (random level, cell, heading and gold left) are
asked for ``distance`` and ``best_actions``:

* ``cold``: every state is on a level not yet solved, so each query builds that level's table;
* ``cached``: the levels are solved already; one query is a table lookup;
* ``batched``: ``optimal_action_mask`` over a batch of cached states (the DAgger/vector-env path).

Writes ``experiments/results/solver_speed.json`` and ``.md`` and prints the table::

    python -m experiments.bench_solver [--states 200] [--out experiments/results]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

import penguin_env
from experiments.machine import describe
from fake_traces import solver
from penguin_env import levels
from penguin_env.config import VARIANTS, make_config
from penguin_env.core import GameState, Task

VARIANT_IDS = ("Penguin-Bare-v0", "Penguin-Gold-v0", "Penguin-Walls-v0")
SIZES = (8, 12)


@dataclass
class Row:
    """One line of the table (rates in states per second)."""

    env_id: str
    size: int
    states_per_level: int
    cold: float
    cached: float
    batched: float


def random_states(env_id: str, size: int, n: int, seed: int, first_level: int) -> GameState:
    rng = np.random.default_rng(seed)
    spec = make_config(env_id, {"size": size}).level_spec(VARIANTS[env_id])
    game = levels.generate(np.arange(first_level, first_level + n), spec)
    for i in range(n):
        floor = np.argwhere(~game.walls[i, 1:-1, 1:-1])
        y, x = floor[rng.integers(len(floor))]
        game.pos[i] = (x, y)
        game.heading[i] = rng.integers(8)
        if game.task[i] == Task.COLLECT:
            left = rng.random(game.num_gold) < 0.6
            left[rng.integers(game.num_gold)] = True
            game.gold_left[i] = left
    return game


def per_state(game: GameState) -> float:
    """States per second for one ``distance`` + ``best_actions`` query per state."""
    singles = [game.take(slice(i, i + 1)) for i in range(game.num)]
    start = time.perf_counter()
    for one in singles:
        solver.distance(one)
        solver.best_actions(one)
    return game.num / (time.perf_counter() - start)


def bench(env_id: str, size: int, n: int, seed: int) -> Row:
    solver.clear_cache()
    game = random_states(env_id, size, n, seed, first_level=1000 * seed)
    cold = per_state(game)  # each state is on its own level: every query builds a table
    cached_game = random_states(
        env_id, size, n, seed + 1, first_level=1000 * seed
    )  # same levels, new states
    cached = per_state(cached_game)
    start = time.perf_counter()
    repeats = 20
    for _ in range(repeats):
        solver.optimal_action_mask(cached_game)
    batched = repeats * n / (time.perf_counter() - start)
    states = solver.tables_for(game.take(slice(0, 1)))[0].num_states
    return Row(env_id, size, states, cold, cached, batched)


def markdown(rows: list[Row], meta: dict) -> str:
    lines = [
        "# Solver speed",
        "",
        f"States planned per second (`distance` + `best_actions` per state); {meta['states']} random "
        f"states per cell; {meta['machine']}. Regenerate with `python -m experiments.bench_solver`.",
        "",
        "| env | size | abstract states / level | cold (builds table) | cached | batched mask (cached) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.env_id} | {r.size} | {r.states_per_level:,} | {r.cold:,.0f} | {r.cached:,.0f} | {r.batched:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--states", type=int, default=200, help="random states per variant and size"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=pathlib.Path, default=pathlib.Path(__file__).parent / "results"
    )
    args = parser.parse_args()
    rows = [bench(env_id, size, args.states, args.seed) for env_id in VARIANT_IDS for size in SIZES]
    meta = {
        "states": args.states,
        "seed": args.seed,
        "machine": f"{describe()}, python {platform.python_version()}, "
        f"numpy {np.__version__}, penguin_env {penguin_env.__version__}",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "solver_speed.json").write_text(
        json.dumps({**meta, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    md = markdown(rows, meta)
    (args.out / "solver_speed.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
