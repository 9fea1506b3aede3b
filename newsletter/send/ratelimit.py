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
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Protocol

from newsletter.errors import DailyCapReached
from newsletter.rate import SendRate


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
        rate: SendRate,
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
    rate: SendRate,
    ledger: SentCounter,
    *,
    now: Callable[[], dt.datetime],
    clock: Callable[[], float] = time.monotonic,
) -> RateLimiter | None:
    """The limiter for ``SMTP_RATE_LIMIT`` (None when unset), its day budget seeded from the ledger.

    ``now`` is the send's wall clock (the one the ledger records with): its UTC date picks the day.
    Raises DailyCapReached at once when today's budget is already spent.
    """
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
