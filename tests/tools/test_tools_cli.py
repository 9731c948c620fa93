"""``llmcli tools-demo`` against llmcli's mock server speaking zen's dialect.

The mock is scripted (``MockConfig.tool_script``) to call tools the way a tool-using model
would, and (``answer_tool_results``) to answer with the results it was sent, so stdout
shows exactly what went back to the model.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from conftest import WriteProfiles
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.mock import MockConfig, MockServerThread, ScriptedCall
from llmcli.storage.store import Store

PROMPT = "what is 17*23 and what time is it in Tokyo?"
TOKYO = re.compile(r"now: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+09:00 \(\w+day, JST, Asia/Tokyo\)")


class Serve(Protocol):
    def __call__(
        self, *steps: tuple[ScriptedCall, ...], answer: bool = True
    ) -> MockServerThread: ...


def step(*calls: tuple[str, Any]) -> tuple[ScriptedCall, ...]:
    return tuple(
        ScriptedCall(name, args if isinstance(args, str) else json.dumps(args))
        for name, args in calls
    )


@pytest.fixture
def serve(write_profiles: WriteProfiles) -> Iterator[Serve]:
    """A zen-dialect mock running a tool script; the profile ``mock`` points at it."""
    servers: list[MockServerThread] = []

    def start(*steps: tuple[ScriptedCall, ...], answer: bool = True) -> MockServerThread:
        config = MockConfig(tool_script=steps, answer_tool_results=answer)
        server = MockServerThread(config)
        server.start()
        servers.append(server)
        write_profiles(
            f'[profiles.mock]\nbase_url = "{server.base_url}"\n'
            'dialect = "zen"\nmodel = "big-pickle"\napi_key = "public"\n'
        )
        return server

    yield start
    for server in servers:
        assert server.server.errors == []
        server.stop()


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, ["tools-demo", "-p", "mock", *args], input=input)


def bodies(server: MockServerThread) -> list[dict[str, Any]]:
    return [request.body for request in server.server.requests]


def test_parallel_calculator_and_now_then_the_answer(serve: Serve) -> None:
    server = serve(
        step(("calculator", {"expression": "17*23"}), ("now", {"timezone": "Asia/Tokyo"}))
    )
    result = invoke("--parallel", PROMPT)
    assert result.exit_code == 0, result.stderr
    # stdout: only the answer, which the mock built from the results it was sent.
    first, second = result.stdout.splitlines()
    assert first == "calculator: 391" and TOKYO.fullmatch(second)
    # stderr: each call, each result with its duration, a status line per step.
    err = result.stderr
    assert '→ tool call calculator({"expression": "17*23"})' in err
    assert '→ tool call now({"timezone": "Asia/Tokyo"})' in err
    assert re.search(r"← calculator \((\d+ ms|[\d.]+ s)\)\n  391\n", err)
    assert re.search(r"← now \((\d+ ms|[\d.]+ s)\)\n  \d{4}-", err)
    assert "step 1 · big-pickle" in err and "step 2 · big-pickle" in err
    sent = bodies(server)
    assert len(sent) == 2 and sent[0]["parallel_tool_calls"] is True
    assert sent[0]["tool_choice"] == "auto"
    assert [m["role"] for m in sent[1]["messages"]] == ["user", "assistant", "tool", "tool"]
    assert sent[1]["messages"][2]["content"] == "391"


def test_json_transcript(serve: Serve) -> None:
    serve(step(("calculator", {"expression": "17*23"}), ("now", {"timezone": "Asia/Tokyo"})))
    result = invoke("--json", "-s", "be brief", PROMPT)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["stopped"] == "answered" and document["profile"] == "mock"
    assert document["answer"].startswith("calculator: 391\nnow: ")
    assert [m["role"] for m in document["messages"]] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    first, second = document["steps"]
    assert first["finish_reason"] == "tool_calls" and second["finish_reason"] == "stop"
    assert [r["name"] for r in first["tool_results"]] == ["calculator", "now"]
    assert (
        first["tool_results"][0]["content"] == "391" and first["tool_results"][0]["error"] is None
    )
    assert first["duration_ms"] > 0 and document["duration_ms"] >= first["duration_ms"]
    assert first["usage"]["completion_tokens"] > 0 and first["ttft_ms"] is not None


def test_results_are_cut_on_screen_but_whole_in_the_json_and_history(
    serve: Serve, tmp_path: Path
) -> None:
    lines = "\n".join(f"line {i}" for i in range(1, 21))
    (tmp_path / "long.txt").write_text(lines)
    serve(step(("read_file", {"path": "long.txt"})))
    result = invoke("--root", str(tmp_path), "read it")
    assert result.exit_code == 0, result.stderr
    assert "  line 4\n  … 16 more lines, " in result.stderr and "line 5" not in result.stderr
    assert result.stdout.startswith("read_file: line 1\nline 2") and "line 20" in result.stdout
    with Store.open() as store:
        [summary] = store.list()
        messages = store.get(summary.id).messages
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[2].content == lines and messages[2].tool_call_id
    assert messages[1].tool_calls[0]["function"]["name"] == "read_file"


def test_read_file_stays_in_the_root(serve: Serve, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("the secret")
    (root / "link").symlink_to(tmp_path / "secret.txt")
    serve(step(("read_file", {"path": "../secret.txt"}), ("read_file", {"path": "link"})))
    result = invoke("--root", str(root), "--no-log", "read the secret")
    assert result.exit_code == 0, result.stderr
    assert "the secret" not in result.stdout + result.stderr
    assert result.stdout.count("outside the directory the tools may read") == 2
    assert result.stderr.count("✗ read_file failed") == 2


def test_max_steps(serve: Serve) -> None:
    again = step(("calculator", {"expression": "1+1"}))
    server = serve(again, again, again)
    result = invoke("--max-steps", "2", "loop forever")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[-1] == (
        "llmcli: error: stopped after 2 steps with the model still calling tools (raise --max-steps)"
    )
    assert len(bodies(server)) == 2
    as_json = invoke("--max-steps", "2", "--json", "loop forever")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["stopped"] == "max_steps"


def test_python_needs_allow_python_and_confirmation(serve: Serve, tmp_path: Path) -> None:
    code = "open('ran', 'w').write('yes'); print(6 * 7)"
    server = serve(step(("python", {"code": code})))
    # Not offered at all without --allow-python, and asking for it by name is an error.
    refused = invoke("--tool", "python", "hi")
    assert refused.exit_code == 2
    assert "add --allow-python" in refused.stderr
    unoffered = invoke("--root", str(tmp_path), "run it")
    assert unoffered.exit_code == 0
    assert "there is no tool named 'python'" in unoffered.stdout
    assert "python" not in [t["function"]["name"] for t in bodies(server)[-2]["tools"]]
    # Offered, but no terminal to confirm on: refused, the code does not run.
    unconfirmed = invoke("--allow-python", "--root", str(tmp_path), "run it")
    assert unconfirmed.exit_code == 0
    assert "there is no terminal to ask on" in unconfirmed.stdout
    assert "⚠ python: refused" in unconfirmed.stderr and "  │ open('ran'" in unconfirmed.stderr
    assert not (tmp_path / "ran").exists()
    # --yes approves, and the call is still shown.
    approved = invoke("--allow-python", "--yes", "--root", str(tmp_path), "run it")
    assert approved.exit_code == 0, approved.stderr
    assert approved.stdout == "python: 42\n"
    assert (tmp_path / "ran").read_text() == "yes"


def test_user_tools_from_a_toml_file(serve: Serve, tmp_path: Path) -> None:
    shout = "import json, sys; print(json.load(sys.stdin)['text'].upper(), end='')"
    tools = tmp_path / "tools.toml"
    tools.write_text(
        "[tools.shout]\n"
        f"command = [{json.dumps(sys.executable)}, '-c', {json.dumps(shout)}]\n"
        "safe = true\n"
        'parameters = { type = "object", properties = { text = { type = "string" } }, required = ["text"] }\n'
        "[tools.unsafe]\n"
        f"command = [{json.dumps(sys.executable)}, '-c', 'print(1)']\n"
    )
    server = serve(step(("shout", {"text": "hello"}), ("unsafe", {}), ("shout", {"text": 1})))
    result = invoke("--tools", str(tools), "--tool", "shout", "--tool", "unsafe", "shout")
    assert result.exit_code == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "shout: HELLO"
    assert out[1].startswith('unsafe: {"error": "not run: this tool needs the user\'s approval')
    assert (
        out[2]
        == 'shout: {"error": "invalid arguments: arguments.text: expected string, got integer"}'
    )
    assert [t["function"]["name"] for t in bodies(server)[0]["tools"]] == ["shout", "unsafe"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tool", "nope"], "no tool named 'nope'"),
        (
            ["--tool-choice", "nope"],
            "--tool-choice takes auto, required, none or an offered tool's name",
        ),
        (["--tool", "now", "--tool-choice", "calculator"], "(now), not 'calculator'"),
        (["--root", "/no/such/dir"], "--root /no/such/dir: No such file or directory"),
        (["--tools", "/no/such/tools.toml"], "cannot read the tools file /no/such/tools.toml"),
    ],
)
def test_usage_errors(serve: Serve, args: list[str], message: str) -> None:
    server = serve()
    result = invoke(*args, "hi")
    assert result.exit_code == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("llmcli: error: ") and message in line
    assert bodies(server) == []


def test_tool_choice_and_selection_reach_the_request(serve: Serve) -> None:
    server = serve(answer=True)  # no script: a named choice makes the mock call that tool
    result = invoke(
        "--tool", "now", "--tool", "calculator", "--tool-choice", "now", "--no-parallel", "hi"
    )
    assert result.exit_code == 0, result.stderr
    first, second = bodies(server)
    assert [t["function"]["name"] for t in first["tools"]] == ["now", "calculator"]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "now"}}
    assert first["parallel_tool_calls"] is False and second["tool_choice"] == "auto"
    assert result.stdout.startswith("now: ")
