"""The conversation store: every exchange of ``chat`` and ``complete``, logged to SQLite.

One file, ``history.db``, in ``$LLMCLI_DATA_DIR`` or the platform data directory
(``$XDG_DATA_HOME/llmcli`` or ``~/.local/share/llmcli`` on Linux). The directory is made
0700 and the file 0600 before SQLite first opens it; SQLite gives its ``-wal`` and
``-shm`` files the database file's permissions. Nothing secret is stored: a profile is
recorded by its name only, never its URL, headers or key.

Durability: WAL journal, ``synchronous=FULL``, and every write is one transaction, so a
process killed at any moment loses at most the message it was writing and never leaves
a half-written one or a corrupt file.

Schema (``PRAGMA user_version`` = 3)::

    conversations(id TEXT PRIMARY KEY, created_at REAL, updated_at REAL, profile TEXT,
                  model TEXT, title TEXT, system TEXT, head_seq INTEGER)
    messages(id INTEGER PRIMARY KEY, conversation_id TEXT -> conversations ON DELETE
             CASCADE, seq INTEGER, role TEXT, content TEXT, reasoning TEXT,
             tool_calls TEXT (JSON), tool_call_id TEXT, model TEXT, profile TEXT,
             finish_reason TEXT, interrupted INTEGER, error TEXT, usage TEXT (JSON),
             timings TEXT (JSON), cost TEXT, ttft_ms REAL, duration_ms REAL, created_at REAL,
             parent_seq INTEGER, attachments TEXT (JSON))

    messages_fts(content) -- FTS5, external content over messages (rowid = messages.id),
                             kept in step by triggers; absent when SQLite lacks FTS5

Branches (version 3): the messages of a conversation form a tree. Each message names the
seq of the one it follows (``parent_seq``, NULL for a first message), and the
conversation names its current last message (``head_seq``, NULL when it is empty). A
message is appended after the head and becomes the head; ``/undo`` and editing an earlier
message move the head back, so the next message starts a new branch and the old one
stays, whole, to be shown or switched back to. What a conversation "is", for reading,
sending and continuing, is the path from its first message to the head. Seqs only grow
(a new message takes the highest plus one), so they name a message for good. Version 1
and 2 files migrate to one straight branch: each message follows the one before it.

Times are Unix seconds. Conversation ids are 16 characters of lowercase Crockford base32:
10 for the creation time in milliseconds (so ids sort by time), 6 random. Every command
accepts any unique prefix of one.

This module never prints; failures a user can meet (an unreadable file, a busy or full
disk, an unknown id) are raised as ``LlmcliError``.
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from llmcli.config.paths import data_dir
from llmcli.errors import LlmcliError, UsageError
from llmcli.storage.database import PrivateDatabase
from llmcli.wire.events import sent_fields

if TYPE_CHECKING:
    from llmcli.wire.events import Outcome

__all__ = [
    "DB_FILENAME",
    "SCHEMA_VERSION",
    "Attachment",
    "Branch",
    "Conversation",
    "ConversationSummary",
    "Fork",
    "SearchHit",
    "SearchResult",
    "Store",
    "StoredMessage",
    "UsageTotal",
    "default_path",
    "message_from_outcome",
    "new_conversation_id",
]

DB_FILENAME: Final = "history.db"
ROLES: Final = ("system", "user", "assistant", "tool")
TITLE_LENGTH: Final = 60
SHORT_ID_LENGTH: Final = 8
BUSY_TIMEOUT_SECONDS: Final = 10.0

# Crockford base32, lowercase: no i, l, o or u, so ids read aloud and type without doubt.
_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"
_TIME_CHARS: Final = 10  # 50 bits of milliseconds: enough until the year 37648
_RANDOM_CHARS: Final = 6  # 30 bits: a clash needs two ids in the same millisecond
ID_LENGTH: Final = _TIME_CHARS + _RANDOM_CHARS
# What a person may type for a character that is not in the alphabet.
_ID_ALIASES: Final = str.maketrans({"i": "1", "l": "1", "o": "0"})
# Sorts after every alphabet character: ``prefix <= id < prefix + "~"`` is a prefix match.
_PREFIX_END: Final = "~"

_SCHEMA_V1: Final = (
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        profile TEXT NOT NULL,
        model TEXT,
        title TEXT,
        system TEXT
    )
    """,
    "CREATE INDEX conversations_by_updated ON conversations (updated_at)",
    """
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL DEFAULT '',
        reasoning TEXT NOT NULL DEFAULT '',
        tool_calls TEXT,
        tool_call_id TEXT,
        model TEXT,
        profile TEXT,
        finish_reason TEXT,
        interrupted INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        usage TEXT,
        timings TEXT,
        cost TEXT,
        ttft_ms REAL,
        duration_ms REAL,
        created_at REAL NOT NULL
    )
    """,
    # Loads a conversation in order, keeps seq unique, and serves the cascade on delete.
    "CREATE UNIQUE INDEX messages_by_conversation ON messages (conversation_id, seq)",
)
# Full-text search over what was said. External content: the text is stored once, in
# messages; the triggers keep the index in step, and the rebuild indexes existing rows.
_SCHEMA_V2_FTS: Final = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='id')",
    """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END
    """,
    """
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
    END
    """,
    """
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END
    """,
    "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
)
# Branches and attachments. Existing messages become one straight branch: each follows
# the one before it, and the head is the last one.
_SCHEMA_V3_TREE: Final = (
    "ALTER TABLE messages ADD COLUMN parent_seq INTEGER",
    "ALTER TABLE messages ADD COLUMN attachments TEXT",
    "ALTER TABLE conversations ADD COLUMN head_seq INTEGER",
    """
    UPDATE messages SET parent_seq = (
        SELECT max(p.seq) FROM messages AS p
        WHERE p.conversation_id = messages.conversation_id AND p.seq < messages.seq
    )
    """,
    """
    UPDATE conversations SET head_seq = (
        SELECT max(m.seq) FROM messages AS m WHERE m.conversation_id = conversations.id
    )
    """,
)
# MIGRATIONS[n] takes the schema from version n to n + 1. A SQLite built without FTS5
# takes version 2 with no index; search then falls back to LIKE (``Store.has_fts``).
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_SCHEMA_V1, _SCHEMA_V2_FTS, _SCHEMA_V3_TREE)
SCHEMA_VERSION: Final = len(MIGRATIONS)

