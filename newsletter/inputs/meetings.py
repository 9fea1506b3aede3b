"""The meetings: section of schedule.yaml → a finite, sorted list of Meetings.

The ``every:`` rule is expanded between its bounds, then each dated entry overrides, adds or cancels
one occurrence. Problems go to the schedule's Reader; nothing here reads files.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from functools import partial
from typing import Any

from dateutil.rrule import MONTHLY, rrule
from dateutil.rrule import weekday as rrule_weekday
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from newsletter.errors import FieldError
from newsletter.inputs import schedule_values as fields
from newsletter.inputs.yaml_lines import key_line
from newsletter.model import Meeting, ReminderRule, Rsvp, Venue

MEETINGS_KEYS = ("every", "from", "until", "dates")
RULE_KEYS = ("weekday", "week", "months", "time", "venue", "title", "details", "duration", "rsvp")
ENTRY_KEYS = ("date", "weekday", "cancelled", "note", "article", *RULE_KEYS[3:])
VENUE_KEYS = ("name", "address", "note", "placeholder")
ENTRY_EXAMPLE = "- date: 2026-12-08"

DEFAULT_TITLE = "Support group meeting"
DEFAULT_DURATION = dt.timedelta(hours=2)
#: The start of a cancelled dated entry that says no time, when no other meeting gives one either.
DEFAULT_TIME = dt.time(0, 0)
# With no `from:`/`until:` the rule still has to end somewhere: see _bounds.
FALLBACK_START = dt.date(2018, 1, 1)  # the seed's year
HORIZON_YEARS = 3


@dataclass(frozen=True)
class _Place:
    """A venue: as written, and the line of its ``placeholder: true`` when it is an example to replace."""

    fields: dict[str, str]
    placeholder: int | None = None


@dataclass(frozen=True)
class _Rule:
    weekday: int
    week: int
    months: tuple[int, ...]
    time: dt.time
    venue: _Place | None
    title: str
    details: str
    duration: dt.timedelta
    line: int | None
    rsvp: Rsvp = Rsvp.ON


@dataclass(frozen=True)
class _Entry:
    date: dt.date
    line: int | None
    time: dt.time | None
    venue: _Place | None
    venue_line: int | None
    title: str | None
    details: str | None
    cancelled: bool
    note: str
    article: str | None
    duration: dt.timedelta | None
    rsvp: Rsvp | None = None  # None: as the rule says (else on)


def read_meetings(r: fields.Reader, top: CommentedMap, today: dt.date | None) -> list[Meeting]:
    """The meetings: section, expanded and merged, sorted by date (cancelled meetings included)."""
    if "meetings" not in top:
        hint = "add meetings: with an every: rule or dates: (see the sample)"
        r.add(None, "there is no meetings: section", hint)
        return []
    node = r.mapping(top["meetings"], key_line(top, "meetings"), "meetings", MEETINGS_KEYS)
    if node is None:
        return []
    start, until = r.get(node, "from", fields.day), r.get(node, "until", fields.day)
    if start and until and start > until:
        r.add(key_line(node, "from"), f"from {start} is after until {until}", "swap them, or fix the year")
    for key in ("from", "until"):
        if key in node and "every" not in node:
            hint = "remove it, or add an every: rule (dated entries need no bounds)"
            r.add(key_line(node, key), f"{key}: bounds the every: rule, but there is none", hint)
    rule = _rule(r, node["every"], key_line(node, "every")) if "every" in node else None
    entries = _entries(r, node, near=start)
    if "every" in node and rule is None:
        return []  # the rule is broken and already reported; merging would only add echoes of it
    first, last = _bounds(start, until, entries, today)
    days = _occurrences(rule, first, last) if rule else []
    return _merge(r, rule, days, entries)


def venue_addresses(top: Any) -> list[str]:
    """Every venue address written in the file, as text, for hints that need to know where the group is."""
    meetings = top.get("meetings") if isinstance(top, CommentedMap) else None
    if not isinstance(meetings, CommentedMap):
        return []
    dates = meetings.get("dates")
    holders = [meetings.get("every"), *(dates if isinstance(dates, CommentedSeq) else ())]
    venues = [holder.get("venue") for holder in holders if isinstance(holder, CommentedMap)]
    return [v["address"] for v in venues if isinstance(v, CommentedMap) and isinstance(v.get("address"), str)]


def _venue(r: fields.Reader, node: CommentedMap, *, need_name: bool) -> _Place | None:
    """The fields given under ``node``'s venue:; a bare text is taken as its name."""
    value, line = node.get("venue"), key_line(node, "venue")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return _Place({"name": fields.header_text(value, "venue")})
        except FieldError as err:
            r.add(line, err.message, err.hint)
            r.distrust(node)
            return None
    venue_node = r.mapping(value, line, "venue", VENUE_KEYS)
    if venue_node is None:
        r.distrust(node)  # reported already; "no venue" would only repeat it
        return None
    reported = len(r.problems)
    parsers = {"name": fields.header_text, "address": fields.text, "note": fields.text}
    venue = {key: text for key, parse in parsers.items() if (text := r.get(venue_node, key, parse))}
    marked = r.get(venue_node, "placeholder", fields.flag)
    broken = r.doubtful(venue_node) or len(r.problems) > reported
    if need_name and not broken and "name" not in venue:
        r.add(line, "the venue has no name", "add name: under venue:, like name: Copper River Grill")
    if broken or (need_name and "name" not in venue):
        r.distrust(node)
        return None
    return _Place(venue, key_line(venue_node, "placeholder") if marked else None)


