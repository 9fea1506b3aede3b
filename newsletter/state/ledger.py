"""The state database: every (mailing, member) attempt, suppressions, and the daily send budget.

SQLite in WAL mode.  A message is claimed (``sending``) and committed before it is handed to the
server, and recorded ``sent`` only after the server accepted it: after a crash the claimed rows are
sent again, so nobody is skipped and only messages in flight can arrive twice.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter.errors import ConfigError
from newsletter.model import FINAL, CampaignState, MailKind
from newsletter.model import DeliveryStatus as Status

SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    meeting TEXT NOT NULL,
    reminder TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'reminder',
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'skipped', 'closed')),
    reason TEXT,
    details TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    campaign TEXT NOT NULL REFERENCES campaigns(id),
    address TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('pending', 'sending', 'sent', 'deferred', 'failed', 'ambiguous', 'suppressed', 'removed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    code INTEGER,
    reply TEXT,
    next_try TEXT,
    message_id TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (campaign, address)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (campaign, status);
CREATE TABLE IF NOT EXISTS suppressions (
    address TEXT PRIMARY KEY,
    since TEXT NOT NULL,
    source TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS send_counts (
    period TEXT PRIMARY KEY,
    count INTEGER NOT NULL
) WITHOUT ROWID;
-- What each member was last told about each meeting (date, time, venue, cancelled): the base for
-- change notices. Written in the same transaction that records the message as sent.
CREATE TABLE IF NOT EXISTS told (
    meeting TEXT NOT NULL,
    address TEXT NOT NULL,
    details TEXT NOT NULL,
    campaign TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (meeting, address)
) WITHOUT ROWID;
-- The invitation's SEQUENCE per meeting, raised whenever the announced details change.
CREATE TABLE IF NOT EXISTS meetings (
    key TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    details TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
) WITHOUT ROWID;
"""

#: States a send run picks up (``sending`` only when a crash left it: runs hold the send lock).
RETRYABLE = frozenset({Status.PENDING, Status.SENDING, Status.DEFERRED, Status.AMBIGUOUS})


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


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

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> Delivery:
        return cls(row[0], row[1], Status(row[2]), *row[3:])


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

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> Campaign:
        cid, meeting, reminder, kind, state, reason, details, created, updated = row
        return cls(
            cid, meeting, reminder, MailKind(kind), CampaignState(state), reason, ChangeDetails.load(details),
            created, updated,
        )  # fmt: skip