_MESSAGE_COLUMNS: Final = (
    "seq, role, content, reasoning, tool_calls, tool_call_id, model, profile, finish_reason,"
    " interrupted, error, usage, timings, cost, ttft_ms, duration_ms, created_at,"
    " parent_seq, attachments"
)
# How SQLite words a malformed FTS5 query (``"a``, ``a:b``, ``NEAR(``).
_FTS_QUERY_ERRORS: Final = (
    "fts5:",
    "unterminated string",
    "no such column",
    "unknown special query",
)
# The message count is of the current branch: from the head back to the first message.
_SUMMARY_QUERY: Final = """
    SELECT c.id, c.title, c.profile, c.model, c.created_at, c.updated_at,
           (WITH RECURSIVE path(seq) AS (
                SELECT c.head_seq WHERE c.head_seq IS NOT NULL
                UNION ALL
                SELECT m.parent_seq FROM messages AS m JOIN path
                ON m.conversation_id = c.id AND m.seq = path.seq
                WHERE m.parent_seq IS NOT NULL
            ) SELECT COUNT(*) FROM path)
    FROM conversations AS c
"""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message, as the history records it: what it was, not its bytes."""

    name: str
    mime: str
    bytes: int
    sha256: str

    def to_record(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Attachment:
        return cls(
            name=str(record.get("name", "")),
            mime=str(record.get("mime", "")),
            bytes=int(record.get("bytes", 0)),
            sha256=str(record.get("sha256", "")),
        )


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of a conversation, as stored and as read back.

    ``tool_calls`` are OpenAI-shaped dicts (``{"id", "type": "function", "function":
    {"name", "arguments"}}``). The store numbers messages itself (``seq`` is ignored on
    append) and stamps ``created_at`` when it is ``None``. ``reasoning`` is kept for the
    record and never sent back to a server. ``parent`` is the seq of the message this one
    follows (None for a first message); the store sets it on append. ``attachments`` say
    which files went with the message (their names, types, sizes and hashes).
    """

    role: str
    content: str
    reasoning: str = ""
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_id: str | None = None
    model: str | None = None
    profile: str | None = None
    finish_reason: str | None = None
    interrupted: bool = False
    error: str | None = None
    usage: dict[str, Any] | None = None
    timings: dict[str, Any] | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    created_at: float | None = None
    seq: int | None = None
    cost: str | None = None
    parent: int | None = None
    attachments: tuple[Attachment, ...] = ()

    def to_request(self) -> dict[str, Any]:
        """This message as an OpenAI ``messages`` entry; the reasoning stays out."""
        if self.role == "assistant" and self.tool_calls:
            # The spec allows null content beside tool calls; "" confuses some servers.
            return {
                "role": "assistant",
                "content": self.content or None,
                "tool_calls": [dict(call) for call in self.tool_calls],
            }
        if self.role == "tool":
            return {"role": "tool", "tool_call_id": self.tool_call_id, "content": self.content}
        return {"role": self.role, "content": self.content}

    def to_record(self) -> dict[str, Any]:
        """Every field, JSON-ready (the shape of ``history export --json``)."""
        record = {field.name: getattr(self, field.name) for field in fields(self)}
        record["tool_calls"] = builtins.list(self.tool_calls)
        record["attachments"] = [attachment.to_record() for attachment in self.attachments]
        return record


