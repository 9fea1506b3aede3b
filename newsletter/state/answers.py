"""Members' answers in the state database: who comes to which meeting, and each member's preferences.

Functions of a ``Database`` (a ``Ledger`` is one), keyed by the lower-cased address; the clock is
passed in.  ``wants`` is pure: whether a member's preferences let one reminder through.  Nothing here
returns an address to anyone but the code that already holds it; counts are what organisers see.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from dataclasses import dataclass

from newsletter.model import Schedule
from newsletter.state.database import Database, iso

__all__ = [
    "MAX_PEOPLE",
    "NO",
    "YES",
    "Answer",
    "PreferenceBook",
    "Preferences",
    "RsvpCounts",
    "defaults_of",
    "forget_member",
    "meeting_sequences",
    "preferences_for",
    "preferences_of",
    "record_rsvp",
    "rsvp_counts",
    "rsvp_of",
    "rsvps",
    "save_preferences",
    "wants",
]

YES, NO = "yes", "no"
#: People one answer may bring in all, herself included (the dinner's private room is small).
MAX_PEOPLE = 6


# --- RSVPs -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """A member's answer for one meeting: ``yes`` with the people coming in all, or ``no``."""

    answer: str
    people: int  # 0 for "no"
    at: str  # when she answered (UTC, ISO)

    @property
    def coming(self) -> bool:
        return self.answer == YES


def record_rsvp(
    db: Database, meeting_key: str, address: str, *, coming: bool, people: int = 1, now: dt.datetime
) -> Answer:
    """Keep her answer (replacing an earlier one): ``people`` counts only when she comes (1 to 6)."""
    if coming and not 1 <= people <= MAX_PEOPLE:
        raise ValueError(f"people must be 1 to {MAX_PEOPLE}, not {people}")
    answer = Answer(YES if coming else NO, people if coming else 0, iso(now))
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO rsvps (meeting, address, answer, people, at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (meeting, address) DO UPDATE SET"
            " answer = excluded.answer, people = excluded.people, at = excluded.at",
            (meeting_key, address.lower(), answer.answer, answer.people, answer.at),
        )
    return answer


def rsvp_of(db: Database, meeting_key: str, address: str) -> Answer | None:
    row = db.db.execute(
        "SELECT answer, people, at FROM rsvps WHERE meeting = ? AND address = ?",
        (meeting_key, address.lower()),
    ).fetchone()
    return Answer(str(row[0]), int(row[1]), str(row[2])) if row else None


def rsvps(db: Database, meeting_key: str) -> dict[str, Answer]:
    """Every answer for one meeting, by address (for the organisers' console, member by member)."""
    rows = db.db.execute("SELECT address, answer, people, at FROM rsvps WHERE meeting = ?", (meeting_key,))
    return {str(a): Answer(str(answer), int(people), str(at)) for a, answer, people, at in rows}


@dataclass(frozen=True)
class RsvpCounts:
    """What organisers see of the answers for one meeting."""

    coming: int  # members who said they come
    people: int  # people in all they bring, themselves included
    not_coming: int
    no_answer: int

    def __str__(self) -> str:
        people = f" ({self.people} {'person' if self.people == 1 else 'people'})"
        return (
            f"{self.coming} coming{people if self.people != self.coming else ''}, "
            f"{self.not_coming} can't come, {self.no_answer} no answer"
        )


def rsvp_counts(
    db: Database, meeting_key: str, members_total: int, *, members: Collection[str] | None = None
) -> RsvpCounts:
    """Counts of the answers for ``meeting_key`` out of ``members_total`` members.

    ``members`` (lower-cased addresses), when given, leaves out answers of people no longer on the
    list, so the counts add up to ``members_total``.
    """
    coming = people = not_coming = 0
    for address, answer in rsvps(db, meeting_key).items():
        if members is not None and address not in members:
            continue
        if answer.coming:
            coming += 1
            people += answer.people
        else:
            not_coming += 1
    return RsvpCounts(coming, people, not_coming, max(0, members_total - coming - not_coming))


# --- preferences -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preferences:
    """What a member wants; a member who never chose has the group's defaults (``chosen`` None)."""

    reminders: frozenset[str] | None = None  # reminder names; None: every reminder, later ones too
    plain_text: bool = False
    paused_until: dt.date | None = None  # no reminders for meetings before this day
    discreet: bool = False  # neutral From, Subject and calendar title (group.discreet)
    chosen: str | None = None  # when she saved them (UTC, ISO); None: the group's defaults


