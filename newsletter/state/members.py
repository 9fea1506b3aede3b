"""The ledger's member tables: unsubscribes, pending sign-ups, lifted unsubscribes, unsubscribe tokens.

Addresses are kept lower-cased (the key the rest of the package compares).  Tokens of links are
kept only as a SHA-256 hash: whoever reads the file cannot click them.  A pending sign-up's key is
its ``mailbox``, so that the caps on outstanding confirmation mails count mailboxes, not spellings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

from newsletter.state.database import Database, iso


def token_hash(token: str) -> str:
    """What the ledger keeps of a link's token (unsubscribe, sign-up): its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def mailbox(address: str) -> str:
    """The mailbox an address reaches, for counting sign-ups: 'ann+x@Example.org' → 'ann@example.org'.

    Most providers deliver ann+anything@ to ann@, so without this one person's inbox could be sent
    any number of confirmation mails, a few per made-up +tag.  All lower-cased, like every key here.
    """
    local, _, domain = address.rpartition("@")
    return f"{local.partition('+')[0]}@{domain}".lower()


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class MemberTables(Database):
    # suppressions --------------------------------------------------------------------------------
    def suppress(self, address: str, *, source: str, now: dt.datetime) -> bool:
        with self.transaction() as db:
            return (
                db.execute(
                    "INSERT OR IGNORE INTO suppressions (address, since, source) VALUES (?, ?, ?)",
                    (address.lower(), iso(now), source),
                ).rowcount
                > 0
            )

    def suppressed(self) -> dict[str, tuple[str, str]]:
        rows = self.db.execute("SELECT address, since, source FROM suppressions")
        return {a: (since, source) for a, since, source in rows}

    def resubscribe(self, address: str, *, source: str, now: dt.datetime) -> bool:
        """Lift an unsubscribe and note when and how, in one transaction; False if there was none."""
        with self.transaction() as db:
            if db.execute("DELETE FROM suppressions WHERE address = ?", (address.lower(),)).rowcount == 0:
                return False
            db.execute(
                "INSERT INTO resubscriptions (address, at, source) VALUES (?, ?, ?)",
                (address.lower(), iso(now), source),
            )
        return True

    def resubscriptions(self) -> dict[str, tuple[str, str]]:
        """address → (at, source) of the latest lifted unsubscribe."""
        rows = self.db.execute("SELECT address, at, source FROM resubscriptions ORDER BY at, rowid")
        return {str(a): (str(at), str(source)) for a, at, source in rows}

    # unsubscribe tokens --------------------------------------------------------------------------
    # Written by the send loop for each member it mails, so that a click finds its member with one
    # lookup instead of an HMAC per member of the list.
    def remember_tokens(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Keep (token_hash, address) pairs; pairs already kept are left as they are."""
        rows = [(digest, address.lower()) for digest, address in pairs]
        if not rows:
            return
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO unsubscribe_tokens (token_hash, address) VALUES (?, ?)", rows
            )

    def address_for_token(self, token_hash: str) -> str | None:
        """The address whose unsubscribe token hashes to ``token_hash``, if a send remembered it."""
        row = self.db.execute(
            "SELECT address FROM unsubscribe_tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        return None if row is None else str(row[0])

    # sign-ups ------------------------------------------------------------------------------------
    # Pending double opt-in sign-ups of `newsletter serve`, kept until confirmed or expired.
    def add_signup(
        self,
        token_hash: str,
        *,
        address: str,
        name: str,
        now: dt.datetime,
        expired_before: dt.datetime,
        most: int,
        most_per_domain: int | None = None,
    ) -> bool:
        """Keep a pending sign-up; False (nothing kept) when its mailbox has ``most`` outstanding, or
        its domain ``most_per_domain`` (None: no cap per domain)."""
        key = mailbox(address)
        domain = key.rpartition("@")[2]
        with self.transaction() as db:
            db.execute("DELETE FROM signups WHERE created_at < ?", (iso(expired_before),))
            (mine,) = db.execute("SELECT count(*) FROM signups WHERE key = ?", (key,)).fetchone()
            (domains,) = db.execute(
                "SELECT count(*) FROM signups WHERE key LIKE ? ESCAPE '\\'", ("%@" + _like_escaped(domain),)
            ).fetchone()  # a scan, but of a small table: rows live 48 hours and sign-ups are rate-limited
            if mine >= most or (most_per_domain is not None and domains >= most_per_domain):
                return False
            db.execute(
                "INSERT INTO signups (token_hash, key, address, name, created_at) VALUES (?, ?, ?, ?, ?)",
                (token_hash, key, address, name, iso(now)),
            )
        return True

    def signup(self, token_hash: str, *, expired_before: dt.datetime) -> tuple[str, str] | None:
        """(address, name) of a pending sign-up that has not expired."""
        row = self.db.execute(
            "SELECT address, name FROM signups WHERE token_hash = ? AND created_at >= ?",
            (token_hash, iso(expired_before)),
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def forget_signup(self, token_hash: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM signups WHERE token_hash = ?", (token_hash,))

    def forget_expired_signups(self, expired_before: dt.datetime) -> int:
        """Drop the sign-ups nobody confirmed in time: their addresses are not kept any longer."""
        with self.transaction() as db:
            return db.execute("DELETE FROM signups WHERE created_at < ?", (iso(expired_before),)).rowcount
