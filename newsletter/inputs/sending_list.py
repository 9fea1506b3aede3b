"""subscribers.csv read for a send: every good row, one by one; a row with a problem is left out alone.

The strict readers in ``members`` stop a whole mailing for one bad row, which is right for `check`
and imports; a send instead mails everyone it can and says which rows it left out (DESIGN: "a problem
confined to one row of subscribers.csv excludes that row only"). What makes the whole file unusable
(no email column, not UTF-8, unreadable, too large) still raises DataError before any member is read.
"""

from __future__ import annotations

import codecs
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from newsletter.errors import DataError, Problem
from newsletter.inputs.csv_scan import EMAIL_COLUMN, Header, read_header, scan_rows
from newsletter.inputs.limits import SUBSCRIBERS_MAX_BYTES, too_large
from newsletter.inputs.member_values import FORMULA_SIGNS
from newsletter.inputs.members import HEAD, SAVE_AS_UTF8, TOO_LARGE_WHAT, Stamp, not_utf8, scan_subscribers
from newsletter.inputs.seen_addresses import SeenAddresses, capacity_of
from newsletter.model import Subscriber

#: Problems kept in full per kind; beyond that only counted, so a file of bad rows stays small in memory.
MAX_LISTED = 1000
# Numbers, phone numbers and a lone dash start with + or - harmlessly: a spreadsheet shows them as typed.
_NUMBER_LIKE = re.compile(r"[+-]?[\d\s().\-/]*")


@dataclass
class RowProblems:
    """What read_for_sending left out or merged; filled in as its iterator advances."""

    path: str
    stamp: Stamp | None = None  # the file read (inode, size, mtime), as members.check_file gives it
    excluded: list[tuple[int | None, Problem]] = field(default_factory=list)  # (line, problem)
    merged: list[tuple[int | None, Problem]] = field(default_factory=list)  # warnings: duplicate rows
    excluded_rows: int = 0  # every row left out, listed or not
    merged_rows: int = 0
    finished: bool = False  # the iterator reached the end of the file: the counts are complete
    formulas: list[Problem] = field(default_factory=list)  # with formulas=True: formula_warnings's
    expected: int = 1024  # rows the file likely holds, estimated from its size and first rows

    @property
    def problems(self) -> list[Problem]:
        return [problem for _, problem in self.excluded]

    @property
    def warnings(self) -> list[Problem]:
        return [problem for _, problem in self.merged]

    def _exclude(self, problems: list[Problem]) -> None:
        self.excluded_rows += 1
        for problem in problems:
            if len(self.excluded) < MAX_LISTED:
                self.excluded.append((problem.line, problem))

    def _merge(self, problem: Problem) -> None:
        self.merged_rows += 1
        if len(self.merged) < MAX_LISTED:
            self.merged.append((problem.line, problem))


def read_for_sending(
    path: Path, display: str | None = None, *, formulas: bool = False, merge: bool = True
) -> tuple[Iterator[Subscriber], RowProblems]:
    """(the good members in file order, what was left out): for a send.

    The header is read now: DataError if the file cannot be used at all. Then each row with a problem
    is left out and recorded in the RowProblems as the iterator reaches it, and a row whose address
    (any capitals) came before is merged into that first row, with a warning. Memory stays small for
    any length of list: one row at a time, and 19 to 30 bytes per address seen.

    ``formulas``: the same pass also gathers ``formula_warnings`` (for `check`, which reads the list
    once); ``merge=False`` leaves duplicate rows in, for a caller that only collects addresses.
    """
    name = display or path.name
    raw = _open(path, name)
    try:
        head = _check_encoding(raw, path, name)
        st = os.fstat(raw.fileno())
        expected = capacity_of(raw, st.st_size, head)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        header, problems = read_header(text, name)
    except BaseException:
        raw.close()
        raise
    if header is None or problems:
        text.close()
        raise DataError(problems)
    found = RowProblems(name, (st.st_ino, st.st_size, st.st_mtime_ns))
    found.expected = expected
    seen = SeenAddresses(found.expected) if merge else None
    return _good_rows(text, header, path, found, seen, formulas=formulas), found


def _open(path: Path, display: str) -> BinaryIO:
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        hint = "create it with a first line 'email,name' (a header row) and one member per line"
        raise DataError([Problem(display, None, "file not found", hint)]) from None
    except OSError as err:
        message = f"cannot be read: {err.strerror}"
        raise DataError([Problem(display, None, message, "check the file")]) from err
    if os.fstat(raw.fileno()).st_size > SUBSCRIBERS_MAX_BYTES:
        raw.close()
        raise DataError([too_large(display, SUBSCRIBERS_MAX_BYTES, TOO_LARGE_WHAT)])
    return raw


def _check_encoding(raw: BinaryIO, path: Path, display: str) -> bytes:
    """Refuse a file that is not UTF-8 before any member is read, not halfway through the mailing;
    return its first bytes (``HEAD``), which tell how long a row is."""
    head = raw.read(HEAD)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError([Problem(display, 1, "the file is saved as UTF-16 ('Unicode Text')", SAVE_AS_UTF8)])
    raw.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := raw.read(1 << 20):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise DataError([not_utf8(path, display)]) from None
    raw.seek(0)
    return head


def _good_rows(
    text: io.TextIOWrapper,
    header: Header,
    path: Path,
    found: RowProblems,
    seen: SeenAddresses | None,
    *,
    formulas: bool,
) -> Iterator[Subscriber]:
    try:
        for subscriber, problems in scan_rows(header, found.path, dedupe=False):
            if subscriber is None:
                found._exclude(problems)
                continue
            first = seen.first_line(subscriber.key, subscriber.line or 0) if seen is not None else None
            if first is not None:
                message = f"same address as line {first}: mailed once, as on line {first}"
                found._merge(Problem(found.path, subscriber.line, message, "delete one of the rows"))
                continue
            if formulas and (room := MAX_LISTED - len(found.formulas)) > 0:
                found.formulas.extend(_formula_cells(subscriber, found.path)[:room])
            yield subscriber
        found.finished = True
    except UnicodeDecodeError:  # the file was rewritten in place since it was checked
        raise DataError([not_utf8(path, found.path)]) from None
    finally:
        text.close()


def formula_warnings(path: Path, display: str | None = None) -> list[Problem]:
    """Cells other than the address that start with = + - or @, which a spreadsheet may run as a formula
    when the file is opened (OWASP "CSV injection"): warnings for `check`, by line and column.

    Rows with problems of their own, and file-level problems, are left to the strict readers.
    """
    warnings: list[Problem] = []
    for subscriber, _ in scan_subscribers(path, display):
        if subscriber is None:
            continue
        warnings.extend(_formula_cells(subscriber, display or path.name))
        if len(warnings) >= MAX_LISTED:
            return warnings[:MAX_LISTED]
    return warnings


def _formula_cells(subscriber: Subscriber, display: str) -> list[Problem]:
    warnings: list[Problem] = []
    for column, value in subscriber.fields.items():
        if not value.startswith(FORMULA_SIGNS) or column.casefold() == EMAIL_COLUMN:
            continue
        if _NUMBER_LIKE.fullmatch(value):
            continue
        message = f"the {column} cell starts with '{value[0]}', which a spreadsheet may run as a formula"
        hint = "remove the sign if it is not needed: Excel and Google Sheets run such cells on opening"
        warnings.append(Problem(display, subscriber.line, message, hint))
    return warnings
