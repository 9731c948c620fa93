"""The embeddings cache: vectors already computed, so a corpus is embedded once.

``embeddings.db`` in the data directory, beside the history, keyed by profile, model (as
the server names it) and the SHA-256 of the text, so ``find_similar`` over a corpus
already embedded costs one request, the query's.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from array import array
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

from llmcli.embeddings.inputs import Embedding
from llmcli.embeddings.vectors import from_le_bytes, to_le_bytes
from llmcli.errors import LlmcliError
from llmcli.storage.database import PrivateDatabase

CACHE_FILENAME: Final = "embeddings.db"
CACHE_SCHEMA_VERSION: Final = 1
_LOOKUP_CHUNK: Final = 500  # host parameters per query; old SQLite allows 999

_CACHE_SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS embeddings (
        profile TEXT NOT NULL,
        model TEXT NOT NULL,
        text_sha256 BLOB NOT NULL,
        truncated INTEGER NOT NULL,
        dimensions INTEGER NOT NULL,
        vector BLOB NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (profile, model, text_sha256)
    ) WITHOUT ROWID
"""


def default_cache_path(env: Mapping[str, str] | None = None) -> Path:
    """``embeddings.db`` in the data directory, beside the history database."""
    from llmcli.config.paths import data_dir

    return data_dir(os.environ if env is None else env) / CACHE_FILENAME


class EmbeddingCache(PrivateDatabase):
    """Vectors already computed, keyed by profile, model and the SHA-256 of the text.

    Owner-only like the history (directory 0700, file 0600). Texts are not stored, only
    their hashes. A vector of a cut (``--truncate``) input is served only to runs that
    cut too. Use from one thread, as a context manager.
    """

    what = "embeddings cache"

    @staticmethod
    def describe_error(path: Path, error: sqlite3.Error) -> LlmcliError:
        return _cache_error(path, error)

    @classmethod
    def open(cls, path: Path | None = None) -> EmbeddingCache:
        path = default_cache_path() if path is None else path
        connection = cls.connect(path, timeout=10.0)
        cache = cls(connection, path)
        try:
            with cache._guard():
                connection.execute("PRAGMA journal_mode = WAL")
                (version,) = connection.execute("PRAGMA user_version").fetchone()
                if version > CACHE_SCHEMA_VERSION:
                    raise LlmcliError(
                        f"embeddings cache {path} is from a newer llmcli: upgrade, or remove it"
                    )
                if version < CACHE_SCHEMA_VERSION:
                    with cache._transaction() as db:
                        db.execute(_CACHE_SCHEMA)
                        db.execute(f"PRAGMA user_version = {CACHE_SCHEMA_VERSION}")
        except BaseException:
            connection.close()
            raise
        return cache

    def lookup(
        self, profile: str, model: str, texts: Sequence[str], *, truncated: bool = False
    ) -> dict[int, array[float]]:
        """The cached vectors of ``texts``, by position; cut vectors only with ``truncated``."""
        wanted: dict[bytes, list[int]] = {}
        for index, text in enumerate(texts):
            wanted.setdefault(_text_key(text), []).append(index)
        keys = list(wanted)
        found: dict[int, array[float]] = {}
        with self._guard():
            for start in range(0, len(keys), _LOOKUP_CHUNK):
                chunk = keys[start : start + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    "SELECT text_sha256, dimensions, vector FROM embeddings"
                    f" WHERE profile = ? AND model = ? AND truncated <= ?"
                    f" AND text_sha256 IN ({marks})",
                    (profile, model, int(truncated), *chunk),
                )
                for key, dimensions, blob in rows:
                    if len(blob) != 4 * dimensions:
                        continue  # a damaged row is a miss, and is written again
                    vector = from_le_bytes(blob)
                    for index in wanted[key]:
                        found[index] = vector
        return found

    def store(self, profile: str, model: str, embeddings: Iterable[Embedding]) -> None:
        """Remember vectors (one transaction); a text seen again replaces its old vector."""
        now = time.time()
        rows = [
            (
                profile,
                model,
                _text_key(item.text),
                int(item.truncated),
                len(item.vector),
                to_le_bytes(item.vector),
                now,
            )
            for item in embeddings
        ]
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO embeddings (profile, model, text_sha256, truncated,"
                " dimensions, vector, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def count(self) -> int:
        with self._guard():
            (total,) = self._db.execute("SELECT count(*) FROM embeddings").fetchone()
        return int(total)


def _text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _cache_error(path: Path, error: sqlite3.Error) -> LlmcliError:
    if isinstance(error, sqlite3.OperationalError) and (
        "locked" in str(error) or "busy" in str(error)
    ):
        return LlmcliError(
            f"embeddings cache {path}: {error}: another llmcli is writing it; try again"
        )
    return LlmcliError(
        f"embeddings cache {path}: {error}; it is only a cache: remove it and llmcli builds it again"
    )
