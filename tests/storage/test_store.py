"""Tests for the conversation store: schema, permissions, ids, round trips, durability.

Every test opens its own database under ``tmp_path`` (conftest points XDG_DATA_HOME at a
temporary directory too, so a default path never reaches the real one). The durability
test SIGKILLs a real writer process at random moments and then checks the file.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmcli.errors import LlmcliError, UsageError
from llmcli.storage.store import (
    ID_LENGTH,
    SCHEMA_VERSION,
    Attachment,
    Store,
    StoredMessage,
    default_path,
    make_title,
    message_from_outcome,
    new_conversation_id,
)
from llmcli.wire.events import Answer, Outcome, Timings, ToolCall, Usage

CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}


class Clock:
    """A clock that moves one second each time it is read."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "history.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    with Store.open(db_path, clock=Clock()) as opened:
        yield opened


def query(path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Ask the file directly, on a connection of the test's own."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


# --- where the file lives, and who can read it --------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG rule is Linux's")
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LLMCLI_DATA_DIR": "/srv/llm", "XDG_DATA_HOME": "/x"}, "/srv/llm/history.db"),
        ({"XDG_DATA_HOME": "/x", "HOME": "/home/u"}, "/x/llmcli/history.db"),
        ({"XDG_DATA_HOME": "rel", "HOME": "/home/u"}, "/home/u/.local/share/llmcli/history.db"),
        ({"HOME": "/home/u"}, "/home/u/.local/share/llmcli/history.db"),
    ],
)
def test_default_path(env: dict[str, str], expected: str) -> None:
    assert default_path(env) == Path(expected)


def test_default_path_follows_the_environment(tmp_path: Path) -> None:
    # conftest points XDG_DATA_HOME at tmp_path / "data-home".
    with Store.open() as opened:
        assert opened.path == tmp_path / "data-home" / "llmcli" / "history.db"
    assert opened.path.is_file()


@pytest.mark.parametrize("umask", [0o000, 0o277])
def test_directory_database_and_journals_are_owner_only(db_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        with Store.open(db_path) as opened:
            opened.append(opened.new_conversation(profile="p", model=None), user("hi"))
            modes = {
                name: os.stat(db_path.parent / name).st_mode & 0o777
                for name in ("history.db", "history.db-wal", "history.db-shm")
            }
    finally:
        os.umask(previous)
    assert os.stat(db_path.parent).st_mode & 0o777 == 0o700
    assert modes == {name: 0o600 for name in modes}


def test_connection_settings_and_schema(store: Store, db_path: Path) -> None:
    # synchronous and foreign_keys belong to a connection: ask the store's own.
    settings = [
        store._db.execute(f"PRAGMA {name}").fetchone()[0]
        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
    ]
    assert settings[:3] == ["wal", 2, 1]  # 2 is FULL
    assert settings[3] >= 1000
    assert query(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)] == [(3,)]
    indexes = {
        row[0] for row in query(db_path, "SELECT name FROM sqlite_master WHERE type = 'index'")
    }
    assert {"conversations_by_updated", "messages_by_conversation"} <= indexes


def test_reopening_keeps_everything_and_migrates_nothing(db_path: Path) -> None:
    with Store.open(db_path) as first:
        conversation_id = first.new_conversation(profile="p", model="m", system="s")
        first.append(conversation_id, user("hello"))
    with Store.open(db_path) as second:
        conversation = second.get(conversation_id)
    assert (conversation.system, conversation.messages[0].content) == ("s", "hello")


def test_a_file_that_is_not_a_database_is_one_clear_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not an SQLite database, just some text\n" * 40)

    with pytest.raises(LlmcliError) as caught:
        Store.open(db_path)

    message = str(caught.value)
    assert str(db_path) in message
    assert "move it aside" in message
    assert type(caught.value) is LlmcliError


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    Store.open(db_path).close()
    connection = sqlite3.connect(db_path)
    connection.execute("PRAGMA user_version = 99")
    connection.close()

    with pytest.raises(LlmcliError, match=r"schema version 99.*upgrade llmcli"):
        Store.open(db_path)


# --- ids and titles ------------------------------------------------------------------------


def test_ids_are_short_lowercase_base32_and_sort_by_time() -> None:
    times = [1_700_000_000.0 + step for step in (0, 0.001, 0.5, 1, 3600, 86400 * 400)]
    ids = [new_conversation_id(t) for t in times]

    assert all(len(i) == ID_LENGTH == 16 for i in ids)
    assert all(set(i) <= set("0123456789abcdefghjkmnpqrstvwxyz") for i in ids)
    assert ids == sorted(ids)
    assert len({new_conversation_id(times[0]) for _ in range(50)}) == 50


