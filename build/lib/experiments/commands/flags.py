"""Flags from dataclasses, through tyro, with errors on one line.

Every ``penguin`` command parses its flags with tyro. A command's flags are dataclass fields
(the trainers' configs for ``train`` and ``compare``), each field's docstring shortened to one or
two plain sentences as its help, grouped in the help by what they set (run, algorithm, network).
tyro's own error output is a multi-line box; the command line promises one line naming what is
allowed, so :func:`parse` reports unknown flags and bad values as :class:`UsageError`.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import difflib
import functools
import inspect
import io
import json
import re
import textwrap
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

import tyro

from experiments.errors import UsageError, user_input

T = TypeVar("T")

_BOX = re.compile(r"[\u2500-\u257f]")  # box-drawing characters of tyro's error panels


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Each field's docstring (the string under it) across ``cls`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        for node, after in zip(body.body, body.body[1:], strict=False):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = after.value.value
    return docs


def short_help(doc: str, sentences: int = 2) -> str:
    """The first ``sentences`` sentences of a docstring, as plain text (no reST markup)."""
    text = " ".join(doc.split())
    text = re.sub(r":(?:class|func|meth|mod|attr|data):`~?([^`]+)`", r"\1", text)
    text = text.replace("``", "")
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z(])", text)
    return " ".join(parts[:sentences])


def group(name: str, cls: type, names: Sequence[str], rename: dict[str, str] | None = None) -> type:
    """A dataclass named ``name`` with the fields ``names`` of dataclass ``cls`` (types, defaults
    and shortened docstrings as help); ``rename`` maps a field to another flag name."""
    docs, by_name = field_docs(cls), {f.name: f for f in dataclasses.fields(cls)}
    hints = _type_hints(cls)
    specs = []
    for field_name in names:
        f = by_name[field_name]
        arg = tyro.conf.arg(help=short_help(docs.get(field_name, "")), name=(rename or {}).get(field_name))
        default = dataclasses.field(default_factory=f.default_factory) if f.default_factory is not dataclasses.MISSING \
            else dataclasses.field(default=f.default)
        specs.append((field_name, Annotated[hints[field_name], arg], default))
    return dataclasses.make_dataclass(name, specs)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    import typing

    return typing.get_type_hints(cls)


def _first_message(text: str) -> str:
    """The first line of a tyro error panel that says what went wrong."""
    lines = [" ".join(_BOX.sub(" ", line).split()) for line in text.splitlines()]
    lines = [line for line in lines if line and not set(line) <= set("-")]
    title = lines[0] if lines else "invalid arguments"
    for line in lines[1:]:
        if not line.startswith(("For full helptext", "Argument helptext", "usage:")):
            return line
    return title


def known_flags(cls: type, default: Any = None) -> list[str]:
    """Every flag tyro makes for ``cls`` (for suggestions in error messages)."""
    out = io.StringIO()
    kwargs = {} if default is None else {"default": default}
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        tyro.cli(cls, args=["--help"], **kwargs)
    return sorted(set(re.findall(r"(--[a-z][a-z0-9.-]*)", out.getvalue())) - {"--help"})


def unknown_flags_error(flags: list[str], known: list[str], prog: str) -> UsageError:
    """The one-line error for flags no parser knows, with the nearest known ones."""
    hints = sorted({m for f in flags for m in difflib.get_close_matches(f, known, n=2)})
    near = f"; did you mean {', '.join(hints)}?" if hints else ""
    return UsageError(f"unknown flag(s) {flags}{near} (`{prog} --help` lists them all)")


def parse(
    cls: type[T],
    args: Sequence[str],
    prog: str,
    description: str,
    default: T | None = None,
    allow_unknown: bool = False,
) -> tuple[T, list[str]]:
    """``tyro.cli(cls, args=args)`` with user errors on one line; returns the result and, with
    ``allow_unknown``, the arguments it did not know (else they are an error).

    ``--help`` prints the help and raises ``SystemExit(0)``.

    Raises:
        UsageError: unknown flags (with the nearest known ones), values tyro cannot parse, or
            values the dataclass's own validation rejects.
    """
    stderr = io.StringIO()
    kwargs: dict[str, Any] = {"default": default} if default is not None else {}
    try:
        with contextlib.redirect_stderr(stderr), user_input():
            result, unknown = tyro.cli(
                cls, args=list(args), prog=prog, description=description, return_unknown_args=True, **kwargs
            )
    except SystemExit as exit_:
        if exit_.code in (0, None):
            raise
        raise UsageError(f"{_first_message(stderr.getvalue())} (`{prog} --help` lists the flags)") from None
    if unknown and not allow_unknown:
        flags = [a.split("=", 1)[0] for a in unknown if a.startswith("-")] or list(unknown)
        raise unknown_flags_error(flags, known_flags(cls, default), prog)
    return result, list(unknown)


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
