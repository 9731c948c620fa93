"""llama-server's wire shapes: error and usage bodies, ``timings``, chunk bytes, embeddings.

``timings`` describe the configured schedule, not a measurement: ``prompt_ms`` is ttft,
``predicted_ms`` is one itl per chunk, so ``predicted_per_second`` is
``tokens_per_chunk / itl`` (rates are 0 where a duration is 0). Embeddings are 64 floats
derived from a SHA-256 of the text, L2-normalised, exact float32 values, so
``encoding_format: "base64"`` decodes (little-endian float32) to the same numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from typing import Any

from llmcli.mock.generation import Generation
from llmcli.mock.stream import Frame

DONE_FRAME = b"data: [DONE]\n\n"
FINGERPRINT = "b0-mock"
EMBEDDING_DIMENSION = 64


def llama_error(code: int, message: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": kind, **extra}}


def llama_usage(generation: Generation) -> dict[str, Any]:
    return {
        "completion_tokens": generation.completion_tokens,
        "prompt_tokens": generation.prompt_tokens,
        "total_tokens": generation.prompt_tokens + generation.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": generation.cached_tokens},
    }


def _rate(count: int, ms: float) -> float:
    return count * 1000.0 / ms if ms > 0 else 0.0


def llama_timings(
    generation: Generation, ttft: float, itl: float, predicted_n: int | None = None
) -> dict[str, Any]:
    prompt_n = generation.prompt_tokens - generation.cached_tokens
    prompt_ms = ttft * 1000.0
    if predicted_n is None:
        predicted_n = generation.completion_tokens
    per_token_ms = itl * 1000.0 / generation.mean_chunk_tokens
    predicted_ms = predicted_n * per_token_ms
    return {
        "cache_n": generation.cached_tokens,
        "prompt_n": prompt_n,
        "prompt_ms": prompt_ms,
        "prompt_per_token_ms": prompt_ms / prompt_n if prompt_n else 0.0,
        "prompt_per_second": _rate(prompt_n, prompt_ms),
        "predicted_n": predicted_n,
        "predicted_ms": predicted_ms,
        "predicted_per_token_ms": per_token_ms if predicted_n else 0.0,
        "predicted_per_second": _rate(predicted_n, predicted_ms),
    }


def embedding(text: str) -> list[float]:
    """The deterministic unit vector of ``text``; every value is exact in float32."""
    seed = text.encode()
    digest = b"".join(hashlib.sha256(bytes([i]) + seed).digest() for i in range(8))
    raw = [value / 2**31 - 1.0 for value in struct.unpack(f"<{EMBEDDING_DIMENSION}I", digest)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    packed = struct.pack(f"<{EMBEDDING_DIMENSION}f", *(v / norm for v in raw))
    return list(struct.unpack(f"<{EMBEDDING_DIMENSION}f", packed))


def _dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class _LlamaFormat:
    """What chat and completion streams share: chunk metadata and the closing frames."""

    def __init__(
        self,
        *,
        chunk_id: str,
        created: int,
        model: str,
        generation: Generation,
        ttft: float,
        itl: float,
        per_token: bool,
        obj: str,
    ) -> None:
        self._generation = generation
        self._ttft = ttft
        self._itl = itl
        self._per_token = per_token
        self._meta: dict[str, Any] = {
            "created": created,
            "id": chunk_id,
            "model": model,
            "system_fingerprint": FINGERPRINT,
            "object": obj,
        }
        self._meta_bytes = _dump(self._meta)[1:-1]  # "created":..,"object":".."
        self._tail = b"]," + self._meta_bytes + b"}\n\n"

    def _token_tail(self, tokens_through: int) -> bytes:
        if not self._per_token:
            return self._tail
        timings = llama_timings(self._generation, self._ttft, self._itl, tokens_through)
        return b"]," + self._meta_bytes + b',"timings":' + _dump(timings) + b"}\n\n"

    def empty(self) -> bytes:
        return b'data: {"choices":[],' + self._meta_bytes + b"}\n\n"

    def error(self) -> bytes:
        return b"data: " + _dump(generation_error()) + b"\n\n"

    def _frames(self, chunks: list[tuple[str, dict[str, Any]]], done: bool) -> list[Frame]:
        if chunks:
            chunks[-1][1]["timings"] = llama_timings(self._generation, self._ttft, self._itl)
        frames = [(kind, b"data: " + _dump(chunk) + b"\n\n") for kind, chunk in chunks]
        if done:
            frames.append(("done", DONE_FRAME))
        return frames


class LlamaChatFormat(_LlamaFormat):
    def __init__(self, *, reasoning_field: str, include_usage: bool, **common: Any) -> None:
        super().__init__(obj="chat.completion.chunk", **common)
        self._include_usage = include_usage
        self._delta = b'data: {"choices":[{"finish_reason":null,"index":0,"delta":'
        self._content = self._delta + b'{"content":'
        self._reasoning = self._delta + b"{" + json.dumps(reasoning_field).encode() + b":"

    def opening(self) -> list[Frame]:
        return [("role", self._delta + b'{"role":"assistant","content":null}}' + self._tail)]

    def token(self, kind: str, payload: bytes, tokens_through: int) -> bytes:
        tail = self._token_tail(tokens_through)
        if kind == "content":
            return self._content + payload + b"}}" + tail
        if kind == "reasoning":
            return self._reasoning + payload + b"}}" + tail
        return self._delta + payload + b"}" + tail

    def closing(self, *, finish: bool, done: bool) -> list[Frame]:
        chunks: list[tuple[str, dict[str, Any]]] = []
        if finish:
            choice = {"finish_reason": self._generation.finish_reason, "index": 0, "delta": {}}
            chunks.append(("finish", {"choices": [choice], **self._meta}))
        if done and self._include_usage:
            usage = llama_usage(self._generation)
            chunks.append(("usage", {"choices": [], **self._meta, "usage": usage}))
        return self._frames(chunks, done)


class LlamaCompletionFormat(_LlamaFormat):
    def __init__(self, **common: Any) -> None:
        super().__init__(obj="text_completion", **common)
        self._text = b'data: {"choices":[{"text":'
        self._choice_end = b',"index":0,"logprobs":null,"finish_reason":null}'

    def opening(self) -> list[Frame]:
        return []

    def token(self, kind: str, payload: bytes, tokens_through: int) -> bytes:
        return self._text + payload + self._choice_end + self._token_tail(tokens_through)

    def closing(self, *, finish: bool, done: bool) -> list[Frame]:
        chunks: list[tuple[str, dict[str, Any]]] = []
        if finish:
            choice = {
                "text": "",
                "index": 0,
                "logprobs": None,
                "finish_reason": self._generation.finish_reason,
            }
            usage = llama_usage(self._generation)
            chunks.append(("finish", {"choices": [choice], **self._meta, "usage": usage}))
        return self._frames(chunks, done)


def generation_error() -> dict[str, Any]:
    return llama_error(500, "decode failed: could not find a KV slot for the batch", "server_error")
