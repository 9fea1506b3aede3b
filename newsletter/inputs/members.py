"""Read and validate ``subscribers.csv``: one member per row, ``email`` required, other columns kept.

Membership is health information, so no message built here ever repeats an address: problems name
the file and the line instead.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from newsletter.errors import DataError, InvalidValue, Problem
from newsletter.model import Subscriber

EMAIL_COLUMN = "email"
NAME_COLUMN = "name"
DELIMITERS = (",", ";", "\t")  # comma; semicolon from Excel in European locales; tab from "Text"

SAVE_AS_UTF8 = (
    "save it again as UTF-8: in Excel choose File › Save As › 'CSV UTF-8 (Comma delimited)'; "
    "in Google Sheets choose File › Download › 'Comma-separated values (.csv)'"
)
# Headers people commonly give the address column; we do not guess, we only say what to rename.
_EMAIL_LOOKALIKES = {"e-mail", "e mail", "email address", "e-mail address", "mail", "address", "emails"}
_HEADER_HINT = "the first line must be a header row: email,name"
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?]*\?=")


# --- single values (shared with `newsletter subscribers add`) ---------------------------------------


def validate_address(text: str) -> str:
    """Return the normalised address, or raise InvalidValue saying what is wrong (not what it is)."""
    address = text.strip()
    if not address:
        raise InvalidValue("the email cell is empty", "fill in the address or delete the row")
    # Checked before email_validator so the message is plain, and because a line break in an
    # address is a header-injection attempt rather than a typo.
    _reject_control_characters(address, "address", "type the address again on one line")
    try:
        # SMTPUTF8 is not assumed of the relay: a non-ASCII domain is kept in its ASCII (xn--)
        # form, and a non-ASCII name before the @ is refused with a clear message.
        result = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as err:
        reason = _scrub(str(err), address)
        raise InvalidValue(f"the address is not valid ({reason})", _address_hint(address)) from None
    return str(result.ascii_email or result.normalized)


def validate_name(text: str) -> str:
    """Return the name with surrounding spaces removed, or raise InvalidValue if it could forge headers."""
    name = text.strip()
    hint = "write the name on one line, as plain text"
    _reject_control_characters(name, "name", hint)
    if "=?" in name:
        # An RFC 2047 encoded word is decoded by mail programs, so a newline hidden inside one is as
        # dangerous as a raw one (Python 3.11.7's email package does not stop it: CVE-2024-6923).
        try:
            decoded = str(make_header(decode_header(name)))
        except (LookupError, UnicodeError, HeaderParseError, ValueError):
            if _ENCODED_WORD.search(name):
                message = "the name contains an encoded word (=?…?=) that cannot be decoded"
                raise InvalidValue(message, hint) from None
            decoded = name
        _reject_control_characters(decoded, "name", hint, encoded=True)
    return name


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
    subscriber, problems = _check(row[email_header] or "", name, fields, path=path, line=line)
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
    """Validate the whole file keeping nothing in memory: (members, stamp of the file checked).

    DataError carries every problem. The stamp lets a send that follows read the same file again
    without validating each address a second time (see iter_subscribers).
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


def iter_subscribers(
    path: Path, display: str | None = None, *, checked: Stamp | None = None
) -> Iterator[Subscriber]:
    """Members one by one for long lists; raises DataError at the first row with a problem.

    With ``checked`` (from check_file) and the file unchanged since, rows are only parsed: their
    addresses were validated moments ago, and validating 100,000 of them again costs seconds.
    """
    for subscriber, problems in _scan(path, display or path.name, checked=checked):
        if problems:
            raise DataError(problems)
        if subscriber is not None:
            yield subscriber


