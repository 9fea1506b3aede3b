"""The state database: every (mailing, member) attempt, what members were told, and the daily send budget.

SQLite in WAL mode.  A message is claimed (``sending``) and committed before it is handed to the
server, and recorded ``sent`` only after the server accepted it: after a crash the claimed rows are
sent again, so nobody is skipped and only messages in flight can arrive twice.  The member tables
(unsubscribes, sign-ups, unsubscribe tokens) are in ``members``, the schema in ``migrations``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from newsletter.model import FINAL, CampaignState, MailKind
from newsletter.model import DeliveryStatus as Status
from newsletter.state.bounces import BounceTables
from newsletter.state.database import iso
from newsletter.state.members import MemberTables

__all__ = ["RETRYABLE", "Campaign", "ChangeDetails", "Delivery", "Ledger", "Result", "iso"]

#: States a send run picks up (``sending`` only when a crash left it: runs hold the send lock).
RETRYABLE = frozenset({Status.PENDING, Status.SENDING, Status.DEFERRED, Status.AMBIGUOUS})
#: How a message went out: to the SMTP relay, or to the outbox folder (a try-out, never delivered).
VIA = frozenset({"relay", "outbox"})
#: user:password@ in a URL (an SMTP_URL quoted in an error), cut out of what the ledger keeps.
_USERINFO = re.compile(r"(?<=://)[^/\s]*@")  # to the last @: a password may hold one
STOPPED_MAX = 500  # characters of "why the last run stopped" worth keeping


@dataclass(frozen=True)
class Result:
    """One message's outcome, as the send loop hands it to ``write_batch``."""

    address: str
    status: Status
    code: int | None
    reply: str | None
    next_try: dt.datetime | None


@dataclass(frozen=True)
class Delivery:
    campaign: str
    address: str
    status: Status
    attempts: int
    code: int | None
    reply: str | None
    next_try: str | None
    message_id: str | None
    updated_at: str
    via: str = "relay"  # of the latest attempt; rows from before schema 2 went to the relay

    #: What ``of`` reads, by name: columns a later migration adds do not shift anything.
    COLUMNS: ClassVar[str] = (
        "campaign, address, status, attempts, code, reply, next_try, message_id, updated_at, via"
    )

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> Delivery:
        """From a row selected as ``COLUMNS``."""
        campaign, address, status, attempts, code, reply, next_try, message_id, updated, via = row
        return cls(
            campaign, address, Status(status), attempts, code, reply, next_try, message_id, updated,
            via or "relay",
        )  # fmt: skip


@dataclass(frozen=True)
class ChangeDetails:
    """What a change notice announces (``now``) and what its members were told (``before``)."""

    now: str
    before: str

    def dump(self) -> str:
        return json.dumps({"now": self.now, "before": self.before})

    @classmethod
    def load(cls, text: str | None) -> ChangeDetails | None:
        data = json.loads(text) if text else None
        return cls(data["now"], data["before"]) if data else None


@dataclass(frozen=True)
class Campaign:
    id: str
    meeting: str
    reminder: str
    kind: MailKind
    state: CampaignState
    reason: str | None
    change: ChangeDetails | None  # a change notice's details, read once from the row
    created_at: str
    updated_at: str
    stopped: str | None = None  # why its last run stopped (a connection-level error), None if it did not

    #: What ``of`` reads, by name: columns a later migration adds do not shift anything.
    COLUMNS: ClassVar[str] = (
        "id, meeting, reminder, kind, state, reason, details, created_at, updated_at, stopped"
    )

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> Campaign:
        """From a row selected as ``COLUMNS``."""
        cid, meeting, reminder, kind, state, reason, details, created, updated, stopped = row
        return cls(
            cid, meeting, reminder, MailKind(kind), CampaignState(state), reason, ChangeDetails.load(details),
            created, updated, stopped,
        )  # fmt: skip


