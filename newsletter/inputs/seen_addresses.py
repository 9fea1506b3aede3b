"""Which addresses a pass over the member list has met, and on which line first, in little memory.

A dict of address → line costs some 150 bytes a member (the string, the int, the dict's slot); with
a list of millions that is hundreds of megabytes for a send that otherwise streams. This table keeps
a 16-byte BLAKE2b digest of each address and a 4-byte line number in flat arrays (open addressing,
at most two thirds full): 30 to 60 bytes a member, and two different addresses collide once in 2**64
pairs or so.
"""

from __future__ import annotations

from array import array
from hashlib import blake2b

_DIGEST = 16


class SeenAddresses:
    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while 2 * size < 3 * capacity:
            size *= 2
        self._mask = size - 1
        self._digests = bytearray(_DIGEST * size)
        self._lines = array("I", bytes(4 * size))  # 0 marks an empty slot: lines start at 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def first_line(self, key: str, line: int) -> int | None:
        """The line ``key`` was first met on; None (and ``line`` recorded for it) if it is new."""
        digest = blake2b(key.encode("utf-8"), digest_size=_DIGEST).digest()
        slot = self._find(digest)
        found = self._lines[slot]
        if found:
            return found
        start = slot * _DIGEST
        self._digests[start : start + _DIGEST] = digest
        self._lines[slot] = max(line, 1)
        self._count += 1
        if 3 * self._count > 2 * self._mask:
            self._grow()
        return None

    def _find(self, digest: bytes) -> int:
        """The slot holding ``digest``, or the empty one where it belongs (linear probing)."""
        lines, digests, mask = self._lines, self._digests, self._mask
        slot = hash(digest) & mask
        while lines[slot] and digests[slot * _DIGEST : slot * _DIGEST + _DIGEST] != digest:
            slot = (slot + 1) & mask
        return slot

    def _grow(self) -> None:
        old_digests, old_lines = self._digests, self._lines
        self._mask = 2 * len(old_lines) - 1
        self._digests = bytearray(2 * len(old_digests))
        self._lines = array("I", bytes(8 * len(old_lines)))
        for slot, line in enumerate(old_lines):
            if line:
                digest = bytes(old_digests[slot * _DIGEST : slot * _DIGEST + _DIGEST])
                new = self._find(digest)
                self._digests[new * _DIGEST : new * _DIGEST + _DIGEST] = digest
                self._lines[new] = line