def defaults_of(schedule: Schedule) -> Preferences:
    """The preferences of a member who never chose her own: schedule.yaml's group.defaults."""
    group = schedule.group
    names = group.defaults.reminders
    return Preferences(
        reminders=None if names is None else frozenset(names),
        plain_text=group.defaults.plain_text,
        discreet=group.discreet is not None and group.discreet.default,
    )


class PreferenceBook(dict[str, Preferences]):
    """Members' preferences by lower-cased address; ``book[key]`` of a member with none is ``defaults``."""

    def __init__(self, saved: dict[str, Preferences], defaults: Preferences) -> None:
        super().__init__(saved)
        self.defaults = defaults

    def __missing__(self, key: str) -> Preferences:
        return self.defaults


def preferences_of(db: Database, schedule: Schedule) -> PreferenceBook:
    """Every member's preferences (look one up with ``book[address.lower()]``)."""
    rows = db.db.execute(
        "SELECT address, reminders, plain_text, paused_until, discreet, updated_at FROM preferences"
    )
    defaults = defaults_of(schedule)
    known = frozenset(rule.name for rule in schedule.reminders)
    return PreferenceBook({str(row[0]): _from_row(row[1:], known, defaults) for row in rows}, defaults)


def preferences_for(db: Database, address: str, schedule: Schedule) -> Preferences:
    row = db.db.execute(
        "SELECT reminders, plain_text, paused_until, discreet, updated_at FROM preferences WHERE address = ?",
        (address.lower(),),
    ).fetchone()
    defaults = defaults_of(schedule)
    return _from_row(row, frozenset(r.name for r in schedule.reminders), defaults) if row else defaults


def _from_row(row: tuple[object, ...], known: frozenset[str], defaults: Preferences) -> Preferences:
    reminders, plain_text, paused_until, discreet, updated_at = row
    names: frozenset[str] | None = None
    if reminders is not None:
        # A reminder renamed or taken out of schedule.yaml since she chose: her other choices hold;
        # if none is left, she gets what a member who never chose gets, rather than nothing.
        names = frozenset(str(n) for n in json.loads(str(reminders))) & known or defaults.reminders
    return Preferences(
        reminders=names,
        plain_text=bool(plain_text),
        paused_until=dt.date.fromisoformat(str(paused_until)) if paused_until else None,
        discreet=bool(discreet),
        chosen=str(updated_at),
    )


def save_preferences(
    db: Database, address: str, prefs: Preferences, *, schedule: Schedule, now: dt.datetime
) -> Preferences:
    """Keep her choices; every reminder of the schedule chosen is kept as "every reminder"."""
    names = prefs.reminders
    if names is not None and names >= {rule.name for rule in schedule.reminders}:
        names = None
    stored = json.dumps(sorted(names)) if names is not None else None
    paused = prefs.paused_until.isoformat() if prefs.paused_until else None
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO preferences (address, reminders, plain_text, paused_until, discreet, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET reminders = excluded.reminders,"
            " plain_text = excluded.plain_text, paused_until = excluded.paused_until,"
            " discreet = excluded.discreet, updated_at = excluded.updated_at",
            (address.lower(), stored, int(prefs.plain_text), paused, int(prefs.discreet), iso(now)),
        )
    return Preferences(names, prefs.plain_text, prefs.paused_until, prefs.discreet, iso(now))


def forget_member(db: Database, address: str) -> None:
    """Remove her answers and preferences (when she leaves the list: they are health information)."""
    with db.transaction() as conn:
        conn.execute("DELETE FROM rsvps WHERE address = ?", (address.lower(),))
        conn.execute("DELETE FROM preferences WHERE address = ?", (address.lower(),))


# --- what the calendar feed needs ------------------------------------------------------------------


def meeting_sequences(db: Database, *, since: str) -> dict[str, tuple[int, str]]:
    """Meeting key → (SEQUENCE, details JSON) last announced, for meetings from ``since`` (read only:
    ``Ledger.sequence`` raises it when a mail announces a change)."""
    rows = db.db.execute("SELECT key, sequence, details FROM meetings WHERE key >= ?", (since,))
    return {str(key): (int(sequence), str(details)) for key, sequence, details in rows}


def wants(prefs: Preferences, reminder_name: str | None, meeting_date: dt.date) -> bool:
    """Whether a member with ``prefs`` gets reminder ``reminder_name`` of the meeting on ``meeting_date``.

    ``reminder_name`` None (a change notice, which is no reminder she can choose) checks the pause only.
    """
    if prefs.paused_until is not None and meeting_date < prefs.paused_until:
        return False
    return reminder_name is None or prefs.reminders is None or reminder_name in prefs.reminders