@dataclass(frozen=True, slots=True)
class Fork:
    """Where other branches leave the one read: after message ``after`` (None: at the
    start), the first messages of the branches not taken (``starts``, seqs)."""

    after: int | None
    starts: tuple[int, ...]

    def to_record(self) -> dict[str, Any]:
        return {"after": self.after, "starts": builtins.list(self.starts)}


@dataclass(frozen=True, slots=True)
class Branch:
    """One branch of a conversation: its path from the first message to ``leaf``.

    ``fork`` is the last message it shares with the current branch (None: none shared,
    or this is the current branch),
    ``start`` its first message after that, ``title`` the first user message from there
    on (the current branch: its last user message; else its last message), one line. The current branch may end before a leaf
    (after /undo), so ``leaf`` is where the branch ends, not always a message without
    followers.
    """

    leaf: int
    fork: int | None
    start: int | None
    length: int
    title: str
    updated_at: float
    current: bool


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation without its messages: what a listing shows (``message_count``: on
    its current branch)."""

    id: str
    title: str | None
    profile: str
    model: str | None
    created_at: float
    updated_at: float
    message_count: int

    def to_record(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One message that matched a search, with a snippet around the match."""

    conversation_id: str
    seq: int
    role: str
    profile: str
    model: str | None
    created_at: float
    title: str | None
    snippet: str

    def to_record(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True, slots=True)
class SearchResult:
    """What a search found; ``ranked`` is False when SQLite lacked FTS5 and LIKE was used."""

    hits: tuple[SearchHit, ...]
    ranked: bool


@dataclass(frozen=True, slots=True)
class UsageTotal:
    """Tokens and cost of the answers one profile's model gave over a period.

    Token counts are what servers reported (an answer without a usage report adds none);
    ``cost`` is the exact decimal sum of zen's cost frames, ``None`` when none came.
    """

    profile: str
    model: str | None
    answers: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: str | None

    def to_record(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True, slots=True)
class Conversation:
    """A whole conversation: its summary fields, system prompt and messages in order."""

    id: str
    title: str | None
    profile: str
    model: str | None
    created_at: float
    updated_at: float
    message_count: int
    system: str | None
    messages: tuple[StoredMessage, ...]
    # The branch read ends at ``head``; ``forks`` are where other branches leave it.
    head: int | None = None
    forks: tuple[Fork, ...] = ()

    def to_request_messages(self) -> builtins.list[dict[str, Any]]:
        """The OpenAI ``messages`` to send again to continue this conversation.

        The system prompt comes first; then every message in order, an interrupted or
        failed answer with whatever content it has (so roles keep alternating). Reasoning
        is never sent back.
        """
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [message.to_request() for message in self.messages]

    def to_record(self) -> dict[str, Any]:
        """The full record, JSON-ready: summary, system prompt and every message field."""
        record: dict[str, Any] = {
            field.name: getattr(self, field.name)
            for field in fields(self)
            if field.name not in ("messages", "forks")
        }
        record["forks"] = [fork.to_record() for fork in self.forks]
        record["messages"] = [message.to_record() for message in self.messages]
        return record


