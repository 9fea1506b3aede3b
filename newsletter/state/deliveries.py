"""The ledger's deliveries: one row per (mailing, member), claimed in batches and settled from the journal.

Written so that a mailing costs few pages.  Rows are numbered in the order they are created (the
order of the list), so the results of one fold sit side by side in the table and in the status index;
the writes that land at random places in a B-tree (a new row's entry in the (campaign, address)
index, its Message-ID's, its unsubscribe token's) are made once per member, in the one transaction
that claims a whole chunk of the list.  What each member was told about a meeting (``told``) is not
written anywhere else: a delivery that reached her names the send run (``told_runs``) whose details
it carried.  The results themselves come through the outcome journal (``state/journal.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from newsletter.model import FINAL
from newsletter.model import DeliveryStatus as Status
from newsletter.state.database import Database, iso
from newsletter.state.journal import Folded, Header, Journal, journal_path

log = logging.getLogger(__name__)

#: States a send run picks up (``sending`` only when a crash left it: runs hold the send lock).
RETRYABLE = frozenset({Status.PENDING, Status.SENDING, Status.DEFERRED, Status.AMBIGUOUS})
OPEN = sorted(set(Status) - FINAL)
#: How a message went out: to the SMTP relay, or to the outbox folder (a try-out, never delivered).
VIA = frozenset({"relay", "outbox"})
FOLDED = "outcomes-folded"  # the meta key of the journal's last fold (journal.Folded)


@dataclass(frozen=True)
class Result:
    """One message's outcome, as the send loop hands it to the journal and ``fold`` writes it."""

    address: str
    status: Status
    code: int | None
    reply: str | None
    next_try: dt.datetime | None
    attempts: int | None = None  # tries in all, this one included (None: as the row says)
    at: dt.datetime | None = None  # when the server answered (None: when folded)
    message_id: str | None = None  # only when it is not the one the claim recorded
    token_hash: str = ""  # her unsubscribe token's hash, when the claim did not remember it

    def dump(self) -> list[Any]:
        return [
            self.address, str(self.status), self.code, self.reply,
            iso(self.next_try) if self.next_try else None, self.attempts,
            iso(self.at) if self.at else None, self.message_id, self.token_hash,
        ]  # fmt: skip

    @classmethod
    def load(cls, record: list[Any]) -> Result:
        address, status, code, reply, next_try, attempts, at, message_id, token = record
        return cls(
            address, Status(status), code, reply, dt.datetime.fromisoformat(next_try) if next_try else None,
            attempts, dt.datetime.fromisoformat(at) if at else None, message_id, token,
        )  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """A member about to be sent: her row becomes ``sending`` before any message of the chunk goes."""

    address: str
    before: Status | None  # the row's status until now; None: she has no row yet
    message_id: str | None = None  # recorded now, so a bounce finds her even after a crash
    token_hash: str = ""  # her unsubscribe token, remembered now ("" when not known yet)


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


