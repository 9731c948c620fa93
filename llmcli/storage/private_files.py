"""Files only their owner may read: the history, the embeddings cache, the input history.

Conversations and typed input can hold anything a user pasted, secrets included.
"""

from __future__ import annotations

import os
from pathlib import Path


def create_private_file(path: Path) -> None:
    """Make the directory (0700) and an empty file (0600), unless the file exists already.

    SQLite creates ``-wal`` and ``-shm`` with the database file's permissions, so a store
    made here stays owner-only. Modes are set with chmod as well: umask only removes bits,
    and a umask of 0277 would leave a file its owner cannot write. Raises ``OSError``.
    """
    directory = path.parent
    if not directory.is_dir():
        directory.parent.mkdir(parents=True, exist_ok=True)
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            pass  # another llmcli made it a moment ago
        else:
            os.chmod(directory, 0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        else:  # Windows before Python 3.13; its permissions do not work this way anyway
            os.chmod(path, 0o600)
    finally:
        os.close(fd)
