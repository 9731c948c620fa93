"""The mock server's scripted tool conversations (``tool_script``, ``answer_tool_results``).

Read on the wire with plain httpx, as tests/mock/test_mockserver.py does, so the options are
pinned independently of llmcli's client and tool loop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llmcli.mock import CONTENT_WORDS, MockConfig, MockServerThread, ScriptedCall
from llmcli.mock.options import config_from_options

CALC = {"type": "function", "function": {"name": "calculator", "parameters": {}}}
NOW = {"type": "function", "function": {"name": "now", "parameters": {}}}
USER = {"role": "user", "content": "what is 17*23 and the time in Tokyo?"}
SCRIPT = (
    (ScriptedCall("calculator", '{"expression": "17*23"}'), ScriptedCall("now", "not json")),
    (ScriptedCall("unknown_tool"),),
)


@pytest.fixture
def mock() -> Iterator[MockServerThread]:
    server = MockServerThread(
        MockConfig(dialect="llamacpp", tool_script=SCRIPT, answer_tool_results=True)
    )
    server.start()
    yield server
    server.stop()
    assert server.server.errors == []


def ask(mock: MockServerThread, messages: list[dict[str, Any]], **body: Any) -> dict[str, Any]:
    payload = {"messages": messages, "tools": [CALC, NOW], **body}
    response = httpx.post(mock.base_url + "/chat/completions", json=payload, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]  # type: ignore[no-any-return]


def streamed(
    mock: MockServerThread, messages: list[dict[str, Any]], **body: Any
) -> tuple[str, list[dict[str, Any]]]:
    payload = {"messages": messages, "tools": [CALC, NOW], "stream": True, **body}
    with httpx.stream("POST", mock.base_url + "/chat/completions", json=payload, timeout=10) as r:
        chunks = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
    return "".join(d.get("content") or "" for d in deltas), deltas


def tool_turn(calls: list[dict[str, Any]], results: list[str]) -> list[dict[str, Any]]:
    assistant = {"role": "assistant", "content": None, "tool_calls": calls}
    return [assistant] + [
        {"role": "tool", "tool_call_id": call["id"], "content": result}
        for call, result in zip(calls, results, strict=True)
    ]


def test_script_steps_follow_the_tool_rounds(mock: MockServerThread) -> None:
    first = ask(mock, [USER], tool_choice="auto")  # the script wins over "auto"
    assert first["finish_reason"] == "tool_calls"
    calls = first["message"]["tool_calls"]
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in calls] == [
        ("calculator", '{"expression": "17*23"}'),
        ("now", "not json"),
    ]
    assert [c["id"] for c in calls] == ["call_mock000001_0", "call_mock000001_1"]
    history = [USER, *tool_turn(calls, ["391", "12:00"])]
    second = ask(mock, history)
    [call] = second["message"]["tool_calls"]
    assert call["function"] == {"name": "unknown_tool", "arguments": "{}"}
    # Beyond the script, the results are answered in text, even under "required".
    history += tool_turn([call], ['{"error": "no such tool"}'])
    third = ask(mock, history, tool_choice="required")
    assert third["finish_reason"] == "stop"
    assert third["message"]["content"] == 'unknown_tool: {"error": "no such tool"}'
    # A new user message starts the script again.
    again = ask(mock, [*history, third["message"], USER])
    assert again["message"]["tool_calls"][0]["function"]["name"] == "calculator"


def test_results_answer_streams_word_by_word_and_obeys_limits(mock: MockServerThread) -> None:
    calls = ask(mock, [USER])["message"]["tool_calls"]
    history = [USER, *tool_turn(calls, ["391", "noon in Tokyo"])]
    # "none" skips the script's second step; the results are answered in text.
    text, deltas = streamed(mock, history, tool_choice="none")
    assert text == "calculator: 391\nnow: noon in Tokyo"
    assert [d["content"] for d in deltas if d.get("content")] == [
        "calculator:",
        " 391",
        "\nnow:",
        " noon",
        " in",
        " Tokyo",
    ]
    cut = ask(mock, history, tool_choice="none", max_tokens=2)
    assert cut["finish_reason"] == "length" and cut["message"]["content"] == "calculator: 391"
    # Only the results the conversation ends with are answered.
    later = [*history, *tool_turn([{"id": "x", "function": {"name": "unknown_tool"}}], ["?"])]
    assert streamed(mock, later)[0] == "unknown_tool: ?"


def test_none_skips_the_script_and_defaults_are_unchanged() -> None:
    with MockServerThread(MockConfig(dialect="llamacpp", tool_script=SCRIPT)) as plain:
        text = ask(plain, [USER], tool_choice="none")
        assert text["message"]["content"] == "".join(
            " " + w for w in CONTENT_WORDS[:12] + CONTENT_WORDS[:4]
        )
    with MockServerThread(MockConfig(dialect="llamacpp")) as default:
        calls = ask(default, [USER], tool_choice="required")["message"]["tool_calls"]
        history = [USER, *tool_turn(calls, ["391"])]
        # Without answer_tool_results, "required" keeps calling, as before.
        assert ask(default, history, tool_choice="required")["finish_reason"] == "tool_calls"
        assert ask(default, history, tool_choice="auto")["finish_reason"] == "stop"


def test_an_empty_step_answers_in_text() -> None:
    script = ((), (ScriptedCall("now"),))
    with MockServerThread(MockConfig(tool_script=script, dialect="llamacpp")) as mock:
        assert ask(mock, [USER], tool_choice="required")["finish_reason"] == "stop"


def test_config_validation_and_the_tool_script_option() -> None:
    with pytest.raises(ValueError, match="tuples of ScriptedCall"):
        MockConfig(tool_script=([ScriptedCall("a")],))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        ScriptedCall("")
    config = config_from_options(
        tool_script='[[{"name": "now", "arguments": {"timezone": "UTC"}}, {"name": "x", "arguments": "{bad"}], []]',
        answer_tool_results=True,
    )
    assert config.tool_script == (
        (ScriptedCall("now", '{"timezone": "UTC"}'), ScriptedCall("x", "{bad")),
        (),
    )
    assert config.answer_tool_results
    with pytest.raises(ValueError, match="list of steps"):
        config_from_options(tool_script='{"a": 1}')
