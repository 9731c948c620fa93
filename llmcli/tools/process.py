"""Run a program for a tool: no shell, input on stdin, a time limit and an output cap.

The program runs in its own session (process group), so a time limit, an output that
overflows its cap, or a cancelled loop (Ctrl-C) kills it and everything it started, and
never leaves a child behind. stdout and stderr are read as they come, into at most
``cap`` bytes each: a program printing forever costs a bounded amount of memory and is
killed once its stdout is over the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from llmcli.tools.tool import ToolError

OUTPUT_CAP: Final = 16 * 1024
READ_SIZE: Final = 4096


@dataclass(frozen=True, slots=True)
class ProcessResult:
    """What a program gave; ``truncated``: stdout went over the cap and it was killed."""

    returncode: int
    stdout: str
    stderr: str
    truncated: bool


async def run_process(
    argv: Sequence[str],
    *,
    stdin: bytes = b"",
    timeout: float,
    cap: int = OUTPUT_CAP,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> ProcessResult:
    """Run ``argv`` to completion; raises :class:`ToolError` if it cannot start or times out."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
    except OSError as error:
        raise ToolError(f"cannot run {argv[0]!r}: {error.strerror or error}") from None
    out, err = bytearray(), bytearray()
    try:
        async with asyncio.timeout(timeout):
            _, truncated, _ = await asyncio.gather(
                _feed(process, stdin),
                _drain(process.stdout, out, cap, on_overflow=lambda: _kill(process)),
                _drain(process.stderr, err, cap),
            )
            returncode = await process.wait()
    except TimeoutError:
        raise ToolError(f"timed out after {timeout:g} s (the program was stopped)") from None
    finally:
        if process.returncode is None:
            _kill(process)
            # Shielded: reaping must finish even when the caller is being cancelled.
            await asyncio.shield(process.wait())
    return ProcessResult(
        returncode=returncode,
        stdout=out[:cap].decode("utf-8", "replace"),
        stderr=err[:cap].decode("utf-8", "replace"),
        truncated=truncated,
    )


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> bool:
    pipe = process.stdin
    assert pipe is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            pipe.write(data)
            await pipe.drain()
        pipe.close()
        await pipe.wait_closed()
    return False  # a program that stops reading early is its own business


async def _drain(
    stream: asyncio.StreamReader | None,
    into: bytearray,
    cap: int,
    on_overflow: Callable[[], None] | None = None,
) -> bool:
    """Read ``stream`` to its end, keeping ``cap + 1`` bytes; ``True`` if it went over the cap.

    Past the cap the rest is read and dropped (a blocked writer would never exit), unless
    ``on_overflow`` stops the writer first.
    """
    assert stream is not None
    over = False
    while chunk := await stream.read(READ_SIZE):
        into += chunk[: max(0, cap + 1 - len(into))]
        if len(into) > cap and not over:
            over = True
            if on_overflow is not None:
                on_overflow()
    return over


def _kill(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
