"""The opencode zen dialect: routes, auth, error shapes and chunk bytes as zen sends them.

Routes (mounted under ``/v1`` like ``https://opencode.ai/zen/v1``): ``GET /v1/models`` and
``POST /v1/chat/completions``; anything else (``/v1/embeddings``, ``/v1/completions``) is
404 ``NotFoundError``. Errors use zen's own shape
``{"type":"error","error":{"type":..,"message":..}}``: 401 ``ModelError`` for an unknown
model, 401 ``AuthError`` for a missing key on a paid model or an unknown key, 429
``RateLimitError`` with ``retry-after``. A generation that breaks reports an upstream
OpenAI-style ``{"error":{"message":..,"type":"server_error",..}}``.

A stream is: the role chunk ``{"role":"assistant","content":""}``, reasoning deltas
(``reasoning_content`` or ``reasoning``), content or tool-call deltas, the finish chunk
(empty delta), the usage chunk with ``choices: []`` (always: zen forces
``stream_options.include_usage``), ``data: [DONE]``, and the cost frame
``{"choices":[],"cost":".."}``. Cached tokens are reported top-level
(``usage.cached_tokens``) for models whose id starts with ``claude`` and in
``usage.prompt_tokens_details.cached_tokens`` for all others.
"""

from __future__ import annotations

import json
import time
from typing import Any

from llmcli.mock.backend import Backend
from llmcli.mock.config import STATUS_FAULTS
from llmcli.mock.generation import BadRequest, Generation, plan_generation
from llmcli.mock.http import Connection, Request
from llmcli.mock.record import RecordedRequest
from llmcli.mock.stream import Frame
from llmcli.mock.vocabulary import count_prompt_tokens

DONE_FRAME = b"data: [DONE]\n\n"
LIMIT_KEYS = ("max_completion_tokens", "max_tokens")


def is_free(model: str) -> bool:
    return model == "big-pickle" or model.endswith("-free")


def zen_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def zen_usage(generation: Generation, model: str) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "total_tokens": generation.prompt_tokens + generation.completion_tokens,
    }
    if model.startswith("claude"):
        usage["cached_tokens"] = generation.cached_tokens
    else:
        usage["prompt_tokens_details"] = {"cached_tokens": generation.cached_tokens}
    usage["completion_tokens_details"] = {"reasoning_tokens": generation.reasoning_tokens}
    return usage


def zen_cost(generation: Generation, model: str) -> str:
    if is_free(model):
        return "0"
    dollars = (generation.prompt_tokens * 3 + generation.completion_tokens * 15) / 1e6
    return f"{dollars:.8f}"


class ZenChatFormat:
    """Chunk bytes of one zen chat stream; token frames are prefix + payload + suffix."""

    def __init__(
        self,
        *,
        chunk_id: str,
        created: int,
        model: str,
        generation: Generation,
        reasoning_field: str,
    ) -> None:
        self._generation = generation
        self._model = model
        common = b'{"id":%b,"object":"chat.completion.chunk","created":%d,"model":%b,' % (
            json.dumps(chunk_id).encode(),
            created,
            json.dumps(model).encode(),
        )
        self._common = common
        self._delta = b"data: " + common + b'"choices":[{"index":0,"delta":'
        self._suffix = b',"finish_reason":null}]}\n\n'
        self._content = self._delta + b'{"content":'
        self._reasoning = self._delta + b"{" + json.dumps(reasoning_field).encode() + b":"
        self._text_suffix = b"}" + self._suffix
        self._empty = b"data: " + common + b'"choices":[]}\n\n'

    def opening(self) -> list[Frame]:
        return [("role", self._delta + b'{"role":"assistant","content":""}' + self._suffix)]

    def token(self, kind: str, payload: bytes, tokens_through: int) -> bytes:
        if kind == "content":
            return self._content + payload + self._text_suffix
        if kind == "reasoning":
            return self._reasoning + payload + self._text_suffix
        return self._delta + payload + self._suffix

    def empty(self) -> bytes:
        return self._empty

    def closing(self, *, finish: bool, done: bool) -> list[Frame]:
        frames: list[Frame] = []
        if finish:
            reason = self._generation.finish_reason.encode()
            frames.append(("finish", self._delta + b'{},"finish_reason":"%b"}]}\n\n' % reason))
        if done:
            usage = _dump(zen_usage(self._generation, self._model))
            frames.append(
                ("usage", b"data: " + self._common + b'"choices":[],"usage":' + usage + b"}\n\n")
            )
            frames.append(("done", DONE_FRAME))
            cost = _dump({"choices": [], "cost": zen_cost(self._generation, self._model)})
            frames.append(("cost", b"data: " + cost + b"\n\n"))
        return frames

    def error(self) -> bytes:
        return b"data: " + _dump(upstream_error()) + b"\n\n"


