"""Reading single values of schedule.yaml: a Reader that collects problems, and one parser per kind.

Kept apart from ``schedule`` so that module only walks the sections and merges meetings. Each parser
returns plain data or raises FieldError with the message and the fix, written for an organiser.
"""

from __future__ import annotations

import calendar
import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterable
from email.utils import getaddresses, parseaddr
from typing import Any, TypeVar
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from newsletter.errors import FieldError, Problem
from newsletter.inputs.clock_times import clock as clock  # re-exported: schedule.py reads fields.clock
from newsletter.inputs.header_text import header_problem
from newsletter.inputs.timezones import region_zone
from newsletter.inputs.yaml_lines import key_line
from newsletter.model import Rsvp

WEEKDAYS = tuple(calendar.day_name)  # Monday .. Sunday, index = dt.date.weekday()
MONTHS = tuple(calendar.month_name)[1:]  # January .. December, index + 1 = month number
ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
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


def header_text(value: Any, key: str) -> str:
    """Text that goes into a mail header or subject (a title, a name): one line, no control characters.

    A line break is refused, not folded into a space: it may hide a header of its own (Bcc: …).
    """
    raw = text(value, key)
    if found := header_problem(raw):
        hint = f"write the {key} on one line, as plain text (it is shown in the mail's subject or sender)"
        raise FieldError(f"{key} contains {found}", hint)
    return raw


def token(value: Any, key: str) -> str:
    """A short name typed on the command line (a reminder's name): no spaces."""
    raw = text(value, key, required=True)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", raw):
        suggestion = re.sub(r"[^A-Za-z0-9_-]+", "-", raw).strip("-") or "week-before"
        raise FieldError(f"{key} {show(value)} has spaces or signs in it", f"write it as {suggestion}")
    return raw


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
        from dateutil import parser as date_parser  # only to guess what a malformed date meant

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


RSVP_EXAMPLE = "rsvp: {guests: true} (asks how many people come), rsvp: false (asks nothing)"


def rsvp(value: Any, key: str = "rsvp") -> Rsvp:
    """``rsvp: true``/``false``, or ``rsvp: {guests: true}`` to ask how many people come in all."""
    if isinstance(value, CommentedMap):
        unknown = [str(k) for k in value if k != "guests"]
        if unknown:
            hint = f"{unknown_key_hint(unknown[0], ('guests',))}; write {RSVP_EXAMPLE}"
            raise FieldError(f"unknown key '{unknown[0]}' in {key}:", hint)
        if value.get("guests") is None:
            raise FieldError(f"{key}: says nothing", f"write {RSVP_EXAMPLE}")
        try:
            return Rsvp.GUESTS if flag(value["guests"], "guests") else Rsvp.ON
        except FieldError as err:
            raise FieldError(err.message, f"write {RSVP_EXAMPLE}") from None
    if isinstance(value, str) and value.strip().lower() == "guests":
        return Rsvp.GUESTS
    try:
        return Rsvp.ON if flag(value, key) else Rsvp.OFF
    except FieldError:
        message = f"{key} {show(value)} is not true, false or {{guests: true}}"
        raise FieldError(message, f"write {RSVP_EXAMPLE}") from None


def email_address(value: Any, key: str) -> str:
    """A bare address, normalised (domain lower-cased)."""
    raw = header_text(value, key)
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as err:
        hint = "write only the address, like margaret@example.org"
        raise FieldError(f"{key} {show(value)} is not a valid email address ({err})", hint) from None


def mailbox(value: Any, key: str, *, need_name: bool, example_name: str) -> str:
    """``Name <address>`` as used in From and Reply-To headers, re-quoted where needed."""
    raw = header_text(value, key)
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


def timezone(value: Any, key: str = "timezone", *, places: Iterable[str] = ()) -> str:
    """A region of the time-zone database such as America/New_York; ``places`` (venue addresses) help
    the hint say which one to write."""
    return region_zone(text(value, key), key, places=places)


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
