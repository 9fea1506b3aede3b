"""Members' answers' tables (migration 5): RSVPs with a headcount, and each member's preferences.

Both are keyed by the lower-cased address, like every member table, and hold only what the member
chose: an answer and when, or her preferences.  They are the member's own, not the organisers' CSV.
"""

from __future__ import annotations

#: Migration 5. Each statement must be safe to run once on a database at version 4.
V5_ANSWERS: tuple[str, ...] = (
    # One answer per member and meeting, replaced when she changes her mind: 'yes' with the people
    # coming in all (1 to 6, herself included), or 'no' (people 0).
    """CREATE TABLE IF NOT EXISTS rsvps (
    meeting TEXT NOT NULL,
    address TEXT NOT NULL,
    answer TEXT NOT NULL CHECK (answer IN ('yes', 'no')),
    people INTEGER NOT NULL CHECK (people BETWEEN 0 AND 6),
    at TEXT NOT NULL,
    PRIMARY KEY (meeting, address)
) WITHOUT ROWID""",
    # A member's own choices; no row: the group's defaults (schedule.yaml's group.defaults).
    # reminders: the names she wants, as a JSON list, or NULL for every reminder (those added later too).
    """CREATE TABLE IF NOT EXISTS preferences (
    address TEXT PRIMARY KEY,
    reminders TEXT,
    plain_text INTEGER NOT NULL CHECK (plain_text IN (0, 1)),
    paused_until TEXT,
    discreet INTEGER NOT NULL CHECK (discreet IN (0, 1)),
    updated_at TEXT NOT NULL
) WITHOUT ROWID""",
)
