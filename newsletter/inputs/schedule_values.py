"""Reading single values of schedule.yaml: a Reader that collects problems, and one parser per kind.

Kept apart from ``schedule`` so that module only walks the sections and merges meetings. Each parser
returns plain data or raises FieldError with the message and the fix, written for an organiser.
"""

from __future__ import annotations

import calendar
import datetime as dt
import difflib
import functools
import re
from collections.abc import Callable, Iterable
from email.utils import getaddresses, parseaddr
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from dateutil import parser as date_parser
from email_validator import EmailNotValidError, validate_email
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from newsletter.errors import FieldError, Problem
from newsletter.inputs.yaml_lines import key_line

WEEKDAYS = tuple(calendar.day_name)  # Monday .. Sunday, index = dt.date.weekday()
MONTHS = tuple(calendar.month_name)[1:]  # January .. December, index + 1 = month number
ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_AM_PM = re.compile(r"(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?\s*m\.?", re.IGNORECASE)
_DOTTED = re.compile(r"(\d{1,2})[.h](\d{2})")
_BEFORE = re.compile(r"(\d+)\s*(days?|weeks?)", re.IGNORECASE)
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(hours?|hrs?|h|minutes?|mins?|m)\b\s*", re.IGNORECASE)
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_WORD_WEEKS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1}
_WORD_WEEKS |= {"1st": 1, "2nd": 2, "3rd": 3, "4th": 4, "5th": 5}


T = TypeVar("T")


class Reader:
    """Walks the YAML tree and collects every problem instead of stopping at the first."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self._where: dict[int, tuple[int | None, str]] = {}  # id(mapping) -> (line, what it is)
        self._unknown: set[int] = set()  # id(mapping) of those with a misspelt key or broken part

    def add(self, line: int | None, message: str, hint: str) -> None:
        self.problems.append(Problem(self.path, line, message, hint))

    def mapping(
        self, value: Any, line: int | None, what: str, allowed: tuple[str, ...], *, example: str = ""
    ) -> CommentedMap | None:
        """``value`` as a mapping whose keys are all known; unknown keys are reported, never skipped."""
        if not isinstance(value, CommentedMap):
            hint = (
                f"write it like {example}"
                if example
                else "indent 'key: value' lines under it (see the sample)"
            )
            self.add(line, f"{what} should be a set of 'key: value' lines", hint)
            return None
        self._where[id(value)] = (line, what)
        for key in value:
            if key not in allowed:
                hint = unknown_key_hint(str(key), allowed)
                if value[key] is None and value.fa.flow_style():
                    # {address: Greenville, SC} reads "SC" as a key of its own.
                    hint = "a comma inside { } starts a new key: put the text before it in quotes"
                self.add(key_line(value, key), f"unknown key '{key}' in {what}", hint)
                self._unknown.add(id(value))
        return value

    def doubtful(self, node: CommentedMap) -> bool:
        """Whether ``node`` had an unknown key or a broken part: what it seems to lack may be in there
        under a misspelt name, so the caller drops it rather than report echoes of one mistake."""
        return id(node) in self._unknown

    def distrust(self, node: CommentedMap) -> None:
        self._unknown.add(id(node))

    def get(
        self, node: CommentedMap, key: str, parse: Callable[[Any, str], T], *, need: str = ""
    ) -> T | None:
        """``parse(node[key], key)``; an empty value counts as absent, an error only if ``need`` says how."""
        value = node.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if need:
                line, what = self._where.get(id(node), (None, "this part"))
                self.add(key_line(node, key) if key in node else line, f"{what} is missing '{key}:'", need)
            return None
        try:
            return parse(value, key)
        except FieldError as err:
            self.add(key_line(node, key), err.message, err.hint)
            return None


def items(r: Reader, parent: CommentedMap, key: str, example: str) -> list[tuple[Any, int | None]]:
    """The entries of the list ``parent[key]`` with their lines; anything else is reported."""
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, CommentedSeq):
        r.add(
            key_line(parent, key), f"{key}: should be a list", f"start each entry with '- ', like {example}"
        )
        return []
    return [(item, key_line(value, index)) for index, item in enumerate(value)]


def show(value: Any) -> str:
    """A value as the organiser typed it: text in quotes, YAML words for the rest."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return "nothing" if value is None else str(value)