class Store(PrivateDatabase):
    """The conversation store: one SQLite connection, one transaction per write.

    Open it with ``Store.open()`` and use it as a context manager, from one thread.
    """

    what = "history database"

    @staticmethod
    def describe_error(path: Path, error: sqlite3.Error) -> LlmcliError:
        return _store_error(path, error)

    def __init__(
        self, connection: sqlite3.Connection, path: Path, clock: Callable[[], float]
    ) -> None:
        super().__init__(connection, path)
        self._clock = clock

    @classmethod
    def open(cls, path: Path | None = None, *, clock: Callable[[], float] = time.time) -> Store:
        """Open (creating if need be) the store at ``path``, by default ``default_path()``."""
        path = default_path() if path is None else path
        connection = cls.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
        store = cls(connection, path, clock)
        try:
            with store._guard():
                connection.execute("PRAGMA foreign_keys = ON")
                connection.execute("PRAGMA synchronous = FULL")
                connection.execute("PRAGMA journal_mode = WAL")
                store._migrate()
        except BaseException:
            connection.close()
            raise
        return store

    # --- writes: each one transaction ----------------------------------------------------

    def new_conversation(
        self,
        *,
        profile: str,
        model: str | None,
        system: str | None = None,
        title: str | None = None,
    ) -> str:
        """Start a conversation and return its id. Without ``title`` the first user message
        gives it one."""
        now = self._clock()
        for _attempt in range(5):
            conversation_id = new_conversation_id(now)
            try:
                with self._transaction() as db:
                    db.execute(
                        "INSERT INTO conversations (id, created_at, updated_at, profile, model,"
                        " system, title) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (
                            conversation_id,
                            now,
                            now,
                            profile,
                            model,
                            system,
                            make_title(title or ""),
                        ),
                    )
            except sqlite3.IntegrityError:
                continue  # the same id drawn twice in one millisecond: draw again
            return conversation_id
        raise AssertionError("no free conversation id after 5 random draws")

    def append(self, conversation_id: str, message: StoredMessage) -> int:
        """Add ``message`` after the conversation's head (by full id); return its seq.

        The message becomes the head. Also moves the conversation's ``updated_at``, takes
        its title from the first user message, and its model from the first message that
        names one when it had none.
        """
        if message.role not in ROLES:
            raise ValueError(f"unknown role {message.role!r}; one of {', '.join(ROLES)}")
        created_at = self._clock() if message.created_at is None else message.created_at
        title = make_title(message.content) if message.role == "user" else None
        with self._transaction() as db:
            updated = db.execute(
                "UPDATE conversations SET updated_at = max(updated_at, ?),"
                " title = coalesce(title, ?), model = coalesce(model, ?) WHERE id = ?",
                (created_at, title, message.model, conversation_id),
            )
            if updated.rowcount == 0:
                raise _unknown(conversation_id)
            (seq, parent) = db.execute(
                "SELECT (SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE conversation_id = ?),"
                " (SELECT head_seq FROM conversations WHERE id = ?)",
                (conversation_id, conversation_id),
            ).fetchone()
            db.execute(
                f"INSERT INTO messages (conversation_id, {_MESSAGE_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    seq,
                    message.role,
                    message.content,
                    message.reasoning,
                    _to_json(builtins.list(message.tool_calls) or None),
                    message.tool_call_id,
                    message.model,
                    message.profile,
                    message.finish_reason,
                    int(message.interrupted),
                    message.error,
                    _to_json(message.usage),
                    _to_json(message.timings),
                    message.cost,
                    message.ttft_ms,
                    message.duration_ms,
                    created_at,
                    parent,
                    _to_json([a.to_record() for a in message.attachments] or None),
                ),
            )
            db.execute("UPDATE conversations SET head_seq = ? WHERE id = ?", (seq, conversation_id))
        return int(seq)

    def set_head(self, conversation_id: str, seq: int | None) -> None:
        """Make message ``seq`` (None: before the first) the conversation's current end.

        What follows it stays in the store as a branch; the next append starts a new one.
        """
        with self._transaction() as db:
            updated = db.execute(
                "UPDATE conversations SET head_seq = ?, updated_at = max(updated_at, ?)"
                " WHERE id = ?",
                (seq, self._clock(), conversation_id),
            )
            if updated.rowcount == 0:
                raise _unknown(conversation_id)
            if seq is not None and not _has_message(db, conversation_id, seq):
                raise _no_message(conversation_id, seq)  # rolls the update back

    def set_system(self, conversation_id: str, system: str | None) -> None:
        """Replace (or with ``None`` remove) a conversation's system prompt, by full id."""
        with self._transaction() as db:
            updated = db.execute(
                "UPDATE conversations SET system = ?, updated_at = max(updated_at, ?) WHERE id = ?",
                (system, self._clock(), conversation_id),
            )
            if updated.rowcount == 0:
                raise _unknown(conversation_id)

    def delete_message(self, conversation_id: str, seq: int) -> None:
        """Remove one message (by full conversation id and seq), e.g. an answer retried.

        Deleting the last message frees its seq for the next append, so a retried answer
        takes its place; deleting an earlier one leaves a gap in the numbering. Messages
        that followed it follow its parent instead, and a head on it moves to its parent.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT parent_seq FROM messages WHERE conversation_id = ? AND seq = ?",
                (conversation_id, seq),
            ).fetchone()
            if row is None:
                raise _no_message(conversation_id, seq)
            db.execute(
                "DELETE FROM messages WHERE conversation_id = ? AND seq = ?",
                (conversation_id, seq),
            )
            db.execute(
                "UPDATE messages SET parent_seq = ? WHERE conversation_id = ? AND parent_seq = ?",
                (row[0], conversation_id, seq),
            )
            db.execute(
                "UPDATE conversations SET updated_at = max(updated_at, ?),"
                " head_seq = CASE WHEN head_seq = ? THEN ? ELSE head_seq END WHERE id = ?",
                (self._clock(), seq, row[0], conversation_id),
            )

    def delete(self, id_or_prefix: str) -> str:
        """Delete a conversation and its messages; return its full id."""
        conversation_id = self.resolve(id_or_prefix)
        with self._transaction() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return conversation_id

    # --- reads ---------------------------------------------------------------------------

    def resolve(self, id_or_prefix: str) -> str:
        """The full id of the one conversation whose id starts with ``id_or_prefix``."""
        prefix = _normalize_prefix(id_or_prefix)
        with self._guard():
            matches = [
                row[0]
                for row in self._db.execute(
                    "SELECT id FROM conversations WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
                    (prefix, prefix + _PREFIX_END),
                )
            ]
        if not matches:
            raise _unknown(id_or_prefix)
        if len(matches) > 1:
            shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
            raise UsageError(
                f"conversation id {id_or_prefix!r} is ambiguous: it starts {shown}; type more of it"
            )
        return str(matches[0])

    def get(self, id_or_prefix: str, *, branch: int | None = None) -> Conversation:
        """The conversation whose id is or starts with ``id_or_prefix``, as one branch.

        The current branch (first message to head), or with ``branch`` the one through
        that message: its path there, then on through the newest follower each time.
        """
        conversation_id = self.resolve(id_or_prefix)
        with self._transaction("DEFERRED"):
            row = self._db.execute(
                "SELECT id, title, profile, model, created_at, updated_at, system, head_seq"
                " FROM conversations WHERE id = ?",
                (conversation_id,),
            ).fetchone()
            if row is None:  # deleted by another process since resolve()
                raise _unknown(id_or_prefix)
            tree = _Tree(self._messages(conversation_id))
        head = row[7]
        if branch is not None:
            if branch not in tree.by_seq:
                raise _no_message(conversation_id, branch)
            head = tree.leaf_from(branch)
        messages = tree.path_to(head)
        return Conversation(
            id=row[0],
            title=row[1],
            profile=row[2],
            model=row[3],
            created_at=row[4],
            updated_at=row[5],
            message_count=len(messages),
            system=row[6],
            messages=messages,
            head=head,
            forks=tree.forks(messages),
        )

    def branches(self, conversation_id: str) -> builtins.list[Branch]:
        """Every branch of a conversation (by full id), the current one first, then newest first."""
        with self._transaction("DEFERRED") as db:
            row = db.execute(
                "SELECT head_seq FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            if row is None:
                raise _unknown(conversation_id)
            tree = _Tree(self._messages(conversation_id))
        head = row[0]
        current = tree.path_to(head)
        ends = [seq for seq in tree.by_seq if not tree.children.get(seq)]
        if head is not None and head not in ends:
            ends.append(head)
        found = [_branch(tree.path_to(end), current, end == head) for end in ends]
        if head is None:
            found.append(_branch((), current, True))
        return sorted(found, key=lambda b: (not b.current, -b.updated_at, -b.leaf))

    def _messages(self, conversation_id: str) -> builtins.list[StoredMessage]:
        return [
            _message_from_row(message_row)
            for message_row in self._db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY seq",
                (conversation_id,),
            )
        ]

    def list(self, *, limit: int = 20) -> builtins.list[ConversationSummary]:
        """The ``limit`` most recently updated conversations, newest first."""
        with self._guard():
            rows = self._db.execute(
                _SUMMARY_QUERY + " ORDER BY c.updated_at DESC, c.id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [ConversationSummary(*row) for row in rows]

    def latest(self) -> ConversationSummary | None:
        """The most recently updated conversation, if there is one."""
        found = self.list(limit=1)
        return found[0] if found else None

    def has_fts(self) -> bool:
        """Whether the full-text index exists (SQLite was built with FTS5)."""
        with self._guard():
            row = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'"
            ).fetchone()
        return row is not None

    def search(
        self,
        text: str,
        *,
        profile: str | None = None,
        model: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 20,
    ) -> SearchResult:
        """Messages matching ``text`` (FTS5 query syntax), best match first.

        Filters: the conversation's profile, the message's (or else the conversation's)
        model, and ``since <= created_at < until``. Without FTS5, a plain substring match,
        newest first. A malformed FTS5 query is a ``UsageError`` naming the query.
        """
        where = ["1"]
        params: builtins.list[object] = []
        for clause, value in (
            ("c.profile = ?", profile),
            ("coalesce(m.model, c.model) = ?", model),
            ("m.created_at >= ?", since),
            ("m.created_at < ?", until),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        filters = " AND ".join(where)
        columns = "m.conversation_id, m.seq, m.role, c.profile, coalesce(m.model, c.model),"
        columns += " m.created_at, c.title"
        ranked = self.has_fts()
        if ranked:
            query = (
                f"SELECT {columns}, snippet(messages_fts, 0, '[', ']', '…', 12)"
                " FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid"
                " JOIN conversations AS c ON c.id = m.conversation_id"
                f" WHERE messages_fts MATCH ? AND {filters} ORDER BY rank LIMIT ?"
            )
            params = [text, *params, limit]
        else:
            query = (
                f"SELECT {columns}, m.content FROM messages AS m"
                " JOIN conversations AS c ON c.id = m.conversation_id"
                f" WHERE instr(lower(m.content), lower(?)) > 0 AND {filters}"
                " ORDER BY m.created_at DESC LIMIT ?"
            )
            params = [text, *params, limit]
        try:
            rows = self._db.execute(query, params).fetchall()
        except sqlite3.OperationalError as error:
            detail = str(error)
            if ranked and detail.startswith(_FTS_QUERY_ERRORS):
                raise UsageError(
                    f"cannot search for {text!r}: {detail}; put words in double quotes"
                    """ to search them as written ('"C++"')"""
                ) from None
            raise self.describe_error(self.path, error) from None
        hits = tuple(SearchHit(*(*row[:7], _snippet(row[7], text, ranked))) for row in rows)
        return SearchResult(hits=hits, ranked=ranked)

    def usage(
        self, *, since: float | None = None, until: float | None = None
    ) -> builtins.list[UsageTotal]:
        """Totals per profile and model of the answers with ``since <= created_at < until``."""
        where = ["m.role = 'assistant'"]
        params: builtins.list[float] = []
        for clause, value in (("m.created_at >= ?", since), ("m.created_at < ?", until)):
            if value is not None:
                where.append(clause)
                params.append(value)
        with self._guard():
            rows = self._db.execute(
                "SELECT coalesce(m.profile, c.profile), coalesce(m.model, c.model),"
                " json_extract(m.usage, '$.prompt_tokens'),"
                " json_extract(m.usage, '$.completion_tokens'),"
                " json_extract(m.usage, '$.total_tokens'), m.cost"
                " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
                f" WHERE {' AND '.join(where)}",
                params,
            ).fetchall()
        return total_usage(rows)

    def short_id(self, conversation_id: str, *, minimum: int = SHORT_ID_LENGTH) -> str:
        """The shortest prefix (at least ``minimum`` long) naming only this conversation."""
        with self._guard():
            neighbours = [
                row[0]
                for query in (
                    "SELECT id FROM conversations WHERE id < ? ORDER BY id DESC LIMIT 1",
                    "SELECT id FROM conversations WHERE id > ? ORDER BY id LIMIT 1",
                )
                for row in self._db.execute(query, (conversation_id,))
            ]
        shared = max((_shared_length(conversation_id, n) for n in neighbours), default=0)
        return conversation_id[: max(minimum, shared + 1)]

    # --- plumbing ------------------------------------------------------------------------

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise LlmcliError(
                f"history database {self.path} has schema version {version}, newer than this"
                f" llmcli knows ({SCHEMA_VERSION}): upgrade llmcli, or move the file aside"
            )
        while version < SCHEMA_VERSION:
            with self._transaction() as db:
                # Read again under the write lock: another process may have migrated.
                (version,) = db.execute("PRAGMA user_version").fetchone()
                if version >= SCHEMA_VERSION:
                    break
                statements = MIGRATIONS[version]
                if statements is _SCHEMA_V2_FTS and not _sqlite_has_fts5(db):
                    statements = ()
                for statement in statements:
                    db.execute(statement)
                version += 1
                db.execute(f"PRAGMA user_version = {version}")


def default_path(env: Mapping[str, str] | None = None) -> Path:
    """The history database, in llmcli's data directory (``llmcli.config.paths``)."""
    return data_dir(os.environ if env is None else env) / DB_FILENAME


def new_conversation_id(now: float | None = None) -> str:
    """A fresh id: creation time in milliseconds, then random, in lowercase base32."""
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << (5 * _RANDOM_CHARS)) | secrets.randbits(5 * _RANDOM_CHARS)
    return "".join(_ALPHABET[(value >> (5 * shift)) & 31] for shift in reversed(range(ID_LENGTH)))


