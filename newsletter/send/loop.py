"""The send loop: stream members, skip what the ledger says is done, send over N connections.

``send_mailing`` is the whole of one mailing (open it in the ledger, render it, pace it, send it,
close it); ``deliver`` is the loop itself.  Nothing goes out once ``deadline`` (the meeting's start)
has passed: the loop checks the clock before each message, not only when it starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain, islice, repeat
from typing import TYPE_CHECKING

from newsletter.compose.mime import Envelope
from newsletter.errors import DailyCapReached, DeliveryError
from newsletter.model import FINAL, CampaignState, DeliveryStatus, MailKind, Report, Subscriber
from newsletter.send.progress import Progress
from newsletter.send.transports import Outcome, Transport, redact
from newsletter.state.bounces import enhanced_status, reason_of, send_time_kind
from newsletter.state.journal import Header
from newsletter.state.ledger import Claim, Ledger, Result
from newsletter.state.recorder import Recorder, recording

if TYPE_CHECKING:
    from newsletter.compose.mime import MessageFactory
    from newsletter.inputs.sending_list import RowProblems
    from newsletter.project import Project
    from newsletter.timing import Due

log = logging.getLogger(__name__)

#: Members read, looked up and claimed at a time (one transaction): the first chunk small, so the
#: first message goes soon, then twice as many each time up to the last size.  Memory stays flat
#: with the list's size, and the writes a claim makes at random places in the file (each new row's
#: index entries, its Message-ID's, its token's) share their pages with many others.
CHUNKS = (1000, 2000, 4000, 8000)
RECONNECTS = 3  # tries to hand one message over when the connection keeps dropping
Clock = Callable[[], dt.datetime]
Status = DeliveryStatus


def backoff(attempts: int) -> dt.timedelta:
    """5, 10, 20, 40 … minutes, at most 2 hours, between tries of a deferred message."""
    return min(dt.timedelta(minutes=5 * 2 ** min(max(attempts - 1, 0), 8)), dt.timedelta(hours=2))


def _chunks(items: Iterable[Subscriber]) -> Iterator[list[Subscriber]]:
    it = iter(items)
    sizes = chain(CHUNKS, repeat(CHUNKS[-1]))
    while chunk := list(islice(it, next(sizes))):
        yield chunk


def _result(key: str, outcome: Outcome, attempts: int, now: dt.datetime) -> Result:
    status = outcome.status
    next_try = now + backoff(attempts) if status in {Status.DEFERRED, Status.AMBIGUOUS} else None
    return Result(key, status, outcome.code, outcome.reply, next_try, attempts=attempts, at=now)


@dataclass
class _Run:
    """One call of ``deliver``: a producer that reads the list, N connections that send."""

    campaign: str
    members: Iterable[Subscriber]
    build: Callable[[Subscriber], Envelope]
    ledger: Ledger
    transport: Transport
    clock: Clock
    connections: int
    progress: Progress
    throttle: Callable[[], Iterator[float]] | None
    stop: threading.Event | None
    told: tuple[str, str] | None
    deadline: dt.datetime | None
    via: str = "relay"
    ids: Callable[[str], tuple[str, str]] | None = None
    report: Report = field(init=False)
    halt: asyncio.Event = field(default_factory=asyncio.Event)  # stop after what is in flight
    capped: list[DailyCapReached] = field(default_factory=list)
    complete: bool = False  # the whole list was read: rows not met in it left the list
    claimed: dict[str, Claim] = field(default_factory=dict)  # claimed, no result yet
    kept_open: set[str] = field(default_factory=set)  # met in the list, row left open (deferred…)

    def __post_init__(self) -> None:
        self.report = Report(self.campaign)
        self.queue: asyncio.Queue[tuple[Envelope, int] | None] = asyncio.Queue(maxsize=self.connections * 8)

    def too_late(self) -> bool:
        """The meeting has started (or SIGTERM came): nothing more may be handed over."""
        if self.stop is not None and self.stop.is_set():
            return True
        return self.deadline is not None and self.clock() >= self.deadline

    async def produce(self, recorder: Recorder) -> None:
        suppressed = self.ledger.suppressed()
        for number, chunk in enumerate(_chunks(self.members)):
            if number:  # an unsubscribe during a long send is honoured from the next chunk on
                suppressed = self.ledger.suppressed()
            self.report.total += len(chunk)
            todo = self.claim(chunk, suppressed, recorder)
            if todo is None:
                return  # SIGTERM, the day's cap or the meeting's start: queue no more
            for member, attempts in todo:
                if self.halt.is_set() or self.too_late():
                    return  # what is claimed and not queued goes back as it was, at the end
                await self.queue.put((self.build(member), attempts))
        self.complete = True

    def claim(
        self, chunk: list[Subscriber], suppressed: Mapping[str, object], recorder: Recorder
    ) -> list[tuple[Subscriber, int]] | None:
        """Look the chunk up, and claim in one transaction the members it is sent to; those, and the
        tries each has had (None: too late to send anything)."""
        now = self.clock()
        states = self.ledger.statuses(self.campaign, [m.key for m in chunk])
        claims: list[Claim] = []
        blocked: list[tuple[str, Status | None]] = []
        todo: list[tuple[Subscriber, int]] = []
        for member in chunk:
            row = states.get(member.key)
            if (row is not None and row.status in FINAL) or member.key in suppressed:
                if row is None or row.status not in FINAL:
                    blocked.append((member.key, row.status if row else None))
                self.progress.advance("skipped")
                continue
            if row and row.status == Status.DEFERRED and row.next_try and row.next_try > _iso(now):
                self.kept_open.add(member.key)
                self.report.counts[Status.DEFERRED] += 1
                self.progress.advance(Status.DEFERRED)
                continue
            mid, token = self.ids(member.key) if self.ids else (None, "")
            claims.append(Claim(member.key, row.status if row else None, mid, token))
            todo.append((member, row.attempts if row else 0))
        if claims and (self.halt.is_set() or self.too_late()):
            claims = []
        if claims or blocked:
            told = self.told if claims and recorder.header is None else None
            run = self.ledger.claim(self.campaign, claims, now=now, via=self.via, suppress=blocked, told=told)
            self.claimed.update((c.address, c) for c in claims)
            if claims and recorder.header is None:
                recorder.begin(Header(self.campaign, self.via, run))
        return todo if claims or not todo else None

    async def produce_then_stop(self, recorder: Recorder) -> None:
        await self.produce(recorder)
        if not self.halt.is_set():  # when halted, the halting connection queued the stop signals
            for _ in range(self.connections):
                await self.queue.put(None)

    def stop_all(self, err: DailyCapReached) -> None:
        # The other connections finish and record what they are sending; the message in hand was
        # never handed over, so it goes back as it was and waits for the next run.
        self.capped.append(err)
        self.halt.set()
        while not self.queue.empty():  # what is queued stays pending in the ledger
            self.queue.get_nowait()
        for _ in range(self.connections):  # every connection's stop signal, from here
            self.queue.put_nowait(None)

    async def pace(self) -> bool:
        """Wait for the rate limit's next slot; False when the day's cap is reached."""
        if self.throttle is None:
            return True
        try:
            pauses = list(self.throttle())
        except DailyCapReached as err:
            self.stop_all(err)
            return False
        for pause in pauses:
            await asyncio.sleep(pause)
        return True

    async def consume(self, recorder: Recorder) -> None:
        conn = None
        try:
            while (item := await self.queue.get()) is not None and not self.halt.is_set():
                envelope, attempts = item
                outcome = Outcome(Status.DEFERRED, dropped=True)
                for _ in range(RECONNECTS):
                    if not await self.pace():
                        return
                    if self.too_late():
                        outcome = Outcome(Status.PENDING, reply="not sent: the meeting has started")
                        break
                    if conn is None:
                        conn = await self.transport.connect()
                    attempts += 1
                    outcome = await conn.send(envelope)
                    if outcome.reconnect:
                        await conn.close()
                        conn = None
                    if not outcome.dropped:
                        break
                if outcome.status == Status.PENDING:
                    continue  # never handed over: goes back as it was, at the end
                self.record(envelope, outcome, attempts, recorder)
        finally:
            if conn is not None:
                await conn.close()

    def record(self, envelope: Envelope, outcome: Outcome, attempts: int, recorder: Recorder) -> None:
        claim = self.claimed.pop(envelope.key, None)
        result = dataclasses.replace(
            _result(envelope.key, outcome, attempts, self.clock()),
            # What the claim could not know (no ``ids``), or knew otherwise, comes with the result.
            message_id=None if claim and claim.message_id == envelope.message_id else envelope.message_id,
            token_hash="" if claim and claim.token_hash == envelope.token_hash else envelope.token_hash,
        )
        recorder.add(result)  # first: from here on a crash cannot send her this message again
        if result.status not in FINAL:
            self.kept_open.add(envelope.key)
        # A permanent refusal of the address counts as a hard bounce (a refusal of the message itself,
        # spam or size, does not): see state/bounces.py.
        refused = result.status == Status.FAILED and outcome.code and self.via == "relay"
        if refused and (kind := send_time_kind(outcome.code or 0, outcome.reply)):
            self.ledger.record_bounce(
                envelope.key,
                kind=kind,
                report_id=f"send:{envelope.message_id}",
                at=self.clock(),
                reason=reason_of(enhanced_status(outcome.reply), outcome.reply),
            )
        if result.status != Status.SENT:
            log.warning(
                "%s: one message %s: %s %s",
                self.campaign,
                result.status,
                outcome.code or "",
                redact(outcome.reply),
            )
        self.report.counts[result.status] += 1
        self.progress.advance(result.status)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


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
    deadline: dt.datetime | None = None,
    via: str = "relay",
    ids: Callable[[str], tuple[str, str]] | None = None,
) -> Report:
    """Send one mailing to every member the ledger does not already count as done.

    The caller holds the send lock, so a ``sending`` row here was left by a crash and is sent again.
    ``told`` (meeting, details) is recorded for each member reached, for change notices. ``ids``: a
    member key's Message-ID and unsubscribe token hash, as her envelope will have them, so that the
    claim records them before anything is sent (without it, each result brings them).
    """
    run = _Run(
        campaign, members, build, ledger, transport, clock, max(1, connections),
        progress or Progress(), throttle, stop, told, deadline, via, ids,
    )  # fmt: skip
    run.progress.start(None)
    with recording(ledger, clock) as recorder:
        tasks = [
            asyncio.create_task(run.produce_then_stop(recorder)),
            *(asyncio.create_task(run.consume(recorder)) for _ in range(run.connections)),
        ]
        try:
            # The first failure (say, the relay cannot be reached) ends the run; the rest stay pending.
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Claimed and never handed over (the cap, the meeting's start, a failure): back as it was.
            recorder.fold({key: claim.before for key, claim in run.claimed.items()}, last=True)
            run.progress.finish()
    if run.capped:
        run.capped[0].report = run.report
        raise run.capped[0]
    if run.complete:  # taken off the list since the mailing started: nothing more to send them
        ledger.mark_not_seen(campaign, Status.REMOVED, keep=run.kept_open | run.claimed.keys(), now=clock())
    return run.report


def _ids(factory: MessageFactory) -> Callable[[str], tuple[str, str]]:
    """A member key's Message-ID and unsubscribe token hash, as her envelope will carry them: the claim
    records both before anything is sent (a bounce, an unsubscribe click, finds her even after a crash)."""
    from newsletter.state.members import token_hash
    from newsletter.tokens import message_id, unsubscribe_token

    def ids(key: str) -> tuple[str, str]:
        mid = message_id(factory.secret, factory.campaign, key, factory.domain)
        return mid, token_hash(unsubscribe_token(factory.secret, key))

    return ids


def _reachable(found: Iterable[Subscriber], ledger: Ledger, only: set[str] | None) -> Iterator[Subscriber]:
    """The members as written, but not those whose mailbox no longer takes mail (not mailed until an
    organiser checks), and for a change notice only those it was opened for."""
    from newsletter.inputs.member_values import as_written

    bouncing = ledger.bouncing()
    return (as_written(m) for m in found if (only is None or m.key in only) and m.key not in bouncing)


def send_mailing(
    project: Project,
    due: Due,
    ledger: Ledger,
    *,
    clock: Clock,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Report:
    """Send one mailing to every member not yet done, recording each in the ledger; the caller holds
    the send lock. Each message is built, signed and handed over by the one pipeline."""
    from newsletter.inputs.sending_list import read_for_sending
    from newsletter.model import snapshot
    from newsletter.send.choices import Choices
    from newsletter.send.pipeline import Builder, Pipeline, blocking_placeholders, ledger_id
    from newsletter.send.ratelimit import limiter_for

    # What a killed send left must count before anything is read (the day's budget, who was told).
    # Opening the ledger folded it, unless another process was folding it at that moment: wait.
    ledger.recover(wait=True)
    mailing = due.mailing
    settings = project.settings
    cid = ledger_id(settings, mailing.id)
    told = snapshot(mailing.meeting)
    # A change notice goes only to the members it was opened for (see jobs.open_notices).
    only = ledger.enqueued(mailing.id) if mailing.kind == MailKind.CHANGE else None
    # A problem confined to one row leaves out that row only (and the organisers are told); a
    # problem with the whole file (no email column, unreadable) raises DataError here.
    found, rows = read_for_sending(project.subscribers_path)
    choices = Choices.read(ledger, project, mailing)  # her preferences: which reminders, and in what form
    members = choices.only_wanted(_reachable(found, ledger, only))
    blocking_placeholders(project, mailing, clock())
    sequence = ledger.sequence(mailing.meeting.key, told)
    builder = Builder(project, due, columns=project.columns(), sequence=sequence, choices=choices)
    factory = builder.prepared(clock()).factory  # template problems show before anything is recorded
    pipeline = Pipeline(settings, project.signer, mailing.id)
    # SMTP_RATE_LIMIT: a day's budget already spent stops here, before anything is built.
    limiter = limiter_for(settings.rate, ledger, now=clock) if settings.smtp else None
    ledger.open_campaign(
        cid, meeting=mailing.meeting.key, reminder=mailing.name, kind=mailing.kind, now=clock()
    )
    choices.close_unwanted(ledger, cid, now=clock())  # she chose otherwise since her row was opened
    try:
        report = asyncio.run(
            deliver(
                campaign=cid,
                members=members,
                build=lambda m: pipeline.finish(builder.build(m, now=clock())),
                ledger=ledger,
                transport=pipeline.transport,
                clock=clock,
                connections=settings.connections,
                progress=progress,
                stop=stop,
                # What members were told counts only when it reached them: not for an outbox try-out.
                told=(mailing.meeting.key, told) if settings.smtp else None,
                throttle=limiter.throttle if limiter else None,
                deadline=mailing.meeting.start(project.schedule.group.tz),
                via="relay" if settings.smtp else "outbox",
                ids=_ids(factory),
            )
        )
    except DeliveryError as err:
        # The relay could not be reached, refused the login, timed out…: `status` keeps why, since
        # under cron nobody sees this message; the next run resumes where this one stopped.
        ledger.set_stopped(cid, str(err), clock())
        raise
    ledger.set_stopped(cid, None, clock())
    return _closed(ledger, cid, report, rows, clock())


def _closed(ledger: Ledger, cid: str, report: Report, rows: RowProblems, now: dt.datetime) -> Report:
    """A run that went through: the campaign done when every member is, and the rows left out."""
    if all(status in FINAL for status in ledger.counts(cid)):
        ledger.set_campaign_state(cid, CampaignState.DONE, now=now)
        # The list this mailing went to: if it changes while the reminder is still due,
        # tick sends it to the newcomers (see jobs.tick).
        ledger.set_meta(f"list:{cid}", repr(rows.stamp))
    report.excluded = [str(problem) for problem in rows.problems]
    return report
