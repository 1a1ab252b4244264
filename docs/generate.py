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


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def main() -> None:
    write_if_changed(HERE / "cli.md", cli_page())
    generated = HERE / "_generated"
    generated.mkdir(exist_ok=True)
    for name, text in env_pages().items():
        write_if_changed(generated / name, text + "\n")


if __name__ == "__main__":
    main()
