"""``llmcli.embeddings.run`` without the command line: the inputs, the sink, a whole run.

The runs go to llmcli's mock server (``hash-embed``: deterministic vectors), so the
counts line and the written vectors can be compared with what ``llmcli embed`` prints
for the same texts (``tests/commands/test_cli_embed.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rig.profiles import make_profile

from llmcli.config.profiles import Profile
from llmcli.embeddings.run import (
    EmbedSettings,
    OutputSink,
    read_inputs,
    search_similar,
    write_embeddings,
)
from llmcli.errors import UsageError
from llmcli.mock import MockConfig, MockServerThread

SETTINGS = EmbedSettings(model=None, batch_size=2, concurrency=2, truncate=False)


@pytest.fixture
def mock_profile() -> Iterator[Profile]:
    server = MockServerThread(MockConfig(dialect="llamacpp", models=("hash-embed",)))
    server.start()
    yield make_profile(server.base_url, dialect="llamacpp")
    assert server.server.errors == []
    server.stop()


def test_arguments_are_the_inputs_numbered_from_one(tmp_path: Path) -> None:
    inputs = read_inputs(["a", "b"], None)
    assert [(item.id, item.text) for item in inputs] == [(1, "a"), (2, "b")]
    lines = tmp_path / "lines.txt"
    lines.write_text("one\n\ntwo\n")
    assert [(item.id, item.text) for item in read_inputs(None, lines)] == [(1, "one"), (3, "two")]


@pytest.mark.parametrize(
    ("texts", "content", "message"),
    [
        (["a"], "b\n", "give texts as arguments or --file, not both"),
        (None, "\n  \n", "no input: give texts as arguments, --file FILE, or lines on stdin"),
    ],
)
def test_inputs_refused(
    tmp_path: Path, texts: list[str] | None, content: str, message: str
) -> None:
    file = tmp_path / "in.txt"
    file.write_text(content)
    with pytest.raises(UsageError, match=message.replace("-", r"\-")):
        read_inputs(texts, file)


def test_the_sink_opens_its_file_at_the_first_write(tmp_path: Path) -> None:
    path = tmp_path / "out.ndjson"
    path.write_text("before\n")
    unused = OutputSink(path)
    unused.close()
    assert path.read_text() == "before\n"  # nothing finished: the file is as it was
    sink = OutputSink(path)
    sink.write(b"one\n")
    sink.write(b"two\n")
    sink.close()
    assert path.read_bytes() == b"one\ntwo\n"


def test_a_sink_that_cannot_write_is_one_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=f"cannot write {tmp_path}: "):
        OutputSink(tmp_path).write(b"x")  # a directory


def test_a_run_writes_every_vector_then_counts(
    mock_profile: Profile, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "out.ndjson"
    inputs = read_inputs(["alpha", "beta", "gamma"], None)
    write_embeddings(mock_profile, SETTINGS, inputs, "ndjson", path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["id"], r["text"]) for r in records] == [(1, "alpha"), (2, "beta"), (3, "gamma")]
    dimensions = len(records[0]["embedding"])
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"3 inputs, {dimensions} dimensions, ")


def test_a_search_prints_its_hits_and_caches_the_corpus(
    mock_profile: Profile, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = read_inputs(["alpha", "beta", "gamma"], None)
    search_similar(mock_profile, SETTINGS, "beta", corpus, top_k=2, as_json=True)
    out, err = capsys.readouterr()
    hits = json.loads(out)
    assert [hit["rank"] for hit in hits] == [1, 2]
    assert hits[0]["text"] == "beta" and hits[0]["score"] == pytest.approx(1.0)
    assert err.startswith("4 inputs, ") and "cached" not in err  # the corpus and the query
    search_similar(mock_profile, SETTINGS, "beta", corpus, top_k=1, as_json=False)
    out, err = capsys.readouterr()
    score, number, text = out.rstrip("\n").split("  ")
    assert float(score) == pytest.approx(1.0) and (number, text) == ("2", "beta")
    assert err.startswith("4 inputs (3 cached), ")  # only the query is asked for again
