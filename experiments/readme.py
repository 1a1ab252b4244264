"""The README's generated parts, from the results files: ``python -m experiments.readme``.

The README holds two blocks that are never typed by hand, each between ``<!-- NAME:start -->``
and ``<!-- NAME:end -->`` markers:

- ``results``: the results matrix (algorithm x env: greedy success on the test levels, median
  and range over seeds, minutes to 90%), from ``experiments/results/benchmark.json``;
- ``quick``: the table ``penguin compare --quick`` printed, from
  ``experiments/results/compare_quick/compare.md``.

``--check`` exits with status 1 (and says which block) when the README is out of date.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "experiments" / "results"
ALGOS = ("bc", "ppo", "grpo", "dqn", "sb3-ppo")
ENVS = ("Penguin-Bare-v0", "Penguin-Gold-v0", "Penguin-Walls-v0", "Penguin-Lang-v0")


def _cell(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "—"
    success = sorted(r["greedy_success"] for r in rows)
    text = f"{statistics.median(success):.1%}"
    if len(rows) > 1:
        text += f" [{success[0]:.1%}, {success[-1]:.1%}]"
    minutes = [r["minutes_to_90"] for r in rows]
    if all(m is not None for m in minutes):
        text += f" · {statistics.median(minutes):.1f} min"
    return text


def results_matrix(benchmark: dict[str, Any]) -> str:
    """The matrix of the plain commands' runs (not fine-tuning, not the ego view)."""
    rows = [r for r in benchmark["results"] if not r["name"].split("-", 1)[1].startswith(("finetune",))]
    plain = {(r["algo"], r["env_id"]) for r in rows}
    lines = [
        "| algorithm | " + " | ".join(env.split("-")[1] for env in ENVS) + " |",
        "|---|" + "---:|" * len(ENVS),
    ]
    for algo in ALGOS:
        if not any((algo, env) in plain for env in ENVS):
            continue
        cells = [_cell([r for r in rows if r["algo"] == algo and r["env_id"] == env]) for env in ENVS]
        lines.append(f"| {algo} | " + " | ".join(cells) + " |")
    seeds = sorted({r["seed"] for r in rows})
    dates = sorted({r["date"] for r in rows})
    machines = sorted({r["machine"] for r in rows})
    lines += [
        "",
        "Greedy success on 500 test levels, median [worst, best] over the seeds each cell ran (of seeds "
        f"{', '.join(map(str, seeds))}; a cell without a range is one seed's run), then the median minutes of training (evaluations included) to 90% on the validation levels. Each "
        "cell is `penguin train --algo ALGO --env ENV --seed S` with its settings file's budget "
        "(sb3-ppo: `--budget 2m`, the outside reference); measured on "
        f"{'; '.join(machines)}, {dates[0]}{' to ' + dates[-1] if len(dates) > 1 else ''}. "
        "[All runs, with env steps to 95% and the curves](experiments/results/benchmark.md).",
    ]
    return "\n".join(lines)


def quick_table(compare_md: str) -> str:
    """The table (and the line under it) of a ``compare.md``."""
    lines = compare_md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| algorithm"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def blocks() -> dict[str, str]:
    """The generated blocks from the results files."""
    out = {}
    benchmark = RESULTS / "benchmark.json"
    if benchmark.is_file():
        out["results"] = results_matrix(json.loads(benchmark.read_text()))
    quick = RESULTS / "compare_quick" / "compare.md"
    if quick.is_file():
        out["quick"] = quick_table(quick.read_text())
    return out


def render(readme: str, generated: dict[str, str]) -> str:
    """``readme`` with each marked block replaced by its generated text."""
    for name, text in generated.items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.DOTALL)
        if not pattern.search(readme):
            raise SystemExit(f"README.md has no <!-- {name}:start --> ... <!-- {name}:end --> block")
        readme = pattern.sub(lambda m, t=text: m.group(1) + t + "\n" + m.group(2), readme)
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say whether README.md is up to date")
    args = parser.parse_args(argv)
    current = README.read_text()
    updated = render(current, blocks())
    if args.check:
        if updated != current:
            print("README.md's generated blocks are out of date: run python -m experiments.readme", file=sys.stderr)
            return 1
        return 0
    if updated != current:
        from agents.files import write_text_atomic

        write_text_atomic(README, updated)
        print("README.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