@pytest.mark.parametrize(
    ("content", "title"),
    [
        ("Hello", "Hello"),
        ("  two\nlines\t here  ", "two lines here"),
        ("x" * 60, "x" * 60),
        ("word " * 20, ("word " * 12).rstrip() + "…"),
        (" \n ", None),
    ],
)
def test_title(content: str, title: str | None) -> None:
    assert make_title(content) == title
    assert title is None or len(title) <= 60


# --- writing and reading back -------------------------------------------------------------


def user(content: str) -> StoredMessage:
    return StoredMessage(role="user", content=content)


def test_every_field_round_trips(store: Store) -> None:
    conversation_id = store.new_conversation(profile="local", model=None, system="Be brief.")
    text = "tabs\tCR\r\nESC\x1b[2J bidi\u202e nul\x00 emoji 🙂"
    answer = StoredMessage(
        role="assistant",
        content=text,
        reasoning="think " + text,
        tool_calls=(CALL,),
        model="tiny",
        profile="local",
        finish_reason="tool_calls",
        interrupted=True,
        error="stream cut",
        usage={"prompt_tokens": 3, "completion_tokens": 5},
        timings={"predicted_ms": 12.5},
        ttft_ms=40.25,
        duration_ms=900.5,
        cost="0.0012",
    )

    attached = (
        Attachment("notes \x1b.md", "text/markdown", 12, "ab" * 32),
        Attachment("shot.png", "image/png", 2048, "cd" * 32),
    )

    assert store.append(conversation_id, StoredMessage("user", text, attachments=attached)) == 1
    assert store.append(conversation_id, answer) == 2
    assert store.append(conversation_id, StoredMessage("tool", "42", tool_call_id="call_1")) == 3
    conversation = store.get(conversation_id)

    first, second, third = conversation.messages
    assert first == StoredMessage(
        "user", text, created_at=first.created_at, seq=1, attachments=attached
    )
    assert second == StoredMessage(
        **{
            **answer.to_record(),
            "tool_calls": (CALL,),
            "attachments": (),
            "created_at": second.created_at,
            "seq": 2,
            "parent": 1,
        }
    )
    assert (third.role, third.tool_call_id, third.seq, third.parent) == ("tool", "call_1", 3, 2)
    assert first.to_record()["attachments"] == [
        {"name": "notes \x1b.md", "mime": "text/markdown", "bytes": 12, "sha256": "ab" * 32},
        {"name": "shot.png", "mime": "image/png", "bytes": 2048, "sha256": "cd" * 32},
    ]
    # Messages without files store NULL, not an empty list.
    assert query(store.path, "SELECT seq FROM messages WHERE attachments IS NULL") == [(2,), (3,)]
    assert first.created_at is not None and second.created_at is not None
    assert first.created_at < second.created_at
    assert (conversation.profile, conversation.system, conversation.message_count) == (
        "local",
        "Be brief.",
        3,
    )
    # No model at creation: the first message that names one fills it in.
    assert conversation.model == "tiny"
    assert conversation.title == "tabs CR ESC\x1b[2J bidi\u202e nul\x00 emoji 🙂"
    assert conversation.updated_at == third.created_at


def test_title_comes_from_the_first_user_message_only(store: Store) -> None:
    conversation_id = store.new_conversation(profile="p", model="m")
    store.append(conversation_id, StoredMessage("assistant", "I speak first"))
    store.append(conversation_id, user("   "))
    store.append(conversation_id, user("the question\nwith detail"))
    store.append(conversation_id, user("a later question"))

    assert store.get(conversation_id).title == "the question with detail"


def test_request_messages_resend_everything_but_reasoning(store: Store) -> None:
    conversation_id = store.new_conversation(profile="p", model="m", system="sys")
    for message in (
        user("weather?"),
        StoredMessage("assistant", "", reasoning="SECRET-THOUGHT", tool_calls=(CALL,)),
        StoredMessage("tool", "sunny", tool_call_id="call_1"),
        StoredMessage("assistant", "It is sun", reasoning="SECRET-THOUGHT", interrupted=True),
        user("go on"),
        StoredMessage("assistant", "", error="connection refused"),
    ):
        store.append(conversation_id, message)

    messages = store.get(conversation_id).to_request_messages()

    assert messages == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "assistant", "content": "It is sun"},
        {"role": "user", "content": "go on"},
        {"role": "assistant", "content": ""},
    ]
    assert "SECRET-THOUGHT" not in json.dumps(messages)


