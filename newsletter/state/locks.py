"""Named locks in the state folder: one run at a time of what must not overlap (sending, reading bounces)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def held(state_dir: Path, name: str, *, wait: float) -> Iterator[bool]:
    """Hold ``name``'s lock while the block runs; yields False (holding nothing) if another process
    kept it for ``wait`` seconds."""
    from filelock import FileLock, Timeout

    state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(state_dir / f"{name}.lock"))
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
