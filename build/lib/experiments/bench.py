"""Environment speed benchmark: ``python -m experiments.bench [--quick]``.

Measures, in one run on one machine, env-steps per second with random actions:

- the single env (``gym.make``), and its ratio to MiniGrid;
- Gymnasium's ``SyncVectorEnv`` and ``AsyncVectorEnv`` over single envs (N=8);
- the native :class:`penguin_env.vector.PenguinVectorEnv` at N = 1, 16, 64, 256, 1024, with
  ``copy=True`` and ``copy=False``;
- MiniGrid ``MiniGrid-Empty-8x8-v0`` + ``RGBImgObsWrapper`` (64x64 frames), the outside
  reference (optional: ``pip install 'penguin-rl[bench]'``);
- the memory-copy ceiling: copying N frames of the same size with numpy.

Every figure is the best of a few timed repeats (the machine may be shared). The table is
printed and written to ``env_speed.json`` and ``env_speed.md`` in ``--out`` (default
``results/`` in the working directory). ``penguin bench`` runs the same measurements and adds
the trainers' throughput.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import penguin_env  # noqa: F401  (registers the ids)
from experiments.machine import cpu_model, usable_cores
from penguin_env.vector import PenguinVectorEnv

RESULTS = Path("results")  #: default output directory, relative to the working directory
NATIVE_SIZES = (1, 16, 64, 256, 1024)
QUICK_SIZES = (16, 256)  #: ``--quick``: a smoke check of the table, not a measurement
MINIGRID_ID = "MiniGrid-Empty-8x8-v0"


@dataclass
class Row:
    """One measured configuration."""

    name: str
    num_envs: int
    copy: bool | None
    steps_per_s: float | None
    repeats: list[float] = field(default_factory=list)
    note: str = ""


def _timed(step_block: Callable[[], int], seconds: float, repeats: int) -> list[float]:
    """Steps/s of ``repeats`` runs of about ``seconds`` each; ``step_block`` returns steps done."""
    step_block()  # warm up caches and lazy allocations
    rates = []
    for _ in range(repeats):
        steps, start = 0, time.perf_counter()
        while True:
            steps += step_block()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
        rates.append(steps / elapsed)
    return rates


def _single_env_block(env: gym.Env, rng: np.random.Generator, n: int = 200) -> Callable[[], int]:
    actions = rng.integers(0, env.action_space.n, size=4096)
    cursor = [0]

    def block() -> int:
        i = cursor[0]
        for _ in range(n):
            _, _, terminated, truncated, _ = env.step(int(actions[i]))
            i = (i + 1) % actions.size
            if terminated or truncated:
                env.reset()
        cursor[0] = i
        return n

    return block


def _vector_block(env: gym.vector.VectorEnv, rng: np.random.Generator, n: int) -> Callable[[], int]:
    """Vector envs autoreset, so the block only steps."""
    actions = rng.integers(0, 5, size=(64, env.num_envs))
    cursor = [0]

    def block() -> int:
        i = cursor[0]
        for _ in range(n):
            env.step(actions[i])
            i = (i + 1) % len(actions)
        cursor[0] = i
        return n * env.num_envs

    return block


def _copy_block(num: int, image_size: int) -> Callable[[], int]:
    src = np.random.default_rng(0).integers(
        0, 256, size=(num, image_size, image_size, 3), dtype=np.uint8
    )
    reps = max(1, 4096 // num)

    def block() -> int:
        for _ in range(reps):
            src.copy()
        return reps * num

    return block


def _minigrid_env() -> gym.Env | None:
    try:
        import minigrid  # noqa: F401
        from minigrid.wrappers import RGBImgObsWrapper
    except ImportError:
        return None
    env = RGBImgObsWrapper(gym.make(MINIGRID_ID))
    env.reset(seed=0)
    return env


def machine_info() -> dict[str, Any]:
    """Platform, CPU model, core count, load, library versions and the date."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "load_average": [round(x, 2) for x in load] if load else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
    }


