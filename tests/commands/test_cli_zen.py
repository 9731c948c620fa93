"""``llmcli`` against llmcli's own mock server speaking zen's dialect, and protocol faults.

Zen cannot be reached from here; the mock speaks its dialect as BACKENDS.md describes.
Every failure must end in one line on stderr, a non-zero exit, and nothing lost on stdout.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import WriteProfiles
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.mock import Faults, MockConfig, MockServerThread
from llmcli.mock.vocabulary import CONTENT_WORDS

CONTENT = " " + CONTENT_WORDS[0]  # the mock answers with its word list, in order


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input, env=env)


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("llmcli: error: ") and "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def zen(write_profiles: WriteProfiles) -> Iterator[Any]:
    """Start a zen-dialect mock with a given config; a profile `mock` (dialect zen) points at it."""
    servers: list[MockServerThread] = []

    def start(config: MockConfig | None = None, *, read_timeout: float = 10) -> MockServerThread:
        server = MockServerThread(config or MockConfig())
        server.start()
        servers.append(server)
        write_profiles(
            "[profiles.mock]\n"
            f'base_url = "{server.base_url}"\n'
            'dialect = "zen"\nmodel = "big-pickle"\n'
            'api_key_env = "ZEN_API_KEY"\napi_key = "public"\n'
            f"timeout = {{ connect = 5, read = {read_timeout} }}\n"
        )
        return server

    yield start
    for server in servers:
        assert server.server.errors == []
        server.stop()


def test_reasoning_cached_tokens_and_cost_frame(zen: Any) -> None:
    server = zen(MockConfig(reasoning_tokens=3, cached_tokens=5))
    result = invoke("complete", "-p", "mock", "one two three four five six seven", "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["reasoning"] and document["content"]
    assert document["usage"]["cached_tokens"] == 5
    assert document["usage"]["reasoning_tokens"] == 3
    assert document["cost"] == "0"  # zen's frame after [DONE], free model
    assert document["finish_reason"] == "stop" and document["model"] == "big-pickle"
    [request] = server.server.requests
    assert request.headers["authorization"] == "Bearer public"
    assert request.body["stream_options"] == {"include_usage": True}


def test_reasoning_streams_to_stderr_and_answer_to_stdout(zen: Any) -> None:
    zen(MockConfig(reasoning_tokens=2, default_max_tokens=3))
    result = invoke("complete", "-p", "mock", "hi")
    assert result.exit_code == 0, result.stderr
    shown = invoke("complete", "-p", "mock", "hi", "--json")
    document = json.loads(shown.stdout)
    assert result.stdout == document["content"] + "\n"
    assert result.stderr == document["reasoning"] + "\n"


def test_stdin_and_argument_make_one_prompt(zen: Any) -> None:
    server = zen()
    result = invoke("complete", "-p", "mock", "summarise", input="line one\nline two\n")
    assert result.exit_code == 0, result.stderr
    [request] = server.server.requests
    assert request.body["messages"] == [
        {"role": "user", "content": "summarise\n\nline one\nline two"}
    ]


def test_options_reach_the_request(zen: Any) -> None:
    server = zen()
    args = ["-s", "be brief", "--temperature", "0.2", "--top-p", "0.9", "--max-tokens", "3"]
    result = invoke(
        "complete",
        "-p",
        "mock",
        *args,
        "--seed",
        "7",
        "--stop",
        "END",
        "-m",
        "grok-code-fast-1-free",
        "hi",
    )
    assert result.exit_code == 0, result.stderr
    body = server.server.requests[0].body
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (
        0.2,
        0.9,
        3,
        7,
    )
    assert body["stop"] == ["END"] and body["model"] == "grok-code-fast-1-free"


def test_unknown_key_is_401_even_for_free_models(zen: Any) -> None:
    zen(MockConfig(api_keys=frozenset({"real-key"})))
    result = invoke("complete", "-p", "mock", "hi", env={"ZEN_API_KEY": "sk-unknown-0000"})
    assert result.exit_code == 3 and result.stdout == ""
    line = one_line(result.stderr)
    assert "HTTP 401" in line and "set ZEN_API_KEY" in line and "sk-unknown-0000" not in line


def test_429_with_short_retry_after_is_retried(zen: Any) -> None:
    server = zen(MockConfig(faults=Faults(status_429=1.0, retry_after=0.2, limit=1)))
    result = invoke("complete", "-p", "mock", "hi")
    assert result.exit_code == 0, result.stderr
    assert [r.status for r in server.server.requests] == [429, 200]


def test_429_with_long_retry_after_says_when(zen: Any) -> None:
    server = zen(MockConfig(faults=Faults(status_429=1.0, retry_after=3600)))
    result = invoke("complete", "-p", "mock", "hi")
    assert result.exit_code == 3 and result.stdout == ""
    assert "retry after 3600 s" in one_line(result.stderr)
    assert len(server.server.requests) == 1


def test_html_500(zen: Any) -> None:
    zen(MockConfig(faults=Faults(status_500=1.0, html_500=True)))
    result = invoke("complete", "-p", "mock", "hi")
    assert result.exit_code == 3 and result.stdout == ""
    assert "HTTP 500: HTML page" in one_line(result.stderr)


@pytest.mark.parametrize(
    ("faults", "message", "exit_code"),
    [
        (Faults(reset=1.0, reset_after_tokens=3), "lost mid-answer", 3),
        (Faults(error_event=1.0, error_after_tokens=3), "server error mid-answer", 3),
        (Faults(malformed=1.0, malformed_after_tokens=3), "not JSON", 3),
        (Faults(no_done=1.0, no_finish=True), "cut short", 3),
        (Faults(stall=1.0, stall_after_tokens=3, stall_seconds=30), "stalled mid-answer", 4),
    ],
)
def test_stream_faults_keep_what_arrived(
    zen: Any, faults: Faults, message: str, exit_code: int
) -> None:
    zen(MockConfig(faults=faults, default_max_tokens=8), read_timeout=0.5)
    result = invoke("complete", "-p", "mock", "hi", "--raw")
    assert result.exit_code == exit_code
    assert message in one_line(result.stderr)
    assert result.stdout.startswith(CONTENT) and result.stdout.endswith("\n")
    partial = invoke("complete", "-p", "mock", "hi", "--json")
    document = json.loads(partial.stdout)
    assert document["content"].startswith(CONTENT) and message in document["error"]


def test_zen_models_marks_free_ones(zen: Any) -> None:
    zen()
    result = invoke("models", "-p", "mock", "--json")
    assert result.exit_code == 0, result.stderr
    models = {m["id"]: m["free"] for m in json.loads(result.stdout)}
    assert models == {"big-pickle": True, "grok-code-fast-1-free": True, "claude-sonnet-4": False}
    plain = invoke("models", "-p", "mock")
    assert plain.stdout.splitlines() == ["big-pickle", "grok-code-fast-1-free", "claude-sonnet-4"]


def test_health_without_a_health_route(zen: Any) -> None:
    zen()
    result = invoke("health", "-p", "mock")
    assert result.exit_code == 0, result.stderr
    assert "ready" in result.stdout and "3 model(s)" in result.stdout


def test_backend_url_to_another_server_says_no_model_was_sent(
    zen: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """complete -p zen under BACKEND_URL: the profile's model is not sent to another
    server, and a server that wants one is answered with why, not 'check the model name'."""
    server = zen()
    monkeypatch.setenv("BACKEND_URL", server.base_url.replace("127.0.0.1", "localhost"))
    result = invoke("complete", "-p", "zen", "hi", "--no-log")
    assert result.exit_code == 3
    line = one_line(result.stderr)
    assert "no model was sent (BACKEND_URL points at another server than profile zen's" in line
    assert "name one with -m" in line and "check the model name" not in line
