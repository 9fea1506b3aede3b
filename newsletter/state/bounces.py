"""The ledger's bounce tables: every report read, each member's current run of bounces, reactivations.

Scoring is Mailman's: a hard (permanent) bounce counts 1 and a soft one 0.5, at most one per member
per day (UTC); 90 quiet days start the count over; at ``BOUNCING_AT`` the member is "bouncing" (not
mailed) until an organiser reactivates them.  Nobody is removed from subscribers.csv.  Each report is
kept under its own key (its Message-ID) in the very transaction that counts it, so a report read
again after a crash counts nothing.  The words for what went wrong (``reason_of``) are here too: the
send loop records a 5xx at send time with the same vocabulary as the bounce reader.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from newsletter.state.database import Database, iso
from newsletter.tokens import verp_message_id_prefix

HARD, SOFT = "hard", "soft"
#: What one report adds to its member's score.
WEIGHTS = {HARD: 1.0, SOFT: 0.5}
#: Every kind of report kept: the two that count, a delay warning, a refusal that says nothing about
#: the address (spam filters, size limits: Mailman #624), complaints, autoreplies, the unreadable.
REPORT_KINDS = frozenset({HARD, SOFT, "delayed", "refused", "complaint", "autoreply", "unrecognised"})
BOUNCING_AT = 3.0  # the score at which a member is bouncing
QUIET = dt.timedelta(days=90)  # no bounce for this long: the count starts over

SPAM = "the member's mail provider refused it as spam or by its rules"
# Enhanced status codes (RFC 3463) in the words an organiser reads: (class.)subject.detail → words.
_MEANINGS = (
    ("1.1", "the mailbox does not exist"),
    ("1.2", "the mail domain does not exist"),
    ("1.", "the address was refused"),
    ("2.1", "the mailbox is disabled"),
    ("2.2", "the mailbox is full"),
    ("2.", "the mailbox is not accepting mail"),
    ("3.4", "the message was too big for the member's mail server"),
    ("4.", "the member's mail server could not be reached"),
    ("7.", SPAM),
)
_WORDS = (
    (r"does ?n[o']t exist|no such (user|mailbox|recipient)|user unknown|unknown (user|recipient)|"
     r"recipient (address )?rejected|invalid (mailbox|recipient)|account .*disabled",
     "the mailbox does not exist"),
    (r"mailbox (is )?full|over ?quota|quota exceeded|insufficient storage", "the mailbox is full"),
    (r"spam|block ?list|black ?list|blocked", SPAM),
    (r"host (or domain name )?not found|domain not found|no mx|unrouteable|name service error",
     "the mail domain does not exist"),
)  # fmt: skip
_STATUS = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
DEFAULT_REASON = "the member's mail server refused the message"


def enhanced_status(text: str) -> str:
    """The first failure status code (``5.1.1``) in a server's reply or a report's text, or ""."""
    found = _STATUS.search(text)
    return ".".join(found.groups()) if found else ""


def reason_of(status: str, text: str = "") -> str:
    """What went wrong, in plain words that never quote the text (it often holds the address)."""
    subject = status.partition(".")[2]
    for prefix, words in _MEANINGS:
        if subject and subject.startswith(prefix) and (prefix.endswith(".") or subject == prefix):
            return words
    for pattern, words in _WORDS:
        if re.search(pattern, text, re.IGNORECASE):
            return words
    return DEFAULT_REASON


def kind_of(status: str, text: str = "", *, permanent: bool = True) -> str:
    """hard, soft or refused (a refusal of the message, not of the address: it counts nothing)."""
    if status:
        cls, subject, detail = status.split(".")
        if subject in ("6", "7") or (subject, detail) == ("3", "4"):
            return "refused"
        if cls == "4" or (subject == "2" and detail != "1"):
            return SOFT  # a full mailbox, or the server gave up on a temporary failure
        return HARD
    reason = reason_of("", text)
    if reason == SPAM:
        return "refused"
    return SOFT if reason == _WORDS[1][1] or not permanent else HARD


def send_time_kind(code: int, reply: str) -> str | None:
    """How a 5xx answer at send time counts: hard, or None for a refusal of the message (spam, size)."""
    if not 500 <= code < 600:
        return None
    kind = kind_of(enhanced_status(reply) or "5.0.0", reply)
    return HARD if kind == HARD else None


@dataclass(frozen=True)
class BounceRun:
    """A member's current run of bounces (times and score since ``since``, ISO UTC)."""

    address: str
    score: float
    times: int
    since: str
    last: str
    reason: str
    bouncing_since: str | None = None  # when the score reached the threshold; None: still mailed
    crossed_by: str | None = None  # the report that took it there

    COLUMNS: ClassVar[str] = "address, score, times, since, last, reason, bouncing_since, crossed_by"

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> BounceRun:
        return cls(*row)

    @property
    def bouncing(self) -> bool:
        return self.bouncing_since is not None


