"""`send` and `tick` as jobs: send what is due, once, record it, and tell the organisers what was missed.

The decisions are pure (``timing``, ``notices``); this module does the reading and writing around
them.  Every job takes the send lock, so cron, the daemon and a manual send never send the same
mailing at once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from newsletter.model import FINAL, SETTLED, CampaignState, MailKind, Report, snapshot
from newsletter.project import Project
from newsletter.send.pipeline import ledger_id
from newsletter.state.ledger import ChangeDetails, Ledger
from newsletter.timing import Due, Window, plan

if TYPE_CHECKING:
    from newsletter.send.progress import Progress

log = logging.getLogger("newsletter.jobs")

#: A window that closed longer ago than this, with nothing in the ledger, is history, not news.
LOOKBACK = dt.timedelta(days=14)
Clock = Callable[[], dt.datetime]


@dataclass
class TickReport:
    sent: int = 0
    problems: int = 0
    busy: bool = False  # another run held the send lock: this one did nothing
    lines: list[str] = field(default_factory=list)


def send_one(
    project: Project,
    due: Due,
    *,
    clock: Clock,
    progress: Progress | None = None,
    lock_wait: float = 60.0,
) -> Report | None:
    """`newsletter send`: one mailing, under the send lock; None when another run kept the lock."""
    from newsletter.send.loop import send_mailing
    from newsletter.send.pipeline import send_lock

    with send_lock(project.settings, wait=lock_wait) as held:
        if not held:
            return None
        with Ledger(project.settings.state_path) as ledger:
            return send_mailing(project, due, ledger, clock=clock, progress=progress)


def close_window(project: Project, ledger: Ledger, due: Due, *, now: dt.datetime) -> str | None:
    """The reminder's window has closed: record it as skipped or closed, tell the organisers once."""
    campaign = ledger.campaign(due.id)
    if campaign is not None and campaign.state != CampaignState.OPEN:
        return None
    mailing = due.mailing
    if campaign is None:
        if now - due.until > LOOKBACK:
            return None
        ledger.open_campaign(
            due.id, meeting=mailing.meeting.key, reminder=mailing.name, kind=mailing.kind, now=now
        )
        why = (
            "and SMTP_URL is not set, so it only went to the outbox"
            if project.settings.smtp is None
            else "before a send ran (was the machine or the daemon off?)"
        )
        reason = (
            f"not sent: its window closed at {due.until:%Y-%m-%d %H:%M %Z} {why}; "
            "a late reminder would be wrong"
        )
        ledger.set_campaign_state(due.id, CampaignState.SKIPPED, now=now, reason=reason)
        message = f"{due.id}: skipped — {reason}"
    else:
        counts = ledger.counts(due.id)
        left = sum(n for status, n in counts.items() if status not in FINAL)
        if not left:
            ledger.set_campaign_state(due.id, CampaignState.DONE, now=now)
            return None
        reason = f"window closed with {left} member(s) not reached; see `newsletter status {due.id}`"
        ledger.set_campaign_state(due.id, CampaignState.CLOSED, now=now, reason=reason)
        message = f"{due.id}: {reason}"
    log.warning("%s", message)
    notify_organisers(project, due, message, now=now)
    return message


def notify_organisers(project: Project, due: Due, text: str, *, now: dt.datetime) -> None:
    """A short mail to the organisers: counts and where to look, never members' addresses."""
    from newsletter.compose.mime import small_message
    from newsletter.send.pipeline import Pipeline
    from newsletter.send.transports import redact

    subject = f"Newsletter: {due.mailing.meeting.title} {due.mailing.name} reminder needs a look"
    pipeline = Pipeline.of(project, f"organisers/{due.id}")
    for organiser in project.schedule.group.organisers:
        if not organiser.email:
            continue
        body = (
            f"Hello {organiser.name},\n\n{redact(text)}\n\nRun `newsletter status {due.id}` on the "
            "server to see who was not reached and why.\n"
        )
        try:
            pipeline.send(
                small_message(
                    sender=project.settings.sender,
                    to=organiser.email,
                    subject=subject,
                    text=body,
                    now=now,
                    tz=project.schedule.group.tz,
                )
            )
        except Exception as err:  # telling the organisers must never stop the sending
            log.error("could not notify an organiser: %s", redact(str(err)))


