"""``penguin traces``, ``penguin bench`` and ``penguin play`` end to end on tiny sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import h5py
import pygame
import pytest

import agents
import penguin_env  # noqa: F401  (registers the ids)
from experiments.cli import main
from penguin_env import play
from penguin_env.core import Action
from penguin_env.play import NoDisplayError, PlaySession
from penguin_env.wrappers import TokenizeInstruction


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# -- traces -----------------------------------------------------------------------------------
def test_traces_generate_info_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bare.h5"
    code, out, _ = run_cli(
        ["traces", "generate", str(path), "--env", "Penguin-Bare-v0", "--episodes", "5",
         "--seed", "2", "--env-kwargs", "size=5", "image_size=35", "--no-progress"],
        capsys,
    )  # fmt: skip
    assert code == 0 and path.is_file() and "5 episodes" in out

    code, out, _ = run_cli(["traces", "info", str(path), "--json"], capsys)
    info = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and info["env_id"] == "Penguin-Bare-v0" and info["episodes"] == 5
    assert info["env_kwargs"] == {"size": 5, "image_size": 35} and info["image_shape"] == [35, 35, 3]
    assert info["generator"]["seed"] == 2 and info["success_rate"] == 1.0
    assert info["steps"] >= 5 and info["tasks"] == {"collect": 5}
    code, out, _ = run_cli(["traces", "info", str(path)], capsys)
    assert code == 0 and "Penguin-Bare-v0" in out and "35x35x3" in out

    code, out, _ = run_cli(["traces", "verify", str(path)], capsys)
    assert code == 0 and out.startswith("OK:")

    with h5py.File(path, "r+") as f:  # change one stored action: the file no longer checks out
        f["steps"]["action"][0] = (int(f["steps"]["action"][0]) + 1) % 4
    code, out, err = run_cli(["traces", "verify", str(path)], capsys)
    assert code == 1 and err.startswith("FAILED:") and "steps/action" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["traces"], "Expected one of {generate, verify, info}"),
        (["traces", "verify", "missing.h5"], "no trace file at missing.h5"),
        (["traces", "info", "missing.h5"], "no trace file at missing.h5"),
        (["traces", "generate", "x.h5", "--env", "Nope-v0"], "unknown env id 'Nope-v0'; choose from"),
        (["traces", "generate", "x.h5", "--episodes", "0"], "num_episodes must be an int >= 1"),
        (["traces", "generate", "x.h5", "--env-kwargs", "radius=2", "--env", "Penguin-Gold-v0"], "radius"),
        (["bench", "--trainers", "bc"], "unknown or non-RL trainer(s) ['bc']; choose from"),
        (["bench", "--env", "Nope-v0"], "unknown env id 'Nope-v0'"),
        (["play", "--env", "Nope-v0"], "unknown env id 'Nope-v0'"),
        (["play", "--agent", "missing.pt"], "no checkpoint at missing.pt"),
        (["play", "--sample"], "--sample needs --agent"),
    ],
)  # fmt: skip
def test_user_errors(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert err.startswith(f"penguin {argv[0]}: error: ") and "Traceback" not in err


# -- bench ------------------------------------------------------------------------------------
def test_bench_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "bench"
    code, out, _ = run_cli(
        ["bench", "--quick", "--out", str(out_dir), "--env", "Penguin-Bare-v0", "--trainers", "ppo",
         "--trainer-steps", "64", "--threads", "1", "--seconds", "0.02"],
        capsys,
    )  # fmt: skip
    assert code == 0
    data = json.loads((out_dir / "bench.json").read_text())
    table = (out_dir / "bench.md").read_text()
    assert data["env"]["config"]["env_id"] == "Penguin-Bare-v0" and data["env"]["config"]["quick"]
    native = [r for r in data["env"]["rows"] if r["name"].startswith("native")]
    assert {r["num_envs"] for r in native} == {16, 256} and all(r["steps_per_s"] > 0 for r in native)
    (row,) = data["trainers"]["rows"]
    assert row["algo"] == "ppo" and row["env_steps"] >= 64 and row["env_steps_per_s"] > 0
    assert data["trainers"]["config"]["threads"] == 1
    assert f"| ppo | {row['env_steps_per_s']:,.0f} | {row['env_steps']:,} |" in table
    assert "# Env speed: Penguin-Bare-v0" in table and "issue" not in table.lower()
    assert table in out


# -- play -------------------------------------------------------------------------------------
@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """An untrained policy saved as a trainer would save it for Penguin-Bare-v0."""
    env = TokenizeInstruction(gym.make("Penguin-Bare-v0"))
    policy = agents.MultimodalPolicy(
        env.observation_space, env.action_space, agents.PolicyConfig(hidden=16)
    )
    extra = {"env_id": "Penguin-Bare-v0", "env_kwargs": {"num_levels": 10, "start_level": 0}}
    return agents.save(policy, tmp_path / "agent.pt", trainer="ppo", extra=extra)


def _press(*keys: int) -> None:
    for key in keys:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key))


def test_watch_an_agent_pause_and_step() -> None:
    seen: list[dict] = []

    def turn_left(obs: dict) -> int:
        seen.append(obs)
        return int(Action.LEFT)

    s = PlaySession("Penguin-Bare-v0", seed=0, fps=0, agent=turn_left, agent_speed=0, agent_hold=0)
    try:
        s.run(max_frames=3)
        assert s.steps == 3 and len(seen) == 3
        assert isinstance(seen[0]["text"], str) and seen[0]["image"].shape == (64, 64, 3)
        _press(pygame.K_SPACE)  # pause
        s.run(max_frames=3)
        assert s.paused and s.steps == 3
        assert any("PAUSED" in line for line in s.status_lines())
        _press(pygame.K_s)  # one step, still paused
        s.run(max_frames=2)
        assert s.paused and s.steps == 4
        _press(pygame.K_UP, pygame.K_SPACE)  # arrows do nothing while an agent plays; resume
        s.run(max_frames=2)
        assert not s.paused and s.steps == 6 and s.last_action == Action.LEFT
    finally:
        s.close()


def test_agent_episode_ends_then_next_level() -> None:
    s = PlaySession(
        "Penguin-Bare-v0", seed=0, fps=0, agent=lambda obs: int(Action.STOP), agent_speed=0, agent_hold=0
    )
    try:
        level = s.game.get_state()["episode"]["index"]
        s.run(max_frames=1)
        assert s.done and s.steps == 1
        s.run(max_frames=1)  # the next frame moves on
        assert s.game.get_state()["episode"]["index"] == level + 1 and s.steps == 0
    finally:
        s.close()


def test_penguin_play_with_agent(checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        ["play", "--agent", str(checkpoint), "--max-frames", "4", "--fps", "0", "--speed", "0"], capsys
    )
    assert code == 0, err
    code, _, err = run_cli(["play", "--env", "Penguin-Gold-v0", "--max-frames", "2", "--fps", "0", "--hint"], capsys)
    assert code == 0, err
    code, out, _ = run_cli(["play", "--help"], capsys)
    assert code == 0 and "--agent" in out and "--hint" in out and "--seed" in out


def test_no_display_is_an_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SDL_VIDEODRIVER")
    monkeypatch.setattr(pygame.display, "get_driver", lambda: "offscreen")
    with pytest.raises(NoDisplayError, match="SDL_VIDEODRIVER=dummy"):
        PlaySession("Penguin-Bare-v0", seed=0, fps=0)
    assert play.main(["--max-frames", "2"]) == 1
    code, _, err = run_cli(["play", "--max-frames", "2"], capsys)
    assert code == 1 and "no display found" in err


def test_headless_without_a_driver_exits_non_zero() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")}
    run = subprocess.run(
        [sys.executable, "-m", "penguin_env.play", "--max-frames", "2", "--fps", "0"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1 and "no display found" in run.stderr
