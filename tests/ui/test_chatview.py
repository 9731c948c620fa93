"""The chat answer display: tool calls as they stream, reasoning collapse, the status line."""

from __future__ import annotations

import io
from collections.abc import Iterator

from llmcli.ui.chatview import TerminalChatView, status_line
from llmcli.wire.events import (
    Answer,
    ContentDelta,
    Event,
    Outcome,
    ReasoningDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)


def ticking(start: float = 100.0, step: float = 0.5) -> Iterator[float]:
    now = start
    while True:
        yield now
        now += step


def show(events: list[Event], mode: str = "collapse") -> str:
    out = io.StringIO()
    clock = ticking()
    view = TerminalChatView(
        out, color=False, markdown=False, reasoning=lambda: mode, clock=lambda: next(clock)
    )
    display = view.begin_answer("m")
    outcome = Outcome()
    for event in events:
        outcome.observe(event)
        display(event)
    view.end_answer(outcome)
    return out.getvalue()


def test_tool_calls_show_as_they_stream() -> None:
    shown = show(
        [
            ToolCallDelta(0, "a", "calculator", ""),
            ToolCallDelta(0, None, None, '{"expression"'),
            ToolCallDelta(0, None, None, ': "2+2"}'),
            ToolCallDelta(1, "b", "now", '{"zone": "UTC"}'),
            ToolCall(0, "a", "calculator", '{"expression": "2+2"}'),
            ToolCall(1, "b", "now", '{"zone": "UTC"}'),
        ]
    )
    lines = shown.splitlines()
    assert lines[0] == '→ calculator({"expression": "2+2"})'
    assert lines[1] == '→ now({"zone": "UTC"})'


def test_a_call_sent_whole_is_shown_once() -> None:
    shown = show([ToolCall(0, "a", "f", "{}")])
    assert shown.splitlines()[0] == "→ f({})"


def test_reasoning_collapses_to_one_line_then_the_answer() -> None:
    shown = show([ReasoningDelta("plan"), ReasoningDelta(" it"), ContentDelta("Hi")])
    lines = shown.splitlines()
    assert lines[0].startswith("thought for ") and "2 tokens" in lines[0]
    assert lines[1] == "Hi"
    assert "plan" not in shown


def test_reasoning_shown_stays_on_screen() -> None:
    shown = show([ReasoningDelta("plan it"), ContentDelta("Hi")], mode="show")
    assert shown.splitlines()[:2] == ["plan it", "Hi"]


def test_control_characters_are_neutralised() -> None:
    shown = show([ContentDelta("a\x1b[2Jb"), ToolCall(0, "x", "f\x07", "{}")])
    assert "\x1b" not in shown and "\x07" not in shown
    assert "a␛[2Jb" in shown


def test_status_line_reports_what_is_known() -> None:
    outcome = Outcome(answer=Answer(model="tiny", usage=Usage(10, 5, 15, cached_tokens=4)))
    outcome.started, outcome.first_token, outcome.ended = 1.0, 1.25, 2.25
    assert status_line(outcome, None) == (
        "tiny · TTFT 0.25 s · 4.0 tok/s · 10 prompt / 5 completion / 4 cached tokens"
    )
    assert status_line(Outcome(), "m") == ""  # nothing arrived: no stray "model ?" line


def test_status_line_says_an_answer_was_cut_at_the_token_limit() -> None:
    outcome = Outcome(answer=Answer(model="tiny", usage=Usage(3, 8, 11), finish_reason="length"))
    outcome.started, outcome.first_token = 0.5, 1.0
    line = status_line(outcome, None)
    assert line.startswith("tiny · TTFT 0.50 s") and line.endswith(" · cut at --max-tokens")


def test_status_line_names_the_conversations_model_when_the_server_did_not() -> None:
    outcome = Outcome()
    outcome.observe(ContentDelta("hi"))
    assert status_line(outcome, "big-pickle").startswith("big-pickle")
    assert "model ?" not in show([ContentDelta("hi")])


def test_a_failed_answer_is_its_error_line_alone() -> None:
    out = io.StringIO()
    view = TerminalChatView(out, color=False, markdown=False, reasoning=lambda: "collapse")
    view.begin_answer("m")
    outcome = Outcome()
    outcome.error = "cannot reach http://127.0.0.1:9/v1: connection refused"
    view.end_answer(outcome)
    assert out.getvalue() == "cannot reach http://127.0.0.1:9/v1: connection refused\n"


def test_hidden_reasoning_leaves_no_line() -> None:
    shown = show([ReasoningDelta("plan"), ContentDelta("Hi")], mode="hide")
    assert shown.splitlines()[0] == "Hi"
    assert "thought" not in shown and "plan" not in shown


def test_a_model_name_with_escapes_is_neutralised_on_the_status_line() -> None:
    outcome = Outcome(answer=Answer(model="evil\x1b]0;pwned\x07\x1b[2J", usage=Usage(1, 1, 2)))
    outcome.first_token = 1.0
    line = status_line(outcome, None)
    assert "\x1b" not in line and "\x07" not in line
    assert line.startswith("evil␛]0;pwned␇␛[2J")