@dataclass(frozen=True)
class BounceCount:
    """What one ``record_bounce`` changed."""

    new: bool  # False: this report was recorded before, nothing changed
    counted: float  # what it added (0: a bounce of that member counted already that day)
    run: BounceRun | None
    crossed: bool  # this report made the member bouncing


@dataclass(frozen=True)
class Announcement:
    """What the organisers have not been told yet: a member now bouncing, or a complaint."""

    ref: str  # the report that made it so: ``mark_announced`` takes it back
    kind: str  # bouncing | complaint
    address: str
    at: str
    times: int = 0
    since: str = ""
    reason: str = ""


def next_run(
    run: BounceRun | None,
    *,
    address: str,
    weight: float,
    at: str,
    reason: str,
    report_id: str,
    threshold: float,
) -> tuple[BounceRun | None, bool]:
    """The member's run after a bounce weighing ``weight`` (0: one counted that day), and whether it
    crossed the threshold.  A bouncing member stays so through quiet days: only a person lifts it."""
    if weight == 0:
        return run, False
    if (
        run is not None
        and not run.bouncing
        and dt.datetime.fromisoformat(at) - dt.datetime.fromisoformat(run.last) > QUIET
    ):
        run = None  # a quiet period: the count starts over
    if run is None:
        run = BounceRun(address, 0.0, 0, at, at, reason)
    score = run.score + weight
    crossed = not run.bouncing and score >= threshold
    return dataclasses.replace(
        run,
        score=score,
        times=run.times + 1,
        since=min(run.since, at),
        last=max(run.last, at),
        reason=reason if weight >= WEIGHTS[HARD] or run.times == 0 else run.reason,
        bouncing_since=at if crossed else run.bouncing_since,
        crossed_by=report_id if crossed else run.crossed_by,
    ), crossed


