"""Train any registered algorithm: the older spelling of ``penguin train``.

Usage::

    python -m experiments.train ppo --env-id Penguin-Bare-v0 --curriculum
    python -m experiments.train bc --env-id Penguin-Gold-v0     # same as experiments.train_bc

is ``penguin train --algo ppo --env-id Penguin-Bare-v0 --curriculum`` except that the run goes
directly to ``--runs-dir``/``--run-name`` (default ``runs/<algo>-<env>-<time>``) instead of
``runs/<env>/<algo>/<run>``, so the benchmark scripts find their runs where they left them.
"""

from __future__ import annotations

import sys

from algorithms import registry
from experiments.errors import UsageError


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        print(f"error: name an algorithm first, one of {list(registry.ALGORITHMS)}", file=sys.stderr)
        return 2
    from experiments.commands import train

    try:
        return train.run(["--algo", argv[0], *argv[1:]], nested_runs=False)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
