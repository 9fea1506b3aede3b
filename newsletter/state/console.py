"""The console's records in the state database: sign-in links, sessions and the activity log.

Functions of a ``Database`` (a ``Ledger`` is one).  Links and session ids arrive here already hashed
(``state.members.token_hash``); the clock is passed in.  A link is used at most once: taking it is
one conditional UPDATE, so two clicks at the same moment cannot both sign in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter.state.database import Database, iso

#: Who the activity log names for a change made with `newsletter subscribers …`.
COMMAND_LINE = "command line"


@dataclass(frozen=True)
class ConsoleSession:
    address: str  # the organiser's, as schedule.yaml has it
    name: str
    csrf: str  # the token every form of this session carries
    created_at: str
    seen_at: str


@dataclass(frozen=True)
class Activity:
    at: str
    who: str
    action: str
    detail: str


# --- sign-in links -------------------------------------------------------------------------------


def save_link(db: Database, digest: str, address: str, *, now: dt.datetime, expires: dt.datetime) -> None:
    with db.transaction() as conn:
        conn.execute("DELETE FROM console_links WHERE expires_at < ?", (iso(now - dt.timedelta(days=1)),))
        conn.execute(
            "INSERT OR REPLACE INTO console_links (token_hash, address, created_at, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (digest, address.lower(), iso(now), iso(expires)),
        )


def link_is_valid(db: Database, digest: str, *, now: dt.datetime) -> bool:
    row = db.db.execute(
        "SELECT 1 FROM console_links WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        (digest, iso(now)),
    ).fetchone()
    return row is not None


def use_link(db: Database, digest: str, *, now: dt.datetime) -> str | None:
    """The address the link was sent to, marking it used; None if unknown, used or expired."""
    with db.transaction() as conn:
        taken = conn.execute(
            "UPDATE console_links SET used_at = ?"
            " WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
            (iso(now), digest, iso(now)),
        ).rowcount
        if not taken:
            return None
        row = conn.execute("SELECT address FROM console_links WHERE token_hash = ?", (digest,)).fetchone()
    return str(row[0])


# --- sessions ------------------------------------------------------------------------------------


def start_session(db: Database, digest: str, *, address: str, name: str, csrf: str, now: dt.datetime) -> None:
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO console_sessions (id_hash, address, name, csrf, created_at, seen_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (digest, address, name, csrf, iso(now), iso(now)),
        )


def find_session(db: Database, digest: str, *, now: dt.datetime, idle: dt.timedelta) -> ConsoleSession | None:
    """The session, its last use moved to ``now``; None (and the row gone) once idle longer than ``idle``."""
    with db.transaction() as conn:
        conn.execute("DELETE FROM console_sessions WHERE seen_at <= ?", (iso(now - idle),))
        row = conn.execute(
            "SELECT address, name, csrf, created_at FROM console_sessions WHERE id_hash = ?", (digest,)
        ).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE console_sessions SET seen_at = ? WHERE id_hash = ?", (iso(now), digest))
    return ConsoleSession(str(row[0]), str(row[1]), str(row[2]), str(row[3]), iso(now))


def end_session(db: Database, digest: str) -> None:
    with db.transaction() as conn:
        conn.execute("DELETE FROM console_sessions WHERE id_hash = ?", (digest,))


# --- the activity log ----------------------------------------------------------------------------


def record(db: Database, who: str, action: str, detail: str = "", *, now: dt.datetime) -> None:
    """One line of the activity log; ``detail`` must not hold a member's address (rows, counts)."""
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO activity (at, who, action, detail) VALUES (?, ?, ?, ?)",
            (iso(now), who, action, detail),
        )


def activity(db: Database, *, limit: int = 200) -> list[Activity]:
    """The latest ``limit`` lines, newest first."""
    rows = db.db.execute(
        "SELECT at, who, action, detail FROM activity ORDER BY at DESC, id DESC LIMIT ?", (limit,)
    )
    return [Activity(str(a), str(w), str(act), str(d)) for a, w, act, d in rows]


def open_topics(db: Database) -> list[str]:
    """What the organisers were mailed about and has not been cleared yet (``organisers.tell_once``)."""
    rows = db.db.execute("SELECT key FROM meta WHERE key LIKE 'told:%' AND value != '' ORDER BY key")
    return [str(r[0]).removeprefix("told:") for r in rows]
