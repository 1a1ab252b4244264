"""The envs alone install light: gymnasium, numpy and pygame-ce, no torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SMOKE = """
import sys
import gymnasium as gym
import penguin_env
for env_id in penguin_env.ENV_IDS:
    env = gym.make(env_id)
    env.reset(seed=0)
    for action in (0, 2, 2, 1, 3):
        env.step(action)
    env.close()
vec = gym.make_vec("Penguin-Gold-v0", num_envs=4, vectorization_mode="vector_entry_point")
vec.reset(seed=0)
vec.step(vec.action_space.sample())
heavy = [m for m in ("torch", "h5py", "stable_baselines3", "tyro", "matplotlib") if m in sys.modules]
assert not heavy, heavy
print("ok", len(penguin_env.ENV_IDS))
"""


@pytest.mark.slow
def test_the_bare_install_makes_and_steps_every_env_without_torch(tmp_path: Path) -> None:
    env_dir = tmp_path / "bare"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # Build from a copy: a non-editable install writes build/ and *.egg-info next to the sources.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "_build", "__pycache__", "*.egg-info", ".hypothesis"))
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", str(source)], capture_output=True, text=True,
                             timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True).stdout.lower()
    assert "torch" not in freeze and "gymnasium" in freeze and "pygame-ce" in freeze, freeze
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    smoke = subprocess.run([str(python), "-c", SMOKE], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                           env={"SDL_VIDEODRIVER": "dummy", "PATH": "/usr/bin:/bin"})
    assert smoke.returncode == 0 and smoke.stdout.startswith("ok 4"), smoke.stderr[-3000:]


def test_the_env_package_imports_no_training_stack() -> None:
    code = "import sys, penguin_env, penguin_env.vector, penguin_env.wrappers, penguin_env.play; " \
           "print([m for m in ('torch', 'h5py', 'stable_baselines3', 'tyro') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
