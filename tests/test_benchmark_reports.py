"""Benchmark reports: merged rows keep the machine and date they were measured on."""

from __future__ import annotations

import json

from experiments import dqn_benchmark, rl_benchmark


def _row(name: str, seed: int, **more) -> dict:
    curve = [
        {"env_steps": 1_000, "wall_time": 60.0, "success_rate": 0.5},
        {"env_steps": 2_000, "wall_time": 120.0, "success_rate": 0.92},
    ]
    return {
        "name": name, "algo": "ppo", "seed": seed, "greedy_success": 0.92, "greedy_spl": 0.8,
        "sampled_success": 1.0, "sampled_spl": 0.9, "env_steps": 2_000, "wall_time_s": 120.0,
        "env_steps_to_90": 2_000, "minutes_to_90": 2.0, "peak_rss_gb": 0.7, "target": 0.9,
        "minutes_allowed": 15.0, "met": True, "curve": curve, **more,
    }


def test_merged_rows_keep_their_own_machine_and_date(tmp_path) -> None:
    old_meta = {"machine": "old box", "date": "2026-01-01"}
    report = tmp_path / "rl_benchmark.json"
    report.write_text(json.dumps({"meta": old_meta, "results": [_row("ppo-bare", 0), _row("ppo-bare", 1)]}))

    kept = rl_benchmark.kept_rows(report, redone={("ppo-bare", 1)})
    assert [(r["name"], r["seed"]) for r in kept] == [("ppo-bare", 0)]
    assert (kept[0]["machine"], kept[0]["date"]) == ("old box", "2026-01-01")  # from the old header

    new = _row("ppo-bare", 1, machine="new box", date="2026-02-02")
    rl_benchmark.write_report([*kept, new], tmp_path, {"machine": "new box", "date": "2026-02-02"})
    table = [line for line in (tmp_path / "rl_benchmark.md").read_text().splitlines() if line.startswith("| ppo-bare")]
    assert len(table) == 2
    assert table[0].endswith("| old box, 2026-01-01 |") and table[1].endswith("| new box, 2026-02-02 |")
    # A row that already names its machine keeps it when merged again under another header.
    again = rl_benchmark.kept_rows(tmp_path / "rl_benchmark.json", redone=set())
    assert [r["machine"] for r in again] == ["old box", "new box"]
    assert (tmp_path / "rl_benchmark.png").stat().st_size > 0


def test_dqn_report_names_each_rows_machine(tmp_path) -> None:
    rows = [
        _row("dqn-bare", 0, machine="box a", date="2026-01-01", env_steps_per_s=1_000.0,
             bytes_per_transition=12_308, replay_ratio=4.0),
        _row("sb3-dqn-bare", 0, machine="box b", date="2026-01-02", env_steps_per_s=300.0,
             bytes_per_transition=None, replay_ratio=None, target=None, met=None),
    ]
    dqn_benchmark.write_report(rows, tmp_path, {"machine": "box b", "date": "2026-01-02"})
    lines = (tmp_path / "dqn_benchmark.md").read_text().splitlines()
    assert any(line.startswith("| dqn-bare | 0 |") and line.endswith("| box a, 2026-01-01 |") for line in lines)
    assert any(line.startswith("| sb3-dqn-bare | 0 |") and "| n/a |" in line and line.endswith("| box b, 2026-01-02 |")
               for line in lines)