def test_set_system(store: Store) -> None:
    conversation_id = store.new_conversation(profile="p", model="m")
    store.set_system(conversation_id, "new rules")
    assert store.get(conversation_id).to_request_messages()[0] == {
        "role": "system",
        "content": "new rules",
    }
    store.set_system(conversation_id, None)
    assert store.get(conversation_id).to_request_messages() == []


def test_writes_to_an_unknown_conversation_are_refused(store: Store) -> None:
    with pytest.raises(UsageError, match="no conversation 'nope0000'"):
        store.append("nope0000", user("hi"))
    with pytest.raises(UsageError):
        store.set_system("nope0000", "x")
    with pytest.raises(ValueError, match="unknown role"):
        store.append(store.new_conversation(profile="p", model=None), StoredMessage("bot", "x"))


def test_list_latest_and_counts(store: Store) -> None:
    assert store.list() == []
    assert store.latest() is None
    first = store.new_conversation(profile="a", model="m1")
    second = store.new_conversation(profile="b", model="m2")
    store.append(first, user("revived"))  # first is now the most recently updated

    listed = store.list()

    assert [(s.id, s.profile, s.model, s.message_count) for s in listed] == [
        (first, "a", "m1", 1),
        (second, "b", "m2", 0),
    ]
    assert listed[0].title == "revived"
    assert listed[0].updated_at > listed[0].created_at
    assert store.list(limit=1) == listed[:1]
    assert store.latest() == listed[0]


def test_delete_takes_the_messages_with_it(store: Store, db_path: Path) -> None:
    keep = store.new_conversation(profile="p", model="m")
    doomed = store.new_conversation(profile="p", model="m")
    for conversation_id in (keep, doomed):
        store.append(conversation_id, user("hi"))
        store.append(conversation_id, StoredMessage("assistant", "hello"))

    assert store.delete(doomed[:12]) == doomed

    assert [s.id for s in store.list()] == [keep]
    assert query(db_path, "SELECT conversation_id, count(*) FROM messages GROUP BY 1") == [
        (keep, 2)
    ]
    with pytest.raises(UsageError):
        store.get(doomed)


def test_delete_message_lets_a_retried_answer_take_its_place(store: Store) -> None:
    conversation_id = store.new_conversation(profile="p", model="m")
    store.append(conversation_id, user("question"))
    first_try = store.append(conversation_id, StoredMessage("assistant", "bad answer"))

    store.delete_message(conversation_id, first_try)
    second_try = store.append(conversation_id, StoredMessage("assistant", "good answer"))

    assert second_try == first_try == 2
    assert [m.content for m in store.get(conversation_id).messages] == ["question", "good answer"]
    with pytest.raises(UsageError, match="has no message 7"):
        store.delete_message(conversation_id, 7)


def test_two_connections_append_in_turn_without_clashing(db_path: Path) -> None:
    with Store.open(db_path) as one, Store.open(db_path) as two:
        conversation_id = one.new_conversation(profile="p", model="m")
        seqs = [
            writer.append(conversation_id, user(str(n))) for n, writer in enumerate([one, two] * 5)
        ]
        contents = [m.content for m in two.get(conversation_id).messages]
    assert seqs == list(range(1, 11))
    assert contents == [str(n) for n in range(10)]


# --- ids by prefix -------------------------------------------------------------------------


def test_prefixes_resolve_case_and_look_alikes_included(store: Store) -> None:
    conversation_id = store.new_conversation(profile="p", model="m")
    typed = conversation_id[:9].upper().replace("0", "O").replace("1", "L")

    assert store.resolve(conversation_id) == conversation_id
    assert store.resolve(f"  {typed} ") == conversation_id
    assert store.get(typed).id == conversation_id


def test_ambiguous_unknown_and_malformed_prefixes(db_path: Path) -> None:
    same_time = Clock()
    with Store.open(db_path, clock=lambda: same_time.now) as opened:
        a = opened.new_conversation(profile="p", model="m")
        b = opened.new_conversation(profile="p", model="m")
        assert a[:10] == b[:10]  # the same millisecond

        with pytest.raises(UsageError, match="is ambiguous") as caught:
            opened.resolve(a[:10])
        assert a in str(caught.value) and b in str(caught.value)
        with pytest.raises(UsageError, match="no conversation 'zzzz'"):
            opened.resolve("zzzz")
        for bad in ("", "  ", "01-ab", "01u", "../x"):
            with pytest.raises(UsageError, match="not a conversation id"):
                opened.resolve(bad)
        with pytest.raises(UsageError, match="no conversation"):
            opened.delete(a + "0")


