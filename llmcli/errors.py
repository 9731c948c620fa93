"""The errors llmcli raises on purpose, and nothing else.

Every failure a user can cause or meet (bad config, a dead or unhappy server, a broken
stream) is one of these. Commands catch ``LlmcliError`` once, print ``str(error)`` as a
single line on stderr (then ``details``, if any, indented under it) and exit with
``error.exit_code``; anything else is a bug and is allowed to raise.

    LlmcliError
    ├── ConfigError              broken TOML, unknown profile or field, missing key
    ├── UsageError               a request the backend cannot serve (e.g. zen /embeddings)
    └── BackendError
        ├── ConnectError         nothing listening, DNS, TLS
        ├── TimeoutError         connect or read timeout (a stalled server)
        ├── StatusError          an HTTP error status, with the server's message and body
        └── StreamError          a stream that broke, was cut short or carried an error
"""

from __future__ import annotations

from collections.abc import Sequence


class LlmcliError(Exception):
    """Base of every error llmcli reports to the user as one line."""

    exit_code = 1

    def __init__(self, message: str, *, details: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Evidence worth its own lines under the one-line message (a crashed server's last
        # log lines); the boundary prints them indented, each cut to one line.
        self.details: tuple[str, ...] = tuple(details or ())

    def __str__(self) -> str:
        # One line, always: a multi-line server message must not break the contract.
        return " ".join(self.message.split())


class ConfigError(LlmcliError):
    """The configuration cannot be used as it is."""

    exit_code = 2


class UsageError(LlmcliError):
    """The user asked for something this backend or command cannot do."""

    exit_code = 2


class BackendError(LlmcliError):
    """The backend could not be reached or did not answer as it should."""

    exit_code = 3


class ConnectError(BackendError):
    """No connection could be made, or one closed before the server answered anything.

    ``stale`` marks the second case on a pooled keep-alive connection the server had
    already closed: the request never reached it, so sending it again is safe.
    """

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale


class TimeoutError(BackendError):
    """The backend did not answer in time."""

    exit_code = 4


class StatusError(BackendError):
    """The backend answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: str = "",
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.error_type = error_type
        self.retry_after = retry_after


class StreamError(BackendError):
    """A stream that started well and then broke, was cut short or carried an error."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# A server's error text is shown and stored; a few hundred characters say what went wrong,
# and a 5 MB message must not become a 5 MB line on stderr and in the history.
MAX_MESSAGE_CHARS = 500


def cap_text(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` up to ``limit`` characters, saying how much more there was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters cut)"
