"""The history as a tree: schema 3's migration from real version 1 and 2 files, branches
made by moving the head, reading one branch, the forks it shows, and the list of branches."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmcli.errors import UsageError
from llmcli.storage.store import Attachment, Branch, Fork, Store, StoredMessage

# The schema as llmcli 1 and 2 wrote it, spelled out here rather than taken from the
# store, so a change to the store's migrations cannot change the files they must read.
V1 = (
    """CREATE TABLE conversations (id TEXT PRIMARY KEY, created_at REAL NOT NULL,
       updated_at REAL NOT NULL, profile TEXT NOT NULL, model TEXT, title TEXT, system TEXT)""",
    "CREATE INDEX conversations_by_updated ON conversations (updated_at)",
    """CREATE TABLE messages (id INTEGER PRIMARY KEY,
       conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
       seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL DEFAULT '',
       reasoning TEXT NOT NULL DEFAULT '', tool_calls TEXT, tool_call_id TEXT, model TEXT,
       profile TEXT, finish_reason TEXT, interrupted INTEGER NOT NULL DEFAULT 0, error TEXT,
       usage TEXT, timings TEXT, cost TEXT, ttft_ms REAL, duration_ms REAL,
       created_at REAL NOT NULL)""",
    "CREATE UNIQUE INDEX messages_by_conversation ON messages (conversation_id, seq)",
)
V2_FTS = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id')",
    """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
       INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content); END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
       INSERT INTO messages_fts (messages_fts, rowid, content)
       VALUES ('delete', old.id, old.content); END""",
    """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
       INSERT INTO messages_fts (messages_fts, rowid, content)
       VALUES ('delete', old.id, old.content);
       INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content); END""",
)
OLD_MESSAGES = (
    # (conversation, seq, role, content): "a" lost its seq 3 to a retry in the old scheme.
    ("a", 1, "user", "what is a write-ahead log"),
    ("a", 2, "assistant", "a journal written before the pages"),
    ("a", 4, "user", "and a checkpoint?"),
    ("a", 5, "assistant", "copying the log back"),
    ("b", 1, "user", "hello"),
)


def old_database(path: Path, version: int) -> None:
    """A history file exactly as llmcli ``version`` left it, with three conversations."""
    db = sqlite3.connect(path)
    for statement in V1 + (V2_FTS if version >= 2 else ()):
        db.execute(statement)
    for conversation, updated in (("a", 5.0), ("b", 6.0), ("c", 7.0)):
        db.execute(
            "INSERT INTO conversations VALUES (?, 0, ?, 'local', 'tiny', ?, NULL)",
            (conversation * 16, updated, conversation),
        )
    for conversation, seq, role, content in OLD_MESSAGES:
        db.execute(
            "INSERT INTO messages (conversation_id, seq, role, content, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (conversation * 16, seq, role, content, float(seq)),
        )
    db.execute(f"PRAGMA user_version = {version}")
    db.commit()
    db.close()


@pytest.mark.parametrize("version", [1, 2])
def test_old_files_become_one_straight_branch(tmp_path: Path, version: int) -> None:
    path = tmp_path / f"v{version}.db"
    old_database(path, version)

    with Store.open(path) as store:
        a = store.get("a" * 16)
        empty = store.get("c" * 16)
        assert [(m.seq, m.parent) for m in a.messages] == [(1, None), (2, 1), (4, 2), (5, 4)]
        assert (a.head, a.forks, a.messages[0].attachments) == (5, (), ())
        assert [m.content for m in store.get("b" * 16).messages] == ["hello"]
        assert (empty.head, empty.messages) == (None, ())
        counts = {summary.id[0]: summary.message_count for summary in store.list()}
        assert counts == {"a": 4, "b": 1, "c": 0}
        # Search works on the migrated file (v1 gets its index built, v2 keeps its own).
        assert [(h.conversation_id, h.seq) for h in store.search("checkpoint").hits] == [
            ("a" * 16, 4)
        ]
        # Going on from an old conversation follows its last message.
        assert store.append("a" * 16, StoredMessage("user", "thanks")) == 6
        assert store.get("a" * 16).messages[-1].parent == 5

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone() == (3,)
    heads = dict(db.execute("SELECT id, head_seq FROM conversations").fetchall())
    assert heads == {"a" * 16: 6, "b" * 16: 1, "c" * 16: None}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    clock = iter(range(1_000, 2_000))
    with Store.open(tmp_path / "h.db", clock=lambda: float(next(clock))) as opened:
        yield opened


def chat(store: Store, *texts: str) -> str:
    conversation_id = store.new_conversation(profile="local", model="tiny")
    for text in texts:
        say(store, conversation_id, text)
    return conversation_id


def say(store: Store, conversation_id: str, text: str) -> int:
    role = "assistant" if text.startswith("A:") else "user"
    return store.append(conversation_id, StoredMessage(role, text))


def contents(store: Store, conversation_id: str, branch: int | None = None) -> list[str]:
    return [m.content for m in store.get(conversation_id, branch=branch).messages]


def test_moving_the_head_back_starts_a_branch_and_keeps_the_old_one(store: Store) -> None:
    cid = chat(store, "hi", "A:hello", "tell a joke", "A:a bad joke")
    store.set_head(cid, 2)  # /undo: back to the answer before the joke
    undone = store.get(cid)
    assert [m.content for m in undone.messages] == ["hi", "A:hello"]
    assert (undone.head, undone.forks) == (2, (Fork(after=2, starts=(3,)),))

    assert say(store, cid, "tell a better joke") == 5
    say(store, cid, "A:a better joke")

    current = store.get(cid)
    assert [m.content for m in current.messages] == [
        "hi",
        "A:hello",
        "tell a better joke",
        "A:a better joke",
    ]
    assert [m.parent for m in current.messages] == [None, 1, 2, 5]
    assert current.forks == (Fork(after=2, starts=(3,)),)
    # The old branch, read through any of its messages; the current one shows as a fork.
    assert contents(store, cid, branch=3) == ["hi", "A:hello", "tell a joke", "A:a bad joke"]
    assert store.get(cid, branch=1).head == 6  # the newest way on from message 1
    assert store.get(cid, branch=4).forks == (Fork(after=2, starts=(5,)),)
    # Reading another branch does not switch to it.
    assert store.get(cid).head == 6
    # A listing counts the messages of the current branch, as show shows them.
    assert store.list()[0].message_count == 4
    store.set_head(cid, 2)
    assert store.list()[0].message_count == 2


def test_branches_lists_the_current_one_first(store: Store) -> None:
    cid = chat(store, "hi", "A:hello", "tell a joke", "A:a bad joke")
    store.set_head(cid, 2)
    say(store, cid, "tell a better joke")
    say(store, cid, "A:a better joke")
    store.set_head(cid, None)  # back before the first message
    say(store, cid, "start over")

    branches = store.branches(cid)
    assert branches[0] == Branch(7, None, 7, 1, "start over", branches[0].updated_at, True)
    assert [(b.leaf, b.fork, b.start, b.length, b.title, b.current) for b in branches[1:]] == [
        (6, None, 1, 4, "hi", False),
        (4, None, 1, 4, "hi", False),
    ]
    store.set_head(cid, 6)
    assert [(b.leaf, b.fork, b.start, b.title) for b in store.branches(cid)] == [
        (6, None, 1, "tell a better joke"),
        (7, None, 7, "start over"),
        (4, 2, 3, "tell a joke"),
    ]


def test_a_branch_begun_with_files_is_titled_by_what_was_typed(store: Store) -> None:
    notes = Attachment("notes.md", "text/plain", 9, "0" * 64)
    shot = Attachment("shot.png", "image/png", 70, "1" * 64)
    typed = "compare\n\nFile: notes.md\n```\n# Notes\n```\n\nImage: shot.png"
    cid = store.new_conversation(profile="p", model="m")
    store.append(cid, StoredMessage("user", typed, attachments=(notes, shot)))
    store.append(cid, StoredMessage("assistant", "same"))
    store.set_head(cid, None)
    store.append(cid, StoredMessage("user", "File: notes.md\n```\nx\n```", attachments=(notes,)))
    assert [b.title for b in store.branches(cid)] == ["notes.md", "compare"]


def test_an_undone_head_is_its_own_branch(store: Store) -> None:
    cid = chat(store, "hi", "A:hello", "more", "A:more")
    store.set_head(cid, 2)
    assert [(b.leaf, b.length, b.current, b.start) for b in store.branches(cid)] == [
        (2, 2, True, 1),
        (4, 4, False, 3),
    ]
    store.set_head(cid, None)
    first = store.branches(cid)[0]
    assert (first.current, first.length, first.title) == (True, 0, "")
    assert store.get(cid).forks == (Fork(after=None, starts=(1,)),)


def test_bad_heads_and_branches_are_one_clear_error(store: Store) -> None:
    cid = chat(store, "hi", "A:hello")
    with pytest.raises(UsageError, match=f"conversation {cid} has no message 9"):
        store.set_head(cid, 9)
    with pytest.raises(UsageError, match="has no message 0"):
        store.get(cid, branch=0)
    with pytest.raises(UsageError, match="no conversation"):
        store.set_head("z" * 16, 1)
    with pytest.raises(UsageError, match="no conversation"):
        store.branches("z" * 16)
    assert store.get(cid).head == 2


def test_deleting_a_message_keeps_the_tree_whole(store: Store) -> None:
    cid = chat(store, "hi", "A:hello", "more", "A:more")
    store.delete_message(cid, 4)  # /retry: the head's answer goes, the head moves back
    assert store.get(cid).head == 3
    assert say(store, cid, "A:again") == 4
    store.delete_message(cid, 2)  # an inner message: its followers follow its parent
    assert [(m.seq, m.parent) for m in store.get(cid).messages] == [(1, None), (3, 1), (4, 3)]
