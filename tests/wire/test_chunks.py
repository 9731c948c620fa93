"""ChunkParser: every dialect quirk of BACKENDS.md, chunk by chunk."""

from __future__ import annotations

from typing import Any

import pytest

from llmcli.errors import StreamError
from llmcli.wire.chunks import ChunkParser, ToolCallAssembler, error_details, parse_usage
from llmcli.wire.events import (
    Answer,
    ContentDelta,
    Cost,
    Event,
    Finish,
    Started,
    Timings,
    ToolCall,
    ToolCallDelta,
    Usage,
)


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choices = (
        []
        if delta is None and finish is None
        else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    )
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "tiny",
        "choices": choices,
        **extra,
    }


def run(chunks: list[dict[str, Any]], *, split_think: bool = True) -> tuple[list[Event], Answer]:
    parser = ChunkParser(split_think=split_think)
    events: list[Event] = []
    for item in chunks:
        events += parser.parse(item)
    events += parser.finish()
    answer = Answer()
    for event in events:
        answer.apply(event)
    return events, answer


def test_role_only_first_chunk_gives_no_text() -> None:
    events, answer = run([chunk({"role": "assistant", "content": None})])
    assert events == [Started(model="tiny", response_id="c1")]
    assert answer.content == ""


def test_llama_server_stream_in_order() -> None:
    events, answer = run(
        [
            chunk({"role": "assistant", "content": None}),
            chunk({"reasoning_content": "plan it\n"}),
            chunk({"content": "Hi"}),
            chunk({"content": " there"}),
            chunk(
                {},
                finish="stop",
                timings={"prompt_n": 5, "predicted_n": 2, "predicted_per_second": 900.5},
            ),
            chunk(
                usage={
                    "prompt_tokens": 5,
                    "completion_tokens": 2,
                    "total_tokens": 7,
                    "prompt_tokens_details": {"cached_tokens": 3},
                }
            ),
        ]
    )
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "Started",
        "ReasoningDelta",
        "ContentDelta",
        "ContentDelta",
        "Finish",
        "Timings",
        "Usage",
    ]
    assert answer.reasoning == "plan it\n"
    assert answer.content == "Hi there"
    assert answer.finish_reason == "stop"
    assert answer.usage == Usage(
        prompt_tokens=5, completion_tokens=2, total_tokens=7, cached_tokens=3
    )
    assert answer.timings == Timings(prompt_n=5, predicted_n=2, predicted_per_second=900.5)


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_field_either_name(field: str) -> None:
    _, answer = run([chunk({field: "hmm"}), chunk({"content": "ok"}, finish="stop")])
    assert (answer.reasoning, answer.content) == ("hmm", "ok")


def test_inline_think_tags_split_across_chunks() -> None:
    pieces = ["<th", "ink>", "plan", " it</th", "ink>\n\n", "Hi", " there"]
    _, answer = run([chunk({"content": p}) for p in pieces] + [chunk({}, finish="stop")])
    assert answer.reasoning == "plan it"
    assert answer.content == "Hi there"


def test_inline_think_kept_for_text_completions() -> None:
    _, answer = run([chunk({"content": "<think>x</think>y"}, finish="stop")], split_think=False)
    assert answer.content == "<think>x</think>y"


def test_zen_usage_variants_and_cost_frame() -> None:
    events, answer = run(
        [
            chunk({"content": "a"}),
            chunk({}, finish="stop"),
            *[chunk() for _ in range(3)],  # zen: many empty choices chunks
            chunk(
                usage={
                    "prompt_tokens": 9,
                    "completion_tokens": 1,
                    "total_tokens": 10,
                    "cached_tokens": 4,
                    "completion_tokens_details": {"reasoning_tokens": 0},
                }
            ),
            {"choices": [], "cost": "0.00001234"},  # after [DONE], no id/object
        ]
    )
    assert answer.usage == Usage(9, 1, 10, cached_tokens=4, reasoning_tokens=0)
    assert answer.cost == "0.00001234"
    assert events.count(Cost("0.00001234")) == 1


