"""Human play under the dummy video driver, driven by synthetic key events."""

from __future__ import annotations

import os
import subprocess
import sys

import pygame
import pytest
from penguin_states import make_state

from penguin_env.play import PlaySession, build_parser, env_kwargs_from_args, main


def _press(*keys: int) -> None:
    for key in keys:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key))


@pytest.fixture
def session():
    # Collect task on a 5x5 level: gold two cells east of the penguin, a wall in between rows.
    state = make_state(size=5, pos=(1, 2), heading=0, gold=[(3, 2)], task="collect", walls=[(2, 1)])
    s = PlaySession("Penguin-Lang-v0", seed=3, env_kwargs={"size": 5}, fps=0, state=state)
    yield s
    s.close()


def test_scripted_keys_reach_success(session: PlaySession) -> None:
    session.run(max_frames=1)
    _press(pygame.K_RIGHT, pygame.K_RIGHT, pygame.K_UP, pygame.K_UP)  # face east, walk two cells
    session.run(max_frames=1)
    assert session.steps == 4
    assert session.done and session.success
    assert session.episode_return == 1.0
    assert any("SUCCESS" in line for line in session.status_lines())
    # Keys after the end of an episode are ignored.
    _press(pygame.K_UP)
    session.run(max_frames=1)
    assert session.steps == 4


def test_stop_key_on_face_task() -> None:
    state = make_state(size=5, pos=(0, 0), heading=2, gold=[(4, 0)], task="face")
    s = PlaySession("Penguin-Lang-v0", seed=0, env_kwargs={"size": 5}, fps=0, state=state)
    try:
        _press(pygame.K_SPACE)
        s.run(max_frames=1)
        assert s.done and s.success and s.last_reward == 1.0
    finally:
        s.close()


def test_restart_next_and_escape(session: PlaySession) -> None:
    start = session.game.get_state()
    _press(pygame.K_DOWN, pygame.K_LEFT)
    session.run(max_frames=1)
    moved = session.game.get_state()
    assert session.steps == 2 and moved["pos"] == [1, 3] and moved["heading"] == 7
    _press(pygame.K_r)
    session.run(max_frames=1)
    assert session.steps == 0
    assert session.game.get_state() == start
    _press(pygame.K_n)
    session.run(max_frames=1)
    after = session.game.get_state()
    assert after["episode"]["index"] == start["episode"]["index"] + 1
    assert (
        after["walls"] != start["walls"]
        or after["pos"] != start["pos"]
        or after["gold"] != start["gold"]
    )
    # `r` now restarts the new level, not the hand-built one.
    _press(pygame.K_LEFT, pygame.K_r)
    session.run(max_frames=1)
    assert session.game.get_state() == after
    _press(pygame.K_ESCAPE, pygame.K_UP)
    drawn = session.run(max_frames=10)
    assert drawn == 0 and not session.running
    assert session.steps == 0  # the key after Esc was never handled


def test_window_close_quits(session: PlaySession) -> None:
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert session.run(max_frames=10) == 0
    assert not session.running


def test_frame_shows_text_and_room(session: PlaySession) -> None:
    frame = session.frame()
    room = session.env.render()
    assert frame.shape[1] == room.shape[1] and frame.shape[0] > room.shape[0]
    assert (frame[: room.shape[0]] == room).all()
    lines = session.status_lines()
    assert "not yet" in lines[1]
    session.run(max_frames=2)
    assert pygame.display.get_surface() is not None


@pytest.mark.parametrize(
    "env_id",
    ["Penguin-Bare-v0", "Penguin-Gold-v0", "Penguin-Walls-v0", "penguin_env:Penguin-Lang-v0"],
)
def test_every_id(env_id: str) -> None:
    s = PlaySession(env_id, seed=1, fps=0)
    try:
        _press(pygame.K_UP, pygame.K_RIGHT)
        s.run(max_frames=2)
        assert s.steps == 2
    finally:
        s.close()


def test_unknown_id_and_bad_kwargs() -> None:
    with pytest.raises(ValueError, match="unknown env id 'Penguin-Nope-v0'.*Penguin-Gold-v0"):
        PlaySession("Penguin-Nope-v0")
    with pytest.raises(ValueError, match="not a Penguin env"):
        PlaySession("CartPole-v1")
    with pytest.raises(TypeError, match="radius"):
        PlaySession("Penguin-Gold-v0", env_kwargs={"radius": 2})
    with pytest.raises(SystemExit) as exc:
        main(["--env", "Penguin-Nope-v0"])
    assert exc.value.code == 2


def test_argparse_kwargs() -> None:
    args = build_parser().parse_args(
        ["--env", "Penguin-Bare-v0", "--seed", "3", "--size", "6", "--radius", "2", "--hint"]
    )
    assert args.env == "Penguin-Bare-v0" and args.seed == 3
    assert env_kwargs_from_args(args) == {"size": 6, "radius": 2, "hint": True}
    assert (
        main(
            [
                "--env",
                "Penguin-Bare-v0",
                "--seed",
                "3",
                "--size",
                "6",
                "--radius",
                "2",
                "--max-frames",
                "2",
                "--fps",
                "0",
            ]
        )
        == 0
    )


def test_module_help_and_headless_run() -> None:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    out = subprocess.run(
        [sys.executable, "-m", "penguin_env.play", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (
        out.returncode == 0
        and "--env" in out.stdout
        and "--seed" in out.stdout
        and "--size" in out.stdout
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "penguin_env.play",
            "--env",
            "Penguin-Lang-v0",
            "--seed",
            "3",
            "--max-frames",
            "3",
            "--fps",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "penguin_env.play", "--env", "Nope-v0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2 and "unknown env id" in bad.stderr


def test_text_still_renders_after_pygame_quit() -> None:
    s = PlaySession("Penguin-Gold-v0", seed=0, fps=0)
    s.close()
    pygame.quit()  # what a script embedding the session may do
    s2 = PlaySession("Penguin-Gold-v0", seed=0, fps=0)
    try:
        assert s2.frame().shape[0] > s2.env.render().shape[0]
    finally:
        s2.close()
