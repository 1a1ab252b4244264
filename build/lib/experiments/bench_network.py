"""Policy-network throughput: ``python -m experiments.bench_network [--out DIR]``.

Measures every architecture preset (``agents.config.PRESETS``) in one run, on real
``Penguin-Gold-v0`` observations (64x64 images, instructions as token ids):

- **train**: samples per second of a full update at batch 256 (forward of the logits and value
  heads, a loss, backward, Adam step);
- **forward**: samples per second of inference at batch 64 (what acting in 64 envs costs).

Each figure is the best of a few timed repeats (the machine may be shared). Prints a markdown
table and writes ``network_speed.json`` and ``network_speed.md`` to ``--out`` (default
``results/``, outside the package).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents import MultimodalPolicy, PolicyConfig
from agents.config import PRESETS
from algorithms.device import configure_torch
from algorithms.envs import make_vec_env
from algorithms.optim import make_adam
from experiments.machine import describe


def best_rate(block: Callable[[], int], seconds: float, repeats: int) -> float:
    """Best samples/s over ``repeats`` runs of about ``seconds``; ``block`` returns samples done."""
    for _ in range(3):
        block()  # warm-up: allocations, kernel selection
    rates = []
    for _ in range(repeats):
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            done += block()
        rates.append(done / (time.perf_counter() - start))
    return max(rates)


def observations(num: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``num`` real observations from ``Penguin-Gold-v0`` after a few random steps."""
    envs = make_vec_env("Penguin-Gold-v0", num, {})
    obs, _ = envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        obs, *_ = envs.step(rng.integers(0, 4, num))
    envs.close()
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in obs.items()}


def measure(config: PolicyConfig, seconds: float = 2.0, repeats: int = 3) -> dict[str, Any]:
    """Train and forward samples/s of one architecture."""
    envs = make_vec_env("Penguin-Gold-v0", 1, {})
    torch.manual_seed(0)
    policy = MultimodalPolicy(envs.single_observation_space, envs.single_action_space, config)
    envs.close()
    optimizer = make_adam(policy.parameters(), 3e-4)  # the trainers' optimizer, fused kernel included
    batch = observations(256)
    small = {k: v[:64] for k, v in batch.items()}
    actions = torch.randint(0, 5, (256,), generator=torch.Generator().manual_seed(0))

    def train_step() -> int:
        out = policy(batch, heads=("logits", "value"))
        loss = torch.nn.functional.cross_entropy(out["logits"], actions) + out["value"].square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return 256

    def forward() -> int:
        with torch.no_grad():
            policy(small, heads=("logits", "value"))
        return 64

    return {
        "parameters": sum(p.numel() for p in policy.parameters()),
        "train_samples_per_s": best_rate(train_step, seconds, repeats),
        "forward_samples_per_s": best_rate(forward, seconds, repeats),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench_network", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results", help="directory for network_speed.{json,md}")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all available cores)")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one timed repeat")
    args = parser.parse_args(argv)
    threads = configure_torch(args.threads)
    rows = []
    for name in PRESETS:
        row = {"preset": name, **measure(PolicyConfig.preset(name), args.seconds)}
        rows.append(row)
        print(
            f"{name:6s} {row['parameters']:>9,d} params  train {row['train_samples_per_s']:>8,.0f}/s"
            f"  forward {row['forward_samples_per_s']:>8,.0f}/s",
            flush=True,
        )
    meta = {
        "date": _dt.date.today().isoformat(),
        "machine": f"{describe()}, {threads} torch threads",
        "torch": torch.__version__,
        "observations": "Penguin-Gold-v0, 64x64, size 8",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "network_speed.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        f"Policy network throughput ({meta['observations']}; {meta['machine']}; torch {meta['torch']}; {meta['date']})",
        "",
        "| preset | parameters | train samples/s (batch 256) | forward samples/s (batch 64) |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| `{r['preset']}` | {r['parameters']:,} | {r['train_samples_per_s']:,.0f} | {r['forward_samples_per_s']:,.0f} |"
        for r in rows
    ]
    (out / "network_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