def test_prompt_details_cached_tokens_win_over_top_level() -> None:
    usage = parse_usage({"prompt_tokens_details": {"cached_tokens": 2}, "cached_tokens": 7})
    assert usage.cached_tokens == 2


def test_tool_calls_assembled_by_index_and_emitted_before_finish() -> None:
    events, answer = run(
        [
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "a",
                            "type": "function",
                            "function": {"name": "calculator", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 1,
                            "id": "b",
                            "type": "function",
                            "function": {"name": "now", "arguments": '{"zone"'},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"expression": '}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"2+2"}'}}]}),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": ': "UTC"}'}}]}),
            chunk({}, finish="tool_calls"),
        ]
    )
    assert answer.tool_calls == [
        ToolCall(0, "a", "calculator", '{"expression": "2+2"}'),
        ToolCall(1, "b", "now", '{"zone": "UTC"}'),
    ]
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"
    assert sum(isinstance(e, ToolCallDelta) for e in events) == 5


def test_tool_calls_flushed_when_stream_ends_without_finish() -> None:
    assembler = ToolCallAssembler()
    assembler.add(ToolCallDelta(0, None, "f", "{}"))
    assert assembler.finish() == [ToolCall(0, "call_0", "f", "{}")]
    assert assembler.finish() == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"error": {"code": 500, "message": "slot died", "type": "server_error"}},
            "slot died (server_error)",
        ),
        ({"error": "plain text"}, "plain text"),
    ],
)
def test_error_inside_stream_raises_after_earlier_events(
    payload: dict[str, Any], message: str
) -> None:
    parser = ChunkParser()
    assert [e for e in parser.parse(chunk({"content": "par"})) if isinstance(e, ContentDelta)] == [
        ContentDelta("par")
    ]
    with pytest.raises(StreamError, match="mid-answer") as info:
        parser.parse(payload)
    assert message in str(info.value)


def test_non_object_chunk_is_malformed() -> None:
    with pytest.raises(StreamError, match="malformed"):
        ChunkParser().parse([1, 2])  # type: ignore[arg-type]


def test_text_completion_chunks() -> None:
    _, answer = run(
        [
            {"choices": [{"text": "Once", "index": 0}]},
            {
                "choices": [{"text": " upon", "index": 0, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                "timings": {"predicted_n": 2},
            },
        ],
        split_think=False,
    )
    assert (answer.content, answer.finish_reason, answer.timings) == (
        "Once upon",
        "length",
        Timings(predicted_n=2),
    )


def test_whole_body_gives_the_same_answer_as_a_stream() -> None:
    body = {
        "id": "x",
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "<think>r</think>c",
                    "tool_calls": [
                        {
                            "id": "t",
                            "type": "function",
                            "function": {"name": "f", "arguments": {"a": 1}},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    answer = Answer()
    for event in ChunkParser().parse_body(body):
        answer.apply(event)
    assert (answer.reasoning, answer.content, answer.finish_reason) == ("r", "c", "tool_calls")
    assert answer.tool_calls == [ToolCall(0, "t", "f", '{"a": 1}')]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {"type": "error", "error": {"type": "RateLimitError", "message": "slow down"}},
            ("slow down", "RateLimitError"),
        ),
        (
            {"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}},
            ("Invalid API Key", "authentication_error"),
        ),
        ({"error": "nope"}, ("nope", None)),
        ("<html>", (None, None)),
        ({"detail": "x"}, (None, None)),
    ],
)
def test_error_details_both_shapes(payload: Any, expected: tuple[str | None, str | None]) -> None:
    assert error_details(payload) == expected


def test_only_first_choice_counts() -> None:
    _, answer = run(
        [
            {
                "choices": [
                    {"index": 1, "delta": {"content": "other"}},
                    {"index": 0, "delta": {"content": "mine"}, "finish_reason": "stop"},
                ]
            }
        ]
    )
    assert answer.content == "mine"
