"""Config dataclasses as command-line flags (through tyro), with errors on one line.

tyro turns every field of a config dataclass into a flag, with the field's docstring as its help
and nested dataclasses (the ``policy`` network) as ``--policy.<field>``. Its own error output is
a multi-line box; the command line promises one line naming what is allowed, so
:func:`parse_config` reports unknown flags and bad values as :class:`~experiments.errors.UsageError`.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import json
import re
from collections.abc import Sequence
from typing import Any, TypeVar

import tyro

from experiments.errors import UsageError, user_input

T = TypeVar("T")

_BOX = re.compile(r"[\u2500-\u257f]")  # box-drawing characters of tyro's error panels


def _first_message(text: str) -> str:
    """The first line of a tyro error panel that says what went wrong."""
    lines = [" ".join(_BOX.sub(" ", line).split()) for line in text.splitlines()]
    lines = [line for line in lines if line and not set(line) <= set("-")]
    title = lines[0] if lines else "invalid arguments"
    for line in lines[1:]:
        if not line.startswith(("For full helptext", "Argument helptext", "usage:")):
            return line
    return title


class ArgumentParser(argparse.ArgumentParser):
    """``argparse`` whose errors are :class:`UsageError` (one line, exit status 2, via the ``penguin``
    dispatcher) instead of a usage block and ``SystemExit``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (`{self.prog} --help` lists the flags)")


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | None:
    """``parser.parse_args(argv)``, or None after ``--help`` printed the help."""
    try:
        return parser.parse_args(list(argv))
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return None
        raise


def known_flags(config_class: type, default: Any) -> list[str]:
    """Every flag tyro makes for ``config_class`` (for suggestions in error messages)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        tyro.cli(config_class, default=default, args=["--help"])
    return sorted(set(re.findall(r"(--[a-z][a-z0-9.-]*)", out.getvalue())) - {"--help"})


def parse_config(
    config_class: type[T],
    default: T,
    args: Sequence[str],
    prog: str,
    description: str,
) -> T:
    """``tyro.cli(config_class, default=default, args=args)``, with user errors on one line.

    ``--help`` prints the fields (defaults from ``default``) and exits with status 0.

    Raises:
        UsageError: unknown flags (with the nearest known ones), values tyro cannot parse, or
            values the config's own validation rejects.
    """
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), user_input():
            config, unknown = tyro.cli(
                config_class,
                default=default,
                args=list(args),
                prog=prog,
                description=description,
                return_unknown_args=True,
            )
    except SystemExit as exit_:
        if exit_.code in (0, None):
            raise
        raise UsageError(
            f"{_first_message(stderr.getvalue())} (`{prog} --help` lists the flags)"
        ) from None
    if unknown:
        flags = [a.split("=", 1)[0] for a in unknown if a.startswith("-")] or list(unknown)
        known = known_flags(config_class, default)
        hints = sorted({m for f in flags for m in difflib.get_close_matches(f, known, n=2)})
        near = f"; did you mean {', '.join(hints)}?" if hints else ""
        raise UsageError(
            f"unknown config field(s) {flags}{near} (`{prog} --help` lists them all)"
        )
    return config


def parse_env_kwargs(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``["size=6", "hint=true"]`` -> ``{"size": 6, "hint": True}`` (values read as JSON, else
    kept as strings).

    Raises:
        UsageError: a pair without ``=``.
    """
    out: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--env-kwargs takes KEY=VALUE pairs (e.g. size=6 image_size=96), got {pair!r}")
        try:
            out[key.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.replace("-", "_")] = value
    return out
