"""Benchmark reports: merged rows keep the machine and date they were measured on."""

from __future__ import annotations

import json

import pytest

from experiments import dqn_benchmark, finetune_benchmark, rl_benchmark


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


def test_result_row_reads_the_final_evaluation_and_the_first_ninety_percent() -> None:
    from experiments.timed_run import TimedRun

    def evaluation(env_steps: int, minutes: float, success: float) -> dict:
        return {"env_steps": env_steps, "wall_time": 60.0 * minutes, "success_rate": success, "spl": success / 2,
                "sampled_success_rate": 1.0, "sampled_spl": 0.5}

    # 90% is first reached at the second evaluation; the run dips below it and ends at 93%.
    curve = [evaluation(100, 1.0, 0.4), evaluation(200, 2.0, 0.91), evaluation(300, 3.0, 0.85), evaluation(400, 4.0, 0.93)]
    command = ["python", "-m", "experiments.cli", "train", "--algo", "ppo", "--seed", "0"]
    run = TimedRun(stdout="", wall_time_s=250.0, peak_rss_gb=0.5, curve=curve)
    row = rl_benchmark.result_row("ppo-bare", "ppo", 0, command, run, target=0.9, minutes=15.0)
    assert (row["greedy_success"], row["greedy_spl"], row["env_steps"]) == (0.93, 0.465, 400)
    assert (row["env_steps_to_90"], row["minutes_to_90"]) == (200, 2.0)
    assert row["met"] is True and row["command"] == "-m experiments.cli train --algo ppo --seed 0"
    # Over the time allowed (plus two minutes' grace), or below the target: not met.
    late = TimedRun(stdout="", wall_time_s=60.0 * 17.5, peak_rss_gb=None, curve=curve)
    assert rl_benchmark.result_row("ppo-bare", "ppo", 0, command, late, target=0.9, minutes=15.0)["met"] is False
    assert rl_benchmark.result_row("ppo-bare", "ppo", 0, command, run, target=0.95, minutes=15.0)["met"] is False
    never = TimedRun(stdout="", wall_time_s=250.0, peak_rss_gb=None, curve=curve[:1])
    unreached = rl_benchmark.result_row("sb3", "sb3-ppo", 1, command, never, target=None, minutes=15.0)
    assert unreached["env_steps_to_90"] is None and unreached["minutes_to_90"] is None and unreached["met"] is None


def test_fine_tuning_report_judges_each_run_against_its_bc_start(tmp_path) -> None:
    def bc(env_id: str, success: float, spl: float) -> dict:
        return {"env_id": env_id, "seed": 0, "greedy_success": success, "greedy_spl": spl, "sampled_success": 1.0,
                "sampled_spl": 0.9, "wall_time_s": 300.0, "peak_rss_gb": 2.8}

    gold, lang = bc("Penguin-Gold-v0", 0.97, 0.925), bc("Penguin-Lang-v0", 0.908, 0.890)
    where = {"machine": "box a", "date": "2026-01-01"}
    better = _row("ppo-ft-gold", 0, greedy_success=0.98, greedy_spl=0.93, **where)
    more_success_longer_paths = _row("ppo-ft-gold", 1, greedy_success=0.974, greedy_spl=0.917, **where)
    assert finetune_benchmark.above_bc(better, gold)
    assert not finetune_benchmark.above_bc(more_success_longer_paths, gold)  # SPL counts too
    assert not finetune_benchmark.above_bc(_row("x", 0, greedy_success=0.97, greedy_spl=0.95), gold)  # a tie is not above

    rows = [{**r, "env_id": "Penguin-Gold-v0", "aim": 0.97, "met": finetune_benchmark.above_bc(r, gold)}
            for r in (better, more_success_longer_paths)]
    lang_row = {**_row("grpo-ft-lang", 0, **where), "env_id": "Penguin-Lang-v0", "aim": 0.95, "met": True}
    finetune_benchmark.write_report([{**gold, **where}, {**lang, **where}], [*rows, lang_row], tmp_path, where)
    table = [line for line in (tmp_path / "finetune_benchmark.md").read_text().splitlines() if line.startswith("| Penguin")]
    assert [line.split(" | ")[1] for line in table] == ["BC (start)", "ppo-ft-gold", "ppo-ft-gold", "BC (start)", "grpo-ft-lang"]
    assert "| yes | 97%: met |" in table[1] and "| NO | 97%: met |" in table[2]
    assert "| yes | 95%: not met |" in table[4]  # 92% greedy: above its start, short of the aim

    # A merge reads every row back with the machine and date of the report it came from.
    kept_bc, kept = finetune_benchmark.kept_rows(tmp_path / "finetune_benchmark.json")
    assert [b["env_id"] for b in kept_bc] == ["Penguin-Gold-v0", "Penguin-Lang-v0"]
    assert [(r["name"], r["seed"], r["machine"]) for r in kept] == [
        ("ppo-ft-gold", 0, "box a"), ("ppo-ft-gold", 1, "box a"), ("grpo-ft-lang", 0, "box a")]
    assert [finetune_benchmark.entry_of(r) for r in kept] == ["ppo-ft", "ppo-ft", "grpo-ft"]


def test_fine_tuning_benchmark_rejects_a_bad_checkpoint_pair(tmp_path) -> None:
    with pytest.raises(SystemExit, match="ENV=PATH"):
        finetune_benchmark.parse_checkpoints(["final.pt"])
    with pytest.raises(SystemExit, match="no checkpoint file"):
        finetune_benchmark.parse_checkpoints([f"Penguin-Gold-v0={tmp_path / 'missing.pt'}"])
    checkpoint = tmp_path / "bc" / "checkpoints" / "final.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"x")
    with pytest.raises(SystemExit, match="not in a run directory with an eval.csv"):
        finetune_benchmark.parse_checkpoints([f"Penguin-Gold-v0={checkpoint}"])
    (tmp_path / "bc" / "eval.csv").write_text("step,success_rate\n")
    assert finetune_benchmark.parse_checkpoints([f"Penguin-Gold-v0={checkpoint}"]) == {"Penguin-Gold-v0": checkpoint}
    with pytest.raises(SystemExit, match="holds no evaluation"):  # a BC run that never evaluated
        finetune_benchmark.bc_baseline("Penguin-Gold-v0", tmp_path, checkpoint, [])
