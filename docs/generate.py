"""Pages of the documentation written from the code before each build: the command line's help
(``docs/cli.md``) comes from the parsers themselves, so it cannot drift from them."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

HERE = Path(__file__).resolve().parent


def help_text(argv: list[str]) -> str:
    """What ``penguin ARGV --help`` prints."""
    from experiments import cli

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
                  help_text([name] if name != "train" else ["train", "--algo", "ppo"]), "```", ""]
    return "\n".join(lines)


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def main() -> None:
    write_if_changed(HERE / "cli.md", cli_page())


if __name__ == "__main__":
    main()
