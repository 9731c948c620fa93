"""Argument validation against the supported part of JSON Schema, and schema checking."""

from __future__ import annotations

from typing import Any

import pytest

from llmcli.tools.schema import SchemaError, check_schema, validate

WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 20},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "unit": {"type": "string", "enum": ["c", "f"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "note": {"type": ["string", "null"]},
        "where": {
            "type": "object",
            "properties": {"lat": {"type": "number"}},
            "required": ["lat"],
            "additionalProperties": False,
        },
    },
    "required": ["city"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    "value",
    [
        {"city": "Oslo"},
        {"city": "Oslo", "days": 3, "unit": "c", "tags": ["a"], "ratio": 0.5, "code": "OSL"},
        {"city": "Oslo", "days": 3.0},  # 3.0 is an integer in JSON Schema
        {"city": "Oslo", "note": None},
        {"city": "Oslo", "where": {"lat": 59}},
    ],
)
def test_valid(value: dict[str, Any]) -> None:
    assert validate(value, WEATHER) == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({}, "arguments: missing required property 'city'"),
        ({"city": 7}, "arguments.city: expected string, got integer"),
        ({"city": ""}, "arguments.city: needs at least 1 characters, has 0"),
        ({"city": "x" * 21}, "arguments.city: allows at most 20 characters, has 21"),
        ({"city": "a", "days": True}, "arguments.days: expected integer, got boolean"),
        ({"city": "a", "days": 2.5}, "arguments.days: expected integer, got number"),
        ({"city": "a", "days": "3"}, "arguments.days: expected integer, got string"),
        ({"city": "a", "days": 0}, "arguments.days: must be at least 1, got 0"),
        ({"city": "a", "days": 8}, "arguments.days: must be at most 7, got 8"),
        ({"city": "a", "unit": "k"}, "arguments.unit: must be one of 'c', 'f'"),
        ({"city": "a", "tags": ["x", 1]}, "arguments.tags[1]: expected string, got integer"),
        ({"city": "a", "tags": ["x", "y", "z"]}, "arguments.tags: allows at most 2 items, has 3"),
        ({"city": "a", "ratio": 1}, "arguments.ratio: must be less than 1, got 1"),
        ({"city": "a", "ratio": 0}, "arguments.ratio: must be more than 0, got 0"),
        ({"city": "a", "code": "osl"}, "arguments.code: does not match the pattern '^[A-Z]{3}$'"),
        ({"city": "a", "note": 1}, "arguments.note: expected string or null, got integer"),
        ({"city": "a", "where": {}}, "arguments.where: missing required property 'lat'"),
        (
            {"city": "a", "where": {"lat": 1, "lon": 2}},
            "arguments.where: unknown property 'lon' (allowed: 'lat')",
        ),
        ({"city": "a", "country": "NO"}, "arguments: unknown property 'country'"),
        ([], "arguments: expected object, got array"),
    ],
)
def test_invalid(value: object, problem: str) -> None:
    problems = validate(value, WEATHER)
    assert problems and problems[0].startswith(problem), problems


def test_problems_are_capped() -> None:
    schema = {"type": "object", "required": [f"p{i}" for i in range(20)]}
    assert len(validate({}, schema)) == 5


def test_enum_and_const_use_json_equality() -> None:
    assert validate(True, {"enum": [1]}) == ["arguments: must be one of 1"]
    assert validate(1.0, {"enum": [1]}) == []
    assert validate(1, {"const": True}) == ["arguments: must be True"]


def test_unknown_keywords_are_ignored() -> None:
    assert validate({"a": 1}, {"type": "object", "anyOf": [{"required": ["b"]}]}) == []


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("object", "parameters: a schema is a table"),
        ({"type": "strin"}, "parameters.type: must be a type name"),
        ({"type": []}, "parameters.type: must be a type name"),
        ({"required": "city"}, "parameters.required: must be a list of property names"),
        ({"properties": []}, "parameters.properties: must be a table of schemas"),
        ({"properties": {"a": {"type": "text"}}}, "parameters.properties.a.type"),
        ({"properties": {"a": {"pattern": "("}}}, "parameters.properties.a.pattern"),
        ({"items": {"maxItems": -1}}, "parameters.items.maxItems: must be an integer"),
        ({"minimum": "1"}, "parameters.minimum: must be a number"),
        ({"additionalProperties": "no"}, "parameters.additionalProperties"),
    ],
)
def test_check_schema_refuses(schema: object, message: str) -> None:
    with pytest.raises(SchemaError, match="^" + message.replace(".", r"\.")):
        check_schema(schema)


def test_check_schema_accepts() -> None:
    check_schema(WEATHER)
    check_schema({"type": "object", "properties": {}})
