"""``llmcli mock-server`` in the foreground: its request log, and several processes.

One asyncio process sends some 50,000 frames a second on these machines, and a benchmark
of many streams needs the server never to be the bottleneck. ``processes > 1`` runs that
many server processes on one port (Linux ``SO_REUSEPORT``: the kernel spreads new
connections over the listening sockets). Each process keeps its own schedules, and its own
fault draws (seed + the process's number, so the processes do not fault in step). The
first process is the caller's; the others are spawned children, which stop when it stops
or dies (their end of a pipe to it closes).

The log (``log_path``) is the ground truth a benchmark is checked against: one JSON line
a request, appended when its response (or its fault) is over, by whichever process served
it. Times are ``time.perf_counter()`` seconds: CLOCK_MONOTONIC on Linux, one clock for
every process of the machine, and the clock ``llmcli bench`` stamps with. A line holds
no request headers: they carry the client's API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO

from llmcli.errors import LlmcliError, UsageError
from llmcli.mock.config import MockConfig
from llmcli.mock.record import RecordedRequest
from llmcli.mock.server import MockServer, serve_forever

READY_TIMEOUT = 60.0  # seconds for a child to import llmcli and listen


class RequestLog:
    """Appends one JSON line a finished request to a file that several processes share.

    Each line is a single ``write`` to a descriptor opened with ``O_APPEND``, so lines
    from different processes never interleave. The file is the user's alone (0600): it
    holds prompts.
    """

    def __init__(self, path: Path, process: int) -> None:
        self.process = process
        self._pid = os.getpid()
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as error:
            raise UsageError(f"cannot open the log {path}: {error.strerror or error}") from None
        with contextlib.suppress(OSError):  # a file that was there keeps its mode otherwise
            os.fchmod(self._fd, 0o600)

    def write(self, record: RecordedRequest) -> None:
        line = json.dumps(log_entry(record, self.process, self._pid), separators=(",", ":"))
        os.write(self._fd, line.encode() + b"\n")

    def close(self) -> None:
        os.close(self._fd)


def log_entry(record: RecordedRequest, process: int, pid: int) -> dict[str, Any]:
    """A request's line in the log (see the module docstring)."""
    return {
        "process": process,
        "pid": pid,
        "connection": record.connection,
        "method": record.method,
        "path": record.path,
        "status": record.status,
        "fault": record.fault,
        "completed": record.completed,
        "arrived": record.arrived_at,
        "received": record.received_at,
        "body": record.body,
        "frames": [[frame.at, frame.kind] for frame in record.frames],
    }


def run(
    config: MockConfig,
    host: str,
    port: int,
    *,
    processes: int = 1,
    log_path: Path | None = None,
    stdout: TextIO | None = None,
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM); once every process listens, the base
    URL is written as one line on ``stdout`` (for a script to read and connect to).

    asyncio's own loop, not uvloop: uvloop defers small writes to the end of the loop's
    turn, so a frame's logged send time would precede its real send.
    """
    if processes < 1:
        raise UsageError("--processes must be 1 or more")
    if processes > 1 and not sys.platform.startswith("linux"):
        raise UsageError("--processes above 1 needs Linux, where SO_REUSEPORT spreads connections")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_parent(config, host, port, processes, log_path, stdout))


async def _serve_parent(
    config: MockConfig,
    host: str,
    port: int,
    processes: int,
    log_path: Path | None,
    stdout: TextIO | None,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows; not main thread
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    log = RequestLog(log_path, 0) if log_path is not None else None
    server = MockServer(config, on_request=None if log is None else log.write, keep_requests=False)
    children: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        try:
            if processes > 1 and port != 0:
                _check_free(host, port)
            await server.start(host, port, reuse_port=processes > 1)
        except OSError as error:
            reason = error.strerror or str(error)
            raise UsageError(f"cannot listen on {host}:{port}: {reason}") from None
        context = multiprocessing.get_context("spawn")
        for number in range(1, processes):
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_serve_child,
                args=(config, host, server.port, number, log_path, child_end),
                daemon=True,
            )
            # The child is born ignoring SIGINT (a terminal's Ctrl-C while it imports would
            # print its traceback); the parent decides when it stops.
            handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                process.start()
            finally:
                signal.signal(signal.SIGINT, handler)
            child_end.close()
            children.append((process, parent_end))
        for child, parent_end in children:
            if not await loop.run_in_executor(None, _ready, parent_end):
                raise LlmcliError(f"mock server process {child.pid} did not start listening")
        if stdout is not None:
            stdout.write(server.base_url + "\n")
            stdout.flush()
        await stop.wait()
    finally:
        for _, parent_end in children:
            parent_end.close()  # the child's signal to stop
        for child, _ in children:
            await loop.run_in_executor(None, child.join, 5.0)
            if child.is_alive():
                child.kill()
        await server.stop()
        if log is not None:
            log.close()


def _check_free(host: str, port: int) -> None:
    """Raise OSError if ``host:port`` is taken. Sockets with SO_REUSEPORT of one user share
    a port without a word: another mock server there would silently take half the
    connections, so the port must be free before this server's processes take it."""
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as probe:
            # As asyncio's listeners do: a port with only closing connections is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)


def _ready(child: Connection) -> bool:
    """Whether the child said it listens, within READY_TIMEOUT (False if it died first)."""
    try:
        return bool(child.poll(READY_TIMEOUT)) and child.recv() == "ready"
    except (EOFError, OSError):
        return False


def _serve_child(
    config: MockConfig,
    host: str,
    port: int,
    number: int,
    log_path: Path | None,
    parent: Connection,
) -> None:
    """A child process: serve on the shared port until the parent's end of ``parent`` closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C: the parent decides
    log = RequestLog(log_path, number) if log_path is not None else None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def watch_parent() -> None:
            with contextlib.suppress(EOFError, OSError):
                while True:
                    parent.recv()
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_parent, daemon=True).start()
        await serve_forever(
            dataclasses.replace(config, seed=config.seed + number),
            host,
            port,
            lambda _: parent.send("ready"),
            on_request=None if log is None else log.write,
            reuse_port=True,
            until=stop,
        )

    try:
        asyncio.run(main())
    finally:
        if log is not None:
            log.close()
