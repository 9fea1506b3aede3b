"""Read and validate ``subscribers.csv``: one member per row, ``email`` required, other columns kept.

Membership is health information, so no message built here ever repeats an address: problems name
the file and the line instead. The rows are scanned in ``csv_scan``, single values checked in
``member_values``; their public names are available from here too. ``sending_list`` reads the file
for a send, leaving out only the rows with a problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from newsletter.errors import DataError, Problem
from newsletter.errors import InvalidValue as InvalidValue  # callers catch it from here
from newsletter.inputs.csv_scan import EMAIL_COLUMN as EMAIL_COLUMN
from newsletter.inputs.csv_scan import NAME_COLUMN as NAME_COLUMN
from newsletter.inputs.csv_scan import check_row, delimiter_of, read_header, scan_rows
from newsletter.inputs.limits import SUBSCRIBERS_MAX_BYTES, too_large
from newsletter.inputs.member_values import validate_address as validate_address
from newsletter.inputs.member_values import validate_name as validate_name
from newsletter.inputs.seen_addresses import capacity_of
from newsletter.model import Subscriber

SAVE_AS_UTF8 = (
    "save it again as UTF-8: in Excel choose File › Save As › 'CSV UTF-8 (Comma delimited)'; "
    "in Google Sheets choose File › Download › 'Comma-separated values (.csv)'"
)
TOO_LARGE_WHAT = "a list of members is far smaller, even with 100,000 of them"
HEAD = 1 << 16  # bytes read first: the encoding's mark, and how long a row is (to size tables)


# --- one row (single values: member_values, shared with `newsletter subscribers add`) ----------------


def validate_row(
    row: Mapping[str, str], *, path: str = "subscribers.csv", line: int | None = None
) -> Subscriber:
    """One member from column→value (headers matched case-insensitively); DataError lists every problem."""
    columns = {header.strip().casefold(): header for header in row}
    if EMAIL_COLUMN not in columns:
        raise DataError([Problem(path, line, "no email given", "fill in the email column")])
    email_header = columns[EMAIL_COLUMN]
    name_header = columns.get(NAME_COLUMN)
    fields = {header.strip(): (value or "").strip() for header, value in row.items()}
    name = (row[name_header] or "") if name_header else ""
    subscriber, problems = check_row(row[email_header] or "", name, fields, path=path, line=line)
    if subscriber is None:
        raise DataError(problems)
    return subscriber


# --- the file -----------------------------------------------------------------------------------------


def read_subscribers(path: Path, display: str | None = None) -> list[Subscriber]:
    """Every member in file order; DataError carries every problem in the file at once."""
    subscribers: list[Subscriber] = []
    problems: list[Problem] = []
    for subscriber, row_problems in _scan(path, display or path.name):
        problems.extend(row_problems)
        if subscriber is not None:
            subscribers.append(subscriber)
    if problems:
        raise DataError(problems)
    return subscribers


Stamp = tuple[int, int, int]  # (inode, size, mtime in ns): "the very file that was checked"


def _stamp(fd: int) -> Stamp:
    st = os.fstat(fd)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def file_stamp(path: Path) -> Stamp | None:
    """The stamp check_file would give the file as it is now (None if it is missing)."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def check_file(path: Path, display: str | None = None) -> tuple[int, Stamp | None]:
    """Validate the whole file keeping no member in memory: (members, stamp of the file checked).

    DataError carries every problem.
    """
    count = 0
    problems: list[Problem] = []
    stamp: list[Stamp] = []
    for subscriber, row_problems in _scan(path, display or path.name, stamp=stamp):
        problems.extend(row_problems)
        count += subscriber is not None
    if problems:
        raise DataError(problems)
    return count, (stamp[0] if stamp else None)


def iter_subscribers(path: Path, display: str | None = None) -> Iterator[Subscriber]:
    """Members one by one for long lists; raises DataError at the first row with a problem."""
    for subscriber, problems in _scan(path, display or path.name):
        if problems:
            raise DataError(problems)
        if subscriber is not None:
            yield subscriber


