"""Copy benchmark runs' final checkpoints into the package as its shipped agents:
``python -m experiments.ship_agents``.

For each ``(algorithm, env)`` of :data:`SHIPPED`, the benchmark's run of that entry with the
highest greedy success on the test levels (``experiments/results/benchmark.json``) gives its
``final.pt``, copied to ``agents/pretrained/<algo>-<env id>.pt`` and listed in
``agents/pretrained/index.json`` with the command that trained it, its success, machine and
date. A checkpoint of 2 MB or more is refused: the package stays small.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from agents.files import write_text_atomic
from agents.pretrained import PRETRAINED_DIR
from experiments.benchmark import ENTRIES, run_path

#: The benchmark entries whose agents ship: every algorithm on Bare and Gold, behaviour cloning
#: on every env, and PPO on Walls and Lang (the best agents there).
SHIPPED = ("bc-bare", "ppo-bare", "grpo-bare", "dqn-bare", "bc-gold", "ppo-gold", "grpo-gold", "dqn-gold",
           "bc-walls", "ppo-walls", "bc-lang", "ppo-lang")
MAX_BYTES = 2 * 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, default=Path("experiments") / "results" / "benchmark.json")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs") / "benchmark")
    parser.add_argument("--only", nargs="+", default=list(SHIPPED), choices=list(SHIPPED))
    args = parser.parse_args(argv)
    rows = json.loads(args.report.read_text())["results"]
    index_path = PRETRAINED_DIR / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    for name in args.only:
        candidates = [r for r in rows if r["name"] == name]
        if not candidates:
            print(f"{name}: no benchmark run in {args.report}; skipped", file=sys.stderr)
            continue
        best = max(candidates, key=lambda r: (r["greedy_success"], -r["seed"]))
        source = run_path(args.runs_dir, name, best["seed"]) / "checkpoints" / "final.pt"
        if not source.is_file():
            print(f"{name}: {source} is missing; skipped", file=sys.stderr)
            continue
        if source.stat().st_size >= MAX_BYTES:
            raise SystemExit(f"{source} is {source.stat().st_size / 2**20:.1f} MiB, over the 2 MiB a shipped agent may be")
        entry = ENTRIES[name]
        file = f"{entry.algo}-{entry.env_id}.pt"
        PRETRAINED_DIR.mkdir(exist_ok=True)
        shutil.copyfile(source, PRETRAINED_DIR / file)
        index[f"{entry.algo}-{entry.env_id}"] = {
            "algo": entry.algo, "env_id": entry.env_id, "file": file, "seed": best["seed"],
            "greedy_success": best["greedy_success"], "greedy_spl": best["greedy_spl"],
            "command": best["command"], "machine": best["machine"], "date": best["date"],
        }
        print(f"{name}: seed {best['seed']}, {best['greedy_success']:.1%} greedy on the test levels -> {file}")
    write_text_atomic(index_path, json.dumps(dict(sorted(index.items())), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
