"""``llmcli embed`` stopped early keeps what finished: a stall, Ctrl-C, SIGTERM, SIGHUP.

The vectors come from the real llama-server (``llama_embed``) through a small hostile
proxy on 127.0.0.1 that forwards some requests and stalls the others, chosen by the
texts they carry, so which batches finish does not depend on timing. Signals go to a
real ``python -m llmcli`` child, once the proxy holds a stalled request in every slot:
batches hand their vectors on before their slot goes to the next one, so by then all
the answered batches have been written. The writer and the in-order hand-over are
table-tested without a server.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys
import threading
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import typer
from conftest import WriteProfiles
from rig import LlamaServer
from rig.profiles import make_profile
from typer.testing import CliRunner

from llmcli.commands import embed
from llmcli.embeddings.embedder import Embedder
from llmcli.embeddings.inputs import Embedding, inputs_from_texts
from llmcli.embeddings.output import EmbeddingWriter
from llmcli.errors import StreamError
from llmcli.wire.client import Client, RetryPolicy

TEXTS = [f"text {n:02d}" for n in range(37)]
FINISHED = 20  # the proxy answers the batches holding TEXTS[:20] and stalls the rest
CONCURRENCY = 4

app = typer.Typer()
app.command()(embed.embed)


@app.callback()
def _group() -> None:
    """Keep ``embed`` a subcommand, as in the real app."""


# --- the writer and the hand-over in input order -------------------------------------------


def item(number: int, *values: float) -> Embedding:
    return Embedding(number, f"t{number}", array("f", values or (float(number), 0.5)))


def written(kind: Any, *batches: list[Embedding], finish: bool = True) -> tuple[bytes, int]:
    out: list[bytes] = []
    writer = EmbeddingWriter(kind, out.append)
    for batch in batches:
        writer.add(batch)
    if finish:
        writer.finish()
    return b"".join(out), writer.count


def test_ndjson_and_csv_are_written_as_each_batch_arrives() -> None:
    out: list[bytes] = []
    writer = EmbeddingWriter("ndjson", out.append)
    writer.add([item(1), item(2)])
    assert len(out) == 1 and writer.count == 2  # written now, not at finish()
    writer.add([item(3)])
    assert [json.loads(line)["id"] for line in b"".join(out).splitlines()] == [1, 2, 3]
    data, count = written("csv", [item(1)], [item(2)], finish=False)
    assert data.decode().splitlines() == ["id,dim0,dim1", "1,1.0,0.5", "2,2.0,0.5"]
    assert count == 2


def test_json_and_npy_are_one_document_of_what_was_taken() -> None:
    data, count = written("json", [item(1)], [item(2)], finish=False)
    assert (data, count) == (b"", 2)  # nothing until finish()
    data, _ = written("json", [item(1)], [item(2)])
    assert [record["id"] for record in json.loads(data)] == [1, 2]
    data, _ = written("npy", [item(1)], [item(2)])
    assert data.startswith(b"\x93NUMPY") and data.endswith(array("f", [2.0, 0.5]).tobytes())


@pytest.mark.parametrize("kind", ["ndjson", "json", "csv", "npy"])
def test_nothing_finished_writes_nothing(kind: str) -> None:
    assert written(kind) == (b"", 0)


@pytest.mark.parametrize(
    ("kind", "read"),
    [
        ("ndjson", lambda data: [json.loads(line)["id"] for line in data.splitlines()]),
        ("json", lambda data: [record["id"] for record in json.loads(data)]),
        ("csv", lambda data: [int(row.split(",")[0]) for row in data.splitlines()[1:]]),
    ],
)
def test_a_bad_vector_stops_the_output_right_before_it(
    kind: str, read: Callable[[str], list[int]]
) -> None:
    out: list[bytes] = []
    writer = EmbeddingWriter(kind, out.append)  # type: ignore[arg-type]
    with pytest.raises(StreamError, match="NaN or infinity"):
        writer.add([item(1), item(2, math.nan, 1.0), item(3)])
    with pytest.raises(StreamError, match=r"different sizes: \[2, 3\]"):
        writer.add([item(4, 1.0, 2.0, 3.0)])
    writer.finish()
    assert writer.count == 1
    assert read(b"".join(out).decode()) == [1]


def test_batches_are_handed_on_in_input_order_whenever_they_finish() -> None:
    # The first batch is answered only after the second one was: the second waits for it.
    second_answered = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["input"]
        if texts[0] == "text 0":
            await second_answered.wait()
        else:
            second_answered.set()
        data = [{"index": i, "embedding": [float(len(t)), 1.0]} for i, t in enumerate(texts)]
        return httpx.Response(200, json={"data": data})

    handed: list[list[str]] = []
    landed: list[list[str]] = []

    async def go() -> None:
        transport = httpx.MockTransport(handler)
        profile = make_profile(
            "http://backend.test/v1", api_key=None, model=None, dialect="llamacpp"
        )
        async with Client(profile, transport=transport, retry=RetryPolicy(attempts=1)) as c:
            await Embedder(c, batch_size=2, concurrency=2).embed(
                inputs_from_texts([f"text {n}" for n in range(4)]),
                on_batch=lambda done: landed.append([e.text for e in done]),
                on_prefix=lambda done: handed.append([e.text for e in done]),
            )

    asyncio.run(go())
    assert landed == [["text 2", "text 3"], ["text 0", "text 1"]]
    assert handed == [["text 0", "text 1"], ["text 2", "text 3"]]


# --- a proxy in front of the real server that stalls some requests ----------------------------


class StallingProxy:
    """Forwards ``/v1/embeddings`` to llama-server unless ``stall(texts)``; then says nothing."""

    def __init__(self, upstream: str, stall: Callable[[list[str]], bool]) -> None:
        self.upstream = upstream
        self.stall = stall
        self.stalled = 0
        self.answered = 0
        self.all_slots_stalled = threading.Event()
        self.ready = threading.Event()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> StallingProxy:
        self._thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with httpx.AsyncClient(timeout=30) as upstream:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    request_line, *fields = head.decode("latin-1").split("\r\n")
                    length = next(
                        int(value)
                        for name, _, value in (f.partition(":") for f in fields)
                        if name.strip().lower() == "content-length"
                    )
                    body = await reader.readexactly(length)
                    if self.stall(json.loads(body)["input"]):
                        self.stalled += 1
                        if self.stalled >= CONCURRENCY:
                            self.all_slots_stalled.set()
                        await reader.read()  # silent until the client goes away
                        return
                    path = request_line.split()[1]
                    answer = await upstream.post(
                        self.upstream + path,
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    self.answered += 1
                    writer.write(
                        b"HTTP/1.1 %d OK\r\ncontent-type: application/json\r\n"
                        b"content-length: %d\r\n\r\n"
                        % (answer.status_code, len(answer.content))
                        + answer.content
                    )
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            finally:
                writer.close()


def stall_from(first: int) -> Callable[[list[str]], bool]:
    return lambda texts: any(TEXTS.index(text) >= first for text in texts)


@pytest.fixture
def proxy(llama_embed: LlamaServer) -> Iterator[StallingProxy]:
    with StallingProxy(llama_embed.root_url, stall_from(FINISHED)) as running:
        yield running


def use_proxy(write_profiles: WriteProfiles, proxy: StallingProxy, *, read: float = 300) -> str:
    write_profiles(
        f'[profiles.p]\nbase_url = "{proxy.base_url}"\ndialect = "llamacpp"\n'
        f"timeout = {{connect = 10, read = {read}}}\n"
    )
    return "p"


@pytest.fixture
def profile(write_profiles: WriteProfiles, proxy: StallingProxy) -> str:
    # The read limit is how long a stalled request takes to fail: short, but far longer
    # than the tiny model takes to embed one text.
    return use_proxy(write_profiles, proxy, read=3)


@pytest.fixture
def patient(write_profiles: WriteProfiles, proxy: StallingProxy) -> str:
    """The same proxy with the default read limit: a stall lasts until the signal."""
    return use_proxy(write_profiles, proxy)


BATCHES = ("--batch-size", "1", "--concurrency", str(CONCURRENCY))


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("llmcli: error: ") and "Traceback" not in stderr
    return lines[0]


def ndjson_texts(stdout: str) -> list[str]:
    return [json.loads(line)["text"] for line in stdout.splitlines()]


def test_a_stall_keeps_the_finished_prefix_in_order(profile: str, proxy: StallingProxy) -> None:
    result = CliRunner().invoke(app, ["embed", "-p", profile, *BATCHES, *TEXTS])
    assert result.exit_code == 4, result.stderr
    assert ndjson_texts(result.stdout) == TEXTS[:FINISHED]
    line = one_error_line(result.stderr)
    assert line.startswith(f"llmcli: error: stopped after {FINISHED} of {len(TEXTS)} texts: ")
    assert "stalled" in line
    assert proxy.answered == FINISHED


@pytest.mark.parametrize("kind", ["json", "csv", "npy"])
def test_a_stall_keeps_a_valid_document_of_the_prefix(
    profile: str, proxy: StallingProxy, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"out.{kind}"
    args = ["embed", "-p", profile, *BATCHES, "--format", kind, "-o", str(path), *TEXTS]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 4, result.stderr
    assert result.stdout == ""
    assert one_error_line(result.stderr).startswith(
        f"llmcli: error: stopped after {FINISHED} of {len(TEXTS)} texts: "
    )
    if kind == "json":
        assert [record["text"] for record in json.loads(path.read_text())] == TEXTS[:FINISHED]
    elif kind == "csv":
        header, *rows = path.read_text().splitlines()
        assert header.startswith("id,dim0,")
        assert [row.split(",")[0] for row in rows] == [str(n) for n in range(1, FINISHED + 1)]
    else:
        matrix = np.load(path, allow_pickle=False)
        assert matrix.shape == (FINISHED, 64) and matrix.dtype == np.float32


def run_and_signal(
    profile: str, proxy: StallingProxy, signum: int
) -> subprocess.CompletedProcess[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "llmcli", "embed", "-p", profile, *BATCHES, *TEXTS],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Far beyond what a healthy start and 20 tiny batches take; a hang fails here.
        assert proxy.all_slots_stalled.wait(60), "the child never reached the stall"
        child.send_signal(signum)
        stdout, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr)


@pytest.mark.parametrize(
    ("signum", "code", "reason"),
    [
        (signal.SIGINT, 130, "interrupted"),
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),
        (signal.SIGHUP, 129, "hung up (SIGHUP)"),
    ],
)
def test_a_signal_keeps_the_finished_prefix(
    patient: str, proxy: StallingProxy, signum: int, code: int, reason: str
) -> None:
    done = run_and_signal(patient, proxy, signum)
    assert done.returncode == code, done.stderr
    assert ndjson_texts(done.stdout) == TEXTS[:FINISHED]
    assert one_error_line(done.stderr) == (
        f"llmcli: error: stopped after {FINISHED} of {len(TEXTS)} texts: {reason}"
    )


def test_a_signal_before_anything_finished(
    write_profiles: WriteProfiles, llama_embed: LlamaServer
) -> None:
    with StallingProxy(llama_embed.root_url, stall_from(0)) as proxy:
        done = run_and_signal(use_proxy(write_profiles, proxy), proxy, signal.SIGTERM)
    assert (done.returncode, done.stdout) == (143, "")
    assert one_error_line(done.stderr) == "llmcli: error: terminated (SIGTERM)"