def _rule(r: fields.Reader, value: Any, line: int | None) -> _Rule | None:
    node = r.mapping(value, line, "every:", RULE_KEYS)
    if node is None:
        return None
    day = r.get(node, "weekday", fields.weekday, need="add weekday: Tuesday")
    week = r.get(node, "week", fields.week, need="add week: 2 (the second one of the month; -1 for the last)")
    months = _months(r, node)
    time = r.get(node, "time", fields.clock, need='add time: "18:00"')
    venue = _venue(r, node, need_name=True)
    title = r.get(node, "title", fields.header_text) or DEFAULT_TITLE
    details = r.get(node, "details", fields.text) or ""
    length = r.get(node, "duration", fields.duration) or DEFAULT_DURATION
    asks = r.get(node, "rsvp", fields.rsvp) or Rsvp.ON
    if day is None or week is None or months is None or time is None or r.doubtful(node):
        return None
    return _Rule(day, week, months, time, venue, title, details, length, line, asks)


def _months(r: fields.Reader, node: CommentedMap) -> tuple[int, ...] | None:
    """The rule's months; every month when the key is left out."""
    value = node.get("months")
    if value is None:
        return tuple(range(1, 13))
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        hint = "write them like [February, April, June]"
        r.add(key_line(node, "months"), f"months {fields.show(value)} is not a list of months", hint)
        return None
    found: set[int] = set()
    complete = True
    for index, item in enumerate(items):
        try:
            found.add(fields.month(item))
        except FieldError as err:
            line = key_line(items, index) if isinstance(items, CommentedSeq) else key_line(node, "months")
            r.add(line, err.message, err.hint)
            complete = False
    return tuple(sorted(found)) if complete else None


def _entries(r: fields.Reader, meetings: CommentedMap, *, near: dt.date | None) -> list[_Entry]:
    found: list[_Entry] = []
    for item, line in fields.items(r, meetings, "dates", ENTRY_EXAMPLE):
        node = r.mapping(item, line, "a dated entry", ENTRY_KEYS, example=ENTRY_EXAMPLE)
        if node is None:
            continue
        entry = _entry(r, node, line, near)
        if entry is None:
            continue
        if twin := next((e for e in found if e.date == entry.date), None):
            hint = f"merge them into one (the other is on line {twin.line})"
            r.add(line, f"{entry.date} has two entries", hint)
        elif not r.doubtful(node):
            found.append(entry)
            near = entry.date  # "December 8" further down most likely means this year or later
    return found


