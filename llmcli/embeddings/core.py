"""Embeddings: inputs in, float32 vectors out, a corpus cache, and nearest-neighbour search.

Four parts, each usable without the command line, none of which prints:

- *Inputs*: ``inputs_from_texts`` (arguments, ids 1..n), ``inputs_from_lines`` (stdin or
  a text file: one input per line, blank lines skipped, the id is the line number) and
  ``read_input_file`` (text lines, or JSONL objects ``{"text": ..., "id": ...}``, detected
  by a ``.jsonl`` name or a first non-blank ``{``).
- *Embedder*: sends ``POST /embeddings`` in batches, at most ``concurrency`` at a time,
  and gives the vectors back in input order, also as they finish (``on_prefix``: the
  longest finished run from the first input, so a run that stops loses nothing that
  finished before the gap). It asks for ``encoding_format: "base64"``
  (little-endian float32: about a quarter of the bytes of decimal floats) and accepts floats
  instead; a server that answers the base64 request with 400 gets that batch again as
  floats, once, and floats from then on.
- *EmbeddingCache*: ``embeddings.db`` beside the history, keyed by profile, model (as
  the server names it) and the SHA-256 of the text, so ``find_similar`` over a corpus
  already embedded costs one request, the query's.
- *Output and similarity*: ndjson/JSON/CSV lines and the ``.npy`` format, written here
  by hand because numpy is no runtime dependency, and ``EmbeddingWriter``, which writes
  them as vectors finish (through a callable it is given); cosine similarity in pure
  Python.

Vectors are ``array('f')``: float32, as servers compute them. llama-server's decimal
floats are float32 values printed in full, so both encodings give identical vectors.

Long inputs. llama-server embeds an input in one micro-batch, so an input longer than
``n_ubatch`` tokens (512 by default, capped at the slot's context) fails the whole
request with 500 ``input (600 tokens) is too large to process. increase the physical
batch size (current batch size: 512)``, which names neither the input nor its position,
and it ignores a ``"truncate"`` field. On that answer the Embedder counts the batch's
tokens with the server's ``/tokenize`` to find the culprit: it names it in a
``UsageError``, or with ``truncate=True`` cuts it to the limit (``/tokenize`` and
``/detokenize``, checked again against the limit) and resends the batch. The common case
pays nothing for this. The limit is the one the message names (llama-server caps it at
the slot's context), else ``n_ctx`` of an ``exceed_context_size_error``, else 512:
``/props`` does not carry ``n_ubatch``.

A llama-server fault to know of (pinned in tests/test_embeddings.py): with more than one
slot (``-np 2``) and a split KV cache (the default), an input decoded beside a shorter
one is mean-pooled without its first N tokens, N the shorter one's length, so its vector
depends on its batch mates. Servers started with ``--kv-unified`` or ``-np 1`` pool
correctly.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import csv
import hashlib
import heapq
import io
import json
import math
import operator
import os
import re
import sqlite3
import struct
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from llmcli.errors import LlmcliError, StatusError, StreamError, UsageError
from llmcli.storage.database import PrivateDatabase
from llmcli.ui.sanitize import dumps_json, neutralize
from llmcli.ui.stdin_text import bad_byte

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile
    from llmcli.wire.client import Client

__all__ = [
    "CACHE_FILENAME",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_TOKEN_LIMIT",
    "Embedder",
    "Embedding",
    "EmbeddingCache",
    "EmbeddingInput",
    "EmbeddingRun",
    "EmbeddingWriter",
    "Encoding",
    "Hit",
    "InputId",
    "OutputKind",
    "SimilarResult",
    "check_embeddings_supported",
    "cosine",
    "csv_header",
    "csv_lines",
    "csv_row",
    "decode_vector",
    "default_cache_path",
    "describe_input",
    "encode_npy",
    "find_similar",
    "inputs_from_jsonl",
    "inputs_from_lines",
    "inputs_from_texts",
    "json_document",
    "ndjson_line",
    "parse_answer",
    "rank",
    "read_input_file",
]

InputId = str | int
Encoding = Literal["base64", "float"]
OutputKind = Literal["ndjson", "json", "csv", "npy"]

DEFAULT_BATCH_SIZE: Final = 32
DEFAULT_CONCURRENCY: Final = 4
DEFAULT_TOKEN_LIMIT: Final = 512  # llama-server's default n_ubatch
CACHE_FILENAME: Final = "embeddings.db"
CACHE_SCHEMA_VERSION: Final = 1
_LOOKUP_CHUNK: Final = 500  # host parameters per query; old SQLite allows 999
_TRUNCATE_ROUNDS: Final = 4
_SNIPPET: Final = 24

_TOO_LARGE: Final = re.compile(r"too large to process", re.IGNORECASE)
_BATCH_SIZE: Final = re.compile(r"current batch size:\s*(\d+)", re.IGNORECASE)

ZEN_REFUSAL: Final = (
    "zen has no /embeddings endpoint: use a llama.cpp profile (-p local) started with --embeddings"
)


# --- inputs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmbeddingInput:
    """One text to embed and the id it is known by in the output."""

    id: InputId
    text: str


@dataclass(frozen=True, slots=True)
class Embedding:
    """One input's vector; ``truncated`` when the server saw only the first part of it."""

    id: InputId
    text: str
    vector: array[float]
    truncated: bool = False


