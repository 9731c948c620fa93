"""Run a program for a tool: no shell, input on stdin, a time limit and an output cap.

The program runs in its own session (process group). When it ends, for whatever reason
(it exited, overflowed its output cap, ran out of time, or the loop was cancelled by
Ctrl-C), the whole group is killed, so nothing it started outlives it. Output is read
until the program itself exits, not until every process that inherited its pipes closes
them: a background child (``sleep 60 & echo hi``) would otherwise hold the call open until
the time limit. After the exit the pipes are read for at most ``AFTER_EXIT_READ`` seconds
more, which only matters for a descendant that left the group with ``setsid``; the group's
own processes die with it and their pipes close at once.

stdout and stderr are kept up to ``cap`` bytes each: a program printing forever costs a
bounded amount of memory and is killed once its stdout is over the cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from llmcli.tools.tool import ToolError

OUTPUT_CAP: Final = 16 * 1024
AFTER_EXIT_READ: Final = 1.0
_STDOUT: Final = 1
_STDERR: Final = 2


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
    loop = asyncio.get_running_loop()
    collector = _Collector(loop, cap)
    try:
        transport, _ = await loop.subprocess_exec(
            lambda: collector,
            *argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,
        )
    except OSError as error:
        raise ToolError(f"cannot run {argv[0]!r}: {error.strerror or error}") from None
    group = transport.get_pid()
    try:
        _feed(transport, stdin)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(collector.exited)
        except TimeoutError:
            raise ToolError(f"timed out after {timeout:g} s (the program was stopped)") from None
        finally:
            _kill_group(group)
            # Shielded: reaping must finish even when the caller is being cancelled.
            await asyncio.shield(collector.exited)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(AFTER_EXIT_READ):
                await asyncio.shield(collector.drained)
    finally:
        transport.close()
    returncode = transport.get_returncode()
    assert returncode is not None
    return ProcessResult(
        returncode=returncode,
        stdout=collector.kept[_STDOUT][:cap].decode("utf-8", "replace"),
        stderr=collector.kept[_STDERR][:cap].decode("utf-8", "replace"),
        truncated=collector.truncated,
    )


class _Collector(asyncio.SubprocessProtocol):
    """Keeps ``cap + 1`` bytes of stdout and stderr; says when the program exits."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cap: int) -> None:
        self.cap = cap
        self.kept = {_STDOUT: bytearray(), _STDERR: bytearray()}
        self.truncated = False
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self._open = {_STDOUT, _STDERR}
        self._pid: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self._pid = transport.get_pid()

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        # Past the cap the rest is read and dropped: a blocked writer would never exit.
        kept = self.kept[fd]
        kept += data[: max(0, self.cap + 1 - len(kept))]
        if fd == _STDOUT and len(kept) > self.cap and not self.truncated:
            self.truncated = True
            if self._pid is not None:
                _kill_group(self._pid)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open.discard(fd)
        if not self._open and not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


def _feed(transport: asyncio.SubprocessTransport, data: bytes) -> None:
    """Hand ``data`` to the program's stdin and close it once written.

    A program that stops reading early is its own business: the pipe transport drops the
    rest quietly (a broken pipe is not an error here).
    """
    pipe = transport.get_pipe_transport(0)
    assert isinstance(pipe, asyncio.WriteTransport)
    if data:
        pipe.write(data)
    pipe.close()


def _kill_group(group: int) -> None:
    # The group outlives its leader while any member lives, and its id is not reused
    # until the last member is gone, so this never reaches a stranger.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)