def total_usage(rows: Sequence[Sequence[Any]]) -> builtins.list[UsageTotal]:
    """Sum ``(profile, model, prompt, completion, total, cost)`` rows per profile and model.

    A missing total is prompt + completion; a cost that is not a decimal is left out.
    Sorted by profile, then model.
    """
    sums: dict[tuple[str, str | None], builtins.list[Any]] = {}
    for profile, model, prompt, completion, total, cost in rows:
        entry = sums.setdefault((profile, model), [0, 0, 0, 0, None])
        entry[0] += 1
        entry[1] += prompt or 0
        entry[2] += completion or 0
        entry[3] += total if total is not None else (prompt or 0) + (completion or 0)
        amount = _decimal(cost)
        if amount is not None:
            entry[4] = amount if entry[4] is None else entry[4] + amount
    return [
        UsageTotal(profile, model, n, p, c, t, None if cost is None else str(cost))
        for (profile, model), (n, p, c, t, cost) in sorted(
            sums.items(), key=lambda item: (item[0][0], item[0][1] or "")
        )
    ]


def make_title(content: str) -> str | None:
    """A conversation title from its first user message: one line, at most 60 characters."""
    line = " ".join(content.split())
    if len(line) <= TITLE_LENGTH:
        return line or None
    return line[: TITLE_LENGTH - 1].rstrip() + "…"


