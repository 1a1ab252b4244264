"""The ``penguin`` command line.

``penguin <command> [flags]`` where the command is one of :data:`COMMANDS`; ``penguin <command>
--help`` lists its flags. Each command lives in its own module under ``experiments.commands``
with a ``main(argv) -> int`` function, imported only when it runs (so ``penguin --help`` and
``penguin play`` do not pay for torch and the trainers).

Errors a user can fix (an unknown env id or algorithm, a missing or corrupt checkpoint, an
unknown config field, a malformed budget) print one line on stderr naming what is allowed and
exit with status 2, without a traceback: commands raise :class:`~experiments.errors.UsageError`
or read their input inside :func:`~experiments.errors.user_input`. A full disk prints one line
naming the file and where to free space and exits with status 74; every file is written
atomically, so the last complete checkpoint and reports stay readable.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from experiments.errors import UsageError

#: Exit status when a file could not be written because the disk is full (sysexits' EX_IOERR).
EXIT_DISK_FULL = 74

#: command -> (module, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("experiments.commands.train", "train one algorithm on one env; writes runs/<env>/<algo>/<run>/"),
    "eval": ("experiments.commands.evaluate", "evaluate a checkpoint on held-out levels (success with 95% CI, SPL)"),
    "compare": ("experiments.commands.compare", "algorithms x seeds under one budget -> compare.md, compare.json, curves.png"),
    "traces": ("experiments.commands.traces", "generate, verify or describe solver-trace datasets"),
    "bench": ("experiments.commands.bench", "env and trainer throughput (ours beside stable-baselines3)"),
    "play": ("experiments.commands.play", "play in a pygame window, or watch a trained agent play"),
}


def version() -> str:
    """The installed penguin-rl version."""
    from importlib import metadata

    try:
        return metadata.version("penguin-rl")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown (not installed)"


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: penguin <command> [flags]   (penguin <command> --help for its flags)",
             "       penguin --version", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``penguin`` console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        print(f"penguin {version()}")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"penguin: error: unknown command {command!r}; choose from {list(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[command][0])
        return int(module.main(rest) or 0)
    except UsageError as err:
        print(f"penguin {command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        from agents.files import DiskFullError, disk_full_cause  # torch only on this path

        if disk_full_cause(err) is None:
            raise
        full = err if isinstance(err, DiskFullError) else DiskFullError(err.filename or ".", disk_full_cause(err))
        print(f"penguin {command}: error: {full}", file=sys.stderr)
        return EXIT_DISK_FULL


def entry_point() -> None:
    """``sys.exit(main())`` for ``python -m experiments.cli``."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