class Ledger(BounceTables, MemberTables):
    # campaigns ---------------------------------------------------------------------------------
    def open_campaign(
        self,
        cid: str,
        *,
        meeting: str,
        reminder: str,
        kind: MailKind,
        now: dt.datetime,
        details: str | None = None,
    ) -> Campaign:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO campaigns"
                " (id, meeting, reminder, kind, details, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (cid, meeting, reminder, kind, details, iso(now), iso(now)),
            )
        campaign = self.campaign(cid)
        assert campaign is not None
        return campaign

    def campaign(self, cid: str) -> Campaign | None:
        row = self.db.execute(f"SELECT {Campaign.COLUMNS} FROM campaigns WHERE id = ?", (cid,)).fetchone()
        return Campaign.of(row) if row else None

    def campaigns(self) -> list[Campaign]:
        return [
            Campaign.of(row)
            for row in self.db.execute(
                f"SELECT {Campaign.COLUMNS} FROM campaigns ORDER BY meeting, created_at"
            )
        ]

    def set_campaign_state(
        self, cid: str, state: CampaignState, *, now: dt.datetime, reason: str | None = None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE campaigns SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                (state, reason, iso(now), cid),
            )

    def set_stopped(self, cid: str, text: str | None, now: dt.datetime) -> None:
        """Note why the campaign's last run stopped (a connection-level error), or None once one ran
        through.  A user:password@ in the text is cut out: credentials never reach the ledger."""
        kept = _USERINFO.sub("", text)[:STOPPED_MAX] if text is not None else None
        with self.transaction() as db:
            db.execute("UPDATE campaigns SET stopped = ?, updated_at = ? WHERE id = ?", (kept, iso(now), cid))

    # deliveries --------------------------------------------------------------------------------
    def start_run(self) -> None:
        """Start noting which members this send run meets in the list (a table private to it)."""
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS seen (address TEXT PRIMARY KEY) WITHOUT ROWID")
        self.db.execute("DELETE FROM temp.seen")

    def mark_not_seen(self, cid: str, status: Status, *, now: dt.datetime) -> int:
        """Rows still open that this run did not meet in the list (members removed meanwhile)."""
        marks = ",".join("?" * len(FINAL))
        with self.transaction() as db:
            return db.execute(
                "UPDATE deliveries SET status = ?, updated_at = ? WHERE campaign = ?"
                f" AND status NOT IN ({marks}) AND address NOT IN (SELECT address FROM temp.seen)",
                (status, iso(now), cid, *sorted(FINAL)),
            ).rowcount

    def write_batch(
        self,
        cid: str,
        *,
        claims: list[tuple[str, str]],
        results: list[Result],
        now: dt.datetime,
        told: tuple[str, str] | None = None,
        via: str = "relay",
    ) -> None:
        """Results and claims of several connections in one transaction (results first: a
        connection's result always precedes its next claim); ``via`` is the transport they used."""
        if via not in VIA:
            raise ValueError(f"via must be one of {sorted(VIA)}, not {via!r}")
        if not claims and not results:
            return
        stamp = iso(now)
        with self.transaction() as db:
            db.executemany(
                "UPDATE deliveries SET status = ?, code = ?, reply = ?, next_try = ?, via = ?, updated_at = ?"
                " WHERE campaign = ? AND address = ?",
                [
                    (
                        r.status,
                        r.code,
                        r.reply,
                        iso(r.next_try) if r.next_try else None,
                        via,
                        stamp,
                        cid,
                        r.address,
                    )
                    for r in results
                ],
            )
            sent = [r.address for r in results if r.status == Status.SENT]
            if sent and told is not None:
                db.executemany(
                    "INSERT INTO told (meeting, address, details, campaign, at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (meeting, address) DO UPDATE SET"
                    " details = excluded.details, campaign = excluded.campaign, at = excluded.at",
                    [(told[0], a, told[1], cid, stamp) for a in sent],
                )
            if sent:
                db.execute(
                    "INSERT INTO send_counts (period, count) VALUES (?, ?)"
                    " ON CONFLICT (period) DO UPDATE SET count = count + excluded.count",
                    (now.astimezone(dt.UTC).date().isoformat(), len(sent)),
                )
            db.executemany(
                "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, message_id = ?, via = ?,"
                " updated_at = ? WHERE campaign = ? AND address = ?",
                [(mid, via, stamp, cid, a) for a, mid in claims],
            )

    def enqueue(self, cid: str, addresses: Iterable[str], *, now: dt.datetime, seen: bool = False) -> None:
        addresses = list(addresses)
        with self.transaction() as db:
            if seen:
                db.executemany("INSERT OR IGNORE INTO temp.seen VALUES (?)", ((a,) for a in addresses))
            db.executemany(
                "INSERT OR IGNORE INTO deliveries (campaign, address, status, updated_at)"
                " VALUES (?, ?, 'pending', ?)",
                ((cid, a, iso(now)) for a in addresses),
            )

    def statuses(self, cid: str, addresses: list[str]) -> dict[str, Delivery]:
        out: dict[str, Delivery] = {}
        for start in range(0, len(addresses), 500):
            chunk = addresses[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT {Delivery.COLUMNS} FROM deliveries WHERE campaign = ? AND address IN ({marks})",
                (cid, *chunk),
            ):
                delivery = Delivery.of(row)
                out[delivery.address] = delivery
        return out

    def deliveries(self, cid: str) -> list[Delivery]:
        return [
            Delivery.of(row)
            for row in self.db.execute(
                f"SELECT {Delivery.COLUMNS} FROM deliveries WHERE campaign = ? ORDER BY status, address",
                (cid,),
            )
        ]

    def mark(
        self,
        cid: str,
        addresses: Iterable[str],
        status: Status,
        *,
        now: dt.datetime,
        only_from: Iterable[Status] = (Status.PENDING, Status.DEFERRED, Status.AMBIGUOUS, Status.SENDING),
    ) -> int:
        states = tuple(only_from)
        marks = ",".join("?" * len(states))
        with self.transaction() as db:
            return sum(
                db.execute(
                    f"UPDATE deliveries SET status = ?, updated_at = ? WHERE campaign = ? AND address = ?"
                    f" AND status IN ({marks})",
                    (status, iso(now), cid, a, *states),
                ).rowcount
                for a in addresses
            )

    def counts(self, cid: str) -> dict[str, int]:
        return dict(
            self.db.execute(
                "SELECT status, count(*) FROM deliveries WHERE campaign = ? GROUP BY status", (cid,)
            ).fetchall()
        )

    def sent_on(self, day: dt.date) -> int:
        row = self.db.execute("SELECT count FROM send_counts WHERE period = ?", (day.isoformat(),)).fetchone()
        return int(row[0]) if row else 0

    # what members were told -------------------------------------------------------------------
    def told(self, meeting: str) -> dict[str, str]:
        """address → details JSON of the last message about ``meeting`` that reached them."""
        rows = self.db.execute("SELECT address, details FROM told WHERE meeting = ?", (meeting,))
        return dict(rows.fetchall())

    def told_meetings(self, since: str) -> list[str]:
        rows = self.db.execute("SELECT DISTINCT meeting FROM told WHERE meeting >= ? ORDER BY 1", (since,))
        return [r[0] for r in rows]

    def sequence(self, meeting: str, details: str) -> int:
        """The invitation SEQUENCE for ``meeting`` as ``details``: raised once per change of details."""
        with self.transaction() as db:
            row = db.execute("SELECT sequence, details FROM meetings WHERE key = ?", (meeting,)).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO meetings (key, sequence, details) VALUES (?, 0, ?)", (meeting, details)
                )
                return 0
            if row[1] == details:
                return int(row[0])
            db.execute(
                "UPDATE meetings SET sequence = ?, details = ? WHERE key = ?", (row[0] + 1, details, meeting)
            )
            return int(row[0]) + 1

    def campaigns_for(self, meeting: str, kind: MailKind) -> list[Campaign]:
        return [
            Campaign.of(row)
            for row in self.db.execute(
                f"SELECT {Campaign.COLUMNS} FROM campaigns WHERE meeting = ? AND kind = ?"
                " ORDER BY created_at, id",
                (meeting, kind),
            )
        ]

    def enqueued(self, cid: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT address FROM deliveries WHERE campaign = ?", (cid,))}

    # meta --------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
