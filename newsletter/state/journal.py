"""The outcome journal: each message's result, appended to a file beside the state database the moment
the server answers, and folded into SQLite in one transaction now and then.

A transaction per message writes a 4 KB page (or several) per message; a line appended with
``os.write`` costs about a hundred bytes, and it is in the kernel's page cache once the call returns:
it survives ``kill -9`` of the process, as SQLite's own commits do with ``synchronous=NORMAL`` (neither
survives a power cut before the kernel writes them out).  Folded within a few seconds and then cut
off, the file's pages mostly never reach the disk at all.

The file holds text lines: a header, ``newsletter-outcomes 1 TOKEN {json}``, and then one line per
result, ``CRC32 [json]``.  A line a crash cut short (no newline, or a CRC that does not match) ends
what is read.  Each fold also stores "TOKEN OFFSET" in the same transaction (``Folded``); the file is
then emptied and starts again under a new token, so a crash between that commit and the cut leaves
lines the ledger knows it has folded: they are skipped, and nothing counts twice.

The process that sends holds an exclusive ``flock`` on the file for the whole mailing.  Any other
process that opens the ledger and finds lines in a file nobody holds (its sender was killed) folds
them first.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

MAGIC = b"newsletter-outcomes 1 "


def journal_path(state: Path) -> Path:
    """Beside the state database (``state.sqlite3-outcomes``), like SQLite's own ``-wal`` file."""
    return state.with_name(state.name + "-outcomes")


@dataclass(frozen=True)
class Header:
    """What every line of one journal is about: the mailing, its transport, and the ``told_runs`` row
    that records what its members were told (None: an outbox try-out tells nobody anything)."""

    campaign: str
    via: str
    told: int | None

    def dump(self) -> bytes:
        return json.dumps([self.campaign, self.via, self.told]).encode()

    @classmethod
    def load(cls, raw: bytes) -> Header:
        campaign, via, told = json.loads(raw)
        return cls(str(campaign), str(via), None if told is None else int(told))


@dataclass(frozen=True)
class Folded:
    """How far the ledger has folded a journal: its token, and the offset just past the last line."""

    token: str
    offset: int

    def dump(self) -> str:
        return f"{self.token} {self.offset}"

    @classmethod
    def load(cls, text: str | None) -> Folded | None:
        token, _, offset = (text or "").partition(" ")
        return cls(token, int(offset)) if token and offset.isdigit() else None


@dataclass(frozen=True)
class Leftover:
    """Lines a journal holds that the ledger has not folded."""

    header: Header
    records: list[list[Any]]
    folded: Folded  # to store with them


def encode(record: list[Any]) -> bytes:
    data = json.dumps(record, separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(data), data)


def decode(blob: bytes, start: int) -> tuple[list[list[Any]], int]:
    """The whole lines from ``start`` on, and the offset past the last good one."""
    records: list[list[Any]] = []
    at = start
    while (end := blob.find(b"\n", at)) != -1:
        crc, _, data = blob[at:end].partition(b" ")
        try:
            if int(crc, 16) != zlib.crc32(data):
                break
            record = json.loads(data)
        except ValueError:
            break
        if not isinstance(record, list):
            break
        records.append(record)
        at = end + 1
    return records, at


class Journal:
    """One open journal file, held under an exclusive lock until ``close``."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path
        self.token: str | None = None
        self.end = 0  # the file's length: every write appends

    @classmethod
    def lock(cls, path: Path, *, wait: bool, mode: int | None = None) -> Journal | None:
        """The journal at ``path``, locked; None if it does not exist (unless a ``mode`` to create it
        with is given) or, without ``wait``, when another process holds it (a send is going on)."""
        flags = os.O_RDWR | (os.O_CREAT if mode is not None else 0)
        try:
            fd = os.open(path, flags, 0o600 if mode is None else mode)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        journal = cls(fd, path)
        journal.end = os.fstat(fd).st_size
        return journal

    def close(self) -> None:
        os.close(self.fd)  # and the lock with it

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def leftover(self, folded: Folded | None) -> Leftover | None:
        """What the file holds beyond ``folded`` (the ledger's note of the last fold), if anything."""
        if self.end == 0:
            return None
        blob = os.pread(self.fd, self.end, 0)
        first = blob.find(b"\n")
        if not blob.startswith(MAGIC) or first == -1:
            return None  # cut short before its header was whole: nothing was sent under it
        token, _, raw = blob[len(MAGIC) : first].partition(b" ")
        try:
            header = Header.load(raw)
        except (ValueError, TypeError):
            return None
        start = first + 1
        if folded is not None and folded.token == token.decode() and folded.offset > start:
            start = folded.offset
        records, end = decode(blob, start)
        if not records:
            return None
        return Leftover(header, records, Folded(token.decode(), end))

    def start(self, header: Header) -> None:
        """Empty the file and begin it again for ``header``, under a new token."""
        self.clear()
        self.token = secrets.token_hex(6)
        self.write(MAGIC + self.token.encode() + b" " + header.dump() + b"\n")

    def clear(self) -> None:
        os.ftruncate(self.fd, 0)
        self.end, self.token = 0, None

    def append(self, record: list[Any]) -> None:
        assert self.token is not None, "start() first"
        self.write(encode(record))

    def write(self, data: bytes) -> None:
        # One write() call per line, at the end of the file: a kill can only cut off the last line.
        written = os.pwrite(self.fd, data, self.end)
        if written != len(data):  # a full disk: what was written is cut off again
            os.ftruncate(self.fd, self.end)
            raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
        self.end += written

    @property
    def folded(self) -> Folded:
        """Where a fold of everything written so far leaves the file."""
        assert self.token is not None
        return Folded(self.token, self.end)
