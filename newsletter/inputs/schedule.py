"""schedule.yaml → Schedule: validated, with the recurrence expanded into a finite, sorted meeting list.

Pure: no clock, no environment. Every mistake is collected (file, line, fix) and raised at once as
one DataError, so an organiser fixes the whole file in one go rather than one error per run.
"""

from __future__ import annotations

import datetime as dt
import pathlib
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

from dateutil.rrule import MONTHLY, rrule
from dateutil.rrule import weekday as rrule_weekday
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from newsletter.errors import DataError, FieldError, Problem
from newsletter.inputs import schedule_values as fields
from newsletter.inputs.yaml_lines import key_line, load_yaml
from newsletter.model import Group, Meeting, Organiser, ReminderRule, Schedule, Venue

__all__ = ["article_refs", "load_schedule", "parse_schedule", "read_schedule_text"]

TOP_KEYS = ("group", "reminders", "article", "meetings")
GROUP_KEYS = ("name", "mission", "timezone", "sender", "organisers", "reply_to", "website")
ORGANISER_KEYS = ("name", "email", "phone")
REMINDER_KEYS = ("name", "before", "at")
MEETINGS_KEYS = ("every", "from", "until", "dates")
RULE_KEYS = ("weekday", "week", "months", "time", "venue", "title", "details", "duration")
ENTRY_KEYS = ("date", "weekday", "cancelled", "note", "article", *RULE_KEYS[3:])
VENUE_KEYS = ("name", "address", "note")
ORGANISER_EXAMPLE = "- {name: Margaret, email: margaret@example.org}"
REMINDER_EXAMPLE = '- {name: week-before, before: 7 days, at: "09:00"}'
ENTRY_EXAMPLE = "- date: 2026-12-08"

DEFAULT_TITLE = "Support group meeting"
DEFAULT_DURATION = dt.timedelta(hours=2)
DEFAULT_REMINDERS = (
    ReminderRule("week-before", 7, dt.time(9, 0)),
    ReminderRule("day-before", 1, dt.time(9, 0)),
)
# With no `from:`/`until:` the rule still has to end somewhere: see _bounds.
FALLBACK_START = dt.date(2018, 1, 1)  # the seed's year
HORIZON_YEARS = 3


@dataclass(frozen=True)
class _Rule:
    weekday: int
    week: int
    months: tuple[int, ...]
    time: dt.time
    venue: dict[str, str] | None
    title: str
    details: str
    duration: dt.timedelta
    line: int | None


@dataclass(frozen=True)
class _Entry:
    date: dt.date
    line: int | None
    time: dt.time | None
    venue: dict[str, str] | None
    venue_line: int | None
    title: str | None
    details: str | None
    cancelled: bool
    note: str
    article: str | None
    duration: dt.timedelta | None


def read_schedule_text(path: pathlib.Path, display: str | None = None) -> str:
    """The file's text, UTF-8 with or without the BOM that Windows editors add."""
    name = display or path.name
    try:
        return path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        hint = "create it: copy schedule.yaml from the project and edit it"
        raise DataError([Problem(name, None, "file not found", hint)]) from None
    except UnicodeDecodeError as err:
        hint = "save it as UTF-8 (in Notepad: Save As → Encoding: UTF-8)"
        raise DataError([Problem(name, None, "is not UTF-8 text", hint)]) from err
    except OSError as err:
        raise DataError([Problem(name, None, f"cannot be read ({err.strerror})", "check the file")]) from err


def load_schedule(
    path: pathlib.Path, display: str | None = None, *, today: dt.date | None = None
) -> Schedule:
    """Read and validate a schedule file; ``display`` names it in messages (default: the file name)."""
    return parse_schedule(read_schedule_text(path, display), display or path.name, today=today)


def parse_schedule(text: str, path: str = "schedule.yaml", *, today: dt.date | None = None) -> Schedule:
    """Validate schedule.yaml text into a Schedule, or raise DataError listing every problem.

    ``today`` only matters for a rule with no ``from:``: its meetings then start no later than today.
    """
    data = _load(text, path)
    r = fields.Reader(path)
    if data is None:
        raise DataError([Problem(path, None, "the file is empty", "start from the sample schedule.yaml")])
    top = r.mapping(data, 1, "the file", TOP_KEYS)
    if top is None:
        raise DataError(r.problems)
    group = _group(r, top)
    reminders = _reminders(r, top)
    article = r.get(top, "article", fields.slug)
    meetings = _meetings(r, top, today)
    _check_reminders_fit(r, reminders, meetings)
    if r.problems or group is None:
        raise DataError(r.problems)
    return Schedule(group=group, reminders=reminders, article=article, meetings=tuple(meetings), path=path)


