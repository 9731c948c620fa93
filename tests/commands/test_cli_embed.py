"""``llmcli embed`` through a Typer app holding only that command.

Vectors from the real llama-server (``llama_embed``); the corpus cache proven by counting
requests at llmcli's own mock server, whose vectors are hashes of the text. stdout and
stderr are asserted separately: stdout carries only vectors or hits.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import typer
from conftest import WriteProfiles
from rig import LlamaServer
from typer.testing import CliRunner

from llmcli.commands import embed
from llmcli.embeddings.cache import CACHE_FILENAME
from llmcli.mock import MockConfig, MockServerThread
from llmcli.mock.llamacpp_wire import embedding as mock_vector

app = typer.Typer()
app.command()(embed.embed)


@app.callback()
def _group() -> None:
    """Keep ``embed`` a subcommand, as in the real app."""


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, ["embed", *args], input=input)


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("llmcli: error: ") and "Traceback" not in stderr
    return lines[0]


def records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture
def real(write_profiles: WriteProfiles, llama_embed: LlamaServer) -> str:
    write_profiles(f'[profiles.emb]\nbase_url = "{llama_embed.base_url}"\ndialect = "llamacpp"\n')
    return "emb"


@pytest.fixture
def mock(write_profiles: WriteProfiles) -> Iterator[MockServerThread]:
    server = MockServerThread(MockConfig(dialect="llamacpp", models=("hash-embed",)))
    server.start()
    write_profiles(f'[profiles.mock]\nbase_url = "{server.base_url}"\ndialect = "llamacpp"\n')
    yield server
    assert server.server.errors == []
    server.stop()


def embedding_requests(server: MockServerThread) -> list[dict[str, Any]]:
    return [r.body for r in server.server.requests if r.path == "/v1/embeddings"]


# --- vectors from the real server --------------------------------------------------------


def test_ndjson_by_default_counts_on_stderr(real: str, llama_embed: LlamaServer) -> None:
    result = invoke("-p", real, "hello", "world")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "2 inputs, 64 dimensions, 10 tokens\n"
    got = records(result.stdout)
    assert [(r["id"], r["text"]) for r in got] == [(1, "hello"), (2, "world")]
    direct = httpx.post(llama_embed.base_url + "/embeddings", json={"input": "hello"}).json()
    assert got[0]["embedding"] == pytest.approx(direct["data"][0]["embedding"], abs=1e-6)
    assert len(got[1]["embedding"]) == 64


def test_stdin_lines_skip_blanks_and_keep_line_numbers(real: str) -> None:
    result = invoke("-p", real, input="one\n\n   \ntwo\r\nthree")
    assert result.exit_code == 0, result.stderr
    assert [(r["id"], r["text"]) for r in records(result.stdout)] == [
        (1, "one"),
        (4, "two"),
        (5, "three"),
    ]
    assert result.stderr == "3 inputs, 64 dimensions, 11 tokens\n"


def test_jsonl_file_carries_ids(real: str, tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "alpha"}\n{"text": "beta"}\n{"id": 9, "text": "g"}\n')
    result = invoke("-p", real, "--file", str(corpus))
    assert result.exit_code == 0, result.stderr
    assert [(r["id"], r["text"]) for r in records(result.stdout)] == [
        ("a", "alpha"),
        (2, "beta"),
        (9, "g"),
    ]


def test_every_format_gives_the_same_vectors(real: str, tmp_path: Path) -> None:
    # One batch at a time and equal token counts: the vectors do not depend on the run.
    texts = [f"line {n:02d}" for n in range(7)]
    common = ("-p", real, "--batch-size", "3", "--concurrency", "1", *texts)
    ndjson = invoke(*common)
    as_json = invoke(*common, "--format", "json")
    as_csv = invoke(*common, "--format", "csv")
    npy_path = tmp_path / "m.npy"
    as_npy = invoke(*common, "--format", "npy", "--output", str(npy_path))
    for result in (ndjson, as_json, as_csv, as_npy):
        assert result.exit_code == 0, result.stderr
        assert result.stderr == "7 inputs, 64 dimensions, 49 tokens\n"
    expected = records(ndjson.stdout)
    assert json.loads(as_json.stdout) == expected
    header, *rows = as_csv.stdout.splitlines()
    assert header == "id," + ",".join(f"dim{n}" for n in range(64))
    assert [row.split(",")[0] for row in rows] == [str(n) for n in range(1, 8)]
    assert [[float(x) for x in row.split(",")[1:]] for row in rows] == [
        r["embedding"] for r in expected
    ]
    assert as_npy.stdout == ""
    matrix = np.load(npy_path, allow_pickle=False)
    assert matrix.dtype == np.float32 and matrix.shape == (7, 64)
    assert np.array_equal(matrix, np.array([r["embedding"] for r in expected], dtype=np.float32))
    assert np.array_equal(matrix.astype(np.float64), np.array([r["embedding"] for r in expected]))


def test_output_file_for_text_formats(real: str, tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    result = invoke("-p", real, "x", "--output", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert [r["text"] for r in records(path.read_text())] == ["x"]


def test_too_long_input_is_named(real: str) -> None:
    result = invoke("-p", real, "short", "a" * 600, "also short")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert one_line(result.stderr) == (
        'llmcli: error: input 2 ("aaaaaaaaaaaaaaaaaaaaaaaa…") is too long to embed: 600 tokens,'
        " the server takes at most 512; shorten it, pass --truncate to cut it, or restart"
        " llama-server with larger --batch-size and --ubatch-size"
    )


def test_truncate_cuts_and_says_so(real: str, llama_embed: LlamaServer) -> None:
    result = invoke("-p", real, "--truncate", "a" * 600)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        "llmcli: cut 1 text(s) to 512 tokens: 1\n1 input, 64 dimensions, 512 tokens\n"
    )
    [record] = records(result.stdout)
    assert record["text"] == "a" * 600  # the input as given; the server saw its start
    direct = httpx.post(llama_embed.base_url + "/embeddings", json={"input": "a" * 512}).json()
    assert record["embedding"] == pytest.approx(direct["data"][0]["embedding"], abs=1e-6)


def test_server_without_embeddings(write_profiles: WriteProfiles, llama_think: LlamaServer) -> None:
    write_profiles(f'[profiles.chat]\nbase_url = "{llama_think.base_url}"\n')
    result = invoke("-p", "chat", "hi")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert one_line(result.stderr) == (
        "llmcli: error: HTTP 501: This server does not support embeddings. Start it with"
        " `--embeddings` (not_supported_error)"
    )


def test_zen_is_refused_in_one_line(write_profiles: WriteProfiles) -> None:
    # Nothing listens there: a request would fail differently.
    write_profiles('[profiles.z]\nbase_url = "http://127.0.0.1:9/v1"\ndialect = "zen"\n')
    result = invoke("-p", "z", "hi")
    assert (result.exit_code, result.stdout) == (2, "")
    assert one_line(result.stderr) == (
        "llmcli: error: zen has no /embeddings endpoint: use a llama.cpp profile (-p local)"
        " started with --embeddings"
    )


@pytest.mark.parametrize(
    ("args", "input", "message"),
    [
        ((), None, "no input: give texts as arguments, --file FILE, or lines on stdin"),
        ((), "\n  \n", "no input: give texts as arguments"),
        (("x", "--format", "npy"), None, "npy is binary: give --output FILE.npy"),
        (("x", "--json"), None, "--json goes with --similar; for vectors use --format json"),
        (("x", "--similar", "q", "--format", "csv"), None, "--similar prints its hits"),
        (("x", "--file", "c.txt"), None, "give texts as arguments or --file, not both"),
        (("--file", "/nonexistent/c.txt"), None, "cannot read /nonexistent/c.txt"),
        (("x", ""), None, "input 2 is empty"),
    ],
)
def test_usage_errors_before_any_request(
    mock: MockServerThread, args: tuple[str, ...], input: str | None, message: str
) -> None:
    result = invoke("-p", "mock", *args, input=input)
    assert (result.exit_code, result.stdout) == (2, "")
    assert one_line(result.stderr).startswith(f"llmcli: error: {message}")
    assert mock.server.requests == []


def test_asks_for_base64(mock: MockServerThread) -> None:
    result = invoke("-p", "mock", "--batch-size", "2", "a", "b", "c")
    assert result.exit_code == 0, result.stderr
    sent = embedding_requests(mock)
    # Batches go out concurrently: the server may see them in either order.
    assert sorted(body["input"] for body in sent) == [["a", "b"], ["c"]]
    assert {body["encoding_format"] for body in sent} == {"base64"}
    assert [r["embedding"] for r in records(result.stdout)] == [
        mock_vector(text) for text in ("a", "b", "c")
    ]


# --- --similar and its cache (mock server: hash vectors, requests recorded) ------------------


CORPUS = [
    f"note {n}: {word}" for n, word in enumerate(("red", "green", "blue", "cyan", "plum", "teal"))
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"id": f"n{n}", "text": text}) for n, text in enumerate(CORPUS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_second_query_costs_one_request(
    mock: MockServerThread, corpus: Path, tmp_path: Path
) -> None:
    first = invoke("-p", "mock", "--similar", "first query", "--file", str(corpus), "-k", "2")
    assert first.exit_code == 0, first.stderr
    assert len(first.stdout.splitlines()) == 2
    sent = [body["input"] for body in embedding_requests(mock)]
    assert sent == [["first query"], CORPUS]
    assert first.stderr.startswith("7 inputs, 64 dimensions, ")

    second = invoke("-p", "mock", "--similar", "another query", "--file", str(corpus))
    assert second.exit_code == 0, second.stderr
    sent = [body["input"] for body in embedding_requests(mock)]
    assert sent[2:] == [["another query"]]
    assert len(mock.server.requests) == 3  # nothing else asked either
    assert second.stderr.startswith("7 inputs (6 cached), 64 dimensions, ")

    cache = tmp_path / "data-home" / "llmcli" / CACHE_FILENAME
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700


def test_a_new_corpus_line_is_the_only_one_sent(
    mock: MockServerThread, corpus: Path, tmp_path: Path
) -> None:
    assert invoke("-p", "mock", "--similar", "q", "--file", str(corpus)).exit_code == 0
    grown = tmp_path / "grown.txt"
    grown.write_text("\n".join([*CORPUS, "a brand new line"]) + "\n")
    result = invoke("-p", "mock", "--similar", "q2", "--file", str(grown))
    assert result.exit_code == 0, result.stderr
    sent = [body["input"] for body in embedding_requests(mock)]
    assert sent[2:] == [["q2"], ["a brand new line"]]


def test_the_exact_line_ranks_first(mock: MockServerThread, corpus: Path) -> None:
    # Hash vectors carry no meaning, but a text is identical to itself: cosine 1.
    for target in (CORPUS[4], CORPUS[1]):
        result = invoke("-p", "mock", "--similar", target, "--file", str(corpus), "--top-k", "3")
        assert result.exit_code == 0, result.stderr
        top, *rest = result.stdout.splitlines()
        index = CORPUS.index(target)
        assert top == f"1.0000  n{index}  {target}"
        assert len(rest) == 2 and all(not line.startswith("1.0000") for line in rest)


def test_similar_json_for_scripts(mock: MockServerThread, corpus: Path) -> None:
    result = invoke("-p", "mock", "--similar", CORPUS[2], "--file", str(corpus), "--json")
    assert result.exit_code == 0, result.stderr
    hits = json.loads(result.stdout)
    assert [hit["rank"] for hit in hits] == [1, 2, 3, 4, 5]
    assert hits[0] == {"rank": 1, "score": pytest.approx(1.0), "id": "n2", "text": CORPUS[2]}
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)


def test_similar_text_is_made_inert(mock: MockServerThread, tmp_path: Path) -> None:
    path = tmp_path / "evil.jsonl"
    evil = "clear \x1b[2J\nsecond line \u202e"
    path.write_text(json.dumps({"id": "e\x1b]0;t\x07", "text": evil}) + "\n")
    result = invoke("-p", "mock", "--similar", evil, "--file", str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "1.0000  e␛]0;t␇  clear ␛[2J␤second line <U+202E>\n"
