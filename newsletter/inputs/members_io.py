"""``subscribers.csv`` as data: read whole, written atomically, locked for edits, exported for Excel.

A send reads the file once through an open handle; every write here makes a new file and renames it
over the old one, so a mailing in progress keeps the list it started with.  The edits that also
consult the state database (add, unsubscribe, import) are in ``members_edit``.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from newsletter.errors import DataError, EditBusy, Problem
from newsletter.inputs.members import (
    EMAIL_COLUMN,
    NAME_COLUMN,
    SAVE_AS_UTF8,
    _scan_text,
    read_subscribers,
    sniff_delimiter,
)
from newsletter.model import Subscriber

LOCK_WAIT = 30.0  # seconds an edit waits for another one to finish
BOM = b"\xef\xbb\xbf"
#: OWASP "CSV injection": a cell starting with one of these is a formula to a spreadsheet.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
#: A cell `export` gave a leading ' (quotes already in front of a formula character get one more,
#: so that `import` can take exactly one off and every cell comes back as it was).
_NEUTRALISED = re.compile("'+[" + re.escape("".join(FORMULA_START)) + "]")


# --- the file as data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvFormat:
    """How the organisers' file is written, kept on rewrite so Excel opens it as before."""

    delimiter: str = ","
    bom: bool = False
    newline: str = "\n"


@dataclass
class Roster:
    """The file's columns and members; change members through ``put`` and ``remove`` only."""

    columns: list[str]
    members: list[Subscriber]
    fmt: CsvFormat = field(default_factory=CsvFormat)
    # key → position in members: an import of thousands of rows looks each one up
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._reindex()

    def _reindex(self) -> None:
        self._index = {m.key: i for i, m in enumerate(self.members)}

    def column(self, name: str) -> str | None:
        """The header as written in the file for ``name`` (headers match case-insensitively)."""
        return next((c for c in self.columns if c.casefold() == name.casefold()), None)

    def _ensure_column(self, name: str) -> str:
        existing = self.column(name)
        if existing is None:
            self.columns.append(name)
            existing = name
        return existing

    def find(self, key: str) -> int | None:
        return self._index.get(key.lower())

    def put(self, address: str, *, name: str | None = None, extra: Mapping[str, str] | None = None) -> str:
        """Add or update one member: 'added', 'updated' or 'unchanged'. Empty values never erase."""
        values = {k: v for k, v in (extra or {}).items() if v and k.casefold() != EMAIL_COLUMN}
        if name:
            values[NAME_COLUMN] = name
        updates = {self._ensure_column(k): v for k, v in values.items()}
        index = self.find(address)
        if index is None:
            email_column = self._ensure_column(EMAIL_COLUMN)
            fields = {**updates, email_column: address}
            self._index[address.lower()] = len(self.members)
            self.members.append(Subscriber(email=address, name=name or "", fields=fields))
            return "added"
        old = self.members[index]
        fields = {**old.fields, **updates}
        if fields == old.fields:
            return "unchanged"
        self.members[index] = replace(old, name=name or old.name, fields=fields)
        return "updated"

    def remove(self, key: str) -> bool:
        index = self.find(key)
        if index is None:
            return False
        del self.members[index]
        self._reindex()  # the positions after it moved up (one unsubscribe: rare enough)
        return True


def load(path: Path) -> Roster:
    """The file as it is (DataError if it has problems); a missing or blank file is an empty list.

    The file is read once, so its format, columns and members all come from the same version of it
    (an organiser may save it from Excel at any moment).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Roster([EMAIL_COLUMN, NAME_COLUMN], [])
    if not raw.removeprefix(BOM).strip(b" \t\r\n,;"):
        return Roster([EMAIL_COLUMN, NAME_COLUMN], [], CsvFormat(bom=raw.startswith(BOM)))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        read_subscribers(path)  # raises the DataError that names the line (or UTF-16)
        raise DataError([Problem(path.name, None, "is not saved as UTF-8", SAVE_AS_UTF8)]) from None
    columns: list[str] = []
    members: list[Subscriber] = []
    problems: list[Problem] = []
    for member, row_problems in _scan_text(io.StringIO(text, newline=""), path.name, columns):
        problems.extend(row_problems)
        if member is not None:
            members.append(member)
    if problems:
        raise DataError(problems)  # every problem, file:line
    header = next(line for line in text.splitlines(keepends=True) if line.strip(" \t\r\n,;"))
    fmt = CsvFormat(
        delimiter=sniff_delimiter(header),
        bom=raw.startswith(BOM),
        newline="\r\n" if header.endswith("\r\n") else "\n",
    )
    return Roster(columns, members, fmt)


def render_csv(
    columns: list[str], rows: Iterable[list[str]], fmt: CsvFormat, *, quote_all: bool = False
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=fmt.delimiter,
        lineterminator=fmt.newline,
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
    )
    writer.writerow(columns)
    writer.writerows(rows)
    return ("\ufeff" if fmt.bom else "") + buffer.getvalue()


def save(path: Path, roster: Roster) -> None:
    rows = ([m.fields.get(c, "") for c in roster.columns] for m in roster.members)
    atomic_write(path, render_csv(roster.columns, rows, roster.fmt).encode("utf-8"))


def atomic_write(path: Path, data: bytes) -> None:
    """Temp file in the same folder, fsync, rename: readers see the old file or the new, never half."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600  # a new member list is health information: private unless the owner widens it
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself survives a power cut
    finally:
        os.close(folder)


@contextmanager
def locked(path: Path, *, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold ``subscribers.csv.lock`` for one read-modify-write (a send needs no lock: see above)."""
    from filelock import FileLock, Timeout

    lock = FileLock(f"{path}.lock")
    try:
        lock.acquire(timeout=wait)
    except Timeout as err:
        raise EditBusy(
            f"{path.name} has been busy for {wait:.0f} s: another command or `newsletter serve` is changing "
            "it — try again in a moment"
        ) from err
    try:
        yield
    finally:
        lock.release()


# --- export ----------------------------------------------------------------------------------------


def neutralise(cell: str) -> str:
    """A leading ' keeps a spreadsheet from running the cell as a formula (OWASP CSV injection)."""
    return f"'{cell}" if cell.lstrip("'").startswith(FORMULA_START) else cell


def unneutralise(cell: str) -> str:
    """Undo ``neutralise``: one leading ' off a cell where quotes stand before a formula character."""
    return cell[1:] if _NEUTRALISED.match(cell) else cell


def export(roster: Roster, suppressed: Mapping[str, object], out: TextIO, *, bom: bool) -> int:
    """Write the members who get mail as Excel-friendly CSV; returns how many unsubscribed were left out."""
    kept = [m for m in roster.members if m.key not in suppressed]
    rows = ([neutralise(m.fields.get(c, "")) for c in roster.columns] for m in kept)
    fmt = CsvFormat(delimiter=",", bom=bom, newline="\r\n")
    out.write(render_csv([neutralise(c) for c in roster.columns], rows, fmt, quote_all=True))
    return len(roster.members) - len(kept)
