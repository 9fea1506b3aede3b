"""`tick` (cron) and `run` (the daemon): send what is due, once, and say what was missed.

The decisions are pure (``due``); this module does the I/O around them. Both entry points take the
send lock, so cron and the daemon (or two crons) never send the same mailing at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .app import Busy, Project
from .due import Due, plan
from .ledger import FINAL, Ledger

if TYPE_CHECKING:
    from .delivery import Progress

log = logging.getLogger("newsletter.scheduler")

#: A window that closed longer ago than this, with nothing in the ledger, is history, not news.
LOOKBACK = dt.timedelta(days=14)


@dataclass
class TickReport:
    sent: int = 0
    problems: int = 0
    lines: list[str] = field(default_factory=list)


def _ledger(project: Project) -> Ledger:
    return Ledger(project.settings.state_path)


def close_window(project: Project, ledger: Ledger, due: Due, *, now: dt.datetime) -> str | None:
    """The reminder's window has closed: record it as skipped or closed, tell the organisers once."""
    campaign = ledger.campaign(due.id)
    if campaign is not None and campaign.state in {"done", "skipped", "closed"}:
        return None
    mailing = due.mailing
    if campaign is None:
        if now - due.until > LOOKBACK:
            return None
        ledger.open_campaign(
            due.id, meeting=mailing.meeting.key, reminder=mailing.reminder.name, kind=mailing.kind, now=now
        )
        reason = (
            f"not sent: its window closed at {due.until:%Y-%m-%d %H:%M %Z} before a send ran "
            "(was the machine or the daemon off?); a late reminder would be wrong"
        )
        ledger.set_campaign_state(due.id, "skipped", now=now, reason=reason)
        message = f"{due.id}: skipped — {reason}"
    else:
        counts = ledger.counts(due.id)
        left = sum(n for status, n in counts.items() if status not in FINAL)
        if not left:
            ledger.set_campaign_state(due.id, "done", now=now)
            return None
        reason = f"window closed with {left} member(s) not reached; see `newsletter status {due.id}`"
        ledger.set_campaign_state(due.id, "closed", now=now, reason=reason)
        message = f"{due.id}: {reason}"
    log.warning("%s", message)
    notify_organisers(project, due, message, now=now)
    return message


def notify_organisers(project: Project, due: Due, text: str, *, now: dt.datetime) -> None:
    """A short mail to the organisers: counts and where to look, never members' addresses."""
    from .app import send_small
    from .message import small_message
    from .transport import redact

    subject = f"Newsletter: {due.mailing.meeting.title} {due.mailing.reminder.name} reminder needs a look"
    for organiser in project.schedule.group.organisers:
        if not organiser.email:
            continue
        body = (
            f"Hello {organiser.name},\n\n{redact(text)}\n\nRun `newsletter status {due.id}` on the "
            "server to see who was not reached and why.\n"
        )
        try:
            envelope = small_message(
                sender=project.sender, to=organiser.email, subject=subject, text=body, now=now
            )
            send_small(project, envelope, campaign=f"organisers/{due.id}")
        except Exception as err:  # telling the organisers must never stop the sending
            log.error("could not notify an organiser: %s", redact(str(err)))


def notices(project: Project, ledger: Ledger, *, now: dt.datetime) -> list[Due]:
    """Open change notices for meetings edited after members were reminded; return those to send.

    Members are grouped by what they were told, so each notice says what changed for its readers.
    A notice still going out for an older state of the meeting is superseded by the new one.
    """
    import hashlib
    import json

    from .changes import audiences, current, same, snapshot
    from .mailing import Mailing
    from .model import ReminderRule

    schedule = project.schedule
    tz = schedule.group.tz
    out: list[Due] = []
    for key in ledger.told_meetings(since=now.astimezone(tz).date().isoformat()):
        told = ledger.told(key)
        meeting = current(schedule, key, next(iter(told.values())))
        campaigns = ledger.campaigns_for(key, "change")
        opened = [c for c in campaigns if c.state == "open"]
        start = meeting.start(tz)
        if start <= now:  # the meeting has begun: a correction would come too late
            for c in opened:
                ledger.set_campaign_state(c.id, "closed", now=now, reason="the meeting had started")
            continue
        latest = snapshot(meeting)
        for c in opened:
            if not same(json.loads(c.details or "{}").get("now", "{}"), latest):
                ledger.set_campaign_state(c.id, "closed", now=now, reason="superseded by a later change")
        live = [c for c in opened if same(json.loads(c.details or "{}").get("now", "{}"), latest)]
        waiting = set().union(*(ledger.enqueued(c.id) for c in live)) if live else set()
        for before, addresses in sorted(audiences(told, meeting).items()):
            fresh = addresses - waiting
            if not fresh:
                continue
            name = f"change-{ledger.sequence(key, latest)}"
            existing = ledger.campaign(f"{key}/{name}")
            if existing is not None and json.loads(existing.details or "{}").get("before") != before:
                # Members told different things get different notices ("from what to what").
                name += "-" + hashlib.sha256(before.encode()).hexdigest()[:6]
            cid = f"{key}/{name}"
            campaign = ledger.open_campaign(
                cid,
                meeting=key,
                reminder=name,
                kind="change",
                now=now,
                details=json.dumps({"now": latest, "before": before}),
            )
            ledger.enqueue(cid, sorted(fresh), now=now)
            if campaign.state != "open":
                ledger.set_campaign_state(cid, "open", now=now)
            if all(c.id != cid for c in live):
                live.append(campaign)
        for c in live:
            before = json.loads(c.details or "{}")["before"]
            rule = ReminderRule(name=c.reminder, days_before=0, at=dt.time(0, 0))
            created = dt.datetime.fromisoformat(c.created_at)
            out.append(Due(Mailing(meeting, rule, kind="change", previous=before), created, start))
    return out


