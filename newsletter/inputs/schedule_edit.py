"""Edit ``schedule.yaml`` for the organisers' console: one meeting, or the regular rule.

The file is the organisers' own: it is rewritten with ruamel's round trip, so its comments, key order,
quoting and layout stay as they were (the indentation is found by trying the usual ones until the
unchanged file comes back byte for byte).  Only the keys whose value really changes are touched.
An edit is validated with the very reader `newsletter check` uses (same messages, file:line) before
anything is written; it is written atomically, under a lock, and only if the file is still the one
the organiser started from (else ``ScheduleChanged``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken

from newsletter.errors import DataError, EditBusy, FieldError, NewsletterError, Problem
from newsletter.inputs import schedule_values as fields
from newsletter.inputs.meetings import ENTRY_KEYS
from newsletter.inputs.members_io import LOCK_WAIT, atomic_write
from newsletter.inputs.schedule import article_refs, parse_schedule, read_schedule_text
from newsletter.model import Meeting, Schedule, Venue

#: Whether this version of the schedule reader knows `rsvp:` on a dated entry.
RSVP_SUPPORTED = "rsvp" in ENTRY_KEYS
#: (mapping, sequence, offset) indentations tried, the sample's first.
_INDENTS = ((2, 4, 2), (2, 2, 0), (4, 4, 2), (4, 6, 4), (4, 4, 0), (2, 3, 1))


class ScheduleChanged(NewsletterError):
    """schedule.yaml was saved by someone else since the organiser opened the page."""


def version(text: str) -> str:
    """A short fingerprint of the file's text: forms carry it, a write checks it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class MeetingEdit:
    """One meeting as the organiser wants it (the form's fields)."""

    date: dt.date
    time: dt.time
    title: str
    venue: Venue
    details: str = ""
    cancelled: bool = False
    note: str = ""
    rsvp: str | None = None  # "on", "off" or "guests" (Rsvp); None: leave as it is


@dataclass(frozen=True)
class RuleEdit:
    """The regular meeting (``meetings.every``) and its bounds."""

    weekday: int  # Monday = 0
    week: int  # 1..5, -1 for the last
    months: tuple[int, ...]
    time: dt.time
    venue_name: str
    venue_address: str
    start: dt.date | None
    until: dt.date | None


# --- the document ----------------------------------------------------------------------------------


class Document:
    """schedule.yaml loaded for a round trip; ``dump`` gives it back, edits included."""

    def __init__(self, text: str) -> None:
        self.original = text
        self.yaml = _round_trip_yaml(text)
        self.data = self.yaml.load(text)
        if not isinstance(self.data, CommentedMap):
            raise DataError(
                [Problem("schedule.yaml", 1, "is not a mapping of keys", "start from the sample")]
            )

    def dump(self) -> str:
        out = io.StringIO()
        self.yaml.dump(self.data, out)
        return out.getvalue()

    def meetings(self) -> CommentedMap:
        node = self.data.get("meetings")
        if not isinstance(node, CommentedMap):
            node = CommentedMap()
            self.data["meetings"] = node
        return node

    def dates(self) -> CommentedSeq:
        meetings = self.meetings()
        node = meetings.get("dates")
        if not isinstance(node, CommentedSeq):
            node = CommentedSeq()
            meetings["dates"] = node
        return node

    def entry(self, day: dt.date) -> CommentedMap | None:
        for item in self.dates():
            if isinstance(item, CommentedMap):
                with suppress(FieldError):
                    if fields.day(item.get("date"), "date") == day:
                        return item
        return None


def _round_trip_yaml(text: str) -> YAML:
    """A round-trip YAML whose indentation reproduces ``text`` unchanged (else the sample's)."""
    chosen = None
    for mapping, sequence, offset in _INDENTS:
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        yaml.width = 4096  # never re-wrap a long line
        yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
        chosen = chosen or yaml
        try:
            out = io.StringIO()
            yaml.dump(yaml.load(text), out)
        except Exception:  # the reader reports the file's own mistakes; here: try the next layout
            continue
        if out.getvalue() == text:
            return yaml
    assert chosen is not None
    return chosen


# --- one meeting -----------------------------------------------------------------------------------


def edit_meeting(text: str, current: Meeting, edit: MeetingEdit) -> str:
    """The file with the meeting ``current`` (as the schedule has it now) changed to ``edit``.

    A meeting of the regular rule gets a dated entry holding only what differs; an entry is changed
    in place.  A new date moves the entry; the rule's meeting left on the old date is then cancelled
    with a note saying where it went (done after validation, see ``cancel_if_still_there``).
    """
    doc = Document(text)
    entry = doc.entry(current.date)
    if entry is None:
        entry = CommentedMap()
        entry["date"] = current.date
        doc.dates().append(entry)
    if edit.date != current.date:
        if doc.entry(edit.date) is not None:
            raise DataError([Problem("schedule.yaml", None, f"{edit.date} has a meeting already",
                                     "change that meeting instead, or pick another date")])  # fmt: skip
        entry["date"] = edit.date
        if "weekday" in entry:
            entry["weekday"] = fields.WEEKDAYS[edit.date.weekday()]
    _set_meeting_fields(entry, current, edit)
    return doc.dump()


