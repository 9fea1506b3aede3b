"""Edit ``subscribers.csv``: validated like loading, de-duplicated, rewritten atomically under a lock.

Unsubscribes are recorded in the state database (``suppressions``), which outlives any later edit or
import of the file.  The file itself (reading, atomic writes, the lock, export, keeping formulas out
of it) is ``members_io``; its names are available from here as well.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path

from newsletter.errors import DataError, InvalidValue, Problem, Unsubscribed
from newsletter.inputs.member_values import FORMULA_START, unneutralise
from newsletter.inputs.members import (
    NAME_COLUMN,
    read_columns,
    read_subscribers,
    scan_subscribers,
    sniff_delimiter,
    validate_name,
)
from newsletter.inputs.members_io import (
    BOM,
    LOCK_WAIT,
    CsvFormat,
    Roster,
    atomic_write,
    check_not_formula,
    export,
    load,
    locked,
    neutralise,
    render_csv,
    safe_address,
    save,
)
from newsletter.model import Subscriber
from newsletter.state.ledger import Ledger
from newsletter.state.members import token_hash
from newsletter.tokens import TOKEN_LENGTH, token_matches

__all__ = [
    "BOM",
    "FORMULA_START",
    "LOCK_WAIT",
    "RESUBSCRIBED",
    "RESUBSCRIBE_HINT",
    "SOURCES",
    "Added",
    "CsvFormat",
    "ImportReport",
    "Roster",
    "add_member",
    "atomic_write",
    "check_not_formula",
    "describe_resubscription",
    "describe_suppression",
    "export",
    "find_by_token",
    "import_file",
    "load",
    "locked",
    "neutralise",
    "render_csv",
    "safe_address",
    "save",
    "unneutralise",
    "unsubscribe",
]

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
    the owner's own confirmation) and ``now``, for `subscribers list`.  InvalidValue for an address
    that would be a formula in a spreadsheet; a name like that is written with a ' before it.
    """
    now = now or dt.datetime.now(dt.UTC)
    address = safe_address(address)
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
        # --resubscribe is also how an organiser says a bouncing address works again (after checking it).
        if resubscribe and ledger.reactivate(address, source=source, now=now):
            resubscribed = True
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
    """The address whose unsubscribe token this is: the one a send remembered, else among the file's
    rows and everyone ever mailed.

    A send keeps each member's token hashed, so a click costs one lookup and one HMAC.  Tokens in
    mails from a release before that are matched by computing the HMAC for each candidate (a few
    thousand members take milliseconds); rows with problems elsewhere in the file still count.
    """
    if len(token) != TOKEN_LENGTH:
        return None
    remembered = ledger.address_for_token(token_hash(token))
    if remembered is not None:
        # Checked against the secret still: links made with a secret since replaced stop working.
        return remembered if token_matches(secret, remembered, token) else None
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
        if seen != line:  # a guard: the scan has compared the addresses before any ' came off
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
    """The member with the ' that `export` put before formulas taken off again (``put`` puts it back
    as it writes them); InvalidValue if the address is not valid without it, or would be a formula."""
    fields = {unneutralise(k): unneutralise(v).strip() for k, v in member.fields.items()}
    email, name = unneutralise(member.email), unneutralise(member.name)
    if (email, name, fields) == (member.email, member.name, member.fields):
        check_not_formula(member.email)
        return member
    return replace(member, email=safe_address(email), name=validate_name(name), fields=fields)


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
