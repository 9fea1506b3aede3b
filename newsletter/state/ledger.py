"""The state database: every (mailing, member) attempt, what members were told, and the daily send budget.

SQLite in WAL mode.  A chunk of members is claimed (``sending``) and committed before any of its
messages is handed to the server; each result is appended to the outcome journal as soon as the
server answers and folded into the ledger in batches (``deliveries``, ``journal``).  After a crash
the journal is folded first and the rows still ``sending`` are sent again, so nobody is skipped and
only messages in flight can arrive twice.  The member tables (unsubscribes, sign-ups, unsubscribe
tokens) are in ``members``, the bounce tables in ``bounces``, the schema in ``migrations``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from newsletter.model import CampaignState, MailKind
from newsletter.state.bounces import BounceTables
from newsletter.state.database import iso
from newsletter.state.deliveries import RETRYABLE, VIA, Claim, Delivery, DeliveryTables, Result
from newsletter.state.members import MemberTables

__all__ = ["RETRYABLE", "VIA", "Campaign", "ChangeDetails", "Claim", "Delivery", "Ledger", "Result", "iso"]

#: user:password@ in a URL (an SMTP_URL quoted in an error), cut out of what the ledger keeps.
_USERINFO = re.compile(r"(?<=://)[^/\s]*@")  # to the last @: a password may hold one
STOPPED_MAX = 500  # characters of "why the last run stopped" worth keeping


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


class Ledger(BounceTables, MemberTables, DeliveryTables):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.recover()  # a send killed mid-run left results in its journal: they count first

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
