"""The Embedder: inputs to vectors through a server's ``POST /embeddings``, in batches.

At most ``concurrency`` batches are in flight at a time; the vectors come back in input
order, also as they finish (``on_prefix``: the longest finished run from the first input,
so a run that stops loses nothing that finished before the gap). It asks for
``encoding_format: "base64"`` (little-endian float32: about a quarter of the bytes of
decimal floats) and accepts floats instead; a server that answers the base64 request with 400 gets that batch again as
floats, once, and floats from then on.

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

A llama-server fault to know of (pinned in tests/embeddings/test_embeddings.py): with more than one
slot (``-np 2``) and a split KV cache (the default), an input decoded beside a shorter
one is mean-pooled without its first N tokens, N the shorter one's length, so its vector
depends on its batch mates. Servers started with ``--kv-unified`` or ``-np 1`` pool
correctly.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from llmcli.embeddings.inputs import Embedding, EmbeddingInput, InputId, describe_input
from llmcli.embeddings.vectors import from_le_bytes
from llmcli.errors import LlmcliError, StatusError, StreamError, UsageError

if TYPE_CHECKING:
    from llmcli.config.profiles import Profile
    from llmcli.wire.client import Client

Encoding = Literal["base64", "float"]

DEFAULT_BATCH_SIZE: Final = 32
DEFAULT_CONCURRENCY: Final = 4
DEFAULT_TOKEN_LIMIT: Final = 512  # llama-server's default n_ubatch
_TRUNCATE_ROUNDS: Final = 4

_TOO_LARGE: Final = re.compile(r"too large to process", re.IGNORECASE)
_BATCH_SIZE: Final = re.compile(r"current batch size:\s*(\d+)", re.IGNORECASE)

ZEN_REFUSAL: Final = (
    "zen has no /embeddings endpoint: use a llama.cpp profile (-p local) started with --embeddings"
)


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
        return from_le_bytes(raw)
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
