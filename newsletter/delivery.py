"""The send loop: stream members, skip what the ledger says is done, send over N connections."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from .ledger import FINAL, Ledger, Result
from .message import Envelope
from .model import Subscriber
from .ratelimit import DailyCapReached
from .transport import Outcome, Transport, redact

log = logging.getLogger(__name__)

CHUNK = 500  # members read, looked up and queued at a time: memory stays flat with the list's size
RECONNECTS = 3  # tries to hand one message over when the connection keeps dropping
Clock = Callable[[], dt.datetime]


def backoff(attempts: int) -> dt.timedelta:
    """5, 10, 20, 40 … minutes, at most 2 hours, between tries of a deferred message."""
    return min(dt.timedelta(minutes=5 * 2 ** min(max(attempts - 1, 0), 8)), dt.timedelta(hours=2))


@dataclass
class Report:
    campaign: str
    counts: Counter[str] = field(default_factory=Counter)  # this run's outcomes
    total: int = 0  # members in the list for this mailing

    @property
    def problems(self) -> int:
        return self.counts["deferred"] + self.counts["failed"] + self.counts["ambiguous"]


class Progress:
    """Told about each outcome; the CLI shows a bar or log lines, tests ignore it."""

    def start(self, total: int | None) -> None: ...
    def advance(self, outcome: str) -> None: ...
    def finish(self) -> None: ...


def _chunks(items: Iterable[Subscriber]) -> Iterator[list[Subscriber]]:
    it = iter(items)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


class _Journal:
    """Group commit: the ledger writes of all connections that finish in the same moment share one
    transaction. A claim is committed before its message goes out and a result before the same
    connection's next claim, so a crash can only resend what was claimed and not yet confirmed:
    at most one message per connection."""

    def __init__(self, ledger: Ledger, campaign: str, clock: Clock, told: tuple[str, str] | None) -> None:
        self.ledger, self.campaign, self.clock, self.told = ledger, campaign, clock, told
        self.claims: list[tuple[str, str]] = []
        self.results: list[Result] = []
        self.waiters: list[asyncio.Future[None]] = []

    async def commit(self, *, claim: tuple[str, str] | None = None, result: Result | None = None) -> None:
        if claim is not None:
            self.claims.append(claim)
        if result is not None:
            self.results.append(result)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        if not self.waiters:  # the first writer of this moment schedules the one transaction
            loop.call_soon(self.flush)
        self.waiters.append(waiter)
        await waiter

    def flush(self) -> None:
        claims, results, waiters = self.claims, self.results, self.waiters
        self.claims, self.results, self.waiters = [], [], []
        try:
            self.ledger.write_batch(
                self.campaign, claims=claims, results=results, now=self.clock(), told=self.told
            )
        except BaseException as err:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(err)
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _result(key: str, outcome: Outcome, attempts: int, now: dt.datetime) -> Result:
    status = "deferred" if outcome.status == "dropped" else outcome.status
    next_try = now + backoff(attempts) if status in {"deferred", "ambiguous"} else None
    return Result(key, status, outcome.code, outcome.reply, next_try)


async def deliver(
    *,
    campaign: str,
    members: Iterable[Subscriber],
    build: Callable[[Subscriber], Envelope],
    ledger: Ledger,
    transport: Transport,
    clock: Clock,
    connections: int = 4,
    progress: Progress | None = None,
    throttle: Callable[[], Iterator[float]] | None = None,
    stop: threading.Event | None = None,
    told: tuple[str, str] | None = None,
) -> Report:
    """Send one mailing to every member the ledger does not already count as done.

    The caller holds the send lock, so a ``sending`` row here was left by a crash and is sent again.
    ``told`` (meeting, details) is recorded for each member reached, for change notices.
    """
    report = Report(campaign)
    progress = progress or Progress()
    progress.start(None)
    queue: asyncio.Queue[tuple[Envelope, int] | None] = asyncio.Queue(maxsize=connections * 8)
    journal = _Journal(ledger, campaign, clock, told)
    suppressed = ledger.suppressed()
    complete: list[bool] = []  # the whole list was read: rows not met in it left the list
    ledger.start_run()

    async def produce() -> None:
        nonlocal suppressed
        for number, chunk in enumerate(_chunks(members)):
            now = clock()
            if number:  # an unsubscribe during a long send is honoured from the next chunk on
                suppressed = ledger.suppressed()
            keys = [m.key for m in chunk]
            report.total += len(chunk)
            ledger.enqueue(campaign, keys, now=now, seen=True)
            blocked = [k for k in keys if k in suppressed]
            if blocked:
                ledger.mark(campaign, blocked, "suppressed", now=now)
            states = ledger.statuses(campaign, keys)
            for member in chunk:
                row = states[member.key]
                if row.status in FINAL or member.key in suppressed:
                    progress.advance("skipped")
                    continue
                if (
                    row.status == "deferred"
                    and row.next_try
                    and row.next_try > now.astimezone(dt.UTC).isoformat()
                ):
                    report.counts["deferred"] += 1
                    progress.advance("deferred")
                    continue
                if halt.is_set() or (stop is not None and stop.is_set()):
                    return  # SIGTERM or the day's cap: finish what is in flight, queue no more
                await queue.put((build(member), row.attempts))
        complete.append(True)

    async def consume() -> None:
        conn = None
        unsaved: Result | None = None  # the last outcome, written together with the next claim
        try:
            while (item := await queue.get()) is not None and not halt.is_set():
                envelope, attempts = item
                outcome = Outcome("dropped")
                for _ in range(RECONNECTS):
                    if throttle is not None:
                        try:
                            pauses = list(throttle())
                        except DailyCapReached as err:
                            # The other connections finish and record what they are sending; this
                            # message is not claimed, so it simply waits for tomorrow's run.
                            capped.append(err)
                            halt.set()
                            while not queue.empty():  # what is queued stays pending in the ledger
                                queue.get_nowait()
                            for _ in range(workers):  # every connection's stop signal, from here
                                queue.put_nowait(None)
                            return
                        for pause in pauses:
                            await asyncio.sleep(pause)
                    if conn is None:
                        conn = await transport.connect()
                    await journal.commit(claim=(envelope.key, envelope.message_id), result=unsaved)
                    unsaved = None
                    attempts += 1
                    outcome = await conn.send(envelope)
                    if outcome.reconnect:
                        await conn.close()
                        conn = None
                    if outcome.status != "dropped":
                        break
                unsaved = _result(envelope.key, outcome, attempts, clock())
                if unsaved.status != "sent":
                    log.warning(
                        "%s: one message %s: %s %s",
                        campaign,
                        unsaved.status,
                        outcome.code or "",
                        redact(outcome.reply),
                    )
                report.counts[unsaved.status] += 1
                progress.advance(outcome.status)
            if unsaved is not None:
                await journal.commit(result=unsaved)
                unsaved = None
        finally:
            if unsaved is not None:  # stopped or failed: the outcome we have must not be lost
                ledger.write_batch(campaign, claims=[], results=[unsaved], now=clock(), told=told)
            if conn is not None:
                await conn.close()

    halt = asyncio.Event()  # the day's cap is reached: stop after what is in flight
    capped: list[DailyCapReached] = []

    async def produce_then_stop() -> None:
        await produce()
        if not halt.is_set():  # when halted, the halting connection queued the stop signals
            for _ in range(workers):
                await queue.put(None)

    workers = max(1, connections)
    tasks = [
        asyncio.create_task(produce_then_stop()),
        *(asyncio.create_task(consume()) for _ in range(workers)),
    ]
    try:
        # The first failure (say, the relay cannot be reached) ends the run; the rest stay pending.
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if journal.waiters:
            journal.flush()
        progress.finish()
    if capped:
        capped[0].report = report
        raise capped[0]
    if complete:  # taken off the list since the mailing started: nothing more to send them
        ledger.mark_not_seen(campaign, "removed", now=clock())
    return report
