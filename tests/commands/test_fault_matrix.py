"""The fault matrix (issue 12): every command against hostile servers and hostile input.

One table, ``CASES``, of :class:`FaultCase`: the command line, the server (or input) it
meets, the exit status it must end with, its one ending line on stderr (a regex), what
must be on stdout (the part of the answer that arrived) and what the history must keep.
Each case runs ``llmcli`` as a real child process (``python -m llmcli``'s entry point
under an address-space limit, so a run cannot eat the machine), with its own config and
data directories, so stdin, exit statuses and signals are real. ``tty=True`` cases run
in a pseudo-terminal (pexpect), where rich and prompt-toolkit draw with escapes of their
own; there the server's own sequences are looked for instead.

``check_invariants`` holds for every case, whatever it tests:

- no traceback and no "Exception ignored" on stderr;
- no raw terminal control (C0 but LF and TAB, DEL, C1 such as the one-byte CSI, bidi
  overrides and isolates) on stdout, on stderr, or in what ``history show`` prints;
- exactly one ending line when the case expects one (``llmcli: error: ...``, or the
  signal's ``llmcli: interrupted`` / ``terminated (SIGTERM)`` / ``hung up (SIGHUP)``),
  none otherwise (notices such as ``llmcli: warning: ...`` or a retry are allowed);
- the keys (``ZEN_API_KEY``, ``BACKEND_API_KEY``, set to markers; the profile sends the
  first) never appear on stdout, stderr or in any file the run wrote (history database,
  results files);
- stderr stays small (a server's 5 MB error message is capped) and the child's peak
  memory stays under ``MAX_RSS_KB``.

Exit statuses are the README's (1 answer-level, 2 usage, 3 backend, 4 stalled, 128 +
the signal), with two rules of the commands themselves: a chat fed from a pipe answers
every line and exits 1 when any answer failed, and ``health`` exits 1 with its report
on stdout (no error line) for a server that answers but is not ready.

The servers: ``tests/rig/hostile.py`` (one for the module; each case is a scenario
chosen by the URL's first path segment), llmcli's own mock server for its fault
injection, and the real llama-server (``llama_think``, ``llama_embed``) for a few
cases. A case that fails because of a bug in llmcli is marked
``xfail(strict=True, reason="BUG: ...")``, so it fails the suite once fixed.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
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

import pexpect
import pytest
from rig import LlamaServer
from rig.hostile import (
    HostileServer,
    Pause,
    Reply,
    Script,
    answer,
    chunk,
    error_reply,
    html_reply,
    json_reply,
    sse_frame,
    sse_reply,
    stall_reply,
    zen_error_reply,
)
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.mock import Faults, MockConfig, MockServerThread

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and ptys")

# -- what hostile servers send, and what must never come out --------------------------------

# Window title (OSC 0), clear screen, clipboard write (OSC 52), the one-byte CSI (C1),
# a right-to-left override (Trojan Source).
EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cHduZWQ=\x07\x9b31m\u202eevil"
# What a terminal may be given instead, written out so the oracle is not the code under
# test: C0 controls as Control Pictures, C1 as text, bidi controls by name.
SHOWN = "␛]0;pwned␇␛[2J␛]52;c;cHduZWQ=␇\\x9b31m<U+202E>evil"
# The pieces of EVIL that must never reach a terminal, even one that gets colour.
EVIL_PIECES = ("\x1b]0;", "\x1b]52;", "\x1b[2J", "\x07", "\x9b", "\u202e")
ZEN_KEY = "sk-zen-SECRET-marker-5f3a9"
BACKEND_KEY = "sk-backend-SECRET-marker-9c1d7"
SECRETS = (ZEN_KEY, BACKEND_KEY)

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
ANSI = re.compile(
    r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78])"
)
# The one line a command ends with when it fails: an error, or the signal that ended it.
ENDING_LINE = re.compile(
    r"^llmcli: (error: |interrupted$|terminated \(SIGTERM\)$|hung up \(SIGHUP\)$)"
)
MAX_RSS_KB = 512 * 1024  # a CLI run that needs more has grown without bound
ADDRESS_SPACE_LIMIT = 3 * 1024**3  # beyond it the child gets MemoryError, not the machine
RUN_TIMEOUT = 40.0  # seconds; every case ends long before, a hang fails here
FIVE_MB = 5 * 1024 * 1024
HUGE_LINE = 4 * 1024 * 1024
LATIN1 = b"caf\xe9 au lait\n"  # "cafe" in Latin-1: byte 3 is not UTF-8
PARTIAL = "alpha beta gamma"  # what `stream_then` sends before its fault
HTML_PAGE = b"<html><head><title>Hotel WiFi</title></head><body>Log in</body></html>"
TTY_PROMPT = "› "
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
    """A scenario of the module's hostile server (route -> replies, given in turn)."""

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
    """One row of the matrix.

    ``{tmp}`` in ``argv``, ``env`` values and ``files`` is the case's directory, and
    ``{base_url}`` in ``env`` values the server's URL;
    ``files`` (relative path -> bytes) are written there before the run. The profile
    ``t`` (the default) points at ``server`` and sends ``ZEN_API_KEY``.
    """

    id: str
    argv: tuple[str, ...]
    server: Server = None
    exit: int = 0
    # The one ending line must match this (re.search); None: no such line at all.
    error: str | None = None
    stdout_has: tuple[str, ...] = ()
    stdout_is: str | None = None
    stderr_has: tuple[str, ...] = ()
    stderr_lacks: tuple[str, ...] = ()
    # Texts the newest conversation in the history must hold (in its messages' content
    # or error); None: not checked (the history is still read and shown, and must be safe).
    kept: tuple[str, ...] | None = None
    stdin: bytes = b""
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, bytes] = field(default_factory=dict)
    # None: the profile names no dialect (llmcli asks the server).
    dialect: Literal["zen", "llamacpp", "openai"] | None = "llamacpp"
    read_timeout: float = 10.0
    # Send this signal once stdout or stderr holds `signal_after` ("": once `stalls`
    # replies of the hostile server have sent everything before their stall).
    signal: int | None = None
    signal_after: str = ""
    stalls: int = 1
    stderr_limit: int = 16 * 1024
    # False when the case breaks the history on purpose (it is not read afterwards).
    history_readable: bool = True
    # Run in a pseudo-terminal; a chat there is sent each (line, text the screen then
    # shows) of `tty_script` in turn, then Ctrl-D.
    tty: bool = False
    tty_script: tuple[tuple[str, str], ...] = ()
    # Anything else to assert about the run.
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


def case(id: str, command: str, *, xfail: str | None = None, **fields: Any) -> Any:
    """A table row as a pytest param; ``xfail`` names the llmcli bug that makes it fail."""
    marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {xfail}")] if xfail else []
    row = FaultCase(id, tuple(shlex.split(command)), **fields)
    return pytest.param(row, id=id, marks=marks)


def on(route: str, *replies: Reply) -> Hostile:
    """A hostile server that scripts one route: ``replies`` in turn, the last repeating."""
    return Hostile({route: replies[0] if len(replies) == 1 else replies})


def stream_then(*tail: bytes | Pause | dict[str, Any] | str, **options: Any) -> Reply:
    """Three words of answer (``PARTIAL``), then ``tail``; no ``[DONE]`` unless asked."""
    options.setdefault("done", False)
    return sse_reply(chunk("alpha"), chunk(" beta"), chunk(" gamma"), *tail, **options)


def embeddings(count: int = 1, model: str = "m") -> Reply:
    data = [{"object": "embedding", "index": n, "embedding": [0.5, -0.25]} for n in range(count)]
    return json_reply(200, {"object": "list", "model": model, "data": data})


def text_chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    """A /v1/completions stream chunk."""
    return {"model": "m", "choices": [{"index": 0, "text": text, "finish_reason": finish}]}


