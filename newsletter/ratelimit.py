"""``SMTP_RATE_LIMIT``: how many messages may go out per second, minute, hour and day.

The limits below a day are sliding windows kept in memory: only the process holding the send lock
sends, so nothing else shares them.  The day's budget is per UTC calendar day and is counted in the
state database (``send_counts``, bumped on every ``sent``), so a restart, the next tick or a second
mailing the same day starts from what really went out.  When the day's budget is spent the limiter
raises :class:`DailyCapReached` instead of sleeping until midnight; the members left stay pending in
the ledger and the next run after 00:00 UTC sends them.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .errors import ConfigError, NewsletterError

if TYPE_CHECKING:
    from .delivery import Report

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


class DailyCapReached(NewsletterError):
    """The day's sending budget is spent: stop now, the rest goes out on the next day's run."""

    exit_code = 3

    def __init__(self, cap: int, day: dt.date) -> None:
        self.cap = cap
        self.day = day
        self.report: Report | None = None  # what the run sent before it stopped (set by deliver)
        super().__init__(
            f"the daily limit of {cap} messages (SMTP_RATE_LIMIT) is reached for {day.isoformat()} (UTC); "
            "the members not yet sent stay queued and go out after 00:00 UTC — on the next "
            "`newsletter tick`, or run `newsletter send` again then"
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
class RateLimit:
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


def parse_rate_limit(text: str) -> RateLimit:
    """``"100/min, 500/day"`` → RateLimit; ConfigError says what to write instead."""
    text = text.strip()
    if not text or text.lower() in {"none", "off"}:
        return RateLimit()
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
    return RateLimit(tuple(sorted(limits.values(), key=lambda limit: limit.seconds)))


class SentCounter(Protocol):
    """What the limiter needs from the ledger: messages recorded ``sent`` on a UTC day."""

    def sent_on(self, day: dt.date) -> int: ...


class RateLimiter:
    """Hands out send slots: how long to wait before the next message, or DailyCapReached.

    Each call reserves the earliest moment that keeps every window within its count (slots are
    handed out in call order, so connections waiting on one another stay fair).  ``clock`` is
    monotonic seconds; ``today`` the current UTC date; ``sent_on`` the day's count already sent,
    read when the limiter starts and whenever the date changes.
    """

    def __init__(
        self,
        rate: RateLimit,
        *,
        today: Callable[[], dt.date],
        sent_on: Callable[[dt.date], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self._clock = clock
        self._today = today
        self._sent_on = sent_on
        self._windows = [(limit, deque[float](maxlen=limit.count)) for limit in rate.windows]
        self._last = float("-inf")
        self._day = today()
        self._used = sent_on(self._day)

    def _roll(self) -> None:
        day = self._today()
        if day != self._day:  # a new UTC day: its budget is what the ledger counts for it
            self._day = day
            self._used = self._sent_on(day)

    @property
    def remaining_today(self) -> int | None:
        """Messages still allowed today, or None without a daily cap."""
        cap = self.rate.daily
        if cap is None:
            return None
        self._roll()
        return max(cap - self._used, 0)

    def check(self) -> None:
        """Raise DailyCapReached when today's budget is already spent (reserves nothing)."""
        if self.remaining_today == 0:
            assert self.rate.daily is not None
            raise DailyCapReached(self.rate.daily, self._day)

    def acquire(self) -> float:
        """Reserve the next slot: seconds to wait before handing over the message (0 = now)."""
        self.check()
        now = self._clock()
        at = max(now, self._last)
        for limit, sent in self._windows:
            if len(sent) == limit.count:  # full: the oldest of the last `count` must leave the window
                at = max(at, sent[0] + limit.seconds)
        for _, sent in self._windows:
            sent.append(at)
        self._last = at
        self._used += 1
        return at - now

    def throttle(self) -> Iterator[float]:
        """For ``deliver(throttle=...)``: the pause before one message (none when it may go now)."""
        pause = self.acquire()
        if pause > 0:
            yield pause


def limiter_for(
    setting: str,
    ledger: SentCounter,
    *,
    now: Callable[[], dt.datetime],
    clock: Callable[[], float] = time.monotonic,
) -> RateLimiter | None:
    """The limiter for ``SMTP_RATE_LIMIT`` (None when unset), its day budget seeded from the ledger.

    ``now`` is the send's wall clock (the one the ledger records with): its UTC date picks the day.
    Raises DailyCapReached at once when today's budget is already spent.
    """
    rate = parse_rate_limit(setting)
    if not rate:
        return None
    limiter = RateLimiter(
        rate,
        today=lambda: now().astimezone(dt.UTC).date(),
        sent_on=ledger.sent_on,
        clock=clock,
    )
    limiter.check()
    return limiter