def _entry(r: fields.Reader, node: CommentedMap, line: int | None, near: dt.date | None) -> _Entry | None:
    """One dated entry as written (None without a usable date; its problems are reported)."""
    day = r.get(node, "date", partial(fields.day, near=near), need="add date: 2026-12-08 (year-month-day)")
    wanted = r.get(node, "weekday", fields.weekday)
    if day is not None and wanted is not None and day.weekday() != wanted:
        actual, name = fields.WEEKDAYS[day.weekday()], fields.WEEKDAYS[wanted]
        same_week = day + dt.timedelta(days=wanted - day.weekday())
        hint = f"check the date: the {name} of that week is {same_week}"
        r.add(key_line(node, "date"), f"{day} is a {actual}, but weekday: says {name}", hint)
    entry = _Entry(
        date=day or dt.date.min,
        line=line,
        time=r.get(node, "time", fields.clock),
        venue=_venue(r, node, need_name=False),
        venue_line=key_line(node, "venue") if "venue" in node else line,
        title=r.get(node, "title", fields.header_text),
        details=r.get(node, "details", fields.text),
        cancelled=bool(r.get(node, "cancelled", fields.flag)),
        note=r.get(node, "note", fields.text) or "",
        article=r.get(node, "article", fields.slug),
        duration=r.get(node, "duration", fields.duration),
        rsvp=r.get(node, "rsvp", fields.rsvp),
    )
    return entry if day is not None else None


def _bounds(
    start: dt.date | None, until: dt.date | None, entries: list[_Entry], today: dt.date | None
) -> tuple[dt.date, dt.date]:
    """Where the rule's meetings start and stop: `from`/`until`, else a finite horizon.

    No `from`: the earliest dated entry or `today`, whichever is first (else 3 years before `until`,
    else 2018-01-01). No `until`: the end of the third year after the latest of those dates.
    """
    known = [entry.date for entry in entries] + ([today] if today else [])
    if start is None:
        start = (
            min(known) if known else dt.date(until.year - HORIZON_YEARS, 1, 1) if until else FALLBACK_START
        )
    if until is None:
        until = dt.date(max([start, *known]).year + HORIZON_YEARS, 12, 31)
    return start, until


def _occurrences(rule: _Rule, first: dt.date, last: dt.date) -> list[dt.date]:
    recurrence = rrule(
        MONTHLY,
        dtstart=dt.datetime.combine(first, dt.time()),
        until=dt.datetime.combine(last, dt.time()),
        byweekday=rrule_weekday(rule.weekday, rule.week),
        bymonth=rule.months,
    )
    return [moment.date() for moment in recurrence]


def _merge(r: fields.Reader, rule: _Rule | None, days: list[dt.date], entries: list[_Entry]) -> list[Meeting]:
    """The rule's meetings with the dated entries laid over them (override, add or cancel)."""
    meetings: dict[dt.date, Meeting] = {}
    if rule is not None:
        venue = Venue(**rule.venue.fields) if rule.venue else Venue("")
        marks = _marks(rule.venue)
        for day in days:
            meetings[day] = Meeting(
                day,
                rule.time,
                rule.title,
                venue,
                rule.details,
                duration=rule.duration,
                line=rule.line,
                rsvp=rule.rsvp,
                placeholders=marks,
            )
    rule_days = set(days)
    # A cancelled entry that says no time is placed at the usual time of the others (what a notice
    # of its cancellation shows); there is no member mail about it otherwise.
    usual = Counter(e.time for e in entries if e.time is not None and not e.cancelled).most_common(1)
    for entry in entries:
        if rule is not None and entry.cancelled and entry.date not in rule_days:
            in_month = [day for day in days if (day.year, day.month) == (entry.date.year, entry.date.month)]
            hint = f"the meeting that month is on {in_month[0]}" if in_month else "check the date"
            message = f"{entry.date} is not a meeting day of the every: rule, so nothing is cancelled"
            r.add(entry.line, message, hint)
            continue
        meeting = _entry_meeting(r, rule, entry, usual[0][0] if usual else DEFAULT_TIME)
        if meeting is not None:
            meetings[entry.date] = meeting
    if rule is not None and rule.venue is None:
        bare = [day for day in days if meetings[day].line == rule.line]
        if bare:
            hint = "add venue: with name and address under every: (or a venue to each dated entry)"
            r.add(rule.line, f"the meetings of every: have no venue (first on {bare[0]})", hint)
    return sorted(meetings.values(), key=lambda meeting: meeting.date)


