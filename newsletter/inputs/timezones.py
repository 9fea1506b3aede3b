"""Time zones as region names ("America/New_York"): the only kind that follows the group's daylight saving.

"EST", "UTC" or "UTC-5" are fixed offsets: a 6 pm meeting would be announced at 7 pm for half of the
year. They are refused with the region to write, as are names that are not zones at all; every
suggestion comes from a table (timezone_names), never from a spelling that merely looks close.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import TZPATH, ZoneInfo, available_timezones

from newsletter.errors import FieldError
from newsletter.inputs.timezone_names import ABBREVIATIONS, COMMON, FIXED, LEGACY, Choices, place_choices

#: The first part of every region name in the time-zone database; the rest are old names or offsets.
AREAS = frozenset(
    {
        "Africa",
        "America",
        "Antarctica",
        "Arctic",
        "Asia",
        "Atlantic",
        "Australia",
        "Europe",
        "Indian",
        "Pacific",
    }
)
LIST_URL = "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones"
_OFFSET = re.compile(r"(?:(?:UTC|GMT|UT)\s*)?([+\-−])\s*(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)
_ETC_OFFSET = re.compile(r"Etc/GMT([+-])(\d{1,2})", re.IGNORECASE)
_NUMBERS = re.compile(r"\b\d[\d-]*\b")  # house numbers and ZIP codes in an address
_SEASONS = (dt.datetime(2025, 1, 15, 12), dt.datetime(2025, 7, 15, 12))


@functools.cache
def _regions() -> frozenset[str]:
    return frozenset(name for name in available_timezones() if name.split("/", 1)[0] in AREAS)


def _is_region(raw: str) -> bool:
    """``raw in _regions()``, answered from the one file the name points to when the system's zone
    files hold it (listing every zone takes 15–25 ms of each command; a schedule names one zone)."""
    parts = raw.split("/")
    if parts[0] not in AREAS or any(part in ("", ".", "..") for part in parts):
        return False
    for base in TZPATH:
        here = Path(base)
        try:
            for part in parts:  # each part as the folder spells it: the name's case must be exact
                if part not in os.listdir(here):
                    break
                here = here / part
            else:
                with here.open("rb") as zone:
                    if zone.read(4) == b"TZif":  # as available_timezones() tells a zone file
                        return True
        except OSError:
            continue
    return raw in _regions()  # zones from the tzdata package, or not a region at all


def _shape(name: str) -> str:
    """A name with case, spaces, '_' and '-' ignored: "america/new york" and "America/New_York" alike."""
    return re.sub(r"[\s_-]+", "", name).casefold()


@functools.cache
def _by_shape() -> dict[str, str]:
    return {_shape(name): name for name in sorted(_regions())}


@functools.cache
def _by_city() -> dict[str, str]:
    """The last part of each region name ("chicago") → the name; shorter names win a tie."""
    found: dict[str, str] = {}
    for name in sorted(_regions(), key=lambda n: (n.count("/"), n)):
        found.setdefault(_shape(name.rsplit("/", 1)[-1]), name)
    return found


def region_zone(raw: str, key: str = "timezone", *, places: Iterable[str] = ()) -> str:
    """``raw`` if it names a region of the time-zone database, else FieldError with the region to write.

    ``places`` are texts that may say where the group is (venue addresses): when the name itself
    does not, they give the suggestion.
    """
    if _is_region(raw):
        return raw
    message, hint = _refusal(raw, key, places)
    raise FieldError(message, hint)


def _refusal(raw: str, key: str, places: Iterable[str]) -> tuple[str, str]:
    bare = raw.upper().removeprefix("ETC/")
    venue = _venue_place(places)
    if bare in FIXED:
        return f'{key} "{raw}" has no daylight saving', _region_instead(venue, 'like "America/New_York"')
    if bare in ABBREVIATIONS:
        message = f'{key} "{raw}" is an abbreviation, which does not follow daylight saving'
        return message, f"write the region instead: {_choices(ABBREVIATIONS[bare])}"
    offset = _offset(raw)
    if offset is not None:
        message = f'{key} "{raw}" is a fixed offset, which does not follow daylight saving'
        candidates = _zones_with_offset(offset)
        if venue or not candidates:
            return message, _region_instead(venue, f"see {LIST_URL}")
        return message, f"write the region instead: {_choices(candidates)}"
    legacy = next((new for old, new in LEGACY.items() if old.casefold() == raw.casefold()), None)
    if legacy:
        return f'{key} "{raw}" is an old name for a time zone', f'write "{legacy}"'
    return f'{key} "{raw}" is not a known time zone', _unknown_hint(raw, venue)


def _region_instead(venue: str, otherwise: str) -> str:
    return "write the region where the group meets instead" + (f": {venue}" if venue else f", {otherwise}")


def _unknown_hint(raw: str, venue: str) -> str:
    if spelt := _by_shape().get(_shape(raw)):
        return f'write it exactly as "{spelt}" (capitals and _ as shown)'
    if city := _by_city().get(_shape(re.split(r"[/,]", raw)[-1])):
        return f'did you mean "{city}"?'
    named = "time zones are named after one city in each region"
    if found := _place_in(raw):
        place, choices = found
        return f"{named}: for {place}, write {_choices(choices)}"
    if venue:
        return f"{named}: write {venue}"
    us = _choices(place_choices("United States")[1])  # type: ignore[index]
    return f"write a region name, like {us} ({LIST_URL})"


def _venue_place(places: Iterable[str]) -> str:
    """'"America/New_York" for South Carolina, where the venue is', from the first place found."""
    for text in places:
        if found := _place_in(text):
            place, choices = found
            return f"{_choices(choices)} for {place}, where the venue is"
    return ""


def _place_in(text: str) -> tuple[str, Choices] | None:
    """The state, province or country that ``text`` names, read from its end ("Greenville, SC 29607")."""
    for piece in reversed(re.split(r"[/,]", text)):
        piece = _NUMBERS.sub(" ", piece).strip()
        words = piece.split()
        for candidate in (piece, words[-1] if words else ""):
            if candidate and (found := place_choices(candidate)):
                return found
    return None


def _choices(choices: Choices) -> str:
    shown = [f'"{zone}" ({where})' if where else f'"{zone}"' for zone, where in choices]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def _offset(raw: str) -> dt.timedelta | None:
    """The offset from UTC that ``raw`` fixes ("UTC-5", "GMT+05:30", "-0500", "Etc/GMT+5"), if it is one."""
    if match := _ETC_OFFSET.fullmatch(raw.strip()):
        # The database's Etc/ names have the POSIX sign: Etc/GMT+5 is five hours *behind* UTC.
        return dt.timedelta(hours=int(match[2]) * (-1 if match[1] == "+" else 1))
    if match := _OFFSET.fullmatch(raw.strip()):
        size = dt.timedelta(hours=int(match[2]), minutes=int(match[3] or 0))
        return size if match[1] == "+" else -size
    return None


def _zones_with_offset(offset: dt.timedelta) -> Choices:
    """Up to three common regions whose clocks show ``offset`` in winter or in summer."""
    found = [
        zone
        for zone in COMMON
        if any(moment.replace(tzinfo=ZoneInfo(zone)).utcoffset() == offset for moment in _SEASONS)
    ]
    return tuple((zone, "") for zone in found[:3])