TOOL_CALL = {
    "index": 0,
    "id": "call_1",
    "type": "function",
    "function": {"name": EVIL, "arguments": json.dumps({"x": EVIL})},
}
TOOL_CALLS = sse_reply(
    chunk(tool_calls=[TOOL_CALL], model=EVIL), chunk(finish="tool_calls", model=EVIL)
)
LLAMA_MODELS = {
    "object": "list",
    "data": [{"id": EVIL, "object": "model", "owned_by": "llamacpp", "meta": {"n_ctx": 2048}}],
}
ZEN_MODELS = {"object": "list", "data": [{"id": EVIL + "-free", "object": "model"}]}
NO_STREAM_EVIL = {
    "model": EVIL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": EVIL, "reasoning_content": EVIL},
            "finish_reason": "stop",
        }
    ],
}
MARKDOWN_EVIL = f"# Title {EVIL}\n\n- item `{EVIL}`\n\n```\n{EVIL}\n```\n\n[link]({EVIL}) end\n"
BENCH = "bench --requests 2 --warmup 0 --max-tokens 4 --out {tmp}/out.json"
SLOW_STREAM = Mock(MockConfig(itl=0.05, default_max_tokens=400))


USER_TOOLS = b"""
[tools.showenv]
description = "Print the environment"
command = ["env"]
parameters = { type = "object", properties = {} }
safe = true

[tools.forker]
description = "Start a background child and return at once"
command = ["sh", "-c", "sleep 60 & echo $! > child.pid; echo started"]
parameters = { type = "object", properties = {} }
safe = true
"""


def tool_call_reply(name: str) -> Reply:
    call = {"index": 0, "id": "call_1", "type": "function"}
    call["function"] = {"name": name, "arguments": "{}"}
    return sse_reply(chunk(tool_calls=[call]), chunk(finish="tool_calls"))


# -- checks some rows add ---------------------------------------------------------------------


def results(ok: int, failed: int = 0, cancelled: int = 0, **errors: int) -> Callable[[Run], None]:
    """bench wrote strict JSON results with every request counted: ``ok``, ``failed``,
    ``cancelled`` (an interrupted run: then it says so) and failures by kind (``http_500=2``)."""

    def check(run: Run) -> None:
        document = json.loads((run.tmp / "out.json").read_text(), parse_constant=_refuse)
        [profile] = document["profiles"]
        [level] = profile["levels"]
        summary = level["summary"]
        counted = (summary["ok"], summary["failed"], summary["cancelled"], summary["errors"])
        assert counted == (ok, failed, cancelled, errors)
        assert document["interrupted"] == bool(cancelled)

    return check


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} in a results file that must be strict JSON")


def json_stdout(**expected: Any) -> Callable[[Run], None]:
    """stdout is one JSON object holding ``expected``."""

    def check(run: Run) -> None:
        document = json.loads(run.stdout)
        for key, value in expected.items():
            assert document[key] == value, (key, document[key])

    return check


def model_ids_intact(run: Run) -> None:
    """``models --json`` keeps an id exactly (escaped as JSON, not altered)."""
    ids = [model["id"] for model in json.loads(run.stdout)]
    assert ids and ids[0].startswith(EVIL), ids


def chat_requests(count: int) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        sent = [r for r in run.requests if r[1] == "chat"]
        assert len(sent) == count, f"{len(sent)} requests, not {count}"

    return check


def tool_result_sent(text: str) -> Callable[[Run], None]:
    """The tool ran and its output went back to the model (the second request)."""

    def check(run: Run) -> None:
        chats = [body for _, route, _, body in run.requests if route == "chat"]
        assert len(chats) == 2, f"{len(chats)} requests"
        messages = json.loads(chats[1])["messages"]
        assert messages[-1]["role"] == "tool" and text in messages[-1]["content"], messages[-1]

    return check


def background_child_gone(run: Run) -> None:
    """The child a tool left behind was killed with the tool's process group."""
    pid = int((run.tmp / "child.pid").read_text())
    for _ in range(100):  # bounded: up to 2 s for the kill to land
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
            return  # killed, waiting for its reaper
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    raise AssertionError(f"the tool's child {pid} is still running")


def no_request(run: Run) -> None:
    assert run.requests == [], "a request was sent for input that should have been refused"


def no_retry_notice(run: Run) -> None:
    assert "again" not in run.stderr and "retry" not in run.stderr, run.stderr


def stored_error_capped(run: Run) -> None:
    conversation = newest_conversation(run.env)
    assert conversation is not None
    reply = conversation["messages"][-1]
    assert reply["error"] and len(reply["error"]) < 16 * 1024, len(reply["error"] or "")


def ndjson_ids(*ids: int) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert [json.loads(line)["id"] for line in run.stdout.splitlines()] == list(ids)

    return check


def content_size(size: int) -> Callable[[Run], None]:
    def check(run: Run) -> None:
        assert len(json.loads(run.stdout)["content"]) == size

    return check


# -- the matrix -------------------------------------------------------------------------------

