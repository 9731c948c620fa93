"""Owner-only SQLite files: how the history and the embeddings cache open, write and fail.

Both are one connection used from one thread, in autocommit mode (no implicit
transactions): every write says ``BEGIN`` itself and is committed whole or rolled back,
Ctrl-C included. What the file or the disk can do wrong becomes one ``LlmcliError`` that
names the file; integrity and programming errors are bugs and raise as they are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Self

from llmcli.config.paths import DATA_DIR_ENV
from llmcli.errors import LlmcliError
from llmcli.storage.private_files import create_private_file


class PrivateDatabase:
    """Base of a store kept in one owner-only SQLite file; subclasses say what it is."""

    #: What the file is, for messages: "history database", "embeddings cache".
    what = "database"

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def connect(cls, path: Path, *, timeout: float) -> sqlite3.Connection:
        """Create the file owner-only if new (before SQLite does), then open it.

        ``timeout`` is SQLite's busy timeout: how long a write waits for another writer.
        """
        try:
            create_private_file(path)
        except OSError as error:
            raise LlmcliError(
                f"cannot create the {cls.what} {path}: {error.strerror or error}"
                f" (set {DATA_DIR_ENV} to a directory you can write)"
            ) from None
        try:
            return sqlite3.connect(path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as error:
            raise cls.describe_error(path, error) from None

    @staticmethod
    def describe_error(path: Path, error: sqlite3.Error) -> LlmcliError:
        """The one line a user sees for ``error``; subclasses say what to do about it."""
        return LlmcliError(f"{path}: {error}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self, kind: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """One transaction, committed whole or rolled back (Ctrl-C included).

        Writes take the write lock at once (IMMEDIATE), so they wait for another writer
        at BEGIN rather than fail half-way; reads (DEFERRED) see one snapshot throughout.
        """
        with self._guard():
            self._db.execute(f"BEGIN {kind}")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn what the file or the disk can do wrong into an error the user can act on."""
        try:
            yield
        except sqlite3.Error as error:
            # Integrity and programming errors are bugs in llmcli: let them raise.
            if isinstance(error, sqlite3.OperationalError) or type(error) is sqlite3.DatabaseError:
                raise self.describe_error(self.path, error) from None
            raise
