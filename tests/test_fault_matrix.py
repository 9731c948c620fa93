"""The fault matrix (issue 12): every command against hostile servers and hostile input.

One table, ``CASES``, of :class:`FaultCase`: the command line, the server (or input) it
meets, the exit status it must end with, the one ``llmcli: error:`` line (a regex), what
must be on stdout (the part of the answer that arrived) and what the history must keep.
Each case runs ``llmcli`` as a real child process (``python -m llmcli``'s entry point,
with an address-space limit so memory cannot grow without bound), with its own data and
config directories, so stdin, exit statuses and signals are real.

``check_invariants`` holds for every case, whatever it tests:

- no traceback, no "Exception ignored" on stderr;
- no raw terminal control (C0 but LF and TAB, DEL, C1 such as the one-byte CSI, bidi
  overrides) on stdout, on stderr, or in what ``history show`` prints;
- exactly one ``llmcli: error:`` line when an error is expected, none otherwise;
- the keys (``ZEN_API_KEY``, ``BACKEND_API_KEY``, set to markers) never appear on stdout,
  stderr or in any file the run wrote (history database, results files);
- stderr stays small (a server's 5 MB error message is capped), memory stays bounded.

The servers: ``tests/rig/hostile.py`` (one for the module, a scenario per case chosen by
the URL's first path segment), llmcli's own mock server for its fault injection, and the
real llama-server (``llama_think``, ``llama_embed``) for a few cases. A case that fails
because of a bug in llmcli is marked ``xfail(strict=True, reason="BUG: ...")``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from rig import LlamaServer
from rig.hostile import (
    HostileServer,
    Pause,
    Reply,
    Script,
    answer,
    chunk,
    json_reply,
    sse_frame,
    sse_reply,
)
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.mockserver import Faults, MockConfig, MockServerThread
from llmcli.sanitize import neutralize

# -- what hostile servers send, and what must never come out --------------------------------

# Title, clear screen, clipboard write (OSC 52), one-byte CSI, right-to-left override.
EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cHduZWQ=\x07\x9b31m\u202eevil"
SHOWN = neutralize(EVIL)  # what a terminal may be given instead
ZEN_KEY = "sk-zen-SECRET-marker-5f3a9"
BACKEND_KEY = "sk-backend-SECRET-marker-9c1d7"
SECRETS = (ZEN_KEY, BACKEND_KEY)

# Raw controls a terminal acts on: C0 but LF and TAB, DEL, C1, bidi overrides and isolates.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
ERROR_LINE = "llmcli: error: "
# The one line a command ends with when it fails: an error, or the signal that ended it
# (``interrupted`` is Ctrl-C's; SIGTERM and SIGHUP say their names).
ENDING_LINE = re.compile(
    r"^llmcli: (error: |interrupted$|terminated \(SIGTERM\)$|hung up \(SIGHUP\)$)"
)
MAX_RSS_KB = 512 * 1024  # a CLI run that needs more has grown without bound
ADDRESS_SPACE_LIMIT = 3 * 1024**3  # the child dies (MemoryError) rather than eat the machine
RUN_TIMEOUT = 40.0  # seconds; every case ends long before, a hang fails here
FIVE_MB = 5 * 1024 * 1024
LATIN1 = b"caf\xe9 au lait\n"  # "café" in Latin-1: byte 3 is not UTF-8
BOOT = (
    "import resource, sys\n"
    f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_SPACE_LIMIT}, {ADDRESS_SPACE_LIMIT}))\n"
    "sys.argv[0] = 'llmcli'\n"
    "from llmcli.__main__ import main\n"
    "main()\n"
)


# -- the table's vocabulary -----------------------------------------------------------------


@dataclass(frozen=True)
class Hostile:
    """A scenario of the module's hostile server (route -> replies)."""

    script: Script


@dataclass(frozen=True)
class Mock:
    """llmcli's own mock server, started for the case."""

    config: MockConfig


@dataclass(frozen=True)
class Llama:
    """The real llama-server of a session fixture."""

    fixture: Literal["llama_think", "llama_embed"]


@dataclass(frozen=True)
class Dead:
    """A loopback port nothing listens on."""


Server = Hostile | Mock | Llama | Dead | None


@dataclass(frozen=True)
class FaultCase:
    """One row of the matrix. ``{tmp}`` in ``argv``, ``env`` values and ``files`` is the case's
    directory; ``files`` (relative path -> bytes) are written there before the run."""

    id: str
    argv: tuple[str, ...]
    server: Server = None
    exit: int = 0
    # The one ending line (``llmcli: error: ...``, or the signal's ``llmcli: interrupted``
    # and the like) must match this (search); None: no such line at all.
    error: str | None = None
    stdout_has: tuple[str, ...] = ()
    stdout_is: str | None = None
    stderr_has: tuple[str, ...] = ()
    stderr_lacks: tuple[str, ...] = ()
    # Texts the newest conversation in the history must hold (its messages' content and
    # error); None: not checked.
    kept: tuple[str, ...] | None = None
    stdin: bytes = b""
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)
    dialect: Literal["zen", "llamacpp", "openai"] = "llamacpp"
    read_timeout: float = 10.0
    # Send this signal once stdout holds `signal_after`.
    signal: int | None = None
    signal_after: str = ""
    stderr_limit: int = 16 * 1024
    # False when the case breaks the history on purpose (then it is not read afterwards).
    history_readable: bool = True
    # Anything else to assert, given the run.
    extra: Callable[[Run], None] | None = None


@dataclass
class Run:
    """What one case's child process did."""

    case: FaultCase
    tmp: Path
    returncode: int
    stdout: str
    stderr: str
    raw_stderr_size: int
    max_rss_kb: int
    requests: list[tuple[str, str, dict[str, str], bytes]]
    env: dict[str, str]


def case(
    id: str, *argv: str, xfail: str | None = None, **fields: Any
) -> Any:  # a pytest ParameterSet
    """A table row as a pytest param; ``xfail`` names the llmcli bug that makes it fail."""
    marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {xfail}")] if xfail else []
    return pytest.param(FaultCase(id, tuple(argv), **fields), id=id, marks=marks)