def upstream_error() -> dict[str, Any]:
    return {
        "error": {
            "message": "Upstream provider error: the model is overloaded",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }


class ZenBackend(Backend):
    stream_headers = (("content-type", "text/event-stream"), ("cache-control", "no-cache"))

    async def handle(self, request: Request, conn: Connection, record: RecordedRequest) -> None:
        route = (request.method, request.path)
        if route == ("GET", "/v1/models"):
            await self.send_json(conn, record, 200, self.models_body())
        elif route == ("POST", "/v1/chat/completions"):
            await self.chat(request, conn, record)
        else:
            message = (
                f"{request.method} {request.path} not found: zen serves "
                "GET /v1/models and POST /v1/chat/completions"
            )
            await self.send_json(conn, record, 404, zen_error("NotFoundError", message))

    def models_body(self) -> dict[str, Any]:
        created = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": model, "object": "model", "created": created, "owned_by": "opencode"}
                for model in self.config.models
            ],
        }

    def rate_limit_body(self) -> dict[str, Any]:
        return zen_error("RateLimitError", "Rate limit exceeded. Please try again later.")

    def server_error_body(self) -> dict[str, Any]:
        return zen_error("Error", "Internal server error")

    def error_event_body(self) -> dict[str, Any]:
        return upstream_error()

    def auth_error(self, model: str, key: str | None) -> dict[str, Any] | None:
        if key is None or key in ("", "public"):
            if is_free(model):
                return None
            return zen_error("AuthError", "Missing API key.")
        keys = self.config.api_keys
        if keys is not None and key not in keys:
            return zen_error("AuthError", "Invalid API key.")
        return None

    async def chat(self, request: Request, conn: Connection, record: RecordedRequest) -> None:
        body = record.body
        if not isinstance(body, dict):
            error = zen_error("InvalidRequestError", "The request body must be a JSON object.")
            await self.send_json(conn, record, 400, error)
            return
        model = body.get("model")
        if not isinstance(model, str) or model not in self.config.models:
            await self.send_json(
                conn, record, 401, zen_error("ModelError", f"Model {model} not supported")
            )
            return
        denied = self.auth_error(model, request.bearer_token())
        if denied is not None:
            await self.send_json(conn, record, 401, denied)
            return
        messages = body.get("messages")
        config = self.config
        number = self.next_sequence()
        try:
            if not isinstance(messages, list) or not messages:
                raise BadRequest("'messages' must be a non-empty list")
            generation = plan_generation(
                body,
                prompt_tokens=count_prompt_tokens(messages),
                cached_tokens=config.cached_tokens,
                reasoning_tokens=config.reasoning_tokens,
                default_tokens=config.default_max_tokens,
                tokens_per_chunk=config.tokens_per_chunk,
                limit_keys=LIMIT_KEYS,
                call_prefix=f"call_mock{number:06d}",
                tool_script=config.tool_script,
                answer_tool_results=config.answer_tool_results,
                rng=self.timing_rng,
            )
        except BadRequest as exc:
            await self.send_json(conn, record, 400, zen_error("InvalidRequestError", exc.message))
            return
        fault = record.fault = self.draw_fault()
        if fault is not None and fault in STATUS_FAULTS:
            await self.send_status_fault(conn, record, fault)
            return
        chunk_id = f"chatcmpl-mock{number:08d}"
        created = int(time.time())
        pace = self.draw_pace(generation.slots)
        if body.get("stream") is True:
            fmt = ZenChatFormat(
                chunk_id=chunk_id,
                created=created,
                model=model,
                generation=generation,
                reasoning_field=config.reasoning_field,
            )
            await self.stream(conn, request, record, fault, generation, fmt, pace)
            return
        message: dict[str, Any] = {"role": "assistant"}
        message["content"] = None if generation.tool_calls else generation.content
        if generation.reasoning_tokens:
            message[config.reasoning_field] = generation.reasoning
        if generation.tool_calls:
            message["tool_calls"] = [call.to_message() for call in generation.tool_calls]
        completion = {
            "id": chunk_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": generation.finish_reason}
            ],
            "usage": zen_usage(generation, model),
        }
        await self.send_generated(conn, request, record, fault, generation.slots, completion, pace)


def _dump(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
