"""Every Python snippet in README.md runs as pasted, in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_python_snippets() -> None:
    assert len(SNIPPETS) >= 4


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs_as_pasted(index: int, tmp_path) -> None:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "MPLBACKEND": "Agg", "SB3_LOGDIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", SNIPPETS[index]],
        cwd=tmp_path,  # a snippet that writes files writes them here
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"snippet {index} failed:\n{SNIPPETS[index]}\n{run.stderr[-3000:]}"
