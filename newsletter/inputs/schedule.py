"""schedule.yaml → Schedule: validated, with the recurrence expanded into a finite, sorted meeting list.

This module reads the file and its group:, reminders: and article: sections; ``meetings`` expands
the meetings: section. Pure: no clock, no environment. Every mistake is collected (file, line, fix)
and raised at once as one DataError, so an organiser fixes the whole file in one go rather than one
error per run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import pathlib
import re
from contextlib import suppress
from functools import partial
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from newsletter.errors import DataError, FieldError, Problem
from newsletter.inputs import schedule_values as fields
from newsletter.inputs.limits import SCHEDULE_MAX_BYTES, read_capped, too_large
from newsletter.inputs.meetings import check_reminders_fit, placeholders, read_meetings, venue_addresses
from newsletter.inputs.yaml_lines import key_line, load_yaml
from newsletter.model import Discreet, Group, MemberDefaults, Organiser, ReminderRule, Rsvp, Schedule

__all__ = ["article_refs", "load_schedule", "parse_schedule", "read_schedule_text"]

TOP_KEYS = ("group", "reminders", "article", "meetings")
GROUP_KEYS = (
    "name", "mission", "timezone", "sender", "organisers", "reply_to", "website",
    "rsvp", "discreet", "defaults",
)  # fmt: skip
DISCREET_KEYS = ("sender", "subject", "default")
DEFAULTS_KEYS = ("reminders", "plain_text")
#: Words a discreet sender or subject must not contain (beside the group's name): what the lock screen
#: of a phone must not show.
TELLING_WORDS = ("cancer",)
ORGANISER_KEYS = ("name", "email", "phone")
REMINDER_KEYS = ("name", "before", "at")
ORGANISER_EXAMPLE = "- {name: Margaret, email: margaret@example.org}"
SCHEDULE_WHAT = "a schedule is a few kilobytes"
REMINDER_EXAMPLE = '- {name: week-before, before: 7 days, at: "09:00"}'

DEFAULT_REMINDERS = (
    ReminderRule("week-before", 7, dt.time(9, 0)),
    ReminderRule("day-before", 1, dt.time(9, 0)),
)


def read_schedule_text(path: pathlib.Path, display: str | None = None) -> str:
    """The file's text, UTF-8 with or without the BOM that Windows editors add."""
    name = display or path.name
    try:
        data = read_capped(path, name, SCHEDULE_MAX_BYTES, SCHEDULE_WHAT)
        return data.decode("utf-8-sig")
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
    if len(text) > SCHEDULE_MAX_BYTES:  # text that did not come through read_schedule_text's cap
        raise DataError([too_large(path, SCHEDULE_MAX_BYTES, SCHEDULE_WHAT)])
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
    meetings = read_meetings(r, top, today)
    check_reminders_fit(r, reminders, meetings)
    if group is not None:
        group = dataclasses.replace(group, defaults=_member_defaults(r, top["group"], reminders))
        if not group.rsvp:
            meetings = [dataclasses.replace(m, rsvp=Rsvp.OFF) for m in meetings]
    if r.problems or group is None:
        raise DataError(r.problems)
    return Schedule(
        group=group,
        reminders=reminders,
        article=article,
        meetings=tuple(meetings),
        path=path,
        placeholders=placeholders(meetings),
    )


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


@functools.lru_cache(maxsize=2)
def _load(text: str, path: str) -> Any:
    """The YAML tree of the text (read-only: `load_project` reads one text for the schedule and
    again for its article names; the parse is shared)."""
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
        node,
        "name",
        fields.header_text,
        need="add name: under group:, like name: Women's Cancer Support Group",
    )
    mission = r.get(node, "mission", fields.text) or ""
    zone = partial(fields.timezone, places=venue_addresses(top))
    timezone = r.get(node, "timezone", zone, need="add timezone: America/New_York (or yours)")
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
    asks = r.get(node, "rsvp", fields.flag)
    discreet = _discreet(r, node, name)
    if name is None or timezone is None or sender is None:
        return None
    return Group(
        name, mission, timezone, sender, organisers, reply_to or "", website or "",
        rsvp=asks is not False, discreet=discreet,
    )  # fmt: skip


