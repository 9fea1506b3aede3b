"""Plain data that the inputs are validated into; everything downstream works on these."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Venue:
    name: str
    address: str = ""
    note: str = ""  # e.g. "We have a private room reserved."

    @property
    def map_url(self) -> str:
        """A map search link that works on phones and desktops alike, with no API key."""
        query = ", ".join(part for part in (self.name, self.address) if part)
        return f"https://www.google.com/maps/search/?api=1&query={quote_plus(query)}" if query else ""


@dataclass(frozen=True)
class Organiser:
    name: str
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Group:
    name: str
    mission: str
    timezone: str  # IANA name, validated
    sender: str  # "Name <address>", validated
    organisers: tuple[Organiser, ...] = ()
    reply_to: str = ""
    website: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class ReminderRule:
    """One entry of `reminders:`: send `before` ahead of each meeting, at local time `at`."""

    name: str
    days_before: int
    at: dt.time
    line: int | None = None


@dataclass(frozen=True)
class Meeting:
    """One occurrence: produced by the rule, overridden or added by a dated entry, maybe cancelled."""

    date: dt.date
    time: dt.time
    title: str
    venue: Venue
    details: str = ""
    cancelled: bool = False
    note: str = ""  # shown with the meeting (e.g. why it is cancelled)
    article: str | None = None  # slug; None means the schedule's default article
    duration: dt.timedelta = dt.timedelta(hours=2)
    line: int | None = None  # where it comes from in schedule.yaml (rule or dated entry)

    @property
    def key(self) -> str:
        """Stable identity of the meeting: its date (one meeting per day)."""
        return self.date.isoformat()

    def start(self, tz: ZoneInfo) -> dt.datetime:
        return dt.datetime.combine(self.date, self.time, tzinfo=tz)


@dataclass(frozen=True)
class Schedule:
    group: Group
    reminders: tuple[ReminderRule, ...]
    article: str | None  # default featured article slug
    meetings: tuple[Meeting, ...]  # sorted by date, cancelled ones included
    path: str = "schedule.yaml"

    def meeting_on(self, day: dt.date) -> Meeting | None:
        return next((m for m in self.meetings if m.date == day), None)

    def reminder(self, name: str) -> ReminderRule | None:
        return next((r for r in self.reminders if r.name == name), None)


@dataclass(frozen=True)
class Subscriber:
    email: str  # normalised by the validator; compare with `key`
    name: str = ""
    fields: dict[str, str] = field(default_factory=dict, compare=False, hash=False)  # all columns
    line: int | None = None

    @property
    def key(self) -> str:
        return self.email.lower()


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    author: str
    date: dt.date | None
    url: str  # where the whole article is
    body_markdown: str
    path: str = ""
