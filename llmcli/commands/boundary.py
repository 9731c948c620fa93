"""The command boundary: where an ``LlmcliError`` becomes one line on stderr and an exit code.

Only errors llmcli raises on purpose are caught here; anything else is a bug and raises.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from llmcli.errors import LlmcliError

P = ParamSpec("P")
R = TypeVar("R")

EXIT_INTERRUPTED = 130


def report(message: str) -> None:
    """Write one line for the user on stderr."""
    sys.stderr.write(f"llmcli: {message}\n")
    sys.stderr.flush()


def command_boundary(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command body; turn llmcli errors and Ctrl-C into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except LlmcliError as error:
            report(f"error: {error}")
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            report("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper
