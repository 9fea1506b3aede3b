"""One pass over the bounce mailbox: classify each message, find its member, count, suppress, move.

Per message: the count is committed first (keyed by the report's Message-ID), the move out of the
folder comes after, so a crash at any moment leaves the unmoved messages to be read again and counts
none of them twice.  A lock keeps two runs (cron's tick, the daemon, a hand-run `bounces`) from
reading the mailbox at once.  What changed comes back as a ``BounceReport``, with the members now
bouncing and the complaints by their line of subscribers.csv, never by address.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from newsletter.bounces.classify import Verdict, classify
from newsletter.bounces.mailboxes import PROCESSED, UNRECOGNISED, open_source
from newsletter.bounces.notices import Notice, organiser_mail, sentence
from newsletter.errors import DataError
from newsletter.settings import Settings
from newsletter.state.bounces import WEIGHTS, Announcement
from newsletter.state.ledger import Ledger
from newsletter.state.locks import held

if TYPE_CHECKING:
    from newsletter.project import Project

log = logging.getLogger("newsletter.bounces")
#: A report dated further back than this (or in the future) is counted as read now: its clock is off.
PLAUSIBLE = dt.timedelta(days=30)


@dataclass
class BounceReport:
    """What one ``process`` changed; every figure counts messages read in this run."""

    source: str = ""  # the mailbox read; "" when NEWSLETTER_BOUNCE_MAILBOX is unset
    processed: int = 0  # moved to newsletter-processed
    unrecognised: int = 0  # moved to newsletter-unrecognised, for a person to look at
    hard: int = 0
    soft: int = 0
    delayed: int = 0  # "still trying" warnings and success reports: nothing counted
    refused: int = 0  # refusals of the message (spam filter, size), not of the address: nothing counted
    autoreplies: int = 0
    complaints: int = 0
    repeated: int = 0  # read before by a run that stopped before moving them: counted then, not now
    busy: bool = False  # another run was reading the mailbox: this one did nothing
    notices: list[Notice] = field(default_factory=list)  # what the organisers have not been told yet

    @property
    def read(self) -> int:
        return self.processed + self.unrecognised

    def lines(self, *, today: dt.date) -> list[str]:
        """What `newsletter bounces` prints: figures, then each notice in the organisers' words."""
        if self.busy:
            return ["Another run is reading the bounce mailbox; this one stops here."]
        out = []
        if self.source:
            out.append(
                f"Read {_n(self.read, 'new message')} from {self.source}" + (":" if self.read else ".")
            )
        figures = [
            _n(self.hard, "hard bounce"), _n(self.soft, "soft bounce"), _n(self.delayed, "delay warning"),
            _n(self.refused, "refusal of the message itself (not counted)",
               "refusals of the message itself (not counted)"),
            _n(self.complaints, "complaint"),
            _n(self.autoreplies, "autoreply (not a bounce)", "autoreplies (not bounces)"),
            _n(self.repeated, "report counted before (a run stopped before moving it)",
               "reports counted before (a run stopped before moving them)"),
        ]  # fmt: skip
        if any(not f.startswith("0 ") for f in figures):
            out.append("  " + ", ".join(f for f in figures if not f.startswith("0 ")))
        if self.unrecognised:
            what = _n(self.unrecognised, "message")
            out.append(f"  {what} not understood: moved to {UNRECOGNISED} for a person to look at")
        for notice in self.notices:
            out.extend(["", sentence(notice, today=today)])
        return out


def _n(count: int, one: str, many: str = "") -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def process(project: Project, *, now: dt.datetime) -> BounceReport:
    """Read the bounce mailbox once (when one is set) and return what changed, with every member who
    became bouncing or complained and was not announced yet — also those a 5xx at send time made
    bouncing.  MailboxError (a NewsletterError) when the mailbox cannot be read."""
    settings = project.settings
    report = BounceReport()
    with _lock(settings) as held:
        if not held:
            report.busy = True
            return report
        with Ledger(settings.state_path) as ledger:
            if settings.bounce_mailbox is not None:
                _read(ledger, settings, now, report)
            announcements = ledger.unannounced()
        report.notices = notices_for(project, announcements)
    return report


def _read(ledger: Ledger, settings: Settings, now: dt.datetime, report: BounceReport) -> None:
    assert settings.bounce_mailbox is not None
    source = open_source(settings.bounce_mailbox, timeout=settings.timeout)
    report.source = source.describe()
    local = settings.bounce_address.rpartition("@")[0]
    try:
        for batch in source.batches():
            moves: dict[str, list[str]] = {PROCESSED: [], UNRECOGNISED: []}
            for key, raw in batch:
                moves[handle(ledger, classify(raw, bounce_local=local), now=now, report=report)].append(key)
            for folder, keys in moves.items():  # only now that every count of the batch is committed
                source.move(keys, folder)
    finally:
        source.close()