def _discreet(r: fields.Reader, group: CommentedMap, name: str | None) -> Discreet | None:
    """``discreet:``: words that tell nothing about the group, for From, Subject and calendars."""
    if "discreet" not in group:
        return None
    example = 'discreet: {sender: "Tuesday group", subject: "Reminder for {date}"}'
    node = r.mapping(
        group["discreet"], key_line(group, "discreet"), "discreet", DISCREET_KEYS, example=example
    )
    if node is None:
        return None
    base = Discreet()
    sender = r.get(node, "sender", partial(_neutral, group_name=name)) or base.sender
    subject = r.get(node, "subject", partial(_neutral, group_name=name)) or base.subject
    default = bool(r.get(node, "default", fields.flag))
    return Discreet(sender, subject, default)


def _neutral(value: object, key: str, *, group_name: str | None) -> str:
    """A discreet sender name or subject: one line that names neither the group nor its cause."""
    raw = fields.header_text(value, key)
    telling = [
        w for w in ((group_name or "").strip(), *TELLING_WORDS) if w and w.casefold() in raw.casefold()
    ]
    where = "the lock screen of a phone shows it to anyone nearby"
    if telling:
        shown = "the group's name" if telling[0] == (group_name or "").strip() else f'the word "{telling[0]}"'
        raise FieldError(
            f"the discreet {key} {fields.show(value)} contains {shown}",
            f"write something that tells nothing about the group, like {DISCREET_EXAMPLES[key]} ({where})",
        )
    if key == "sender" and ("@" in raw or "<" in raw):
        raise FieldError(
            f"the discreet sender {fields.show(value)} should be a name only",
            'write a name like sender: "Tuesday group" (mail still comes from the group\'s address)',
        )
    if key == "subject" and re.search(r"[{}]", raw.replace("{date}", "")):
        raise FieldError(
            f"the discreet subject {fields.show(value)} has {{ }} other than {{date}}",
            'write it like subject: "Reminder for {date}" ({date} becomes the meeting\'s date)',
        )
    return raw


DISCREET_EXAMPLES = {"sender": '"Tuesday group"', "subject": '"Reminder for {date}"'}


def _member_defaults(
    r: fields.Reader, group: CommentedMap, reminders: tuple[ReminderRule, ...]
) -> MemberDefaults:
    """``defaults:``: what a member who never chose her own preferences gets."""
    example = "defaults: {reminders: [day-before], plain_text: false}"
    if not isinstance(group, CommentedMap) or "defaults" not in group:
        return MemberDefaults()
    node = r.mapping(
        group["defaults"], key_line(group, "defaults"), "defaults", DEFAULTS_KEYS, example=example
    )
    if node is None:
        return MemberDefaults()
    plain = bool(r.get(node, "plain_text", fields.flag))
    value, line = node.get("reminders"), key_line(node, "reminders")
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return MemberDefaults(None, plain)
    items = [value] if isinstance(value, str) else value
    known = [rule.name for rule in reminders]
    if not isinstance(items, list) or not items:
        hint = f"list names from reminders:, like reminders: [{known[-1] if known else 'day-before'}]"
        r.add(line, f"defaults: reminders {fields.show(value)} is not a list of reminders", hint)
        return MemberDefaults(None, plain)
    names: list[str] = []
    for index, item in enumerate(items):
        at = key_line(items, index) if isinstance(items, CommentedSeq) else line
        if not isinstance(item, str) or item.strip() not in known:
            guess = fields.close_match(str(item), known) if isinstance(item, str) else None
            hint = f"did you mean {guess}?" if guess else "the reminders are " + ", ".join(known)
            r.add(at, f"defaults: {fields.show(item)} is not the name of a reminder", hint)
        elif item.strip() not in names:
            names.append(item.strip())
    return MemberDefaults(tuple(names), plain)


def _organisers(r: fields.Reader, group: CommentedMap) -> tuple[Organiser, ...]:
    found = []
    for item, line in fields.items(r, group, "organisers", ORGANISER_EXAMPLE):
        node = r.mapping(item, line, "an organiser", ORGANISER_KEYS, example=ORGANISER_EXAMPLE)
        if node is None:
            continue
        name = r.get(node, "name", fields.header_text, need="add name: (how members should call her)")
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
