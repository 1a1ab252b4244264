"""The subcommands of the ``penguin`` command line, one module each.

Every module has ``main(argv: list[str]) -> int``; :mod:`experiments.cli` imports a module only
when its command runs, so each keeps its heavy imports (torch, the trainers, pygame) to itself.
"""
