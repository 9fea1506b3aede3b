"""Scanning subscribers.csv: the header row, then each data row as a member or its problems.

Shared by the strict readers in ``members`` (check, import) and the lenient one in ``sending_list``
(a send, which leaves out only the rows with a problem). No message repeats a member's address.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.errors import InvalidValue, Problem
from newsletter.inputs.member_values import validate_address, validate_name
from newsletter.inputs.seen_addresses import SeenAddresses
from newsletter.model import Subscriber

if TYPE_CHECKING:
    from _csv import Reader

EMAIL_COLUMN = "email"
NAME_COLUMN = "name"
DELIMITERS = (",", ";", "\t")  # comma; semicolon from Excel in European locales; tab from "Text"

# Headers people commonly give the address column; we do not guess, we only say what to rename.
_EMAIL_LOOKALIKES = {"e-mail", "e mail", "email address", "e-mail address", "mail", "address", "emails"}
_HEADER_HINT = "the first line must be a header row: email,name"
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}


@dataclass
class Header:
    """An accepted header row, and the CSV reader positioned on the row after it."""

    reader: Reader
    names: list[str]  # trimmed; "" for a column without a header
    email_index: int
    name_index: int | None
    line: int
    delimiter: str


def read_header(lines: Iterator[str], display: str) -> tuple[Header | None, list[Problem]]:
    """The header row: (header, problems of it that leave the rows readable), or (None, why not)."""
    # Blank lines before the header are skipped; the first non-blank line decides the delimiter.
    skipped: list[str] = []
    for physical in lines:
        if physical.strip():
            break
        skipped.append(physical)
    else:
        return None, [Problem(display, None, "the file is empty", _HEADER_HINT)]
    delimiter = delimiter_of(physical)
    reader = csv.reader(itertools.chain(skipped, [physical], lines), delimiter=delimiter, strict=True)
    headers: list[str] = []
    while not any(cell.strip() for cell in headers):  # the leading blank lines again, now as records
        header_line = reader.line_num + 1
        try:
            headers = next(reader)
        except StopIteration:  # only separators, e.g. ",,,"
            return None, [Problem(display, None, "the file is empty", _HEADER_HINT)]
        except csv.Error as err:
            return None, [_quote_problem(str(err), display, header_line)]
    email_index, name_index, problems = _check_header(headers, display, header_line)
    if email_index is None:
        return None, problems
    names = [header.strip() for header in headers]
    return Header(reader, names, email_index, name_index, header_line, delimiter), problems


def scan_rows(
    header: Header, display: str, *, dedupe: bool = True, capacity: int = 1024
) -> Iterator[tuple[Subscriber | None, list[Problem]]]:
    """Each data row after ``header`` as (member or None, its problems); blank rows are skipped.

    ``dedupe``: a second row with the same address (any capitals) is a problem that names the first
    line, found in a compact table of the addresses met (``capacity``: the rows expected); the
    reader for sending turns it off and merges such rows itself.
    """
    seen = SeenAddresses(capacity) if dedupe else None
    reader = header.reader
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield None, [_quote_problem(str(err), display, line)]
            continue
        if not "".join(cells).strip():
            continue  # blank rows (also ",,," from spreadsheets) are not members
        fields, problem = _row_fields(header, cells, display, line)
        if problem is not None:
            yield None, [problem]
            continue
        name_index, email_index = header.name_index, header.email_index
        cell = cells[name_index] if name_index is not None and name_index < len(cells) else ""
        email = cells[email_index] if email_index < len(cells) else ""
        subscriber, problems = check_row(email, cell, fields, path=display, line=line)
        if subscriber is not None and seen is not None:
            first = seen.first_line(subscriber.key, line)
            if first is not None:
                problems.append(
                    Problem(display, line, f"same address as line {first}", "delete one of the rows")
                )
                subscriber = None
        yield subscriber, problems


def _row_fields(
    header: Header, cells: list[str], display: str, line: int
) -> tuple[dict[str, str], Problem | None]:
    """Column → value for one row, or the problem that makes its cells not line up with the header."""
    names = header.names
    if any(cell.strip() for cell in cells[len(names) :]):
        # Usually an unquoted comma inside a name: the cells after it have shifted right.
        message = f"this row has {len(cells)} cells but the header has {len(names)} columns"
        separator = _DELIMITER_NAMES[header.delimiter]
        hint = f"put a cell that contains a {separator} in double quotes, or delete the extra cells"
        return {}, Problem(display, line, message, hint)
    fields, orphan = _fields(names, cells)
    if orphan is not None:
        message = f"column {orphan + 1} has a value but no header"
        return fields, Problem(
            display, line, message, f"give column {orphan + 1} a header in line {header.line}"
        )
    return fields, None


def delimiter_of(header: str) -> str:
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


def check_row(
    email: str, name: str, fields: dict[str, str], *, path: str, line: int | None
) -> tuple[Subscriber | None, list[Problem]]:
    """The member of one row's email and name cells, or None and every problem of the two."""
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


def _quote_problem(error: str, display: str, line: int) -> Problem:
    if "unexpected end of data" in error:
        message = 'a quote (") opened on this line is never closed, so the rest of the file is one cell'
        return Problem(display, line, message, "add the closing quote or remove the opening one")
    if "expected after" in error:
        message = 'a cell starts with a quote (") but goes on after the closing quote'
        return Problem(display, line, message, "put the whole cell in quotes, or remove the quotes")
    return Problem(display, line, "this row cannot be read as CSV", "check the quotes and commas on it")
