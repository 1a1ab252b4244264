"""The benchmark's report: rows from each run's evaluations, medians and worst seeds, targets,
and merged rows that keep the machine and date they were measured on."""

from __future__ import annotations

import json

import pytest

from experiments import benchmark
from experiments.commands import train


def curve(*points: tuple[int, float, float]) -> list[dict[str, float]]:
    """Validation evaluations at (env steps, minutes, greedy success), then the test one."""
    rows = [{"env_steps": s, "wall_time": 60.0 * m, "success_rate": g, "spl": g / 2, "sampled_success_rate": 1.0,
             "sampled_spl": 0.5, "test_levels": 0.0} for s, m, g in points]
    last = rows[-1]
    return [*rows, {**last, "success_rate": 0.97, "spl": 0.9, "test_levels": 1.0}]


def row(name: str, seed: int, wall_minutes: float, points, **more) -> dict:
    command = ["python", "-m", "experiments.cli", "train", "--algo", "ppo", "--seed", str(seed)]
    return {**benchmark.result_row(name, seed, command, 60.0 * wall_minutes, 0.5, curve(*points)), **more}


def test_a_row_reads_the_test_evaluation_and_the_first_crossings_on_validation_levels() -> None:
    # 95% is first crossed on validation levels at the third evaluation; the test row (97%) is
    # the final figure but never counts as a crossing.
    r = row("ppo-bare", 0, 1.9, [(100_000, 0.5, 0.4), (200_000, 1.0, 0.91), (300_000, 1.5, 0.96)])
    assert (r["greedy_success"], r["greedy_spl"], r["env_steps"]) == (0.97, 0.9, 300_000)
    assert (r["env_steps_to_90"], r["minutes_to_90"]) == (200_000, 1.0)
    assert (r["env_steps_to_95"], r["minutes_to_95"]) == (300_000, 1.5)
    assert r["command"] == "penguin train --algo ppo --seed 0"
    never = row("ppo-bare", 1, 1.9, [(100_000, 0.5, 0.4)])
    assert never["env_steps_to_95"] is None and never["greedy_success"] == 0.97


def test_summary_is_median_and_worst_and_a_target_needs_every_seed_in_time() -> None:
    fast = [(100_000, 0.6, 0.96)]
    rows = [row("ppo-bare", 0, 1.8, fast), row("ppo-bare", 1, 1.9, [(200_000, 1.2, 0.95)]), row("ppo-bare", 2, 2.0, fast)]
    (s,) = benchmark.report(rows)["entries"]
    assert s["greedy_median"] == s["greedy_worst"] == 0.97
    assert (s["minutes_to_95_median"], s["minutes_to_95_worst"]) == (0.6, 1.2)
    assert (s["env_steps_to_95_median"], s["env_steps_to_95_worst"]) == (100_000, 200_000)
    assert s["met"] is True and s["command"] == "penguin train --algo ppo --seed S"
    late = [*rows[:2], row("ppo-bare", 2, 2.6, fast)]  # over 2 minutes and the half-minute start-up
    assert benchmark.report(late)["entries"][0]["met"] is False
    unreached = [*rows[:2], row("ppo-bare", 2, 1.9, [(100_000, 0.6, 0.5)])]
    s = benchmark.report(unreached)["entries"][0]
    assert s["minutes_to_95_median"] is None and s["minutes_to_95_worst"] is None


def test_a_rerun_replaces_its_rows_and_keeps_the_others_with_their_machine(tmp_path, monkeypatch) -> None:
    old = [row("ppo-bare", 0, 1.8, [(100_000, 0.6, 0.96)], machine="old box", date="2026-01-01"),
           row("grpo-bare", 0, 1.8, [(100_000, 0.6, 0.96)], machine="old box", date="2026-01-01")]
    benchmark.write(old, tmp_path)
    fresh = row("ppo-bare", 0, 1.7, [(80_000, 0.5, 0.97)], machine="new box", date="2026-02-02")
    monkeypatch.setattr(benchmark, "run_one", lambda name, seed, runs_dir: fresh)
    assert benchmark.main(["--only", "ppo-bare", "--seeds", "0", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "benchmark.json").read_text())
    assert {(r["name"], r["machine"]) for r in data["results"]} == {("ppo-bare", "new box"), ("grpo-bare", "old box")}
    lines = (tmp_path / "benchmark.md").read_text().splitlines()
    assert any(line.startswith("| grpo-bare | 0 |") and line.endswith("| old box, 2026-01-01 |") for line in lines)
    assert (tmp_path / "benchmark.png").stat().st_size > 0


@pytest.mark.parametrize("name", [n for n, e in benchmark.ENTRIES.items() if e.minutes and not e.flags and e.algo != "bc"])
def test_each_entry_is_the_plain_command_whose_budget_is_the_targets_time(name) -> None:
    entry = benchmark.ENTRIES[name]
    config = train.resolve(["--algo", entry.algo, "--env", entry.env_id, "--run-name", "x"])
    assert config.time_limit == pytest.approx(entry.minutes), (name, config.time_limit)


def test_an_algorithm_has_one_colour_in_every_env_and_algorithms_differ() -> None:
    assert benchmark.plot_color("dqn-bare") == benchmark.plot_color("dqn-gold") == benchmark.plot_color("dqn-lang")
    colours = {benchmark.plot_color(f"{algo}-bare") for algo in ("bc", "ppo", "grpo", "dqn", "sb3-ppo")}
    assert len(colours) == 5
    assert benchmark.plot_color("ppo-finetune-gold") != benchmark.plot_color("ppo-gold")
