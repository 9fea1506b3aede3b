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

from newsletter.errors import DataError
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
    from newsletter.organisers import Contacts, mail

    mail(
        project.settings,
        Contacts.of(project),
        subject=f"Newsletter: {due.mailing.meeting.title} {due.mailing.name} reminder needs a look",
        body=f"{text}\n\nRun `newsletter status {due.id}` on the server to see who was not reached and why.",
        topic=due.id,
        now=now,
    )


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


def wanted(project: Project, ledger: Ledger, due: Due) -> bool:
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
            from newsletter.organisers import FILES_TOPIC, all_clear, remember

            # Whom to tell if schedule.yaml later breaks; and the all-clear if it was broken before.
            all_clear(project.settings, ledger, remember(ledger, project), topic=FILES_TOPIC, now=now)
            # Change notices first: a member must not get a reminder before the correction.
            todo = open_notices(project, ledger, now=now)
            for due in plan(project.schedule):
                state = due.state(now)
                if state == Window.CLOSED:
                    if (line := close_window(project, ledger, due, now=now)) is not None:
                        report.lines.append(line)
                elif state == Window.DUE and wanted(project, ledger, due):
                    todo.append(due)
            report.lines.extend(read_bounces(project, now=now, ledger=ledger))
            for due in todo:
                if stop is not None and stop.is_set():
                    break
                sent = _deliver(
                    project, ledger, due, report, clock=clock, progress_factory=progress_factory, stop=stop
                )
                if sent and (line := tell_answers(project, ledger, due, now=clock())) is not None:
                    report.lines.append(line)
    return report


def tell_answers(project: Project, ledger: Ledger, due: Due, *, now: dt.datetime) -> str | None:
    """With the run of a meeting's last reminder (the day-before, in the sample), one short mail to the
    organisers: "Planning dinner, Tue Dec 8: 12 coming (15 people), 4 can't come, 19 no answer".
    Once per meeting (the ledger's meta), and only for a meeting that asks who comes."""
    from newsletter.model import Rsvp
    from newsletter.send.choices import answer_counts, answers_line, member_keys
    from newsletter.timing import reminders_for

    meeting = due.mailing.meeting
    if due.mailing.kind != MailKind.REMINDER or meeting.rsvp == Rsvp.OFF or meeting.cancelled:
        return None
    dues = reminders_for(project.schedule, meeting)
    if not dues or dues[-1].id != due.id:
        return None
    key = f"answers-told:{ledger_id(project.settings, meeting.key)}"
    if ledger.get_meta(key) is not None:
        return None
    from newsletter.organisers import Contacts, mail

    line = answers_line(meeting, answer_counts(ledger, meeting.key, member_keys(project, ledger)))
    mail(
        project.settings,
        Contacts.of(project),
        subject=f"Newsletter: who is coming to the {meeting.title}, {meeting.date:%a} {meeting.date:%b} "
        f"{meeting.date.day}",
        body=f"{line}\n\nMembers may change their answer until the meeting starts: "
        "`newsletter upcoming` on the server (or the console's overview) shows the latest counts.",
        topic=f"answers:{meeting.key}",
        now=now,
    )
    ledger.set_meta(key, now.isoformat())
    log.info("%s", line)
    return f"answers: {line}"


def _deliver(
    project: Project,
    ledger: Ledger,
    due: Due,
    report: TickReport,
    *,
    clock: Clock,
    progress_factory: Callable[[], Progress] | None,
    stop: threading.Event | None,
) -> bool:
    """Send one mailing; False when a mistake in the files blocked it."""
    from newsletter.organisers import Contacts, all_clear, tell_once
    from newsletter.send.loop import send_mailing

    progress = progress_factory() if progress_factory else None
    try:
        result = send_mailing(project, due, ledger, clock=clock, progress=progress, stop=stop)
    except DataError as err:
        report.lines.append(_blocked(project, ledger, due, err, now=clock()))
        report.problems += 1
        return False
    contacts = Contacts.of(project)
    all_clear(project.settings, ledger, contacts, topic=f"blocked:{due.id}", now=clock())
    tell_once(
        project.settings,
        ledger,
        contacts,
        topic="list",
        problems=result.excluded,
        subject="Newsletter: some rows of subscribers.csv were left out",
        intro=f"These rows of subscribers.csv were left out of {due.id} (everyone else got it):",
        fix="Fix each row as it says, then run `newsletter check`. A fixed row gets the reminder at the "
        "next run while it is still due.",
        now=clock(),
    )
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
    return True


#: A blocked reminder whose window closes within this gets a last warning (once).
LAST_CALL = dt.timedelta(hours=3)


def _tell(project: Project, ledger: Ledger, topic: str, problems: list[str], *, now: dt.datetime) -> bool:
    from newsletter.organisers import Contacts, tell_once

    return tell_once(
        project.settings,
        ledger,
        Contacts.of(project),
        topic=topic,
        problems=problems,
        subject=f"Newsletter: {topic.partition(':')[2]} is blocked",
        intro="A mailing could not go out because of these mistakes in the group's files:",
        fix="Fix them (each line says the file, the line and how), then run `newsletter check`. "
        "Nothing wrong was sent; the next run sends the mailing while it is still due.",
        now=now,
    )


def _blocked(project: Project, ledger: Ledger, due: Due, err: DataError, *, now: dt.datetime) -> str:
    """A mistake in the files would make this mailing wrong: send nothing, tell the organisers once,
    and once more shortly before its window closes."""
    problems = [str(p) for p in err.problems]
    _tell(project, ledger, f"blocked:{due.id}", problems, now=now)
    if due.until - now <= LAST_CALL and ledger.get_meta(f"last-call:{due.id}") is None:
        from newsletter.organisers import Contacts, mail

        closes = f"{due.until.astimezone(project.schedule.group.tz):%a %Y-%m-%d %H:%M %Z}"
        mail(
            project.settings,
            Contacts.of(project),
            subject=f"Last warning: {due.id} reminder is still blocked",
            body="It can still go out until "
            + closes
            + " if these are fixed before then:\n\n"
            + "\n".join(f"- {p}" for p in problems),
            topic=due.id,
            now=now,
        )
        ledger.set_meta(f"last-call:{due.id}", now.isoformat())
    log.warning("%s: blocked by %d problem(s) in the files; the organisers are told", due.id, len(problems))
    return f"{due.id}: blocked — " + "; ".join(problems)


def read_bounces(project: Project, *, now: dt.datetime, ledger: Ledger | None = None) -> list[str]:
    """Bounce and complaint reports that arrived since the last run (NEWSLETTER_BOUNCE_MAILBOX), so
    that a bouncing member is not mailed by the sends that follow; the organisers hear of each new
    one once. A mailbox that cannot be read is logged and never stops the sending.

    ``ledger``: the caller's open ledger; with no mailbox to read and nothing in it to tell, there
    is nothing to do, and the bounce machinery (mailbox and parsing libraries) is not even loaded."""
    if ledger is not None and project.settings.bounce_mailbox is None and not ledger.unannounced():
        return []
    from newsletter.bounces import process, tell_organisers
    from newsletter.errors import NewsletterError

    try:
        found = process(project, now=now)
    except NewsletterError as err:
        log.error("the bounce mailbox could not be read: %s", err)
        return [f"bounces: not read — {err}"]
    tell_organisers(project, found, now=now)
    news = found.read or found.notices
    return [f"bounces: {line}" for line in found.lines(today=now.date()) if line] if news else []
