"""Every trainer on a GPU for a few thousand env steps: ``python -m experiments.gpu_check``.

Each trainer runs its Bare settings (``penguin train``'s) with ``device="cuda"`` for a short
budget and reports env steps (BC: gradient steps) per second, the held-out greedy success of
its short run, and whether its weights and its sampling stayed on the GPU. Exits with status 1
and one line when no GPU is present. ``--out DIR`` writes ``gpu_check.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: algorithm -> budget fields of its short run
BUDGETS: dict[str, dict[str, Any]] = {
    "ppo": {"total_env_steps": 8_192},
    "grpo": {"total_env_steps": 8_192},
    "dqn": {"total_env_steps": 4_096, "learning_starts": 1_024},
    "bc": {"total_steps": 200, "data_steps": 2_000, "dagger_steps": 1_000},
    "sb3-ppo": {"total_env_steps": 8_192},
    "sb3-dqn": {"total_env_steps": 4_096, "learning_starts": 1_024},
}


def check(algo: str, runs_dir: Path, device: str) -> dict[str, Any]:
    """Train ``algo`` briefly on ``device``; its throughput and where its weights ended up."""
    from algorithms import registry
    from experiments.presets import build_config

    config = build_config(algo, "Penguin-Bare-v0", overrides={
        **BUDGETS[algo], "device": device, "runs_dir": str(runs_dir), "run_name": algo,
        "progress": False, "tensorboard": False, "eval_every": 0, "final_eval_episodes": 100,
    })
    _, train = registry.get(algo)
    start = time.perf_counter()
    result = train(config)
    seconds = time.perf_counter() - start
    total, unit = config.budget
    done = result.env_steps if unit == "env_steps" else result.gradient_steps
    return {
        "algo": algo,
        "device": str(next(result.policy.parameters()).device),
        "unit": unit,
        "done": done,
        "per_second": done / seconds,
        "seconds": seconds,
        "greedy_success": result.final_eval.success_rate if result.final_eval else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", nargs="+", default=list(BUDGETS), choices=list(BUDGETS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=None, help="write gpu_check.json and .md here")
    args = parser.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is present (torch.cuda.is_available() is False); "
              "run it on a machine with one, or pass --device cpu", file=sys.stderr)
        return 1
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for algo in args.algos:
            row = check(algo, Path(tmp), args.device)
            rows.append(row)
            print(f"{algo:8s} on {row['device']}: {row['per_second']:,.0f} {row['unit'].replace('_', ' ')}/s "
                  f"({row['done']:,} in {row['seconds']:.1f} s), greedy success {row['greedy_success']:.1%}",
                  flush=True)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_check.json").write_text(json.dumps({"gpu": name, "results": rows}, indent=2) + "\n")
        lines = [f"# GPU check on {name}", "", "| algorithm | device | per second | unit | greedy success |",
                 "|---|---|---:|---|---:|"]
        lines += [f"| {r['algo']} | {r['device']} | {r['per_second']:,.0f} | {r['unit']} | "
                  f"{r['greedy_success']:.1%} |" for r in rows]
        (args.out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    wrong = [r["algo"] for r in rows if not r["device"].startswith(args.device.split(":")[0])]
    if wrong:
        print(f"gpu_check: {wrong} ended with weights off {args.device}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
