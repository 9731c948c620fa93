"""Text piped on stdin, read as bytes and decoded as UTF-8 by one rule for every command.

The rule: stdin that is not valid UTF-8 (Latin-1, binary) is decoded anyway, each bad
byte becoming U+FFFD, and the caller is given one warning line naming the byte offset
(from 0) of the first bad byte, so the user can find it (``head -c OFFSET``) and knows
the text that was used is not quite the text that was given. Refusing would lose a long
prompt or corpus over one stray byte; decoding silently would hide that it was changed.

Files named on the command line are another matter: they are refused with one line
naming the bad byte (:func:`bad_byte`), since a file saved once as UTF-8 stays right.

Reading bytes, not ``sys.stdin``'s text layer, keeps the outcome independent of the
locale: under ``LANG=C`` Python would otherwise smuggle bad bytes in as lone surrogates,
which fail later, far from here, when the text is encoded for a request.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO


def decode_text(data: bytes) -> tuple[str, int | None]:
    """``data`` as UTF-8 with bad bytes replaced, and the offset of the first bad byte."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as error:
        return data.decode("utf-8", "replace"), error.start


def bad_byte(error: UnicodeDecodeError) -> str:
    """``byte 0xe9 at offset 3``: where a file or stream stops being UTF-8."""
    return f"byte 0x{error.object[error.start : error.start + 1].hex()} at offset {error.start}"


def not_utf8_warning(offset: int, source: str = "stdin") -> str:
    """The one line that says what happened to text that was not UTF-8."""
    return (
        f"warning: {source} is not UTF-8 (first bad byte at offset {offset});"
        " each bad byte became U+FFFD"
    )


def read_stdin_text(warn: Callable[[str], None], stream: TextIO | None = None) -> str | None:
    """All of piped stdin as text, or ``None`` when stdin is a terminal or closed.

    ``warn`` gets the one warning line (without the ``llmcli:`` prefix) when stdin is not
    UTF-8; ``stream`` defaults to ``sys.stdin``, read through its byte buffer.
    """
    stream = sys.stdin if stream is None else stream
    if stream is None or stream.closed or stream.isatty():
        return None
    raw = getattr(stream, "buffer", None)
    if raw is None:  # a text-only stream (an embedding application's): already decoded
        return stream.read()
    text, offset = decode_text(raw.read())
    if offset is not None:
        warn(not_utf8_warning(offset))
    return text
