"""One line for the user on stderr: ``llmcli: what happened``, details indented under it.

Every notice, error and warning a command or a display writes comes out this way, through
``neutralize``: messages quote servers, and a server's text must not drive the terminal.
"""

from __future__ import annotations

import sys

from llmcli.ui.sanitize import neutralize

MAX_DETAIL_CHARS = 300


def report(message: str, details: tuple[str, ...] = ()) -> None:
    """Write one line for the user on stderr, and any details indented under it."""
    lines = [f"llmcli: {neutralize(' '.join(message.split()))}"]
    for detail in details:
        text = " ".join(detail.split())
        if len(text) > MAX_DETAIL_CHARS:
            text = text[: MAX_DETAIL_CHARS - 1] + "…"
        lines.append(f"  {neutralize(text)}")
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()
