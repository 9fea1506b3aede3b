"""When reminders fall due: pure functions of the schedule and `now` (the clock is passed in)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from newsletter.model import Mailing, Meeting, Schedule


def local_instant(day: dt.date, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    """The one instant a local wall-clock time means, even across DST changes.

    A time skipped in spring (02:30 on the change day) is taken as the instant the clock jumps past
    it; a time repeated in autumn is taken at its first occurrence (fold=0). Either way: exactly one.
    """
    # fold=0 reads a skipped time with the offset before the change (02:30 EST = 03:30 EDT) and a
    # repeated one as its first occurrence; the round trip through UTC makes it a real local time.
    return dt.datetime.combine(day, at, tzinfo=tz).astimezone(dt.UTC).astimezone(tz)


class Window(StrEnum):
    """Where a reminder stands at a moment: before its due time, sendable, or too late."""

    UPCOMING = "upcoming"
    DUE = "due"
    CLOSED = "closed"


@dataclass(frozen=True)
class Due:
    """One reminder of one meeting with the window in which it may be sent."""

    mailing: Mailing
    at: dt.datetime  # when it falls due (aware)
    until: dt.datetime  # the next reminder's due time or the meeting's start, whichever is first

    @property
    def id(self) -> str:
        return self.mailing.id

    def state(self, now: dt.datetime) -> Window:
        if now < self.at:
            return Window.UPCOMING
        return Window.DUE if now < self.until else Window.CLOSED


def reminders_for(schedule: Schedule, meeting: Meeting) -> list[Due]:
    """The meeting's reminders in due order, each open until the next one or the meeting starts."""
    tz = schedule.group.tz
    start = meeting.start(tz)
    times = sorted(
        (
            (local_instant(meeting.date - dt.timedelta(days=r.days_before), r.at, tz), r)
            for r in schedule.reminders
        ),
        key=lambda pair: pair[0],
    )
    out = []
    for i, (at, rule) in enumerate(times):
        until = min([start, *(t for t, _ in times[i + 1 :] if t > at)])
        if at < start:
            out.append(Due(Mailing.for_reminder(meeting, rule), at, until))
    return out


def plan(schedule: Schedule) -> list[Due]:
    """Every reminder of every meeting that is not cancelled, in due order."""
    dues = [d for m in schedule.meetings if not m.cancelled for d in reminders_for(schedule, m)]
    return sorted(dues, key=lambda d: (d.at, d.id))


def due_now(schedule: Schedule, now: dt.datetime) -> list[Due]:
    return [d for d in plan(schedule) if d.state(now) == Window.DUE]


def next_mailing(schedule: Schedule, now: dt.datetime) -> Due | None:
    """`send`'s default: the next meeting's reminder that is due now, or else its next one to come."""
    tz = schedule.group.tz
    upcoming = [m for m in schedule.meetings if not m.cancelled and m.start(tz) > now]
    if not upcoming:
        return None
    dues = reminders_for(schedule, upcoming[0])
    current = [d for d in dues if d.state(now) == Window.DUE]
    later = [d for d in dues if d.state(now) == Window.UPCOMING]
    found = current or later
    return found[0] if found else None


def find(schedule: Schedule, meeting: dt.date | None, reminder: str | None, now: dt.datetime) -> Due | None:
    if meeting is None and reminder is None:
        return next_mailing(schedule, now)
    tz = schedule.group.tz
    candidates = [
        m
        for m in schedule.meetings
        if not m.cancelled and (m.date == meeting if meeting else m.start(tz) > now)
    ]
    for m in candidates[:1]:
        for d in reminders_for(schedule, m):
            if reminder is None or d.mailing.name == reminder:
                if reminder is None and d.state(now) == Window.CLOSED:
                    continue
                return d
    return None