def message_title(message: StoredMessage) -> str:
    """A message in one line, for a list of branches: one sent with files by the text typed
    before them, or by the files' names when nothing was typed; never by a file's text."""
    return make_title(typed_text(message) or attached_names(message)) or ""


def typed_text(message: StoredMessage) -> str:
    """What was typed of a message sent with files: the text before the first file's block
    (each begins ``File: NAME`` or ``Image: NAME``); a message without files, whole."""
    content = message.content
    if not message.attachments:
        return content
    # Each block's header, the last time it occurs (a file's text may quote one).
    starts = [
        ("\n\n" + content).rfind(f"\n\n{kind}: {attachment.name}")
        for attachment in message.attachments
        for kind in ("File", "Image")
    ]
    found = [start for start in starts if start >= 0]
    return content[: min(found)].strip() if found else content


def attached_names(message: StoredMessage) -> str:
    """The names of a message's files, comma-separated ("" without files)."""
    return ", ".join(attachment.name for attachment in message.attachments)


def message_from_outcome(outcome: Outcome, *, profile: str, model: str | None) -> StoredMessage:
    """The assistant message to store for one answer, however it ended.

    ``model`` is the model asked for; the one the server says answered wins when it said.
    """
    answer = outcome.answer
    ttft = outcome.ttft
    return StoredMessage(
        role="assistant",
        content=answer.content,
        reasoning=answer.reasoning,
        tool_calls=tuple(call.to_openai() for call in answer.tool_calls),
        model=answer.model or model,
        profile=profile,
        finish_reason=answer.finish_reason,
        interrupted=outcome.interrupted,
        error=outcome.error,
        usage=sent_fields(answer.usage),
        timings=sent_fields(answer.timings),
        ttft_ms=None if ttft is None else ttft * 1000,
        duration_ms=None if outcome.ended is None else (outcome.ended - outcome.started) * 1000,
        cost=answer.cost,
    )


