"""The organisers' console's tables (migration 4): sign-in links, sessions, and the activity log.

Sign-in links and session ids are random and kept only as a SHA-256 hash, so whoever reads the file
can neither follow a link nor take over a session.  The activity log names the organiser (or
"command line") and what she did, by row number and count: never a member's address.
"""

from __future__ import annotations

#: Migration 4. Each statement must be safe to run once on a database at version 3.
V4_CONSOLE: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS console_links (token_hash TEXT PRIMARY KEY, address TEXT NOT NULL,"
    " created_at TEXT NOT NULL, expires_at TEXT NOT NULL, used_at TEXT) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS console_sessions (id_hash TEXT PRIMARY KEY, address TEXT NOT NULL,"
    " name TEXT NOT NULL, csrf TEXT NOT NULL, created_at TEXT NOT NULL, seen_at TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS activity (id INTEGER PRIMARY KEY, at TEXT NOT NULL, who TEXT NOT NULL,"
    " action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '')",
    "CREATE INDEX IF NOT EXISTS activity_at ON activity (at)",
)
