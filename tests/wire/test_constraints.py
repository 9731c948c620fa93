"""``--grammar`` and ``--json-schema``: request fields per dialect, and the real server obeying.

The tiny model has random weights, so whatever it says inside the constraint is noise:
only a working constraint makes these answers parse.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import WriteProfiles
from rig import LlamaServer
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.errors import UsageError
from llmcli.wire.constraints import constraint_fields, read_grammar, read_schema

SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "enum": ["Ada", "Alan", "Grace"]},
        "age": {"type": "integer", "minimum": 0, "maximum": 99},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("llamacpp", {"json_schema": SCHEMA}),
        (
            "zen",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
                }
            },
        ),
        (
            None,
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
                }
            },
        ),
    ],
)
def test_schema_fields_per_dialect(dialect: str | None, expected: dict[str, object]) -> None:
    assert constraint_fields(dialect, schema=SCHEMA) == expected


def test_grammar_fields() -> None:
    assert constraint_fields("llamacpp", grammar='root ::= "a"') == {"grammar": 'root ::= "a"'}
    assert constraint_fields("zen") == {}
    with pytest.raises(UsageError, match=re.escape("--grammar needs llama.cpp's llama-server")):
        constraint_fields("openai", grammar='root ::= "a"')
    with pytest.raises(UsageError, match="not both"):
        constraint_fields("llamacpp", grammar='root ::= "a"', schema=SCHEMA)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON (line 1, column 2"),
        ("[1]", "a schema is a JSON object, not list"),
    ],
)
def test_bad_schema_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "s.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=re.escape(message)):
        read_schema(path)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        read_schema(tmp_path / "nope.json")
    (tmp_path / "g.gbnf").write_text("\n")
    with pytest.raises(UsageError, match="the file is empty"):
        read_grammar(tmp_path / "g.gbnf")


# --- against the real llama-server ------------------------------------------------------


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def tiny(write_profiles: WriteProfiles, llama_plain: LlamaServer) -> str:
    write_profiles(f'[profiles.tiny]\nbase_url = "{llama_plain.base_url}"\ndialect = "llamacpp"\n')
    return "tiny"


def test_json_schema_answer_validates(tiny: str, tmp_path: Path) -> None:
    schema = tmp_path / "person.json"
    schema.write_text(json.dumps(SCHEMA))
    for seed in range(3):
        result = invoke(
            "complete", "-p", tiny, "--json-schema", str(schema), "--seed", str(seed),
            "--max-tokens", "200", "--no-log", "invent a person",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        person = json.loads(result.stdout)
        assert set(person) == {"name", "age"}
        assert person["name"] in ("Ada", "Alan", "Grace")
        assert isinstance(person["age"], int) and 0 <= person["age"] <= 99


def test_grammar_answer_follows_the_grammar(tiny: str, tmp_path: Path) -> None:
    grammar = tmp_path / "yesno.gbnf"
    grammar.write_text('root ::= ("yes" | "no") "."\n')
    for seed in range(3):
        result = invoke(
            "complete", "-p", tiny, "--grammar", str(grammar), "--seed", str(seed),
            "--raw", "--no-log", "ok?",
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        assert result.stdout in ("yes.\n", "no.\n")


def test_a_bad_grammar_is_one_line(tiny: str, tmp_path: Path) -> None:
    grammar = tmp_path / "bad.gbnf"
    grammar.write_text("root ::= (\n")
    result = invoke("complete", "-p", tiny, "--grammar", str(grammar), "--no-log", "ok?")
    assert result.exit_code != 0
    [line] = result.stderr.splitlines()
    assert line.startswith("llmcli: error: ") and "grammar" in line.lower()
