"""Edit ``subscribers.csv``: validated like loading, de-duplicated, rewritten atomically under a lock.

A send reads the file once through an open handle; every edit here writes a new file and renames it
over the old one, so a mailing in progress keeps the list it started with.  Unsubscribes are recorded
in the state database (``suppressions``), which outlives any later edit or import of the file.
"""

from __future__ import annotations

import csv
import datetime as dt
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

from newsletter.errors import DataError, EditBusy, InvalidValue, Problem, Unsubscribed
from newsletter.inputs.members import (
    EMAIL_COLUMN,
    NAME_COLUMN,
    SAVE_AS_UTF8,
    _scan_text,
    read_columns,
    read_subscribers,
    scan_subscribers,
    sniff_delimiter,
    validate_address,
    validate_name,
)
from newsletter.model import Subscriber
from newsletter.state.ledger import Ledger
from newsletter.tokens import TOKEN_LENGTH, token_matches

LOCK_WAIT = 30.0  # seconds an edit waits for another one to finish
BOM = b"\xef\xbb\xbf"
#: OWASP "CSV injection": a cell starting with one of these is a formula to a spreadsheet.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
#: A cell `export` gave a leading ' (quotes already in front of a formula character get one more,
#: so that `import` can take exactly one off and every cell comes back as it was).
_NEUTRALISED = re.compile("'+[" + re.escape("".join(FORMULA_START)) + "]")
#: How each way of leaving the list reads in `subscribers list` and in messages.
SOURCES = {
    "link": "the unsubscribe page",
    "one-click": "one-click unsubscribe in their mail program",
    "remove": "removed by an organiser",
}
#: How each way back onto the list reads in `subscribers list`.
RESUBSCRIBED = {"add": "re-subscribed by an organiser", "sign-up": "re-subscribed by sign-up"}
RESUBSCRIBE_HINT = "add it back only if its owner asked: newsletter subscribers add {} --resubscribe"


def describe_suppression(since: str, source: str) -> str:
    """'on 2026-11-20 (the unsubscribe page)' from a ledger row."""
    return f"on {since[:10]} ({SOURCES.get(source, source)})"


def describe_resubscription(at: str, source: str) -> str:
    """'re-subscribed by sign-up on 2026-11-25' from a ledger row."""
    return f"{RESUBSCRIBED.get(source, f're-subscribed ({source})')} on {at[:10]}"


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


# --- the edits -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Added:
    address: str  # as stored (normalised)
    outcome: str  # added | updated | unchanged
    resubscribed: bool  # an earlier unsubscribe was lifted


def add_member(
    path: Path,
    ledger: Ledger,
    address: str,
    *,
    name: str | None = None,
    resubscribe: bool = False,
    source: str = "add",
    now: dt.datetime | None = None,
    wait: float = LOCK_WAIT,
) -> Added:
    """Add or update one member; refuses an unsubscribed address unless ``resubscribe``.

    Lifting an unsubscribe is noted in the ledger with ``source`` ('add': an organiser, 'sign-up':
    the owner's own confirmation) and ``now``, for `subscribers list`.
    """
    now = now or dt.datetime.now(dt.UTC)
    address = validate_address(address)
    clean_name = validate_name(name) if name is not None else None
    with locked(path, wait=wait):
        roster = load(path)
        suppression = ledger.suppressed().get(address.lower())
        if suppression and not resubscribe:
            raise Unsubscribed(
                f"this address unsubscribed {describe_suppression(*suppression)} and gets no mail — "
                + RESUBSCRIBE_HINT.format(address)
            )
        outcome = roster.put(address, name=clean_name)
        if outcome != "unchanged":
            save(path, roster)
        # After the file: a crash in between leaves it listed but still suppressed, never the reverse.
        # Under the lock, like the second half of `unsubscribe`: see there.
        resubscribed = ledger.resubscribe(address, source=source, now=now) if suppression else False
    return Added(address, outcome, resubscribed)


def unsubscribe(
    path: Path, ledger: Ledger, address: str, *, source: str, now: dt.datetime, wait: float = LOCK_WAIT
) -> bool:
    """Record the suppression, then take the row out of the file; True if it was in the file.

    The suppression comes first and alone decides who is mailed: if the file cannot be rewritten (it
    has problems, or another edit holds it past ``wait``: EditBusy) the error is raised after the
    address is already safe from every mailing.
    """
    key = address.lower()
    ledger.suppress(key, source=source, now=now)
    with locked(path, wait=wait):
        # Recorded again under the lock: a re-subscribe of the same address that was under way when
        # the first record was made may have lifted it since (add_member lifts under this lock). This
        # unsubscribe is the later word, so it stands.
        ledger.suppress(key, source=source, now=now)
        roster = load(path)
        removed = roster.remove(key)
        if removed:
            save(path, roster)
    return removed