CASES = [
    # --- complete: escape sequences in every field it shows ---------------------------------
    case(
        "complete-esc-content",
        "complete hi",
        server=on("chat", answer(EVIL + " tail")),
        stdout_has=(SHOWN,),
        kept=("hi", EVIL),
    ),
    case(
        "complete-esc-reasoning",
        "complete hi",
        server=on("chat", answer("fine", reasoning=EVIL)),
        stdout_is="fine\n",
        stderr_has=(SHOWN,),
    ),
    case(
        "complete-esc-model-json",
        "complete hi --json",
        server=on("chat", answer("fine", model=EVIL)),
        extra=json_stdout(content="fine", model=EVIL),
    ),
    case(
        "complete-esc-reasoning-field",  # some upstreams say `reasoning`, not `_content`
        "complete hi",
        server=on(
            "chat",
            sse_reply(
                {"choices": [{"index": 0, "delta": {"reasoning": EVIL}}]},
                chunk("ok", finish="stop"),
            ),
        ),
        stdout_is="ok\n",
        stderr_has=(SHOWN,),
    ),
    case(
        "complete-esc-tool-call-json",
        "complete hi --json",
        server=on("chat", TOOL_CALLS),
        extra=json_stdout(finish_reason="tool_calls"),
    ),
    case(
        "complete-esc-no-stream",
        "complete hi --no-stream",
        server=on("chat", json_reply(200, NO_STREAM_EVIL)),
        stdout_has=(SHOWN,),
        stderr_has=(SHOWN,),
    ),
    case(
        "complete-esc-text-completion",
        "complete --text once",
        server=on("text", sse_reply(text_chunk(EVIL), text_chunk("", "stop"))),
        stdout_has=(SHOWN,),
    ),
    case(
        "complete-esc-error-openai-400",
        "complete hi",
        server=on("chat", error_reply(400, EVIL)),
        exit=3,
        error=r"HTTP 400.*␛\]0;pwned",
        kept=("hi",),
    ),
    case(
        "complete-esc-error-zen-500",
        "complete hi",
        dialect="zen",
        server=on("chat", zen_error_reply(500, EVIL, "ServerError")),
        exit=3,
        error=r"HTTP 500.*␛\[2J",
    ),
    case(
        "complete-esc-error-midstream",
        "complete hi",
        server=on("chat", stream_then({"error": {"code": 500, "message": EVIL}})),
        exit=3,
        error=r"mid-answer.*␛\]52",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    case(
        "complete-esc-error-html-502",
        "complete hi",
        server=on("chat", html_reply(502, b"<h1>" + EVIL.encode() + b"</h1>")),
        exit=3,
        error=r"HTTP 502: HTML page: ␛",
        stderr_has=("(4 of 4)",),  # every attempt's notice neutralised too
        extra=chat_requests(4),
    ),
    # --- complete: statuses ------------------------------------------------------------------
    case(
        "complete-401-llamacpp",
        "complete hi",
        server=on("chat", error_reply(401, "Invalid API Key", "authentication_error")),
        exit=3,
        error=r"HTTP 401",
        extra=chat_requests(1),
    ),
    case(
        "complete-401-zen-says-which-key",
        "complete hi",
        dialect="zen",
        server=on("chat", zen_error_reply(401, "bad key", "AuthError")),
        exit=3,
        error=r"HTTP 401.*ZEN_API_KEY",
        extra=chat_requests(1),
    ),
    case(
        "complete-401-key-echoed-back",
        "complete hi",
        dialect="zen",
        server=on("chat", zen_error_reply(401, f"unknown key {ZEN_KEY}", "AuthError")),
        exit=3,
        error=r"HTTP 401",
    ),
    case(
        "complete-402-zen",
        "complete hi",
        dialect="zen",
        server=on("chat", zen_error_reply(402, "no credits", "CreditsError")),
        exit=3,
        error=r"HTTP 402.*no credits",
    ),
    case(
        "complete-403-zen",
        "complete hi",
        dialect="zen",
        server=on("chat", zen_error_reply(403, "not in your region", "ForbiddenError")),
        exit=3,
        error=r"HTTP 403.*not in your region",
    ),
    case(
        "complete-404",
        "complete hi",
        server=on("chat", error_reply(404, "File Not Found", "not_found_error")),
        exit=3,
        error=r"HTTP 404",
    ),
    case(
        "complete-429-zen-retry-after",
        "complete hi",
        dialect="zen",
        server=on("chat", zen_error_reply(429, "slow down", retry_after="3600")),
        exit=3,
        error=r"HTTP 429.*retry after 3600 s",
        extra=chat_requests(1),
    ),
    case(
        "complete-429-zen-free-tier-hint",
        "complete hi",
        dialect="zen",
        # Retried once (the notice gives the hint), then told to wait an hour.
        server=on(
            "chat",
            zen_error_reply(429, "daily limit"),
            zen_error_reply(429, "daily limit", retry_after="3600"),
        ),
        exit=3,
        error=r"HTTP 429.*retry after 3600 s",
        stderr_has=("zen's free tier resets at 00:00 UTC; trying again in",),
        extra=chat_requests(2),
    ),
    case(
        "complete-429-llamacpp-retry-after",
        "complete hi",
        server=on("chat", error_reply(429, "busy", retry_after="3600")),
        exit=3,
        error=r"HTTP 429.*retry after 3600 s",
        stderr_lacks=("zen",),
    ),
    case(
        "complete-429-llamacpp-no-zen-hint",
        "complete hi",
        server=on("chat", error_reply(429, "busy"), error_reply(429, "busy", retry_after="3600")),
        exit=3,
        error=r"HTTP 429",
        stderr_has=("trying again in",),
        stderr_lacks=("zen",),
        extra=chat_requests(2),
    ),
    case(
        "complete-500",
        "complete hi",
        server=on("chat", error_reply(500, "boom", "server_error")),
        exit=3,
        error=r"HTTP 500.*boom",
        kept=("hi", "boom"),
    ),
    case(
        "complete-503-loading-then-ready",
        "complete hi",
        server=on("chat", error_reply(503, "Loading model", "unavailable_error"), answer("ok")),
        stdout_is="ok\n",
        stderr_has=("HTTP 503: Loading model", "trying again in"),
        extra=chat_requests(2),
    ),
    case(
        "complete-200-html-captive-portal",
        "complete hi",
        server=on("chat", html_reply(200, HTML_PAGE)),
        exit=3,
        error=r"text/html.*Hotel WiFi",
        stderr_lacks=("cut short",),
        stdout_is="",
    ),
    case(
        "complete-307-redirect",
        "complete hi",
        server=on("chat", html_reply(307, b"", headers=(("location", "http://127.0.0.1:9/x"),))),
        exit=3,
        error=r"307.*redirects to",
        stderr_lacks=("cut short",),
        stdout_is="",
    ),
    case(
        "complete-307-location-with-c1",  # a header llmcli shows; obs-text passes HTTP parsers
        "complete hi",
        server=on(
            "chat", html_reply(307, b"", headers=(("location", "http://127.0.0.1:9/\x9b31m\xe9"),))
        ),
        exit=3,
        error=r"307.*redirects to",
    ),
    case(
        "complete-200-content-type-with-c1",
        "complete hi",
        server=on(
            "chat",
            Reply(
                headers=(("content-type", "text/plain\x9b31m"),), body=(b"hello",), framing="length"
            ),
        ),
        exit=3,
        error=r".",
        stdout_is="",
    ),
    case(
        "complete-429-retry-after-with-c1",
        "complete hi",
        server=on(
            "chat",
            Reply(
                429,
                "Too Many Requests",
                (("content-type", "application/json"), ("retry-after", "\x9b31m3600")),
                (b"{}",),
                "length",
            ),
            error_reply(429, "busy", retry_after="3600"),
        ),
        exit=3,
        error=r"HTTP 429",
        extra=chat_requests(2),
    ),
    case(
        "complete-no-stream-200-error",
        "complete hi --no-stream",
        server=on("chat", error_reply(200, "model crashed")),
        exit=3,
        error=r"200 with an error: model crashed",
        kept=("hi", "model crashed"),
    ),
    case(
        "complete-no-stream-json-200-zen-error",
        "complete hi --no-stream --json",
        dialect="zen",
        server=on("chat", zen_error_reply(200, "upstream failed", "ServerError")),
        exit=3,
        error=r"upstream failed",
        extra=json_stdout(content=""),
        stdout_has=('"error": "the server answered 200 with an error: upstream failed',),
    ),
    # --- complete: broken streams ------------------------------------------------------------
    case(
        "complete-malformed-sse",
        "complete hi",
        server=on("chat", stream_then("this is {not json", chunk(" more"), done=True)),
        exit=3,
        error=r"malformed data",
        stdout_has=(PARTIAL,),
        kept=(PARTIAL,),
    ),
    case(
        "complete-cut-mid-stream",
        "complete hi",
        server=on("chat", stream_then(ending="cut")),
        exit=3,
        error=r"lost mid-answer",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    case(
        "complete-content-length-lie",
        "complete hi",
        server=on(
            "chat",
            Reply(
                headers=(("content-type", "text/event-stream"),),
                body=(sse_frame(chunk(PARTIAL)),),
                framing="length",
                declared_length=100_000,
                ending="cut",
            ),
        ),
        exit=3,
        error=r"lost mid-answer",
        stdout_has=(PARTIAL,),
        kept=(PARTIAL,),
    ),
    case(
        "complete-no-finish-no-done",
        "complete hi",
        server=on("chat", stream_then()),
        exit=3,
        error=r"cut short",
        stdout_has=(PARTIAL,),
        kept=(PARTIAL,),
    ),
    case(
        "complete-finish-without-done",
        "complete hi",
        server=on("chat", stream_then(chunk(finish="stop"))),
        stdout_is=PARTIAL + "\n",
        kept=(PARTIAL,),
    ),
    case(
        "complete-stall-after-tokens",
        "complete hi",
        read_timeout=1,
        server=on("chat", stream_then(ending="stall")),
        exit=4,
        error=r"stalled mid-answer",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    case(
        "complete-json-stall-keeps-partial",
        "complete hi --json",
        read_timeout=1,
        server=on("chat", stream_then(ending="stall")),
        exit=4,
        error=r"stalled mid-answer",
        extra=json_stdout(content=PARTIAL),
        stdout_has=('"error": ',),
    ),
    case(
        "complete-stall-before-any-byte",
        "complete hi",
        read_timeout=1,
        server=on("chat", stall_reply()),
        exit=4,
        error=r"stalled before answering",
        stdout_is="",
        kept=("hi",),
    ),
    case(
        "complete-stall-after-headers",
        "complete hi",
        read_timeout=1,
        server=on("chat", stall_reply(headless=False)),
        exit=4,
        error=r"stalled",
        stdout_is="",
    ),
    case(
        "complete-5mb-error-message",
        "complete hi",
        server=on("chat", error_reply(500, "x" * FIVE_MB)),
        exit=3,
        error=r"HTTP 500: xxx",
        stderr_limit=4096,
        extra=stored_error_capped,
    ),
    case(
        "complete-5mb-error-midstream",
        "complete hi",
        server=on("chat", stream_then({"error": {"message": "y" * FIVE_MB}})),
        exit=3,
        error=r"mid-answer: yyy",
        stderr_limit=4096,
        stdout_has=(PARTIAL,),
        extra=stored_error_capped,
    ),
    case(
        "complete-huge-sse-line",
        "complete hi --json",
        server=on("chat", sse_reply(chunk("z" * HUGE_LINE), chunk(finish="stop"))),
        extra=content_size(HUGE_LINE),
    ),
    case(
        "complete-gzip-stream",
        "complete hi",
        server=on(
            "chat",
            sse_reply(chunk("squeezed"), Pause(0.05), chunk(" words"), encoding="gzip"),
        ),
        stdout_is="squeezed words\n",
    ),
    case(
        "complete-deflate-stream",
        "complete hi",
        server=on(
            "chat",
            sse_reply(chunk("deflated"), Pause(0.05), chunk(" words"), encoding="deflate"),
        ),
        stdout_is="deflated words\n",
    ),
    case(
        "complete-gzip-cut-mid-stream",
        "complete hi",
        server=on("chat", stream_then(ending="cut", encoding="gzip")),
        exit=3,
        error=r"lost mid-answer",
        stdout_has=(PARTIAL,),
        kept=(PARTIAL,),
    ),
    case(
        "complete-dead-server",
        "complete hi",
        server=Dead(),
        exit=3,
        error=r"cannot reach .*connection refused",
        stdout_is="",
        extra=no_retry_notice,
    ),
    # --- complete: signals mid-stream (a few tokens, then the server stalls) -------------------
    *(
        case(
            f"complete-{name}-mid-stream",
            "complete hi",
            server=on("chat", stream_then(ending="stall")),
            signal=signum,
            signal_after=PARTIAL,
            exit=code,
            error=said,
            stdout_has=(PARTIAL,),
            kept=("hi", PARTIAL),
        )
        for name, signum, code, said in (
            ("sigint", signal.SIGINT, 130, "interrupted"),
            ("sigterm", signal.SIGTERM, 143, r"terminated \(SIGTERM\)"),
            ("sighup", signal.SIGHUP, 129, r"hung up \(SIGHUP\)"),
        )
    ),
    # --- complete: bad input --------------------------------------------------------------------
    case(
        "complete-latin1-stdin",
        "complete",
        server=on("chat", answer("ok")),
        stdin=LATIN1,
        stdout_is="ok\n",
        stderr_has=("llmcli: warning: stdin is not UTF-8 (first bad byte at offset 3)",),
        kept=("caf\ufffd au lait",),
    ),
    case(
        "complete-binary-stdin",
        "complete",
        server=on("chat", answer("ok")),
        stdin=b"\xff\xfe\x00\x01\x1b[2J\x80\n",
        stdout_is="ok\n",
        stderr_has=("first bad byte at offset 0",),
    ),
    case(
        "complete-max-input-exceeded",
        "complete summarise",
        server=on("chat", answer("never")),
        stdin=b"a" * 5000,
        env={"LLMCLI_MAX_INPUT": "1K"},
        exit=2,
        error=r"more than 1 KiB.*LLMCLI_MAX_INPUT",
        stdout_is="",
        extra=no_request,
    ),
    *(
        case(
            f"complete-{option.strip('-')}-{value}",
            f"complete hi {option} {value}",
            server=on("chat", answer("never")),
            exit=2,
            error=rf"^llmcli: error: {option} {value}",
            extra=no_request,
        )
        for option, value in (
            ("--temperature", "nan"),
            ("--temperature", "inf"),
            ("--temperature", "-1"),
            ("--top-p", "2"),
            ("--max-tokens", "0"),
        )
    ),
    case(
        "complete-backend-url-newline",
        "complete hi",
        env={"BACKEND_URL": "http://127.0.0.1:9/v1\nX-Injected: 1"},
        exit=2,
        error=r"BACKEND_URL: .* control characters",
    ),
    case(
        "complete-backend-url-spaces",
        "complete hi",
        env={"BACKEND_URL": "http://127.0.0.1:9/v1 extra words"},
        exit=2,
        error=r"BACKEND_URL: .*has spaces",
    ),
    case("complete-no-prompt", "complete", exit=2, error=r"no prompt"),
    case(
        "complete-grammar-missing-file",
        "complete hi --grammar {tmp}/none.gbnf",
        server=on("chat", answer("never")),
        exit=2,
        error=r"none\.gbnf: no such file",
    ),
    case(
        "complete-text-zen-has-none",
        "complete --text hi",
        dialect="zen",
        server=Hostile({}),
        exit=2,
        error=r"(?i)zen",
    ),
    # --- slots and serve -------------------------------------------------------------------------
    case(
        "slots-esc-list",
        "slots list",
        server=on(
            "slots",
            json_reply(200, [{"id": 0, "n_ctx": 2048, "is_processing": False, "id_task": EVIL}]),
        ),
        stdout_is="slot 0  n_ctx 2048  idle  task -  prompt -\n",
    ),
    case(
        "slots-esc-save",
        "slots save snap",
        server=Hostile(
            {
                "slots": (
                    json_reply(200, [{"id": 0, "n_ctx": 2048, "is_processing": False}]),
                    json_reply(200, {"id_slot": 0, "filename": EVIL, "n_saved": 3}),
                ),
                "props": json_reply(200, {"build_info": "b1"}),
            }
        ),
    ),
    case(
        "slots-esc-error",
        "slots list",
        server=on("slots", error_reply(501, EVIL, "not_supported_error")),
        exit=2,
        error=r"does not expose /slots",
    ),
    case(
        "slots-zen-has-none",
        "slots list",
        dialect="zen",
        server=Hostile({}),
        exit=2,
        error=r"(?i)llama",
    ),
    case("serve-not-a-spawn-profile", "serve t", server=Hostile({}), exit=2, error=r"."),
    # --- profiles and configuration ---------------------------------------------------------------
    case(
        "config-broken-toml",
        "complete hi",
        files={"profiles.toml": b"[profiles.x\nbase_url = 1\n"},
        exit=2,
        error=r"profiles\.toml: line 1, column \d+",
    ),
    case(
        "config-unknown-profile",
        "complete -p nope hi",
        exit=2,
        error=r"unknown profile 'nope'; known: ",
    ),
    case(
        "config-unknown-profile-from-env",
        "complete hi",
        env={"LLMCLI_PROFILE": "nope"},
        exit=2,
        error=r"unknown profile 'nope'",
    ),
    case(
        "config-unknown-field",
        "complete hi",
        files={
            "profiles.toml": b'[profiles.t]\nbase_url = "http://127.0.0.1:9/v1"\nbase_ulr = 1\n'
        },
        exit=2,
        error=r"unknown field 'base_ulr'",
    ),
    case(
        "config-latin1-toml",
        "profiles list",
        files={"profiles.toml": b'[profiles.t]\nbase_url = "http://caf\xe9/v1"\n'},
        exit=2,
        error=r"not UTF-8",
    ),
    case(
        "config-escapes-in-toml",
        "profiles list",
        files={
            "profiles.toml": b'[profiles.t]\nbase_url = "http://x/v1"\nmodel = "\\u001b]0;pwned\\u0007"\n'
        },
    ),
    case(
        "profiles-show-never-prints-key", "profiles show zen", stdout_has=("set (env ZEN_API_KEY)",)
    ),
    case("profiles-list", "profiles list", stdout_has=("zen", "local")),
    case(
        "profiles-add-bad-url",
        "profiles add x --url 'not a url'",
        exit=2,
        error=r"'not a url' has spaces",
    ),
    # --- chat, stdin piped: one message a line ----------------------------------------------------
    case(
        "chat-esc-content-and-model",
        "chat",
        server=on("chat", answer(EVIL, model=EVIL)),
        stdin=b"hi\n",
        stdout_has=(SHOWN,),
        kept=("hi", EVIL),
    ),
    case(
        "chat-esc-reasoning",
        "chat --reasoning show",
        server=on("chat", answer("ok", reasoning=EVIL)),
        stdin=b"hi\n",
        stdout_is="ok\n",
        stderr_has=(SHOWN,),
    ),
    case(
        "chat-esc-error-500",
        "chat",
        server=on("chat", error_reply(500, EVIL)),
        stdin=b"hi\n",
        exit=1,
        error=r"HTTP 500.*␛",
    ),
    case(
        "chat-cut-mid-stream",
        "chat",
        server=on("chat", stream_then(ending="cut")),
        stdin=b"hi\n",
        exit=1,
        error=r"lost mid-answer",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    case(
        "chat-stall-after-tokens",
        "chat",
        read_timeout=1,
        server=on("chat", stream_then(ending="stall")),
        stdin=b"hi\n",
        exit=1,
        error=r"stalled mid-answer",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    case(
        "chat-gzip-stream",
        "chat",
        server=on(
            "chat", sse_reply(chunk("squeezed"), Pause(0.05), chunk(" words"), encoding="gzip")
        ),
        stdin=b"hi\n",
        stdout_is="squeezed words\n",
    ),
    case(
        "chat-latin1-stdin",
        "chat",
        server=on("chat", answer("ok")),
        stdin=LATIN1,
        stdout_is="ok\n",
        stderr_has=("first bad byte at offset 3",),
        kept=("caf\ufffd",),
    ),
    case(
        "chat-two-messages-one-fails",
        "chat",
        server=on("chat", error_reply(500, "first fails"), answer("second ok")),
        stdin=b"one\ntwo\n",
        exit=1,
        error=r"first fails",
        stdout_is="second ok\n",
        kept=("one", "two", "second ok"),
    ),
    *(
        case(
            f"chat-{name}-mid-stream",
            "chat",
            server=on("chat", stream_then(ending="stall")),
            stdin=b"hi\n",
            signal=signum,
            signal_after=PARTIAL,
            exit=code,
            error=said,
            stdout_has=(PARTIAL,),
            kept=("hi", PARTIAL),
        )
        for name, signum, code, said in (
            ("sigterm", signal.SIGTERM, 143, r"terminated \(SIGTERM\)"),
            ("sighup", signal.SIGHUP, 129, r"hung up \(SIGHUP\)"),
        )
    ),
    case(
        "chat-sigint-mid-stream",
        "chat",
        server=on("chat", stream_then(ending="stall")),
        stdin=b"hi\n",
        signal=signal.SIGINT,
        signal_after=PARTIAL,
        exit=130,
        error=r"interrupted",
        stdout_has=(PARTIAL,),
        kept=("hi", PARTIAL),
    ),
    # --- a terminal (pty): where colour and markdown are drawn -----------------------------------
    case(
        "tty-chat-esc-stats-line-and-reasoning",
        "chat",
        tty=True,
        tty_script=(("hi", "TTFT"),),
        server=on("chat", answer(EVIL, model=EVIL, reasoning=EVIL)),
        stdout_has=("␛]0;pwned",),
        kept=("hi", EVIL),
    ),
    case(
        "tty-chat-esc-error",
        "chat",
        tty=True,
        tty_script=(("hi", "HTTP 500"),),
        server=on("chat", error_reply(500, EVIL)),
        stdout_has=("HTTP 500", "␛]0;pwned"),
    ),
    case(
        "tty-complete-esc-markdown",
        "complete hi",
        tty=True,
        server=on("chat", answer(MARKDOWN_EVIL, model=EVIL, reasoning=EVIL)),
        stdout_has=("Title", "␛]0;pwned"),
    ),
    case(
        "tty-tools-demo-esc-step-line",
        "tools-demo 'use a tool' --max-steps 2",
        tty=True,
        server=on("chat", TOOL_CALLS, answer("done", model=EVIL)),
        stdout_has=("done", "step 1", "␛]0;pwned"),
    ),
    case(
        "tty-models-esc-table",
        "models",
        tty=True,
        server=on("models", json_reply(200, LLAMA_MODELS)),
        stdout_has=("␛]0;pwned",),
    ),
    # --- embed ---------------------------------------------------------------------------------
    case(
        "embed-esc-error-400",
        "embed one",
        server=on("embeddings", error_reply(400, EVIL)),
        exit=3,
        error=r"HTTP 400.*␛",
    ),
    case(
        "embed-200-html",
        "embed one",
        server=on("embeddings", html_reply(200, HTML_PAGE)),
        exit=3,
        error=r"not JSON: HTML page: Hotel WiFi",
    ),
    case(
        "embed-malformed-json",
        "embed one",
        server=on("embeddings", Reply(body=(b'{"data": [{"embedding": [0.1, ',), framing="length")),
        exit=3,
        error=r"not JSON",
    ),
    case(
        "embed-stall-before-any-byte",
        "embed one",
        read_timeout=1,
        server=on("embeddings", stall_reply()),
        exit=4,
        error=r"stalled",
        stdout_is="",
    ),
    case(
        "embed-stall-keeps-finished",
        "embed one two --batch-size 1 --concurrency 1",
        read_timeout=1,
        server=on("embeddings", embeddings(), stall_reply()),
        exit=4,
        error=r"stopped after 1 of 2 texts: .*stalled",
        extra=ndjson_ids(1),
    ),
    case(
        "embed-sigterm-keeps-finished",
        "embed one two --batch-size 1 --concurrency 1",
        server=on("embeddings", embeddings(), stall_reply()),
        signal=signal.SIGTERM,
        exit=143,
        error=r"stopped after 1 of 2 texts: terminated \(SIGTERM\)",
        extra=ndjson_ids(1),
    ),
    case(
        "embed-sigint-keeps-finished",
        "embed one two --batch-size 1 --concurrency 1",
        server=on("embeddings", embeddings(), stall_reply()),
        signal=signal.SIGINT,
        exit=130,
        error=r"stopped after 1 of 2 texts: interrupted",
        extra=ndjson_ids(1),
    ),
    case(
        "embed-nan-in-vector",
        "embed one",
        server=on(
            "embeddings",
            Reply(body=(b'{"data": [{"index": 0, "embedding": [NaN, 1.0]}]}',), framing="length"),
        ),
        exit=3,
        error=r".",
        stdout_is="",
    ),
    case(
        "embed-zen-has-none",
        "embed one",
        dialect="zen",
        server=Hostile({}),
        exit=2,
        error=r"zen has no /embeddings",
    ),
    case(
        "embed-latin1-stdin-real-server",
        "embed",
        server=Llama("llama_embed"),
        stdin=LATIN1,
        stderr_has=("first bad byte at offset 3",),
        stdout_has=('"text": "caf\ufffd au lait"',),
    ),
    case(
        "embed-two-texts-real-server",
        "embed first second",
        server=Llama("llama_embed"),
        extra=ndjson_ids(1, 2),
    ),
    # --- tools-demo ------------------------------------------------------------------------------
    case(
        "tools-demo-esc-tool-call-and-model",
        "tools-demo 'use a tool' --max-steps 2",
        server=on("chat", TOOL_CALLS, answer("done", model=EVIL)),
        stdout_is="done\n",
        stderr_has=("step 1 · " + SHOWN, "no tool named"),
        extra=chat_requests(2),
    ),
    case(
        "tools-demo-esc-error-500",
        "tools-demo 'use a tool'",
        server=on("chat", error_reply(500, EVIL)),
        exit=3,
        error=r"HTTP 500.*␛",
    ),
    case(
        "tools-demo-latin1-stdin",
        "tools-demo",
        server=on("chat", answer("ok")),
        stdin=LATIN1,
        stdout_is="ok\n",
        stderr_has=("first bad byte at offset 3",),
    ),
    case(
        "tools-demo-stall-after-tokens",
        "tools-demo go",
        read_timeout=1,
        server=on("chat", stream_then(ending="stall")),
        exit=4,
        error=r"stalled mid-answer",
        stdout_has=(PARTIAL,),
    ),
    case(
        "tools-demo-sigterm-mid-stream",
        "tools-demo go",
        server=on("chat", stream_then(ending="stall")),
        signal=signal.SIGTERM,
        signal_after=PARTIAL,
        exit=143,
        error=r"SIGTERM",
        stdout_has=(PARTIAL,),
    ),
    # --- models ------------------------------------------------------------------------------
    case(
        "models-esc-ids-table",
        "models",
        server=on("models", json_reply(200, LLAMA_MODELS)),
        stdout_has=(SHOWN,),
    ),
    case(
        "models-esc-ids-json",
        "models --json",
        server=on("models", json_reply(200, LLAMA_MODELS)),
        extra=model_ids_intact,
    ),
    case(
        "models-esc-ids-zen-table",
        "models",
        dialect="zen",
        server=on("models", json_reply(200, ZEN_MODELS)),
        stdout_has=(SHOWN + "-free",),
    ),
    case(
        "models-esc-error-401",
        "models",
        server=on("models", error_reply(401, EVIL)),
        exit=3,
        error=r"HTTP 401.*␛",
    ),
    case(
        "models-html-200",
        "models",
        server=on("models", html_reply(200, HTML_PAGE)),
        exit=3,
        error=r"not JSON: HTML page",
    ),
    case(
        "models-not-json",
        "models",
        server=on("models", Reply(body=(b"{nope",), framing="length")),
        exit=3,
        error=r"not JSON",
    ),
    case(
        "models-wrong-shape",
        "models --json",
        server=on("models", json_reply(200, {"data": "not a list"})),
        exit=3,
        error=r".",
    ),
    case("models-dead-server", "models", server=Dead(), exit=3, error=r"cannot reach"),
    # --- health -------------------------------------------------------------------------------
    case(
        "health-esc-detail",
        "health",
        server=on("health", error_reply(503, EVIL, "unavailable_error")),
        exit=1,
        stdout_has=("not ready: " + SHOWN,),
    ),
    case(
        "health-esc-detail-json",
        "health --json",
        server=on("health", error_reply(503, EVIL, "unavailable_error")),
        exit=1,
        extra=json_stdout(reachable=True, ready=False, detail=EVIL),
    ),
    case(
        "health-esc-models-fallback",
        "health",
        dialect="openai",
        server=on("models", error_reply(500, EVIL)),
        exit=1,
        stdout_has=("not ready: HTTP 500: " + SHOWN,),
    ),
    case(
        "health-dead-json",
        "health --json",
        server=Dead(),
        exit=3,
        error=r"cannot reach",
        extra=json_stdout(reachable=False, ready=False),
    ),
    case(
        "health-ok",
        "health",
        server=on("health", json_reply(200, {"status": "ok"})),
        stdout_has=("ready: ok",),
    ),
    case(
        "health-stall-json",
        "health --json",
        read_timeout=1,
        server=on("health", stall_reply()),
        exit=4,
        error=r"stalled",
        extra=json_stdout(ready=False),
    ),
    # --- history ----------------------------------------------------------------------------
    case("history-show-unknown-id", "history show zzzz", exit=2, error=r"no conversation 'zzzz'"),
    case(
        "history-export-unknown-id",
        "history export --json zzzz",
        exit=2,
        error=r"no conversation 'zzzz'",
    ),
    case(
        "history-corrupt-database",
        "history list",
        files={"data/history.db": b"this is not a database" * 100},
        exit=1,
        error=r"history database .* is unreadable.*move it aside",
        history_readable=False,
    ),
    case("history-list-empty-json", "history list --json", stdout_is="[]\n"),
    # --- bench --------------------------------------------------------------------------------
    case(
        "bench-huge-concurrency",
        "bench --concurrency 99999999999 --requests 2 --out {tmp}/out.json",
        server=Mock(MockConfig()),
        exit=2,
        error=r"--concurrency 99999999999: use a whole number from 1 to",
    ),
    case(
        "bench-rate-nan",
        "bench --rate nan --requests 2 --out {tmp}/out.json",
        server=Mock(MockConfig()),
        exit=2,
        error=r"--rate nan",
    ),
    case(
        "bench-prompts-latin1",
        "bench --prompts {tmp}/latin1.txt --requests 2 --out {tmp}/out.json",
        files={"latin1.txt": LATIN1},
        server=Mock(MockConfig()),
        exit=2,
        error=r"latin1\.txt: not UTF-8 \(byte 0xe9 at offset 3\)",
    ),
    case(
        "bench-mock-ok",
        BENCH,
        dialect="zen",
        server=Mock(MockConfig()),
        extra=results(ok=2),
    ),
    case(
        "bench-mock-500s-counted",
        BENCH,
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(status_500=1.0))),
        stderr_has=("2 requests, 2 failed",),
        exit=1,
        error=r"no successful request from profile t \(every request failed",
        extra=results(ok=0, failed=2, http_500=2),
    ),
    case(
        "bench-hostile-esc",
        BENCH,
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
        BENCH,
        server=on("chat", error_reply(500, EVIL)),
        stderr_has=("2 requests, 2 failed",),
        exit=1,
        error=r"no successful request from profile t \(every request failed",
        extra=results(ok=0, failed=2, http_500=2),
    ),
    case(
        "bench-gzip-stream",
        BENCH,
        server=on(
            "chat", sse_reply(chunk("a"), chunk(" b"), chunk(finish="stop"), encoding="gzip")
        ),
        extra=results(ok=2),
    ),
    # As many answers as streams, then every request stalls. Each level has far more
    # requests than streams, so every stream keeps sending until it holds a stalled
    # request; once all do, every answered request has finished on the client.
    *(
        case(
            f"bench-{name}-keeps-finished",
            BENCH.replace("--requests 2", f"--requests 64 --concurrency {streams} {workers}"),
            server=on("chat", *[answer("a b c")] * streams, stall_reply()),
            signal=signum,
            stalls=streams,
            exit=128 + signum,
            error=said,
            stderr_has=("(interrupted run)",),
            extra=results(ok=streams, cancelled=streams),
        )
        for name, streams, workers, signum, said in (
            ("sigterm", 2, "", signal.SIGTERM, "SIGTERM"),
            ("sighup", 2, "", signal.SIGHUP, "SIGHUP"),
            ("sigint", 2, "", signal.SIGINT, "interrupted"),
            ("sigint-workers", 8, "--workers 2", signal.SIGINT, "interrupted"),
            ("sigterm-workers", 8, "--workers 2", signal.SIGTERM, "SIGTERM"),
        )
    ),
    case(
        "bench-stall-mid-stream-is-timeout",
        BENCH,
        read_timeout=1,
        server=on("chat", stream_then(ending="stall")),
        stderr_has=("2 requests, 2 failed",),
        exit=1,
        error=r"no successful request from profile t \(every request failed",
        extra=results(ok=0, failed=2, timeout=2),
    ),
    case(
        "bench-check-damaged-files",
        "bench check {tmp}/run.json {tmp}/log.jsonl",
        files={"run.json": b"\xff\xfe not json", "log.jsonl": b'{"half": \n\xe9\n'},
        exit=2,
        error=r"run\.json",
    ),
    case(
        "bench-compare-damaged-files",
        "bench compare {tmp}/a.json {tmp}/b.json",
        files={"a.json": b'{"format": "llmcli-bench/1"', "b.json": b"[]"},
        exit=2,
        error=r"a\.json",
    ),
    # --- tools a user adds: no keys for them, nothing left running ---------------------------
    case(
        "tools-demo-user-tool-sees-no-keys",
        "tools-demo 'show env' --tools {tmp}/tools.toml --tool showenv",
        files={"tools.toml": USER_TOOLS},
        server=on("chat", tool_call_reply("showenv"), answer("done")),
        stdout_is="done\n",
        extra=tool_result_sent("PATH="),
    ),
    case(
        "tools-demo-user-tool-leaves-a-child",
        "tools-demo 'fork' --tools {tmp}/tools.toml --tool forker",
        files={"tools.toml": USER_TOOLS},
        server=on("chat", tool_call_reply("forker"), answer("done")),
        stdout_is="done\n",
        extra=background_child_gone,
    ),
    # --- big input: capped, memory bounded -----------------------------------------------------
    case(
        "complete-20mb-stdin-over-default-cap",
        "complete summarise",
        server=on("chat", answer("never")),
        stdin=b"x" * (20 * 1024 * 1024),
        exit=2,
        error=r"more than 8 MiB.*LLMCLI_MAX_INPUT",
        extra=no_request,
    ),
    case(
        "complete-4mb-stdin-within-cap",
        "complete summarise --no-log",
        server=on("chat", answer("ok")),
        stdin=b"x" * (4 * 1024 * 1024),
        stdout_is="ok\n",
    ),
    # --- llmcli's own mock server's faults -------------------------------------------------
    case(
        "mock-reset-mid-stream",
        "complete hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(reset=1.0, reset_after_tokens=3))),
        exit=3,
        error=r"lost mid-answer",
        stdout_has=(" lorem ipsum dolor",),
        kept=(" lorem ipsum dolor",),
    ),
    case(
        "mock-error-event",
        "complete hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(error_event=1.0, error_after_tokens=2))),
        exit=3,
        error=r"server error mid-answer",
        stdout_has=(" lorem ipsum",),
        kept=(" lorem ipsum",),
    ),
    case(
        "mock-malformed-frame",
        "complete hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(malformed=1.0))),
        exit=3,
        error=r"malformed data",
        stdout_has=(" lorem ipsum",),
    ),
    case(
        "mock-no-done-no-finish",
        "complete hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(no_done=1.0, no_finish=True))),
        exit=3,
        error=r"cut short",
        stdout_has=(" lorem ipsum",),
    ),
    case(
        "mock-no-done-with-finish",
        "complete hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(no_done=1.0))),
        stdout_has=(" lorem ipsum",),
    ),
    case(
        "mock-stall",
        "complete hi",
        dialect="zen",
        read_timeout=1,
        server=Mock(MockConfig(faults=Faults(stall=1.0, stall_after_tokens=3, stall_seconds=30))),
        exit=4,
        error=r"stalled mid-answer",
        stdout_has=(" lorem ipsum dolor",),
        kept=("hi", " lorem ipsum dolor"),
    ),
    case(
        "mock-429-retried-once",
        "complete hi",
        dialect="zen",
        server=Mock(MockConfig(faults=Faults(status_429=1.0, retry_after=0.2, limit=1))),
        stdout_has=(" lorem",),
        stderr_has=("trying again",),
    ),
    case(
        "mock-html-500",
        "complete hi",
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
        error=r"lost mid-answer",
        stdout_has=(" lorem ipsum dolor",),
        kept=(" lorem ipsum dolor",),
    ),
    case(
        "mock-sigint-slow-stream",
        "complete hi",
        dialect="zen",
        server=SLOW_STREAM,
        signal=signal.SIGINT,
        signal_after=" lorem ipsum",
        exit=130,
        error=r"interrupted",
        stdout_has=(" lorem ipsum",),
        kept=("hi", " lorem ipsum"),
    ),
    # --- the real llama-server --------------------------------------------------------------
    case(
        "llama-random-bytes-neutralised",
        "complete --text x --max-tokens 48 --temperature 1 --seed 3",
        server=Llama("llama_think"),
    ),
    case(
        "llama-chat-latin1",
        "chat --max-tokens 4",
        server=Llama("llama_think"),
        stdin=LATIN1,
        stderr_has=("first bad byte at offset 3",),
        kept=("caf\ufffd",),
    ),
    case(
        "llama-grammar-with-detected-dialect",
        "complete hi --grammar {tmp}/yes.gbnf --max-tokens 8",
        dialect=None,
        files={"yes.gbnf": b'root ::= "yes"\n'},
        server=Llama("llama_think"),
        stdout_is="yes\n",
    ),
    case(
        "llama-grammar-local-profile-with-backend-url",
        "complete -p local hi --grammar {tmp}/yes.gbnf --max-tokens 8",
        env={"BACKEND_URL": "{base_url}"},
        files={"yes.gbnf": b'root ::= "yes"\n'},
        server=Llama("llama_think"),
        stdout_is="yes\n",
    ),
    case(
        "llama-prompt-over-context",
        "complete --max-tokens 4",
        server=Llama("llama_think"),
        stdin=b"word " * 3000,
        exit=3,
        error=r"HTTP 400: .*exceeds the available context size",
    ),
]


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
    """The newest conversation's full record, read with ``llmcli history`` (in process);
    ``history show`` of it must not pass a raw control either."""
    runner = CliRunner()
    listed = runner.invoke(app, ["history", "list", "--json"], env=dict(env))
    assert listed.exit_code == 0, listed.output
    summaries = json.loads(listed.stdout)
    if not summaries:
        return None
    newest = summaries[0]["id"]
    shown = runner.invoke(app, ["history", "show", newest], env=dict(env))
    assert shown.exit_code == 0, shown.output
    found = CONTROL.search(shown.stdout)
    assert found is None, f"history show passes {found.group()!r}: {shown.stdout[:500]!r}"
    exported = runner.invoke(app, ["history", "export", "--json", newest], env=dict(env))
    assert exported.exit_code == 0, exported.output
    record: dict[str, Any] = json.loads(exported.stdout)
    return record


def profiles_text(case: FaultCase, base_url: str) -> str:
    model = "big-pickle" if case.dialect == "zen" else "m"
    dialect = "" if case.dialect is None else f'dialect = "{case.dialect}"\n'
    return (
        'default = "t"\n\n[profiles.t]\n'
        f'base_url = "{base_url}"\n'
        f"{dialect}"
        f'model = "{model}"\n'
        'api_key_env = "ZEN_API_KEY"\n'
        f"timeout = {{ connect = 3, read = {case.read_timeout} }}\n"
    )


def start_server(
    case: FaultCase, hostile: HostileServer, request: pytest.FixtureRequest, started: list[Any]
) -> str:
    server = case.server
    if isinstance(server, Hostile):
        return hostile.add(case.id, server.script)
    if isinstance(server, Mock):
        mock = MockServerThread(server.config)
        mock.start()
        started.append(mock)
        return mock.base_url
    if isinstance(server, Llama):
        llama: LlamaServer = request.getfixturevalue(server.fixture)
        return llama.base_url
    if isinstance(server, Dead):
        return f"http://127.0.0.1:{free_port()}/v1"
    return "http://127.0.0.1:9/v1"  # never reached: the case ends before any request


def child_env(case: FaultCase, tmp: Path, base_url: str) -> dict[str, str]:
    given = {
        name: value.replace("{tmp}", str(tmp)).replace("{base_url}", base_url)
        for name, value in case.env.items()
    }
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Kept so the matrix can run against another copy of llmcli (PYTHONPATH=that).
        **{name: os.environ[name] for name in ("PYTHONPATH",) if name in os.environ},
        "HOME": str(tmp / "home"),
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_DATA_HOME": str(tmp / "xdg-data"),
        "LLMCLI_DATA_DIR": str(tmp / "data"),
        "LLMCLI_CONFIG": str(tmp / "profiles.toml"),
        "ZEN_API_KEY": ZEN_KEY,
        "BACKEND_API_KEY": BACKEND_KEY,
        "NO_COLOR": "1",
        "COLUMNS": "120",
        **given,
    }


class Child:
    """``llmcli`` in a child process, its output collected as it comes (for signals)."""

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
            threading.Thread(target=self._drain, args=(pipe, into), daemon=True)
            for pipe, into in (
                (self.process.stdout, self.stdout),
                (self.process.stderr, self.stderr),
            )
        ]
        for reader in self._readers:
            reader.start()
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(stdin)
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # the child refused its input before reading it all

    @staticmethod
    def _drain(pipe: Any, into: bytearray) -> None:
        while piece := pipe.read1(65536):
            into.extend(piece)

    def wait_for_output(self, text: str, deadline: float) -> None:
        wanted = text.encode()
        while wanted not in self.stdout and wanted not in self.stderr:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never saw {text!r}: {self.stdout!r} {self.stderr!r}")
            time.sleep(0.02)

    def wait(self, deadline: float) -> tuple[int, int]:
        """(exit status, peak RSS in KiB); kills the child at the deadline and fails."""
        while True:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"still running at the deadline: {self.stderr!r}")
            time.sleep(0.02)
        for reader in self._readers:
            reader.join(10)
        return self.process.returncode, usage.ru_maxrss