def list_changed(project: Project, ledger: Ledger, due: Due) -> bool:
    """subscribers.csv is not the file this (finished) mailing went to: newcomers may be waiting."""
    from .subscribers import file_stamp

    return ledger.get_meta(f"list:{due.id}") != repr(file_stamp(project.subscribers_path))


def tick(
    project: Project,
    *,
    now: dt.datetime,
    clock: Callable[[], dt.datetime],
    progress_factory: Callable[[], Progress] | None = None,
    stop: threading.Event | None = None,
) -> TickReport:
    """Send every reminder that is due and not yet delivered; close the windows that ended."""
    from .app import send, send_lock

    report = TickReport()
    lock = send_lock(project, wait=0)  # cron every few minutes: if one is running, this one is not needed

    def deliver_one(ledger: Ledger, due: Due) -> None:
        result = send(
            project,
            due,
            clock=clock,
            lock=False,
            progress=progress_factory() if progress_factory else None,
            stop=stop,
        )
        counts = ledger.counts(due.id)
        left = {k: v for k, v in counts.items() if k not in {"sent", "suppressed", "removed"}}
        line = (
            f"{due.id}: sent {result.counts['sent']} now, "
            f"{counts.get('sent', 0)}/{sum(counts.values())} in all"
            + (", " + ", ".join(f"{v} {k}" for k, v in sorted(left.items())) if left else "")
        )
        log.info("%s", line)
        report.lines.append(line)
        report.sent += result.counts["sent"]
        report.problems += sum(left.values())

    try:
        with _ledger(project) as ledger:
            # Change notices first: a member must not get a reminder before the correction.
            for due in notices(project, ledger, now=now):
                if stop is not None and stop.is_set():
                    break
                deliver_one(ledger, due)
            for due in plan(project.schedule):
                state = due.state(now)
                if state == "closed":
                    if (line := close_window(project, ledger, due, now=now)) is not None:
                        report.lines.append(line)
                    continue
                if state != "due":
                    continue
                campaign = ledger.campaign(due.id)
                if campaign is not None and campaign.state in {"skipped", "closed"}:
                    continue
                if (
                    campaign is not None
                    and campaign.state == "done"
                    and not list_changed(project, ledger, due)
                ):
                    continue
                if stop is not None and stop.is_set():
                    break
                deliver_one(ledger, due)
    finally:
        lock.release()
    return report


def run_daemon(obj_settings: Callable[[], Project], *, poll: float = 30.0, retry: float = 300.0) -> int:
    """APScheduler jobs at each due time, a catch-up tick at start and every few minutes, reload on edit."""
    import signal

    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.date import DateTrigger

    from .errors import DataError

    stop = threading.Event()
    state: dict[str, object] = {"project": obj_settings(), "mtime": None}
    scheduler = BackgroundScheduler(
        timezone=dt.UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )

    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def do_tick() -> None:
        project = state["project"]
        assert isinstance(project, Project)
        try:
            result = tick(project, now=now(), clock=now, stop=stop)
            for line in result.lines:
                log.warning("%s", line)
        except Busy:
            log.info("another send is running; skipping this tick")
        except Exception:
            log.exception("tick failed; will try again at the next one")

    def reschedule() -> None:
        project = state["project"]
        assert isinstance(project, Project)
        for job in scheduler.get_jobs():
            if job.id.startswith("due:"):
                job.remove()
        for due in plan(project.schedule):
            if due.at > now():
                # misfire_grace_time=None: a job that fires late (suspend, busy) still runs; tick
                # itself decides whether the reminder's window is still open.
                scheduler.add_job(
                    do_tick, DateTrigger(run_date=due.at), id=f"due:{due.id}", replace_existing=True
                )

    def watch() -> None:
        path = state["project"].home / "schedule.yaml"  # type: ignore[attr-defined]
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return
        if mtime == state["mtime"]:
            return
        first = state["mtime"] is None
        state["mtime"] = mtime
        if first:
            return
        try:
            state["project"] = obj_settings()
        except DataError as err:
            log.error("schedule.yaml changed but has mistakes; keeping the last good schedule:\n%s", err)
            return
        log.warning("schedule.yaml changed: reminders rescheduled")
        reschedule()
        do_tick()

    def on_signal(signum: int, frame: object) -> None:
        log.warning("stopping (signal %d): finishing the message in flight", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    watch()
    reschedule()
    scheduler.add_job(do_tick, "interval", seconds=retry, id="retry")
    scheduler.add_job(watch, "interval", seconds=poll, id="watch")
    scheduler.start()
    log.warning("newsletter daemon started: %d reminders scheduled", len(scheduler.get_jobs()) - 2)
    scheduler.add_job(do_tick, id="catch-up")  # whatever fell due while it was down
    stop.wait()
    scheduler.shutdown(wait=True)
    log.warning("newsletter daemon stopped")
    return 0