def error_json(message: str) -> dict[str, Any]:
    """OpenAI's (and llama-server's) error shape."""
    return {"error": {"code": 400, "message": message, "type": "invalid_request_error"}}


def zen_error(message: str, kind: str = "RateLimitError") -> dict[str, Any]:
    """Zen's own error shape."""
    return {"type": "error", "error": {"type": kind, "message": message}}


def stream_then(
    *tail: bytes | Pause | dict[str, Any] | str, done: bool = False, **options: Any
) -> Reply:
    """Three words of answer ("alpha beta gamma"), then ``tail`` (no ``[DONE]`` unless asked)."""
    return sse_reply(chunk("alpha"), chunk(" beta"), chunk(" gamma"), *tail, done=done, **options)


HTML_PAGE = b"<html><head><title>Hotel WiFi</title></head><body>Log in</body></html>"
PARTIAL = "alpha beta gamma"
TOOL_CALL = {
    "index": 0,
    "id": "call_1",
    "type": "function",
    "function": {"name": EVIL, "arguments": '{"x": "' + EVIL.replace("\x1b", "\\u001b") + '"}'},
}
LLAMA_MODELS = {
    "object": "list",
    "data": [{"id": EVIL, "object": "model", "owned_by": "llamacpp", "meta": {"n_ctx": 2048}}],
}
ZEN_MODELS = {"object": "list", "data": [{"id": EVIL + "-free", "object": "model"}]}


def results(ok: int, failed: int = 0, **errors: int) -> Callable[[Run], None]:
    """bench wrote its results as strict JSON, every request counted: ``ok``, ``failed``
    and the failures by kind (``http_500=2``)."""

    def check(run: Run) -> None:
        path = run.tmp / "out.json"
        document = json.loads(path.read_text(), parse_constant=_refuse_constant)
        [profile] = document["profiles"]
        [level] = profile["levels"]
        summary = level["summary"]
        assert (summary["ok"], summary["failed"], summary["errors"]) == (ok, failed, errors)

    return check


def _refuse_constant(name: str) -> None:
    raise AssertionError(f"{name} in a results file that must be strict JSON")


def assert_json_stdout(run: Run) -> None:
    """stdout is one JSON document, whatever happened."""
    json.loads(run.stdout)


def assert_model_ids_intact(run: Run) -> None:
    """--json keeps the id exactly (escaped in JSON, not altered)."""
    ids = [model["id"] for model in json.loads(run.stdout)]
    assert ids and ids[0].startswith(EVIL), ids


def assert_one_request(run: Run) -> None:
    chats = [r for r in run.requests if r[1] == "chat"]
    assert len(chats) == 1, f"{len(chats)} requests: a retry where none belongs"


def assert_no_request(run: Run) -> None:
    assert run.requests == [], "a request was sent for input that should have been refused"


def assert_no_retry_notice(run: Run) -> None:
    assert "retry" not in run.stderr.lower(), run.stderr


def assert_history_error_capped(run: Run) -> None:
    conversation = newest_conversation(run.env)
    assert conversation is not None
    [*_, reply] = conversation["messages"]
    assert reply["error"] and len(reply["error"]) < 16 * 1024, len(reply["error"] or "")


