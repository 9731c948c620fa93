"""Tests for llmcli.config.frozen: JSON-like values frozen and thawed back."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from llmcli.config.frozen import freeze, thaw

VALUES: list[object] = [
    None,
    1,
    "text",
    [],
    {},
    [1, [2, 3], {"a": [4]}],
    {"stop": ["END"], "nested": {"deep": {"list": [1, {"x": None}]}}, "n": 1.5},
]


@pytest.mark.parametrize("value", VALUES)
def test_thaw_gives_back_what_was_frozen(value: object) -> None:
    assert thaw(freeze(value)) == value


def test_freeze_leaves_nothing_mutable() -> None:
    frozen = freeze({"a": [1, {"b": [2]}]})
    assert isinstance(frozen, Mapping)
    inner = frozen["a"]
    assert inner == (1, {"b": (2,)})
    with pytest.raises(TypeError):
        frozen["a"] = 1  # type: ignore[index]


def test_thaw_returns_a_fresh_copy_each_time() -> None:
    frozen = freeze({"a": [1]})
    first = thaw(frozen)
    assert isinstance(first, dict)
    first["a"].append(2)
    assert thaw(frozen) == {"a": [1]}