def open_notices(project: Project, ledger: Ledger, *, now: dt.datetime) -> list[Due]:
    """Record the change notices the schedule's edits call for (``notices.plan``); return those to send."""
    from newsletter.notices import NoticeCampaign, current, needs_notice
    from newsletter.notices import plan as plan_notices

    schedule = project.schedule
    tz = schedule.group.tz
    out: list[Due] = []
    for key in ledger.told_meetings(since=now.astimezone(tz).date().isoformat()):
        told = ledger.told(key)
        meeting = current(schedule, key, next(iter(told.values())))
        start = meeting.start(tz)
        campaigns = [
            NoticeCampaign(
                c.id,
                c.reminder,
                c.state == CampaignState.OPEN,
                c.change.now,
                c.change.before,
                frozenset(ledger.enqueued(c.id)),
                dt.datetime.fromisoformat(c.created_at),
            )
            for c in ledger.campaigns_for(key, MailKind.CHANGE)
            if c.change is not None
        ]
        sequence = (
            ledger.sequence(key, snapshot(meeting))
            if needs_notice(told, meeting, start=start, now=now)
            else 0
        )
        decided = plan_notices(meeting, told, campaigns, start=start, now=now, sequence=sequence)
        for cid, reason in decided.close:
            ledger.set_campaign_state(cid, CampaignState.CLOSED, now=now, reason=reason)
        for new in decided.open:
            details = ChangeDetails(now=new.now, before=new.before)
            opened = ledger.open_campaign(
                new.id, meeting=key, reminder=new.name, kind=MailKind.CHANGE, now=now, details=details.dump()
            )
            ledger.enqueue(new.id, sorted(new.members), now=now)
            if opened.state != CampaignState.OPEN:
                ledger.set_campaign_state(new.id, CampaignState.OPEN, now=now)
        out.extend(decided.send)
    return out


def list_changed(project: Project, ledger: Ledger, due: Due) -> bool:
    """subscribers.csv is not the file this (finished) mailing went to: newcomers may be waiting."""
    from newsletter.inputs.members import file_stamp

    cid = ledger_id(project.settings, due.id)
    return ledger.get_meta(f"list:{cid}") != repr(file_stamp(project.subscribers_path))


def _wanted(project: Project, ledger: Ledger, due: Due) -> bool:
    """A due reminder still owes someone a mail (or the list gained newcomers since it was sent)."""
    campaign = ledger.campaign(ledger_id(project.settings, due.id))
    if campaign is None or campaign.state == CampaignState.OPEN:
        return True
    return campaign.state == CampaignState.DONE and list_changed(project, ledger, due)


def tick(
    project: Project,
    *,
    now: dt.datetime,
    clock: Clock,
    progress_factory: Callable[[], Progress] | None = None,
    stop: threading.Event | None = None,
) -> TickReport:
    """Send every reminder that is due and not yet delivered; close the windows that ended."""
    from newsletter.send.pipeline import send_lock

    report = TickReport()
    # cron every few minutes: if a run is going on, this one is not needed
    with send_lock(project.settings, wait=0) as held:
        if not held:
            report.busy = True
            return report
        with Ledger(project.settings.state_path) as ledger:
            # Change notices first: a member must not get a reminder before the correction.
            todo = open_notices(project, ledger, now=now)
            for due in plan(project.schedule):
                state = due.state(now)
                if state == Window.CLOSED:
                    if (line := close_window(project, ledger, due, now=now)) is not None:
                        report.lines.append(line)
                elif state == Window.DUE and _wanted(project, ledger, due):
                    todo.append(due)
            for due in todo:
                if stop is not None and stop.is_set():
                    break
                _deliver(
                    project, ledger, due, report, clock=clock, progress_factory=progress_factory, stop=stop
                )
    return report


