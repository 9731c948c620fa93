"""llmcli on the networks users have: a TLS gateway with its own CA, a compressing gateway,
a forwarding proxy, and servers that are not there.

The middle-boxes are real (nginx and tinyproxy from Debian, see tests/rig/gateways.py, on
loopback only); behind them is llmcli's mock server speaking zen's dialect, or the real
llama-server on a quantized model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteProfiles
from rig.gateways import (
    ForwardProxy,
    Gateway,
    forward_proxy,
    free_port,
    name_for_loopback,
    tls_gateway,
)
from rig.profiles import make_profile
from rig.tls import CertAuthority, make_ca
from typer.testing import CliRunner

from llmcli import errors
from llmcli.cli import app
from llmcli.mock import MockConfig, MockServerThread
from llmcli.wire.client import ChatRequest, Client, RetryPolicy
from llmcli.wire.events import ContentDelta

MESSAGES = [{"role": "user", "content": "hi"}]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("llmcli: error: ")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture(scope="module")
def loopback_name() -> str:
    return name_for_loopback()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory, loopback_name: str) -> CertAuthority:
    return make_ca(tmp_path_factory.mktemp("ca"), names=(loopback_name,))


@pytest.fixture(scope="module")
def mock() -> Iterator[MockServerThread]:
    with MockServerThread(MockConfig(dialect="zen")) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, ca: CertAuthority, mock: MockServerThread
) -> Iterator[Gateway]:
    with tls_gateway(tmp_path_factory.mktemp("nginx"), ca, mock.url) as running:
        yield running


@pytest.fixture(scope="module")
def gzip_gateway(
    tmp_path_factory: pytest.TempPathFactory, ca: CertAuthority, mock: MockServerThread
) -> Iterator[Gateway]:
    with tls_gateway(tmp_path_factory.mktemp("nginx-gzip"), ca, mock.url, gzip=True) as running:
        yield running


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[ForwardProxy]:
    with forward_proxy(tmp_path / "tinyproxy") as running:
        yield running


@pytest.fixture
def profile_at(write_profiles: WriteProfiles) -> Any:
    """Point a profile `gw` (zen dialect) at a URL, with extra TOML lines."""

    def write(base_url: str, extra: str = "", connect: float = 5) -> str:
        write_profiles(
            "[profiles.gw]\n"
            f'base_url = "{base_url}"\n'
            'dialect = "zen"\nmodel = "big-pickle"\napi_key = "public"\n'
            f"timeout = {{ connect = {connect}, read = 20 }}\n" + extra
        )
        return "gw"

    return write


def direct_answer(mock: MockServerThread, profile_at: Any) -> str:
    name = profile_at(mock.base_url)
    result = invoke("complete", "-p", name, "hi", "--no-log")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip()
    return str(result.stdout)


# --- TLS ------------------------------------------------------------------------------


def test_an_untrusted_certificate_is_said_as_a_tls_failure_at_once(
    gateway: Gateway, profile_at: Any
) -> None:
    result = invoke("complete", "-p", profile_at(gateway.base_url()), "hi", "--no-log")
    assert result.exit_code == 3
    assert result.stdout == ""
    line = one_error_line(result.stderr)
    assert "TLS: the certificate of localhost is not trusted" in line
    assert "SSL_CERT_FILE or ca_file" in line
    assert "is the server running" not in line
    assert "trying again" not in result.stderr  # retrying cannot make it trusted


def test_ssl_cert_file_names_the_ca(
    gateway: Gateway,
    ca: CertAuthority,
    mock: MockServerThread,
    profile_at: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = direct_answer(mock, profile_at)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert_path))
    result = invoke("complete", "-p", profile_at(gateway.base_url()), "hi", "--no-log")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected


def test_the_profiles_ca_file_names_the_ca(
    gateway: Gateway, ca: CertAuthority, mock: MockServerThread, profile_at: Any
) -> None:
    expected = direct_answer(mock, profile_at)
    name = profile_at(gateway.base_url(), f'ca_file = "{ca.cert_path}"\n')
    result = invoke("complete", "-p", name, "hi", "--no-log")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected


def test_a_certificate_for_another_name(
    tmp_path: Path, mock: MockServerThread, profile_at: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_ca(tmp_path / "ca", names=())  # localhost and 127.0.0.1 only
    monkeypatch.setenv("SSL_CERT_FILE", str(other.cert_path))
    with tls_gateway(tmp_path / "nginx", other, mock.url) as gw:
        result = invoke("complete", "-p", profile_at(gw.base_url(name_for_loopback())), "hi")
    assert result.exit_code == 3
    line = one_error_line(result.stderr)
    assert "is not valid for" in line and "check the host name" in line


def test_https_to_a_plain_http_server_that_answers(
    tmp_path: Path, ca: CertAuthority, mock: MockServerThread, profile_at: Any
) -> None:
    """nginx on a plain-HTTP port answers a TLS hello with a 400: a handshake failure."""
    with tls_gateway(tmp_path / "nginx", ca, mock.url, tls=False) as plain:
        result = invoke("complete", "-p", profile_at(plain.base_url()), "hi")
    assert result.exit_code == 3
    line = one_error_line(result.stderr)
    assert "TLS handshake with localhost failed (WRONG_VERSION_NUMBER)" in line
    assert "base_url takes http:// for a plain-HTTP server" in line
    assert "trying again" not in result.stderr


def test_https_to_a_plain_http_server_that_waits(llama_think: Any, profile_at: Any) -> None:
    """llama-server waits for a request line that a TLS hello never has: a connect timeout,
    which says what else it may be."""
    url = llama_think.base_url.replace("http:", "https:")
    name = profile_at(url, connect=1)
    result = invoke("complete", "-p", name, "hi")
    assert result.exit_code == 4
    line = one_error_line(result.stderr)
    assert "could not connect" in line and "use http:// for a plain-HTTP server" in line


# --- compression ----------------------------------------------------------------------


def test_a_gzip_stream_from_a_compressing_gateway(
    gzip_gateway: Gateway,
    ca: CertAuthority,
    mock: MockServerThread,
    profile_at: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = direct_answer(mock, profile_at)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert_path))
    name = profile_at(gzip_gateway.base_url())
    result = invoke("complete", "-p", name, "hi", "--no-log")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected
    streamed = invoke("complete", "-p", name, "hi", "--no-log", "--json")
    assert json.loads(streamed.stdout)["finish_reason"] == "stop"
    log = gzip_gateway.access_log.read_text()
    assert "POST /v1/chat/completions HTTP/1.1 200 gzip" in log, log


class GatedUpstream:
    """An SSE server that sends its first frame, then waits for ``release`` before the
    rest: a client that only decodes at the end of the body never sees the first frame
    in time, and the test hangs and fails (pytest-timeout)."""

    def __init__(self, encoding: str | None = None) -> None:
        self.encoding = encoding
        self.release = threading.Event()
        self.port = free_port()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    def __enter__(self) -> GatedUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _main(self) -> None:
        server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
            await asyncio.sleep(0.5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        frames = [
            {"choices": [{"index": 0, "delta": {"content": "first"}}]},
            {"choices": [{"index": 0, "delta": {"content": " second"}, "finish_reason": "stop"}]},
        ]
        data = [f"data: {json.dumps(frame)}\n\n".encode() for frame in frames] + [
            b"data: [DONE]\n\n"
        ]
        encoding = f"content-encoding: {self.encoding}\r\n" if self.encoding else ""
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            + encoding.encode()
            + b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        )
        compressor = (
            zlib.compressobj(wbits=31 if self.encoding == "gzip" else 15) if self.encoding else None
        )

        def send(piece: bytes) -> None:
            if compressor is not None:
                piece = compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH)
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))

        send(data[0])
        await writer.drain()
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        for piece in data[1:]:
            send(piece)
        if compressor is not None:
            tail = compressor.flush()
            writer.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("encoding", ["gzip", "deflate", None])
def test_a_compressed_stream_is_decoded_as_it_arrives(encoding: str | None) -> None:
    async def run(upstream: GatedUpstream) -> list[str]:
        seen: list[str] = []
        async with Client(make_profile(upstream.base_url)) as client:
            async for event in client.stream_chat(ChatRequest(MESSAGES)):
                if isinstance(event, ContentDelta):
                    seen.append(event.text)
                    upstream.release.set()  # only once the first piece was decoded
        return seen

    with GatedUpstream(encoding) as upstream:
        assert asyncio.run(run(upstream)) == ["first", " second"]


@pytest.mark.timeout(30)
def test_a_gzip_stream_through_nginx_is_decoded_as_it_arrives(
    tmp_path: Path, ca: CertAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert_path))

    async def run(gw: Gateway, upstream: GatedUpstream) -> list[str]:
        seen: list[str] = []
        async with Client(make_profile(gw.base_url())) as client:
            async for event in client.stream_chat(ChatRequest(MESSAGES)):
                if isinstance(event, ContentDelta):
                    seen.append(event.text)
                    upstream.release.set()
        return seen

    with (
        GatedUpstream() as upstream,
        tls_gateway(tmp_path / "nginx", ca, f"http://127.0.0.1:{upstream.port}", gzip=True) as gw,
    ):
        assert asyncio.run(run(gw, upstream)) == ["first", " second"]
        assert " 200 gzip" in gw.access_log.read_text()


def test_a_corrupt_gzip_stream_is_one_line_and_keeps_what_arrived() -> None:
    """A gzip stream that turns to garbage mid-way (no real server sends one, hence the
    MockTransport): what was decoded before it is kept, the rest is one clear error."""
    import httpx

    good = json.dumps({"choices": [{"index": 0, "delta": {"content": "kept"}}]})
    compressor = zlib.compressobj(wbits=31)
    first = compressor.compress(f"data: {good}\n\n".encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield first
            yield b"\xff\xfe not deflate at all \x00" * 4

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream", "content-encoding": "gzip"}
        return httpx.Response(200, headers=headers, stream=Body())

    async def run() -> tuple[list[str], BaseException | None]:
        seen: list[str] = []
        transport = httpx.MockTransport(handler)
        async with Client(make_profile("http://127.0.0.1:9/v1"), transport=transport) as client:
            try:
                async for event in client.stream_chat(ChatRequest(MESSAGES)):
                    if isinstance(event, ContentDelta):
                        seen.append(event.text)
            except errors.StreamError as error:
                return seen, error
        return seen, None

    seen, error = asyncio.run(run())
    assert seen == ["kept"]
    assert error is not None and "could not be decompressed (gzip)" in str(error)


# --- proxies --------------------------------------------------------------------------


def test_https_through_a_forwarding_proxy(
    gateway: Gateway,
    ca: CertAuthority,
    proxy: ForwardProxy,
    loopback_name: str,
    mock: MockServerThread,
    profile_at: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = direct_answer(mock, profile_at)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert_path))
    result = invoke("complete", "-p", profile_at(gateway.base_url(loopback_name)), "hi", "--no-log")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected
    assert f"CONNECT {loopback_name}:{gateway.port}" in proxy.forwarded()


def test_http_through_a_forwarding_proxy(
    proxy: ForwardProxy,
    loopback_name: str,
    mock: MockServerThread,
    profile_at: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = direct_answer(mock, profile_at)
    monkeypatch.setenv("http_proxy", proxy.url)
    url = f"http://{loopback_name}:{mock.server.port}/v1"
    result = invoke("complete", "-p", profile_at(url), "hi", "--no-log")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected
    assert f"http://{loopback_name}:{mock.server.port}/v1/chat/completions" in proxy.forwarded()


def test_no_proxy_and_loopback_go_direct(
    proxy: ForwardProxy,
    loopback_name: str,
    mock: MockServerThread,
    profile_at: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", f"example.com,{loopback_name}")
    url = f"http://{loopback_name}:{mock.server.port}/v1"
    assert invoke("complete", "-p", profile_at(url), "hi", "--no-log").exit_code == 0
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv("ALL_PROXY", dead)
    monkeypatch.delenv("NO_PROXY")
    result = invoke("complete", "-p", profile_at(mock.base_url), "hi", "--no-log")
    assert result.exit_code == 0, result.stderr  # 127.0.0.1 never goes through a proxy
    assert loopback_name not in proxy.forwarded()


def test_a_dead_proxy_is_named_in_one_line(
    loopback_name: str, profile_at: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:pw-secret@127.0.0.1:{free_port()}")
    result = invoke("complete", "-p", profile_at(f"https://{loopback_name}:1/v1"), "hi")
    assert result.exit_code == 3
    line = one_error_line(result.stderr)
    assert "through the proxy http://127.0.0.1:" in line and "(from HTTPS_PROXY)" in line
    assert "pw-secret" not in result.stderr


def test_bench_goes_through_the_proxy_too(
    gateway: Gateway,
    ca: CertAuthority,
    proxy: ForwardProxy,
    loopback_name: str,
    profile_at: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert_path))
    name = profile_at(gateway.base_url(loopback_name))
    out = tmp_path / "run.json"
    result = invoke("bench", "-p", name, "--requests", "2", "--max-tokens", "4", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    [level] = json.loads(out.read_text())["profiles"][0]["levels"]
    assert [r["error"] for r in level["requests"]] == [None, None]
    assert f"CONNECT {loopback_name}:{gateway.port}" in proxy.forwarded()


def test_bench_reads_a_gzip_stream(
    gzip_gateway: Gateway,
    ca: CertAuthority,
    profile_at: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.cert_path))
    out = tmp_path / "run.json"
    name = profile_at(gzip_gateway.base_url())
    result = invoke("bench", "-p", name, "--requests", "2", "--max-tokens", "4", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    [level] = json.loads(out.read_text())["profiles"][0]["levels"]
    assert [r["completion_tokens"] for r in level["requests"]] == [4, 4]


# --- servers that are not there -------------------------------------------------------


def test_a_refused_connection_on_loopback_fails_at_once(profile_at: Any) -> None:
    result = invoke("complete", "-p", profile_at(f"http://127.0.0.1:{free_port()}/v1"), "hi")
    assert result.exit_code == 3
    line = one_error_line(result.stderr)
    assert "connection refused (nothing is listening there)" in line
    assert "trying again" not in result.stderr


def test_a_retry_is_said_with_its_reason(loopback_name: str) -> None:
    """A refused connection to a name (maybe a remote server restarting) is retried, and
    every retry says why; the waits are recorded, not slept."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def run() -> errors.LlmcliError:
        profile = make_profile(f"http://{loopback_name}:{free_port()}/v1")
        async with Client(profile, retry=RetryPolicy(attempts=3), sleep=sleep) as client:
            with pytest.raises(errors.ConnectError) as caught:
                await client.list_models()
        return caught.value

    notices: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: notices.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("llmcli.wire.client")
    logger.addHandler(handler)
    try:
        error = asyncio.run(run())
    finally:
        logger.removeHandler(handler)
    assert len(waits) == 2
    assert len(notices) == 2
    assert all("connection refused" in n and "trying again in" in n for n in notices)
    assert notices[0].endswith("(2 of 3)") and notices[1].endswith("(3 of 3)")
    assert "connection refused" in str(error)
