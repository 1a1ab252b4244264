"""Behaviour cloning from the solver (+ DAgger): the older spelling of ``penguin train --algo bc``.

Usage::

    python -m experiments.train_bc                                  # Penguin-Gold-v0, a few minutes
    python -m experiments.train_bc --env Penguin-Lang-v0 --run-name lang1
    python -m experiments.train_bc --env Penguin-Lang-v0 --run-name lang1 --resume   # after Ctrl-C

The same flags as ``penguin train --algo bc`` (``--help`` lists them); the run goes directly to
``--runs-dir``/``--run-name`` (default ``runs/bc-<env>-<time>``).
"""

from __future__ import annotations

import sys

from experiments.errors import UsageError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from experiments.commands import train

    try:
        return train.run(["--algo", "bc", *argv], nested_runs=False)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