def _deliver(
    project: Project,
    ledger: Ledger,
    due: Due,
    report: TickReport,
    *,
    clock: Clock,
    progress_factory: Callable[[], Progress] | None,
    stop: threading.Event | None,
) -> None:
    from newsletter.send.loop import send_mailing

    progress = progress_factory() if progress_factory else None
    result = send_mailing(project, due, ledger, clock=clock, progress=progress, stop=stop)
    counts = ledger.counts(result.campaign)
    left = {k: v for k, v in counts.items() if k not in SETTLED}
    line = (
        f"{result.campaign}: sent {result.counts['sent']} now, "
        f"{counts.get('sent', 0)}/{sum(counts.values())} in all"
        + (", " + ", ".join(f"{v} {k}" for k, v in sorted(left.items())) if left else "")
    )
    log.info("%s", line)
    report.lines.append(line)
    report.sent += result.counts["sent"]
    report.problems += sum(left.values())


@dataclass
class DryRun:
    """What a send of one mailing would do now: who gets it, who is skipped and why (by CSV line)."""

    where: str
    recipients: list[int | None] = field(default_factory=list)  # CSV lines
    size: int = 0
    skipped: dict[str, list[int | None]] = field(default_factory=dict)  # reason → CSV lines

    def skip(self, reason: str, line: int | None) -> None:
        self.skipped.setdefault(reason, []).append(line)

    def skipped_lines(self) -> list[str]:
        return [
            f"{len(lines)} {reason} (subscribers.csv line {_lines(lines)})"
            for reason, lines in self.skipped.items()
        ]


def _lines(lines: list[int | None]) -> str:
    shown = [str(n) for n in lines[:12] if n is not None]
    return ", ".join(shown) + (f" and {len(lines) - 12} more" if len(lines) > 12 else "")


def would_send(project: Project, due: Due, *, now: dt.datetime) -> DryRun:
    """``send --dry-run``: build every message that would go out now, send none, record nothing."""
    from newsletter.send.pipeline import Pipeline, prepare

    prepared = prepare(project, due, now=now, columns=project.columns())
    pipeline = Pipeline(project.settings, project.signer, due.id)
    plan = DryRun(pipeline.describe())
    path = project.settings.state_path
    ledger = Ledger(path) if path.exists() else None  # reading makes no state database
    cid = ledger_id(project.settings, due.id)
    try:
        suppressed = ledger.suppressed() if ledger else {}
        only = ledger.enqueued(due.id) if ledger and due.mailing.kind == MailKind.CHANGE else None
        for member in project.members():
            if only is not None and member.key not in only:
                continue
            row = ledger.statuses(cid, [member.key]).get(member.key) if ledger else None
            if member.key in suppressed:
                plan.skip("unsubscribed", member.line)
            elif row is not None and row.status in FINAL:
                plan.skip(f"already {row.status}", member.line)
            elif row is not None and row.next_try and row.next_try > now.astimezone(dt.UTC).isoformat():
                plan.skip(f"deferred, next try later (after {row.next_try[:16]} UTC)", member.line)
            else:
                plan.recipients.append(member.line)
                plan.size += len(pipeline.finish(prepared.build(member, now=now)).data)
    finally:
        if ledger is not None:
            ledger.close()
    return plan


def tick_preview(project: Project, *, now: dt.datetime) -> list[str]:
    """``tick --dry-run``: each mailing a tick would send now, to how many, who is skipped and why."""
    from newsletter.notices import audiences, current

    lines: list[str] = []
    path = project.settings.state_path
    tz = project.schedule.group.tz
    if path.exists():
        with Ledger(path) as ledger:
            for key in ledger.told_meetings(since=now.astimezone(tz).date().isoformat()):
                told = ledger.told(key)
                meeting = current(project.schedule, key, next(iter(told.values())))
                waiting = sum(len(a) for a in audiences(told, meeting).values())
                if waiting and meeting.start(tz) > now:
                    lines.append(f"{key}: a change notice to {waiting} member(s) told other details")
            dues = [
                d
                for d in plan(project.schedule)
                if d.state(now) == Window.DUE and _wanted(project, ledger, d)
            ]
    else:
        dues = [d for d in plan(project.schedule) if d.state(now) == Window.DUE]
    for due in dues:
        dry = would_send(project, due, now=now)
        lines.append(f"{due.id}: {len(dry.recipients)} member(s) would get it via {dry.where}")
        lines.extend(f"  skipped: {line}" for line in dry.skipped_lines())
    return lines or ["Nothing would go out now."]