def run(
    env_id: str = "Penguin-Gold-v0",
    seconds: float = 1.0,
    repeats: int = 3,
    sizes: Sequence[int] = NATIVE_SIZES,
    vector_n: int = 8,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure everything and return ``{"machine": ..., "config": ..., "rows": [...]}``."""
    kwargs = {"size": 8, "image_size": 64}
    rng = np.random.default_rng(0)
    rows: list[Row] = []

    def record(row: Row) -> None:
        rows.append(row)
        rate = "n/a" if row.steps_per_s is None else f"{row.steps_per_s:,.0f}/s"
        log(f"  {row.name:<34} N={row.num_envs:<5} {rate} {row.note}")

    log(f"benchmarking {env_id} {kwargs}, {seconds:g}s x {repeats} repeats per figure")
    single = gym.make(env_id, **kwargs)
    single.reset(seed=0)
    rates = _timed(_single_env_block(single, rng), seconds, repeats)
    record(Row("single env (gym.make)", 1, None, max(rates), rates))

    mg = _minigrid_env()
    if mg is None:
        record(
            Row(
                f"MiniGrid {MINIGRID_ID} + RGBImgObsWrapper",
                1,
                None,
                None,
                note="minigrid not installed",
            )
        )
    else:
        rates = _timed(_single_env_block(mg, rng), seconds, repeats)
        shape = mg.observation_space["image"].shape
        record(
            Row(
                f"MiniGrid {MINIGRID_ID} + RGBImgObsWrapper",
                1,
                None,
                max(rates),
                rates,
                note=f"image {shape}",
            )
        )
        mg.close()

    def make_single() -> gym.Env:
        return gym.make(env_id, **kwargs)

    for name, cls in (
        ("SyncVectorEnv", gym.vector.SyncVectorEnv),
        ("AsyncVectorEnv", gym.vector.AsyncVectorEnv),
    ):
        venv = cls([make_single for _ in range(vector_n)])
        venv.reset(seed=0)
        rates = _timed(_vector_block(venv, rng, 20), seconds, repeats)
        record(Row(f"gymnasium {name}", vector_n, True, max(rates), rates))
        venv.close()

    for n in sizes:
        for copy in (True, False):
            venv = PenguinVectorEnv(env_id, n, copy=copy, **kwargs)
            venv.reset(seed=0)
            block_steps = max(1, 20_000 // (n * 8))
            rates = _timed(_vector_block(venv, rng, block_steps), seconds, repeats)
            record(Row("native PenguinVectorEnv", n, copy, max(rates), rates))
    for n in sorted({256, *sizes}):
        rates = _timed(_copy_block(n, kwargs["image_size"]), seconds, repeats)
        record(Row("numpy copy of N frames (ceiling)", n, True, max(rates), rates, note="frames/s"))

    return {
        "machine": machine_info(),
        "config": {
            "env_id": env_id,
            **kwargs,
            "seconds": seconds,
            "repeats": repeats,
            "actions": "uniform random",
        },
        "rows": [asdict(r) for r in rows],
    }


def _find(
    rows: list[dict[str, Any]], prefix: str, n: int | None = None, copy: bool | None = None
) -> float | None:
    for r in rows:
        if (
            r["name"].startswith(prefix)
            and (n is None or r["num_envs"] == n)
            and (copy is None or r["copy"] == copy)
        ):
            return r["steps_per_s"]
    return None


def _ratio(a: float | None, b: float | None) -> str:
    return "" if a is None or not b else f"{a / b:.1f}x"


def _share(a: float | None, b: float | None) -> str:
    return "" if a is None or not b else f"{100 * a / b:.0f}%"


def to_markdown(result: dict[str, Any]) -> str:
    """The result as a markdown table with ratios, plus the machine and the targets."""
    rows, m = result["rows"], result["machine"]
    single = _find(rows, "single env")
    mg = _find(rows, "MiniGrid")
    lines = [
        f"# Env speed: {result['config']['env_id']}, size {result['config']['size']}, "
        f"{result['config']['image_size']}x{result['config']['image_size']} images, random actions",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; Python {m['python']}, "
        f"NumPy {m['numpy']}, Gymnasium {m['gymnasium']}; load average {m['load_average']}; {m['date']}.",
        "Each figure is the best of "
        f"{result['config']['repeats']} timed runs of {result['config']['seconds']:g}s; one process "
        "(AsyncVectorEnv uses N worker processes).",
        "",
        "| what | N | copy | env-steps/s | vs single env | vs MiniGrid | share of numpy-copy ceiling |",
        "|---|---:|:---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rate = r["steps_per_s"]
        ceiling = (
            _find(rows, "numpy copy", r["num_envs"]) if r["name"].startswith("native") else None
        )
        copy = (
            ""
            if r["copy"] is None or not r["name"].startswith("native")
            else ("yes" if r["copy"] else "no")
        )
        shown = r["note"] if rate is None else f"{rate:,.0f}"
        lines.append(
            f"| {r['name']} | {r['num_envs']} | {copy} | {shown} | {_ratio(rate, single)} | "
            f"{_ratio(rate, mg)} | {_share(rate, ceiling)} |"
        )
    native256 = _find(rows, "native", 256, True)
    best = max((r for r in rows if r["name"].startswith("native") and r["steps_per_s"]),
               key=lambda r: r["steps_per_s"], default=None)  # fmt: skip
    lines += [
        "",
        f"- single env vs MiniGrid: {_ratio(single, mg) or 'MiniGrid not measured'}",
        f"- native N=256 vs MiniGrid: {_ratio(native256, mg) or 'MiniGrid not measured'}",
    ]
    if best is not None:
        copy = "" if best["copy"] else ", copy=False"
        lines.append(
            f"- fastest: native N={best['num_envs']}{copy}, {best['steps_per_s']:,.0f} env-steps/s"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (also behind ``penguin bench``)."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="short runs and fewer sizes (a few seconds) for a smoke check"
    )
    parser.add_argument(
        "--env-id", default="Penguin-Gold-v0", help="Penguin id to measure (default: %(default)s)"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="seconds per timed run (default 1.0, quick 0.2)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per figure (default 3, quick 1)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS,
        help="directory for env_speed.json/.md (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.2 if args.quick else 1.0)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if seconds <= 0 or repeats < 1:
        parser.error("--seconds must be > 0 and --repeats >= 1")
    result = run(args.env_id, seconds, repeats, sizes=QUICK_SIZES if args.quick else NATIVE_SIZES)
    result["config"]["quick"] = bool(args.quick)
    table = to_markdown(result)
    print()
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "env_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "env_speed.md").write_text(table)
    print(f"wrote {args.out / 'env_speed.json'} and {args.out / 'env_speed.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
