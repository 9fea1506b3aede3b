"""Plain data that the inputs are validated into, and the states and results every layer shares."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
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


class Rsvp(StrEnum):
    """Whether a meeting's reminders ask members if they come: ``rsvp:`` in schedule.yaml."""

    OFF = "off"  # rsvp: false (or group.rsvp: false): no links
    ON = "on"  # the default: "I'll be there" / "I can't make it"
    GUESTS = "guests"  # rsvp: {guests: true}: also how many people in all (1 to 6)


@dataclass(frozen=True)
class Discreet:
    """``group.discreet``: the neutral sender name and subject of discreet mode, so a phone's lock
    screen shows nothing about the group; also the title of the meeting in a calendar."""

    sender: str = "Meeting reminder"  # the From's display name (the address stays the group's)
    subject: str = "Reminder for {date}"  # {date}: "Tuesday, December 8"
    default: bool = False  # true: every member has it unless she turns it off

    def subject_for(self, day: dt.date) -> str:
        return self.subject.replace("{date}", f"{day:%A}, {day:%B} {day.day}")

    @property
    def title(self) -> str:
        """What a calendar shows for a meeting (the .ics SUMMARY) in discreet mode."""
        return self.sender


@dataclass(frozen=True)
class MemberDefaults:
    """``group.defaults``: the preferences of a member who never chose her own."""

    reminders: tuple[str, ...] | None = None  # names from reminders:; None: every reminder
    plain_text: bool = False


@dataclass(frozen=True)
class Group:
    name: str
    mission: str
    timezone: str  # IANA name, validated
    sender: str  # "Name <address>", validated
    organisers: tuple[Organiser, ...] = ()
    reply_to: str = ""
    website: str = ""
    rsvp: bool = True  # false: no reminder asks who comes (every meeting's rsvp is then OFF)
    discreet: Discreet | None = None  # None: discreet mode uses Discreet()'s neutral words
    defaults: MemberDefaults = MemberDefaults()

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
    rsvp: Rsvp = Rsvp.ON  # already OFF when group.rsvp is false
    # Lines of the `placeholder: true` marks (an example venue still to replace) this meeting uses.
    placeholders: tuple[int, ...] = field(default=(), compare=False)

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
    # (line, what) of each `placeholder: true` mark some meeting uses, e.g. (52, 'the venue "Community
    # room"'): example values that must be replaced before members are mailed.
    placeholders: tuple[tuple[int, str], ...] = ()

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


class MailKind(StrEnum):
    """Which templates a mailing uses (``reminder.html``, ``change.html`` …)."""

    REMINDER = "reminder"
    CHANGE = "change"


class CampaignState(StrEnum):
    OPEN = "open"  # members may still be owed the mail
    DONE = "done"  # everyone reached, failed for good, or unsubscribed
    SKIPPED = "skipped"  # its window closed before any send ran
    CLOSED = "closed"  # its window closed (or it was superseded) with members not reached


class DeliveryStatus(StrEnum):
    """One (mailing, member) row of the ledger."""

    PENDING = "pending"
    SENDING = "sending"  # claimed and committed before the message goes out
    SENT = "sent"
    DEFERRED = "deferred"  # 4xx (or 552): tried again after a back-off
    FAILED = "failed"  # 5xx: the server's text is kept
    AMBIGUOUS = "ambiguous"  # the connection was lost after DATA: maybe delivered
    SUPPRESSED = "suppressed"  # unsubscribed
    REMOVED = "removed"  # taken off the list while the mailing was going out


#: States after which a member needs nothing more for that mailing.
FINAL = frozenset(
    {DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SUPPRESSED, DeliveryStatus.REMOVED}
)
#: Final states that are not a failure: nothing left to tell anyone about.
SETTLED = frozenset({DeliveryStatus.SENT, DeliveryStatus.SUPPRESSED, DeliveryStatus.REMOVED})


@dataclass(frozen=True)
class Mailing:
    """One campaign: a reminder (``rule`` set) or a change notice (``previous`` set) for one meeting."""

    meeting: Meeting
    name: str  # the reminder's name, or the notice's (change-1 …)
    kind: MailKind = MailKind.REMINDER
    rule: ReminderRule | None = None
    previous: str = ""  # a change notice: the details (JSON) its members were told before

    @property
    def id(self) -> str:
        return f"{self.meeting.key}/{self.name}"

    @classmethod
    def for_reminder(cls, meeting: Meeting, rule: ReminderRule) -> Mailing:
        return cls(meeting, rule.name, MailKind.REMINDER, rule)

    @classmethod
    def for_change(cls, meeting: Meeting, name: str, previous: str) -> Mailing:
        return cls(meeting, name, MailKind.CHANGE, None, previous)


@dataclass
class Report:
    """What one send run did to one mailing."""

    campaign: str
    counts: Counter[str] = field(default_factory=Counter)  # this run's outcomes, by DeliveryStatus
    total: int = 0  # members in the list for this mailing
    excluded: list[str] = field(default_factory=list)  # rows of the list left out, as file:line problems

    @property
    def problems(self) -> int:
        return (
            self.counts[DeliveryStatus.DEFERRED]
            + self.counts[DeliveryStatus.FAILED]
            + self.counts[DeliveryStatus.AMBIGUOUS]
        )


#: What a member was told that matters: an edit elsewhere (article, wording, a title) sends nothing.
COMPARED = ("time", "venue", "address", "venue_note", "cancelled")


def snapshot(meeting: Meeting) -> str:
    """The details a message about ``meeting`` carries, as canonical JSON (stored in the ledger)."""
    return json.dumps(
        {
            "date": meeting.key,
            "time": meeting.time.strftime("%H:%M"),
            "title": meeting.title,
            "venue": meeting.venue.name,
            "address": meeting.venue.address,
            "venue_note": meeting.venue.note,
            "cancelled": meeting.cancelled,
            "minutes": int(meeting.duration.total_seconds() // 60),
        },
        sort_keys=True,
        ensure_ascii=False,
    )


def same(told: str, current: str) -> bool:
    a, b = json.loads(told), json.loads(current)
    return all(a.get(k) == b.get(k) for k in COMPARED)


def rebuild(details: str) -> Meeting:
    """The meeting as a member was told it (for a meeting that has vanished from the schedule)."""
    d = json.loads(details)
    return Meeting(
        date=dt.date.fromisoformat(d["date"]),
        time=dt.time.fromisoformat(d["time"]),
        title=d["title"],
        venue=Venue(d["venue"], d["address"], d["venue_note"]),
        cancelled=bool(d["cancelled"]),
        duration=dt.timedelta(minutes=int(d.get("minutes", 120))),
    )
