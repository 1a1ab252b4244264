"""Runs that survive ``kill -9``, SIGTERM and a full disk: resume from the last complete
checkpoint to the same weights, ``eval.csv`` without repeated or torn rows, one clear line and
the previous files intact when a write fails."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import agents
from agents.files import DiskFullError, FileWriter, atomic_write
from algorithms.run_dir import RunDir
from experiments import cli
from tests.small_policy import SMALL_SETTINGS

#: A PPO run of a few seconds with frequent evaluations and checkpoints.
TINY_PPO = [
    "--algo", "ppo", "--env", "Penguin-Bare-v0", "--env-kwargs", "size=4", "image_size=24", "radius=1",
    "--num-levels", "1000", "--env-steps", "12288", "--num-envs", "8", "--num-steps", "32",
    "--eval-every", "512", "--eval-episodes", "10", "--final-eval-episodes", "20", "--checkpoint-every", "1024",
    "--threads", "1", "--seed", "3", "--no-progress", "--no-tensorboard",
    *[arg for name, value in SMALL_SETTINGS.items() for arg in (f"--policy.{name.replace('_', '-')}", str(value))],
]


def train_command(runs: Path, name: str, *more: str) -> list[str]:
    return [sys.executable, "-m", "experiments.cli", "train", *TINY_PPO, "--out", str(runs), "--run-name", name, *more]


def run_path(runs: Path, name: str) -> Path:
    return runs / "Penguin-Bare-v0" / "ppo" / name


def weights(path: Path) -> dict[str, torch.Tensor]:
    return agents.read(path)["state_dict"]


def rows_without_wall_time(run: Path) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "wall_time"} for row in RunDir(run.parent, run.name).read_eval()]


def start(command: list[str]) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_kill_9_after_a_periodic_checkpoint_resumes_to_the_same_weights_and_rows(tmp_path) -> None:
    runs = tmp_path / "runs"
    whole = subprocess.run(train_command(runs, "whole"), capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr[-2000:]

    proc = start(train_command(runs, "killed"))
    run = run_path(runs, "killed")
    wait_for(run / "checkpoints" / "last.pt", proc)  # the first periodic checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    # Whatever the kill interrupted, plus a row torn half-way, as a crash in the middle of a write would leave.
    with (run / "eval.csv").open("a") as f:
        f.write("99999,12,0.5")
    resumed = subprocess.run(train_command(runs, "killed", "--resume"), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    expected, got = weights(run_path(runs, "whole") / "checkpoints" / "final.pt"), weights(run / "checkpoints" / "final.pt")
    for name, value in expected.items():
        assert torch.equal(value, got[name]), name
    rows = rows_without_wall_time(run)
    assert rows == rows_without_wall_time(run_path(runs, "whole"))
    steps = [row["step"] for row in rows]
    assert steps == sorted(set(steps))  # no repeated row, none torn
    assert not list(run.rglob("*.tmp"))


def test_sigterm_saves_a_resumable_checkpoint_and_exits_143(tmp_path) -> None:
    runs = tmp_path / "runs"
    proc = start(train_command(runs, "term", "--env-steps", "10000000"))
    run = run_path(runs, "term")
    wait_for(run / "eval.csv", proc)  # training is under way
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "--resume" in stdout and "Traceback" not in stderr
    data = agents.read(run / "checkpoints" / "last.pt")
    assert data["resume"]["counters"]["env_steps"] > 0
    assert not (run / "checkpoints" / "final.pt").exists()


def test_checkpoints_are_due_by_wall_time_too(tmp_path, monkeypatch) -> None:
    from algorithms import driver
    from algorithms.cadence import EveryMinutes
    from algorithms.ppo import PPOConfig, train
    from tests.small_policy import tiny_run

    readings = iter(range(0, 10**6, 40))

    class FortySecondsPerReading(EveryMinutes):
        def __init__(self, minutes: float) -> None:
            super().__init__(minutes, clock=lambda: float(next(readings)))

    saved: list[int] = []
    save = driver.TrainingRun.save_resume_checkpoint

    def spy(self) -> None:
        saved.append(self.counters.iteration)
        save(self)

    monkeypatch.setattr(driver, "EveryMinutes", FortySecondsPerReading)
    monkeypatch.setattr(driver.TrainingRun, "save_resume_checkpoint", spy)
    train(PPOConfig(**tiny_run(tmp_path, "clock", final_eval_episodes=4), total_env_steps=8 * 32 * 6, num_envs=8, num_steps=32,
                    checkpoint_minutes=1.0))
    # The clock is read when the loop starts (0 s), once after each iteration and again after each
    # save: a minute has passed after iterations 2 (80 s), 4 (200 s) and 6 (320 s); the run's
    # end saves once more.
    assert saved == [2, 4, 6, 6], saved


SMALL_FLAGS = [a for n, v in SMALL_SETTINGS.items() for a in (f"--policy.{n.replace('_', '-')}", str(v))]

#: case -> (file name, which of its writes fails, a ``penguin train`` command that writes it)
WRITES = {
    "last.pt": ("last.pt", 2, TINY_PPO),
    "last.pt with the replay buffer": ("last.pt", 2, [
        "--algo", "dqn", "--env", "Penguin-Bare-v0", "--env-kwargs", "size=4", "image_size=24", "radius=1",
        "--env-steps", "3000", "--num-envs", "8", "--buffer-size", "4000", "--learning-starts", "200",
        "--batch-size", "32", "--save-buffer", "--checkpoint-every", "800", "--final-eval-episodes", "4",
        "--threads", "1", "--no-progress", "--no-tensorboard", *SMALL_FLAGS]),
    "best.pt": ("best.pt", 1, TINY_PPO),
    "eval.csv": ("eval.csv", 2, TINY_PPO),
    "config.json": ("config.json", 1, TINY_PPO),
    "labelled steps": ("round1.npz", 1, [
        "--algo", "bc", "--env", "Penguin-Bare-v0", "--env-kwargs", "size=4", "image_size=24",
        "--total-steps", "40", "--data-steps", "400", "--dagger-rounds", "1", "--dagger-steps", "200",
        "--batch-size", "16", "--num-envs", "8", "--final-eval-episodes", "4", "--threads", "1",
        "--no-progress", "--no-tensorboard", *SMALL_FLAGS]),
}


@pytest.mark.parametrize("case", list(WRITES))
def test_a_full_disk_prints_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch, capsys, case) -> None:
    name, failing, command = WRITES[case]
    started: list[FileWriter] = []  # one per write of the file (kept, so each stays distinct)
    write = FileWriter.write

    def full_disk(self: FileWriter, data) -> int:
        if self.path.name == name:
            if not any(w is self for w in started):
                started.append(self)
            if len(started) == failing:
                raise OSError(errno.ENOSPC, "No space left on device")
        return write(self, data)

    monkeypatch.setattr(FileWriter, "write", full_disk)
    runs = tmp_path / "runs"
    code = cli.main(["train", *command, "--out", str(runs), "--run-name", "full"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_DISK_FULL
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "no space left" in lines[0] and name in lines[0] and "Traceback" not in err, err
    run = next(runs.glob("*/*/full"))
    assert not list(run.rglob("*.tmp")), list(run.rglob("*.tmp"))  # nothing half-written left
    target = next(run.rglob(name), None)
    if failing == 1:
        assert target is None
    elif name.endswith(".pt"):
        assert target is not None and "state_dict" in agents.read(target)  # the previous version
    else:
        assert target is not None and len(RunDir(run.parent, run.name).read_eval()) == 1


def test_atomic_write_keeps_the_old_file_when_the_disk_fills(tmp_path, monkeypatch) -> None:
    path = tmp_path / "report.json"
    atomic_write(path, lambda f: f.write(b"old"))

    def full(self: FileWriter, data) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileWriter, "write", full)
    with pytest.raises(DiskFullError, match="no space left on the disk of .* while writing report.json"):
        atomic_write(path, lambda f: f.write(b"new"))
    # torch reports a failed write as a RuntimeError raised while handling the OSError
    with pytest.raises(DiskFullError):
        atomic_write(path, lambda f: torch.save({"x": torch.zeros(10)}, f))
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
