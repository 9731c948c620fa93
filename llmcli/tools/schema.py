"""The small part of JSON Schema that tool arguments are checked against.

Models write tool arguments; a small or confused model writes wrong ones. Each call's
arguments are checked against the tool's schema before the tool runs, and every problem
goes back to the model as an error result it can correct.

Supported keywords: ``type`` (a name or a list of names), ``enum``, ``const``,
``properties``, ``required``, ``additionalProperties`` (``false`` or a schema), ``items``,
``minItems``/``maxItems``, ``minLength``/``maxLength``, ``pattern``, ``minimum``/``maximum``
and ``exclusiveMinimum``/``exclusiveMaximum`` (numbers). Other keywords are ignored, so a
schema using them validates less, never more. As in JSON Schema, ``true`` and ``false`` are
not numbers, and ``1.0`` is an integer.

:func:`check_schema` refuses a schema this module cannot apply (used when loading a
user's tool file, where a typo must fail loudly rather than validate nothing).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

TYPE_NAMES: Final = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
MAX_ERRORS: Final = 5


class SchemaError(ValueError):
    """A schema that cannot be applied (see :func:`check_schema`)."""


def type_of(value: object) -> str:
    """The JSON type name of a decoded JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _is_type(value: object, name: str) -> bool:
    actual = type_of(value)
    if name == "number":
        return actual in ("integer", "number")
    if name == "integer":
        return actual == "integer" or (isinstance(value, float) and value.is_integer())
    return actual == name


def validate(value: object, schema: Mapping[str, Any], where: str = "arguments") -> list[str]:
    """Problems with ``value`` under ``schema``, as short sentences (empty: valid)."""
    problems: list[str] = []
    _check(value, schema, where, problems)
    return problems[:MAX_ERRORS]


def _check(value: object, schema: Mapping[str, Any], where: str, problems: list[str]) -> None:
    if len(problems) >= MAX_ERRORS:
        return
    kind = schema.get("type")
    names = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else None
    if names and not any(_is_type(value, name) for name in names):
        problems.append(f"{where}: expected {' or '.join(names)}, got {type_of(value)}")
        return
    if "const" in schema and not _same(value, schema["const"]):
        problems.append(f"{where}: must be {schema['const']!r}")
    enum = schema.get("enum")
    if isinstance(enum, list) and not any(_same(value, item) for item in enum):
        problems.append(f"{where}: must be one of {', '.join(repr(item) for item in enum)}")
    if isinstance(value, dict):
        _check_object(value, schema, where, problems)
    elif isinstance(value, list):
        _check_array(value, schema, where, problems)
    elif isinstance(value, str):
        _check_string(value, schema, where, problems)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(value, schema, where, problems)


def _same(a: object, b: object) -> bool:
    """JSON equality: ``true`` is not ``1``, but ``1`` is ``1.0``."""
    numbers = ("integer", "number")
    if type_of(a) in numbers and type_of(b) in numbers:
        return a == b
    return type_of(a) == type_of(b) and a == b


