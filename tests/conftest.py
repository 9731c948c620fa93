"""Shared fixtures: real llama-server processes on tiny generated models.

Servers start lazily (only when a test asks for one) and live for the whole session, so
a run that needs none pays nothing and one that needs all four pays about a second.

- `tiny_model_think` / `tiny_model_plain`: GGUF paths (tools/think or plain ChatML template)
- `tiny_model_q4`: the plain-template model with Q4_0 weight matrices, as real GGUF files
  are quantized (the server repacks them for the CPU's kernels: AMX, AVX-512, AVX2)
- `tiny_vocab`: their vocabulary, for token ids such as `im_end_id`
- `llama_think`: alias "tiny", tools/think template: reasoning and tool-call parsing
- `llama_plain`: alias "tiny-plain", plain ChatML: everything stays in `content`
- `llama_embed`: alias "tiny-embed", `--embeddings --pooling mean`
- `llama_keyed`: alias "tiny-keyed", `--api-key sekrit-test-key`
- `start_llama(...)`: factory for one-off servers, stopped after the test
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, Protocol

import gguf
import pytest
from rig import (
    PLAIN_CHATML_TEMPLATE,
    TOOLS_THINK_TEMPLATE,
    LlamaServer,
    LlamaServerError,
    LoadingGate,
    TinyVocab,
    build_vocab,
    find_llama_server,
    write_tiny_model,
)

# tests/ is not a package, so pytest puts it on sys.path and the rig imports as `rig`.
from llmcli.ui.terminal import Terminal

KEYED_API_KEY = "sekrit-test-key"
# The checkout and the test rig, for tests that read files beside the code (tests live in
# folders mirroring the package's, so __file__ of a test says little).
REPO = Path(__file__).resolve().parent.parent
RIG = Path(__file__).resolve().parent / "rig"
Template = Literal["think", "plain"]


def pytest_configure(config: pytest.Config) -> None:
    """Children get SIGHUP's default action, as a shell's children do.

    llmcli keeps SIGHUP ignored when it was ignored at start (nohup's promise), and the
    signal tests send SIGHUP to llmcli processes: run under nohup (or a CI runner that
    ignores it), every child would inherit the ignore and those tests would wait in vain.
    """
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def pytest_report_header() -> str:
    try:
        return f"llama-server: {find_llama_server()}"
    except LlamaServerError as exc:
        return f"llama-server: NOT FOUND ({exc})"


@pytest.fixture(scope="session")
def llama_binary() -> Path:
    """The llama-server binary; a missing one fails the test with install instructions."""
    try:
        return find_llama_server()
    except LlamaServerError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def rig_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session directory holding the generated models and the server logs."""
    return tmp_path_factory.mktemp("llama-rig")


@pytest.fixture(scope="session")
def tiny_vocab() -> TinyVocab:
    """The tiny models' vocabulary (e.g. `im_end_id` for a `logit_bias` that ends a turn)."""
    return build_vocab()


@pytest.fixture(scope="session")
def tiny_model_think(rig_dir: Path) -> Path:
    """Tiny GGUF whose template engages llama-server's reasoning and tool-call parsers."""
    return write_tiny_model(rig_dir / "tiny-think.gguf", chat_template=TOOLS_THINK_TEMPLATE)


@pytest.fixture(scope="session")
def tiny_model_plain(rig_dir: Path) -> Path:
    """Tiny GGUF with a plain ChatML template (no reasoning, no tools)."""
    return write_tiny_model(rig_dir / "tiny-plain.gguf", chat_template=PLAIN_CHATML_TEMPLATE)


@pytest.fixture(scope="session")
def tiny_model_q4(rig_dir: Path) -> Path:
    """Tiny GGUF (plain ChatML) whose weight matrices are Q4_0, about 1.1 MB."""
    return write_tiny_model(
        rig_dir / "tiny-q4_0.gguf",
        chat_template=PLAIN_CHATML_TEMPLATE,
        quant=gguf.GGMLQuantizationType.Q4_0,
    )


def _session_server(
    rig_dir: Path,
    binary: Path,
    model: Path,
    alias: str,
    *,
    api_key: str | None = None,
    embeddings: bool = False,
) -> Iterator[LlamaServer]:
    server = LlamaServer(
        model,
        log_path=rig_dir / f"{alias}.log",
        alias=alias,
        binary=binary,
        api_key=api_key,
        embeddings=embeddings,
        pooling="mean",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llama_think(rig_dir: Path, llama_binary: Path, tiny_model_think: Path) -> Iterator[LlamaServer]:
    """llama-server, alias "tiny", on the tools/think model."""
    yield from _session_server(rig_dir, llama_binary, tiny_model_think, "tiny")


@pytest.fixture(scope="session")
def llama_plain(rig_dir: Path, llama_binary: Path, tiny_model_plain: Path) -> Iterator[LlamaServer]:
    """llama-server, alias "tiny-plain", on the plain ChatML model."""
    yield from _session_server(rig_dir, llama_binary, tiny_model_plain, "tiny-plain")


@pytest.fixture(scope="session")
def llama_embed(rig_dir: Path, llama_binary: Path, tiny_model_think: Path) -> Iterator[LlamaServer]:
    """llama-server, alias "tiny-embed", with `--embeddings --pooling mean`."""
    yield from _session_server(
        rig_dir, llama_binary, tiny_model_think, "tiny-embed", embeddings=True
    )


@pytest.fixture(scope="session")
def llama_keyed(rig_dir: Path, llama_binary: Path, tiny_model_think: Path) -> Iterator[LlamaServer]:
    """llama-server, alias "tiny-keyed", with `--api-key sekrit-test-key`."""
    yield from _session_server(
        rig_dir, llama_binary, tiny_model_think, "tiny-keyed", api_key=KEYED_API_KEY
    )


class StartLlama:
    """The `start_llama` fixture: starts one-off servers, all stopped when the test ends.

    `wait=False` returns as soon as the socket accepts connections (the model may still
    be loading). `hold_loading=True` keeps the server in its loading state, answering 503
    "Loading model" on every route until the test ends; it implies `wait=False`.
    """

    def __init__(self, directory: Path, binary: Path, think: Path, plain: Path) -> None:
        self._directory = directory
        self._binary = binary
        self._models = {"think": think, "plain": plain}
        self._started: list[LlamaServer] = []
        self._gates: list[LoadingGate] = []

    def __call__(
        self,
        *,
        template: Template = "think",
        model: Path | None = None,
        alias: str = "tiny-oneoff",
        wait: bool = True,
        hold_loading: bool = False,
        api_key: str | None = None,
        embeddings: bool = False,
        pooling: str = "mean",
        metrics: bool = False,
        ctx_size: int = 2048,
        parallel: int = 2,
        extra_args: Sequence[str] = (),
    ) -> LlamaServer:
        n = len(self._started)
        if hold_loading:
            gate = LoadingGate(self._directory / f"gate-{n}.gguf")
            self._gates.append(gate)
            model = gate.path
            wait = False
        elif model is None:
            model = self._models[template]
        server = LlamaServer(
            model,
            log_path=self._directory / f"{alias}-{n}.log",
            alias=alias,
            api_key=api_key,
            embeddings=embeddings,
            pooling=pooling,
            metrics=metrics,
            ctx_size=ctx_size,
            parallel=parallel,
            extra_args=extra_args,
            binary=self._binary,
        )
        self._started.append(server)
        return server.start(wait=wait)

    def stop_all(self) -> None:
        for gate in self._gates:
            gate.close()
        for server in self._started:
            server.stop()


@pytest.fixture
def start_llama(
    tmp_path: Path, llama_binary: Path, tiny_model_think: Path, tiny_model_plain: Path
) -> Iterator[StartLlama]:
    """Factory for one-off servers (see :class:`StartLlama`)."""
    factory = StartLlama(tmp_path, llama_binary, tiny_model_think, tiny_model_plain)
    yield factory
    factory.stop_all()


# -- isolation from the developer's own setup ----------------------------------------------

_USER_ENV = (
    "LLMCLI_CONFIG",
    "LLMCLI_PROFILE",
    "BACKEND_URL",
    "BACKEND_API_KEY",
    "ZEN_API_KEY",
    "NO_COLOR",
    # A developer's proxy and CA settings must not steer the tests' traffic; the tests of
    # those settings set them themselves.
    *(f"{scheme}_proxy" for scheme in ("http", "https", "all", "no")),
    *(f"{scheme}_PROXY" for scheme in ("HTTP", "HTTPS", "ALL", "NO")),
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


@pytest.fixture(autouse=True)
def isolated_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees only the shipped profiles and an empty config directory."""
    for name in _USER_ENV:
        monkeypatch.delenv(name, raising=False)
    config_home = tmp_path / "config-home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    return config_home / "llmcli" / "profiles.toml"


@pytest.fixture
def write_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WriteProfiles:
    """Write a user profiles file (TOML text) and point LLMCLI_CONFIG at it."""

    def write(text: str) -> Path:
        path = tmp_path / "profiles.toml"
        path.write_text(text)
        monkeypatch.setenv("LLMCLI_CONFIG", str(path))
        return path

    return write


# `llmcli bench` alone, as a child process's program (the whole CLI would import more).
BENCH_APP = (
    "import typer\n"
    "from llmcli.commands import bench\n"
    "app = typer.Typer()\n"
    "app.add_typer(bench.app, name='bench')\n"
    "app.command('other')(lambda: None)\n"
    "app()\n"
)


class WriteProfiles(Protocol):
    def __call__(self, text: str) -> Path: ...


@contextlib.contextmanager
def mock_server_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``llmcli mock-server`` as a user runs it, in its own process group (as a terminal
    runs it), and its base URL; killed with its group when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "llmcli", "mock-server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), process.stderr and process.stderr.read()
        yield process, url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def string_terminal(*, stdout_isatty: bool = False, stderr_isatty: bool = False) -> Terminal:
    """A Terminal whose three streams are StringIO, as a command would be given one: piped
    unless told otherwise, colourless, 80 columns."""
    return Terminal(
        stdin=io.StringIO(),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
        stdin_isatty=False,
        stdout_isatty=stdout_isatty,
        stderr_isatty=stderr_isatty,
        no_color=True,
        width=80,
    )


def zen_mock_profile(base_url: str) -> str:
    """The profiles file text of one profile, ``mock``: llmcli's mock server at ``base_url``,
    spoken to in zen's dialect with zen's free model (the bench tests' usual backend)."""
    return f'[profiles.mock]\nbase_url = "{base_url}"\ndialect = "zen"\nmodel = "big-pickle"\n'
