"""The kernel's receive time of what a socket reads (Linux ``SO_TIMESTAMPNS``).

A program that reads a socket when its event loop gets round to it learns when it read the
bytes, not when they arrived. Linux stamps every packet it receives; with
``SO_TIMESTAMPNS`` set, a ``recvmsg`` carries the stamp of the last packet it read, on the
real-time clock. :func:`read` returns the bytes with that moment as a reading of any
monotonic ``clock`` ("now minus its age"), and the age itself: how long the bytes waited.

Used by :mod:`llmcli.net.streamhttp` (the bench's reads) and the mock server (when a request
arrived), so both sides of a benchmark of llmcli stamp alike.
"""

from __future__ import annotations

import contextlib
import platform
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

# SO_TIMESTAMPNS_OLD in asm-generic/socket.h; Python has no name for it. Some architectures
# number their socket options their own way (sparc, parisc, mips, alpha): only those that
# take the generic numbers use it.
SO_TIMESTAMPNS = 35
_GENERIC = ("x86_64", "i386", "i686", "aarch64", "arm", "riscv64", "ppc64", "s390x", "loongarch64")
AVAILABLE = sys.platform == "linux" and platform.machine().startswith(_GENERIC)
READ_SIZE = 256 * 1024
_ANCILLARY = socket.CMSG_SPACE(16) if AVAILABLE else 0
# One buffer a thread for every read (a read is copied out before the next can start):
# recvmsg(n) would allocate n bytes a call, and above malloc's mmap threshold that is an
# mmap and a munmap a read. A thread each: recvmsg_into lets go of the GIL, and a mock
# server in a thread of the bench's own process reads at the same time (the tests do).
_local = threading.local()


def _buffer() -> memoryview:
    buffer: memoryview | None = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = memoryview(bytearray(READ_SIZE))
    return buffer


def enable(sock: socket.socket) -> bool:
    """Ask for receive stamps on ``sock``; ``False`` where the system gives none."""
    if not AVAILABLE:
        return False
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        return True
    return False


def read(sock: socket.socket, clock: Callable[[], float]) -> tuple[bytes, float, float | None]:
    """(bytes, when they arrived, how long they waited) from one ``recvmsg`` of ``sock``.

    Without a stamp the arrival is ``clock()`` and the wait ``None``. Raises what
    ``recvmsg`` raises (``BlockingIOError`` when there is nothing to read).
    """
    buffer = _buffer()
    size, ancillary, _, _ = sock.recvmsg_into([buffer], _ANCILLARY)
    data = bytes(buffer[:size])
    for level, kind, blob in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(blob) >= 16:
            seconds, nanoseconds = struct.unpack_from("qq", blob)
            wall = time.time_ns()
            now = clock()  # read after the wall clock: the stamp errs late, never early
            age = (wall - int(seconds) * 1_000_000_000 - int(nanoseconds)) / 1e9
            if 0.0 <= age < 60.0:  # a real-time clock step makes no sense of it
                return data, now - age, age
            return data, now, None
    return data, clock(), None
