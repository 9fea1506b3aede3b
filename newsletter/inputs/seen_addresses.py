"""Which addresses a pass over the member list has met, and on which line first, in little memory.

A dict of address → line costs some 150 bytes a member (the string, the int, the dict's slot); with
a list of millions that is hundreds of megabytes for a pass that otherwise streams. This table keeps
a 12-byte BLAKE2b digest of each address and a 4-byte line number in flat arrays (open addressing,
linear probing, at most 85 % full, grown by half when full): 19 to 30 bytes a member, and
two different addresses collide once in 2**96 pairs or so (for a million members, once in some
10**17 lists).  Sized from the start for the rows a file is likely to hold (``capacity``, from its
size: ``capacity_of``), it seldom grows, which holds the old table and the new one for a moment.
"""

from __future__ import annotations

from array import array
from hashlib import blake2b
from typing import BinaryIO

_DIGEST = 12
_LOAD = 0.85  # at most this share of the slots in use


def _slots(capacity: int) -> int:
    return max(16, int(capacity / _LOAD) + 1)


class SeenAddresses:
    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity  # the table is made when the first address comes
        self._allocate(0)
        self._count = 0

    def _allocate(self, size: int) -> None:
        self._size = size
        self._limit = int(size * _LOAD)
        self._digests = bytearray(_DIGEST * size)
        self._lines = array("I", [0]) * size  # 0 marks an empty slot: lines start at 1

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not self._count:
            return False
        return bool(self._lines[self._find(_digest(key))])

    def first_line(self, key: str, line: int) -> int | None:
        """The line ``key`` was first met on; None (and ``line`` recorded for it) if it is new."""
        digest = _digest(key)
        if not self._size:
            self._allocate(_slots(self._capacity))
        slot = self._find(digest)
        found = self._lines[slot]
        if found:
            return found
        if self._count >= self._limit:
            self._grow()
            slot = self._find(digest)
        start = slot * _DIGEST
        self._digests[start : start + _DIGEST] = digest
        self._lines[slot] = min(max(line, 1), 0xFFFFFFFF)
        self._count += 1
        return None

    def _find(self, digest: bytes) -> int:
        """The slot holding ``digest``, or the empty one where it belongs (linear probing)."""
        lines, digests, size = self._lines, self._digests, self._size
        slot = int.from_bytes(digest, "little") % size
        while lines[slot] and digests[slot * _DIGEST : slot * _DIGEST + _DIGEST] != digest:
            slot += 1
            if slot == size:
                slot = 0
        return slot

    def _grow(self) -> None:
        old_digests, old_lines = self._digests, self._lines
        self._allocate(self._size + self._size // 2)
        for slot, line in enumerate(old_lines):
            if line:
                digest = bytes(old_digests[slot * _DIGEST : slot * _DIGEST + _DIGEST])
                new = self._find(digest)
                self._digests[new * _DIGEST : new * _DIGEST + _DIGEST] = digest
                self._lines[new] = line


def _digest(key: str) -> bytes:
    return blake2b(key.encode("utf-8"), digest_size=_DIGEST).digest()


#: The most rows an estimate sizes a table for at the start (35 MB or so); a longer list grows it.
_MOST = 2_000_000


def capacity_for(size: int, head: bytes, middle: bytes = b"") -> int:
    """How many rows a file of ``size`` bytes likely holds (a little more), from its first bytes and,
    for a long file, some from its middle: rows far down a list are often longer (more digits)."""
    if len(head) >= size:
        return max(head.count(b"\n"), head.count(b"\r")) + 1
    sample = len(head) + len(middle)
    lines = sum(max(part.count(b"\n"), part.count(b"\r")) for part in (head, middle))
    if not lines:
        return 1024
    return min(int(size * lines / sample * 1.03) + 16, _MOST)


def capacity_of(file: BinaryIO, size: int, head: bytes) -> int:
    """``capacity_for`` an open file whose first bytes ``head`` were read; its position is kept."""
    if size <= 2 * len(head):
        return capacity_for(size, head)
    where = file.tell()
    file.seek(size // 2)
    middle = file.read(len(head))
    file.seek(where)
    return capacity_for(size, head, middle)
