"""A lock file held while a process uses a folder (a demo's data dir, a simulator's state).

flock(2) is released by the kernel when the holder exits, even on kill -9, so a stale
file never blocks the next run; the pid written inside only helps the message.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FolderInUse(RuntimeError):
    """Another process holds the folder's lock."""


@contextmanager
def folder_lock(path: Path, what: str) -> Iterator[None]:
    """Hold the lock file ``path`` (creating its folder) for the ``with`` block.

    :raises FolderInUse: another process holds it; the message names the folder and pid.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise FolderInUse(f"{what} {path.parent} is in use by another process (pid {holder}, "
                          f"lock file {path})") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (unlinking it would race)
