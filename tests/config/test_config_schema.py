"""Tests for llmcli.config.schema: every field PROFILE_FIELDS names (from the dataclasses)
reaches a check of its own."""

from __future__ import annotations

import pytest

from llmcli.config.schema import PROFILE_FIELDS, check_fields
from llmcli.errors import ConfigError


@pytest.mark.parametrize("key", PROFILE_FIELDS)
def test_every_field_has_a_check(key: str) -> None:
    # A value no field accepts: each key must reach its own check, not "unknown field".
    with pytest.raises(ConfigError) as caught:
        check_fields("p", {key: object()}, "f: ")
    assert str(caught.value).startswith(f"f: {key} in profile 'p'")
    assert "unknown field" not in str(caught.value)
