"""``subscribers.csv`` as data: read whole, written atomically, locked for edits, exported for Excel.

A send reads the file once through an open handle; every write here makes a new file and renames it
over the old one, so a mailing in progress keeps the list it started with.  The edits that also
consult the state database (add, unsubscribe, import) are in ``members_edit``.

Organisers open the file in a spreadsheet, where a cell starting with = (or + - @, a tab or a line
break) runs as a formula: every value the program puts into it (``Roster.put``: `subscribers add`,
import, a confirmed sign-up) is written ``neutralise``d, and an address that would start a formula is
refused.  Cells the organisers typed themselves are kept as they are.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import tempfile
from collections.abc import Container, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, TextIO

from newsletter.errors import DataError, EditBusy, InvalidValue, Problem
from newsletter.inputs.member_values import FORMULA_START, unneutralise
from newsletter.inputs.members import (
    EMAIL_COLUMN,
    HEAD,
    NAME_COLUMN,
    SAVE_AS_UTF8,
    _scan_text,
    read_subscribers,
    sniff_delimiter,
    validate_address,
)
from newsletter.inputs.seen_addresses import capacity_for
from newsletter.model import Subscriber

LOCK_WAIT = 30.0  # seconds an edit waits for another one to finish
BOM = b"\xef\xbb\xbf"
#: OWASP "CSV injection": a cell starting with one of these is a formula to a spreadsheet.
#: A cell given a leading ' by ``neutralise`` (quotes already in front of a formula character get
#: one more, so that ``unneutralise`` takes exactly one off and every value comes back as it was).


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
        """The header as written in the file for ``name`` (case-insensitively; a header the program
        wrote neutralised matches the name it stands for)."""
        wanted = name.casefold()
        return next((c for c in self.columns if wanted in (c.casefold(), unneutralise(c).casefold())), None)

    def _ensure_column(self, name: str) -> str:
        existing = self.column(name)
        if existing is None:
            existing = neutralise(name)  # a header an import brings along is a cell we write too
            self.columns.append(existing)
        return existing

    def find(self, key: str) -> int | None:
        return self._index.get(key.lower())

    def put(self, address: str, *, name: str | None = None, extra: Mapping[str, str] | None = None) -> str:
        """Add or update one member: 'added', 'updated' or 'unchanged'. Empty values never erase.

        ``name`` and ``extra`` are values as meant (typed, or read back from an export by `import`);
        each is written ``neutralise``d.  A value the row already holds, neutralised or not, leaves
        its cell as it is, so importing an export changes nothing.
        """
        check_not_formula(address)  # the last guard: the callers have refused such an address already
        values = {k: v for k, v in (extra or {}).items() if v and k.casefold() != EMAIL_COLUMN}
        if name:
            values[NAME_COLUMN] = name
        index = self.find(address)
        old = None if index is None else self.members[index]
        updates: dict[str, str] = {}
        for key, value in values.items():
            column = self._ensure_column(key)
            if old is None or unneutralise(old.fields.get(column, "")) != value:
                updates[column] = neutralise(value)
        name_cell = updates.get(self.column(NAME_COLUMN) or "")
        if old is None:
            email_column = self._ensure_column(EMAIL_COLUMN)
            fields = {**updates, email_column: address}
            self._index[address.lower()] = len(self.members)
            self.members.append(Subscriber(email=address, name=name_cell or "", fields=fields))
            return "added"
        if not updates:
            return "unchanged"
        assert index is not None
        self.members[index] = replace(old, name=name_cell or old.name, fields={**old.fields, **updates})
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
    middle = raw[len(raw) // 2 : len(raw) // 2 + HEAD] if len(raw) > 2 * HEAD else b""
    capacity = capacity_for(len(raw), raw[:HEAD], middle)
    for member, row_problems in _scan_text(
        io.StringIO(text, newline=""), path.name, columns, capacity=capacity
    ):
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
    with atomic_writer(path) as fh:
        fh.write(data)


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """``atomic_write`` for data written bit by bit: the file appears whole when the block ends, and
    not at all if it raises."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o600  # a new member list is health information: private unless the owner widens it
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
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


# --- formulas (OWASP "CSV injection") and export ----------------------------------------------------


def formula_like(cell: str) -> bool:
    """Would a spreadsheet run it as a formula, now or once ``unneutralise`` took a ' off?"""
    return cell.lstrip("'").startswith(FORMULA_START)


def neutralise(cell: str) -> str:
    """A leading ' keeps a spreadsheet from running the cell as a formula (OWASP CSV injection)."""
    return f"'{cell}" if formula_like(cell) else cell


def check_not_formula(address: str) -> None:
    """InvalidValue for an address a spreadsheet would run as a formula.

    Such an address can be valid (=HYPERLINK(…)@example.org is), but no person has one, and unlike
    a name it cannot be given a ' without becoming another address; the message never repeats it.
    """
    if formula_like(address):
        raise InvalidValue(
            "the address starts with a sign that a spreadsheet runs as a formula (= + - @)",
            "an address starts with a letter or a digit",
        )


def safe_address(text: str) -> str:
    """``validate_address``, refusing also an address that would be a formula in subscribers.csv."""
    address = validate_address(text)
    check_not_formula(address)
    return address


def export(roster: Roster, suppressed: Container[str], out: TextIO, *, bom: bool) -> int:
    """Write the members who get mail as Excel-friendly CSV; returns how many unsubscribed were left out.

    Every cell is neutralised; one the file holds neutralised already (``Roster.put`` wrote it so)
    goes out as it is, so that importing the export gives each value back once.
    """
    return export_rows(roster.columns, roster.members, suppressed, out, bom=bom)


def export_rows(
    columns: list[str], members: Iterable[Subscriber], suppressed: Container[str], out: TextIO, *, bom: bool
) -> int:
    """``export`` of members met one by one (`subscribers export` of a list of any length)."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=",", lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow([_for_spreadsheet(c) for c in columns])
    left_out = 0
    for member in members:
        if member.key in suppressed:
            left_out += 1
        else:
            writer.writerow([_for_spreadsheet(member.fields.get(c, "")) for c in columns])
    return left_out


def _for_spreadsheet(cell: str) -> str:
    return neutralise(unneutralise(cell))