def _set_meeting_fields(entry: CommentedMap, current: Meeting, edit: MeetingEdit) -> None:
    if edit.title != current.title:
        entry["title"] = edit.title
    if edit.time != current.time or (edit.date != current.date and "time" not in entry):
        entry["time"] = DoubleQuotedScalarString(edit.time.strftime("%H:%M"))
    if edit.venue != current.venue:
        _set_venue(entry, edit.venue)
    if edit.details != current.details:
        _set_text(entry, "details", edit.details)
    if edit.cancelled != current.cancelled:
        if edit.cancelled:
            entry["cancelled"] = True
        else:
            drop(entry, "cancelled")
    if edit.note != current.note:
        _set_text(entry, "note", edit.note)
    if edit.rsvp is not None and RSVP_SUPPORTED and edit.rsvp != str(current.rsvp):
        if edit.rsvp == "guests":
            ask = CommentedMap(guests=True)
            ask.fa.set_flow_style()
            entry["rsvp"] = ask
        else:
            entry["rsvp"] = edit.rsvp == "on"


def _set_text(node: CommentedMap, key: str, value: str) -> None:
    if value:
        node[key] = value
    else:
        drop(node, key)


def drop(node: CommentedMap, key: str) -> None:
    """Remove ``key``; the comment lines that followed its line stay (moved to the key before it)."""
    if key not in node:
        return
    keys = list(node.keys())
    before = keys[keys.index(key) - 1] if keys.index(key) > 0 else None
    token = node.ca.items.pop(key, [None, None, None, None])
    del node[key]
    comment = token[2] if len(token) > 2 else None
    if comment is None:
        return
    rest = comment.value.partition("\n")[2]  # the removed line's own end-of-line comment goes with it
    if not rest.strip() or before is None or isinstance(node[before], (CommentedMap, CommentedSeq)):
        return
    slots = node.ca.items.setdefault(before, [None, None, None, None])
    if slots[2] is None:
        slots[2] = CommentToken("\n" + rest, CommentMark(0), None)


def _set_venue(node: CommentedMap, venue: Venue) -> None:
    """Write the venue in place (a venue mapping keeps its style); empty parts are left out."""
    wanted = {"name": venue.name, "address": venue.address, "note": venue.note}
    old = node.get("venue")
    if not isinstance(old, CommentedMap):
        old = CommentedMap()
        node["venue"] = old
    changed = False
    for key, value in wanted.items():
        if (old.get(key) or "") != value:
            changed = True
            _set_text(old, key, value)
    if changed:
        drop(old, "placeholder")  # the organiser wrote the real place: the example mark goes


def cancel_if_still_there(text: str, schedule: Schedule, old: dt.date, new: dt.date) -> str:
    """After a move: if the regular rule still makes a meeting on ``old``, cancel it with a note."""
    meeting = schedule.meeting_on(old)
    if old == new or meeting is None or meeting.cancelled:
        return text
    doc = Document(text)
    entry = CommentedMap()
    entry["date"] = old
    entry["cancelled"] = True
    entry["note"] = f"Moved to {new:%A, %B} {new.day}."
    doc.dates().append(entry)
    return doc.dump()


# --- the regular rule ------------------------------------------------------------------------------


def edit_rule(text: str, edit: RuleEdit) -> str:
    """The file with ``meetings.every`` and ``from``/``until`` set to ``edit`` (lists keep their style)."""
    doc = Document(text)
    meetings = doc.meetings()
    every = meetings.get("every")
    if not isinstance(every, CommentedMap):
        every = CommentedMap()
        meetings.insert(0, "every", every)
    _set_if_changed(every, "weekday", fields.WEEKDAYS[edit.weekday], fields.weekday)
    _set_if_changed(every, "week", edit.week, fields.week)
    _set_months(every, edit.months)
    _set_if_changed(every, "time", DoubleQuotedScalarString(edit.time.strftime("%H:%M")), fields.clock)
    venue = every.get("venue")
    name = venue.get("name") if isinstance(venue, CommentedMap) else venue
    address = venue.get("address", "") if isinstance(venue, CommentedMap) else ""
    if (name or "", address or "") != (edit.venue_name, edit.venue_address):
        note = venue.get("note", "") if isinstance(venue, CommentedMap) else ""
        _set_venue(every, Venue(edit.venue_name, edit.venue_address, note or ""))
    for key, day in (("from", edit.start), ("until", edit.until)):
        if day is None:
            drop(meetings, key)
        elif _parsed(meetings.get(key), fields.day) != day:
            meetings[key] = day
    return doc.dump()