def read_columns(path: Path, display: str | None = None) -> list[str]:
    """The header's column names (trimmed, blank ones left out), e.g. for templates' member.<column>."""
    columns: list[str] = []
    for _, problems in _scan(path, display or path.name, columns=columns, dedupe=False):
        if problems and not columns:
            raise DataError(problems)
        break  # the header has been read; the rows are read_subscribers' business
    return columns


def _scan(
    path: Path,
    display: str,
    *,
    columns: list[str] | None = None,
    stamp: list[Stamp] | None = None,
    dedupe: bool = True,
) -> Iterator[tuple[Subscriber | None, list[Problem]]]:
    """Each data row as (member or None, its problems); file-level problems come with None.

    ``columns`` (if given) receives the header names once the header row has been accepted.
    ``dedupe=False``: no table of the addresses met (for a caller that reads the header only).
    """
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        hint = "create it with a first line 'email,name' (a header row) and one member per line"
        yield None, [Problem(display, None, "file not found", hint)]
        return
    except OSError as err:
        yield None, [Problem(display, None, f"cannot be read: {err.strerror}", "check the file")]
        return
    with raw:
        if os.fstat(raw.fileno()).st_size > SUBSCRIBERS_MAX_BYTES:
            yield None, [too_large(display, SUBSCRIBERS_MAX_BYTES, TOO_LARGE_WHAT)]
            return
        # Excel's "Unicode Text" saves UTF-16; decoding it as UTF-8 would give a confusing error.
        head = raw.read(HEAD)
        if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
            yield None, [Problem(display, 1, "the file is saved as UTF-16 ('Unicode Text')", SAVE_AS_UTF8)]
            return
        capacity = capacity_of(raw, os.fstat(raw.fileno()).st_size, head) if dedupe else 0
    # newline="" hands line endings to the csv module, which keeps quoted line breaks inside cells
    # and counts physical lines (CRLF or LF alike) in line_num. utf-8-sig drops Excel's BOM.
    with path.open(encoding="utf-8-sig", newline="") as text:
        if stamp is not None:
            stamp.append(_stamp(text.fileno()))
        try:
            yield from _scan_text(text, display, columns, capacity=capacity, dedupe=dedupe)
        except UnicodeDecodeError:
            yield None, [not_utf8(path, display)]


def not_utf8(path: Path, display: str) -> Problem:
    line = _first_undecodable_line(path)
    message = "the file is not saved as UTF-8 (Excel's 'CSV (Windows)' or 'CSV (Macintosh)'?)"
    return Problem(display, line, message, SAVE_AS_UTF8)


def _scan_text(
    lines: Iterator[str],
    display: str,
    columns: list[str] | None,
    *,
    capacity: int = 1024,
    dedupe: bool = True,
) -> Iterator[tuple[Subscriber | None, list[Problem]]]:
    header, problems = read_header(lines, display)
    if problems:
        yield None, problems
    if header is None:
        return
    if columns is not None:
        columns.extend(name for name in header.names if name)
    yield from scan_rows(header, display, capacity=capacity, dedupe=dedupe)


def _first_undecodable_line(path: Path) -> int | None:
    """Physical line of the first byte that is not UTF-8, to point the organiser at it."""
    with path.open("rb") as raw:
        for number, chunk in enumerate(raw, start=1):
            try:
                chunk.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                return number
    return None


# --- for editing the list (newsletter.roster) ----------------------------------------------------------


def scan_subscribers(
    path: Path, display: str | None = None
) -> Iterator[tuple[Subscriber | None, list[Problem]]]:
    """Each data row as (member or None, its problems), file-level problems with None: for imports
    that take the good rows and report the others by line."""
    return _scan(path, display or path.name)


def sniff_delimiter(header_line: str) -> str:
    """The delimiter the readers above would use for a file starting with ``header_line``."""
    return delimiter_of(header_line)
