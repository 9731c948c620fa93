"""``llmcli.embeddings`` without the CLI: inputs, wire decoding, formats, similarity, cache.

Pure parts are table-driven; protocol edges (base64 refused, order under concurrency,
a context overflow) go through ``httpx.MockTransport`` handlers that also assert what was
sent; vectors, long inputs and the 501 come from the real llama-server.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import math
import stat
import struct
from array import array
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from rig import LlamaServer
from rig.profiles import make_profile as rig_profile

from llmcli import errors
from llmcli.config.profiles import Profile
from llmcli.embeddings.cache import CACHE_FILENAME, EmbeddingCache, default_cache_path
from llmcli.embeddings.embedder import Embedder, EmbeddingRun, decode_vector, parse_answer
from llmcli.embeddings.inputs import (
    Embedding,
    EmbeddingInput,
    describe_input,
    inputs_from_jsonl,
    inputs_from_lines,
    inputs_from_texts,
    read_input_file,
)
from llmcli.embeddings.output import csv_lines, encode_npy, json_document, ndjson_line
from llmcli.embeddings.similarity import cosine, rank
from llmcli.storage.store import default_path
from llmcli.wire.client import Client, RetryPolicy

BASE = "http://backend.test/v1"
Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def make_profile(base_url: str = BASE, **changes: Any) -> Profile:
    fields = {"api_key": "test-key", "model": None, "dialect": "llamacpp", **changes}
    return rig_profile(base_url, **fields)


def f32(*values: float) -> array[float]:
    return array("f", values)


def b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def fake_vector(text: str) -> list[float]:
    """A distinct, exactly-float32 vector per text, for mock answers."""
    return [float(len(text)), float(sum(map(ord, text)) % 97), 0.5]


def answer(texts: list[str], *, encoding: str = "base64", model: str = "m") -> dict[str, Any]:
    data = [
        {"index": i, "embedding": b64(fake_vector(t)) if encoding == "base64" else fake_vector(t)}
        for i, t in enumerate(texts)
    ]
    return {"model": model, "data": data, "usage": {"prompt_tokens": len(texts) * 2}}


def run_embedder(handler: Handler, inputs: list[EmbeddingInput], **options: Any) -> EmbeddingRun:
    async def go() -> EmbeddingRun:
        transport = httpx.MockTransport(handler)
        async with Client(make_profile(), transport=transport, retry=RetryPolicy(attempts=1)) as c:
            return await Embedder(c, **options).embed(inputs)

    return asyncio.run(go())


def texts_of(n: int) -> list[EmbeddingInput]:
    return inputs_from_texts([f"text {i}" for i in range(1, n + 1)])


# --- inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\nb\n", [(1, "a"), (2, "b")]),
        ("a\n\n  \nb", [(1, "a"), (4, "b")]),  # blank lines skipped, ids stay line numbers
        ("a\r\nb\r\n", [(1, "a"), (2, "b")]),
        ("a\x0cb\u2028c\n", [(1, "a\x0cb\u2028c")]),  # only LF ends a line
        ("\n\n", []),
        ("  indented  \n", [(1, "  indented  ")]),
    ],
)
def test_lines(text: str, expected: list[tuple[int, str]]) -> None:
    assert [(i.id, i.text) for i in inputs_from_lines(text)] == expected


def test_arguments_are_numbered_and_an_empty_one_is_refused() -> None:
    assert inputs_from_texts(["x", "y"]) == [EmbeddingInput(1, "x"), EmbeddingInput(2, "y")]
    with pytest.raises(errors.UsageError, match="input 2 is empty"):
        inputs_from_texts(["x", ""])


def test_jsonl_ids_and_defaults() -> None:
    text = '{"id": "a", "text": "first"}\n\n{"text": "third"}\n{"id": 7, "text": "x", "n": 1}\n'
    assert inputs_from_jsonl(text, source="c.jsonl") == [
        EmbeddingInput("a", "first"),
        EmbeddingInput(3, "third"),
        EmbeddingInput(7, "x"),
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "c.jsonl:2: not JSON"),
        ("[1, 2]", "c.jsonl:2: expected an object"),
        ('{"id": 1}', 'c.jsonl:2: needs a non-empty "text"'),
        ('{"text": ""}', 'c.jsonl:2: needs a non-empty "text"'),
        ('{"text": 5}', 'c.jsonl:2: needs a non-empty "text"'),
        ('{"text": "x", "id": true}', 'c.jsonl:2: "id" must be a string or an integer'),
        ('{"text": "x", "id": 1.5}', 'c.jsonl:2: "id" must be a string or an integer'),
    ],
)
def test_jsonl_errors_name_the_line(line: str, message: str) -> None:
    with pytest.raises(errors.UsageError) as caught:
        inputs_from_jsonl('{"text": "ok"}\n' + line + "\n", source="c.jsonl")
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("c.jsonl", '{"text": "a"}\n', [(1, "a")]),
        ("c.JSONL", '{"text": "a"}\n', [(1, "a")]),
        ("c.txt", '\n  {"text": "a", "id": "x"}\n', [("x", "a")]),  # first non-blank is {
        ("c.txt", 'plain\n{"text": "a"}\n', [(1, "plain"), (2, '{"text": "a"}')]),
    ],
)
def test_file_format_detection(
    tmp_path: Path, name: str, content: str, expected: list[tuple[object, str]]
) -> None:
    path = tmp_path / name
    path.write_text(content)
    assert [(i.id, i.text) for i in read_input_file(path)] == expected


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match=r"cannot read .*missing\.txt"):
        read_input_file(tmp_path / "missing.txt")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9\n")
    with pytest.raises(errors.UsageError, match=r"not UTF-8 text \(byte 0xe9 at offset 3\)"):
        read_input_file(latin)


def test_describe_input_is_inert_and_short() -> None:
    shown = describe_input(EmbeddingInput("id\x1b[2J", "\x1b]0;title\x07" + "x" * 40))
    assert "\x1b" not in shown and "\x07" not in shown
    assert shown.startswith('input "id') and shown.endswith('…")')


# --- wire decoding ----------------------------------------------------------------------


def test_base64_is_little_endian_float32() -> None:
    values = [1.5, -2.25, 3.0e-8]
    vector = decode_vector(base64.b64encode(struct.pack("<3f", *values)).decode())
    assert list(vector) == list(array("f", values))
    assert vector.typecode == "f"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "not base64"),
        (base64.b64encode(b"\0" * 6).decode(), "6 bytes is not float32"),
        ([[0.1, 0.2], [0.3, 0.4]], "one vector per token.*--pooling mean"),
        ([], "not a list of numbers"),
        ([0.1, "x"], "not a list of numbers"),
        ([True, 0.5], "not a list of numbers"),
        (None, "not a list of numbers"),
    ],
)
def test_bad_vectors(value: object, message: str) -> None:
    with pytest.raises(errors.StreamError, match=message):
        decode_vector(value)


def test_answer_is_put_in_input_order_by_index() -> None:
    shuffled = {
        "data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": b64([1.0])}],
        "usage": {"prompt_tokens": 9},
        "model": "tiny",
    }
    vectors, tokens, model = parse_answer(shuffled, 2)
    assert [list(v) for v in vectors] == [[1.0], [2.0]]
    assert (tokens, model) == (9, "tiny")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": [{"embedding": [1.0]}]}, "answered 1 embeddings for 2 inputs"),
        ({"error": "x"}, "answered no embeddings for 2 inputs"),
        ({"data": [{"index": 0, "embedding": [1.0]}] * 2}, "bad index 0"),
        ({"data": [{"index": 5, "embedding": [1.0]}, {"embedding": [1.0]}]}, "bad index 5"),
        ({"data": ["x", "y"]}, "non-object entry"),
    ],
)
def test_malformed_answers(body: object, message: str) -> None:
    with pytest.raises(errors.StreamError, match=message):
        parse_answer(body, 2)


# --- formats ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 5), (1, 1), (2, 64), (1, 300)])
def test_npy_loads_in_numpy(tmp_path: Path, shape: tuple[int, int]) -> None:
    rows, dims = shape
    vectors = [f32(*(r * 1000 + d + 0.25 for d in range(dims))) for r in range(rows)]
    data = encode_npy(vectors)
    header_end = data.index(b"\n") + 1
    assert data[:8] == b"\x93NUMPY\x01\x00" and header_end % 64 == 0
    path = tmp_path / "m.npy"
    path.write_bytes(data)
    loaded = np.load(path, allow_pickle=False)
    assert loaded.dtype == np.dtype("<f4") and loaded.shape == shape
    assert loaded.tolist() == [list(v) for v in vectors]


def test_npy_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError, match="same number of dimensions"):
        encode_npy([f32(1.0, 2.0), f32(1.0)])


def test_ndjson_json_and_csv_carry_the_same_float32_values() -> None:
    tiny = struct.unpack("<f", struct.pack("<f", 1e-7))[0]
    items = [
        Embedding(1, "plain", f32(0.1, -2.5, tiny)),
        Embedding("x,\x1b[31m", "red \x1b[31m\u202e", f32(1 / 3, 0.0, -0.0)),
    ]
    lines = [ndjson_line(item) for item in items]
    assert all("\x1b" not in line and "\u202e" not in line for line in lines)
    records = [json.loads(line) for line in lines]
    assert records == json.loads(json_document(items))
    assert [r["id"] for r in records] == [1, "x,\x1b[31m"]
    assert records[1]["text"] == "red \x1b[31m\u202e"
    for record, item in zip(records, items, strict=True):
        assert record["embedding"] == item.vector.tolist()
    rows = list(csv.reader(io.StringIO("".join(csv_lines(items)))))
    assert rows[0] == ["id", "dim0", "dim1", "dim2"]
    assert rows[2][0] == "x,␛[31m"  # quoted by csv, made inert for a terminal
    assert [[float(x) for x in row[1:]] for row in rows[1:]] == [i.vector.tolist() for i in items]


def test_ndjson_refuses_nan() -> None:
    with pytest.raises(errors.StreamError, match="NaN"):
        ndjson_line(Embedding(1, "x", f32(math.nan)))


# --- similarity -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 1.0),
        ([1.0, 2.0], [-1.0, -2.0], -1.0),
        ([1.0, 0.0], [0.0, 5.0], 0.0),
        ([0.0, 0.0], [1.0, 1.0], 0.0),
        ([3.0, 4.0], [6.0, 8.0], 1.0),
        ([0.1] * 1000, [0.1] * 1000, 1.0),  # rounding would step past 1 without the clamp
    ],
)
def test_cosine(a: list[float], b: list[float], expected: float) -> None:
    assert cosine(a, b) == pytest.approx(expected, abs=1e-12)
    assert -1.0 <= cosine(a, b) <= 1.0


def test_cosine_needs_equal_lengths() -> None:
    with pytest.raises(ValueError, match="2 and 3 dimensions"):
        cosine([1.0, 2.0], [1.0, 2.0, 3.0])


def test_rank_best_first_ties_in_corpus_order() -> None:
    corpus = [
        Embedding("far", "", f32(-1.0, 0.0)),
        Embedding("tie-a", "", f32(0.0, 1.0)),
        Embedding("best", "", f32(1.0, 0.1)),
        Embedding("tie-b", "", f32(0.0, 2.0)),
    ]
    hits = rank([1.0, 0.0], corpus, top_k=3)
    assert [h.id for h in hits] == ["best", "tie-a", "tie-b"]
    assert [h.id for h in rank([1.0, 0.0], corpus, top_k=10)][-1] == "far"


# --- the embedder against handlers ----------------------------------------------------


def test_batches_run_concurrently_up_to_the_limit_and_keep_order() -> None:
    in_flight, peak, sent = 0, 0, []

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        body = json.loads(request.content)
        assert request.url.path == "/v1/embeddings"
        assert body["encoding_format"] == "base64" and body["model"] == "emb"
        assert body["cache_prompt"] is False  # the profile's params ride along
        sent.append(body["input"])
        in_flight += 1
        peak = max(peak, in_flight)
        # Later batches answer first: order must come from the inputs, not from arrival.
        await asyncio.sleep(0.05 / len(sent))
        in_flight -= 1
        return httpx.Response(200, json=answer(body["input"]))

    async def go() -> EmbeddingRun:
        profile = make_profile(params={"cache_prompt": False})
        async with Client(profile, transport=httpx.MockTransport(handler)) as client:
            embedder = Embedder(client, model="emb", batch_size=2, concurrency=3)
            return await embedder.embed(texts_of(9))

    run = asyncio.run(go())
    assert sorted(map(len, sent)) == [1, 2, 2, 2, 2]
    assert peak == 3
    assert [e.id for e in run.embeddings] == list(range(1, 10))
    assert [list(e.vector) for e in run.embeddings] == [
        fake_vector(f"text {i}") for i in range(1, 10)
    ]
    assert (run.dimensions, run.tokens, run.model) == (3, 18, "m")


def test_base64_refused_with_400_retries_that_batch_as_floats_and_remembers() -> None:
    formats = []

    async def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        formats.append(body["encoding_format"])
        if body["encoding_format"] == "base64":
            return httpx.Response(400, json={"error": {"message": "unknown encoding_format"}})
        return httpx.Response(200, json=answer(body["input"], encoding="float"))

    run = run_embedder(handler, texts_of(3), batch_size=1, concurrency=1)
    assert formats == ["base64", "float", "float", "float"]
    assert [list(e.vector) for e in run.embeddings] == [fake_vector(f"text {i}") for i in (1, 2, 3)]


def test_a_400_that_floats_do_not_cure_is_the_error_shown() -> None:
    formats = []

    async def handler(request: httpx.Request) -> httpx.Response:
        formats.append(json.loads(request.content)["encoding_format"])
        message = {"error": {"message": "Input content cannot be empty", "code": 400}}
        return httpx.Response(400, json=message)

    with pytest.raises(errors.StatusError, match="HTTP 400: Input content cannot be empty"):
        run_embedder(handler, texts_of(1))
    assert formats == ["base64", "float"]


def test_floats_answered_to_a_base64_request_are_taken() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer(json.loads(request.content)["input"], encoding="f"))

    run = run_embedder(handler, texts_of(2))
    assert [list(e.vector) for e in run.embeddings] == [fake_vector(f"text {i}") for i in (1, 2)]


def test_zen_is_refused_before_any_request() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request may be sent: {request.url}")

    async def go() -> None:
        profile = make_profile(dialect="zen")
        async with Client(profile, transport=httpx.MockTransport(handler)) as client:
            await Embedder(client).embed(texts_of(1))

    with pytest.raises(errors.UsageError) as caught:
        asyncio.run(go())
    assert str(caught.value) == (
        "zen has no /embeddings endpoint: use a llama.cpp profile (-p local) started with"
        " --embeddings"
    )


def test_context_overflow_names_the_input_with_the_limit_from_n_ctx() -> None:
    """llama-server's other overflow shape: 400 exceed_context_size_error with n_ctx."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tokenize":
            content = json.loads(request.content)["content"]
            return httpx.Response(200, json={"tokens": list(range(len(content)))})
        error = {
            "code": 400,
            "message": "the request exceeds the available context size",
            "type": "exceed_context_size_error",
            "n_prompt_tokens": 12,
            "n_ctx": 8,
        }
        return httpx.Response(400, json={"error": error})

    inputs = [EmbeddingInput("short", "abc"), EmbeddingInput("doc-2", "x" * 12)]
    with pytest.raises(errors.UsageError) as caught:
        run_embedder(handler, inputs, encoding="float")
    assert str(caught.value).startswith(
        'input "doc-2" ("xxxxxxxxxxxx") is too long to embed: 12 tokens, the server takes at most 8;'
    )