class DeliveryTables(Database):
    # claiming and settling ------------------------------------------------------------------------
    def claim(
        self,
        cid: str,
        claims: Sequence[Claim],
        *,
        now: dt.datetime,
        via: str = "relay",
        suppress: Sequence[tuple[str, Status | None]] = (),
        told: tuple[str, str] | None = None,
    ) -> int | None:
        """One chunk in one transaction: the rows of ``claims`` ``sending`` (new rows made, in list
        order), the unsubscribed of ``suppress`` ``suppressed``; with ``told`` (meeting, details), a
        new ``told_runs`` row whose id is returned."""
        if via not in VIA:
            raise ValueError(f"via must be one of {sorted(VIA)}, not {via!r}")
        stamp = iso(now)
        with self.transaction() as db:
            new = [(c.address, Status.SENDING, c.message_id) for c in claims if c.before is None]
            new += [(a, Status.SUPPRESSED, None) for a, before in suppress if before is None]
            db.executemany(
                "INSERT OR IGNORE INTO deliveries (campaign, address, status, message_id, via, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(cid, a, status, mid, via, stamp) for a, status, mid in new],
            )
            again = [c for c in claims if c.before is not None]
            db.executemany(
                "UPDATE deliveries SET status = 'sending', via = ?, updated_at = ?"
                " WHERE campaign = ? AND address = ?",
                [(via, stamp, cid, c.address) for c in again],
            )
            _set_message_ids(db, cid, [(c.address, c.message_id) for c in again if c.message_id])
            db.executemany(
                f"UPDATE deliveries SET status = ?, updated_at = ? WHERE campaign = ? AND address = ?"
                f" AND status IN ({','.join('?' * len(OPEN))})",
                [(Status.SUPPRESSED, stamp, cid, a, *OPEN) for a, before in suppress if before is not None],
            )
            _remember_tokens(db, [(c.token_hash, c.address) for c in claims if c.token_hash])
            if told is None:
                return None
            found = db.execute(
                "INSERT INTO told_runs (campaign, meeting, details) VALUES (?, ?, ?)", (cid, *told)
            ).lastrowid
            assert found is not None
            return found

    def fold(
        self,
        run: Header,
        results: Sequence[Result],
        *,
        now: dt.datetime,
        folded: Folded | None = None,
        unclaim: Mapping[str, Status | None] | None = None,
    ) -> None:
        """Results into the ledger in one transaction, with the journal's ``folded`` mark; the rows of
        ``unclaim`` (claimed, never handed over) go back to what they were (new rows: ``pending``)."""
        sent = Counter(_day(r.at or now) for r in results if r.status == Status.SENT)
        with self.transaction() as db:
            db.executemany(
                "UPDATE deliveries SET status = ?, code = ?, reply = ?, next_try = ?,"
                " attempts = coalesce(?, attempts), via = ?, updated_at = ?, told = coalesce(?, told)"
                " WHERE campaign = ? AND address = ?",
                [_settled(run, r, now) for r in results],
            )
            _set_message_ids(db, run.campaign, [(r.address, r.message_id) for r in results if r.message_id])
            _remember_tokens(db, [(r.token_hash, r.address) for r in results if r.token_hash])
            db.executemany(
                "INSERT INTO send_counts (period, count) VALUES (?, ?)"
                " ON CONFLICT (period) DO UPDATE SET count = count + excluded.count",
                sorted(sent.items()),
            )
            db.executemany(
                "UPDATE deliveries SET status = ? WHERE campaign = ? AND address = ? AND status = 'sending'",
                [(before or Status.PENDING, run.campaign, a) for a, before in (unclaim or {}).items()],
            )
            if folded is not None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (FOLDED, folded.dump()),
                )

    def fold_leftover(self, journal: Journal, *, now: dt.datetime | None = None) -> int:
        """Fold what a journal holds beyond the ledger's last fold of it (a send that was killed), then
        empty it; the number of results folded."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (FOLDED,)).fetchone()
        leftover = journal.leftover(Folded.load(row[0] if row else None))
        if leftover is not None:
            results = [Result.load(record) for record in leftover.records]
            self.fold(leftover.header, results, now=now or dt.datetime.now(dt.UTC), folded=leftover.folded)
        journal.clear()
        return len(leftover.records) if leftover else 0

    def recover(self, *, wait: bool = False) -> None:
        """Fold a killed send's journal (opening the ledger does this); unless ``wait``, only if no
        other process holds it (a send going on, or another process folding it)."""
        path = journal_path(self.path)
        try:
            if not path.exists() or path.stat().st_size == 0:
                return
            journal = Journal.lock(path, wait=wait)
            if journal is None:
                return
            with journal:
                if folded := self.fold_leftover(journal):
                    log.info("folded %d result(s) a stopped send left in %s", folded, path.name)
        except PermissionError:  # another user's send (this process could not write its ledger either)
            return
        except (OSError, sqlite3.Error, ValueError, TypeError) as err:  # kept for the next open
            log.warning("could not fold %s yet: %s", path.name, err)

    # rows ----------------------------------------------------------------------------------------
    def enqueue(self, cid: str, addresses: Iterable[str], *, now: dt.datetime) -> None:
        """Rows ``pending`` for these members (a change notice's, opened before it is sent)."""
        with self.transaction() as db:
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

    def mark_not_seen(self, cid: str, status: Status, *, keep: Iterable[str], now: dt.datetime) -> int:
        """Rows still open whose members a complete run did not meet in the list (removed meanwhile);
        ``keep``: the members it met whose rows it left open (deferred, not handed over)."""
        kept = set(keep)
        marks = ",".join("?" * len(OPEN))
        gone = [
            a
            for (a,) in self.db.execute(
                f"SELECT address FROM deliveries WHERE campaign = ? AND status IN ({marks})", (cid, *OPEN)
            )
            if a not in kept
        ]
        return self.mark(cid, gone, status, now=now, only_from=OPEN) if gone else 0

    def counts(self, cid: str) -> dict[str, int]:
        return dict(
            self.db.execute(
                "SELECT status, count(*) FROM deliveries WHERE campaign = ? GROUP BY status", (cid,)
            ).fetchall()
        )

    def enqueued(self, cid: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT address FROM deliveries WHERE campaign = ?", (cid,))}

    def sent_on(self, day: dt.date) -> int:
        row = self.db.execute("SELECT count FROM send_counts WHERE period = ?", (day.isoformat(),)).fetchone()
        return int(row[0]) if row else 0

    # what members were told -------------------------------------------------------------------
    def told(self, meeting: str) -> dict[str, str]:
        """address → details JSON of the last message about ``meeting`` that reached them: the rows of
        the release before schema 6, then each send run's, in order (a later one wins)."""
        out = dict(
            self.db.execute("SELECT address, details FROM told WHERE meeting = ?", (meeting,)).fetchall()
        )
        out.update(
            self.db.execute(
                "SELECT d.address, r.details FROM told_runs r JOIN deliveries d"
                " ON d.campaign = r.campaign AND d.status = 'sent' AND d.told = r.id"
                " WHERE r.meeting = ? ORDER BY r.id",
                (meeting,),
            ).fetchall()
        )
        return out

    def told_meetings(self, since: str) -> list[str]:
        rows = self.db.execute(
            "SELECT meeting FROM told WHERE meeting >= ?1 UNION"
            " SELECT r.meeting FROM told_runs r WHERE r.meeting >= ?1 AND EXISTS (SELECT 1 FROM deliveries d"
            " WHERE d.campaign = r.campaign AND d.status = 'sent' AND d.told = r.id) ORDER BY 1",
            (since,),
        )
        return [r[0] for r in rows]


def _day(moment: dt.datetime) -> str:
    """The UTC day a message counts for in the daily budget (``send_counts``)."""
    return moment.astimezone(dt.UTC).date().isoformat()


def _settled(run: Header, r: Result, now: dt.datetime) -> tuple[Any, ...]:
    """The fold's UPDATE parameters for one result."""
    next_try = iso(r.next_try) if r.next_try else None
    told = run.told if r.status == Status.SENT else None  # what she was told, once it reached her
    at = iso(r.at or now)
    return (r.status, r.code, r.reply, next_try, r.attempts, run.via, at, told, run.campaign, r.address)


def _set_message_ids(db: sqlite3.Connection, cid: str, pairs: list[tuple[str, str]]) -> None:
    # Only where it changes: an UPDATE naming message_id rewrites its index entry, at a random page.
    db.executemany(
        "UPDATE deliveries SET message_id = ?1 WHERE campaign = ?2 AND address = ?3 AND message_id IS NOT ?1",
        [(mid, cid, a) for a, mid in pairs],
    )


def _remember_tokens(db: sqlite3.Connection, pairs: list[tuple[str, str]]) -> None:
    """As ``MemberTables.remember_tokens``, inside the caller's transaction."""
    db.executemany(
        "INSERT OR IGNORE INTO unsubscribe_tokens (token_hash, address) VALUES (?, ?)",
        [(digest, address.lower()) for digest, address in pairs],
    )
