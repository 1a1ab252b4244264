"""Videos of a policy playing: the env's rendered frames (instruction and status written under the
room), the solver's remaining path drawn in blue, and a title band naming the episode.

GIF is written by Pillow (an imageio dependency), so it always works; MP4 needs an ffmpeg
plugin for imageio (``pip install imageio-ffmpeg`` or ``pip install av``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from agents import MultimodalPolicy
from experiments.errors import UsageError
from fake_traces.overlay import SolverPathOverlay
from penguin_env.text_overlay import text_band
from penguin_env.wrappers import TokenizeInstruction

FORMATS = (".gif", ".mp4")
FPS = 6
HOLD_SECONDS = 1.0  #: how long the last frame of an episode stays on screen
MAX_EPISODE_FRAMES = 120  #: longer episodes keep their first and last frames only


def ffmpeg_plugin() -> str | None:
    """Name of an importable imageio plugin that writes MP4, or None."""
    for module, plugin in (("av", "pyav"), ("imageio_ffmpeg", "FFMPEG")):
        if importlib.util.find_spec(module) is not None:
            return plugin
    return None


def check_video_path(path: str | Path) -> Path:
    """The output path, after checking its format can be written here.

    Raises:
        UsageError: an extension other than .gif/.mp4, or .mp4 without an ffmpeg plugin.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"--video must end in one of {list(FORMATS)}, got {path.name!r}")
    if suffix == ".mp4" and ffmpeg_plugin() is None:
        raise UsageError(
            "--video .mp4 needs an ffmpeg plugin for imageio (pip install imageio-ffmpeg, or pip "
            "install av); a .gif needs nothing"
        )
    return path


def _title(frame: np.ndarray, text: str) -> np.ndarray:
    return np.concatenate([text_band([text], frame.shape[1], line_px=20), frame], axis=0)


def record(
    policy: MultimodalPolicy,
    env_id: str,
    env_kwargs: dict[str, Any],
    levels: list[int],
    deterministic: bool = True,
    seed: int = 0,
    fps: int = FPS,
) -> tuple[list[np.ndarray], list[float]]:
    """Play one episode on each of ``levels``; returns the frames (all the same size) and how
    long each is shown, in milliseconds (``1000 / fps``; the last of an episode for
    :data:`HOLD_SECONDS`).

    Args:
        policy: the network (acts through its acting head).
        env_id: Penguin id; ``env_kwargs`` its keyword arguments (phrasings included).
        levels: level ids, one episode each.
        deterministic: greedy actions (else sampled, from a generator seeded with ``seed``).
    """
    env = SolverPathOverlay(TokenizeInstruction(gym.make(env_id, render_mode="rgb_array", **env_kwargs)))
    generator = torch.Generator().manual_seed(seed)
    mode = "greedy" if deterministic else "sampled"
    frames: list[np.ndarray] = []
    durations: list[float] = []
    try:
        for k, level in enumerate(levels):
            obs, _ = env.reset(options={"level": int(level)})
            title = f"episode {k + 1}/{len(levels)}   level {level}   {mode}"
            episode = [_title(env.render(), title)]
            done = False
            while not done:
                action = policy.act(obs, deterministic=deterministic, generator=generator)
                obs, _, terminated, truncated, _ = env.step(int(action))
                done = terminated or truncated
                episode.append(_title(env.render(), title))
            if len(episode) > MAX_EPISODE_FRAMES:
                keep = MAX_EPISODE_FRAMES // 2
                episode = episode[:keep] + episode[-keep:]
            frames += episode
            durations += [1000 / fps] * (len(episode) - 1) + [1000 * HOLD_SECONDS]
    finally:
        env.close()
    return frames, durations


def write(
    path: str | Path, frames: list[np.ndarray], durations: list[float], fps: int = FPS
) -> Path:
    """Write ``frames`` (each shown ``durations[i]`` ms) as a looping GIF or an MP4 at ``fps``
    (by the extension of ``path``)."""
    import imageio.v3 as iio

    path = check_video_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        iio.imwrite(path, np.stack(frames), duration=[round(d) for d in durations], loop=0)
        return path
    # A constant frame rate: a frame shown longer is repeated.
    repeats = [max(1, round(d * fps / 1000)) for d in durations]
    stack = np.repeat(np.stack(frames), repeats, axis=0)
    # H.264 wants even sides: pad the bottom and right edge by a pixel where needed.
    h, w = stack.shape[1:3]
    stack = np.pad(stack, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    plugin = ffmpeg_plugin()
    if plugin == "pyav":
        iio.imwrite(path, stack, plugin="pyav", codec="libx264", fps=fps)
    else:
        import imageio

        imageio.mimwrite(path, list(stack), format="FFMPEG", fps=fps)
    return path