def handle(ledger: Ledger, verdict: Verdict, *, now: dt.datetime, report: BounceReport) -> str:
    """Record one report in the ledger (committed when this returns); the folder it goes to."""
    at = moment(verdict.date, now)
    address = None if verdict.kind in ("autoreply", "unrecognised") else member(ledger, verdict)
    if verdict.kind == "autoreply":
        fresh = ledger.record_report(verdict.report_id, kind="autoreply", at=at)
        report.autoreplies += fresh
    elif address is None:  # not understood, or about no message of ours: a person looks
        fresh = ledger.record_report(verdict.report_id, kind="unrecognised", at=at, reason=verdict.kind)
        report.unrecognised += 1
        report.repeated += not fresh
        return UNRECOGNISED
    elif verdict.kind in WEIGHTS:
        count = ledger.record_bounce(
            address, kind=verdict.kind, report_id=verdict.report_id, at=at, reason=verdict.reason
        )
        fresh = count.new
        report.hard += fresh and verdict.kind == "hard"
        report.soft += fresh and verdict.kind == "soft"
    elif verdict.kind == "complaint":
        # Suppressed before the report is kept: a crash between the two suppresses again (no change)
        # and keeps it then; the other order could keep a report whose member was never suppressed.
        ledger.suppress(address, source="complaint", now=at)
        fresh = ledger.record_report(verdict.report_id, kind="complaint", at=at, address=address)
        report.complaints += fresh
    else:  # delayed, delivered, refused: read and kept, counted against nobody
        kind = "refused" if verdict.kind == "refused" else "delayed"
        fresh = ledger.record_report(
            verdict.report_id, kind=kind, at=at, address=address, reason=verdict.reason
        )
        report.refused += fresh and kind == "refused"
        report.delayed += fresh and kind == "delayed"
    report.processed += 1
    report.repeated += not fresh
    return PROCESSED


def member(ledger: Ledger, verdict: Verdict) -> str | None:
    """The address of the member the report is about: by the VERP token the report came back to,
    else by a Message-ID of ours that it quotes; None if it is about no message we sent."""
    for token in verdict.tokens:
        if found := ledger.delivery_for_token(token):
            return found[1]
    for mid in verdict.message_ids:
        if found := ledger.delivery_for_message_id(mid):
            return found[1]
    return None


def moment(date: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """When a report counts: its Date (a backlog read at once still counts day by day), unless absent
    or implausible."""
    if date is None or not now - PLAUSIBLE <= date <= now:
        return now
    return date


def notices_for(project: Project, announcements: Sequence[Announcement]) -> list[Notice]:
    """The announcements in the organisers' terms: lines of subscribers.csv, days in the group's zone."""
    if not announcements:
        return []
    lines = _lines(project)
    tz = project.schedule.group.tz
    return [
        Notice(
            a.ref,
            a.kind,
            lines.get(a.address),
            a.times,
            dt.datetime.fromisoformat(a.since).astimezone(tz).date() if a.since else None,
            a.reason,
        )
        for a in announcements
    ]


def _lines(project: Project) -> dict[str, int | None]:
    lines: dict[str, int | None] = {}
    try:
        for subscriber in project.members():
            lines.setdefault(subscriber.key, subscriber.line)
    except (DataError, OSError):
        pass  # a broken row stops the reading there: the members before it keep their lines
    return lines


def tell_organisers(project: Project, report: BounceReport, *, now: dt.datetime) -> int:
    """Mail the organisers the report's notices in one mail, then mark them told (a crash before that
    tells them again next time rather than never); returns how many organisers took it."""
    from newsletter.organisers import Contacts, mail

    if not report.notices:
        return 0
    today = now.astimezone(project.schedule.group.tz).date()
    subject, body = organiser_mail(report.notices, today=today)
    told = mail(project.settings, Contacts.of(project), subject=subject, body=body, topic="bounces", now=now)
    if told:
        with Ledger(project.settings.state_path) as ledger:
            ledger.mark_announced([n.ref for n in report.notices], now=now)
    else:
        log.warning("%d bounce notice(s) for the organisers, but none could be told", len(report.notices))
    return told


def _lock(settings: Settings) -> AbstractContextManager[bool]:
    return held(settings.state_dir, "bounces", wait=0)
