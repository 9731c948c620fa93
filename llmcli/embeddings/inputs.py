"""What is embedded: the inputs, read from arguments, lines or JSONL, and their vectors.

``inputs_from_texts`` (arguments, ids 1..n), ``inputs_from_lines`` (stdin or a text file:
one input per line, blank lines skipped, the id is the line number) and
``read_input_file`` (text lines, or JSONL objects ``{"text": ..., "id": ...}``, detected by
a ``.jsonl`` name or a first non-blank ``{``). An ``Embedding`` is one input's vector.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from llmcli.errors import UsageError
from llmcli.ui.sanitize import neutralize
from llmcli.ui.stdin_text import bad_byte

InputId = str | int

_SNIPPET: Final = 24


@dataclass(frozen=True, slots=True)
class EmbeddingInput:
    """One text to embed and the id it is known by in the output."""

    id: InputId
    text: str


@dataclass(frozen=True, slots=True)
class Embedding:
    """One input's vector; ``truncated`` when the server saw only the first part of it."""

    id: InputId
    text: str
    vector: array[float]
    truncated: bool = False


def inputs_from_texts(texts: Sequence[str]) -> list[EmbeddingInput]:
    """Inputs given as arguments: ids 1..n. An empty one is refused (servers refuse it)."""
    for number, text in enumerate(texts, 1):
        if not text:
            raise UsageError(f"input {number} is empty: there is nothing to embed")
    return [EmbeddingInput(number, text) for number, text in enumerate(texts, 1)]


def inputs_from_lines(text: str) -> list[EmbeddingInput]:
    """One input per line (LF or CRLF); blank lines are skipped; the id is the line number."""
    return [
        EmbeddingInput(number, line)
        for number, line in enumerate(_split_lines(text), 1)
        if line.strip()
    ]


def inputs_from_jsonl(text: str, *, source: str) -> list[EmbeddingInput]:
    """One JSON object per line with ``text`` and an optional ``id`` (else the line number)."""
    inputs: list[EmbeddingInput] = []
    for number, line in enumerate(_split_lines(text), 1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(
                f"{where}: not JSON ({error.msg}); JSONL needs one object a line"
            ) from None
        if not isinstance(record, dict):
            raise UsageError(f'{where}: expected an object like {{"id": 1, "text": "..."}}')
        value = record.get("text")
        if not isinstance(value, str) or not value:
            raise UsageError(f'{where}: needs a non-empty "text" string')
        input_id = record.get("id", number)
        if isinstance(input_id, bool) or not isinstance(input_id, str | int):
            raise UsageError(f'{where}: "id" must be a string or an integer')
        inputs.append(EmbeddingInput(input_id, value))
    return inputs


def read_input_file(path: Path) -> list[EmbeddingInput]:
    """Inputs from a file: JSONL when named ``*.jsonl`` or starting with ``{``, else lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        # A file is refused, not patched: saved once as UTF-8 it stays right.
        raise UsageError(f"{path}: not UTF-8 text ({bad_byte(error)}); save it as UTF-8") from None
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    if path.suffix.lower() == ".jsonl" or text.lstrip().startswith("{"):
        return inputs_from_jsonl(text, source=str(path))
    return inputs_from_lines(text)


def _split_lines(text: str) -> list[str]:
    # Not str.splitlines(): form feeds, U+2028 and friends are text here, not line ends.
    return [line.removesuffix("\r") for line in text.split("\n")]


def describe_input(item: EmbeddingInput) -> str:
    """How an error names an input: its id and the start of its text, made inert."""
    snippet = item.text if len(item.text) <= _SNIPPET else item.text[:_SNIPPET] + "…"
    shown_id = item.id if isinstance(item.id, int) else json.dumps(item.id, ensure_ascii=False)
    return neutralize(f"input {shown_id} ({json.dumps(snippet, ensure_ascii=False)})")
