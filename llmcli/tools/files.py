"""A directory that file tools are confined to, and the two read-only tools inside it.

A model names paths; it must not reach beyond the root the user gave (``--root``).
:meth:`Root.locate` resolves a path the way the kernel will (every symlink followed, on
the final component and on directories mid-path, ``..`` applied after), then requires the
real path to lie inside the root's real path. So ``../x``, ``/etc/passwd``, a symlink to
``/etc`` and a symlinked directory pointing outside are all refused the same way, and a
path outside the root is refused whether or not it exists (no probing the disk).

``read_file`` opens the resolved path with ``O_NOFOLLOW`` and ``O_NONBLOCK`` and reads
only regular files (a FIFO would hang, a device never end), at most ``READ_CAP`` bytes,
saying when it cut the file short. ``list_dir`` lists one directory without following
the links in it.
"""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path
from typing import Final

from llmcli.tools.tool import ToolError

READ_CAP: Final = 64 * 1024
LIST_CAP: Final = 500
BINARY_SNIFF: Final = 8192


class Root:
    """The directory tools may read; every path a model gives is located inside it."""

    def __init__(self, path: Path) -> None:
        try:
            real = path.resolve(strict=True)
        except OSError as error:
            raise ValueError(f"{path}: {error.strerror or error}") from None
        if not real.is_dir():
            raise ValueError(f"{path}: not a directory")
        self.path = real

    def locate(self, name: str) -> Path:
        """The real path of ``name`` (relative to the root, or absolute inside it)."""
        if not name or "\x00" in name:
            raise ToolError("give a path relative to the root, e.g. '.' or 'notes/todo.md'")
        # realpath in non-strict mode follows every symlink that exists and applies ".."
        # after it, exactly as open() would; only then is the containment checked.
        real = Path(os.path.realpath(self.path / name))
        if not real.is_relative_to(self.path):
            raise ToolError(f"{name!r} is outside the directory the tools may read")
        if not real.exists():
            raise ToolError(f"{name!r} does not exist")
        return real

    def relative(self, real: Path) -> str:
        text = str(real.relative_to(self.path))
        return "." if text == "." else text

    def read_file(self, name: str, cap: int = READ_CAP) -> str:
        """A text file's content, cut at ``cap`` bytes with a note saying so."""
        real = self.locate(name)
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            raise ToolError(f"cannot open {name!r}: {error.strerror}") from None
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                raise ToolError(f"{name!r} is a directory: use list_dir")
            if not stat.S_ISREG(info.st_mode):
                raise ToolError(f"{name!r} is not a regular file")
            data = _read_up_to(fd, cap + 1)
        finally:
            os.close(fd)
        if b"\x00" in data[:BINARY_SNIFF]:
            return f"[{name} is a binary file of {info.st_size} bytes; not shown]"
        truncated = len(data) > cap
        # A cut can fall inside a UTF-8 sequence: the incremental decoder drops that tail.
        text = codecs.getincrementaldecoder("utf-8")("replace").decode(
            data[:cap], final=not truncated
        )
        if truncated:
            text += f"\n[truncated: showing the first {cap} of {info.st_size} bytes]"
        return text

    def list_dir(self, name: str = ".", cap: int = LIST_CAP) -> str:
        """One line per entry: ``name/`` for directories, ``name@`` for links, sizes for files."""
        real = self.locate(name)
        if not real.is_dir():
            raise ToolError(f"{name!r} is not a directory: use read_file")
        try:
            entries = sorted(os.scandir(real), key=lambda entry: entry.name)
        except OSError as error:
            raise ToolError(f"cannot list {name!r}: {error.strerror}") from None
        lines = [_describe(entry) for entry in entries[:cap]]
        if len(entries) > cap:
            lines.append(f"[truncated: showing {cap} of {len(entries)} entries]")
        header = f"{self.relative(real)}: {len(entries)} entries"
        return "\n".join([header, *lines])


def _read_up_to(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    left = size
    while left > 0 and (chunk := os.read(fd, min(left, 65536))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _describe(entry: os.DirEntry[str]) -> str:
    try:
        if entry.is_symlink():
            return entry.name + "@"  # never followed: its target may be outside the root
        if entry.is_dir(follow_symlinks=False):
            return entry.name + "/"
        size = entry.stat(follow_symlinks=False).st_size
    except OSError:
        return entry.name + " (unreadable)"
    return f"{entry.name} ({size} bytes)"
