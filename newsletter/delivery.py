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

from .ledger import FINAL, Ledger
from .message import Envelope
from .model import Subscriber
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
    """
    report = Report(campaign)
    progress = progress or Progress()
    progress.start(None)
    queue: asyncio.Queue[Envelope | None] = asyncio.Queue(maxsize=connections * 8)
    suppressed = ledger.suppressed()
    seen: set[str] = set()

    async def produce() -> None:
        nonlocal suppressed
        for number, chunk in enumerate(_chunks(members)):
            now = clock()
            if number:  # an unsubscribe during a long send is honoured from the next chunk on
                suppressed = ledger.suppressed()
            keys = [m.key for m in chunk]
            seen.update(keys)
            report.total += len(chunk)
            ledger.enqueue(campaign, keys, now=now)
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
                if stop is not None and stop.is_set():  # SIGTERM: finish what is in flight, queue no more
                    return
                await queue.put(build(member))

    async def consume() -> None:
        conn = None
        try:
            while (envelope := await queue.get()) is not None:
                outcome = Outcome("dropped")
                for _ in range(RECONNECTS):
                    if conn is None:
                        conn = await transport.connect()
                    if throttle is not None:
                        for pause in throttle():
                            await asyncio.sleep(pause)
                    ledger.claim(campaign, envelope.key, now=clock(), message_id=envelope.message_id)
                    outcome = await conn.send(envelope)
                    if outcome.reconnect:
                        await conn.close()
                        conn = None
                    if outcome.status != "dropped":
                        break
                _record(ledger, campaign, envelope.key, outcome, clock(), told)
                report.counts[outcome.status if outcome.status != "dropped" else "deferred"] += 1
                progress.advance(outcome.status)
        finally:
            if conn is not None:
                await conn.close()

    async def produce_then_stop() -> None:
        await produce()
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
        progress.finish()
    gone = [d.address for d in ledger.deliveries(campaign) if d.status not in FINAL and d.address not in seen]
    if gone:  # taken off the list since the mailing started: nothing more to send them
        ledger.mark(campaign, gone, "removed", now=clock())
    return report


def _record(
    ledger: Ledger,
    campaign: str,
    key: str,
    outcome: Outcome,
    now: dt.datetime,
    told: tuple[str, str] | None = None,
) -> None:
    if outcome.status == "sent":
        ledger.record(campaign, key, "sent", now=now, code=outcome.code, reply=outcome.reply, told=told)
        return
    status = "deferred" if outcome.status == "dropped" else outcome.status
    attempts = next(iter(ledger.statuses(campaign, [key]).values())).attempts
    next_try = now + backoff(attempts) if status in {"deferred", "ambiguous"} else None
    ledger.record(campaign, key, status, now=now, code=outcome.code, reply=outcome.reply, next_try=next_try)
    log.warning("%s: one message %s: %s %s", campaign, status, outcome.code or "", redact(outcome.reply))
