"""A stream's frames in order, with the faults spliced in: dialect-free.

:func:`plan_stream` walks a :class:`~llmcli.mock.generation.Generation` and asks the
dialect's :class:`StreamFormat` for each frame's bytes. It yields *steps*
``(slot, kind, frame)``: a frame due at schedule slot ``slot`` (token chunk ``slot`` is due
at ``start + ttft + slot * itl``; the opening frames share slot 0 and the closing frames
the last token's slot). Two kinds are actions, not frames: ``stall`` and ``reset``.

Frames are produced lazily, as the sender reaches them, so a long answer costs no memory,
and each token frame is a concatenation of pre-encoded bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from llmcli.mock.config import FaultName, Faults
from llmcli.mock.generation import Generation

Frame = tuple[str, bytes]  # (kind, bytes)
Step = tuple[int, str, bytes]  # (slot, kind, bytes)

# Cut off inside a string: no JSON parser accepts it.
MALFORMED_FRAME = b'data: {"choices":[{"index":0,"delta":{"content":" trunc\n\n'

# Faults that end the stream where they fire.
_TERMINAL: frozenset[str] = frozenset({"reset", "error_event"})


class StreamFormat(Protocol):
    """How one dialect and endpoint shapes the frames of a stream."""

    def opening(self) -> list[Frame]:
        """Frames before the first token (a chat stream's role chunk)."""
        ...

    def token(self, kind: str, payload: bytes, tokens_through: int) -> bytes:
        """The frame of one generation piece (see ``generation.Piece``); ``tokens_through``
        counts the completion tokens sent once this frame is."""
        ...

    def empty(self) -> bytes:
        """A chunk with ``choices: []`` and nothing else."""
        ...

    def closing(self, *, finish: bool, done: bool) -> list[Frame]:
        """The end: the finish chunk if ``finish``; usage, ``[DONE]`` and more if ``done``."""
        ...

    def error(self) -> bytes:
        """A ``data: {"error": ...}`` frame, as the dialect sends one mid-stream."""
        ...


def plan_stream(
    generation: Generation,
    fmt: StreamFormat,
    fault: FaultName | None,
    faults: Faults,
    empty_chunks: int,
) -> Iterator[Step]:
    for kind, frame in fmt.opening():
        yield 0, kind, frame
    trigger = _fault_trigger(fault, faults)
    empty = fmt.empty() if empty_chunks else b""
    sent = 0
    slot = 0
    for slot, (kind, payload, tokens) in enumerate(generation.pieces()):
        if trigger is not None and sent >= trigger:
            yield _fault_step(fault, slot, fmt)
            if fault in _TERMINAL:
                return
            trigger = None
        sent += tokens
        yield slot, kind, fmt.token(kind, payload, sent)
        for _ in range(empty_chunks):
            yield slot, "empty", empty
    if trigger is not None:
        # The answer was shorter than the fault's position: it fires before the end.
        yield _fault_step(fault, slot, fmt)
        if fault in _TERMINAL:
            return
    if fault == "no_done":
        for kind, frame in fmt.closing(finish=not faults.no_finish, done=False):
            yield slot, kind, frame
        return
    for kind, frame in fmt.closing(finish=True, done=True):
        yield slot, kind, frame


def _fault_trigger(fault: FaultName | None, faults: Faults) -> int | None:
    if fault == "stall":
        return faults.stall_after_tokens
    if fault == "reset":
        return faults.reset_after_tokens
    if fault == "error_event":
        return faults.error_after_tokens
    if fault == "malformed":
        return faults.malformed_after_tokens
    return None


def _fault_step(fault: FaultName | None, slot: int, fmt: StreamFormat) -> Step:
    if fault == "error_event":
        return slot, "error", fmt.error()
    if fault == "malformed":
        return slot, "malformed", MALFORMED_FRAME
    assert fault in ("stall", "reset")
    return slot, fault, b""
