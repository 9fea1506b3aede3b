"""When reminders fall due: pure functions of the schedule and `now` (the clock is passed in)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from newsletter.model import Mailing, Meeting, Schedule

#: How far ahead "upcoming" looks: a year, so the mail's list of later dates is the rest of the year.
HORIZON = dt.timedelta(days=366)


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


def next_due(schedule: Schedule, now: dt.datetime) -> Due | None:
    """The reminder open now, or else the next one to come (what a try-out writes to the outbox)."""
    return next((d for d in plan(schedule) if d.state(now) != Window.CLOSED), None)


def upcoming(schedule: Schedule, now: dt.datetime) -> list[Meeting]:
    """The one meaning of "upcoming", shared by `check`, `upcoming` and the mail's list of later dates:
    meetings not yet started and less than a year away, cancelled ones included."""
    tz = schedule.group.tz
    last = now.astimezone(tz).date() + HORIZON
    return [m for m in schedule.meetings if m.start(tz) > now and m.date <= last]


def find(schedule: Schedule, meeting: dt.date | None, reminder: str | None, now: dt.datetime) -> Due | None:
    """A reminder asked for by name and/or meeting date: by default the next meeting, and its first
    reminder still open or to come (else its first one). Any meeting in the schedule, past or future."""
    tz = schedule.group.tz
    if meeting is not None:
        found = schedule.meeting_on(meeting)
    else:
        found = next((m for m in schedule.meetings if not m.cancelled and m.start(tz) > now), None)
    if found is None:
        return None
    dues = reminders_for(schedule, found)
    if reminder is not None:
        return next((d for d in dues if d.mailing.name == reminder), None)
    return next((d for d in dues if d.state(now) != Window.CLOSED), dues[0] if dues else None)


def quiet_until(schedule: Schedule, now: dt.datetime, *, longest: dt.timedelta) -> dt.datetime:
    """The first moment after ``now`` at which a tick, with the files and the ledger unchanged, could
    act differently: a reminder's window opens or closes, a meeting starts, the group's date changes
    — or ``longest`` from now, whichever comes first."""
    tz = schedule.group.tz
    tomorrow = local_instant(now.astimezone(tz).date() + dt.timedelta(days=1), dt.time(0), tz)
    moments = [now + longest, tomorrow]
    moments += [m.start(tz) for m in schedule.meetings]
    for due in plan(schedule):
        moments += [due.at, due.until]
    return min(m for m in moments if m > now)
