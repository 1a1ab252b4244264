"""The documentation: the site builds with warnings as errors, and every Python block of the
README and the docs runs as pasted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [p for p in PAGES if "_build" not in p.parts and "_generated" not in p.parts]
SNIPPETS = [(page, index, code) for page in PAGES
            for index, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL))]


def test_there_are_snippets_to_run() -> None:
    assert len([s for s in SNIPPETS if s[0].name == "README.md"]) >= 3
    assert len(SNIPPETS) >= 10


@pytest.mark.parametrize(("page", "index", "code"), SNIPPETS,
                         ids=[f"{p.relative_to(ROOT)}#{i}" for p, i, _ in SNIPPETS])
def test_snippet_runs_as_pasted(page: Path, index: int, code: str, tmp_path: Path) -> None:
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "MPLBACKEND": "Agg", "SB3_LOGDIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, f"{page.name} snippet {index} failed:\n{code}\n{run.stderr[-3000:]}"


def test_the_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs"), str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert (tmp_path / "index.html").is_file() and (tmp_path / "experiment-log.html").is_file()
    assert (tmp_path / "cli.html").is_file() and (tmp_path / "trainers" / "ppo.html").is_file()


def test_the_readme_is_a_short_guide_whose_generated_parts_are_current() -> None:
    from experiments import readme

    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    generated = readme.blocks()
    assert set(generated) == {"results", "quick"}, "the benchmark and the quick comparison have results files"
    assert readme.render(text, generated) == text, "run python -m experiments.readme"


def test_the_command_line_page_is_the_parsers_help() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import generate
    finally:
        sys.path.remove(str(ROOT / "docs"))
    assert (ROOT / "docs" / "cli.md").read_text() == generate.cli_page(), "run python docs/generate.py"