def run_in_pipes(
    case: FaultCase, argv: list[str], env: dict[str, str], tmp: Path, hostile: HostileServer
) -> tuple[int, bytes, bytes, int]:
    deadline = time.monotonic() + RUN_TIMEOUT
    child = Child(argv, env, case.stdin, tmp)
    if case.signal is not None:
        if case.signal_after:
            child.wait_for_output(case.signal_after, deadline)
        else:
            stalled = hostile.wait_for_stalls(case.id, case.stalls, RUN_TIMEOUT)
            assert stalled, f"the server never held {case.stalls} stalled replies"
        child.process.send_signal(case.signal)
    returncode, max_rss = child.wait(deadline)
    return returncode, bytes(child.stdout), bytes(child.stderr), max_rss


def run_in_tty(case: FaultCase, argv: list[str], env: dict[str, str], tmp: Path) -> tuple[int, str]:
    """Run in a pty with colour on; returns (exit status, everything the terminal got)."""
    env = {k: v for k, v in env.items() if k != "NO_COLOR"}
    env.update(TERM="xterm-256color", LINES="40", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(
        sys.executable,
        ["-c", BOOT, *argv],
        env=env,
        cwd=str(tmp),
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=RUN_TIMEOUT / 2,
    )
    screen = io.StringIO()
    child.logfile_read = screen
    try:
        if case.argv[0] == "chat":
            child.expect_exact(TTY_PROMPT)
            for line, shown in case.tty_script:
                child.send(line + "\r")
                child.expect_exact(shown)
                child.expect_exact(TTY_PROMPT)
            child.sendcontrol("d")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    status = child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)
    return status, screen.getvalue()