def article_refs(source: str | pathlib.Path, path: str | None = None) -> list[tuple[str, int | None]]:
    """Every article slug the schedule names, with its line: the default first, then dated entries'.

    ``source`` is the file (a Path) or its text (a str); ``path`` names it in messages. This is for the
    content check ("schedule.yaml:12: article 'x' not found"); malformed names are left out because
    parse_schedule already reports them.
    """
    if isinstance(source, pathlib.Path):
        path = path or source.name
        source = read_schedule_text(source, path)
    data = _load(source, path or "schedule.yaml")
    refs: list[tuple[str, int | None]] = []

    def take(node: Any) -> None:
        if isinstance(node, CommentedMap) and isinstance(node.get("article"), str):
            with suppress(FieldError):
                refs.append((fields.slug(node["article"], "article"), key_line(node, "article")))

    take(data)
    meetings = data.get("meetings") if isinstance(data, CommentedMap) else None
    dates = meetings.get("dates") if isinstance(meetings, CommentedMap) else None
    for entry in dates if isinstance(dates, CommentedSeq) else ():
        take(entry)
    return refs


def _load(text: str, path: str) -> Any:
    try:
        return load_yaml(text, path)
    except DataError as err:
        # ruamel stops at an impossible date (2027-02-30) and load_yaml can only point at the first
        # one; name every one, with the month's length, which is the fix.
        found = [Problem(path, line, message, hint) for line, message, hint in fields.impossible_dates(text)]
        if found and any(problem.message == "the date does not exist" for problem in err.problems):
            raise DataError(found) from err
        raise


def _group(r: fields.Reader, top: CommentedMap) -> Group | None:
    if "group" not in top:
        r.add(
            None, "there is no group: section", "add group: with name, timezone and sender (see the sample)"
        )
        return None
    node = r.mapping(top["group"], key_line(top, "group"), "group", GROUP_KEYS)
    if node is None:
        return None
    name = r.get(
        node, "name", fields.text, need="add name: under group:, like name: Women's Cancer Support Group"
    )
    mission = r.get(node, "mission", fields.text) or ""
    timezone = r.get(node, "timezone", fields.timezone, need="add timezone: America/New_York (or yours)")
    example = name or "Your Group Name"
    sender = r.get(
        node,
        "sender",
        partial(fields.mailbox, need_name=True, example_name=example),
        need=f'add sender: "{example} <news@example.org>" (the From: of every mail)',
    )
    reply_to = r.get(node, "reply_to", partial(fields.mailbox, need_name=False, example_name=example))
    website = r.get(node, "website", fields.website)
    organisers = _organisers(r, node)
    if name is None or timezone is None or sender is None:
        return None
    return Group(name, mission, timezone, sender, organisers, reply_to or "", website or "")


def _organisers(r: fields.Reader, group: CommentedMap) -> tuple[Organiser, ...]:
    found = []
    for item, line in fields.items(r, group, "organisers", ORGANISER_EXAMPLE):
        node = r.mapping(item, line, "an organiser", ORGANISER_KEYS, example=ORGANISER_EXAMPLE)
        if node is None:
            continue
        name = r.get(node, "name", fields.text, need="add name: (how members should call her)")
        email = r.get(node, "email", fields.email_address) or ""
        phone = r.get(node, "phone", fields.text) or ""
        if name:
            found.append(Organiser(name, email, phone))
    return tuple(found)


def _reminders(r: fields.Reader, top: CommentedMap) -> tuple[ReminderRule, ...]:
    if "reminders" not in top:
        return DEFAULT_REMINDERS
    if not top["reminders"]:
        hint = f"list entries like {REMINDER_EXAMPLE}, or remove reminders: to get 7 days and 1 day before"
        r.add(key_line(top, "reminders"), "reminders: lists no reminder", hint)
    found: list[ReminderRule] = []
    for item, line in fields.items(r, top, "reminders", REMINDER_EXAMPLE):
        node = r.mapping(item, line, "a reminder", REMINDER_KEYS, example=REMINDER_EXAMPLE)
        if node is None:
            continue
        name = r.get(node, "name", fields.token, need="add name: week-before (a short name without spaces)")
        days = r.get(node, "before", fields.before, need="add before: 7 days")
        at = r.get(node, "at", fields.clock, need='add at: "09:00" (the time of day it goes out)')
        if name is not None and any(rule.name == name for rule in found):
            r.add(key_line(node, "name"), f"two reminders are named '{name}'", "give each one its own name")
        elif name is not None and days is not None and at is not None:
            found.append(ReminderRule(name, days, at, line))
    return tuple(found)


def _venue(r: fields.Reader, node: CommentedMap, *, need_name: bool) -> dict[str, str] | None:
    """The fields given under ``node``'s venue:; a bare text is taken as its name."""
    value, line = node.get("venue"), key_line(node, "venue")
    if value is None:
        return None
    if isinstance(value, str):
        return {"name": value.strip()}
    venue_node = r.mapping(value, line, "venue", VENUE_KEYS)
    venue = {key: text for key in VENUE_KEYS if venue_node and (text := r.get(venue_node, key, fields.text))}
    if need_name and venue_node is not None and not r.doubtful(venue_node) and "name" not in venue:
        r.add(line, "the venue has no name", "add name: under venue:, like name: Copper River Grill")
    if venue_node is None or r.doubtful(venue_node) or (need_name and "name" not in venue):
        r.distrust(node)  # reported above; "no venue" would only repeat it
        return None
    return venue


