"""The llama.cpp ``llama-server`` dialect, for tests and benchmarks that need its shape.

Routes: ``/health`` ``/v1/health``, ``/v1/models`` ``/models`` (both ``data`` with ``meta``
and ``models``), ``/props``, ``/v1/chat/completions``, ``/v1/completions`` and
``/v1/embeddings`` (also without ``/v1``). Errors:
``{"error":{"code":N,"message":..,"type":..}}``; an error after a stream began arrives as
``data: {"error":{..}}`` and the stream ends without ``[DONE]``.

A chat stream is: the role chunk ``{"role":"assistant","content":null}``, reasoning
(``reasoning_content``), content or tool-call deltas, the finish chunk, a ``choices: []``
usage chunk only with ``stream_options.include_usage``, then ``data: [DONE]``. ``timings``
rides on the last chunk before ``[DONE]`` (on every chunk with ``timings_per_token``).
Completions stream ``choices[0].text`` chunks; their final chunk carries finish_reason,
``usage`` and ``timings``.

The bytes and bodies themselves live in :mod:`llmcli.mock.llamacpp_wire`.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from typing import Any

from llmcli.mock.backend import LOADING_BODY, Backend
from llmcli.mock.config import STATUS_FAULTS, FaultName
from llmcli.mock.generation import BadRequest, Generation, plan_generation
from llmcli.mock.http import Connection, Request
from llmcli.mock.llamacpp_wire import (
    EMBEDDING_DIMENSION,
    FINGERPRINT,
    LlamaChatFormat,
    LlamaCompletionFormat,
    embedding,
    generation_error,
    llama_error,
    llama_timings,
    llama_usage,
)
from llmcli.mock.record import RecordedRequest
from llmcli.mock.vocabulary import count_prompt_tokens, count_words

LIMIT_KEYS = ("max_completion_tokens", "max_tokens", "n_predict")
OPEN_PATHS = frozenset({"/health", "/v1/health", "/models", "/v1/models"})


class LlamaBackend(Backend):
    json_type = "application/json; charset=utf-8"
    extra_headers = (("server", "llama.cpp"), ("access-control-allow-origin", "*"))

    async def handle(self, request: Request, conn: Connection, record: RecordedRequest) -> None:
        config = self.config
        path, method = request.path, request.method
        if request.loop_time - self.started < config.loading_seconds:
            await self.send_json(conn, record, 503, LOADING_BODY)
            return
        keys = config.api_keys
        if keys is not None and path not in OPEN_PATHS and request.bearer_token() not in keys:
            error = llama_error(401, "Invalid API Key", "authentication_error")
            await self.send_json(conn, record, 401, error)
            return
        if path.startswith("/v1/"):
            path = path[3:]
        if method == "GET" and path == "/health":
            await self.send_json(conn, record, 200, {"status": "ok"})
        elif method == "GET" and path == "/models":
            await self.send_json(conn, record, 200, self.models_body())
        elif method == "GET" and path == "/props":
            await self.send_json(conn, record, 200, self.props_body())
        elif method == "POST" and path in ("/chat/completions", "/completions"):
            await self.generate(request, conn, record, chat=path == "/chat/completions")
        elif method == "POST" and path == "/embeddings":
            await self.embeddings(request, conn, record)
        else:
            error = llama_error(404, "File Not Found", "not_found_error")
            await self.send_json(conn, record, 404, error)

    def rate_limit_body(self) -> dict[str, Any]:
        return llama_error(429, "Rate limit exceeded", "rate_limit_error")

    def server_error_body(self) -> dict[str, Any]:
        return llama_error(500, "Internal Server Error", "server_error")

    def error_event_body(self) -> dict[str, Any]:
        return generation_error()

    def models_body(self) -> dict[str, Any]:
        created = int(time.time())
        n_ctx = self.config.n_ctx
        meta = {
            "vocab_type": 1,
            "n_vocab": 32000,
            "n_ctx_train": n_ctx,
            "n_ctx": n_ctx,
            "n_embd": EMBEDDING_DIMENSION,
            "n_params": 1_000_000,
            "size": 4_000_000,
        }
        return {
            "models": [
                {
                    "name": model,
                    "model": model,
                    "modified_at": "",
                    "size": "",
                    "digest": "",
                    "type": "model",
                    "description": "",
                    "tags": [""],
                    "capabilities": ["completion"],
                    "parameters": "",
                    "details": {"format": "gguf"},
                }
                for model in self.config.models
            ],
            "object": "list",
            "data": [
                {
                    "id": model,
                    "object": "model",
                    "created": created,
                    "owned_by": "llamacpp",
                    "meta": meta,
                }
                for model in self.config.models
            ],
        }

    def props_body(self) -> dict[str, Any]:
        model = self.config.models[0]
        return {
            "default_generation_settings": {
                "id": 0,
                "n_ctx": self.config.n_ctx,
                "is_processing": False,
                "params": {"n_predict": -1, "seed": self.config.seed, "temperature": 0.8},
            },
            "total_slots": 1,
            "model_alias": model,
            "model_path": f"/models/{model}.gguf",
            "modalities": {"vision": False, "audio": False},
            "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "build_info": FINGERPRINT,
        }

    async def _refuse(
        self, conn: Connection, record: RecordedRequest, message: str, **extra: Any
    ) -> None:
        kind = "exceed_context_size_error" if extra else "invalid_request_error"
        await self.send_json(conn, record, 400, llama_error(400, message, kind, **extra))

    async def _fault_first(
        self, conn: Connection, record: RecordedRequest
    ) -> tuple[bool, FaultName | None]:
        """Draw the fault; answer it here if it is a status. ``True``: the request is done."""
        fault = record.fault = self.draw_fault()
        if fault is not None and fault in STATUS_FAULTS:
            await self.send_status_fault(conn, record, fault)
            return True, fault
        return False, fault

    async def generate(
        self, request: Request, conn: Connection, record: RecordedRequest, *, chat: bool
    ) -> None:
        config = self.config
        body = record.body
        if not isinstance(body, dict):
            await self._refuse(conn, record, "the request body must be a JSON object")
            return
        number = self.next_sequence()
        try:
            if chat:
                messages = body.get("messages")
                if not isinstance(messages, list) or not messages:
                    raise BadRequest("'messages' is required and must be a non-empty array")
                prompt_tokens = count_prompt_tokens(messages)
            else:
                if "prompt" not in body:
                    raise BadRequest("'prompt' is required")
                prompt_tokens = count_words(body["prompt"])
            generation = plan_generation(
                body if chat else {k: v for k, v in body.items() if k != "tools"},
                prompt_tokens=prompt_tokens,
                cached_tokens=config.cached_tokens,
                reasoning_tokens=config.reasoning_tokens if chat else 0,
                default_tokens=config.default_max_tokens,
                tokens_per_chunk=config.tokens_per_chunk,
                limit_keys=LIMIT_KEYS,
                call_prefix=f"call_mock{number:06d}",
                tool_script=config.tool_script,
                answer_tool_results=config.answer_tool_results,
                rng=self.timing_rng,
            )
        except BadRequest as exc:
            await self._refuse(conn, record, exc.message)
            return
        if prompt_tokens > config.n_ctx:
            await self._refuse(
                conn,
                record,
                "the request exceeds the available context size, try increasing it",
                n_prompt_tokens=prompt_tokens,
                n_ctx=config.n_ctx,
            )
            return
        done, fault = await self._fault_first(conn, record)
        if done:
            return
        model = body.get("model")
        model = model if isinstance(model, str) and model else config.models[0]
        chunk_id = f"{'chatcmpl' if chat else 'cmpl'}-mock{number:08d}"
        created = int(time.time())
        pace = self.draw_pace(generation.slots)
        common: dict[str, Any] = {
            "chunk_id": chunk_id,
            "created": created,
            "model": model,
            "generation": generation,
            "ttft": pace.ttft,
            "itl": pace.itl,
            "per_token": body.get("timings_per_token") is True,
        }
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            fmt: LlamaChatFormat | LlamaCompletionFormat
            if chat:
                fmt = LlamaChatFormat(
                    reasoning_field=config.reasoning_field,
                    include_usage=include_usage,
                    **common,
                )
            else:
                fmt = LlamaCompletionFormat(**common)
            await self.stream(conn, request, record, fault, generation, fmt, pace)
            return
        answer = self.whole_answer(generation, chat=chat)
        answer.update(
            created=created,
            model=model,
            system_fingerprint=FINGERPRINT,
            object="chat.completion" if chat else "text_completion",
            usage=llama_usage(generation),
            id=chunk_id,
            timings=llama_timings(generation, pace.ttft, pace.itl),
        )
        await self.send_generated(conn, request, record, fault, generation.slots, answer, pace)

    def whole_answer(self, generation: Generation, *, chat: bool) -> dict[str, Any]:
        reason = generation.finish_reason
        if not chat:
            text = generation.content
            choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": reason}
            return {"choices": [choice]}
        message: dict[str, Any] = {"role": "assistant"}
        message["content"] = None if generation.tool_calls else generation.content
        if generation.reasoning_tokens:
            message[self.config.reasoning_field] = generation.reasoning
        if generation.tool_calls:
            message["tool_calls"] = [call.to_message() for call in generation.tool_calls]
        return {"choices": [{"finish_reason": reason, "index": 0, "message": message}]}

    async def embeddings(self, request: Request, conn: Connection, record: RecordedRequest) -> None:
        body = record.body
        if not isinstance(body, dict):
            await self._refuse(conn, record, "the request body must be a JSON object")
            return
        texts = _embedding_inputs(body.get("input", body.get("content")))
        if not texts:
            await self._refuse(conn, record, "'input' must be a string or a non-empty array")
            return
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            await self._refuse(conn, record, "encoding_format must be 'float' or 'base64'")
            return
        done, fault = await self._fault_first(conn, record)
        if done:
            return
        data = []
        for index, text in enumerate(texts):
            vector = embedding(text)
            value: list[float] | str = vector
            if encoding == "base64":
                packed = struct.pack(f"<{EMBEDDING_DIMENSION}f", *vector)
                value = base64.b64encode(packed).decode()
            data.append({"embedding": value, "index": index, "object": "embedding"})
        tokens = sum(count_words(text) for text in texts)
        model = body.get("model")
        answer = {
            "model": model if isinstance(model, str) and model else self.config.models[0],
            "object": "list",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "data": data,
        }
        await self.send_generated(conn, request, record, fault, 0, answer, self.draw_pace(0))


def _embedding_inputs(value: object) -> list[str]:
    """Texts to embed: a string, a list of strings, or token arrays (hashed as JSON)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return []
    if all(isinstance(item, int) for item in value):
        return [json.dumps(value)]
    texts = []
    for item in value:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, list):
            texts.append(json.dumps(item))
        else:
            return []
    return texts