class Ledger:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as err:
            raise ConfigError(
                f"{path}: cannot open the state database ({err}) — check NEWSLETTER_STATE and "
                "that the folder is writable"
            ) from err

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

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
        row = self.db.execute("SELECT * FROM campaigns WHERE id = ?", (cid,)).fetchone()
        return Campaign.of(row) if row else None

    def campaigns(self) -> list[Campaign]:
        return [
            Campaign.of(row)
            for row in self.db.execute("SELECT * FROM campaigns ORDER BY meeting, created_at")
        ]

    def set_campaign_state(
        self, cid: str, state: CampaignState, *, now: dt.datetime, reason: str | None = None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE campaigns SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                (state, reason, iso(now), cid),
            )

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
    ) -> None:
        """Results and claims of several connections in one transaction (results first: a
        connection's result always precedes its next claim)."""
        if not claims and not results:
            return
        stamp = iso(now)
        with self.transaction() as db:
            db.executemany(
                "UPDATE deliveries SET status = ?, code = ?, reply = ?, next_try = ?, updated_at = ?"
                " WHERE campaign = ? AND address = ?",
                [
                    (
                        r.status,
                        r.code,
                        r.reply,
                        iso(r.next_try) if r.next_try else None,
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
                    "INSERT INTO told VALUES (?, ?, ?, ?, ?) ON CONFLICT (meeting, address) DO UPDATE SET"
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
                "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, message_id = ?,"
                " updated_at = ? WHERE campaign = ? AND address = ?",
                [(mid, stamp, cid, a) for a, mid in claims],
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
                f"SELECT * FROM deliveries WHERE campaign = ? AND address IN ({marks})", (cid, *chunk)
            ):
                out[row[1]] = Delivery.of(row)
        return out

    def deliveries(self, cid: str) -> list[Delivery]:
        return [
            Delivery.of(row)
            for row in self.db.execute(
                "SELECT * FROM deliveries WHERE campaign = ? ORDER BY status, address", (cid,)
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
                db.execute("INSERT INTO meetings VALUES (?, 0, ?)", (meeting, details))
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
                "SELECT * FROM campaigns WHERE meeting = ? AND kind = ? ORDER BY created_at, id",
                (meeting, kind),
            )
        ]

    def enqueued(self, cid: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT address FROM deliveries WHERE campaign = ?", (cid,))}

    # suppressions ------------------------------------------------------------------------------
    def suppress(self, address: str, *, source: str, now: dt.datetime) -> bool:
        with self.transaction() as db:
            return (
                db.execute(
                    "INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?)", (address.lower(), iso(now), source)
                ).rowcount
                > 0
            )

    def suppressed(self) -> dict[str, tuple[str, str]]:
        return {a: (since, source) for a, since, source in self.db.execute("SELECT * FROM suppressions")}

    # meta --------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # sign-ups ----------------------------------------------------------------------------------
    # Pending double opt-in sign-ups of `newsletter serve` (only a hash of each link's token is kept)
    # and the history of unsubscribes that were lifted.  The tables are created on first use, so a
    # state database from before them gains them as it is used.
    def _signup_tables(self) -> None:
        if getattr(self, "_signup_tables_ready", False):
            return
        for statement in (
            "CREATE TABLE IF NOT EXISTS signups (token_hash TEXT PRIMARY KEY, key TEXT NOT NULL,"
            " address TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL) WITHOUT ROWID",
            "CREATE INDEX IF NOT EXISTS signups_key ON signups (key)",
            "CREATE TABLE IF NOT EXISTS resubscriptions (address TEXT NOT NULL, at TEXT NOT NULL,"
            " source TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS resubscriptions_address ON resubscriptions (address)",
        ):
            self.db.execute(statement)
        self._signup_tables_ready = True

    def add_signup(
        self,
        token_hash: str,
        *,
        address: str,
        name: str,
        now: dt.datetime,
        expired_before: dt.datetime,
        most: int,
    ) -> bool:
        """Keep a pending sign-up; False (nothing kept) when the address has ``most`` outstanding."""
        self._signup_tables()
        with self.transaction() as db:
            db.execute("DELETE FROM signups WHERE created_at < ?", (iso(expired_before),))
            (count,) = db.execute("SELECT count(*) FROM signups WHERE key = ?", (address.lower(),)).fetchone()
            if count >= most:
                return False
            db.execute(
                "INSERT INTO signups VALUES (?, ?, ?, ?, ?)",
                (token_hash, address.lower(), address, name, iso(now)),
            )
        return True

    def signup(self, token_hash: str, *, expired_before: dt.datetime) -> tuple[str, str] | None:
        """(address, name) of a pending sign-up that has not expired."""
        self._signup_tables()
        row = self.db.execute(
            "SELECT address, name FROM signups WHERE token_hash = ? AND created_at >= ?",
            (token_hash, iso(expired_before)),
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def forget_signup(self, token_hash: str) -> None:
        self._signup_tables()
        with self.transaction() as db:
            db.execute("DELETE FROM signups WHERE token_hash = ?", (token_hash,))

    def forget_expired_signups(self, expired_before: dt.datetime) -> int:
        """Drop the sign-ups nobody confirmed in time: their addresses are not kept any longer."""
        self._signup_tables()
        with self.transaction() as db:
            return db.execute("DELETE FROM signups WHERE created_at < ?", (iso(expired_before),)).rowcount

    def resubscribe(self, address: str, *, source: str, now: dt.datetime) -> bool:
        """Lift an unsubscribe and note when and how, in one transaction; False if there was none."""
        self._signup_tables()
        with self.transaction() as db:
            if db.execute("DELETE FROM suppressions WHERE address = ?", (address.lower(),)).rowcount == 0:
                return False
            db.execute("INSERT INTO resubscriptions VALUES (?, ?, ?)", (address.lower(), iso(now), source))
        return True

    def resubscriptions(self) -> dict[str, tuple[str, str]]:
        """address → (at, source) of the latest lifted unsubscribe."""
        self._signup_tables()
        rows = self.db.execute("SELECT address, at, source FROM resubscriptions ORDER BY at, rowid")
        return {str(a): (str(at), str(source)) for a, at, source in rows}