def _check_object(
    value: dict[str, Any], schema: Mapping[str, Any], where: str, problems: list[str]
) -> None:
    properties = schema.get("properties")
    properties = properties if isinstance(properties, Mapping) else {}
    required = schema.get("required")
    for name in required if isinstance(required, list) else ():
        if isinstance(name, str) and name not in value:
            problems.append(f"{where}: missing required property {name!r}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        sub = properties.get(name)
        if isinstance(sub, Mapping):
            _check(item, sub, f"{where}.{name}", problems)
        elif extra is False:
            allowed = ", ".join(repr(key) for key in properties) or "none"
            problems.append(f"{where}: unknown property {name!r} (allowed: {allowed})")
        elif isinstance(extra, Mapping):
            _check(item, extra, f"{where}.{name}", problems)


def _check_array(
    value: list[Any], schema: Mapping[str, Any], where: str, problems: list[str]
) -> None:
    _check_size(len(value), schema, "minItems", "maxItems", "items", where, problems)
    items = schema.get("items")
    if isinstance(items, Mapping):
        for index, item in enumerate(value):
            _check(item, items, f"{where}[{index}]", problems)


def _check_string(value: str, schema: Mapping[str, Any], where: str, problems: list[str]) -> None:
    _check_size(len(value), schema, "minLength", "maxLength", "characters", where, problems)
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            matched = re.search(pattern, value) is not None
        except re.error:
            matched = True  # check_schema refuses these in user files; be lenient elsewhere
        if not matched:
            problems.append(f"{where}: does not match the pattern {pattern!r}")


def _check_size(
    size: int,
    schema: Mapping[str, Any],
    low_key: str,
    high_key: str,
    unit: str,
    where: str,
    problems: list[str],
) -> None:
    low, high = schema.get(low_key), schema.get(high_key)
    if isinstance(low, int) and size < low:
        problems.append(f"{where}: needs at least {low} {unit}, has {size}")
    if isinstance(high, int) and size > high:
        problems.append(f"{where}: allows at most {high} {unit}, has {size}")


_BOUNDS: Final[tuple[tuple[str, Callable[[float, float], bool], str], ...]] = (
    ("minimum", operator.ge, "at least"),
    ("maximum", operator.le, "at most"),
    ("exclusiveMinimum", operator.gt, "more than"),
    ("exclusiveMaximum", operator.lt, "less than"),
)


def _check_number(value: float, schema: Mapping[str, Any], where: str, problems: list[str]) -> None:
    for key, holds, words in _BOUNDS:
        limit = schema.get(key)
        if (
            isinstance(limit, int | float)
            and not isinstance(limit, bool)
            and not holds(value, limit)
        ):
            problems.append(f"{where}: must be {words} {limit}, got {value}")


# -- checking a schema itself ------------------------------------------------------------

_SCHEMA_KEYS: Final = {
    "type": "a type name or a list of them",
    "enum": "a list",
    "properties": "a table of schemas",
    "required": "a list of property names",
    "additionalProperties": "true, false or a schema",
    "items": "a schema",
    "minItems": "an integer",
    "maxItems": "an integer",
    "minLength": "an integer",
    "maxLength": "an integer",
    "pattern": "a regular expression",
    "minimum": "a number",
    "maximum": "a number",
    "exclusiveMinimum": "a number",
    "exclusiveMaximum": "a number",
}


def check_schema(schema: object, where: str = "parameters") -> None:
    """Raise :class:`SchemaError` if ``schema`` uses the supported keywords wrongly."""
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{where}: a schema is a table, not {type_of(schema)}")
    for key, value in schema.items():
        expected = _SCHEMA_KEYS.get(key)
        if expected is not None and not _well_formed(key, value):
            raise SchemaError(f"{where}.{key}: must be {expected}")
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        for name, sub in properties.items():
            check_schema(sub, f"{where}.properties.{name}")
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, Mapping):
            check_schema(sub, f"{where}.{key}")


def _well_formed(key: str, value: object) -> bool:
    kind = type_of(value)
    if key == "type":
        names = [value] if isinstance(value, str) else value
        return isinstance(names, list) and bool(names) and all(n in TYPE_NAMES for n in names)
    if key == "enum":
        return kind == "array"
    if key == "properties":
        return isinstance(value, Mapping)
    if key == "required":
        return isinstance(value, list) and all(isinstance(n, str) for n in value)
    if key in ("items", "additionalProperties"):
        return isinstance(value, Mapping) or (key == "additionalProperties" and kind == "boolean")
    if key == "pattern":
        if not isinstance(value, str):
            return False
        try:
            re.compile(value)
        except re.error:
            return False
        return True
    if key.startswith(("min", "max")) and key not in ("minimum", "maximum"):
        return kind == "integer" and value >= 0  # type: ignore[operator]
    return kind in ("integer", "number")
