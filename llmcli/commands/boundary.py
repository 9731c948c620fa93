"""The command boundary: where an ``LlmcliError`` becomes one line on stderr and an exit code.

Only errors llmcli raises on purpose are caught here; anything else is a bug and raises.
Notices the lower layers log while they work (a retry and why, a server restarted) come
out here too, one line each, written by ``llmcli.ui.notices.report`` (neutralised: error
messages quote servers, and a server's text must not drive the terminal).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from llmcli.endings import SignalEnding
from llmcli.errors import LlmcliError
from llmcli.ui.notices import report

# report is the notice writer every command imports from here (it lives in ui/notices).
__all__ = ["EXIT_INTERRUPTED", "command_boundary", "report", "show_notices"]

P = ParamSpec("P")
R = TypeVar("R")

EXIT_INTERRUPTED = 130


class _NoticeHandler(logging.Handler):
    """Shows the lower layers' warnings (``llmcli.*`` loggers) as ``llmcli:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        report(record.getMessage())


def show_notices() -> None:
    """Route ``llmcli.*`` warnings to stderr; once per process, whatever calls it."""
    logger = logging.getLogger("llmcli")
    if not any(isinstance(handler, _NoticeHandler) for handler in logger.handlers):
        logger.addHandler(_NoticeHandler(logging.WARNING))
        logger.setLevel(logging.WARNING)
        logger.propagate = False


def command_boundary(func: Callable[P, R]) -> Callable[P, R]:
    """Run a command body; turn llmcli errors and Ctrl-C into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        show_notices()
        try:
            return func(*args, **kwargs)
        except LlmcliError as error:
            report(f"error: {error}", error.details)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            report("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except SignalEnding as ending:  # SIGTERM, SIGHUP: an ending like Ctrl-C
            report(str(ending))
            raise typer.Exit(ending.exit_code) from None

    return wrapper