class BounceTables(Database):
    # reports -----------------------------------------------------------------------------------
    def record_report(
        self, report_id: str, *, kind: str, at: dt.datetime, address: str | None = None, reason: str = ""
    ) -> bool:
        """Keep a report that counts nothing (complaint, delay, autoreply…); False if it was kept before."""
        if kind not in REPORT_KINDS:
            raise ValueError(f"kind must be one of {sorted(REPORT_KINDS)}, not {kind!r}")
        with self.transaction() as db:
            return _keep(db, report_id, kind, address, reason, iso(at))

    def report_seen(self, report_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM bounce_reports WHERE report_id = ?", (report_id,)).fetchone()
        return row is not None

    def report_counts(self) -> dict[str, int]:
        """kind → how many reports of that kind were ever read (for `status`)."""
        return dict(self.db.execute("SELECT kind, count(*) FROM bounce_reports GROUP BY kind").fetchall())

    # scores ------------------------------------------------------------------------------------
    def record_bounce(
        self,
        address: str,
        *,
        kind: str,
        report_id: str,
        at: dt.datetime,
        reason: str,
        threshold: float = BOUNCING_AT,
    ) -> BounceCount:
        """Count one hard or soft bounce of ``address``, once per ``report_id`` (a report's Message-ID;
        for a 5xx at send time, the Message-ID of the message refused), in one transaction."""
        if kind not in WEIGHTS:
            raise ValueError(f"kind must be one of {sorted(WEIGHTS)}, not {kind!r}")
        key, stamp = address.lower(), iso(at)
        with self.transaction() as db:
            run = _run(db, key)
            if not _keep(db, report_id, kind, key, reason, stamp):
                return BounceCount(False, 0.0, run, False)
            day = at.astimezone(dt.UTC).date()
            # Within the current run only: after a reactivation the same day, a bounce counts again.
            that_day = (
                run is not None
                and db.execute(
                    "SELECT 1 FROM bounce_reports WHERE address = ? AND counted > 0 AND at >= ? AND at < ?",
                    (key, day.isoformat(), (day + dt.timedelta(days=1)).isoformat()),
                ).fetchone()
            )
            weight = 0.0 if that_day else WEIGHTS[kind]
            after, crossed = next_run(
                run,
                address=key,
                weight=weight,
                at=stamp,
                reason=reason,
                report_id=report_id,
                threshold=threshold,
            )
            if weight and after is not None:
                db.execute("UPDATE bounce_reports SET counted = ? WHERE report_id = ?", (weight, report_id))
                marks = ", ".join("?" * len(dataclasses.fields(BounceRun)))
                db.execute(
                    f"INSERT OR REPLACE INTO bounce_scores ({BounceRun.COLUMNS}) VALUES ({marks})",
                    dataclasses.astuple(after),
                )
        return BounceCount(True, weight, after, crossed)

    def bouncing(self) -> set[str]:
        """The (lower-cased) addresses past the threshold: the send loop skips them."""
        rows = self.db.execute("SELECT address FROM bounce_scores WHERE bouncing_since IS NOT NULL")
        return {str(r[0]) for r in rows}

    def bounce_runs(self) -> dict[str, BounceRun]:
        """address → the member's current run of bounces (bouncing or not yet), for `status` and the list."""
        rows = self.db.execute(f"SELECT {BounceRun.COLUMNS} FROM bounce_scores ORDER BY address")
        return {str(r[0]): BounceRun.of(r) for r in rows}

    def reactivate(self, address: str, *, source: str, now: dt.datetime) -> bool:
        """An organiser vouches for the address: its count starts over; True if it was bouncing (that
        is noted, with when and how)."""
        key = address.lower()
        with self.transaction() as db:
            run = _run(db, key)
            db.execute("DELETE FROM bounce_scores WHERE address = ?", (key,))
            if run is None or not run.bouncing:
                return False
            db.execute(
                "INSERT INTO bounce_reactivations (address, at, source) VALUES (?, ?, ?)",
                (key, iso(now), source),
            )
        return True

    def reactivations(self) -> dict[str, tuple[str, str]]:
        """address → (at, source) of its latest reactivation."""
        rows = self.db.execute("SELECT address, at, source FROM bounce_reactivations ORDER BY at, rowid")
        return {str(a): (str(at), str(source)) for a, at, source in rows}

    # telling the organisers --------------------------------------------------------------------
    def unannounced(self) -> list[Announcement]:
        """Members now bouncing and complaints the organisers were not told of yet (a crash between
        the count and the mail leaves them here for the next run)."""
        bouncing = self.db.execute(
            "SELECT s.crossed_by, s.address, s.bouncing_since, s.times, s.since, s.reason"
            " FROM bounce_scores s JOIN bounce_reports r ON r.report_id = s.crossed_by"
            " WHERE s.bouncing_since IS NOT NULL AND r.announced IS NULL ORDER BY s.bouncing_since"
        ).fetchall()
        complaints = self.db.execute(
            "SELECT report_id, address, at FROM bounce_reports"
            " WHERE kind = 'complaint' AND announced IS NULL AND address IS NOT NULL ORDER BY at"
        ).fetchall()
        return [
            Announcement(r, "bouncing", a, at, times, since, why) for r, a, at, times, since, why in bouncing
        ] + [Announcement(r, "complaint", a, at) for r, a, at in complaints]

    def mark_announced(self, refs: Iterable[str], *, now: dt.datetime) -> None:
        with self.transaction() as db:
            db.executemany(
                "UPDATE bounce_reports SET announced = ? WHERE report_id = ?", ((iso(now), r) for r in refs)
            )

    # finding the member ------------------------------------------------------------------------
    def delivery_for_message_id(self, message_id: str) -> tuple[str, str] | None:
        """(mailing, address) of the message we sent with this Message-ID."""
        row = self.db.execute(
            "SELECT campaign, address FROM deliveries WHERE message_id = ? LIMIT 1", (message_id.strip(),)
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def delivery_for_token(self, token: str) -> tuple[str, str] | None:
        """(mailing, address) of the message whose envelope sender carried this VERP token."""
        prefix = verp_message_id_prefix(token)
        if prefix is None:
            return None
        # Every Message-ID beginning with the prefix sorts between it and the prefix with "@" raised
        # by one: a range the message_id index answers.
        row = self.db.execute(
            "SELECT campaign, address FROM deliveries WHERE message_id >= ? AND message_id < ? LIMIT 1",
            (prefix, prefix[:-1] + chr(ord("@") + 1)),
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None


def _keep(
    db: sqlite3.Connection, report_id: str, kind: str, address: str | None, reason: str, at: str
) -> bool:
    return (
        db.execute(
            "INSERT OR IGNORE INTO bounce_reports (report_id, kind, address, reason, at)"
            " VALUES (?, ?, ?, ?, ?)",
            (report_id, kind, address.lower() if address else None, reason, at),
        ).rowcount
        > 0
    )


def _run(db: sqlite3.Connection, key: str) -> BounceRun | None:
    row = db.execute(f"SELECT {BounceRun.COLUMNS} FROM bounce_scores WHERE address = ?", (key,)).fetchone()
    return BounceRun.of(row) if row else None