CASES = [
    # --- complete: escape sequences in every field it shows ------------------------------
    case(
        "complete-esc-content",
        "complete",
        "hi",
        server=Hostile({"chat": answer(EVIL + " tail")}),
        stdout_has=(SHOWN,),
        kept=("hi", EVIL),
    ),
    case(
        "complete-esc-reasoning",
        "complete",
        "hi",
        server=Hostile({"chat": answer("fine", reasoning=EVIL)}),
        stdout_has=("fine",),
        stderr_has=(SHOWN,),
    ),
    case(
        "complete-esc-model-json",
        "complete",
        "hi",
        "--json",
        server=Hostile({"chat": answer("fine", model=EVIL)}),
        stdout_has=('"content": "fine"',),
        extra=lambda run: _assert_json_model(run, EVIL),
    ),
    case(
        "complete-esc-tool-call",
        "complete",
        "hi",
        "--json",
        server=Hostile(
            {"chat": sse_reply(chunk(tool_calls=[TOOL_CALL]), chunk(finish="tool_calls"))}
        ),
        extra=assert_json_stdout,
    ),
    case(
        "complete-esc-error-openai-400",
        "complete",
        "hi",
        server=Hostile({"chat": json_reply(400, error_json(EVIL))}),
        exit=3,
        error=r"HTTP 400.*␛\]0;pwned",
        kept=("hi",),
    ),
    case(
        "complete-esc-error-zen-500",
        "complete",
        "hi",
        dialect="zen",
        server=Hostile({"chat": json_reply(500, zen_error(EVIL, "ServerError"))}),
        exit=3,
        error=r"HTTP 500.*␛\[2J",
    ),
    case(
        "complete-esc-error-midstream",
        "complete",
        "hi",
        server=Hostile({"chat": stream_then({"error": {"code": 500, "message": EVIL}})}),
        exit=3,
        error=r"␛\]52",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    case(
        "complete-esc-error-html-502",
        "complete",
        "hi",
        server=Hostile(
            {
                "chat": Reply(
                    502,
                    "Bad Gateway",
                    (("content-type", "text/html"),),
                    (b"<h1>" + EVIL.encode() + b"</h1>",),
                    "length",
                )
            }
        ),
        exit=3,
        error=r"HTTP 502",
    ),
    # --- complete: statuses --------------------------------------------------------------
    case(
        "complete-401-llamacpp",
        "complete",
        "hi",
        server=Hostile({"chat": json_reply(401, error_json("Invalid API Key"))}),
        exit=3,
        error=r"HTTP 401",
        extra=assert_one_request,
    ),
    case(
        "complete-401-zen-says-which-key",
        "complete",
        "hi",
        dialect="zen",
        server=Hostile({"chat": json_reply(401, zen_error("bad key", "AuthError"))}),
        exit=3,
        error=r"HTTP 401.*ZEN_API_KEY",
    ),
    case(
        "complete-401-key-echoed-back",
        "complete",
        "hi",
        dialect="zen",
        server=Hostile({"chat": json_reply(401, zen_error(f"unknown key {ZEN_KEY}", "AuthError"))}),
        exit=3,
        error=r"HTTP 401",
        xfail="a key the server echoes in its error message is printed and stored as is",
    ),
    case(
        "complete-402-zen",
        "complete",
        "hi",
        dialect="zen",
        server=Hostile({"chat": json_reply(402, zen_error("no credits", "CreditsError"))}),
        exit=3,
        error=r"HTTP 402.*no credits",
    ),
    case(
        "complete-403",
        "complete",
        "hi",
        dialect="zen",
        server=Hostile(
            {"chat": json_reply(403, zen_error("not in your region", "ForbiddenError"))}
        ),
        exit=3,
        error=r"HTTP 403.*not in your region",
    ),
    case(
        "complete-404",
        "complete",
        "hi",
        server=Hostile(
            {
                "chat": json_reply(
                    404,
                    {
                        "error": {
                            "code": 404,
                            "message": "File Not Found",
                            "type": "not_found_error",
                        }
                    },
                )
            }
        ),
        exit=3,
        error=r"HTTP 404",
    ),
    case(
        "complete-429-zen-retry-after",
        "complete",
        "hi",
        dialect="zen",
        server=Hostile(
            {
                "chat": json_reply(
                    429,
                    zen_error("slow down"),
                    headers=(("content-type", "application/json"), ("retry-after", "3600")),
                )
            }
        ),
        exit=3,
        error=r"HTTP 429.*retry after 3600 s",
        extra=assert_one_request,
    ),
    case(
        "complete-429-zen-free-tier-hint",
        "complete",
        "hi",
        dialect="zen",
        server=Hostile({"chat": json_reply(429, zen_error("daily limit"))}),
        exit=3,
        error=r"HTTP 429.*zen's free tier resets",
    ),
    case(
        "complete-429-llamacpp-retry-after-no-zen-hint",
        "complete",
        "hi",
        server=Hostile(
            {
                "chat": json_reply(
                    429,
                    error_json("busy"),
                    headers=(("content-type", "application/json"), ("retry-after", "3600")),
                )
            }
        ),
        exit=3,
        error=r"HTTP 429.*retry after 3600 s",
        stderr_lacks=("zen",),
    ),
    case(
        "complete-429-llamacpp-no-zen-hint",
        "complete",
        "hi",
        server=Hostile({"chat": json_reply(429, error_json("busy"))}),
        exit=3,
        error=r"HTTP 429",
        stderr_lacks=("zen",),
    ),
    case(
        "complete-500",
        "complete",
        "hi",
        server=Hostile(
            {
                "chat": json_reply(
                    500, {"error": {"code": 500, "message": "boom", "type": "server_error"}}
                )
            }
        ),
        exit=3,
        error=r"HTTP 500.*boom",
        kept=("hi",),
    ),
    case(
        "complete-503-loading",
        "complete",
        "hi",
        server=Hostile(
            {
                "chat": json_reply(
                    503,
                    {
                        "error": {
                            "code": 503,
                            "message": "Loading model",
                            "type": "unavailable_error",
                        }
                    },
                )
            }
        ),
        exit=3,
        error=r"HTTP 503|[Ll]oading",
    ),
    case(
        "complete-200-html-captive-portal",
        "complete",
        "hi",
        server=Hostile(
            {"chat": Reply(200, "OK", (("content-type", "text/html"),), (HTML_PAGE,), "length")}
        ),
        exit=3,
        error=r"(?i)html",
        stderr_lacks=("cut short",),
        stdout_is="",
    ),
    case(
        "complete-307-redirect",
        "complete",
        "hi",
        server=Hostile(
            {
                "chat": Reply(
                    307,
                    "Temporary Redirect",
                    (("location", "http://127.0.0.1:9/elsewhere"),),
                    (),
                    "length",
                )
            }
        ),
        exit=3,
        error=r"(?i)redirect|307",
        stderr_lacks=("cut short",),
        stdout_is="",
    ),
    case(
        "complete-no-stream-200-error-json",
        "complete",
        "hi",
        "--no-stream",
        server=Hostile({"chat": json_reply(200, error_json("model crashed"))}),
        exit=3,
        error=r"model crashed",
        kept=("hi", "model crashed"),
    ),
    case(
        "complete-no-stream-json-200-error-json",
        "complete",
        "hi",
        "--no-stream",
        "--json",
        server=Hostile({"chat": json_reply(200, zen_error("upstream failed", "ServerError"))}),
        dialect="zen",
        exit=3,
        error=r"upstream failed",
        stdout_has=('"error"',),
        extra=assert_json_stdout,
    ),
    case(
        "complete-no-stream-esc-content",
        "complete",
        "hi",
        "--no-stream",
        server=Hostile(
            {
                "chat": json_reply(
                    200,
                    {
                        "model": EVIL,
                        "choices": [
                            {
                                "index": 0,
                                "message": {
                                    "role": "assistant",
                                    "content": EVIL,
                                    "reasoning_content": EVIL,
                                },
                                "finish_reason": "stop",
                            }
                        ],
                    },
                )
            }
        ),
        stdout_has=(SHOWN,),
        stderr_has=(SHOWN,),
    ),
    # --- complete: broken streams ---------------------------------------------------------
    case(
        "complete-malformed-sse",
        "complete",
        "hi",
        server=Hostile({"chat": stream_then("this is {not json", chunk(" delta"), done=True)}),
        exit=3,
        error=r"(?i)json|malformed|not",
        stdout_has=(PARTIAL,),
        kept=(PARTIAL,),
    ),
    case(
        "complete-cut-mid-stream",
        "complete",
        "hi",
        server=Hostile({"chat": stream_then(ending="cut")}),
        exit=3,
        error=r"(?i)ended|closed|cut",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    case(
        "complete-cut-mid-body-content-length",
        "complete",
        "hi",
        server=Hostile(
            {
                "chat": Reply(
                    headers=(("content-type", "text/event-stream"),),
                    body=(sse_frame(chunk("alpha beta gamma")),),
                    framing="length",
                    declared_length=100_000,
                    ending="cut",
                )
            }
        ),
        exit=3,
        stdout_has=(PARTIAL,),
        kept=(PARTIAL,),
        error=r".",
    ),
    case(
        "complete-stall-after-tokens",
        "complete",
        "hi",
        read_timeout=1,
        server=Hostile({"chat": stream_then(ending="stall")}),
        exit=4,
        error=r"stalled|nothing received",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    case(
        "complete-stall-before-any-byte",
        "complete",
        "hi",
        read_timeout=1,
        server=Hostile({"chat": Reply(headless=True, ending="stall")}),
        exit=4,
        error=r"(?i)timed out|nothing received|stalled|no answer",
        stdout_is="",
    ),
    case(
        "complete-stall-after-headers",
        "complete",
        "hi",
        read_timeout=1,
        server=Hostile({"chat": sse_reply(done=False, ending="stall")}),
        exit=4,
        error=r".",
        stdout_is="",
    ),
    case(
        "complete-5mb-error-message",
        "complete",
        "hi",
        server=Hostile({"chat": json_reply(500, error_json("x" * FIVE_MB))}),
        exit=3,
        error=r"HTTP 500",
        stderr_limit=4096,
        extra=assert_history_error_capped,
    ),
    case(
        "complete-5mb-error-midstream",
        "complete",
        "hi",
        server=Hostile({"chat": stream_then({"error": {"message": "y" * FIVE_MB}})}),
        exit=3,
        error=r"yyy",
        stderr_limit=4096,
        stdout_has=(PARTIAL,),
        xfail="an error event mid-stream is printed whole: a 5 MB message is a 5 MB stderr line",
    ),
    case(
        "complete-huge-sse-line",
        "complete",
        "hi",
        "--json",
        server=Hostile({"chat": sse_reply(chunk("z" * (4 * FIVE_MB // 5)), chunk(finish="stop"))}),
        extra=lambda run: _assert_content_length(run, 4 * FIVE_MB // 5),
    ),
    case(
        "complete-gzip-stream",
        "complete",
        "hi",
        server=Hostile(
            {
                "chat": sse_reply(
                    chunk("squeezed"),
                    Pause(0.05),
                    chunk(" words"),
                    chunk(finish="stop"),
                    encoding="gzip",
                )
            }
        ),
        stdout_is="squeezed words\n",
    ),
    case(
        "complete-deflate-stream",
        "complete",
        "hi",
        server=Hostile(
            {
                "chat": sse_reply(
                    chunk("deflated"),
                    Pause(0.05),
                    chunk(" words"),
                    chunk(finish="stop"),
                    encoding="deflate",
                )
            }
        ),
        stdout_is="deflated words\n",
    ),
    case(
        "complete-gzip-cut-mid-stream",
        "complete",
        "hi",
        server=Hostile({"chat": stream_then(ending="cut", encoding="gzip")}),
        exit=3,
        error=r".",
        stdout_has=(PARTIAL,),
        kept=(PARTIAL,),
    ),
    case(
        "complete-dead-server",
        "complete",
        "hi",
        server=Dead(),
        exit=3,
        error=r"cannot reach",
        extra=assert_no_retry_notice,
        stdout_is="",
    ),
    case(
        "complete-no-done-no-finish",
        "complete",
        "hi",
        server=Hostile({"chat": stream_then()}),
        exit=3,
        error=r"cut short",
        stdout_has=(PARTIAL,),
        kept=(PARTIAL,),
    ),
    case(
        "complete-finish-without-done",
        "complete",
        "hi",
        server=Hostile({"chat": stream_then(chunk(finish="stop"))}),
        stdout_is=PARTIAL + "\n",
        kept=(PARTIAL,),
    ),
    # --- complete: bad input ---------------------------------------------------------------
    case(
        "complete-latin1-stdin",
        "complete",
        server=Hostile({"chat": answer("ok")}),
        stdin=LATIN1,
        stdout_is="ok\n",
        stderr_has=("offset 3",),
        kept=("caf\ufffd",),
    ),
    case(
        "complete-binary-stdin",
        "complete",
        server=Hostile({"chat": answer("ok")}),
        stdin=b"\xff\xfe\x00\x01\x1b[2J\x80\n",
        stdout_is="ok\n",
        stderr_has=("offset 0",),
    ),
    case(
        "complete-max-input-exceeded",
        "complete",
        "summarise",
        server=Hostile({"chat": answer("never")}),
        stdin=b"a" * 5000,
        env={"LLMCLI_MAX_INPUT": "1K"},
        exit=2,
        error=r"LLMCLI_MAX_INPUT",
        extra=assert_no_request,
        stdout_is="",
    ),
    case(
        "complete-temperature-nan",
        "complete",
        "hi",
        "--temperature",
        "nan",
        server=Hostile({"chat": answer("never")}),
        exit=2,
        error=r"--temperature",
        extra=assert_no_request,
    ),
    case(
        "complete-temperature-inf",
        "complete",
        "hi",
        "--temperature",
        "inf",
        server=Hostile({"chat": answer("never")}),
        exit=2,
        error=r"--temperature",
        extra=assert_no_request,
    ),
    case(
        "complete-top-p-2",
        "complete",
        "hi",
        "--top-p",
        "2",
        server=Hostile({"chat": answer("never")}),
        exit=2,
        error=r"--top-p",
        extra=assert_no_request,
    ),
    case(
        "complete-max-tokens-0",
        "complete",
        "hi",
        "--max-tokens",
        "0",
        server=Hostile({"chat": answer("never")}),
        exit=2,
        error=r"--max-tokens",
        extra=assert_no_request,
    ),
    case(
        "complete-backend-url-newline",
        "complete",
        "hi",
        env={"BACKEND_URL": "http://127.0.0.1:9/v1\nX-Injected: 1"},
        exit=2,
        error=r"BACKEND_URL",
    ),
    case(
        "complete-backend-url-spaces",
        "complete",
        "hi",
        env={"BACKEND_URL": "http://127.0.0.1:9/v1 extra words"},
        exit=2,
        error=r"BACKEND_URL",
    ),
    case("complete-no-prompt", "complete", exit=2, error=r"prompt"),
    case(
        "complete-grammar-missing-file",
        "complete",
        "hi",
        "--grammar",
        "{tmp}/none.gbnf",
        server=Hostile({"chat": answer("never")}),
        exit=2,
        error=r"none\.gbnf",
    ),
    # --- profiles and configuration --------------------------------------------------------
    case(
        "config-broken-toml",
        "complete",
        "hi",
        files={"profiles.toml": b"[profiles.x\nbase_url = 1\n"},
        exit=2,
        error=r"line 1.*column|column.*line 1",
    ),
    case(
        "config-unknown-profile",
        "complete",
        "-p",
        "nope",
        "hi",
        exit=2,
        error=r"unknown profile 'nope'",
    ),
    case(
        "config-unknown-field",
        "complete",
        "hi",
        files={
            "profiles.toml": b'[profiles.t]\nbase_url = "http://127.0.0.1:9/v1"\nbase_ulr = "x"\n'
        },
        exit=2,
        error=r"base_ulr",
    ),
    case(
        "config-latin1-toml",
        "profiles",
        "list",
        files={"profiles.toml": b'[profiles.t]\nbase_url = "http://caf\xe9/v1"\n'},
        exit=2,
        error=r".",
    ),
    case("profiles-show-zen-never-prints-key", "profiles", "show", "zen", stdout_has=("zen",)),
    case("profiles-list", "profiles", "list", stdout_has=("zen", "local")),
    case(
        "profiles-add-bad-url",
        "profiles",
        "add",
        "x",
        "--url",
        "not a url",
        exit=2,
        error=r"(?i)url",
    ),
    # --- chat, stdin piped ----------------------------------------------------------------
    case(
        "chat-esc-content-and-model",
        "chat",
        server=Hostile({"chat": answer(EVIL, model=EVIL)}),
        stdin=b"hi\n",
        stdout_has=(SHOWN,),
        kept=("hi", EVIL),
    ),
    case(
        "chat-esc-reasoning",
        "chat",
        "--reasoning",
        "show",
        server=Hostile({"chat": answer("ok", reasoning=EVIL)}),
        stdin=b"hi\n",
        stdout_has=("ok",),
    ),
    case(
        "chat-esc-error-500",
        "chat",
        server=Hostile({"chat": json_reply(500, error_json(EVIL))}),
        stdin=b"hi\n",
        exit=1,
        error=r"HTTP 500.*␛",
    ),
    case(
        "chat-cut-mid-stream",
        "chat",
        server=Hostile({"chat": stream_then(ending="cut")}),
        stdin=b"hi\n",
        exit=1,
        error=r".",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    case(
        "chat-stall-after-tokens",
        "chat",
        read_timeout=1,
        server=Hostile({"chat": stream_then(ending="stall")}),
        stdin=b"hi\n",
        exit=1,
        error=r"stalled|nothing received",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    case(
        "chat-latin1-stdin",
        "chat",
        server=Hostile({"chat": answer("ok")}),
        stdin=LATIN1,
        stdout_has=("ok",),
        stderr_has=("offset 3",),
        kept=("caf\ufffd",),
    ),
    case(
        "chat-two-messages",
        "chat",
        server=Hostile({"chat": answer("ok")}),
        stdin=b"one\ntwo\n",
        kept=("one", "two", "ok"),
    ),
    case(
        "chat-sigterm-mid-stream",
        "chat",
        server=Hostile({"chat": stream_then(ending="stall")}),
        stdin=b"hi\n",
        signal=signal.SIGTERM,
        signal_after=PARTIAL,
        exit=143,
        error=r"SIGTERM",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    # --- complete: signals mid-stream -------------------------------------------------------
    *(
        case(
            f"complete-{name}-mid-stream",
            "complete",
            "hi",
            server=Hostile({"chat": stream_then(ending="stall")}),
            signal=signum,
            signal_after=PARTIAL,
            exit=code,
            error=said,
            stdout_has=(PARTIAL,),
            kept=("hi", PARTIAL),
        )
        for name, signum, code, said in (
            ("sigint", signal.SIGINT, 130, "interrupted"),
            ("sigterm", signal.SIGTERM, 143, "SIGTERM"),
            ("sighup", signal.SIGHUP, 129, "SIGHUP"),
        )
    ),
    # --- embed ---------------------------------------------------------------------------------
    case(
        "embed-esc-error-400",
        "embed",
        "one",
        server=Hostile({"embeddings": json_reply(400, error_json(EVIL))}),
        exit=3,
        error=r"HTTP 400.*␛",
    ),
    case(
        "embed-200-html",
        "embed",
        "one",
        server=Hostile(
            {
                "embeddings": Reply(
                    200, "OK", (("content-type", "text/html"),), (HTML_PAGE,), "length"
                )
            }
        ),
        exit=3,
        error=r"(?i)html",
    ),
    case(
        "embed-malformed-json",
        "embed",
        "one",
        server=Hostile(
            {"embeddings": Reply(body=(b'{"data": [{"embedding": [0.1, ',), framing="length")}
        ),
        exit=3,
        error=r".",
    ),
    case(
        "embed-stall",
        "embed",
        "one",
        read_timeout=1,
        server=Hostile({"embeddings": Reply(headless=True, ending="stall")}),
        exit=4,
        error=r".",
        stdout_is="",
    ),
    case(
        "embed-zen-has-none",
        "embed",
        "one",
        dialect="zen",
        server=Hostile({}),
        exit=2,
        error=r"(?i)embed",
    ),
    case(
        "embed-latin1-stdin-real-server",
        "embed",
        server=Llama("llama_embed"),
        stdin=LATIN1,
        stderr_has=("offset 3",),
        stdout_has=('"text": "caf\ufffd au lait"',),
    ),
    case(
        "embed-two-texts-real-server",
        "embed",
        "first",
        "second",
        server=Llama("llama_embed"),
        extra=lambda run: _assert_ndjson_ids(run, [1, 2]),
    ),
    # --- tools-demo ----------------------------------------------------------------------------
    case(
        "tools-demo-esc-tool-call-and-model",
        "tools-demo",
        "use a tool",
        "--max-steps",
        "2",
        server=Hostile(
            {
                "chat": [
                    sse_reply(
                        chunk(tool_calls=[TOOL_CALL], model=EVIL),
                        chunk(finish="tool_calls", model=EVIL),
                    ),
                    answer("done", model=EVIL),
                ]
            }
        ),
        stdout_has=("done",),
        stderr_has=("␛",),
    ),
    case(
        "tools-demo-esc-error-500",
        "tools-demo",
        "use a tool",
        server=Hostile({"chat": json_reply(500, error_json(EVIL))}),
        exit=3,
        error=r"HTTP 500.*␛",
    ),
    case(
        "tools-demo-latin1-stdin",
        "tools-demo",
        server=Hostile({"chat": answer("ok")}),
        stdin=LATIN1,
        stdout_has=("ok",),
        stderr_has=("offset 3",),
    ),
    case(
        "tools-demo-stall-after-tokens",
        "tools-demo",
        "go",
        read_timeout=1,
        server=Hostile({"chat": stream_then(ending="stall")}),
        exit=4,
        error=r".",
        stdout_has=(PARTIAL,),
    ),
    # --- models ---------------------------------------------------------------------------
    case(
        "models-esc-ids-table",
        "models",
        server=Hostile({"models": json_reply(200, LLAMA_MODELS)}),
        stdout_has=("␛]0;pwned",),
    ),
    case(
        "models-esc-ids-json",
        "models",
        "--json",
        server=Hostile({"models": json_reply(200, LLAMA_MODELS)}),
        extra=assert_model_ids_intact,
    ),
    case(
        "models-esc-ids-zen-table",
        "models",
        dialect="zen",
        server=Hostile({"models": json_reply(200, ZEN_MODELS)}),
        stdout_has=("␛]0;pwned",),
    ),
    case(
        "models-401",
        "models",
        server=Hostile({"models": json_reply(401, error_json(EVIL))}),
        exit=3,
        error=r"HTTP 401",
    ),
    case(
        "models-html-200",
        "models",
        server=Hostile(
            {"models": Reply(200, "OK", (("content-type", "text/html"),), (HTML_PAGE,), "length")}
        ),
        exit=3,
        error=r"(?i)html",
    ),
    case(
        "models-not-json",
        "models",
        server=Hostile({"models": Reply(body=(b"{nope",), framing="length")}),
        exit=3,
        error=r".",
    ),
    case("models-dead-server", "models", server=Dead(), exit=3, error=r"cannot reach"),
    # --- health ---------------------------------------------------------------------------
    case(
        "health-esc-detail",
        "health",
        server=Hostile(
            {
                "health": json_reply(
                    503, {"error": {"code": 503, "message": EVIL, "type": "unavailable_error"}}
                )
            }
        ),
        exit=1,
        stdout_has=("not ready", "␛]0;pwned"),
    ),
    case(
        "health-esc-detail-json",
        "health",
        "--json",
        server=Hostile({"health": json_reply(503, {"error": {"code": 503, "message": EVIL}})}),
        exit=1,
        extra=assert_json_stdout,
    ),
    case(
        "health-esc-models-fallback",
        "health",
        dialect="openai",
        server=Hostile({"models": json_reply(500, error_json(EVIL))}),
        exit=1,
        stdout_has=("␛",),
    ),
    case(
        "health-dead-json",
        "health",
        "--json",
        server=Dead(),
        exit=3,
        error=r"cannot reach",
        extra=assert_json_stdout,
        stdout_has=('"reachable": false',),
    ),
    case(
        "health-ok",
        "health",
        server=Hostile({"health": json_reply(200, {"status": "ok"})}),
        stdout_has=("ready",),
    ),
    case(
        "health-stall",
        "health",
        read_timeout=1,
        server=Hostile({"health": Reply(headless=True, ending="stall")}),
        exit=4,
        error=r".",
    ),
    # --- history ----------------------------------------------------------------------------
    case("history-show-unknown-id", "history", "show", "zzzz", exit=2, error=r"zzzz"),
    case(
        "history-corrupt-database",
        "history",
        "list",
        files={"data/history.db": b"this is not a database" * 100},
        exit=1,
        error=r"history database .* is unreadable.*move it aside",
        history_readable=False,
    ),
    case("history-list-empty-json", "history", "list", "--json", stdout_is="[]\n"),
    # --- bench ----------------------------------------------------------------------------------
    case(
        "bench-huge-concurrency",
        "bench",
        "--concurrency",
        "99999999999",
        "--requests",
        "2",
        "--out",
        "{tmp}/out.json",
        server=Mock(MockConfig()),
        exit=2,
        error=r"--concurrency",
    ),
    case(
        "bench-rate-nan",
        "bench",
        "--rate",
        "nan",
        "--requests",
        "2",
        "--out",
        "{tmp}/out.json",
        server=Mock(MockConfig()),
        exit=2,
        error=r"--rate nan",
    ),
    case(
        "bench-prompts-latin1",
        "bench",
        "--prompts",
        "{tmp}/latin1.txt",
        "--requests",
        "2",
        "--out",
        "{tmp}/out.json",
        files={"latin1.txt": LATIN1},
        server=Mock(MockConfig()),
        exit=2,
        error=r"latin1\.txt",
    ),
    case(
        "bench-mock-ok",
        "bench",
        "--requests",
        "2",
        "--warmup",
        "0",
        "--max-tokens",
        "4",
        "--out",
        "{tmp}/out.json",
        server=Mock(MockConfig()),
        dialect="zen",
        extra=results(ok=2),
    ),
    case(
        "bench-mock-500s",
        "bench",
        "--requests",
        "2",
        "--warmup",
        "0",
        "--max-tokens",
        "4",
        "--out",
        "{tmp}/out.json",
        server=Mock(MockConfig(faults=Faults(status_500=1.0))),
        dialect="zen",
        stderr_has=("2 requests, 2 failed",),
        extra=results(ok=0, failed=2, http_500=2),
    ),
    case(
        "bench-hostile-esc",
        "bench",
        "--requests",
        "2",
        "--warmup",
        "0",
        "--max-tokens",
        "4",
        "--out",
        "{tmp}/out.json",
        server=Hostile(
            {
                "chat": answer("a b c", model=EVIL),
                "models": json_reply(200, LLAMA_MODELS),
                "props": json_reply(200, {"build_info": EVIL}),
            }
        ),
        extra=results(ok=2),
    ),
    case(
        "bench-hostile-esc-errors",
        "bench",
        "--requests",
        "2",
        "--warmup",
        "0",
        "--out",
        "{tmp}/out.json",
        server=Hostile({"chat": json_reply(500, error_json(EVIL))}),
        stderr_has=("2 requests, 2 failed",),
        extra=results(ok=0, failed=2, http_500=2),
    ),
    # --- llmcli's own mock server's faults -------------------------------------------------------
    case(
        "mock-reset-mid-stream",
        "complete",
        "hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(reset=1.0, reset_after_tokens=3))),
        exit=3,
        error=r".",
        stdout_has=(" lorem ipsum dolor",),
        kept=(" lorem ipsum dolor",),
    ),
    case(
        "mock-error-event",
        "complete",
        "hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(error_event=1.0, error_after_tokens=2))),
        exit=3,
        error=r".",
        stdout_has=(" lorem ipsum",),
        kept=(" lorem ipsum",),
    ),
    case(
        "mock-malformed-frame",
        "complete",
        "hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(malformed=1.0))),
        exit=3,
        error=r".",
        stdout_has=(" lorem ipsum",),
    ),
    case(
        "mock-no-done",
        "complete",
        "hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(no_done=1.0, no_finish=True))),
        exit=3,
        error=r"cut short",
        stdout_has=(" lorem ipsum",),
    ),
    case(
        "mock-no-done-with-finish",
        "complete",
        "hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(no_done=1.0))),
        stdout_has=(" lorem ipsum",),
    ),
    case(
        "mock-stall",
        "complete",
        "hi",
        dialect="zen",
        read_timeout=1,
        server=Mock(MockConfig(faults=Faults(stall=1.0, stall_after_tokens=3, stall_seconds=30))),
        exit=4,
        error=r"stalled",
        stdout_has=(" lorem ipsum dolor",),
        kept=("hi", " lorem ipsum dolor"),
    ),
    case(
        "mock-429-retried-once",
        "complete",
        "hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(status_429=1.0, retry_after=0.2, limit=1))),
        stdout_has=(" lorem",),
    ),
    case(
        "mock-html-500",
        "complete",
        "hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(status_500=1.0, html_500=True))),
        exit=3,
        error=r"HTTP 500: HTML page",
    ),
    case(
        "mock-chat-reset",
        "chat",
        dialect="zen",
        stdin=b"hi\n",
        server=Mock(MockConfig(faults=Faults(reset=1.0, reset_after_tokens=3))),
        exit=1,
        error=r".",
        stdout_has=(" lorem ipsum dolor",),
        kept=(" lorem ipsum dolor",),
    ),
    # --- the real llama-server --------------------------------------------------------------------
    case(
        "llama-complete-random-bytes",
        "complete",
        "--text",
        "x",
        "--max-tokens",
        "48",
        "--temperature",
        "1",
        "--seed",
        "3",
        server=Llama("llama_think"),
    ),
    case(
        "llama-chat-latin1",
        "chat",
        "--max-tokens",
        "4",
        server=Llama("llama_think"),
        stdin=LATIN1,
        stderr_has=("offset 3",),
        kept=("caf\ufffd",),
    ),
    case(
        "llama-complete-prompt-over-context",
        "complete",
        "--max-tokens",
        "4",
        server=Llama("llama_think"),
        stdin=b"word " * 3000,
        exit=3,
        error=r"context|HTTP 400",
    ),
]


def _assert_json_model(run: Run, model: str) -> None:
    document = json.loads(run.stdout)
    assert document["model"] == model


def _assert_content_length(run: Run, size: int) -> None:
    document = json.loads(run.stdout)
    assert len(document["content"]) == size


def _assert_ndjson_ids(run: Run, ids: list[int]) -> None:
    assert [json.loads(line)["id"] for line in run.stdout.splitlines()] == ids


# -- running a case -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server
        assert server.errors == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def newest_conversation(env: Mapping[str, str]) -> dict[str, Any] | None:
    """The newest conversation's full record, read with ``llmcli history`` (in process)."""
    runner = CliRunner()
    listed = runner.invoke(app, ["history", "list", "--json"], env=dict(env))
    assert listed.exit_code == 0, listed.output
    summaries = json.loads(listed.stdout)
    if not summaries:
        return None
    newest = summaries[0]["id"]
    exported = runner.invoke(app, ["history", "export", "--json", newest], env=dict(env))
    assert exported.exit_code == 0, exported.output
    shown = runner.invoke(app, ["history", "show", newest], env=dict(env))
    assert shown.exit_code == 0, shown.output
    assert CONTROL.search(shown.stdout) is None, f"history show passes {shown.stdout!r}"
    record: dict[str, Any] = json.loads(exported.stdout)
    return record


def write_profiles(case: FaultCase, base_url: str, path: Path) -> None:
    model = "big-pickle" if case.dialect == "zen" else "m"
    path.write_text(
        'default = "t"\n\n[profiles.t]\n'
        f'base_url = "{base_url}"\n'
        f'dialect = "{case.dialect}"\n'
        f'model = "{model}"\n'
        'api_key_env = "ZEN_API_KEY"\n'
        f"timeout = {{ connect = 3, read = {case.read_timeout} }}\n"
    )


def start_server(
    case: FaultCase, hostile: HostileServer, request: pytest.FixtureRequest, stack: list[Any]
) -> str:
    server = case.server
    if isinstance(server, Hostile):
        return hostile.add(case.id, server.script)
    if isinstance(server, Mock):
        mock = MockServerThread(server.config)
        mock.start()
        stack.append(mock)
        return mock.base_url
    if isinstance(server, Llama):
        llama: LlamaServer = request.getfixturevalue(server.fixture)
        return llama.base_url
    if isinstance(server, Dead):
        return f"http://127.0.0.1:{free_port()}/v1"
    return "http://127.0.0.1:9/v1"  # never reached: the case fails before any request


class Child:
    """``llmcli`` in a child process, its output read as it comes (for signals)."""

    def __init__(self, argv: list[str], env: dict[str, str], stdin: bytes, cwd: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", BOOT, *argv],
            env=env,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.stdout = bytearray()
        self.stderr = bytearray()
        self._readers = [
            threading.Thread(
                target=self._drain, args=(self.process.stdout, self.stdout), daemon=True
            ),
            threading.Thread(
                target=self._drain, args=(self.process.stderr, self.stderr), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()
        self._feed(stdin)

    def _feed(self, data: bytes) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(data)
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # the child refused its input before reading it all: its own business

    @staticmethod
    def _drain(pipe: Any, into: bytearray) -> None:
        while piece := pipe.read1(65536):
            into.extend(piece)

    def wait_for_stdout(self, text: str, deadline: float) -> None:
        wanted = text.encode()
        while wanted not in self.stdout:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"stdout never held {text!r}: {bytes(self.stdout)!r} {bytes(self.stderr)!r}"
                )
            time.sleep(0.02)

    def wait(self, deadline: float) -> tuple[int, int]:
        """(exit status, max RSS in KiB); kills the child at the deadline and fails."""
        while True:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"still running at the deadline: {bytes(self.stderr)!r}")
            time.sleep(0.02)
        for reader in self._readers:
            reader.join(10)
        return self.process.returncode, usage.ru_maxrss


def run_case(
    case: FaultCase, hostile: HostileServer, request: pytest.FixtureRequest, tmp: Path
) -> Run:
    stack: list[Any] = []
    try:
        base_url = start_server(case, hostile, request, stack)
        for name, data in case.files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.replace(b"{tmp}", str(tmp).encode()))
        profiles = tmp / "profiles.toml"
        if "profiles.toml" not in case.files:
            write_profiles(case, base_url, profiles)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp / "home"),
            "LANG": "C.UTF-8",
            "PYTHONIOENCODING": "",
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "XDG_DATA_HOME": str(tmp / "xdg-data"),
            "LLMCLI_DATA_DIR": str(tmp / "data"),
            "LLMCLI_CONFIG": str(profiles),
            "ZEN_API_KEY": ZEN_KEY,
            "BACKEND_API_KEY": BACKEND_KEY,
            "NO_COLOR": "1",
            "COLUMNS": "120",
            **{k: v.replace("{tmp}", str(tmp)) for k, v in case.env.items()},
        }
        argv = [arg.replace("{tmp}", str(tmp)) for arg in case.argv]
        deadline = time.monotonic() + RUN_TIMEOUT
        child = Child(argv, env, case.stdin, tmp)
        if case.signal is not None:
            child.wait_for_stdout(case.signal_after, deadline)
            child.process.send_signal(case.signal)
        returncode, max_rss = child.wait(deadline)
        requests = hostile.requests(case.id) if isinstance(case.server, Hostile) else []
    finally:
        for server in stack:
            server.stop()
    return Run(
        case=case,
        tmp=tmp,
        returncode=returncode,
        stdout=bytes(child.stdout).decode("utf-8"),
        stderr=bytes(child.stderr).decode("utf-8"),
        raw_stderr_size=len(child.stderr),
        max_rss_kb=max_rss,
        requests=requests,
        env=env,
    )


# -- what every case must hold ----------------------------------------------------------------


def check_invariants(run: Run) -> None:
    """The issue's promises, for any command and any fault."""
    case = run.case
    context = f"\nstdout: {run.stdout[:2000]!r}\nstderr: {run.stderr[:2000]!r}"
    assert "Traceback" not in run.stderr, context
    assert "Exception ignored" not in run.stderr, context
    for name, text in (("stdout", run.stdout), ("stderr", run.stderr)):
        found = CONTROL.search(text)
        assert found is None, f"raw control {found.group()!r} on {name}{context}"
    error_lines = [line for line in run.stderr.splitlines() if ENDING_LINE.match(line)]
    if case.error is None:
        assert error_lines == [], context
    else:
        assert len(error_lines) == 1, f"{len(error_lines)} error lines{context}"
        assert re.search(case.error, error_lines[0]), f"{error_lines[0]!r} !~ {case.error!r}"
    assert run.raw_stderr_size < case.stderr_limit, f"stderr is {run.raw_stderr_size} bytes"
    assert run.max_rss_kb < MAX_RSS_KB, f"{run.max_rss_kb} KiB resident"
    for secret in SECRETS:
        assert secret not in run.stdout and secret not in run.stderr, "a key on the terminal"
        for path in run.tmp.rglob("*"):
            if path.is_file() and path.name != "profiles.toml":
                assert secret.encode() not in path.read_bytes(), f"a key in {path}"


def check_expectations(run: Run) -> None:
    case = run.case
    context = f"\nstdout: {run.stdout[:2000]!r}\nstderr: {run.stderr[:2000]!r}"
    assert run.returncode == case.exit, f"exit {run.returncode}, not {case.exit}{context}"
    for text in case.stdout_has:
        assert text in run.stdout, f"{text!r} not on stdout{context}"
    if case.stdout_is is not None:
        assert run.stdout == case.stdout_is, context
    for text in case.stderr_has:
        assert text in run.stderr, f"{text!r} not on stderr{context}"
    for text in case.stderr_lacks:
        assert text not in run.stderr, f"{text!r} on stderr{context}"
    if case.kept is not None:
        conversation = newest_conversation(run.env)
        assert conversation is not None, "nothing in the history"
        held = "\n".join(
            f"{message['content']}\n{message['error'] or ''}"
            for message in conversation["messages"]
        )
        for text in case.kept:
            assert text in held, f"{text!r} not kept in the history: {held[:2000]!r}"
    if case.extra is not None:
        case.extra(run)


@pytest.mark.parametrize("case", CASES)
def test_fault(
    case: FaultCase, hostile: HostileServer, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    run = run_case(case, hostile, request, tmp_path)
    # Shown by pytest when the case fails (and with -s): what the run said.
    print(
        f"{case.id}: exit {run.returncode}\nstdout: {run.stdout[:300]!r}\nstderr: {run.stderr[:600]!r}"
    )
    check_invariants(run)
    check_expectations(run)
    if case.history_readable and (tmp_path / "data" / "history.db").exists():
        newest_conversation(run.env)  # `history show` must be safe for whatever was kept


def test_the_matrix_is_big_enough_and_its_ids_unique() -> None:
    ids = [param.values[0].id for param in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 60