def close_match(word: str, choices: Iterable[str]) -> str | None:
    """The nearest of ``choices`` to a misspelt ``word`` (case-insensitive), if any is close."""
    by_lower = {choice.lower(): choice for choice in choices}
    found = difflib.get_close_matches(word.lower(), by_lower, n=1, cutoff=0.6)
    return by_lower[found[0]] if found else None


def unknown_key_hint(key: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    guess = close_match(key, allowed)
    if guess:
        return f"did you mean '{guess}'?"
    return "the keys allowed here are " + ", ".join(allowed)


def text(value: Any, key: str, *, required: bool = False) -> str:
    # Numbers and true/false are refused rather than converted: "1.50" would silently become "1.5".
    if not isinstance(value, str):
        raise FieldError(f"{key} {show(value)} is not text", f'put it in quotes: {key}: "{value}"')
    if required and not value.strip():
        raise FieldError(f"{key} is empty", f"write the {key} after '{key}:'")
    return value.strip()


def token(value: Any, key: str) -> str:
    """A short name typed on the command line (a reminder's name): no spaces."""
    raw = text(value, key, required=True)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", raw):
        suggestion = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-") or "week-before"
        raise FieldError(f"{key} {show(value)} has spaces or signs in it", f"write it as {suggestion}")
    return raw


def clock(value: Any, key: str) -> dt.time:
    """HH:MM on the 24-hour clock; "9:00" is fine too."""
    if isinstance(value, str):
        raw = value.strip()
        if match := _CLOCK.fullmatch(raw):
            hour, minute = int(match[1]), int(match[2])
            if hour < 24 and minute < 60:
                return dt.time(hour, minute)
        guess = _guess_clock(raw)
        hint = f'write it as "{guess}"' if guess else 'write it as "HH:MM" on the 24-hour clock, like "18:00"'
        raise FieldError(f"{key} {show(value)} is not HH:MM", hint)
    if isinstance(value, int) and not isinstance(value, bool):
        # A number here comes from a YAML 1.1 habit or from writing 1830 for 18:30.
        guess = ""
        if 0 <= value <= 23:
            guess = f"{value:02d}:00"
        elif 100 <= value <= 2359 and value % 100 < 60:
            guess = f"{value // 100:02d}:{value % 100:02d}"
        hint = f'put it in quotes as "{guess}"' if guess else 'put it in quotes, like "18:30"'
        raise FieldError(f"{key} {show(value)} is a number, not HH:MM", hint)
    raise FieldError(f"{key} {show(value)} is not HH:MM", 'write it in quotes, like "18:00"')


def _guess_clock(raw: str) -> str | None:
    if match := _AM_PM.fullmatch(raw):
        hour, minute = int(match[1]), int(match[2] or 0)
        if 1 <= hour <= 12 and minute < 60:
            hour = hour % 12 + (12 if match[3].lower() == "p" else 0)
            return f"{hour:02d}:{minute:02d}"
    if (match := _DOTTED.fullmatch(raw)) and int(match[1]) < 24 and int(match[2]) < 60:
        return f"{int(match[1]):02d}:{match[2]}"
    if raw.lower() == "noon":
        return "12:00"
    return None


def day(value: Any, key: str, *, near: dt.date | None = None) -> dt.date:
    """A calendar date; YAML gives dt.date for ISO dates and text for anything else."""
    if isinstance(value, dt.datetime):
        raise FieldError(
            f"{key} {value.isoformat()} has a time in it",
            f"write only the date ({value.date().isoformat()}) and put the time under time:",
        )
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise FieldError(f"{key} {show(value)} is not a date", "write it as YYYY-MM-DD, like 2026-12-08")
    raw = value.strip()
    if match := ISO_DATE.fullmatch(raw):
        year, month, number = (int(part) for part in match.groups())
        try:
            return dt.date(year, month, number)
        except ValueError:
            raise FieldError(
                f"{key} {show(value)} does not exist", impossible_date_hint(year, month)
            ) from None
    raise FieldError(f"{key} {show(value)} is not written as YYYY-MM-DD", _iso_hint(raw, near))


def impossible_date_hint(year: int, month: int) -> str:
    if 1 <= month <= 12:
        days = calendar.monthrange(year, month)[1]
        return f"{MONTHS[month - 1]} {year} has {days} days; check the day (dates are YYYY-MM-DD)"
    return "the month must be 01 to 12; dates are written YYYY-MM-DD, like 2026-12-08"


def _iso_hint(raw: str, near: dt.date | None) -> str:
    """Turn "December 8" or "12/08/2026" into the ISO date it most likely means."""
    has_year = re.search(r"\d{4}", raw) is not None
    try:
        guess = date_parser.parse(raw, default=dt.datetime(near.year if near else 2000, 1, 1)).date()
    except (ValueError, OverflowError):
        return "write it as YYYY-MM-DD, like 2026-12-08"
    if not has_year:
        if near is None:
            return f"write it as YYYY-{guess:%m-%d}, with the year first (like 2026-12-08)"
        if guess < near:  # no year given: the first such day on or after the schedule's start
            guess = guess.replace(year=guess.year + 1)
    return f"write it as {guess.isoformat()}"


def weekday(value: Any, key: str = "weekday") -> int:
    """Monday=0 .. Sunday=6; full names, "Tue", "Tues" and "Tuesdays" all work."""
    if isinstance(value, str):
        word = value.strip().lower().rstrip(".")
        for index, name in enumerate(WEEKDAYS):
            if len(word) >= 3 and (name.lower().startswith(word) or word == name.lower() + "s"):
                return index
        guess = close_match(word, WEEKDAYS)
        hint = f"did you mean {guess}?" if guess else "write a day name, like Tuesday"
        raise FieldError(f"{key} {show(value)} is not a day of the week", hint)
    raise FieldError(f"{key} {show(value)} is not a day of the week", "write a day name, like Tuesday")


def week(value: Any, key: str = "week") -> int:
    """Which week of the month: 1..5, or -1 for the last ("second" and "last" work too)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        word = value.strip().lower()
        number = _WORD_WEEKS.get(word, int(word) if re.fullmatch(r"-?\d+", word) else None)
    if number is not None and (1 <= number <= 5 or number == -1):
        return number
    raise FieldError(
        f"{key} {show(value)} is not 1 to 5 or -1",
        "write 1 for the first such weekday of the month, 2 for the second, ... or -1 for the last",
    )


def month(value: Any) -> int:
    """A month as a full name, a 3-letter (or longer) abbreviation or a number 1..12."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 12:
        return value
    if isinstance(value, str):
        word = value.strip().lower().rstrip(".")
        if word.isdigit() and 1 <= int(word) <= 12:
            return int(word)
        for index, name in enumerate(MONTHS):
            if len(word) >= 3 and name.lower().startswith(word):
                return index + 1
        guess = close_match(word, MONTHS)
        if guess:
            raise FieldError(f"month {show(value)} is not a month", f"did you mean {guess}?")
    raise FieldError(
        f"month {show(value)} is not a month",
        "write full names (February), 3-letter abbreviations (Feb) or numbers 1 to 12",
    )


def before(value: Any, key: str = "before") -> int:
    """How long before a meeting a reminder goes out, in whole days."""
    if isinstance(value, str) and (match := _BEFORE.fullmatch(value.strip())):
        return int(match[1]) * (7 if match[2].lower().startswith("week") else 1)
    hint = 'write it like "7 days", "1 day" or "2 weeks"'
    if isinstance(value, int) and not isinstance(value, bool):
        hint = f'write it with the unit: "{value} days"'
    raise FieldError(f"{key} {show(value)} is not a number of days or weeks", hint)


def duration(value: Any, key: str = "duration") -> dt.timedelta:
    """ "2 hours", "90 minutes", "1 hour 30 minutes", "1.5 hours"."""
    if isinstance(value, str) and (raw := value.strip()):
        total, position = dt.timedelta(), 0
        while match := _DURATION_PART.match(raw, position):
            amount, unit = float(match[1]), match[2].lower()
            total += dt.timedelta(hours=amount) if unit.startswith("h") else dt.timedelta(minutes=amount)
            position = match.end()
        if position == len(raw) and dt.timedelta() < total <= dt.timedelta(hours=24):
            return total
    hint = 'write it like "2 hours" or "90 minutes"'
    if isinstance(value, int) and not isinstance(value, bool):
        hint = f'write it with the unit: "{value} minutes"' if value > 12 else f'write "{value} hours"'
    raise FieldError(f"{key} {show(value)} is not a length of time (up to a day)", hint)


def flag(value: Any, key: str) -> bool:
    # YAML 1.2 keeps yes/no as text; organisers write them, so they count as true/false here.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("yes", "true", "no", "false"):
        return value.strip().lower() in ("yes", "true")
    raise FieldError(f"{key} {show(value)} is not true or false", f"write {key}: true, or remove the line")


def email_address(value: Any, key: str) -> str:
    """A bare address, normalised (domain lower-cased)."""
    raw = text(value, key)
    _no_line_breaks(raw, key)
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as err:
        hint = "write only the address, like margaret@example.org"
        raise FieldError(f"{key} {show(value)} is not a valid email address ({err})", hint) from None


def mailbox(value: Any, key: str, *, need_name: bool, example_name: str) -> str:
    """``Name <address>`` as used in From and Reply-To headers, re-quoted where needed."""
    raw = text(value, key)
    _no_line_breaks(raw, key)
    name, address = parseaddr(raw)
    example = f'write it as "{example_name} <news@example.org>"'
    # parseaddr keeps the first of two addresses and drops text after ">": neither may pass unseen.
    several = len(getaddresses([raw])) > 1 or ("<" in raw and not raw.endswith(">"))
    if several or not address or "@" not in address or (need_name and not name):
        raise FieldError(f"{key} {show(value)} is not written as Name <address>", example)
    try:
        address = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as err:
        raise FieldError(f"{key} {show(value)} has an invalid address ({err})", example) from None
    return f"{_quoted(name.strip())} <{address}>" if name.strip() else address


def _quoted(name: str) -> str:
    # formataddr would RFC 2047-encode "Café": the header layer does that, so keep readable text here
    # and only add the quotes that a comma or a dot in the name needs.
    if not re.search(r'[][\\()<>@,:;".]', name):
        return name
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _no_line_breaks(raw: str, key: str) -> None:
    # A line break in a header value would let text inject headers of its own.
    if "\r" in raw or "\n" in raw:
        raise FieldError(f"{key} contains a line break", "write it on one line")


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def timezone(value: Any, key: str = "timezone") -> str:
    """An IANA time zone name such as America/New_York."""
    raw = text(value, key)
    if raw in _timezones():
        return raw
    guess = close_match(raw, _timezones())
    hint = f'did you mean "{guess}"?' if guess else 'use a name like "America/New_York"'
    hint += " (names are listed at https://en.wikipedia.org/wiki/List_of_tz_database_time_zones)"
    raise FieldError(f"{key} {show(value)} is not a known time zone", hint)


def website(value: Any, key: str = "website") -> str:
    raw = text(value, key)
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FieldError(
            f"{key} {show(value)} is not a web address", "write it in full, like https://example.org"
        )
    return raw


def slug(value: Any, key: str = "article") -> str:
    """The name of an article file in content/articles/, without folder or .md."""
    raw = text(value, key)
    base = raw.rsplit("/", 1)[-1].removesuffix(".md")
    if raw.endswith(".md") or "/" in raw or "\\" in raw:
        raise FieldError(f"{key} {show(value)} should be the article's name only", f"write {key}: {base}")
    if not _SLUG.fullmatch(raw):
        hint = "use the file name from content/articles/ without .md, like second-opinion"
        raise FieldError(f"{key} {show(value)} is not an article name", hint)
    return raw


def impossible_dates(text: str) -> list[tuple[int, str, str]]:
    """(line, message, hint) for each YYYY-MM-DD in ``text`` that is not a real date."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in ISO_DATE.finditer(line.split(" #", 1)[0]):
            year, month_number, day_number = (int(part) for part in match.groups())
            try:
                dt.date(year, month_number, day_number)
            except ValueError:
                found.append(
                    (number, f"date {match[0]} does not exist", impossible_date_hint(year, month_number))
                )
    return found
