"""Tests for llmcli.wire.sse: WHATWG event-stream framing, fed whole and in awkward pieces."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from llmcli.wire.sse import ServerSentEvent, SSEDecoder

E = ServerSentEvent


def decode(chunks: Iterable[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


def decode_whole(stream: bytes) -> list[ServerSentEvent]:
    return decode([stream])


def decode_bytewise(stream: bytes) -> list[ServerSentEvent]:
    return decode(stream[i : i + 1] for i in range(len(stream)))


CASES: list[tuple[str, bytes, list[ServerSentEvent]]] = [
    ("lf", b"data: a\n\ndata: b\n\n", [E("a"), E("b")]),
    ("crlf", b"data: a\r\n\r\ndata: b\r\n\r\n", [E("a"), E("b")]),
    ("lone cr", b"data: a\r\rdata: b\r\r", [E("a"), E("b")]),
    ("mixed line ends", b"data: a\r\ndata: b\rdata: c\n\r\n", [E("a\nb\nc")]),
    ("multi-line data", b"data: one\ndata: two\ndata: three\n\n", [E("one\ntwo\nthree")]),
    ("comment", b": keep-alive\ndata: x\n\n", [E("x")]),
    ("comment only", b":\n\n: ping\n\n", []),
    ("comment inside event", b"data: a\n: note\ndata: b\n\n", [E("a\nb")]),
    ("no space after colon", b"data:x\n\n", [E("x")]),
    ("only one space stripped", b"data:  x \n\n", [E(" x ")]),
    ("tab is not stripped", b"data:\tx\n\n", [E("\tx")]),
    ("value keeps later colons", b"data: a: b:c\n\n", [E("a: b:c")]),
    ("empty data line", b"data:\n\n", [E("")]),
    ("data without colon", b"data\n\n", [E("")]),
    ("empty data lines joined", b"data\ndata\n\n", [E("\n")]),
    ("empty then text", b"data:\ndata: x\n\n", [E("\nx")]),
    ("no data is not dispatched", b"event: ping\n\n", []),
    ("id alone is not dispatched", b"id: 7\n\ndata: x\n\n", [E("x", id="7")]),
    ("event name", b"event: update\ndata: x\n\n", [E("x", event="update")]),
    ("empty event name", b"event:\ndata: x\n\n", [E("x")]),
    (
        "event name resets",
        b"event: update\ndata: x\n\ndata: y\n\n",
        [E("x", event="update"), E("y")],
    ),
    ("event without data resets", b"event: a\n\ndata: y\n\n", [E("y")]),
    ("id persists", b"id: 1\ndata: a\n\ndata: b\n\n", [E("a", id="1"), E("b", id="1")]),
    ("empty id resets", b"id: 1\ndata: a\n\nid\ndata: b\n\n", [E("a", id="1"), E("b", id="")]),
    (
        "id with nul ignored",
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [E("a", id="1"), E("b", id="1")],
    ),
    ("retry", b"retry: 3000\ndata: x\n\n", [E("x", retry=3000)]),
    ("retry is per event", b"retry: 5\ndata: x\n\ndata: y\n\n", [E("x", retry=5), E("y")]),
    ("retry not digits", b"retry: 30s\ndata: x\n\n", [E("x")]),
    ("retry signed", b"retry: -1\ndata: x\n\n", [E("x")]),
    ("retry empty", b"retry:\ndata: x\n\n", [E("x")]),
    ("retry non-ascii digits", "retry: ٣\ndata: x\n\n".encode(), [E("x")]),
    ("unknown field", b"foo: bar\ndata: x\n\n", [E("x")]),
    ("field names are case sensitive", b"Data: x\ndata: y\n\n", [E("y")]),
    ("field name with space", b"data : x\ndata: y\n\n", [E("y")]),
    ("bom stripped", b"\xef\xbb\xbfdata: x\n\n", [E("x")]),
    ("bom then comment", b"\xef\xbb\xbf: hi\ndata: x\n\n", [E("x")]),
    ("only first bom stripped", b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", []),
    ("bom later is data", b"data: a\n\ndata: \xef\xbb\xbfb\n\n", [E("a"), E("\ufeffb")]),
    ("invalid utf-8 replaced", b"data: a\xffb\xc3\n\n", [E("a\ufffdb\ufffd")]),
    ("utf-8 multibyte", "data: héllo → 世界 🎉\n\n".encode(), [E("héllo → 世界 🎉")]),
    (
        "u2028 and u2029 are not line ends",
        'data: {"t":"a\u2028b\u2029c\u0085d"}\n\n'.encode(),
        [E('{"t":"a\u2028b\u2029c\u0085d"}')],
    ),
    ("vertical tab and form feed are not line ends", b"data: a\x0bb\x0cc\n\n", [E("a\x0bb\x0cc")]),
    ("nul in data kept", b"data: a\x00b\n\n", [E("a\x00b")]),
    ("done", b'data: {"a":1}\n\ndata: [DONE]\n\n', [E('{"a":1}'), E("[DONE]")]),
    ("blank lines between events", b"\n\n\ndata: x\n\n\n\n", [E("x")]),
    ("empty stream", b"", []),
    # End of stream: the deliberate deviation (the spec would discard the pending event).
    ("no trailing blank line", b"data: a\n\ndata: b\n", [E("a"), E("b")]),
    ("no trailing newline", b"data: a\n\ndata: b", [E("a"), E("b")]),
    ("unterminated multi-line", b"data: a\ndata: b", [E("a\nb")]),
    ("unterminated field without data", b"data: a\n\nevent: x", [E("a")]),
    ("unterminated comment", b"data: a\n\n: bye", [E("a")]),
    ("trailing cr", b"data: a\r", [E("a")]),
]


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decodes_whole_stream(stream: bytes, expected: list[ServerSentEvent]) -> None:
    assert decode_whole(stream) == expected


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decodes_stream_fed_byte_by_byte(stream: bytes, expected: list[ServerSentEvent]) -> None:
    assert decode_bytewise(stream) == expected


def test_events_are_dispatched_on_the_blank_line_not_later() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [E("a")]
    assert decoder.feed(b"data: b\r") == []
    # The lone CR already ended the data line; the next CR ends the event at once,
    # without waiting to see whether an LF follows.
    assert decoder.feed(b"\r") == [E("b")]
    assert decoder.close() == []


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"data: a\r", b"\ndata: b\r\n\r\n"], [E("a\nb")]),
        ([b"data: a\r", b"\n", b"\r", b"\n"], [E("a")]),
        ([b"data: a\r", b"", b"\n\r\n"], [E("a")]),
        ([b"data: a\r\n\r", b"\n"], [E("a")]),
        ([b"data: a\r", b"\r\n"], [E("a")]),  # CR, then CRLF: two line ends
        ([b"data: a\r", b"\r"], [E("a")]),
        ([b"data: a\r\r", b"\ndata: b\n\n"], [E("a"), E("b")]),  # LF after the 2nd CR only
    ],
    ids=["cr|lf", "cr|lf|cr|lf", "cr|empty|lf", "crlfcr|lf", "cr|crlf", "cr|cr", "crcr|lf"],
)
def test_cr_lf_split_across_chunks_is_one_line_end(
    chunks: list[bytes], expected: list[ServerSentEvent]
) -> None:
    assert decode(chunks) == expected


def test_blank_line_after_cr_at_chunk_end_still_dispatches() -> None:
    # "data: a\r" + "\n" + "\n": the first LF completes the CRLF, the second is a blank line.
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [E("a")]


MULTIBYTE_STREAM = 'data: {"text":"é世🎉\u2028x"}\n\n'.encode()


@pytest.mark.parametrize("cut", range(1, len(MULTIBYTE_STREAM)))
def test_utf8_split_at_every_byte_offset(cut: int) -> None:
    chunks = [MULTIBYTE_STREAM[:cut], MULTIBYTE_STREAM[cut:]]
    assert decode(chunks) == [E('{"text":"é世🎉\u2028x"}')]


@pytest.mark.parametrize("cut", range(1, 4))
def test_bom_split_across_chunks(cut: int) -> None:
    stream = b"\xef\xbb\xbfdata: x\n\n"
    assert decode([stream[:cut], stream[cut:]]) == [E("x")]


def test_u2028_inside_json_survives_json_parsing() -> None:
    payload = {"choices": [{"delta": {"content": "line\u2028sep\u2029para"}}]}
    stream = b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"
    (event,) = decode_bytewise(stream)
    assert json.loads(event.data) == payload


def test_comments_are_counted() -> None:
    decoder = SSEDecoder()
    decoder.feed(b": ping\n\n:\ndata: x\n: a\n")
    assert decoder.comments == 3
    assert decoder.feed(b"\n") == [E("x")]
    decoder.feed(b": late")
    assert decoder.comments == 3  # not a line until it is ended
    decoder.close()
    assert decoder.comments == 4


def test_retry_without_data_updates_decoder() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: 1500\n\n") == []
    assert decoder.retry == 1500
    assert decoder.feed(b"retry: soon\n\n") == []
    assert decoder.retry == 1500


def test_last_event_id_attribute() -> None:
    decoder = SSEDecoder()
    assert decoder.last_event_id is None
    decoder.feed(b"id: abc\n\n")
    assert decoder.last_event_id == "abc"
    assert decoder.feed(b"data: x\n\n") == [E("x", id="abc")]


@pytest.mark.parametrize(
    ("stream", "mid_line"),
    [(b"data: a\n\n", False), (b"data: a\n", False), (b"data: a", True), (b"data: a\r", False)],
)
def test_close_reports_whether_the_stream_ended_mid_line(stream: bytes, mid_line: bool) -> None:
    decoder = SSEDecoder()
    decoder.feed(stream)
    decoder.close()
    assert decoder.ended_mid_line is mid_line


def test_close_is_idempotent_and_feed_after_close_is_a_bug() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a")
    assert decoder.close() == [E("a")]
    assert decoder.close() == []
    with pytest.raises(RuntimeError):
        decoder.feed(b"data: b\n\n")


def test_long_line_in_many_chunks() -> None:
    text = "x" * 200_000
    stream = f"data: {text}\n\n".encode()
    assert decode(stream[i : i + 7] for i in range(0, len(stream), 7)) == [E(text)]


def _frames(*payloads: str) -> bytes:
    return b"".join(f"data: {p}\n\n".encode() for p in payloads)


LLAMA_SERVER_STREAM = (
    _frames(
        '{"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],'
        '"created":1,"id":"chatcmpl-1","model":"tiny","object":"chat.completion.chunk"}',
        '{"choices":[{"finish_reason":null,"index":0,"delta":{"reasoning_content":"plan"}}],'
        '"object":"chat.completion.chunk"}',
        '{"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hé 世界 🎉"}}],'
        '"object":"chat.completion.chunk"}',
    )
    + b": keep-alive\n\n"
    + _frames(
        '{"choices":[{"finish_reason":"stop","index":0,"delta":{}}],"object":"chat.completion.chunk",'
        '"timings":{"prompt_n":5,"prompt_ms":1.2,"predicted_n":3,"predicted_ms":0.9}}',
        '{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}',
        "[DONE]",
    )
)

ZEN_STREAM = (
    b'data: {"id":"gen-1","choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}\r\n\r\n'
    b'data: {"id":"gen-1","choices":[{"index":0,"delta":{"content":"a\xe2\x80\xa8b"}}]}\r\n\r\n'
    b'data: {"id":"gen-1","choices":[]}\r\n\r\n'
    b'data: {"id":"gen-1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\r\n\r\n'
    b"data: [DONE]\r\n\r\n"
    b'data: {"choices":[],"cost":"0.00001234"}'
)

SAMPLE_STREAMS = {
    "llama-server": LLAMA_SERVER_STREAM,
    "zen": ZEN_STREAM,
    "lone cr": LLAMA_SERVER_STREAM.replace(b"\n", b"\r"),
    "crlf": LLAMA_SERVER_STREAM.replace(b"\n", b"\r\n"),
    "bom and fields": b"\xef\xbb\xbfretry: 10\r\nid: 9\nevent: e\rdata: \xf0\x9f\x8e\x89\n\n"
    b": c\ndata\ndata:  two\r\n\r\nid\x00x\ndata: z",
    "frames after an id": b"id: 7\ndata: a\n\ndata: b\n\ndata: \xff\xfeb\n\ndata: \n\n"
    b"data: c\n\n\ndata: d\n\ndata: e\ndata: f\n\nevent: x\n\ndata: g\n\n",
}


def _frame_pieces(stream: bytes, per_piece: int) -> list[bytes]:
    """``stream`` cut after every ``per_piece``-th blank line, as servers write frames."""
    pieces: list[bytes] = []
    start = seen = 0
    position = stream.find(b"\n\n")
    while position >= 0:
        seen += 1
        if seen % per_piece == 0:
            pieces.append(stream[start : position + 2])
            start = position + 2
        position = stream.find(b"\n\n", position + 2)
    return [*pieces, stream[start:]]


@pytest.mark.parametrize("stream", SAMPLE_STREAMS.values(), ids=SAMPLE_STREAMS.keys())
def test_any_chunking_gives_the_same_events(stream: bytes) -> None:
    expected = decode_whole(stream)
    assert expected  # a sample that decodes to nothing would prove nothing
    assert decode_bytewise(stream) == expected
    for size in (2, 3, 5, 8, 13, 64):
        assert decode(stream[i : i + size] for i in range(0, len(stream), size)) == expected
    for cut in range(1, len(stream)):
        assert decode([stream[:cut], stream[cut:]]) == expected
    for per_piece in (1, 2, 3):
        assert decode(_frame_pieces(stream, per_piece)) == expected


def test_whole_data_frames_skip_the_line_by_line_path(monkeypatch: pytest.MonkeyPatch) -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 3\ndata: first\n\n") == [E("first", id="3")]

    def line_by_line(*_: object) -> None:
        raise AssertionError("a frame of whole data lines took the line-by-line path")

    monkeypatch.setattr(decoder, "_process_line", line_by_line)
    assert decoder.feed(b"data: a\n\n") == [E("a", id="3")]
    assert decoder.feed(b"data: {}\n\ndata: [DONE]\n\n") == [E("{}", id="3"), E("[DONE]", id="3")]


def test_llama_server_stream_decodes_to_json_frames_then_done() -> None:
    events = decode_whole(LLAMA_SERVER_STREAM)
    assert [e.data for e in events][-1] == "[DONE]"
    frames = [json.loads(e.data) for e in events[:-1]]
    assert frames[2]["choices"][0]["delta"]["content"] == "Hé 世界 🎉"
    assert frames[-1]["usage"]["total_tokens"] == 8
    assert all(e.event == "message" and e.id is None for e in events)


def test_zen_stream_keeps_the_cost_frame_after_done() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(ZEN_STREAM) + decoder.close()
    assert [e.data for e in events][-2] == "[DONE]"
    assert json.loads(events[-1].data) == {"choices": [], "cost": "0.00001234"}
    assert json.loads(events[1].data)["choices"][0]["delta"]["content"] == "a\u2028b"
    assert decoder.ended_mid_line