def run_case(
    case: FaultCase, hostile: HostileServer, request: pytest.FixtureRequest, tmp: Path
) -> Run:
    started: list[Any] = []
    try:
        base_url = start_server(case, hostile, request, started)
        for name, data in case.files.items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data.replace(b"{tmp}", str(tmp).encode()))
        if "profiles.toml" not in case.files:
            (tmp / "profiles.toml").write_text(profiles_text(case, base_url))
        env = child_env(case, tmp, base_url)
        argv = [arg.replace("{tmp}", str(tmp)) for arg in case.argv]
        if case.tty:
            returncode, screen = run_in_tty(case, argv, env, tmp)
            stdout = stderr = screen.encode()
            max_rss = 0
        else:
            returncode, stdout, stderr, max_rss = run_in_pipes(case, argv, env, tmp, hostile)
        requests = hostile.requests(case.id) if isinstance(case.server, Hostile) else []
    finally:
        for server in started:
            server.stop()
    return Run(
        case=case,
        tmp=tmp,
        returncode=returncode,
        stdout=stdout.decode("utf-8"),
        stderr=stderr.decode("utf-8"),
        raw_stderr_size=len(stderr),
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
    if case.tty:
        # One screen, where llmcli's own colours and cursor moves belong; the server's never.
        for piece in EVIL_PIECES:
            assert piece not in run.stdout, f"the server's {piece!r} reached the terminal{context}"
        screen = ANSI.sub("", run.stdout).replace("\r", "")
        outputs = {"the terminal": screen, "stderr": screen}
    else:
        outputs = {"stdout": run.stdout, "stderr": run.stderr}
    for name, text in outputs.items():
        found = CONTROL.search(text)
        assert found is None, f"raw control {found.group()!r} on {name}{context}"
    lines = outputs["stderr"].splitlines()
    endings = [line.strip() for line in lines if ENDING_LINE.match(line.strip())]
    if case.error is None:
        assert endings == [], context
    else:
        assert len(endings) == 1, f"{len(endings)} ending lines{context}"
        assert re.search(case.error, endings[0]), f"{endings[0]!r} !~ {case.error!r}"
    assert run.raw_stderr_size < case.stderr_limit, f"stderr is {run.raw_stderr_size} bytes"
    assert run.max_rss_kb < MAX_RSS_KB, f"{run.max_rss_kb} KiB resident"
    for secret in SECRETS:
        assert secret not in run.stdout and secret not in run.stderr, "a key on the terminal"
        for method, route, _, body in run.requests:  # headers carry the profile's key
            assert secret.encode() not in body, f"a key in the body of {method} {route}"
        for path in run.tmp.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), f"a key in {path}"


