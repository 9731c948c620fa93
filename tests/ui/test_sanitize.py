"""Tests for llmcli.ui.sanitize: untrusted text made inert for the terminal and for JSON."""

from __future__ import annotations

import json
import random

import pytest

from llmcli.ui.sanitize import dumps_json, neutralize

BIDI = [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]


def _is_unsafe(char: str) -> bool:
    code = ord(char)
    return (code < 0x20 and char not in "\n\t") or 0x7F <= code <= 0x9F or code in BIDI


@pytest.mark.parametrize("code", [c for c in range(0x20) if chr(c) not in "\n\t"])
def test_c0_control_becomes_control_picture(code: int) -> None:
    assert neutralize(f"a{chr(code)}b") == f"a{chr(0x2400 + code)}b"


def test_del_becomes_its_symbol() -> None:
    assert neutralize("a\x7fb") == "a\u2421b"


@pytest.mark.parametrize("code", range(0x80, 0xA0))
def test_c1_control_becomes_escape_text(code: int) -> None:
    assert neutralize(f"a{chr(code)}b") == f"a\\x{code:02x}b"
    assert neutralize(f"é{chr(code)}") == f"é\\x{code:02x}"  # non-ASCII path too


@pytest.mark.parametrize("code", BIDI)
def test_bidi_control_becomes_visible_code(code: int) -> None:
    assert neutralize(f"a{chr(code)}b") == f"a<U+{code:04X}>b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[2J", "␛[2J"),
        ("\x1b[31mred\x1b[0m", "␛[31mred␛[0m"),
        ("\x1b]0;title\x07", "␛]0;title␇"),
        (
            "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
            "␛]8;;https://evil.example␛\\click␛]8;;␛\\",
        ),
        ("\x9b31m", "\\x9b31m"),
        ("\x9d0;t\x9c", "\\x9d0;t\\x9c"),
        ("\x1bP+q\x1b\\", "␛P+q␛\\"),
        (
            "if (admin\u202e \u2066// check\u2069\u2066) {",
            "if (admin<U+202E> <U+2066>// check<U+2069><U+2066>) {",
        ),
        ("a\r\nb", "a\nb"),
        ("a\r\n\r\nb", "a\n\nb"),
        ("safe\rEVIL", "safe␍EVIL"),
        ("a\r\r\nb", "a␍\nb"),
        ("a\n\rb", "a\n␍b"),
        ("end\r", "end␍"),
        ("\b\b\bxyz", "␈␈␈xyz"),
        ("a\x00b", "a␀b"),
    ],
)
def test_escape_sequences_are_inert(text: str, expected: str) -> None:
    assert neutralize(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        'plain ASCII text, with punctuation: ~!@#$%^&*()_+{}|:"<>?',
        "line one\n\tindented line two\n",
        "Ünïcödé — “quotes” … ½ ∑ √",
        "日本語のテキスト、中文文本、한국어",
        "emoji 🎉👩‍👩‍👧‍👦🏳️‍🌈 and flags 🇯🇵",
        "Hebrew עברית and Arabic العربية with natural direction",
        "marks \u200e\u200f\u061c and zero width \u200b\u200d are left alone",
        "\u00a0no-break space and \u00ad soft hyphen (just past C1)",
        "\u2028 and \u2029 are printed as they are",
    ],
)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert neutralize(text) == text


def test_every_code_point_below_0x300_and_bidi() -> None:
    for code in [*range(0x300), *BIDI]:
        char = chr(code)
        for text in (char, "x" + char, "é" + char):  # both the ASCII and the non-ASCII path
            result = neutralize(text)
            if char in "\n\t" or not _is_unsafe(char):
                assert result == text
            else:
                assert char not in result
                assert not any(_is_unsafe(c) for c in result)


def _random_text(rng: random.Random) -> str:
    alphabet = [chr(c) for c in [*range(0x300), *BIDI, 0x2028, 0x2029, 0x1F389, 0x4E16]]
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))


@pytest.mark.parametrize("seed", range(20))
def test_dumps_json_round_trips_and_carries_no_raw_controls(seed: int) -> None:
    rng = random.Random(seed)
    obj = {
        _random_text(rng): [_random_text(rng) for _ in range(5)],
        "nested": {"k": _random_text(rng), "n": 1.5, "b": True, "z": None},
        "all": "".join(chr(c) for c in [*range(0x300), *BIDI]),
    }
    for indent in (None, 2):
        text = dumps_json(obj, indent=indent)
        assert json.loads(text) == obj
        unsafe = [c for c in text if _is_unsafe(c) and c != "\n"]
        assert unsafe == []


def test_dumps_json_is_readable_and_escapes_only_what_it_must() -> None:
    obj = {"t": "héllo 世界 🎉 \u2028", "c": "\x1b\x7f\x85\u202e"}
    assert dumps_json(obj) == '{"t": "héllo 世界 🎉 \u2028", "c": "\\u001b\\u007f\\u0085\\u202e"}'
    assert dumps_json(["a"], indent=2) == '[\n  "a"\n]'
    assert dumps_json({"k": "\x9b"}) == '{"k": "\\u009b"}'  # ASCII-only text path
