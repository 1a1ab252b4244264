"""Pages of the documentation written from the code before each build: the command line's help
(``docs/cli.md``) comes from the parsers themselves, so it cannot drift from them."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

HERE = Path(__file__).resolve().parent


def help_text(argv: list[str]) -> str:
    """What ``penguin ARGV --help`` prints, formatted for 100 columns whatever the terminal."""
    import os

    from experiments import cli

    os.environ["COLUMNS"] = "100"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli.main([*argv, "--help"])
    return out.getvalue().rstrip()


def cli_page() -> str:
    from experiments.cli import COMMANDS

    lines = [
        "# The command line", "",
        "Every command is `penguin <command> [flags]`; `penguin <command> --help` prints what this page "
        "shows. This page is written from the parsers themselves at each build.", "",
        "```text", help_text([]), "```", "",
    ]
    for name, (_, summary) in COMMANDS.items():
        lines += [f"## `penguin {name}`", "", summary[0].upper() + summary[1:] + ".", "", "```text",
                  help_text([name] if name != "train" else ["train", "--algo", "ppo", "--env", "Penguin-Bare-v0"]),
                  "```", ""]
    return "\n".join(lines)


def docstring_markdown(doc: str, level: int = 3) -> str:
    """A MiniGrid-style docstring (Markdown sections) as a page section: dedented, its ``##``
    headings moved to ``level``, reST literals and roles made Markdown code."""
    import inspect
    import re

    text = inspect.cleandoc(doc)
    text = re.sub(r":(?:class|func|meth|mod|attr|data):`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    return re.sub(r"^## ", "#" * level + " ", text, flags=re.MULTILINE)


def env_pages() -> dict[str, str]:
    """``_generated/env-<id>.md`` for every registered env, and ``_generated/env-common.md``:
    the env classes' docstrings."""
    from penguin_env.env import ENV_CLASSES, PenguinEnv

    pages = {"env-common.md": docstring_markdown(PenguinEnv.__doc__.split("\n", 1)[1], level=3)}
    for env_id, cls in ENV_CLASSES.items():
        summary, _, rest = inspect_doc(cls).partition("\n")
        pages[f"env-{env_id}.md"] = docstring_markdown(summary) + "\n\n" + docstring_markdown(rest)
    return pages


def inspect_doc(cls: type) -> str:
    import inspect

    return inspect.cleandoc(cls.__doc__ or "")


def benchmark_pages(generated: Path) -> None:
    """``_generated/benchmark.md`` (the benchmark report, its plot beside it),
    ``_generated/compare-quick.md`` and ``_generated/agents.md`` (the shipped agents)."""
    import json
    import shutil

    results = HERE.parent / "experiments" / "results"
    report = results / "benchmark.md"
    text = report.read_text() if report.is_file() else "No benchmark results yet: run `python -m experiments.benchmark`.\n"
    text = text.replace("# Benchmark\n", "", 1).replace("](benchmark.png)", "](/_generated/benchmark.png)")
    write_if_changed(generated / "benchmark.md", text)
    if (results / "benchmark.png").is_file():
        shutil.copyfile(results / "benchmark.png", generated / "benchmark.png")
    quick = results / "compare_quick" / "compare.md"
    if quick.is_file():
        text = quick.read_text()
        text = text[text.index("\n") + 1:].replace("](curves.png)", "](/_generated/curves.png)")
        write_if_changed(generated / "compare-quick.md", text)
        if (results / "compare_quick" / "curves.png").is_file():
            shutil.copyfile(results / "compare_quick" / "curves.png", generated / "curves.png")
    index_path = HERE.parent / "agents" / "pretrained" / "index.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    lines = ["| agent | env | greedy success on test levels (SPL) | trained by | measured |", "|---|---|---:|---|---|"]
    for entry in index.values():
        lines.append(f"| `{entry['algo']}` | `{entry['env_id']}` | {entry['greedy_success']:.1%} ({entry['greedy_spl']:.3f}) "
                     f"| `{entry['command']}` | {entry['machine']}, {entry['date']} |")
    write_if_changed(generated / "agents.md", "\n".join(lines) + "\n")


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def main() -> None:
    write_if_changed(HERE / "cli.md", cli_page())
    generated = HERE / "_generated"
    generated.mkdir(exist_ok=True)
    for name, text in env_pages().items():
        write_if_changed(generated / name, text + "\n")
    benchmark_pages(generated)


if __name__ == "__main__":
    main()