def inputs_from_texts(texts: Sequence[str]) -> list[EmbeddingInput]:
    """Inputs given as arguments: ids 1..n. An empty one is refused (servers refuse it)."""
    for number, text in enumerate(texts, 1):
        if not text:
            raise UsageError(f"input {number} is empty: there is nothing to embed")
    return [EmbeddingInput(number, text) for number, text in enumerate(texts, 1)]


def inputs_from_lines(text: str) -> list[EmbeddingInput]:
    """One input per line (LF or CRLF); blank lines are skipped; the id is the line number."""
    return [
        EmbeddingInput(number, line)
        for number, line in enumerate(_split_lines(text), 1)
        if line.strip()
    ]


def inputs_from_jsonl(text: str, *, source: str) -> list[EmbeddingInput]:
    """One JSON object per line with ``text`` and an optional ``id`` (else the line number)."""
    inputs: list[EmbeddingInput] = []
    for number, line in enumerate(_split_lines(text), 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(
                f"{where}: not JSON ({error.msg}); JSONL needs one object a line"
            ) from None
        if not isinstance(record, dict):
            raise UsageError(f'{where}: expected an object like {{"id": 1, "text": "..."}}')
        value = record.get("text")
        if not isinstance(value, str) or not value:
            raise UsageError(f'{where}: needs a non-empty "text" string')
        input_id = record.get("id", number)
        if isinstance(input_id, bool) or not isinstance(input_id, str | int):
            raise UsageError(f'{where}: "id" must be a string or an integer')
        inputs.append(EmbeddingInput(input_id, value))
    return inputs


def read_input_file(path: Path) -> list[EmbeddingInput]:
    """Inputs from a file: JSONL when named ``*.jsonl`` or starting with ``{``, else lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        # A file is refused, not patched: saved once as UTF-8 it stays right.
        raise UsageError(f"{path}: not UTF-8 text ({bad_byte(error)}); save it as UTF-8") from None
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    if path.suffix.lower() == ".jsonl" or text.lstrip().startswith("{"):
        return inputs_from_jsonl(text, source=str(path))
    return inputs_from_lines(text)


def _split_lines(text: str) -> list[str]:
    # Not str.splitlines(): form feeds, U+2028 and friends are text here, not line ends.
    return [line.removesuffix("\r") for line in text.split("\n")]


def describe_input(item: EmbeddingInput) -> str:
    """How an error names an input: its id and the start of its text, made inert."""
    snippet = item.text if len(item.text) <= _SNIPPET else item.text[:_SNIPPET] + "…"
    shown_id = item.id if isinstance(item.id, int) else json.dumps(item.id, ensure_ascii=False)
    return neutralize(f"input {shown_id} ({json.dumps(snippet, ensure_ascii=False)})")


# --- the embedder -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmbeddingRun:
    """Every input's embedding, in input order, and what it cost.

    ``tokens`` is what the server reported (``None`` when it reported nothing);
    ``model`` is the model the server says answered; ``limit`` the token limit found
    when an input was too long (``None`` when none was).
    """

    embeddings: tuple[Embedding, ...]
    dimensions: int
    tokens: int | None
    model: str | None
    limit: int | None = None

    @property
    def truncated(self) -> tuple[InputId, ...]:
        return tuple(item.id for item in self.embeddings if item.truncated)


@dataclass(slots=True)
class _Batch:
    embeddings: list[Embedding]
    tokens: int | None
    model: str | None
    limit: int | None


def check_embeddings_supported(profile: Profile) -> None:
    """Refuse, before any request, a backend known to have no embeddings endpoint."""
    if profile.dialect == "zen":
        raise UsageError(ZEN_REFUSAL)


class Embedder:
    """Embed inputs through one ``Client``: batched, concurrent, in order."""

    def __init__(
        self,
        client: Client,
        *,
        model: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
        truncate: bool = False,
        encoding: Encoding = "base64",
    ) -> None:
        check_embeddings_supported(client.profile)
        if batch_size < 1 or concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        self.client = client
        self.model = model or client.profile.model
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.truncate = truncate
        # What to ask for; turns to "float" for good once a server refuses base64.
        self.encoding: Encoding = encoding

    async def embed(
        self,
        inputs: Sequence[EmbeddingInput],
        *,
        on_batch: Callable[[Sequence[Embedding]], None] | None = None,
        on_prefix: Callable[[Sequence[Embedding]], None] | None = None,
    ) -> EmbeddingRun:
        """Embed ``inputs``; ``on_batch(embeddings)`` sees each batch as it lands.

        ``on_prefix(embeddings)`` sees the same vectors in input order: each call extends
        the run of finished inputs that starts at the first one, so a writer fed by it
        holds the longest finished prefix whenever the run stops. Both are called before
        the batch's slot goes to the next one. The first error (or a cancellation)
        cancels the batches still running and is raised.
        """
        if not inputs:
            raise UsageError("no input: there is nothing to embed")
        semaphore = asyncio.Semaphore(self.concurrency)
        prefix = _Prefix(on_prefix)

        async def run(number: int, batch: Sequence[EmbeddingInput]) -> _Batch:
            async with semaphore:
                done = await self._embed_batch(batch)
                if on_batch is not None:
                    on_batch(done.embeddings)
                prefix.add(number, done.embeddings)
            return done

        size = self.batch_size
        tasks = [
            asyncio.ensure_future(run(number, inputs[start : start + size]))
            for number, start in enumerate(range(0, len(inputs), size))
        ]
        try:
            batches = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return _join(batches)

    async def _embed_batch(self, batch: Sequence[EmbeddingInput]) -> _Batch:
        texts = [item.text for item in batch]
        cut: set[int] = set()
        limit = None
        try:
            answer = await self._post(texts)
        except StatusError as error:
            if not _is_too_large(error):
                raise
            texts, cut, limit = await self._fit(batch, error)
            answer = await self._post(texts)
        vectors, tokens, model = parse_answer(answer, len(texts))
        embeddings = [
            Embedding(item.id, item.text, vector, truncated=index in cut)
            for index, (item, vector) in enumerate(zip(batch, vectors, strict=True))
        ]
        return _Batch(embeddings, tokens, model, limit)

    async def _post(self, texts: Sequence[str]) -> Any:
        payload: dict[str, Any] = self.client.profile.request_params()
        payload.update(input=list(texts), encoding_format=self.encoding)
        if self.model:
            payload["model"] = self.model
        try:
            return await self.client.post_json("embeddings", payload)
        except StatusError as error:
            if payload["encoding_format"] != "base64" or error.status != 400:
                raise
        # Some OpenAI-compatible servers know only floats; if floats fail too, the
        # refusal was about something else and that error is the one to show.
        payload["encoding_format"] = "float"
        answer = await self.client.post_json("embeddings", payload)
        self.encoding = "float"
        return answer

    async def _fit(
        self, batch: Sequence[EmbeddingInput], error: StatusError
    ) -> tuple[list[str], set[int], int]:
        """Find the inputs over the server's limit: name the first, or cut them to fit."""
        limit = _limit_from_error(error) or DEFAULT_TOKEN_LIMIT
        counts: list[int] = []
        for item in batch:
            try:
                counts.append(len(await self._tokenize(item.text, special=True)))
            except LlmcliError:
                raise error from None  # no /tokenize here: the server's words are all we have
        over = [index for index, count in enumerate(counts) if count > limit]
        if not over:
            raise error
        if not self.truncate:
            first = batch[over[0]]
            more = f" (and {len(over) - 1} more in its batch)" if len(over) > 1 else ""
            raise UsageError(
                f"{describe_input(first)} is too long to embed: {counts[over[0]]} tokens,"
                f" the server takes at most {limit}{more}; shorten it, pass --truncate to cut"
                " it, or restart llama-server with larger --batch-size and --ubatch-size"
            )
        texts = [item.text for item in batch]
        for index in over:
            texts[index] = await self._cut(batch[index], counts[index], limit)
        return texts, set(over), limit

    async def _cut(self, item: EmbeddingInput, count: int, limit: int) -> str:
        """The longest start of ``item`` that is at most ``limit`` tokens, specials included."""
        plain = await self._tokenize(item.text, special=False)
        keep = limit - (count - len(plain))  # room left by BOS/EOS the server adds
        for _round in range(_TRUNCATE_ROUNDS):
            if keep < 1:
                break
            text = await self._detokenize(plain[:keep])
            # Detokenizing and tokenizing again need not give the same tokens: check.
            count = len(await self._tokenize(text, special=True))
            if count <= limit:
                return text
            keep -= count - limit
        raise UsageError(f"{describe_input(item)} cannot be cut to {limit} tokens")

    async def _tokenize(self, text: str, *, special: bool) -> list[int]:
        answer = await self.client.post_json(
            self.client.root_url + "/tokenize", {"content": text, "add_special": special}
        )
        tokens = answer.get("tokens") if isinstance(answer, Mapping) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise StreamError("the server's /tokenize answer has no token list")
        return tokens

    async def _detokenize(self, tokens: Sequence[int]) -> str:
        answer = await self.client.post_json(
            self.client.root_url + "/detokenize", {"tokens": list(tokens)}
        )
        content = answer.get("content") if isinstance(answer, Mapping) else None
        if not isinstance(content, str):
            raise StreamError("the server's /detokenize answer has no content")
        return content


class _Prefix:
    """Batches that land in any order, handed on in input order as soon as they can be."""

    def __init__(self, on_prefix: Callable[[Sequence[Embedding]], None] | None) -> None:
        self.on_prefix = on_prefix
        self.next = 0  # the number of the first batch not handed on yet
        self.waiting: dict[int, Sequence[Embedding]] = {}

    def add(self, number: int, embeddings: Sequence[Embedding]) -> None:
        if self.on_prefix is None:
            return
        self.waiting[number] = embeddings
        while self.next in self.waiting:
            ready = self.waiting.pop(self.next)
            self.next += 1
            self.on_prefix(ready)


def _is_too_large(error: StatusError) -> bool:
    if error.error_type == "exceed_context_size_error":
        return True
    return error.status in (400, 500) and bool(_TOO_LARGE.search(error.body or str(error)))


def _limit_from_error(error: StatusError) -> int | None:
    found = _BATCH_SIZE.search(error.body)
    if found:
        return int(found.group(1))
    try:
        detail = json.loads(error.body).get("error", {})
    except (ValueError, AttributeError):
        return None
    n_ctx = detail.get("n_ctx") if isinstance(detail, Mapping) else None
    return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None


def _join(batches: Sequence[_Batch]) -> EmbeddingRun:
    embeddings = tuple(item for batch in batches for item in batch.embeddings)
    dimensions = {len(item.vector) for item in embeddings}
    if len(dimensions) > 1:
        raise StreamError(f"the server gave vectors of different sizes: {sorted(dimensions)}")
    reported = [batch.tokens for batch in batches if batch.tokens is not None]
    limits = [batch.limit for batch in batches if batch.limit is not None]
    return EmbeddingRun(
        embeddings=embeddings,
        dimensions=dimensions.pop() if dimensions else 0,
        tokens=sum(reported) if reported else None,
        model=next((batch.model for batch in batches if batch.model), None),
        limit=min(limits) if limits else None,
    )


def parse_answer(
    answer: object, expected: int
) -> tuple[list[array[float]], int | None, str | None]:
    """Vectors in input order, prompt tokens and model from an ``/embeddings`` answer."""
    data = answer.get("data") if isinstance(answer, Mapping) else None
    if not isinstance(data, list) or len(data) != expected:
        got = len(data) if isinstance(data, list) else "no"
        raise StreamError(f"the server answered {got} embeddings for {expected} inputs")
    vectors: list[array[float] | None] = [None] * expected
    for position, entry in enumerate(data):
        if not isinstance(entry, Mapping):
            raise StreamError("the server's embeddings answer holds a non-object entry")
        index = entry.get("index", position)
        if not isinstance(index, int) or not 0 <= index < expected or vectors[index] is not None:
            raise StreamError(f"the server's embeddings answer has a bad index {index!r}")
        vectors[index] = decode_vector(entry.get("embedding"))
    assert all(vector is not None for vector in vectors)
    usage = answer.get("usage") if isinstance(answer, Mapping) else None
    tokens = usage.get("prompt_tokens") if isinstance(usage, Mapping) else None
    model = answer.get("model") if isinstance(answer, Mapping) else None
    return (
        [vector for vector in vectors if vector is not None],
        tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
        model if isinstance(model, str) and model else None,
    )


def decode_vector(value: object) -> array[float]:
    """A float32 vector from a list of numbers or base64 of little-endian float32."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise StreamError("the server sent an embedding that is not base64") from None
        if len(raw) % 4:
            raise StreamError(f"a base64 embedding of {len(raw)} bytes is not float32")
        return _from_le_bytes(raw)
    if isinstance(value, list) and value and isinstance(value[0], list):
        raise StreamError(
            "the server sent one vector per token, not one per input: start llama-server"
            " with a pooling type (--pooling mean)"
        )
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
    ):
        raise StreamError("the server sent an embedding that is not a list of numbers")
    return array("f", value)


def _from_le_bytes(raw: bytes) -> array[float]:
    vector = array("f")
    assert vector.itemsize == 4
    vector.frombytes(raw)
    if sys.byteorder == "big":
        vector.byteswap()
    return vector


def _to_le_bytes(vector: array[float]) -> bytes:
    if sys.byteorder == "big":
        vector = array("f", vector)
        vector.byteswap()
    return vector.tobytes()


# --- similarity -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """One corpus entry near the query."""

    score: float
    id: InputId
    text: str


@dataclass(frozen=True, slots=True)
class SimilarResult:
    """The nearest entries, best first, and what finding them cost."""

    hits: tuple[Hit, ...]
    inputs: int  # corpus entries plus the query
    cached: int  # corpus entries taken from the cache
    dimensions: int
    tokens: int | None
    model: str | None


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0.0 when either vector is all zeros. O(dimensions), exact sums."""
    return _cosine(a, b, math.sqrt(_dot(a, a)))


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return math.fsum(map(operator.mul, a, b))


def _cosine(a: Sequence[float], b: Sequence[float], norm_a: float) -> float:
    if len(a) != len(b):
        raise ValueError(f"vectors of {len(a)} and {len(b)} dimensions")
    norms = norm_a * math.sqrt(_dot(b, b))
    if norms == 0.0:
        return 0.0
    return max(-1.0, min(1.0, _dot(a, b) / norms))  # rounding can step just past 1


def rank(query: Sequence[float], corpus: Sequence[Embedding], *, top_k: int) -> list[Hit]:
    """The ``top_k`` entries nearest ``query``, best first; ties keep corpus order.

    A linear scan in pure Python: O(entries x dimensions), roughly 0.3 s per million
    numbers on a laptop core (5 s for 20,000 entries of 768 dimensions); fine for notes
    and small corpora, not for an index.
    """
    norm = math.sqrt(_dot(query, query))
    scored = ((_cosine(query, item.vector, norm), -index) for index, item in enumerate(corpus))
    best = heapq.nlargest(top_k, scored)
    return [Hit(score, corpus[-negated].id, corpus[-negated].text) for score, negated in best]


async def find_similar(
    embedder: Embedder,
    query: str,
    corpus: Sequence[EmbeddingInput],
    cache: EmbeddingCache,
    *,
    top_k: int,
) -> SimilarResult:
    """Embed the query, the corpus through the cache, and rank the corpus against the query.

    The query is always sent: its answer names the model, which keys the cache, so a
    server restarted with another model never serves stale vectors.
    """
    if not query:
        raise UsageError("the query is empty: there is nothing to search for")
    asked = await embedder.embed([EmbeddingInput("query", query)])
    model = asked.model or embedder.model or ""
    profile = embedder.client.profile.name
    found = cache.lookup(
        profile, model, [item.text for item in corpus], truncated=embedder.truncate
    )
    missing = [item for index, item in enumerate(corpus) if index not in found]
    fresh: dict[int, Embedding] = {}
    run = None
    if missing:
        run = await embedder.embed(missing, on_batch=lambda done: cache.store(profile, model, done))
        positions = [index for index in range(len(corpus)) if index not in found]
        fresh = dict(zip(positions, run.embeddings, strict=True))
    embedded = [
        fresh[index] if index in fresh else Embedding(item.id, item.text, found[index])
        for index, item in enumerate(corpus)
    ]
    dimensions = {len(item.vector) for item in embedded} | {asked.dimensions}
    if len(dimensions) > 1:
        raise LlmcliError(
            f"cached vectors and the query differ in size ({sorted(dimensions)}): the cache"
            f" {cache.path} holds another model's vectors under {model!r}; remove it"
        )
    tokens = [t for t in (asked.tokens, run.tokens if run else None) if t is not None]
    return SimilarResult(
        hits=tuple(rank(asked.embeddings[0].vector, embedded, top_k=top_k)),
        inputs=len(corpus) + 1,
        cached=len(found),
        dimensions=asked.dimensions,
        tokens=sum(tokens) if tokens else None,
        model=asked.model,
    )


# --- output formats ---------------------------------------------------------------------


def _check_finite(item: Embedding) -> None:
    if not all(math.isfinite(x) for x in item.vector):
        raise StreamError(f"the server's vector for input {item.id!r} holds NaN or infinity")


def ndjson_line(item: Embedding) -> str:
    """``{"id": .., "text": .., "embedding": [..]}``, safe for a terminal, no newline.

    Numbers are the shortest repr of each float32 value as a double, as llama-server
    writes them: exact whether read back as float32 or as float64.
    """
    _check_finite(item)
    return dumps_json({"id": item.id, "text": item.text, "embedding": item.vector.tolist()})


def json_document(embeddings: Iterable[Embedding]) -> str:
    """One JSON array of the ndjson records."""
    return _json_array(ndjson_line(item) for item in embeddings)


def _json_array(records: Iterable[str]) -> str:
    return "[" + ",\n".join(records) + "]"


def csv_lines(embeddings: Sequence[Embedding]) -> Iterator[str]:
    """A header ``id,dim0..dimN-1``, then a row per input; ids made inert for a terminal."""
    yield csv_header(len(embeddings[0].vector) if embeddings else 0)
    for item in embeddings:
        yield csv_row(item)


def csv_header(dimensions: int) -> str:
    """``id,dim0,..,dimN-1`` and a newline."""
    return _csv_line(["id", *(f"dim{n}" for n in range(dimensions))])


def csv_row(item: Embedding) -> str:
    """One input's row and a newline: its id, made inert, then its numbers."""
    _check_finite(item)
    return _csv_line([neutralize(str(item.id)), *map(repr, item.vector)])


def _csv_line(fields: Iterable[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    return buffer.getvalue()


def encode_npy(vectors: Sequence[array[float]]) -> bytes:
    """A ``.npy`` file (format 1.0) of a float32 matrix, one row per vector.

    Magic, version, a little-endian uint16 header length, then a Python-literal header
    padded with spaces to end in LF at a multiple of 64 bytes, then the data, row-major.
    """
    rows = len(vectors)
    dimensions = len(vectors[0]) if rows else 0
    if any(len(vector) != dimensions for vector in vectors):
        raise ValueError("every row of a matrix needs the same number of dimensions")
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dimensions}), }}"
    preamble = len(b"\x93NUMPY") + 2 + 2
    header += " " * (-(preamble + len(header) + 1) % 64) + "\n"
    out = bytearray(b"\x93NUMPY\x01\x00")
    out += struct.pack("<H", len(header))
    out += header.encode("latin-1")
    for vector in vectors:
        out += _to_le_bytes(vector)
    return bytes(out)