def check_expectations(run: Run) -> None:
    """What this row says: the exit status, the answer kept on stdout and in the history."""
    case = run.case
    context = f"\nstdout: {run.stdout[:2000]!r}\nstderr: {run.stderr[:2000]!r}"
    assert run.returncode == case.exit, f"exit {run.returncode}, not {case.exit}{context}"
    stdout = ANSI.sub("", run.stdout) if case.tty else run.stdout
    for text in case.stdout_has:
        assert text in stdout, f"{text!r} not on stdout{context}"
    if case.stdout_is is not None:
        assert stdout == case.stdout_is, context
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
    # Shown by pytest when the case fails: what the run said.
    print(f"{case.id}: exit {run.returncode}\nstdout: {run.stdout[:400]!r}")
    print(f"stderr: {run.stderr[:800]!r}")
    check_invariants(run)
    check_expectations(run)
    if case.kept is None and case.history_readable and (tmp_path / "data" / "history.db").exists():
        newest_conversation(run.env)  # whatever was kept, `history show` shows it safely


def test_the_matrix_holds_at_least_60_distinct_cases() -> None:
    rows: list[FaultCase] = [param.values[0] for param in CASES]
    ids = [row.id for row in rows]
    assert len(ids) == len(set(ids)) and len(ids) >= 60
    # A failure always says so in one line; the one exception is health's own report of a
    # server that answers but is not ready (exit 1, the report on stdout).
    silent = [row.id for row in rows if row.exit != 0 and row.error is None]
    assert all(row_id.startswith("health-") for row_id in silent), silent