def read_columns(path: Path, display: str | None = None) -> list[str]:
    """The header's column names (trimmed, blank ones left out), e.g. for templates' member.<column>."""
    columns: list[str] = []
    for _, problems in _scan(path, display or path.name, columns=columns):
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
    checked: Stamp | None = None,
) -> Iterator[tuple[Subscriber | None, list[Problem]]]:
    """Each data row as (member or None, its problems); file-level problems come with None.

    ``columns`` (if given) receives the header names once the header row has been accepted.
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
        # Excel's "Unicode Text" saves UTF-16; decoding it as UTF-8 would give a confusing error.
        if raw.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            yield None, [Problem(display, 1, "the file is saved as UTF-16 ('Unicode Text')", SAVE_AS_UTF8)]
            return
    # newline="" hands line endings to the csv module, which keeps quoted line breaks inside cells
    # and counts physical lines (CRLF or LF alike) in line_num. utf-8-sig drops Excel's BOM.
    with path.open(encoding="utf-8-sig", newline="") as text:
        current = _stamp(text.fileno())
        if stamp is not None:
            stamp.append(current)
        try:
            yield from _scan_text(text, display, columns, trusted=checked is not None and checked == current)
        except UnicodeDecodeError:
            line = _first_undecodable_line(path)
            message = "the file is not saved as UTF-8 (Excel's 'CSV (Windows)' or 'CSV (Macintosh)'?)"
            yield None, [Problem(display, line, message, SAVE_AS_UTF8)]


def _scan_text(
    lines: Iterator[str], display: str, columns: list[str] | None, *, trusted: bool = False
) -> Iterator[tuple[Subscriber | None, list[Problem]]]:
    # Blank lines before the header are skipped; the first non-blank line decides the delimiter.
    skipped: list[str] = []
    for physical in lines:
        if physical.strip():
            break
        skipped.append(physical)
    else:
        yield None, [Problem(display, None, "the file is empty", _HEADER_HINT)]
        return
    delimiter = _delimiter(physical)
    reader = csv.reader(itertools.chain(skipped, [physical], lines), delimiter=delimiter, strict=True)

    headers: list[str] = []
    while not any(cell.strip() for cell in headers):  # the leading blank lines again, now as records
        header_line = reader.line_num + 1
        try:
            headers = next(reader)
        except StopIteration:  # only separators, e.g. ",,,"
            yield None, [Problem(display, None, "the file is empty", _HEADER_HINT)]
            return
        except csv.Error as err:
            yield None, [_quote_problem(str(err), display, header_line)]
            return
    email_index, name_index, header_problems = _check_header(headers, display, header_line)
    if email_index is None:
        yield None, header_problems
        return
    if header_problems:
        yield None, header_problems
    names = [header.strip() for header in headers]
    if columns is not None:
        columns.extend(name for name in names if name)

    first_seen: dict[str, int] = {}  # address key → line, to name both lines of a duplicate
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield None, [_quote_problem(str(err), display, line)]
            continue
        if not any(cell.strip() for cell in cells):
            continue  # blank rows (also ",,," from spreadsheets) are not members
        extra = [cell for cell in cells[len(names) :] if cell.strip()]
        if extra:
            # Usually an unquoted comma inside a name: the cells after it have shifted right.
            message = f"this row has {len(cells)} cells but the header has {len(names)} columns"
            separator = _DELIMITER_NAMES[delimiter]
            hint = f"put a cell that contains a {separator} in double quotes, or delete the extra cells"
            yield None, [Problem(display, line, message, hint)]
            continue
        fields, orphan = _fields(names, cells)
        if orphan is not None:
            message = f"column {orphan + 1} has a value but no header"
            yield (
                None,
                [Problem(display, line, message, f"give column {orphan + 1} a header in line {header_line}")],
            )
            continue
        cell = cells[name_index] if name_index is not None and name_index < len(cells) else ""
        email = cells[email_index] if email_index < len(cells) else ""
        if trusted and (known := _already_checked(email, cell, fields, line)) is not None:
            yield known, []  # validated (duplicates included) by check_file on this very file
            continue
        subscriber, problems = _check(email, cell, fields, path=display, line=line)
        if subscriber is not None:
            seen = first_seen.setdefault(subscriber.key, line)
            if seen != line:
                problems.append(
                    Problem(display, line, f"same address as line {seen}", "delete one of the rows")
                )
                subscriber = None
        yield subscriber, problems


def _delimiter(header: str) -> str:
    """The delimiter that makes an `email` column appear in the header line (else the most cells)."""

    def cells(delimiter: str) -> list[str]:
        return next(csv.reader([header], delimiter=delimiter), [])

    for delimiter in DELIMITERS:
        if any(cell.strip().casefold() == EMAIL_COLUMN for cell in cells(delimiter)):
            return delimiter
    return max(DELIMITERS, key=lambda d: len(cells(d)))  # max keeps the first (",") on a tie


def _check_header(
    headers: list[str], display: str, line: int
) -> tuple[int | None, int | None, list[Problem]]:
    """Positions of the email and name columns, and what is wrong with the header row."""
    names = [header.strip().casefold() for header in headers]
    problems: list[Problem] = []
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        if not name:
            continue
        if name in positions:
            columns = f"columns {positions[name] + 1} and {index + 1}"
            message = f"the header '{headers[index].strip()}' appears twice ({columns})"
            problems.append(Problem(display, line, message, "rename or delete one of the columns"))
        else:
            positions[name] = index
    email_index = positions.get(EMAIL_COLUMN)
    if email_index is None:
        if any("@" in header for header in headers):
            # A data row where the header should be; never list its cells, they hold an address.
            message = "the first line is a member, not a header row"
            hint = "insert a first line that names the columns, e.g. email,name"
        else:
            found = ", ".join(f"'{header.strip()}'" for header in headers if header.strip()) or "none"
            message = f"no 'email' column in the header row (found: {found})"
            lookalike = next((h.strip() for h in headers if h.strip().casefold() in _EMAIL_LOOKALIKES), None)
            hint = (
                f"rename the column '{lookalike}' to 'email'"
                if lookalike
                else "the column of addresses must be headed 'email'"
            )
        problems.append(Problem(display, line, message, hint))
    return email_index, positions.get(NAME_COLUMN), problems


def _fields(names: list[str], cells: list[str]) -> tuple[dict[str, str], int | None]:
    """Header→stripped value for every named column, or the index of a value under a blank header."""
    fields: dict[str, str] = {}
    for index, header in enumerate(names):
        value = cells[index].strip() if index < len(cells) else ""  # missing trailing cells are empty
        if header:
            fields[header] = value
        elif value:
            return fields, index
    return fields, None


def _check(
    email: str, name: str, fields: dict[str, str], *, path: str, line: int | None
) -> tuple[Subscriber | None, list[Problem]]:
    problems: list[Problem] = []
    address = clean_name = ""
    try:
        address = validate_address(email)
    except InvalidValue as err:
        problems.append(err.at(path, line))
    try:
        clean_name = validate_name(name)
    except InvalidValue as err:
        problems.append(err.at(path, line))
    if problems:
        return None, problems
    return Subscriber(email=address, name=clean_name, fields=fields, line=line), problems


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def _already_checked(email: str, name: str, fields: dict[str, str], line: int) -> Subscriber | None:
    """The member as _check would return it, for a row of a file check_file has just validated; None
    when the address is not plain ASCII (then the caller validates it again, to normalise it alike)."""
    address = email.strip()
    if not _PLAIN_ADDRESS.fullmatch(address):
        return None
    local, _, domain = address.rpartition("@")
    return Subscriber(email=f"{local}@{domain.lower()}", name=name.strip(), fields=fields, line=line)


def _reject_control_characters(text: str, what: str, hint: str, *, encoded: bool = False) -> None:
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp"):
            kind = {
                "\r": "a line break (CR)",
                "\n": "a line break (LF)",
                "\t": "a tab",
            }.get(char, f"a control character (U+{ord(char):04X})")
            if category in ("Zl", "Zp") or char == "\x85":
                kind = f"a line break (U+{ord(char):04X})"
            where = " inside an encoded word (=?…?=)" if encoded else ""
            raise InvalidValue(f"the {what} contains {kind}{where}", hint)


def _scrub(reason: str, address: str) -> str:
    """email_validator's reason, minus any piece of the address it quotes (IDNA errors do)."""
    reason = re.sub(r"\s*\(.*\)", "", reason).strip().rstrip(".")
    local, _, domain = address.rpartition("@")
    pieces = {address, local, domain, *re.split(r"[.@]", address)}
    for piece in sorted((p for p in pieces if len(p) >= 3), key=len, reverse=True):
        reason = re.sub(rf"(?<!\w){re.escape(piece)}(?!\w)", "…", reason, flags=re.IGNORECASE)
    if reason == "An email address must have an @-sign":
        return "missing '@'"
    return reason[:1].lower() + reason[1:]


def _address_hint(address: str) -> str:
    if "<" in address or ">" in address:
        return "put only the address in the email cell and the name in the name column"
    if any(sep in address for sep in (",", ";", " ")) and address.count("@") > 1:
        return "put one address per row"
    return "fix the email cell on that row"


def _quote_problem(error: str, display: str, line: int) -> Problem:
    if "unexpected end of data" in error:
        message = 'a quote (") opened on this line is never closed, so the rest of the file is one cell'
        return Problem(display, line, message, "add the closing quote or remove the opening one")
    if "expected after" in error:
        message = 'a cell starts with a quote (") but goes on after the closing quote'
        return Problem(display, line, message, "put the whole cell in quotes, or remove the quotes")
    return Problem(display, line, "this row cannot be read as CSV", "check the quotes and commas on it")


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
    return _delimiter(header_line)
