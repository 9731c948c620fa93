"""The one async core that talks to backends: requests, retries, errors, streamed events.

httpx only; never prints. Every command (complete, chat, bench, models, health) goes
through ``Client``; answers come out as typed events from ``llmcli.wire.events``.

Failures before the first byte of an answer are retried (connect errors, 429 within the
``retry-after`` cap, 502/503/504 while llama-server loads); after it, nothing is retried,
because events already given to the caller cannot be taken back. Whatever arrived before a
failure has been yielded by the time the error is raised.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import random
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from llmcli import __version__, errors
from llmcli.config.profiles import Profile, dropped_model_reason
from llmcli.errors import cap_text
from llmcli.net.settings import Proxy, is_loopback, proxy_for, tls_context
from llmcli.wire.chunks import ChunkParser, error_details
from llmcli.wire.events import Answer, Event
from llmcli.wire.sse import SSEDecoder
from llmcli.wire.urls import health_url, server_root

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
MIN_SECRET_CHARS = 8
# Retry notices go to this logger; the command boundary shows them as one line each.
log = logging.getLogger("llmcli.wire.client")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try before the first byte of an answer."""

    attempts: int = 4
    backoff: float = 0.5  # first delay; doubles each time, with jitter
    max_backoff: float = 8.0
    max_retry_after: float = 30.0  # longer waits asked by the server are reported, not slept


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: Sequence[Mapping[str, Any]]
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: Sequence[str] = ()
    tools: Sequence[Mapping[str, Any]] = ()
    tool_choice: str | Mapping[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    owned_by: str | None = None
    meta: Mapping[str, Any] | None = None
    free: bool | None = None  # zen only: usable without a key


@dataclass(frozen=True, slots=True)
class Health:
    reachable: bool
    ready: bool
    detail: str
    latency_ms: float


Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class Arrival:
    """When the bytes behind the events being yielded arrived, read while they are yielded.

    A transport that stamps what it reads (``llmcli.net.streamhttp``, with this same ``clock``)
    gives the moment the bytes came off the socket; any other transport gives the moment
    the client got them. ``at`` is ``None`` until the first bytes of the answer.
    ``sent_at`` is when such a transport handed the answered request to its socket (after
    any connect, and after the client built it); ``None`` from any other transport.
    """

    clock: Callable[[], float] = time.perf_counter
    at: float | None = None
    read_lag: float | None = None  # the transport's longest wait to read (StampedStream)
    sent_at: float | None = None


class Client:
    """An async client for one profile's backend. Use as ``async with Client(profile)``."""

    def __init__(
        self,
        profile: Profile,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.profile = profile
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        headers = {
            "user-agent": f"llmcli/{__version__}",
            "accept": "*/*",
            # Decoded as it streams (_iter_bytes); a compressing proxy or CDN may use it.
            "accept-encoding": "gzip, deflate",
            **dict(profile.headers),
        }
        if profile.api_key:
            headers["authorization"] = f"Bearer {profile.api_key}"
        # A server may quote the key it refused; it must not reach the screen or the
        # history. Short literal keys ("public", "no-key") are no secret, and replacing
        # them would garble ordinary words.
        key = profile.api_key or ""
        self._secret = key if len(key) >= MIN_SECRET_CHARS else None
        self._headers = httpx.Headers(headers)
        self._base = httpx.URL(profile.base_url + "/")
        self._urls: dict[str, httpx.URL] = {}
        self._extensions = {
            "timeout": httpx.Timeout(
                connect=profile.connect_timeout,
                read=profile.read_timeout,
                write=profile.read_timeout,
                pool=None,
            ).as_dict()
        }
        env = os.environ if env is None else env
        self.proxy: Proxy | None = proxy_for(profile.base_url, env)
        # Requests go straight to the transport: httpx.AsyncClient.send costs ~135 µs a
        # request here, half of it copying each response into urllib's cookie jar, and
        # build_request ~100 µs more; an API client needs neither cookies, redirects nor
        # auth flows, and a benchmark sends hundreds of requests in one burst. The
        # environment's proxy and CA settings are read by llmcli.net.settings instead.
        self._transport = transport or default_transport(profile, self.proxy, env)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    @property
    def root_url(self) -> str:
        """The server root: llama-server keeps /health and /props beside /v1."""
        return server_root(self.profile.base_url)

    # -- models and health -------------------------------------------------------------

    async def list_models(self) -> list[ModelInfo]:
        response = await self._request("GET", "models")
        payload = _json_body(response)
        return parse_models(payload, zen=self.profile.dialect == "zen")

    async def health(self) -> Health:
        """Is the server there, and ready? llama-server has /health; others get /models."""
        started = time.perf_counter()
        try:
            response = await self._probe(health_url(self.profile.base_url))
        except httpx.TransportError as error:
            raise _transport_error(error, self.profile, proxy=self.proxy) from None
        if response.status_code == 404:
            try:
                models = await self.list_models()
            except errors.StatusError as error:
                return Health(True, False, str(error), _ms_since(started))
            detail = f"{len(models)} model(s) served"
            return Health(True, True, detail, _ms_since(started))
        latency = _ms_since(started)
        if response.status_code == 200:
            return Health(True, True, "ok", latency)
        message, _ = error_details(_try_json(response.content))
        return Health(True, False, message or f"HTTP {response.status_code}", latency)

    async def detect_dialect(self) -> str:
        """The profile's dialect, or asked of the server: llama-server answers /props."""
        if self.profile.dialect:
            return self.profile.dialect
        try:
            response = await self._probe(self.root_url + "/props")
        except httpx.TransportError as error:
            raise _transport_error(error, self.profile, proxy=self.proxy) from None
        payload = _try_json(response.content)
        if (
            response.status_code == 200
            and isinstance(payload, Mapping)
            and ("default_generation_settings" in payload or "build_info" in payload)
        ):
            return "llamacpp"
        return "openai"

    # -- answers ---------------------------------------------------------------------------

    def chat_payload(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": request.model or self.profile.model,
            "messages": [dict(message) for message in request.messages],
            "stream": stream,
        }
        if payload["model"] is None:
            # llama-server serves whatever it loaded and ignores the name.
            payload.pop("model")
        # Profile params are defaults: the request's own fields (the user's flags) win.
        payload.update(self.profile.request_params())
        _set_optional(payload, request)
        if request.tools:
            payload["tools"] = [dict(tool) for tool in request.tools]
            if request.tool_choice is not None:
                payload["tool_choice"] = request.tool_choice
            if request.parallel_tool_calls is not None:
                payload["parallel_tool_calls"] = request.parallel_tool_calls
        if stream:
            payload["stream_options"] = {"include_usage": True}
        payload.update(request.extra)
        return payload

    async def stream_chat(
        self, request: ChatRequest, *, arrival: Arrival | None = None
    ) -> AsyncIterator[Event]:
        """Stream one chat answer as events; raises after yielding all that arrived.

        ``arrival``, if given, tells when the bytes of each yielded event arrived.
        """
        payload = self.chat_payload(request, stream=True)
        async for event in self._stream("chat/completions", payload, arrival=arrival):
            yield event

    async def complete_chat(self, request: ChatRequest) -> list[Event]:
        """One chat answer, not streamed; the same events a stream would give."""
        payload = self.chat_payload(request, stream=False)
        return ChunkParser().parse_body(await self.post_json("chat/completions", payload))

    async def get_json(self, path: str) -> Any:
        """GET a JSON document: a path relative to base_url, or an absolute URL."""
        response = await self._request("GET", path)
        return _json_body(response)

    async def post_json(self, path: str, payload: Mapping[str, Any]) -> Any:
        """POST a JSON body (relative to base_url), with retries; the decoded JSON answer."""
        response = await self._request("POST", path, json=payload)
        return _json_body(response)

    async def stream_text(
        self, prompt: str, request: ChatRequest, *, stream: bool = True
    ) -> AsyncIterator[Event]:
        """A plain text completion through /completions (llama-server, OpenAI)."""
        if self.profile.dialect == "zen":
            raise errors.UsageError(
                "zen has no /completions endpoint: drop --text to use chat, "
                "or pick a llama.cpp profile (-p local)"
            )
        payload = self.chat_payload(request, stream=stream)
        del payload["messages"]
        payload["prompt"] = prompt
        if stream:
            async for event in self._stream("completions", payload, split_think=False):
                yield event
        else:
            response = await self._request("POST", "completions", json=payload)
            for event in ChunkParser(split_think=False).parse_body(_json_body(response)):
                yield event

    async def _stream(
        self,
        path: str,
        payload: Mapping[str, Any],
        *,
        split_think: bool = True,
        arrival: Arrival | None = None,
    ) -> AsyncIterator[Event]:
        try:
            async for event in self._stream_events(path, payload, split_think, arrival):
                yield event
        except errors.BackendError as error:
            raise self._scrubbed(error) from None

    def _scrubbed(self, error: errors.BackendError) -> errors.BackendError:
        """``error`` with the profile's key cut out of what the server said."""
        secret = self._secret
        if secret is not None:
            error.message = error.message.replace(secret, "[key]")
            if isinstance(error, errors.StatusError):
                error.body = error.body.replace(secret, "[key]")
        return error

    async def _stream_events(
        self,
        path: str,
        payload: Mapping[str, Any],
        split_think: bool,
        arrival: Arrival | None,
    ) -> AsyncIterator[Event]:
        response = await self._send("POST", path, json=payload, stream=True)
        await _refuse_what_is_not_a_stream(response, self.profile)
        parser = ChunkParser(split_think=split_think)
        decoder = SSEDecoder()
        done = False
        stamps = response.extensions.get("llmcli.stamps")
        if arrival is not None and stamps is not None:
            arrival.sent_at = stamps.sent_at
        try:
            async for raw in _iter_bytes(response, self.profile):
                if arrival is not None:
                    stamp = stamps.at if stamps is not None else None
                    arrival.at = stamp if stamp is not None else arrival.clock()
                    if stamps is not None:
                        arrival.read_lag = stamps.read_lag
                for sse in decoder.feed(raw):
                    for event in _decode_frame(sse.data, parser, done):
                        yield event
                    done = done or sse.data.strip() == "[DONE]"
            for sse in decoder.close():
                for event in _decode_frame(sse.data, parser, done):
                    yield event
                done = done or sse.data.strip() == "[DONE]"
        except errors.BackendError:
            if not done:
                for event in parser.finish():
                    yield event
                raise
            # After [DONE] the answer is whole; a late fault (zen's trailing frame cut off,
            # a server that never closes) loses nothing.
        finally:
            await response.aclose()
        for event in parser.finish():
            yield event
        if not parser.finished and not done:
            raise errors.StreamError(
                "the stream ended before the answer was complete (no finish reason, no [DONE]);"
                " the answer above is cut short"
            )

    # -- transport, retries, errors -------------------------------------------------------

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._send(method, path, stream=False, **kwargs)

    async def _send(self, method: str, path: str, *, stream: bool, **kwargs: Any) -> httpx.Response:
        """Send with retries; return a response whose status is a success."""
        try:
            return await self._send_and_retry(method, path, stream=stream, **kwargs)
        except errors.BackendError as error:
            raise self._scrubbed(error) from None

    async def _send_and_retry(
        self, method: str, path: str, *, stream: bool, **kwargs: Any
    ) -> httpx.Response:
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.retry.attempts
            try:
                response = await self._exchange(method, path, stream=stream, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                failure = _transport_error(error, self.profile, proxy=self.proxy)
                if last or not _worth_retrying(error, self._base.host):
                    raise failure from None
                await self._wait_to_retry(attempt, self._backoff(attempt), str(failure))
                continue
            except httpx.RemoteProtocolError as error:
                if not _is_stale(error):
                    # A malformed answer (both Transfer-Encoding and Content-Length, a bad
                    # status line): the server answered, badly; sending again would repeat
                    # a POST for the same verdict.
                    raise _transport_error(error, self.profile, proxy=self.proxy) from None
                # A pooled keep-alive connection the server had already closed: nothing was
                # answered, so sending again on a fresh connection is safe.
                if last:
                    raise errors.ConnectError(
                        f"connection to {self.profile.base_url} failed: {_reason(error)}",
                        stale=True,
                    ) from None
                continue
            except httpx.TransportError as error:
                raise _transport_error(error, self.profile, proxy=self.proxy) from None
            if response.status_code < 300:
                return response
            if response.status_code < 400:
                await response.aclose()
                raise _redirect_error(response, self.profile)
            try:
                body = await response.aread()
            except httpx.TransportError as error:
                raise _transport_error(error, self.profile, proxy=self.proxy) from None
            finally:
                await response.aclose()
            sent = kwargs.get("json")
            unnamed = isinstance(sent, Mapping) and sent.get("model") is None
            status_error = status_error_from(
                response.status_code,
                body,
                response.headers,
                key_env=self.profile.api_key_env,
                zen=self.profile.dialect == "zen",
                model_dropped=dropped_model_reason(self.profile) if unnamed else None,
            )
            if response.status_code not in RETRYABLE_STATUS or last:
                raise status_error
            delay = self._backoff(attempt)
            if status_error.retry_after is not None:
                if status_error.retry_after > self.retry.max_retry_after:
                    raise status_error
                delay = max(delay, status_error.retry_after)
            await self._wait_to_retry(attempt, delay, str(status_error))

    async def _wait_to_retry(self, attempt: int, delay: float, why: str) -> None:
        """Say why and when the next try goes (a silent pause looks like a hang), then wait."""
        log.warning(
            "%s; trying again in %.1f s (%d of %d)", why, delay, attempt + 1, self.retry.attempts
        )
        await self._sleep(delay)

    async def _probe(self, url: str) -> httpx.Response:
        """GET ``url`` whatever its status (health, props): no retries but the one a closed
        keep-alive connection needs (llama-server closes it after every streamed answer,
        so a chat's next probe may meet one that was closing)."""
        try:
            return await self._exchange("GET", url, stream=False)
        except httpx.RemoteProtocolError as error:
            if not _is_stale(error):
                raise
            return await self._exchange("GET", url, stream=False)

    async def _exchange(
        self, method: str, path: str, *, stream: bool, json: Any = None
    ) -> httpx.Response:
        """One request, one response: ``path`` relative to base_url, or an absolute URL.

        Not streamed: the body is read before returning (and an error status's body too).
        """
        url = self._urls.get(path)
        if url is None:
            url = self._base.join(path)
            if len(self._urls) < 64:  # the few fixed paths; slot or model URLs vary
                self._urls[path] = url
        request = httpx.Request(
            method, url, headers=self._headers, json=json, extensions=self._extensions
        )
        response = await self._transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    def _backoff(self, attempt: int) -> float:
        delay = min(self.retry.max_backoff, self.retry.backoff * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.8, 1.2)


def default_transport(
    profile: Profile, proxy: Proxy | None, env: Mapping[str, str]
) -> httpx.AsyncBaseTransport:
    """llmcli's own HTTP/1.1 transport (``net.streamhttp``), or httpx's through a proxy.

    Ours speaks what OpenAI-compatible servers need (TLS, keep-alive, chunked and
    close-delimited bodies, refusing ambiguous framing as h11 does: tests/test_streamhttp_
    framing.py) and loads neither httpcore nor anyio, about 40 ms of a piped ``complete``'s
    start-up here (benchmarks/README.md); it costs a benchmark's streams a third of the
    CPU a frame. It has no proxy support, so a proxied server gets httpx's transport.
    """
    if proxy is not None:
        return httpx.AsyncHTTPTransport(
            verify=client_tls(profile, proxy, env),
            proxy=httpx.Proxy(proxy.url),
            # No ceiling on connections: a benchmark with hundreds of concurrent streams
            # must never queue behind httpx's default pool limit of 100.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
            trust_env=False,
        )
    from llmcli.net.streamhttp import StreamTransport

    return StreamTransport(
        connect_timeout=profile.connect_timeout,
        read_timeout=profile.read_timeout,
        ssl_context=client_tls(profile, None, env),
    )


def client_tls(profile: Profile, proxy: Proxy | None, env: Mapping[str, str]) -> ssl.SSLContext:
    """The TLS context for a profile's server (and proxy), from ``llmcli.net.settings``.

    Loading the trusted roots costs tens of milliseconds, so a plain-HTTP server reached
    without a TLS proxy gets an empty context: it verifies, but never needs to.
    """
    if profile.base_url.startswith("https:") or (proxy and proxy.url.startswith("https:")):
        return tls_context(profile.ca_file, env)
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _decode_frame(data: str, parser: ChunkParser, done: bool) -> list[Event]:
    text = data.strip()
    if not text or text == "[DONE]":
        return []
    try:
        chunk = _loads_chunk(text)
    except json.JSONDecodeError:
        if done:
            return []  # a garbled trailer after [DONE] cannot hurt a whole answer
        raise errors.StreamError(f"malformed data from server (not JSON): {text[:80]!r}") from None
    return parser.parse(chunk)


def _loads_chunk(text: str) -> Any:
    """A streamed chunk's JSON: orjson, and the json module for what orjson refuses.

    orjson refuses some of what ``json`` takes (NaN, Infinity, lone surrogates); those are
    decided by ``json``, as before. One difference stays: orjson reads an integer past 64
    bits as a float, and no field of a chunk is ever that large.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


async def _iter_bytes(response: httpx.Response, profile: Profile) -> AsyncIterator[bytes]:
    """The body as it arrives, decompressed as it streams when it is gzip or deflate.

    The raw bytes are read directly when nothing encoded them: the bench reads every
    frame through here, and the decoding layer costs it CPU for nothing.
    """
    encoded = response.headers.get("content-encoding", "identity").strip().lower()
    pieces = response.aiter_raw() if encoded in ("", "identity") else response.aiter_bytes()
    try:
        async for raw in pieces:
            yield raw
    except httpx.DecodingError as error:
        raise errors.StreamError(
            f"the answer from {profile.base_url} could not be decompressed"
            f" ({encoded}): {_reason(error)}"
        ) from None
    except httpx.TransportError as error:
        raise _transport_error(error, profile, mid_stream=True) from None


def _transport_error(
    error: httpx.TransportError,
    profile: Profile,
    *,
    mid_stream: bool = False,
    proxy: Proxy | None = None,
) -> errors.BackendError:
    url = profile.base_url
    if isinstance(error, httpx.ConnectTimeout):
        via = f" through the proxy {proxy.shown} (from {proxy.source})" if proxy else ""
        # A plain-HTTP server that waits for a request line never answers a TLS hello.
        plain = "; use http:// for a plain-HTTP server" if url.startswith("https:") else ""
        return errors.TimeoutError(
            f"could not connect to {url}{via} within {profile.connect_timeout:g} s"
            f" (is the server up{plain}? raise timeout.connect in the profile)"
        )
    if isinstance(error, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        where = "mid-answer" if mid_stream else "before answering"
        return errors.TimeoutError(
            f"{url} stalled {where}: nothing received for {profile.read_timeout:g} s"
            " (raise timeout.read in the profile for slow models)"
        )
    tls = _tls_failure(error, httpx.URL(url).host)
    if tls is not None:
        return errors.ConnectError(tls)
    if isinstance(error, httpx.ProxyError) and proxy is not None:
        return errors.ConnectError(
            f"the proxy {proxy.shown} (from {proxy.source}) would not connect to {url}:"
            f" {_reason(error)} (check the proxy's address and credentials, or add the host"
            " to NO_PROXY)"
        )
    if isinstance(error, httpx.ConnectError):
        if proxy is not None:
            return errors.ConnectError(
                f"cannot reach {url} through the proxy {proxy.shown} (from {proxy.source}):"
                f" {_connect_reason(error)} (check the proxy, or add the host to NO_PROXY)"
            )
        return errors.ConnectError(
            f"cannot reach {url}: {_connect_reason(error)}"
            " (is the server running? check base_url or BACKEND_URL)"
        )
    if mid_stream:
        return errors.StreamError(f"connection to {url} lost mid-answer: {_reason(error)}")
    return errors.ConnectError(f"connection to {url} failed: {_reason(error)}")


def _is_stale(error: httpx.RemoteProtocolError) -> bool:
    """A closed keep-alive connection that answered nothing (ours, or httpcore's words)."""
    from llmcli.net.streamhttp import StaleConnection

    return isinstance(error, StaleConnection) or (
        "Server disconnected without sending a response" in str(error)
    )


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what caused it, outermost first (httpx wraps httpcore wraps OSError)."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _tls_failure(error: BaseException, host: str) -> str | None:
    """A TLS failure said as one: which check failed and what the user can do."""
    for cause in _causes(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or "not trusted"
            if cause.verify_code == 62 or "hostname mismatch" in reason.lower():
                return (
                    f"TLS: the certificate {host} sent is not valid for {host!r} ({reason});"
                    " check the host name in base_url or BACKEND_URL"
                )
            return (
                f"TLS: the certificate of {host} is not trusted ({reason}); if the server or"
                " your network uses its own CA, set SSL_CERT_FILE or ca_file in the profile"
                " to that CA's PEM file"
            )
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or cause.strerror or str(cause)
            return (
                f"TLS handshake with {host} failed ({reason}); is it an https server?"
                " (base_url takes http:// for a plain-HTTP server)"
            )
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return (
            f"TLS: the certificate of {host} is not trusted ({text}); set SSL_CERT_FILE or"
            " ca_file in the profile to your CA's PEM file"
        )
    return None


def _errnos(error: BaseException) -> set[int]:
    return {cause.errno for cause in _causes(error) if isinstance(cause, OSError) and cause.errno}


def _connect_reason(error: httpx.TransportError) -> str:
    codes = _errnos(error)
    if errno.ECONNREFUSED in codes:
        return "connection refused (nothing is listening there)"
    if _unknown_host(error):
        return "the host name was not found (DNS)"
    return _reason(error)


def _unknown_host(error: BaseException) -> bool:
    """Was the host name unknown to DNS (not merely a lookup that failed this time)?"""
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror) and cause.errno in (
            socket.EAI_NONAME,
            getattr(socket, "EAI_NODATA", socket.EAI_NONAME),
        ):
            return True
    return "Name or service not known" in str(error)


def _worth_retrying(error: httpx.TransportError, host: str) -> bool:
    """Can another try succeed? Not for a bad certificate, an unknown host name, or a
    refused connection on this machine (nothing listens there; retrying only delays the
    message by seconds). A refused remote connection may be a server restarting."""
    if _tls_failure(error, host) is not None or _unknown_host(error):
        return False
    return not (errno.ECONNREFUSED in _errnos(error) and is_loopback(host))


def _reason(error: Exception) -> str:
    text = str(error).strip()
    return text or type(error).__name__


MAX_BODY_KEPT = 64 * 1024  # of an error response's body, kept on the StatusError


def status_error_from(
    status: int,
    body: bytes,
    headers: Mapping[str, str] | httpx.Headers,
    *,
    key_env: str | None = None,
    zen: bool = False,
    model_dropped: str | None = None,
) -> errors.StatusError:
    """A typed error from an HTTP error response of any shape: zen, OpenAI, HTML, empty.

    ``model_dropped``: why the request named no model (BACKEND_URL), for the hint when
    the server refuses it for want of one.
    """
    payload = _try_json(body)
    message, kind = error_details(payload)
    message = _summarise_body(body) if message is None else cap_text(" ".join(message.split()))
    kind = None if kind is None else cap_text(kind, 80)
    retry_after = parse_retry_after(headers.get("retry-after"))
    hint = _status_hint(
        status, retry_after, key_env, f"{message} {kind or ''}", zen=zen, dropped=model_dropped
    )
    text = (
        f"HTTP {status}: {message}" + (f" ({kind})" if kind else "") + (f"; {hint}" if hint else "")
    )
    return errors.StatusError(
        text,
        status=status,
        body=cap_text(body[: MAX_BODY_KEPT + 1].decode("utf-8", "replace"), MAX_BODY_KEPT),
        error_type=kind,
        retry_after=retry_after,
    )


def _redirect_error(response: httpx.Response, profile: Profile) -> errors.StatusError:
    """A 3xx: llmcli follows no redirects (a key must not follow one to another host)."""
    location = cap_text(response.headers.get("location", "").strip(), 200) or "nowhere"
    return errors.StatusError(
        f"HTTP {response.status_code}: {profile.base_url} redirects to {location}; llmcli"
        " does not follow redirects: if the server moved, set base_url (or BACKEND_URL) to"
        " its new address",
        status=response.status_code,
    )


async def _refuse_what_is_not_a_stream(response: httpx.Response, profile: Profile) -> None:
    """A 200 that is not an event stream: a captive portal's or proxy's login page, or an
    error in JSON from a server that does not stream errors. Say what came instead."""
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind in ("text/event-stream", "") or kind.endswith("+event-stream"):
        return
    try:
        body = b""
        async for piece in response.aiter_bytes():
            body += piece
            if len(body) > MAX_BODY_KEPT:
                break
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    payload = _try_json(body)
    message, error_type = error_details(payload)
    if message is not None:
        raise errors.StreamError(
            f"{profile.base_url} answered 200 with an error instead of a stream:"
            f" {cap_text(' '.join(message.split()))}" + (f" ({error_type})" if error_type else "")
        )
    if isinstance(payload, Mapping) and "choices" in payload:
        return  # a whole answer in JSON: the chunk parser reads it like a last chunk
    raise errors.StreamError(
        f"{profile.base_url} answered with {kind}, not an event stream: {_summarise_body(body)}"
        " (a proxy or captive portal's page? check base_url, or log in to the network)"
    )


def _status_hint(
    status: int,
    retry_after: float | None,
    key_env: str | None,
    said: str,
    *,
    zen: bool,
    dropped: str | None = None,
) -> str:
    if dropped is not None and status in (400, 401, 404) and "model" in said.lower():
        return f"no model was sent ({dropped}): name one with -m; llmcli models lists them"
    if status == 401 and "model" in said.lower():
        # zen answers 401 for a model it does not serve, too.
        return "check the model name: llmcli models lists them"
    if status == 401:
        where = f"set {key_env}" if key_env else "set api_key_env in the profile"
        return f"check the key: {where}"
    if status == 429:
        if retry_after is None:
            return "rate limited; zen's free tier resets at 00:00 UTC" if zen else "rate limited"
        at = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + retry_after))
        return f"rate limited; retry after {retry_after:g} s ({at})"
    if status == 503:
        return "the server is busy or still loading its model; try again shortly"
    return ""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``retry-after`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime  # rare: only a date-valued retry-after

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _summarise_body(body: bytes) -> str:
    text = body[:MAX_BODY_KEPT].decode("utf-8", "replace").strip()
    if not text:
        return "empty response"
    if text.startswith("<"):
        import re

        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1).strip() if title else re.sub(r"<[^>]+>", " ", text)
        return "HTML page: " + " ".join(text.split())[:120]
    return " ".join(text.split())[:200]


def _try_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _json_body(response: httpx.Response) -> Any:
    payload = _try_json(response.content)
    if payload is None:
        raise errors.StreamError(
            f"the server's answer is not JSON: {_summarise_body(response.content)}"
        )
    if isinstance(payload, Mapping) and "error" in payload and not _has_answer(payload):
        # Some servers answer 200 and put the failure in the body.
        message, kind = error_details(payload)
        text = cap_text(" ".join((message or json.dumps(payload["error"])[:200]).split()))
        raise errors.StreamError(
            f"the server answered 200 with an error: {text}" + (f" ({kind})" if kind else "")
        )
    return payload


def _has_answer(payload: Mapping[str, Any]) -> bool:
    return any(key in payload for key in ("choices", "data", "models", "content", "embedding"))


def parse_models(payload: Any, *, zen: bool = False) -> list[ModelInfo]:
    """Model ids from ``data``, llama.cpp's ``models``, or a bare list (older builds)."""
    if isinstance(payload, Mapping):
        entries = payload.get("data")
        if not isinstance(entries, list):
            entries = payload.get("models")
    else:
        entries = payload
    if not isinstance(entries, list):
        raise errors.StreamError("the server's model list has no data, models or list")
    models: list[ModelInfo] = []
    seen: set[str] = set()
    for entry in entries:
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, Mapping):
            continue
        model_id = entry.get("id") or entry.get("model") or entry.get("name")
        if not isinstance(model_id, str) or model_id in seen:
            continue
        seen.add(model_id)
        meta = entry.get("meta")
        owned_by = entry.get("owned_by")
        models.append(
            ModelInfo(
                id=model_id,
                owned_by=owned_by if isinstance(owned_by, str) else None,
                meta=meta if isinstance(meta, Mapping) else None,
                free=is_free_zen_model(model_id) if zen else None,
            )
        )
    return models


def is_free_zen_model(model_id: str) -> bool:
    return model_id == "big-pickle" or model_id.endswith("-free")


def _set_optional(payload: dict[str, Any], request: ChatRequest) -> None:
    for key in ("temperature", "top_p", "max_tokens", "seed"):
        value = getattr(request, key)
        if value is not None:
            payload[key] = value
    if request.stop:
        payload["stop"] = list(request.stop)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


async def collect(events: AsyncIterator[Event], answer: Answer) -> Answer:
    """Fold a stream into ``answer`` (kept by the caller, so a failure loses nothing)."""
    async for event in events:
        answer.apply(event)
    return answer