def _parsed(value: Any, parse: Any) -> Any:
    try:
        return parse(value, "value")
    except (FieldError, TypeError, ValueError):
        return None


def _set_if_changed(node: CommentedMap, key: str, value: Any, parse: Any) -> None:
    """Set ``key`` unless it already means ``value`` as written (so "Tue" stays "Tue")."""
    if _parsed(node.get(key), parse) != _parsed(value, parse):
        node[key] = value


def _set_months(every: CommentedMap, months: tuple[int, ...]) -> None:
    old = every.get("months")
    current = []
    if isinstance(old, list):
        current = [_parsed(m, lambda v, _k: fields.month(v)) for m in old]
    if tuple(sorted(m for m in current if m)) == tuple(sorted(months)) and "months" in every:
        return
    names = [fields.MONTHS[m - 1] for m in sorted(months)]
    if isinstance(old, CommentedSeq):
        old.clear()
        old.extend(names)  # a [February, April] list stays on one line
    else:
        seq = CommentedSeq(names)
        seq.fa.set_flow_style()
        every["months"] = seq


def current_rule(text: str) -> RuleEdit | None:
    """The regular rule as the file has it now (for the form), None without a usable ``every:``."""
    doc = Document(text)
    meetings = doc.meetings()
    every = meetings.get("every")
    if not isinstance(every, CommentedMap):
        return None
    venue = every.get("venue")
    months = every.get("months")
    found = [_parsed(m, lambda v, _k: fields.month(v)) for m in months] if isinstance(months, list) else []
    return RuleEdit(
        weekday=_parsed(every.get("weekday"), fields.weekday) or 0,
        week=_parsed(every.get("week"), fields.week) or 1,
        months=tuple(sorted(m for m in found if m)) if found else tuple(range(1, 13)),
        time=_parsed(every.get("time"), fields.clock) or dt.time(18, 0),
        venue_name=str((venue.get("name") if isinstance(venue, CommentedMap) else venue) or ""),
        venue_address=str(venue.get("address", "") if isinstance(venue, CommentedMap) else ""),
        start=_parsed(meetings.get("from"), fields.day),
        until=_parsed(meetings.get("until"), fields.day),
    )


# --- validate and write ----------------------------------------------------------------------------


def validate(text: str, home: Path) -> Schedule:
    """The schedule ``text`` would give, checked as `newsletter check` checks it (DataError otherwise):
    the reader's every message, and each article it names."""
    from newsletter.inputs.articles import load_article

    problems: list[Problem] = []
    schedule = None
    try:
        schedule = parse_schedule(text, "schedule.yaml")
    except DataError as err:
        problems.extend(err.problems)
    with suppress(DataError):
        for slug, line in article_refs(text, "schedule.yaml"):
            try:
                load_article(home / "content", slug, ref_path="schedule.yaml", ref_line=line)
            except DataError as err:
                problems.extend(p for p in err.problems if p not in problems)
    if problems or schedule is None:
        raise DataError(problems)
    return schedule


def read(path: Path) -> str:
    return read_schedule_text(path, "schedule.yaml")


@contextmanager
def _locked(path: Path, wait: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(f"{path}.lock")
    try:
        lock.acquire(timeout=wait)
    except Timeout as err:
        raise EditBusy(f"{path.name} is busy with another edit — try again in a moment") from err
    try:
        yield
    finally:
        lock.release()


def write(path: Path, text: str, *, expected: str, wait: float = LOCK_WAIT) -> None:
    """Replace the file with ``text`` if it is still the version ``expected`` (ScheduleChanged if not)."""
    with _locked(path, wait):
        if version(read(path)) != expected:
            raise ScheduleChanged("schedule.yaml changed since you opened this page")
        atomic_write(path, text.encode("utf-8"))


def describe(meeting: Meeting) -> dict[str, str]:
    """The facts of a meeting an organiser compares before and after an edit, in words."""
    return {
        "Date": f"{meeting.date:%A, %B} {meeting.date.day}, {meeting.date.year}",
        "Time": meeting.time.strftime("%H:%M"),
        "Title": meeting.title,
        "Venue": ", ".join(p for p in (meeting.venue.name, meeting.venue.address) if p),
        "Venue note": meeting.venue.note,
        "Details": meeting.details,
        "Cancelled": "yes" if meeting.cancelled else "no",
        "Note": meeting.note,
        "Asking who comes": {"on": "yes", "off": "no", "guests": "yes, and how many people"}.get(
            str(meeting.rsvp), "yes"
        ),
    }
