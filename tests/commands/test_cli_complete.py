"""``llmcli complete`` through the real CLI against the real llama-server.

stdout and stderr are asserted separately: stdout carries only the answer (or JSON).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from conftest import KEYED_API_KEY, StartLlama, WriteProfiles
from rig import LlamaServer
from rig.payloads import THINK_GRAMMAR
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.ui.sanitize import neutralize

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input, env=env)


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("llmcli: error: ")
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def think_profile(write_profiles: WriteProfiles, llama_think: LlamaServer) -> str:
    """A profile whose grammar makes the tiny model reason, then answer "Hi there"."""
    grammar = json.dumps(THINK_GRAMMAR)
    write_profiles(
        f'[profiles.tiny]\nbase_url = "{llama_think.base_url}"\nparams = {{ grammar = {grammar} }}\n'
    )
    return "tiny"


def test_answer_on_stdout_reasoning_on_stderr(think_profile: str) -> None:
    result = invoke("complete", "-p", think_profile, "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "Hi there\n"
    assert result.stderr == "plan it\n"


def test_no_reasoning_keeps_stderr_quiet(think_profile: str) -> None:
    result = invoke("complete", "-p", think_profile, "--no-reasoning", "hi")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Hi there\n", "")


def test_json_from_stdin(think_profile: str) -> None:
    result = invoke("complete", "-p", think_profile, "--json", input="hi\n")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    document = json.loads(result.stdout)
    assert document["content"] == "Hi there"
    assert document["reasoning"] == "plan it\n"
    assert document["finish_reason"] == "stop"
    assert document["model"] == "tiny" and document["profile"] == "tiny"
    assert document["usage"]["completion_tokens"] > 0
    assert document["timings"]["predicted_n"] > 0
    assert document["tool_calls"] == []


def test_no_stream_gives_the_same_answer(think_profile: str) -> None:
    result = invoke("complete", "-p", think_profile, "--no-stream", "hi")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Hi there\n", "plan it\n")


def test_backend_url_reaches_the_server_without_a_profile(llama_think: LlamaServer) -> None:
    result = invoke(
        "complete", "hi", "--max-tokens", "8", "--json", env={"BACKEND_URL": llama_think.base_url}
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["profile"] == "zen"  # the default profile, its URL replaced
    assert document["usage"]["completion_tokens"] <= 8
    assert document["model"] == "tiny"


def test_text_completion(llama_think: LlamaServer) -> None:
    env = {"BACKEND_URL": llama_think.base_url}
    result = invoke("complete", "--text", "Once", "--max-tokens", "4", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["usage"]["completion_tokens"] <= 5


def test_model_control_characters_never_reach_the_terminal(llama_think: LlamaServer) -> None:
    # The random weights emit arbitrary bytes; find a seed whose answer carries controls.
    env = {"BACKEND_URL": llama_think.base_url}
    args = ["complete", "--text", "x", "--max-tokens", "64", "--temperature", "1"]
    for seed in range(1, 40):
        raw = invoke(*args, "--seed", str(seed), "--json", env=env)
        content = json.loads(raw.stdout)["content"]
        if CONTROL.search(content):
            break
    else:
        pytest.fail("the tiny model produced no control characters in 40 seeds")
    shown = invoke(*args, "--seed", str(seed), env=env)
    assert shown.exit_code == 0, shown.stderr
    assert not CONTROL.search(shown.stdout)
    assert shown.stdout.rstrip("\n") == neutralize(content).rstrip("\n")
    assert CONTROL.search(raw.stdout) is None  # JSON escapes them too


def test_unknown_profile(llama_think: LlamaServer) -> None:
    result = invoke("complete", "-p", "nope", "hi")
    assert result.exit_code == 2 and result.stdout == ""
    line = one_line(result.stderr)
    assert "unknown profile 'nope'; known: " in line
    assert "local" in line and "zen" in line


def test_broken_toml(write_profiles: WriteProfiles) -> None:
    path = write_profiles("[profiles.x\nbase_url = 1\n")
    result = invoke("complete", "hi")
    assert result.exit_code == 2 and result.stdout == ""
    line = one_line(result.stderr)
    assert str(path) in line and "line 1" in line


def test_dead_server(start_llama: StartLlama) -> None:
    server = start_llama()
    url = server.base_url
    server.stop()
    result = invoke("complete", "hi", env={"BACKEND_URL": url})
    assert result.exit_code == 3 and result.stdout == ""
    assert "cannot reach" in one_line(result.stderr)


def test_wrong_key_is_401_and_never_echoed(llama_keyed: LlamaServer) -> None:
    env = {"BACKEND_URL": llama_keyed.base_url, "BACKEND_API_KEY": "not-the-key-12345"}
    result = invoke("complete", "hi", env=env)
    assert result.exit_code == 3 and result.stdout == ""
    line = one_line(result.stderr)
    assert "HTTP 401: Invalid API Key" in line and "not-the-key-12345" not in line
    env["BACKEND_API_KEY"] = KEYED_API_KEY
    ok = invoke("complete", "hi", "--max-tokens", "2", "--json", env=env)
    assert ok.exit_code == 0, ok.stderr


def test_prompt_over_the_context(llama_think: LlamaServer) -> None:
    result = invoke(
        "complete",
        "--max-tokens",
        "1",
        input="word " * 3000,
        env={"BACKEND_URL": llama_think.base_url},
    )
    assert result.exit_code == 3 and result.stdout == ""
    assert "exceeds the available context size" in one_line(result.stderr)


def test_no_prompt_at_all() -> None:
    result = invoke("complete", input="")
    assert result.exit_code == 2 and result.stdout == ""
    assert "no prompt" in one_line(result.stderr)


def test_zen_has_no_text_completions() -> None:
    result = invoke("complete", "--text", "hi", "-p", "zen")
    assert result.exit_code == 2
    assert "zen has no /completions endpoint" in one_line(result.stderr)


def test_each_answer_is_logged_unless_no_log(think_profile: str) -> None:
    from llmcli.storage.store import Store

    assert invoke("complete", "-p", think_profile, "-s", "terse", "hi").exit_code == 0
    with Store.open() as store:
        [summary] = store.list()
        conversation = store.get(summary.id)
    assert conversation.system == "terse" and conversation.profile == think_profile
    user, answer = conversation.messages
    assert (user.content, answer.content, answer.reasoning) == ("hi", "Hi there", "plan it\n")
    assert invoke("complete", "-p", think_profile, "--no-log", "hi").exit_code == 0
    with Store.open() as store:
        assert len(store.list()) == 1


def test_a_failed_answer_is_logged_with_its_error(llama_think: LlamaServer) -> None:
    from llmcli.storage.store import Store

    result = invoke(
        "complete",
        "--max-tokens",
        "1",
        input="word " * 3000,
        env={"BACKEND_URL": llama_think.base_url},
    )
    assert result.exit_code == 3
    with Store.open() as store:
        [summary] = store.list()
        answer = store.get(summary.id).messages[-1]
    assert answer.error and "context size" in answer.error
