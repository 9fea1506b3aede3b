"""`--at DATETIME` read the one way every command reads it (and a no-op `tick` before the rest loads)."""

from __future__ import annotations

import datetime as dt


def read_moment(value: str, tz: dt.tzinfo) -> dt.datetime:
    """ISO date and time; without an offset it is the group's local time. ValueError if it is not one."""
    moment = dt.datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
