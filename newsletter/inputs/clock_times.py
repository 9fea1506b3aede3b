"""Times of day as organisers write them: "18:30", "06:30", "6:30 pm", "6:30PM", "6pm", "6 p.m.", "noon".

What is accepted is never a guess: "6:30" with no am/pm and no leading zero could be either, and is
refused with both readings to choose from.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from newsletter.errors import FieldError

_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_AM_PM = re.compile(r"(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?\s*m\.?", re.IGNORECASE)
_DOTTED = re.compile(r"(\d{1,2})[.h](\d{2})")
_WORDS = {"noon": dt.time(12, 0), "midday": dt.time(12, 0), "midnight": dt.time(0, 0)}
EXAMPLES = '"18:30" or "6:30 pm"'


def clock(value: Any, key: str) -> dt.time:
    """A time of day on the 24-hour clock ("18:30", "06:30") or with am/pm ("6:30 pm", "6pm")."""
    if isinstance(value, str):
        return _from_text(value.strip(), key)
    if isinstance(value, int) and not isinstance(value, bool):
        raise FieldError(f"{key} {value} is a number, not a time of day", _number_hint(value))
    shown = "true" if value is True else "false" if value is False else "nothing" if value is None else value
    raise FieldError(f"{key} {shown} is not a time of day", f"write it in quotes, like {EXAMPLES}")


def _from_text(raw: str, key: str) -> dt.time:
    if match := _CLOCK.fullmatch(raw):
        hour, minute = int(match[1]), int(match[2])
        if hour < 24 and minute < 60:
            if 1 <= hour <= 9 and len(match[1]) == 1:
                raise _ambiguous(raw, hour, minute)
            return dt.time(hour, minute)
    elif match := _AM_PM.fullmatch(raw):
        hour, minute = int(match[1]), int(match[2] or 0)
        if 1 <= hour <= 12 and minute < 60:
            # 12 am is midnight and 12 pm is noon: the hour 12 counts as 0 before the half-day is added.
            return dt.time(hour % 12 + (12 if match[3].lower() == "p" else 0), minute)
        if hour < 24 and minute < 60:
            hint = f'am and pm go with 1 to 12; on the 24-hour clock write "{hour:02d}:{minute:02d}"'
            raise FieldError(f'{key} "{raw}" is not a time of day', hint)
    elif (match := _DOTTED.fullmatch(raw)) and int(match[1]) < 24 and int(match[2]) < 60:
        hour, minute = int(match[1]), int(match[2])
        if 1 <= hour <= 9 and len(match[1]) == 1:
            raise _ambiguous(raw, hour, minute)
        raise FieldError(
            f'{key} "{raw}" is not a time of day', f'write it with a colon: "{hour:02d}:{minute:02d}"'
        )
    elif raw.lower() in _WORDS:
        return _WORDS[raw.lower()]
    raise FieldError(f'{key} "{raw}" is not a time of day', f"write it like {EXAMPLES}")


def _ambiguous(raw: str, hour: int, minute: int) -> FieldError:
    # The message quotes the value alone: 'schedule.yaml:14: "6:30" could be morning or evening — …'.
    return FieldError(
        f'"{raw}" could be morning or evening', f'write "{hour}:{minute:02d} pm" or "{hour:02d}:{minute:02d}"'
    )


def _number_hint(value: int) -> str:
    """A number here comes from writing 1830 for 18:30, or 6 for six o'clock."""
    if 100 <= value <= 2359 and value % 100 < 60:
        hour, minute = divmod(value, 100)
    elif 0 <= value <= 23:
        hour, minute = value, 0
    else:
        return f"write it in quotes, like {EXAMPLES}"
    if 1 <= hour <= 9 and value < 1000:
        return f'put it in quotes as "{hour}:{minute:02d} pm" or "{hour:02d}:{minute:02d}"'
    return f'put it in quotes as "{hour:02d}:{minute:02d}"'
