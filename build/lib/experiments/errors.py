"""Errors of the command line that a user can fix (exit status 2, one line, no traceback)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class UsageError(Exception):
    """A bad command-line argument; the message names what is allowed."""


#: Exceptions that mean "bad input" when raised while a command reads its arguments, builds a
#: config (``TrainerConfig.validate``) or opens a checkpoint (``agents.CheckpointMismatchError``
#: is a ``ValueError``).
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
)


@contextmanager
def user_input() -> Iterator[None]:
    """Turn :data:`USER_ERRORS` raised inside the block into :class:`UsageError`.

    Wrap only the reading of arguments, configs and checkpoints in it: the same exception types
    raised later, during training, are bugs and keep their traceback.
    """
    try:
        yield
    except UsageError:
        raise
    except USER_ERRORS as err:
        message = err.args[0] if len(err.args) == 1 else str(err)
        raise UsageError(message) from err
