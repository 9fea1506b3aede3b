"""``SMTP_RATE_LIMIT`` read into plain data: how many messages may go out per second, minute, hour, day.

The limiter that applies it while sending is ``send.ratelimit``; this is only the setting's meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.errors import ConfigError

#: Window lengths in seconds, by the unit's canonical name.
SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "second"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "minute"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "hour"),
    **dict.fromkeys(("d", "day", "days"), "day"),
}
_SHORT = {"second": "s", "minute": "min", "hour": "hour", "day": "day"}
_ITEM = re.compile(r"(?P<count>[^/\s]+)\s*(?:/|\bper\b)\s*(?P<unit>\S+)", re.IGNORECASE)
_HOW = (
    "write how many messages per second, minute, hour or day, separated by commas — "
    "e.g. SMTP_RATE_LIMIT=5/s or SMTP_RATE_LIMIT=100/min, 500/day"
)


@dataclass(frozen=True)
class Limit:
    """At most ``count`` messages in any ``per`` (second, minute, hour; a day is a UTC calendar day)."""

    count: int
    per: str

    @property
    def seconds(self) -> float:
        return SECONDS[self.per]

    def __str__(self) -> str:
        return f"{self.count}/{_SHORT[self.per]}"


@dataclass(frozen=True)
class SendRate:
    """Every limit in ``SMTP_RATE_LIMIT``; empty when the setting is unset (no limit)."""

    limits: tuple[Limit, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.limits)

    def __str__(self) -> str:
        return ", ".join(str(limit) for limit in self.limits) or "none"

    @property
    def windows(self) -> tuple[Limit, ...]:
        """The limits shorter than a day (kept in memory)."""
        return tuple(limit for limit in self.limits if limit.per != "day")

    @property
    def daily(self) -> int | None:
        """The per-day cap (kept in the state database), if any."""
        return next((limit.count for limit in self.limits if limit.per == "day"), None)


def parse_rate_limit(text: str) -> SendRate:
    """``"100/min, 500/day"`` → SendRate; ConfigError says what to write instead."""
    text = text.strip()
    if not text or text.lower() in {"none", "off"}:
        return SendRate()
    limits: dict[str, Limit] = {}
    for raw in re.split(r"[,;]", text):
        item = raw.strip()
        if not item:
            continue
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ConfigError(f"SMTP_RATE_LIMIT: cannot read {item!r} — {_HOW}")
        unit = _UNITS.get(match["unit"].lower().rstrip("."))
        if unit is None:
            raise ConfigError(
                f"SMTP_RATE_LIMIT: unknown unit {match['unit']!r} in {item!r} — use s, min, hour or day, "
                "e.g. SMTP_RATE_LIMIT=100/min, 500/day"
            )
        try:
            count = int(match["count"])
        except ValueError:
            raise ConfigError(
                f"SMTP_RATE_LIMIT: {match['count']!r} in {item!r} is not a whole number of messages — "
                "e.g. 30/min rather than 0.5/s"
            ) from None
        if count < 1:
            raise ConfigError(
                f"SMTP_RATE_LIMIT: {item!r} allows no message at all — give at least 1, "
                "or leave SMTP_RATE_LIMIT empty for no limit"
            )
        if unit in limits:
            raise ConfigError(
                f"SMTP_RATE_LIMIT gives a limit per {unit} twice ({limits[unit]} and {item}) — keep one"
            )
        limits[unit] = Limit(count, unit)
    if not limits:
        raise ConfigError(f"SMTP_RATE_LIMIT: {text!r} holds no limit — {_HOW}")
    return SendRate(tuple(sorted(limits.values(), key=lambda limit: limit.seconds)))
