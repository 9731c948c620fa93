"""Nearest-neighbour search: cosine similarity in pure Python over a corpus, through the cache.

``find_similar`` embeds the query, takes the corpus's vectors from the cache where it can
(so a corpus already embedded costs one request, the query's) and ranks the corpus.
"""

from __future__ import annotations

import heapq
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from llmcli.embeddings.cache import EmbeddingCache
from llmcli.embeddings.embedder import Embedder
from llmcli.embeddings.inputs import Embedding, EmbeddingInput, InputId
from llmcli.errors import LlmcliError, UsageError


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
