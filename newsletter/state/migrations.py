"""Schema versions of the state database: ``PRAGMA user_version`` and the ordered steps that reach it.

Each migration is a list of SQL statements.  They run in one transaction with the new version
number, so a file is wholly at its old version or wholly at the new one, and a second process
opening the file at the same moment waits for the first and then finds nothing left to do.
Append new migrations at the end; never change one that has been released (files out there have
already run it).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from newsletter.errors import ConfigError
from newsletter.state.answers_tables import V5_ANSWERS
from newsletter.state.console_tables import V4_CONSOLE

#: 1: the schema of the release before schema versions.  Its files have user_version 0 and these
#: tables, except perhaps sign-ups and resubscriptions (created on first use back then): every
#: statement says IF NOT EXISTS, so running it on such a file adds what is missing and keeps the rest.
V1_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    meeting TEXT NOT NULL,
    reminder TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'reminder',
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'skipped', 'closed')),
    reason TEXT,
    details TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS deliveries (
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
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (campaign, status)",
    """CREATE TABLE IF NOT EXISTS suppressions (
    address TEXT PRIMARY KEY,
    since TEXT NOT NULL,
    source TEXT NOT NULL
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS send_counts (
    period TEXT PRIMARY KEY,
    count INTEGER NOT NULL
) WITHOUT ROWID""",
    # What each member was last told about each meeting (date, time, venue, cancelled): the base for
    # change notices. Written in the same transaction that records the message as sent.
    """CREATE TABLE IF NOT EXISTS told (
    meeting TEXT NOT NULL,
    address TEXT NOT NULL,
    details TEXT NOT NULL,
    campaign TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (meeting, address)
) WITHOUT ROWID""",
    # The invitation's SEQUENCE per meeting, raised whenever the announced details change.
    """CREATE TABLE IF NOT EXISTS meetings (
    key TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    details TEXT NOT NULL
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
) WITHOUT ROWID""",
    # Pending double opt-in sign-ups (only a hash of each link's token is kept) and the history of
    # unsubscribes that were lifted.
    "CREATE TABLE IF NOT EXISTS signups (token_hash TEXT PRIMARY KEY, key TEXT NOT NULL,"
    " address TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS signups_key ON signups (key)",
    "CREATE TABLE IF NOT EXISTS resubscriptions (address TEXT NOT NULL, at TEXT NOT NULL,"
    " source TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS resubscriptions_address ON resubscriptions (address)",
)

#: 2: how each message went out (NULL, in rows from before, means the relay: the outbox did not count
#: then either); each mailed member's unsubscribe token, hashed, so a click is one lookup; why a
#: campaign's last run stopped.
V2_TRANSPORT_TOKENS_STOPPED = (
    "ALTER TABLE deliveries ADD COLUMN via TEXT CHECK (via IN ('relay', 'outbox'))",
    "CREATE TABLE unsubscribe_tokens (token_hash TEXT PRIMARY KEY, address TEXT NOT NULL) WITHOUT ROWID",
    "ALTER TABLE campaigns ADD COLUMN stopped TEXT",
)

#: 3: bounces and complaints.  Every report read is kept under its own key (its Message-ID), so a
#: report read twice (after a crash) counts once; each member's current run of bounces; lifted
#: "bouncing" marks; and Message-IDs indexed, since a report finds its member by our Message-ID.
V3_BOUNCES = (
    """CREATE TABLE bounce_reports (
    report_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN
        ('hard', 'soft', 'delayed', 'refused', 'complaint', 'autoreply', 'unrecognised')),
    address TEXT,
    counted REAL NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL,
    announced TEXT
) WITHOUT ROWID""",
    "CREATE INDEX bounce_reports_address ON bounce_reports (address, at)",
    """CREATE TABLE bounce_scores (
    address TEXT PRIMARY KEY,
    score REAL NOT NULL,
    times INTEGER NOT NULL,
    since TEXT NOT NULL,
    last TEXT NOT NULL,
    reason TEXT NOT NULL,
    bouncing_since TEXT,
    crossed_by TEXT
) WITHOUT ROWID""",
    "CREATE TABLE bounce_reactivations (address TEXT NOT NULL, at TEXT NOT NULL, source TEXT NOT NULL)",
    "CREATE INDEX deliveries_message_id ON deliveries (message_id)",
)

#: 6: a mailing writes few pages (issue 13).  Deliveries are numbered in the order they are made, the
#: order of the list (a rowid table: the results one fold writes sit side by side, in the table and in
#: the status index), with a unique (campaign, address) index.  What members were told is no longer
#: a row of its own per member: a delivery that reached her names its send run (``told``, a
#: ``told_runs`` id) and the run holds the details; the ``told`` table keeps the rows written before.
V6_FEW_PAGES = (
    """CREATE TABLE deliveries_v6 (
    id INTEGER PRIMARY KEY,
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
    told INTEGER,
    via TEXT CHECK (via IN ('relay', 'outbox'))
)""",
    "INSERT INTO deliveries_v6 (campaign, address, status, attempts, code, reply, next_try, message_id,"
    " updated_at, via) SELECT campaign, address, status, attempts, code, reply, next_try, message_id,"
    " updated_at, via FROM deliveries ORDER BY campaign, address",
    "DROP TABLE deliveries",
    "ALTER TABLE deliveries_v6 RENAME TO deliveries",
    "CREATE UNIQUE INDEX deliveries_key ON deliveries (campaign, address)",
    "CREATE INDEX deliveries_status ON deliveries (campaign, status)",
    "CREATE INDEX deliveries_message_id ON deliveries (message_id)",
    """CREATE TABLE IF NOT EXISTS told_runs (
    id INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL,
    meeting TEXT NOT NULL,
    details TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS told_runs_meeting ON told_runs (meeting)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    V1_SCHEMA,
    V2_TRANSPORT_TOKENS_STOPPED,
    V3_BOUNCES,
    V4_CONSOLE,  # state/console_tables.py
    V5_ANSWERS,  # state/answers_tables.py
    V6_FEW_PAGES,
)
#: The schema version this code writes.
LATEST = len(MIGRATIONS)


def version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, path: Path) -> int:
    """Bring the database at ``path`` (open as ``db``, autocommit) to LATEST; returns the version found.

    ConfigError for a file from a newer release (it is left untouched) or one that is not ours.
    """
    found = version(db)
    if found == LATEST:  # the usual case: no write lock taken
        return found
    _refuse_newer(found, path)
    db.execute("BEGIN IMMEDIATE")
    try:
        found = version(db)  # another process may have upgraded it while this one waited for the lock
        _refuse_newer(found, path)
        if found == 0:
            _check_ours(db, path)
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                db.execute(statement)
        if found != LATEST:
            db.execute(f"PRAGMA user_version = {LATEST:d}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return found


def _refuse_newer(found: int, path: Path) -> None:
    if found > LATEST:
        raise ConfigError(
            f"{path}: the state database was written by a newer version of newsletter (schema version "
            f"{found}; this one knows up to {LATEST}) — upgrade newsletter to the version that wrote it, "
            "and keep the file: it records who has had which reminder and who unsubscribed"
        )


def _check_ours(db: sqlite3.Connection, path: Path) -> None:
    """A file with version 0 is new (no tables) or from the release before versions (our tables)."""
    tables = {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "campaigns" not in tables:
        raise ConfigError(
            f"{path}: is not a newsletter state database (it holds other tables) — set NEWSLETTER_STATE "
            "to the group's state file, or to a new file name to start one"
        )
