"""subscribers.csv as the console shows and edits it.

The file stays the organisers' source of truth, which they may also edit in Excel or with
`newsletter subscribers`: every form carries the ``version`` of the file it was made from, and an
edit is written only if the file is still that version — checked under the list's lock, the same
lock the command line takes.  The edit itself is `newsletter subscribers`'s own code
(``members_edit``), run on a private copy while the lock is held; the copy then replaces the file
atomically.  So the validation, the ledger records and the file format are the command line's, and a
change saved by someone else in between is never overwritten.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from newsletter.errors import DataError, NewsletterError, Problem
from newsletter.inputs.members import scan_subscribers
from newsletter.inputs.members_edit import atomic_write, load, locked
from newsletter.model import Subscriber
from newsletter.state.ledger import Ledger

T = TypeVar("T")
CHANGED = "The list changed since you opened this page"


class ListChanged(NewsletterError):
    """subscribers.csv was saved by someone else since the page was opened."""


class RowGone(NewsletterError):
    """The row asked for is not a member's row (any more)."""


def list_version(path: Path) -> str:
    """A fingerprint of the file's bytes ('' for no file): forms carry it, edits check it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ""
    return hashlib.sha256(data).hexdigest()[:32]


def edit(path: Path, version: str, work: Path, change: Callable[[Path], T], *, wait: float) -> T:
    """Run ``change`` on a copy of the list and put the copy in its place, if the list is still at
    ``version``; ListChanged if it is not.  ``work`` is a private folder for the copy."""
    with locked(path, wait=wait):
        if list_version(path) != version:
            raise ListChanged(CHANGED)
        with tempfile.TemporaryDirectory(dir=work) as folder:
            copy = Path(folder) / path.name
            if path.exists():
                shutil.copyfile(path, copy)
            result = change(copy)
            if copy.exists():
                data = copy.read_bytes()
                if not path.exists() or data != path.read_bytes():
                    atomic_write(path, data)
    return result


def member_on(path: Path, line: int) -> Subscriber:
    """The member on physical ``line`` of the file (DataError if the file has problems)."""
    for member in load(path).members:
        if member.line == line:
            return member
    raise RowGone(f"row {line} of subscribers.csv holds no member")


@dataclass(frozen=True)
class Row:
    line: int | None
    email: str
    name: str
    status: str  # "" when she gets the reminders
    problem: str = ""  # a row left out of the mailings: why


@dataclass
class ListView:
    """What the Members page shows: every row with its state, and the unsubscribed addresses."""

    version: str
    rows: list[Row] = field(default_factory=list)
    file_problems: list[str] = field(default_factory=list)
    unsubscribed: list[tuple[str, str]] = field(default_factory=list)  # (address, since) not in the file
    mailed: int = 0

    def matching(self, query: str) -> list[Row]:
        wanted = query.strip().casefold()
        if not wanted:
            return self.rows
        return [r for r in self.rows if wanted in r.email.casefold() or wanted in r.name.casefold()]


def view(path: Path, ledger: Ledger) -> ListView:
    from newsletter.inputs.members_edit import describe_resubscription, describe_suppression

    out = ListView(list_version(path))
    suppressed, bouncing, back = ledger.suppressed(), ledger.bouncing(), ledger.resubscriptions()
    listed: set[str] = set()
    for member, problems in scan_subscribers(path):
        if member is None:
            for problem in problems:
                _add_problem(out, problem)
            continue
        listed.add(member.key)
        status = ""
        if member.key in suppressed:
            status = "unsubscribed " + describe_suppression(*suppressed[member.key]) + ": not mailed"
        elif member.key in bouncing:
            status = "bouncing: mails to this address come back (see Deliveries)"
        elif member.key in back:
            status = describe_resubscription(*back[member.key])
        why = "; ".join(p.message for p in problems)
        if why:
            status = "left out of every mailing"
        out.mailed += not status or status.startswith("re-subscribed")
        out.rows.append(Row(member.line, member.email, member.name, status, why))
    out.unsubscribed = sorted(
        ((address, since[:10]) for address, (since, _) in suppressed.items() if address not in listed),
        key=lambda pair: pair[1],
        reverse=True,
    )
    return out


def _add_problem(out: ListView, problem: Problem) -> None:
    if problem.line is None:
        out.file_problems.append(str(problem))
        return
    text = f"{problem.message} — {problem.hint}" if problem.hint else problem.message
    out.rows.append(Row(problem.line, "", "", "left out of every mailing", text))


def can_edit(path: Path) -> list[str]:
    """The file's problems that stop an edit (like `newsletter subscribers add`); [] when it can be."""
    try:
        load(path)
    except DataError as err:
        return [str(p) for p in err.problems]
    return []
