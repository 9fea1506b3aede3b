"""Named locks in the state folder: one run at a time of what must not overlap (sending, reading bounces).

On POSIX the lock is ``flock`` on ``<name>.lock`` (the filelock library, whose import alone costs
more than a no-op tick's own work, only elsewhere).  ``flock`` belongs to the open file: a second
``held`` of the same name, in this process or another, waits like any other run; the kernel lets
go when the process dies, so a crash never leaves it stuck.  No caller takes the same lock twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the filelock library does it
    fcntl = None  # type: ignore[assignment]

#: How often a waiting run tries again (as filelock did).
POLL = 0.05


@contextmanager
def held(state_dir: Path, name: str, *, wait: float) -> Iterator[bool]:
    """Hold ``name``'s lock while the block runs; yields False (holding nothing) if another process
    kept it for ``wait`` seconds."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / f"{name}.lock"
    if fcntl is None:  # pragma: no cover
        with _held_portable(path, wait=wait) as got:
            yield got
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _acquire(fd, wait):
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, wait: float) -> bool:
    """Try until ``wait`` seconds have passed (0: once; negative: for ever, as filelock's timeout)."""
    deadline = time.monotonic() + wait if wait >= 0 else float("inf")
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(POLL, left))


@contextmanager
def _held_portable(path: Path, *, wait: float) -> Iterator[bool]:  # pragma: no cover - not POSIX
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