def find_by_token(path: Path, ledger: Ledger, secret: bytes, token: str) -> str | None:
    """The address whose unsubscribe token this is, among the file's rows and everyone ever mailed.

    The token is an HMAC, so it is matched by computing it for each candidate (a few thousand
    members take milliseconds).  Rows with problems elsewhere in the file still count.
    """
    if len(token) != TOKEN_LENGTH:
        return None
    candidates: dict[str, None] = {}
    for member, _ in scan_subscribers(path):
        if member is not None:
            candidates[member.key] = None
    for (address,) in ledger.db.execute("SELECT DISTINCT address FROM deliveries"):
        candidates[str(address).lower()] = None
    return next((key for key in candidates if token_matches(secret, key, token)), None)


# --- import ----------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    source: str
    added: list[int] = field(default_factory=list)  # lines of the imported file
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # rows skipped because they are wrong
    unsubscribed: list[Problem] = field(default_factory=list)  # rows skipped by an earlier unsubscribe

    @property
    def skipped(self) -> list[Problem]:
        return sorted(self.problems + self.unsubscribed, key=lambda p: p.line or 0)


def import_file(path: Path, ledger: Ledger, source: Path, *, wait: float = LOCK_WAIT) -> ImportReport:
    """Add or update every good row of ``source``; report rows skipped, by line and reason.

    A file that cannot be read as a whole (no header, not UTF-8, an unclosed quote) imports nothing.
    """
    display = source.name
    read_columns(source, display)  # DataError for a missing or unusable header
    _check_readable(source, display)
    report = ImportReport(display)
    rows: list[Subscriber] = []
    first_seen: dict[str, int] = {}
    for member, problems in scan_subscribers(source, display):
        report.problems.extend(problems)
        if member is None:
            continue
        line = member.line
        assert line is not None
        try:
            member = _as_before_export(member)
        except InvalidValue as err:
            report.problems.append(err.at(display, line))
            continue
        seen = first_seen.setdefault(member.key, line)
        if seen != line:  # e.g. '-ann@… and -ann@…: the same address once the ' is off
            report.problems.append(
                Problem(display, line, f"same address as line {seen}", "delete one of the rows")
            )
            continue
        rows.append(member)
    with locked(path, wait=wait):
        roster = load(path)
        suppressed = ledger.suppressed()
        for member in rows:
            assert member.line is not None
            suppression = suppressed.get(member.key)
            if suppression:
                message = f"not added: this member unsubscribed {describe_suppression(*suppression)}"
                hint = RESUBSCRIBE_HINT.format("ADDRESS")
                report.unsubscribed.append(Problem(display, member.line, message, hint))
                continue
            extra = {k: v for k, v in member.fields.items() if k.casefold() != NAME_COLUMN}
            outcome = roster.put(member.email, name=member.name or None, extra=extra)
            getattr(report, outcome).append(member.line)
        if report.added or report.updated:
            save(path, roster)
    return report


def _as_before_export(member: Subscriber) -> Subscriber:
    """The member with the ' that `export` put before formulas taken off again (InvalidValue if the
    address is not valid without it)."""
    fields = {unneutralise(k): unneutralise(v).strip() for k, v in member.fields.items()}
    email, name = unneutralise(member.email), unneutralise(member.name)
    if (email, name, fields) == (member.email, member.name, member.fields):
        return member
    return replace(member, email=validate_address(email), name=validate_name(name), fields=fields)


def _check_readable(source: Path, display: str) -> None:
    """Abort on encoding or quoting errors: rows after them cannot be trusted to be what they seem."""
    try:
        with source.open(encoding="utf-8-sig", newline="") as fh:
            delimiter = sniff_delimiter(next((line for line in fh if line.strip()), ""))
            fh.seek(0)
            for _ in csv.reader(fh, delimiter=delimiter, strict=True):
                pass
    except (UnicodeDecodeError, csv.Error):
        read_subscribers(source, display)  # raises the DataError that names the line
        raise DataError(
            [Problem(display, None, "cannot be read as CSV", "save it again as CSV UTF-8")]
        ) from None


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