class EmbeddingWriter:
    """Finished vectors to an output in input order, fed by ``Embedder.embed(on_prefix=)``.

    ndjson and csv are written a line at a time as vectors arrive, so a run that stops,
    however it stops, leaves every line before the stop. json and npy are one document
    each: their vectors are kept and written whole by :meth:`finish`, which a stopped run
    calls too, so the document holds the finished prefix and is still a valid document
    (a shorter array, fewer rows). Until something finishes ``write`` is never called,
    so a run that finishes nothing writes nothing at all. ``count``: the vectors written,
    or, for json and npy, the ones :meth:`finish` writes.
    """

    def __init__(self, kind: OutputKind, write: Callable[[bytes], None]) -> None:
        self.kind = kind
        self.write = write
        self.count = 0
        self.dimensions: int | None = None
        self._records: list[str] = []  # json: each vector's record
        self._vectors: list[array[float]] = []  # npy
        self._finished = False

    def add(self, embeddings: Sequence[Embedding]) -> None:
        """Take the next vectors in input order; a bad one stops the output before it."""
        lines: list[str] = []
        taken = 0
        try:
            for item in embeddings:
                self._check_size(item)
                if self.kind == "npy":
                    self._vectors.append(item.vector)
                elif self.kind == "json":
                    self._records.append(ndjson_line(item))
                elif self.kind == "csv":
                    if self.count == 0 and not lines:
                        lines.append(csv_header(len(item.vector)))
                    lines.append(csv_row(item))
                else:
                    lines.append(ndjson_line(item) + "\n")
                taken += 1
        finally:
            # What was taken before a bad vector is written, then the error goes on.
            if lines:
                self.write("".join(lines).encode("utf-8"))
            self.count += taken

    def finish(self) -> None:
        """Write the json or npy document of what was taken (once); nothing else to do."""
        if self._finished or not self.count:
            return
        self._finished = True
        if self.kind == "json":
            self.write((_json_array(self._records) + "\n").encode("utf-8"))
        elif self.kind == "npy":
            self.write(encode_npy(self._vectors))

    def _check_size(self, item: Embedding) -> None:
        if self.dimensions is None:
            self.dimensions = len(item.vector)
        elif len(item.vector) != self.dimensions:
            raise StreamError(
                "the server gave vectors of different sizes:"
                f" {sorted({self.dimensions, len(item.vector)})}"
            )


