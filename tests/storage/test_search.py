"""Tests for ``Store.search`` (the FTS5 index, its migration, filters, errors) and usage."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from llmcli.errors import UsageError
from llmcli.storage.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Store,
    StoredMessage,
    UsageTotal,
    total_usage,
)

T0 = 1_700_000_000.0
DAY = 86_400.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def fill(path: Path) -> dict[str, str]:
    clock = Clock()
    with Store.open(path, clock=clock) as store:
        a = store.new_conversation(profile="local", model="qwen")
        store.append(a, StoredMessage(role="user", content="How do I parse TOML in Python?"))
        store.append(a, StoredMessage(role="assistant", content="Use tomllib; TOML TOML TOML."))
        clock.now = T0 + 2 * DAY
        b = store.new_conversation(profile="zen", model="big")
        store.append(b, StoredMessage(role="user", content="Write a haiku about TOML"))
    return {"a": a, "b": b}


def test_search_ranks_and_snippets(tmp_path: Path) -> None:
    ids = fill(tmp_path / "h.db")
    with Store.open(tmp_path / "h.db") as store:
        result = store.search("toml")
    assert result.ranked
    first = result.hits[0]
    assert (first.conversation_id, first.seq) == (ids["a"], 2)
    assert len(result.hits) == 3
    assert "[TOML]" in result.hits[0].snippet


def test_search_filters(tmp_path: Path) -> None:
    ids = fill(tmp_path / "h.db")
    with Store.open(tmp_path / "h.db") as store:
        assert {h.conversation_id for h in store.search("toml", profile="zen").hits} == {ids["b"]}
        assert {h.conversation_id for h in store.search("toml", model="qwen").hits} == {ids["a"]}
        assert {h.conversation_id for h in store.search("toml", since=T0 + DAY).hits} == {ids["b"]}
        assert {h.conversation_id for h in store.search("toml", until=T0 + DAY).hits} == {ids["a"]}
        assert store.search("toml", profile="nobody").hits == ()


def test_index_follows_deletes(tmp_path: Path) -> None:
    ids = fill(tmp_path / "h.db")
    with Store.open(tmp_path / "h.db") as store:
        store.delete(ids["a"])
        assert {h.conversation_id for h in store.search("toml").hits} == {ids["b"]}


def test_a_malformed_query_is_a_usage_error(tmp_path: Path) -> None:
    fill(tmp_path / "h.db")
    with Store.open(tmp_path / "h.db") as store, pytest.raises(UsageError) as raised:
        store.search('"unclosed')
    assert "'\"unclosed'" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_migration_indexes_existing_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    db = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        db.execute(statement)
    db.execute("INSERT INTO conversations VALUES ('c1', 0, 0, 'local', NULL, 't', NULL)")
    db.execute(
        "INSERT INTO messages (conversation_id, seq, role, content, created_at)"
        " VALUES ('c1', 1, 'user', 'an old message about sqlite', 0)"
    )
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    with Store.open(path) as store:
        hits = store.search("sqlite").hits
    assert [(h.conversation_id, h.seq) for h in hits] == [("c1", 1)]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_without_fts5_search_falls_back_to_like(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("llmcli.storage.store._sqlite_has_fts5", lambda db: False)
    ids = fill(tmp_path / "h.db")
    with Store.open(tmp_path / "h.db") as store:
        assert not store.has_fts()
        result = store.search("haiku")
    assert not result.ranked
    assert [h.conversation_id for h in result.hits] == [ids["b"]]
    assert "haiku" in result.hits[0].snippet


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], []),
        (
            [("p", "m", 1, 2, None, "0.1"), ("p", "m", None, None, 5, "0.2")],
            [UsageTotal("p", "m", 2, 1, 2, 8, "0.3")],
        ),
        (  # a cost that is not a decimal is left out; no cost at all is None
            [("p", None, 1, 1, 2, "NaN"), ("p", None, 1, 1, 2, "free")],
            [UsageTotal("p", None, 2, 2, 2, 4, None)],
        ),
        (
            [("b", "x", 0, 0, 0, None), ("a", "y", 0, 0, 0, None), ("a", None, 0, 0, 0, None)],
            [
                UsageTotal("a", None, 1, 0, 0, 0, None),
                UsageTotal("a", "y", 1, 0, 0, 0, None),
                UsageTotal("b", "x", 1, 0, 0, 0, None),
            ],
        ),
    ],
)
def test_total_usage(rows: list[tuple[object, ...]], expected: list[UsageTotal]) -> None:
    assert total_usage(rows) == expected
