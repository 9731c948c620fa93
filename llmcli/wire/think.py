"""Split inline ``<think>...</think>`` reasoning out of streamed answer text.

Backends that do not separate reasoning themselves (llama-server with
``--reasoning-format none``, or a chat template it does not recognise) leave a reasoning
model's thoughts inline in ``content``. ``ThinkSplitter`` turns that text, chunk by chunk,
into ``("reasoning", ...)`` and ``("content", ...)`` pieces.

Rules:

- ``<think>`` opens reasoning only as the first non-whitespace text of the answer, which
  is where reasoning models put it; a ``<think>`` later in prose (an answer about HTML) is
  content. If the answer starts with anything else, the splitter passes every later chunk
  straight through as content without scanning it.
- Reasoning runs up to ``</think>``; what follows is content. Whitespace right after
  ``<think>`` and right after ``</think>`` is dropped, as llama-server's own reasoning
  parser does, so both server modes render alike. Whitespace before ``<think>`` is dropped
  too; in passthrough mode leading whitespace is kept.
- A tag may be split across chunks anywhere (``<thi`` + ``nk>``). Only the shortest tail
  that could still begin a tag is held back, at most ``len(tag) - 1`` characters, and it is
  released as soon as it cannot. The one other thing held is leading whitespace before the
  first visible character, because only that character decides the mode.
- ``flush()`` at end of stream releases what is held: as reasoning if the stream ended
  inside unclosed reasoning, otherwise as content.

Only the exact lowercase ``<think>`` tag is recognised. Pieces are never empty, and one
result never holds two adjacent pieces of the same kind: it is at most one reasoning
piece followed by at most one content piece.
"""

from __future__ import annotations

from enum import Enum, auto
from typing import Literal, TypeAlias

__all__ = ["Kind", "Piece", "ThinkSplitter"]

Kind: TypeAlias = Literal["content", "reasoning"]
Piece: TypeAlias = tuple[Kind, str]

_OPEN = "<think>"
_CLOSE = "</think>"


class _State(Enum):
    START = auto()  # before the first non-whitespace character
    REASONING_LEAD = auto()  # just after <think>: dropping whitespace
    REASONING = auto()  # inside reasoning, looking for </think>
    CONTENT_LEAD = auto()  # just after </think>: dropping whitespace
    PASSTHROUGH = auto()  # content to the end; nothing more to look for


class ThinkSplitter:
    """Streaming splitter of inline reasoning; one instance per answer."""

    def __init__(self) -> None:
        self._state = _State.START
        self._held = ""

    def feed(self, text: str) -> list[Piece]:
        """Take the next chunk of answer text; return what can be released now."""
        if self._state is _State.PASSTHROUGH:
            return [("content", text)] if text else []
        out: list[Piece] = []
        self._consume(text, out)
        return out

    def flush(self) -> list[Piece]:
        """End of the answer: release whatever is still held back."""
        held, self._held = self._held, ""
        if not held:
            return []
        if self._state is _State.REASONING:
            return [("reasoning", held)]
        return [("content", held)]

    def _consume(self, text: str, out: list[Piece]) -> None:
        # Each branch either finishes with `text` or moves to a later state with the
        # rest of it, so this loop runs at most once per state and appends at most one
        # piece of each kind, reasoning first: adjacent pieces never need merging.
        while text:
            state = self._state
            if state is _State.START:
                buffer = self._held + text
                visible = buffer.lstrip()
                if len(visible) < len(_OPEN) and _OPEN.startswith(visible):
                    self._held = buffer  # still undecided
                    return
                self._held = ""
                if visible.startswith(_OPEN):
                    self._state = _State.REASONING_LEAD
                    text = visible[len(_OPEN) :]
                else:
                    self._state = _State.PASSTHROUGH
                    out.append(("content", buffer))
                    return
            elif state is _State.REASONING_LEAD or state is _State.CONTENT_LEAD:
                text = text.lstrip()
                if text:
                    self._state = (
                        _State.REASONING if state is _State.REASONING_LEAD else _State.PASSTHROUGH
                    )
            elif state is _State.REASONING:
                buffer = self._held + text
                end = buffer.find(_CLOSE)
                if end >= 0:
                    self._held = ""
                    if end:
                        out.append(("reasoning", buffer[:end]))
                    self._state = _State.CONTENT_LEAD
                    text = buffer[end + len(_CLOSE) :]
                else:
                    keep = _tag_prefix_length(buffer, _CLOSE)
                    cut = len(buffer) - keep
                    self._held = buffer[cut:]
                    if cut:
                        out.append(("reasoning", buffer[:cut]))
                    return
            else:  # PASSTHROUGH, reached from CONTENT_LEAD within this chunk
                out.append(("content", text))
                return


def _tag_prefix_length(text: str, tag: str) -> int:
    """Length of the longest tail of ``text`` that is a proper prefix of ``tag``."""
    # The tag holds one '<', at its start, so such a tail begins at the last '<' among
    # the final len(tag) - 1 characters, or there is none.
    start = text.rfind("<", max(0, len(text) - len(tag) + 1))
    if start >= 0 and tag.startswith(text[start:]):
        return len(text) - start
    return 0