def _meetings(r: fields.Reader, top: CommentedMap, today: dt.date | None) -> list[Meeting]:
    if "meetings" not in top:
        r.add(
            None,
            "there is no meetings: section",
            "add meetings: with an every: rule or dates: (see the sample)",
        )
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


def _rule(r: fields.Reader, value: Any, line: int | None) -> _Rule | None:
    node = r.mapping(value, line, "every:", RULE_KEYS)
    if node is None:
        return None
    day = r.get(node, "weekday", fields.weekday, need="add weekday: Tuesday")
    week = r.get(node, "week", fields.week, need="add week: 2 (the second one of the month; -1 for the last)")
    months = _months(r, node)
    time = r.get(node, "time", fields.clock, need='add time: "18:00"')
    venue = _venue(r, node, need_name=True)
    title = r.get(node, "title", fields.text) or DEFAULT_TITLE
    details = r.get(node, "details", fields.text) or ""
    length = r.get(node, "duration", fields.duration) or DEFAULT_DURATION
    if day is None or week is None or months is None or time is None or r.doubtful(node):
        return None
    return _Rule(day, week, months, time, venue, title, details, length, line)


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
        day = r.get(
            node, "date", partial(fields.day, near=near), need="add date: 2026-12-08 (year-month-day)"
        )
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
            title=r.get(node, "title", fields.text),
            details=r.get(node, "details", fields.text),
            cancelled=bool(r.get(node, "cancelled", fields.flag)),
            note=r.get(node, "note", fields.text) or "",
            article=r.get(node, "article", fields.slug),
            duration=r.get(node, "duration", fields.duration),
        )
        if day is not None and (twin := next((e for e in found if e.date == day), None)):
            r.add(line, f"{day} has two entries", f"merge them into one (the other is on line {twin.line})")
        elif day is not None and not r.doubtful(node):
            found.append(entry)
            near = day  # "December 8" further down most likely means this year or later
    return found


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
        venue = Venue(**rule.venue) if rule.venue else Venue("")
        for day in days:
            meetings[day] = Meeting(
                day, rule.time, rule.title, venue, rule.details, duration=rule.duration, line=rule.line
            )
    rule_days = set(days)
    for entry in entries:
        if rule is not None and entry.cancelled and entry.date not in rule_days:
            in_month = [day for day in days if (day.year, day.month) == (entry.date.year, entry.date.month)]
            hint = f"the meeting that month is on {in_month[0]}" if in_month else "check the date"
            r.add(
                entry.line,
                f"{entry.date} is not a meeting day of the every: rule, so nothing is cancelled",
                hint,
            )
            continue
        meeting = _entry_meeting(r, rule, entry)
        if meeting is not None:
            meetings[entry.date] = meeting
    if rule is not None and rule.venue is None:
        bare = [day for day in days if meetings[day].line == rule.line]
        if bare:
            hint = "add venue: with name and address under every: (or a venue to each dated entry)"
            r.add(rule.line, f"the meetings of every: have no venue (first on {bare[0]})", hint)
    return sorted(meetings.values(), key=lambda meeting: meeting.date)


def _entry_meeting(r: fields.Reader, rule: _Rule | None, entry: _Entry) -> Meeting | None:
    """One dated entry as a Meeting, taking what it leaves out from the rule."""
    time = entry.time if entry.time is not None else rule.time if rule else None
    if time is None:
        r.add(entry.line, f"the meeting on {entry.date} has no time", 'add time: "18:00" to this entry')
        return None
    base = rule.venue if rule and rule.venue else {}
    # A venue with its own name is a different place: nothing of the rule's venue carries over.
    venue_fields = entry.venue if entry.venue and "name" in entry.venue else {**base, **(entry.venue or {})}
    if "name" not in venue_fields and not entry.cancelled:
        hint = "add venue: with name and address to this entry (or a venue under every:)"
        r.add(entry.venue_line, f"the meeting on {entry.date} has no venue", hint)
        return None
    return Meeting(
        date=entry.date,
        time=time,
        title=entry.title or (rule.title if rule else DEFAULT_TITLE),
        venue=Venue(**venue_fields) if "name" in venue_fields else Venue(""),
        details=entry.details if entry.details is not None else (rule.details if rule else ""),
        cancelled=entry.cancelled,
        note=entry.note,
        article=entry.article,
        duration=entry.duration or (rule.duration if rule else DEFAULT_DURATION),
        line=entry.line,
    )


def _check_reminders_fit(
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
