"""Output constraints: a GBNF grammar or a JSON schema, as request fields for a dialect.

llama-server takes both natively (``grammar``, ``json_schema``) and turns them into a
sampling grammar. Other OpenAI-compatible backends take a JSON schema as
``response_format`` and have no grammars; zen's upstreams may or may not honour it.
Pure: reading the files is the only I/O.
"""

from __future__ import annotations

import json
from pathlib import Path

from llmcli.errors import UsageError

SCHEMA_NAME = "answer"


def read_grammar(path: Path) -> str:
    """A GBNF grammar file's text."""
    text = _read(path, "--grammar")
    if not text.strip():
        raise UsageError(f"--grammar {path}: the file is empty; it needs a 'root ::= ...' rule")
    return text


def read_schema(path: Path) -> dict[str, object]:
    """A JSON schema file, which must hold one JSON object."""
    text = _read(path, "--json-schema")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"--json-schema {path}: not JSON (line {error.lineno}, column {error.colno}: "
            f"{error.msg})"
        ) from None
    if not isinstance(schema, dict):
        raise UsageError(
            f"--json-schema {path}: a schema is a JSON object, not {type(schema).__name__}"
        )
    return schema


def constraint_fields(
    dialect: str | None, *, grammar: str | None = None, schema: dict[str, object] | None = None
) -> dict[str, object]:
    """The request fields that apply ``grammar`` or ``schema`` (at most one) for ``dialect``.

    ``dialect`` ``None`` (not known yet) gets ``response_format``, which llama-server
    understands too.
    """
    if grammar is not None and schema is not None:
        raise UsageError("give --grammar or --json-schema, not both")
    if grammar is not None:
        if dialect != "llamacpp":
            raise UsageError(
                "--grammar needs llama.cpp's llama-server (this profile's dialect is "
                f"{dialect or 'unknown'}); use --json-schema for JSON answers"
            )
        return {"grammar": grammar}
    if schema is None:
        return {}
    if dialect == "llamacpp":
        return {"json_schema": schema}
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True},
        }
    }


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{option} {path}: cannot read: {error}") from None