def _fabricated(tmp_path: Path, **changes: Any) -> Run:
    """A run that keeps every promise; each change breaks one."""
    fields: dict[str, Any] = {
        "case": FaultCase("fabricated", ("complete",), exit=3, error=r"HTTP 500"),
        "tmp": tmp_path,
        "returncode": 3,
        "stdout": "partial\n",
        "stderr": "llmcli: warning: a notice\nllmcli: error: HTTP 500: boom\n",
        "raw_stderr_size": 60,
        "max_rss_kb": 50_000,
        "requests": [],
        "env": {},
    }
    fields.update(changes)
    return Run(**fields)


BROKEN_PROMISES = {
    "traceback": {"stderr": "Traceback (most recent call last):\nllmcli: error: HTTP 500\n"},
    "osc-title-on-stdout": {"stdout": "partial \x1b]0;title\x07\n"},
    "c1-csi-on-stdout": {"stdout": "partial \x9b31m\n"},
    "bidi-on-stdout": {"stdout": "right-to-left \u202e\n"},
    "clear-screen-on-stderr": {"stderr": "llmcli: error: HTTP 500 \x1b[2J\n"},
    "two-error-lines": {"stderr": "llmcli: error: HTTP 500: boom\nllmcli: error: again\n"},
    "no-error-line": {"stderr": "llmcli: warning: only a notice\n"},
    "another-error": {"stderr": "llmcli: error: HTTP 404: elsewhere\n"},
    "key-on-stdout": {"stdout": f"key {ZEN_KEY}\n"},
    "key-in-a-request-body": {"requests": [("POST", "chat", {}, BACKEND_KEY.encode())]},
    "huge-stderr": {"raw_stderr_size": 5 * 1024 * 1024},
    "huge-memory": {"max_rss_kb": 8 * 1024 * 1024},
}


@pytest.mark.parametrize("changes", BROKEN_PROMISES.values(), ids=BROKEN_PROMISES.keys())
def test_the_invariants_catch_each_broken_promise(tmp_path: Path, changes: dict[str, Any]) -> None:
    check_invariants(_fabricated(tmp_path))  # the unbroken run passes
    with pytest.raises(AssertionError):
        check_invariants(_fabricated(tmp_path, **changes))


def test_the_invariants_find_a_key_in_any_file_written(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "history.db").write_bytes(b"\x00" + ZEN_KEY.encode())
    with pytest.raises(AssertionError, match="a key in"):
        check_invariants(_fabricated(tmp_path))