# --- the cache --------------------------------------------------------------------------

_CACHE_SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS embeddings (
        profile TEXT NOT NULL,
        model TEXT NOT NULL,
        text_sha256 BLOB NOT NULL,
        truncated INTEGER NOT NULL,
        dimensions INTEGER NOT NULL,
        vector BLOB NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (profile, model, text_sha256)
    ) WITHOUT ROWID
"""


def default_cache_path(env: Mapping[str, str] | None = None) -> Path:
    """``embeddings.db`` in the data directory, beside the history database."""
    from llmcli.config.paths import data_dir

    return data_dir(os.environ if env is None else env) / CACHE_FILENAME


class EmbeddingCache(PrivateDatabase):
    """Vectors already computed, keyed by profile, model and the SHA-256 of the text.

    Owner-only like the history (directory 0700, file 0600). Texts are not stored, only
    their hashes. A vector of a cut (``--truncate``) input is served only to runs that
    cut too. Use from one thread, as a context manager.
    """

    what = "embeddings cache"

    @staticmethod
    def describe_error(path: Path, error: sqlite3.Error) -> LlmcliError:
        return _cache_error(path, error)

    @classmethod
    def open(cls, path: Path | None = None) -> EmbeddingCache:
        path = default_cache_path() if path is None else path
        connection = cls.connect(path, timeout=10.0)
        cache = cls(connection, path)
        try:
            with cache._guard():
                connection.execute("PRAGMA journal_mode = WAL")
                (version,) = connection.execute("PRAGMA user_version").fetchone()
                if version > CACHE_SCHEMA_VERSION:
                    raise LlmcliError(
                        f"embeddings cache {path} is from a newer llmcli: upgrade, or remove it"
                    )
                if version < CACHE_SCHEMA_VERSION:
                    with cache._transaction() as db:
                        db.execute(_CACHE_SCHEMA)
                        db.execute(f"PRAGMA user_version = {CACHE_SCHEMA_VERSION}")
        except BaseException:
            connection.close()
            raise
        return cache

    def lookup(
        self, profile: str, model: str, texts: Sequence[str], *, truncated: bool = False
    ) -> dict[int, array[float]]:
        """The cached vectors of ``texts``, by position; cut vectors only with ``truncated``."""
        wanted: dict[bytes, list[int]] = {}
        for index, text in enumerate(texts):
            wanted.setdefault(_text_key(text), []).append(index)
        keys = list(wanted)
        found: dict[int, array[float]] = {}
        with self._guard():
            for start in range(0, len(keys), _LOOKUP_CHUNK):
                chunk = keys[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT text_sha256, dimensions, vector FROM embeddings"
                    f" WHERE profile = ? AND model = ? AND truncated <= ?"
                    f" AND text_sha256 IN ({marks})",
                    (profile, model, int(truncated), *chunk),
                )
                for key, dimensions, blob in rows:
                    if len(blob) != 4 * dimensions:
                        continue  # a damaged row is a miss, and is written again
                    vector = _from_le_bytes(blob)
                    for index in wanted[key]:
                        found[index] = vector
        return found

    def store(self, profile: str, model: str, embeddings: Iterable[Embedding]) -> None:
        """Remember vectors (one transaction); a text seen again replaces its old vector."""
        now = time.time()
        rows = [
            (
                profile,
                model,
                _text_key(item.text),
                int(item.truncated),
                len(item.vector),
                _to_le_bytes(item.vector),
                now,
            )
            for item in embeddings
        ]
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings (profile, model, text_sha256, truncated,"
                " dimensions, vector, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def count(self) -> int:
        with self._guard():
            (total,) = self._db.execute("SELECT count(*) FROM embeddings").fetchone()
        return int(total)


def _text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _cache_error(path: Path, error: sqlite3.Error) -> LlmcliError:
    if isinstance(error, sqlite3.OperationalError) and (
        "locked" in str(error) or "busy" in str(error)
    ):
        return LlmcliError(
            f"embeddings cache {path}: {error}: another llmcli is writing it; try again"
        )
    return LlmcliError(
        f"embeddings cache {path}: {error}; it is only a cache: remove it and llmcli builds it again"
    )
