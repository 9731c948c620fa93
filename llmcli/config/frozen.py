"""Frozen JSON-like values: tables become read-only mappings, arrays become tuples.

A ``Profile`` is frozen, so the request fields it carries (``params``) are frozen too;
``thaw`` gives back plain dicts and lists, ready for JSON, as a fresh copy each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


def freeze(value: object) -> object:
    """``value`` with every dict made a read-only mapping and every list a tuple."""
    if isinstance(value, dict):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: object) -> object:
    """The plain copy of a frozen ``value``: mappings become dicts, tuples lists."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value