def test_short_ids_are_eight_characters_unless_more_are_needed(db_path: Path) -> None:
    same_time = Clock()
    with Store.open(db_path, clock=lambda: same_time.now) as opened:
        twins = [opened.new_conversation(profile="p", model="m") for _ in range(2)]
        same_time.now += 3600
        loner = opened.new_conversation(profile="p", model="m")

        assert opened.short_id(loner) == loner[:8]
        shorts = [opened.short_id(twin) for twin in twins]
        assert all(len(short) > 10 for short in shorts)  # the first 10 are the time
        assert [opened.resolve(short) for short in shorts] == twins
        for short in shorts:  # and they are the shortest: one less is ambiguous
            with pytest.raises(UsageError, match="is ambiguous"):
                opened.resolve(short[:-1])


# --- an answer to a message ----------------------------------------------------------------


def test_message_from_outcome() -> None:
    answer = Answer(
        model="served-model",
        content="partial",
        reasoning="thinking",
        tool_calls=[ToolCall(index=0, id="call_1", name="f", arguments='{"x": 1}')],
        finish_reason=None,
        usage=Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5),
        timings=Timings(predicted_n=2, predicted_ms=20.0),
        cost="0.001",
    )
    outcome = Outcome(answer=answer, started=10.0, first_token=10.25, ended=11.5)
    outcome.interrupted = True
    outcome.error = "interrupted"

    message = message_from_outcome(outcome, profile="zen", model="asked-model")

    assert message == StoredMessage(
        role="assistant",
        content="partial",
        reasoning="thinking",
        tool_calls=(CALL,),
        model="served-model",
        profile="zen",
        finish_reason=None,
        interrupted=True,
        error="interrupted",
        usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        timings={"predicted_n": 2, "predicted_ms": 20.0},
        ttft_ms=250.0,
        duration_ms=1500.0,
        cost="0.001",
    )
    bare = message_from_outcome(Outcome(started=1.0), profile="local", model="asked-model")
    assert (bare.model, bare.usage, bare.ttft_ms, bare.duration_ms, bare.tool_calls) == (
        "asked-model",
        None,
        None,
        None,
        (),
    )


# --- durability: a writer killed at random moments ----------------------------------------

WRITER = r"""
import sys
from pathlib import Path
from llmcli.storage.store import Store, StoredMessage

def payload(seq):
    # Sizes from a few bytes to ~30 kB, so a message spans from part of a page to many.
    return f"{seq}:" + "x" * (seq * 7919 % 30000)

with Store.open(Path(sys.argv[1])) as store:
    latest = store.latest()
    conversation_id = latest.id if latest else store.new_conversation(profile="p", model="m")
    seq = latest.message_count if latest else 0
    print("ready", flush=True)
    while True:
        seq += 1
        message = StoredMessage("user", payload(seq), usage={"seq": seq})
        assert store.append(conversation_id, message) == seq
        print(seq, flush=True)
"""


def payload(seq: int) -> str:
    return f"{seq}:" + "x" * (seq * 7919 % 30000)


def test_a_writer_killed_at_any_moment_leaves_a_whole_database(db_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    committed = 0
    for iteration in range(5):
        delay = rng.uniform(0.0, 0.3)
        note = f"seed {seed}, iteration {iteration}, killed after {delay:.3f} s"
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert writer.stdout is not None
        ready = writer.stdout.readline()
        if ready != "ready\n":
            writer.kill()
            pytest.fail(f"writer did not start: {writer.communicate()[1]}")
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        reported, _errors = writer.communicate(timeout=30)
        assert writer.returncode == -signal.SIGKILL, note
        seqs = [int(line) for line in reported.split()]
        last_reported = seqs[-1] if seqs else committed

        assert query(db_path, "PRAGMA integrity_check") == [("ok",)], note
        rows = query(db_path, "SELECT seq, content, usage, created_at FROM messages ORDER BY seq")
        stored = [row[0] for row in rows]
        # A contiguous prefix: nothing reported as written is lost, at most one more is there.
        assert stored == list(range(1, len(stored) + 1)), note
        assert last_reported <= len(stored) <= last_reported + 1, note
        for seq, content, usage, _created in rows:
            assert content == payload(seq), f"{note}: message {seq} is not whole"
            assert json.loads(usage) == {"seq": seq}, note
        # The message and the conversation's update were one transaction.
        [(updated_at, created_at)] = query(
            db_path, "SELECT updated_at, created_at FROM conversations"
        )
        assert updated_at == max([created_at] + [row[3] for row in rows]), note
        committed = len(stored)

    assert committed > 0, f"seed {seed}: the writer never wrote; the test proved nothing"
    with Store.open(db_path) as reopened:
        messages = reopened.get(reopened.list()[0].id).messages
    assert [m.seq for m in messages] == list(range(1, committed + 1))