# --- helpers ----------------------------------------------------------------------------


def _snippet(text: str, query: str, ranked: bool, width: int = 80) -> str:
    """FTS5's snippet as one line; without FTS5, the text around the first match."""
    if not ranked:
        start = max(text.lower().find(query.lower()) - width // 2, 0)
        text = ("…" if start else "") + text[start : start + width]
    return " ".join(text.split())


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _sqlite_has_fts5(db: sqlite3.Connection) -> bool:
    return any(row[0] == "ENABLE_FTS5" for row in db.execute("PRAGMA compile_options"))


def _store_error(path: Path, error: sqlite3.Error) -> LlmcliError:
    if isinstance(error, sqlite3.OperationalError):
        detail = str(error)
        hint = ""
        if "locked" in detail or "busy" in detail:
            hint = ": another llmcli is writing it; try again"
        return LlmcliError(f"history database {path}: {detail}{hint}")
    return LlmcliError(
        f"history database {path} is unreadable ({error}): move it aside"
        f" (mv {path} {path}.broken) and llmcli starts a new one"
    )


class _Tree:
    """A conversation's messages as a tree: who follows whom."""

    def __init__(self, messages: Sequence[StoredMessage]) -> None:
        self.by_seq = {m.seq: m for m in messages if m.seq is not None}
        self.children: dict[int | None, builtins.list[int]] = {}
        for seq, message in self.by_seq.items():
            parent = message.parent if message.parent in self.by_seq else None
            self.children.setdefault(parent, []).append(seq)

    def path_to(self, end: int | None) -> tuple[StoredMessage, ...]:
        """The messages from the first to ``end``, in order."""
        path: builtins.list[StoredMessage] = []
        seen: set[int] = set()
        while end is not None and end in self.by_seq and end not in seen:
            seen.add(end)
            path.append(self.by_seq[end])
            end = self.by_seq[end].parent
        return tuple(reversed(path))

    def leaf_from(self, seq: int) -> int:
        """The end of the branch through ``seq``: follow the newest follower each time."""
        while self.children.get(seq):
            seq = max(self.children[seq])
        return seq

    def forks(self, path: Sequence[StoredMessage]) -> tuple[Fork, ...]:
        """Where branches other than ``path`` leave it."""
        taken = {m.seq for m in path}
        points: builtins.list[int | None] = [None, *(m.seq for m in path)]
        found = []
        for point in points:
            others = tuple(c for c in self.children.get(point, ()) if c not in taken)
            if others:
                found.append(Fork(after=point, starts=others))
        return tuple(found)


def _branch(
    path: Sequence[StoredMessage], current: Sequence[StoredMessage], is_current: bool
) -> Branch:
    shared = 0
    while shared < min(len(path), len(current)) and path[shared].seq == current[shared].seq:
        shared += 1
    rest = path[shared:] if not is_current else path
    # Another branch: where it starts to differ; the current one: where it has got to.
    users = [m for m in (reversed(rest) if is_current else rest) if m.role == "user"]
    first_user = users[0] if users else (rest[-1] if rest else None)
    last = path[-1] if path else None
    return Branch(
        leaf=0 if last is None or last.seq is None else last.seq,
        fork=path[shared - 1].seq if shared and not is_current else None,
        start=rest[0].seq if rest else None,
        length=len(path),
        title="" if first_user is None else message_title(first_user),
        updated_at=0.0 if last is None or last.created_at is None else last.created_at,
        current=is_current,
    )


def _has_message(db: sqlite3.Connection, conversation_id: str, seq: int) -> bool:
    row = db.execute(
        "SELECT 1 FROM messages WHERE conversation_id = ? AND seq = ?", (conversation_id, seq)
    ).fetchone()
    return row is not None


def _no_message(conversation_id: str, seq: int) -> UsageError:
    return UsageError(f"conversation {conversation_id} has no message {seq}")


def _unknown(id_or_prefix: str) -> UsageError:
    return UsageError(f"no conversation {id_or_prefix!r}: 'llmcli history list' shows the ids")


def _normalize_prefix(text: str) -> str:
    prefix = text.strip().lower().translate(_ID_ALIASES)
    if not prefix or any(char not in _ALPHABET for char in prefix):
        raise UsageError(
            f"{text!r} is not a conversation id: ids are digits and letters,"
            " as 'llmcli history list' shows them"
        )
    return prefix


def _shared_length(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` have in common."""
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def _message_from_row(row: Sequence[Any]) -> StoredMessage:
    (
        seq,
        role,
        content,
        reasoning,
        tool_calls,
        tool_call_id,
        model,
        profile,
        finish_reason,
        interrupted,
        error,
        usage,
        timings,
        cost,
        ttft_ms,
        duration_ms,
        created_at,
        parent_seq,
        attachments,
    ) = row
    return StoredMessage(
        role=role,
        content=content,
        reasoning=reasoning,
        tool_calls=tuple(json.loads(tool_calls)) if tool_calls else (),
        tool_call_id=tool_call_id,
        model=model,
        profile=profile,
        finish_reason=finish_reason,
        interrupted=bool(interrupted),
        error=error,
        usage=None if usage is None else json.loads(usage),
        timings=None if timings is None else json.loads(timings),
        ttft_ms=ttft_ms,
        duration_ms=duration_ms,
        created_at=created_at,
        seq=seq,
        cost=cost,
        parent=parent_seq,
        attachments=tuple(Attachment.from_record(a) for a in json.loads(attachments))
        if attachments
        else (),
    )


def _to_json(value: object) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)
