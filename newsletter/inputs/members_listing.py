"""``subscribers.csv`` read for `subscribers list` and `subscribers export`: checked whole, then streamed.

``members_io.load`` holds every member in memory, as an edit needs; showing or exporting the list
needs one member at a time.  The file is opened once and read twice through that one handle: first
every row is checked (a file with a problem shows nothing, as before) while the caller counts what
it needs, then the members are handed out one by one.  A spreadsheet that saves the file meanwhile
replaces it with a rename, which an open handle does not see, so both passes read the same version.
Memory stays flat for any length of list: one row at a time, and 19 to 30 bytes per address for the
duplicate check of the first pass.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from newsletter.errors import DataError, Problem
from newsletter.inputs.members import (
    EMAIL_COLUMN,
    HEAD,
    NAME_COLUMN,
    SAVE_AS_UTF8,
    _scan_text,
    read_subscribers,
)
from newsletter.inputs.seen_addresses import capacity_of
from newsletter.model import Subscriber

_BOM = b"\xef\xbb\xbf"
_BLANK = b" \t\r\n,;"  # what a file holding no member may consist of (members_io.load's test)


@dataclass
class Listing:
    """The checked file: its columns, how many members, and a second pass over them."""

    path: Path
    columns: list[str]
    count: int
    _raw: BinaryIO | None = None  # None: a missing or blank file, an empty list

    def members(self) -> Iterator[Subscriber]:
        """Every member in file order, as ``members_io.load`` gives them."""
        if self._raw is None:
            return
        for member, problems in _read(self._raw, self.path.name, None, capacity=0):
            if problems:  # the file was rewritten in place between the two passes
                raise DataError(problems)
            if member is not None:
                yield member


@contextmanager
def listing(path: Path, visit: Callable[[Subscriber], None] | None = None) -> Iterator[Listing]:
    """The file checked in full (DataError with every problem, as ``members_io.load`` raises it), each
    member shown to ``visit`` on the way; a missing or blank file is an empty list."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        yield Listing(path, [EMAIL_COLUMN, NAME_COLUMN], 0)
        return
    with raw:
        if _blank(raw):
            yield Listing(path, [EMAIL_COLUMN, NAME_COLUMN], 0)
            return
        capacity = capacity_of(raw, os.fstat(raw.fileno()).st_size, raw.read(HEAD))
        columns: list[str] = []
        problems: list[Problem] = []
        count = 0
        try:
            for member, row_problems in _read(raw, path.name, columns, capacity=capacity):
                problems.extend(row_problems)
                if member is not None:
                    count += 1
                    if visit is not None:
                        visit(member)
        except UnicodeDecodeError:
            read_subscribers(path)  # raises the DataError that names the line (or UTF-16)
            raise DataError([Problem(path.name, None, "is not saved as UTF-8", SAVE_AS_UTF8)]) from None
        if problems:
            raise DataError(problems)  # every problem, file:line
        yield Listing(path, columns, count, raw)


def _read(
    raw: BinaryIO, display: str, columns: list[str] | None, *, capacity: int
) -> Iterator[tuple[Subscriber | None, list[Problem]]]:
    """One pass from the start of ``raw``, which stays open; ``capacity`` 0: no duplicate check (the
    first pass made it)."""
    raw.seek(0)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    try:
        yield from _scan_text(text, display, columns, capacity=capacity, dedupe=capacity > 0)
    finally:
        text.detach()  # the handle is read again by the next pass


def _blank(raw: BinaryIO) -> bool:
    """Nothing but blanks and separators, as ``members_io.load`` tests it (read in chunks)."""
    first = True
    while chunk := raw.read(1 << 20):
        if first:
            chunk, first = chunk.removeprefix(_BOM), False
        if chunk.strip(_BLANK):
            return False
    return True
