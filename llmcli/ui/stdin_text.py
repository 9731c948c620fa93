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

import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TextIO

from llmcli.errors import UsageError

PROMPT_LIMIT_ENV = "LLMCLI_MAX_INPUT"
# A million-token context holds about 4 MB of text; twice that is a generous ceiling.
DEFAULT_PROMPT_LIMIT = 8 * 1024 * 1024


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


def prompt_limit(env: Mapping[str, str] | None = None) -> int:
    """The most bytes a prompt may have: ``$LLMCLI_MAX_INPUT`` (``8M``, ``500K``, bytes),
    else ``DEFAULT_PROMPT_LIMIT``. A bad value is a usage error, not a silent default."""
    env = os.environ if env is None else env
    value = env.get(PROMPT_LIMIT_ENV, "").strip()
    if not value:
        return DEFAULT_PROMPT_LIMIT
    match = re.fullmatch(r"(\d+)\s*([KMG]?)i?B?", value, re.IGNORECASE)
    if match is None or int(match[1]) == 0:
        raise UsageError(
            f"{PROMPT_LIMIT_ENV}={value!r}: give a size such as 8M, 500K or 100000 (bytes)"
        )
    scale: int = 1024 ** "_KMG".index(match[2].upper() or "_")
    return int(match[1]) * scale


def read_stdin_text(
    warn: Callable[[str], None], stream: TextIO | None = None, *, limit: int | None = None
) -> str | None:
    """All of piped stdin as text, or ``None`` when stdin is a terminal or closed.

    ``warn`` gets the one warning line (without the ``llmcli:`` prefix) when stdin is not
    UTF-8; ``stream`` defaults to ``sys.stdin``, read through its byte buffer. With
    ``limit``, more bytes than that are refused in one line, having read at most one byte
    past it: 100 MB piped by mistake never sits in memory, let alone in the history.
    """
    stream = sys.stdin if stream is None else stream
    if stream is None or stream.closed or stream.isatty():
        return None
    raw = getattr(stream, "buffer", None)
    if raw is None:  # a text-only stream (an embedding application's): already decoded
        return stream.read()
    data = raw.read() if limit is None else raw.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise UsageError(
            f"stdin holds more than {_size(limit)}, the most a prompt may have; send less,"
            f" or raise {PROMPT_LIMIT_ENV} (e.g. {PROMPT_LIMIT_ENV}=64M)"
        )
    text, offset = decode_text(data)
    if offset is not None:
        warn(not_utf8_warning(offset))
    return text


def iter_stdin_lines(
    warn: Callable[[str], None], stream: TextIO | None = None, *, limit: int | None = None
) -> Iterator[str]:
    """Piped stdin a line at a time (a scripted chat), decoded by the same rule: the first
    line that is not UTF-8 gets the one warning, with its offset in the whole input. A line
    longer than ``limit`` bytes is refused before more of it is read."""
    stream = sys.stdin if stream is None else stream
    raw = getattr(stream, "buffer", None)
    if raw is None:
        yield from stream
        return
    offset = 0
    warned = False
    while True:
        line = raw.readline() if limit is None else raw.readline(limit + 1)
        if not line:
            return
        if limit is not None and len(line) > limit and not line.endswith(b"\n"):
            raise UsageError(
                f"a line on stdin holds more than {_size(limit)}, the most a prompt may have;"
                f" send less, or raise {PROMPT_LIMIT_ENV}"
            )
        text, bad = decode_text(line)
        if bad is not None and not warned:
            warn(not_utf8_warning(offset + bad))
            warned = True
        offset += len(line)
        yield text


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"