def test_too_large_without_tokenize_keeps_the_servers_words() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tokenize":
            return httpx.Response(404, json={"error": {"message": "File Not Found"}})
        message = "input (600 tokens) is too large to process. increase the physical batch size"
        return httpx.Response(500, json={"error": {"message": message, "type": "server_error"}})

    with pytest.raises(errors.StatusError, match=r"HTTP 500: input \(600 tokens\) is too large"):
        run_embedder(handler, texts_of(2))


def test_first_error_cancels_the_batches_still_waiting() -> None:
    seen = []

    async def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body["input"][0])
        if body["input"][0] == "text 1":
            return httpx.Response(418, json={"error": {"message": "teapot"}})
        await asyncio.sleep(0.01)
        return httpx.Response(200, json=answer(body["input"]))

    with pytest.raises(errors.StatusError, match="teapot"):
        run_embedder(handler, texts_of(20), batch_size=1, concurrency=2)
    assert len(seen) < 20


# --- the cache --------------------------------------------------------------------------


def test_cache_lives_beside_the_history_and_is_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    assert default_cache_path({"LLMCLI_DATA_DIR": str(data)}) == data / CACHE_FILENAME
    xdg = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert default_cache_path(xdg) == default_path(xdg).with_name(CACHE_FILENAME)
    monkeypatch.setenv("LLMCLI_DATA_DIR", str(data))
    with EmbeddingCache.open() as cache:
        cache.store("p", "m", [Embedding(1, "x", f32(1.0))])
    assert stat.S_IMODE((data / CACHE_FILENAME).stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_cache_keys_on_profile_model_and_text(tmp_path: Path) -> None:
    path = tmp_path / "cache" / CACHE_FILENAME
    with EmbeddingCache.open(path) as cache:
        cache.store("p", "m", [Embedding(1, "a", f32(1.0, 2.0)), Embedding(2, "b", f32(3.0, 4.0))])
        cache.store("p", "m", [Embedding(3, "cut", f32(5.0, 6.0), truncated=True)])
    with EmbeddingCache.open(path) as cache:  # read back from the file
        found = cache.lookup("p", "m", ["b", "zz", "a", "b", "cut"])
        assert {i: list(v) for i, v in found.items()} == {
            0: [3.0, 4.0],
            2: [1.0, 2.0],
            3: [3.0, 4.0],
        }
        assert 4 in cache.lookup("p", "m", ["a", "b", "a", "b", "cut"], truncated=True)
        assert cache.lookup("other", "m", ["a"]) == {}
        assert cache.lookup("p", "other", ["a"]) == {}
        assert cache.count() == 3


def test_a_damaged_cache_row_is_a_miss(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / CACHE_FILENAME
    with EmbeddingCache.open(path) as cache:
        cache.store("p", "m", [Embedding(1, "a", f32(1.0, 2.0))])
    with sqlite3.connect(path) as db:
        db.execute("UPDATE embeddings SET vector = x'00'")
    with EmbeddingCache.open(path) as cache:
        assert cache.lookup("p", "m", ["a"]) == {}


def test_an_unreadable_cache_says_it_can_be_removed(tmp_path: Path) -> None:
    path = tmp_path / CACHE_FILENAME
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(errors.LlmcliError, match="it is only a cache: remove it"):
        EmbeddingCache.open(path)


# --- the real llama-server ------------------------------------------------------------


def embed_real(server: LlamaServer, inputs: list[EmbeddingInput], **options: Any) -> EmbeddingRun:
    async def go() -> EmbeddingRun:
        async with Client(make_profile(base_url=server.base_url)) as client:
            return await Embedder(client, **options).embed(inputs)

    return asyncio.run(go())


def direct(server: LlamaServer, text: str) -> list[float]:
    """One input embedded alone, bypassing llmcli (floats)."""
    response = httpx.post(server.base_url + "/embeddings", json={"input": text}, timeout=30)
    response.raise_for_status()
    vector: list[float] = response.json()["data"][0]["embedding"]
    return vector


def test_real_base64_and_floats_give_identical_vectors(llama_embed: LlamaServer) -> None:
    inputs = inputs_from_texts(["hello", "world", "a longer sentence here"])
    packed = embed_real(llama_embed, inputs, encoding="base64")
    plain = embed_real(llama_embed, inputs, encoding="float")
    assert packed.dimensions == 64 and packed.model == "tiny-embed"
    assert packed.tokens == plain.tokens == 5 + 5 + 22  # one token per character here
    assert [e.vector for e in packed.embeddings] == [e.vector for e in plain.embeddings]
    norms = [math.sqrt(math.fsum(x * x for x in e.vector)) for e in packed.embeddings]
    assert norms == pytest.approx([1.0] * 3, abs=1e-5)  # llama-server L2-normalises


def test_real_order_and_ids_across_concurrent_batches(llama_embed: LlamaServer) -> None:
    # Equal token counts: the server's pooling fault (see below) needs unequal ones.
    inputs = [EmbeddingInput(f"doc-{i}", f"text {i:02d}") for i in range(11)]
    run = embed_real(llama_embed, inputs, batch_size=2, concurrency=3)
    assert [e.id for e in run.embeddings] == [f"doc-{i}" for i in range(11)]
    assert [e.text for e in run.embeddings] == [i.text for i in inputs]
    for item, got in zip(inputs, run.embeddings, strict=True):
        assert list(got.vector) == pytest.approx(direct(llama_embed, item.text), abs=1e-6)
    first, second = (list(e.vector) for e in run.embeddings[:2])
    assert cosine(first, second) < 0.999  # different texts, different vectors


def test_real_pooling_drops_tokens_beside_a_shorter_input(llama_embed: LlamaServer) -> None:
    """Pins a llama-server fault: with -np 2 and a split KV cache, an input decoded with a
    shorter one loses its first tokens from the mean. Servers with --kv-unified or -np 1
    are right. When this fails, the fault is fixed: update the embeddings docstring."""

    def pair(other: str) -> list[float]:
        body = {"input": ["beta gamma", other]}
        data = httpx.post(llama_embed.base_url + "/embeddings", json=body, timeout=30).json()
        vector: list[float] = data["data"][0]["embedding"]
        return vector

    alone = direct(llama_embed, "beta gamma")
    assert pair("zzzzzzzzzzzz") == pytest.approx(alone, abs=1e-6)
    assert pair("z") != pytest.approx(alone, abs=1e-3)


def test_real_too_long_input_is_named(llama_embed: LlamaServer) -> None:
    raw = httpx.post(llama_embed.base_url + "/embeddings", json={"input": "a" * 600}, timeout=30)
    assert raw.status_code == 500
    assert raw.json()["error"] == {
        "code": 500,
        "message": "input (600 tokens) is too large to process. increase the physical batch"
        " size (current batch size: 512)",
        "type": "server_error",
    }
    inputs = [EmbeddingInput("ok", "short"), EmbeddingInput("long-one", "a" * 600)]
    with pytest.raises(errors.UsageError) as caught:
        embed_real(llama_embed, inputs)
    assert str(caught.value) == (
        'input "long-one" ("aaaaaaaaaaaaaaaaaaaaaaaa…") is too long to embed: 600 tokens, the'
        " server takes at most 512; shorten it, pass --truncate to cut it, or restart"
        " llama-server with larger --batch-size and --ubatch-size"
    )


def test_real_truncate_cuts_to_the_limit(llama_embed: LlamaServer) -> None:
    # The server ignores a "truncate" field: the same 500 comes back.
    body = {"input": "a" * 600, "truncate": True}
    raw = httpx.post(llama_embed.base_url + "/embeddings", json=body, timeout=30)
    assert raw.status_code == 500
    run = embed_real(llama_embed, [EmbeddingInput("long", "a" * 600)], truncate=True)
    [item] = run.embeddings
    assert item.truncated and item.text == "a" * 600
    assert (run.tokens, run.limit, run.truncated) == (512, 512, ("long",))
    assert list(item.vector) == pytest.approx(direct(llama_embed, "a" * 512), abs=1e-6)


def test_real_truncate_leaves_inputs_that_fit_alone(llama_embed: LlamaServer) -> None:
    run = embed_real(llama_embed, inputs_from_texts(["b" * 512, "c" * 700]), truncate=True)
    assert [e.truncated for e in run.embeddings] == [False, True]
    assert run.tokens == 1024


def test_real_server_without_embeddings_says_to_start_it_so(llama_think: LlamaServer) -> None:
    with pytest.raises(errors.StatusError) as caught:
        embed_real(llama_think, inputs_from_texts(["hi"]))
    assert caught.value.status == 501
    assert str(caught.value) == (
        "HTTP 501: This server does not support embeddings. Start it with `--embeddings`"
        " (not_supported_error)"
    )
