"""Stdin that is not UTF-8: decoded with U+FFFD and one warning line, the same for every command.

The rule (``llmcli.ui.stdin_text``) table-tested, then through ``embed`` (real llama-server)
and ``tools-demo`` (the mock server, which records the prompt it was sent).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import WriteProfiles
from rig import LlamaServer
from typer.testing import CliRunner

from llmcli.cli import app
from llmcli.mock import MockConfig, MockServerThread
from llmcli.ui.stdin_text import decode_text, read_stdin_text

LATIN1 = b"caf\xe9\n"
WARNING = (
    "llmcli: warning: stdin is not UTF-8 (first bad byte at offset 3); each bad byte became U+FFFD"
)


@pytest.mark.parametrize(
    ("data", "text", "offset"),
    [
        (b"plain", "plain", None),
        ("naïve ☕".encode(), "naïve ☕", None),
        (b"", "", None),
        (b"caf\xe9", "caf\ufffd", 3),
        (b"\xff\xfe", "\ufffd\ufffd", 0),
        ("é".encode() + b"\x80 and \xff", "é\ufffd and \ufffd", 2),  # the first bad byte
        (b"ok \xe2\x82", "ok \ufffd", 3),  # a character cut short at the end
    ],
)
def test_decode_text(data: bytes, text: str, offset: int | None) -> None:
    assert decode_text(data) == (text, offset)


class Piped(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


class Terminal(Piped):
    def isatty(self) -> bool:
        return True


def test_read_stdin_text_warns_once_and_skips_a_terminal() -> None:
    warnings: list[str] = []
    got = read_stdin_text(warnings.append, Piped(io.BytesIO(b"a\xffb\xff")))
    assert got == "a\ufffdb\ufffd"
    assert warnings == [WARNING.removeprefix("llmcli: ").replace("offset 3", "offset 1")]
    assert read_stdin_text(warnings.append, Terminal(io.BytesIO(b"x"))) is None
    assert len(warnings) == 1


def test_embed(write_profiles: WriteProfiles, llama_embed: LlamaServer) -> None:
    write_profiles(f'[profiles.emb]\nbase_url = "{llama_embed.base_url}"\ndialect = "llamacpp"\n')
    result = CliRunner().invoke(app, ["embed", "-p", "emb"], input=LATIN1 + b"tea\n")
    assert result.exit_code == 0, result.stderr
    warning, counts = result.stderr.splitlines()
    assert warning == WARNING and counts.startswith("2 inputs, 64 dimensions")
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == [
        "caf\ufffd",
        "tea",
    ]


@pytest.fixture
def mock(write_profiles: WriteProfiles) -> Iterator[MockServerThread]:
    server = MockServerThread(MockConfig())
    server.start()
    write_profiles(
        f'[profiles.mock]\nbase_url = "{server.base_url}"\n'
        'dialect = "zen"\nmodel = "big-pickle"\napi_key = "public"\n'
    )
    yield server
    assert server.server.errors == []
    server.stop()


def test_tools_demo(mock: MockServerThread) -> None:
    result = CliRunner().invoke(app, ["tools-demo", "-p", "mock", "--json", "say"], input=LATIN1)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == WARNING + "\n"
    [request] = mock.server.requests
    body: dict[str, Any] = request.body
    assert body["messages"][-1] == {"role": "user", "content": "say\n\ncaf\ufffd"}
