"""The `.ics` invitation attached to every mail: one stable UID per meeting, so updates replace it."""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from newsletter.model import Meeting, Schedule


def meeting_uid(meeting: Meeting, domain: str) -> str:
    return f"meeting-{meeting.key}@{domain}"


def invitation(
    schedule: Schedule,
    meeting: Meeting,
    *,
    domain: str,
    stamp: dt.datetime,
    sequence: int = 0,
    cancel: bool = False,
    organizer: str = "",
    summary: str | None = None,
) -> bytes:
    """An iCalendar file for one meeting (METHOD:PUBLISH, or CANCEL when it was called off);
    ``summary`` replaces the title a calendar shows (discreet mode's neutral one)."""
    title = summary if summary is not None else f"{schedule.group.name}: {meeting.title}"
    return _invitation(schedule.group.tz, meeting, domain, stamp, sequence, cancel, organizer, title)


@functools.lru_cache(maxsize=32)
def _invitation(
    tz: ZoneInfo,
    meeting: Meeting,
    domain: str,
    stamp: dt.datetime,
    sequence: int,
    cancel: bool,
    organizer: str,
    summary: str,
) -> bytes:
    # By value: a mailing's reminders before the same meeting, at the same moment, share one file.
    import icalendar  # ~30 ms to import: only when an invitation is really built (not by `check`)

    cal = icalendar.Calendar()
    cal.add("prodid", "-//newsletter//meeting reminders//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if cancel else "PUBLISH")
    event = icalendar.Event()
    event.add("uid", meeting_uid(meeting, domain))
    event.add("sequence", sequence)
    if organizer:  # calendar programs accept an update or cancellation only from the organizer
        event.add("organizer", f"mailto:{organizer}")
    event.add("dtstamp", stamp.astimezone(dt.UTC))
    start = meeting.start(tz)
    event.add("dtstart", start)
    event.add("dtend", start + meeting.duration)
    event.add("summary", summary)
    location = ", ".join(p for p in (meeting.venue.name, meeting.venue.address) if p)
    if location:
        event.add("location", location)
    description = "\n\n".join(p for p in (meeting.details, meeting.venue.note, meeting.note) if p)
    if description:
        event.add("description", description)
    event.add("status", "CANCELLED" if cancel or meeting.cancelled else "CONFIRMED")
    cal.add_component(event)
    # A VTIMEZONE for the meeting's year only: the full 1970–2038 table would add kilobytes per mail.
    cal.add_missing_timezones(
        first_date=dt.date(meeting.date.year - 1, 1, 1), last_date=dt.date(meeting.date.year + 1, 12, 31)
    )
    return bytes(cal.to_ical())