def _entry_meeting(r: fields.Reader, rule: _Rule | None, entry: _Entry, usual: dt.time) -> Meeting | None:
    """One dated entry as a Meeting, taking what it leaves out from the rule."""
    time = entry.time if entry.time is not None else rule.time if rule else None
    if time is None and not entry.cancelled:
        r.add(entry.line, f"the meeting on {entry.date} has no time", 'add time: "18:00" to this entry')
        return None
    place = _place_for(rule, entry)
    if "name" not in place.fields and not entry.cancelled:
        hint = "add venue: with name and address to this entry (or a venue under every:)"
        r.add(entry.venue_line, f"the meeting on {entry.date} has no venue", hint)
        return None
    return Meeting(
        date=entry.date,
        time=time if time is not None else usual,
        title=entry.title or (rule.title if rule else DEFAULT_TITLE),
        venue=Venue(**place.fields) if "name" in place.fields else Venue(""),
        details=entry.details if entry.details is not None else (rule.details if rule else ""),
        cancelled=entry.cancelled,
        note=entry.note,
        article=entry.article,
        duration=entry.duration or (rule.duration if rule else DEFAULT_DURATION),
        line=entry.line,
        rsvp=entry.rsvp or (rule.rsvp if rule else Rsvp.ON),
        placeholders=_marks(place),
    )


def _place_for(rule: _Rule | None, entry: _Entry) -> _Place:
    """The entry's venue, completed from the rule's; a venue with its own name is a different place,
    and nothing of the rule's venue carries over to it."""
    base = rule.venue if rule and rule.venue else _Place({})
    if entry.venue is None:
        return base
    if "name" in entry.venue.fields:
        return entry.venue
    return _Place({**base.fields, **entry.venue.fields}, entry.venue.placeholder or base.placeholder)


def _marks(place: _Place | None) -> tuple[int, ...]:
    return (place.placeholder,) if place is not None and place.placeholder is not None else ()


def placeholders(meetings: list[Meeting]) -> tuple[tuple[int, str], ...]:
    """(line, what) of every example value marked ``placeholder: true`` that some meeting uses."""
    found = {line: f'the venue "{m.venue.name}"' for m in meetings for line in m.placeholders}
    return tuple(sorted(found.items()))


def check_reminders_fit(
    r: fields.Reader, reminders: tuple[ReminderRule, ...], meetings: list[Meeting]
) -> None:
    """A same-day reminder must go out before the meeting starts, or it reminds nobody."""
    for reminder in reminders:
        late = [
            m for m in meetings if reminder.days_before == 0 and not m.cancelled and reminder.at >= m.time
        ]
        if late:
            first = late[0]
            message = (
                f"reminder '{reminder.name}' goes out at {reminder.at:%H:%M} on the day of the meeting,"
                f" after it starts ({first.date} at {first.time:%H:%M})"
            )
            hint = f'make at: earlier than "{first.time:%H:%M}", or write before: 1 day'
            r.add(reminder.line, message, hint)
