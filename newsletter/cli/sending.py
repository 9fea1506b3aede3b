"""`newsletter send` and `newsletter tick`: what goes out, when, and what the organiser is told.

To a real relay, ``send`` sends only what is due now unless a reminder is named; a named one may go
early (the mail's words say how far off the meeting really is) but never after its window closed or
the meeting began.  With no relay, ``send`` writes the next reminder to the outbox: a try-out that
counts for nothing.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from typing import TYPE_CHECKING

import click

from newsletter.cli.common import Obj, now_utc, parse_moment, pick, progress
from newsletter.cli.stamp import stamped
from newsletter.errors import DataError, DeliveryLeft, NewsletterError

if TYPE_CHECKING:
    from newsletter.model import Report
    from newsletter.project import Project
    from newsletter.timing import Due


def _when(moment: dt.datetime, project: Project) -> str:
    return f"{moment.astimezone(project.schedule.group.tz):%a %Y-%m-%d %H:%M %Z}"


def _span(delta: dt.timedelta) -> str:
    days, hours = delta.days, delta.seconds // 3600
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours and days < 3 else "")
    return f"{hours} h {delta.seconds // 60 % 60} min" if hours else f"{delta.seconds // 60} min"


def _choose(project: Project, meeting: str | None, reminder: str | None, now: dt.datetime) -> Due | None:
    """The mailing ``send`` means, or None (nothing due now on a relay, which is said and is fine)."""
    from newsletter.timing import Window, due_now, next_due

    relay = project.settings.smtp is not None
    if meeting or reminder:
        due = pick(project, meeting, reminder, now)
        start = due.mailing.meeting.start(project.schedule.group.tz)
        if now >= start:
            raise NewsletterError(
                f"the meeting on {due.mailing.meeting.key} started at {_when(start, project)}: no reminder "
                "about it goes out any more"
            )
        if due.state(now) == Window.CLOSED:
            raise NewsletterError(
                f"the {due.mailing.name} reminder of {due.mailing.meeting.key} could be sent until "
                f"{_when(due.until, project)}; a late reminder would be wrong, so it is not sent — the "
                f"organisers are told by mail when a window closes (see `newsletter status {due.id}`)"
            )
        return due
    if not relay:
        tryout = next_due(project.schedule, now)
        if tryout is None:
            raise NewsletterError(
                "no upcoming meeting with a reminder to send — add meetings to schedule.yaml"
            )
        return tryout
    now_open = due_now(project.schedule, now)
    if now_open:
        return now_open[0]
    upcoming = next_due(project.schedule, now)
    if upcoming is None:
        click.echo("Nothing is due now, and no reminder is left in schedule.yaml.")
    else:
        click.echo(
            f"Nothing is due now. Next: {upcoming.mailing.meeting.title} ({upcoming.mailing.meeting.key}), "
            f"{upcoming.mailing.name} reminder, due {_when(upcoming.at, project)}; `newsletter tick` "
            "(cron) or the daemon sends it then. To send it early: "
            f"newsletter send --meeting {upcoming.mailing.meeting.key} --reminder {upcoming.mailing.name}"
        )
    return None


def _confirm_early(project: Project, due: Due, now: dt.datetime) -> None:
    """A named reminder before its due time, to a real relay: say how early; on a terminal, ask."""
    from newsletter.compose.context import when_text
    from newsletter.timing import Window

    if due.state(now) != Window.UPCOMING or project.settings.smtp is None:
        return
    words = when_text(due.mailing.meeting, now, project.schedule)
    message = (
        f"The {due.mailing.name} reminder is due {_when(due.at, project)}, {_span(due.at - now)} from now; "
        f"sent now, it tells members the meeting is {words}."
    )
    if sys.stdin.isatty() and sys.stdout.isatty():
        click.confirm(f"{message} Send it now?", abort=True)
    else:
        click.echo(f"{message} Sending it now, as asked.")


@click.command()
@click.option("--meeting", metavar="DATE", help="The meeting's date, YYYY-MM-DD (default: the next one).")
@click.option(
    "--reminder", metavar="NAME", help="Which reminder, e.g. week-before (default: the one due now)."
)
@click.option("--to", "to", metavar="ADDRESS", help="Send one test mail to this address only.")
@click.option("--dry-run", is_flag=True, help="Build every message, send nothing; say who would get it.")
@click.option("--at", "at", metavar="DATETIME", help="Act as if it were this moment (default: now).")
@click.pass_obj
def send(
    obj: Obj, meeting: str | None, reminder: str | None, to: str | None, dry_run: bool, at: str | None
) -> None:
    """Send the reminder that is due now (or the one named); members already delivered are skipped."""
    from newsletter.jobs import send_one
    from newsletter.send.pipeline import BUSY, send_test

    # A mistake in one row of subscribers.csv leaves out that row only (said below), not everyone.
    project = obj.project(check_subscribers=False)
    now = parse_moment(at, project.schedule.group.tz)
    clock = (lambda: now) if at else now_utc
    if to:
        due = pick(project, meeting, reminder, now)
        where = send_test(project, due, to, now=now)
        click.echo(
            f"Test mail of {_title(due)} sent to the given address via {where}; it is marked as a test."
        )
        return
    chosen = _choose(project, meeting, reminder, now)
    if chosen is None:
        return
    if dry_run:
        _dry_run(project, chosen, now)
        return
    _confirm_early(project, chosen, now)
    report = send_one(project, chosen, clock=clock, progress=progress())
    if report is None:
        click.echo(f"newsletter: {BUSY}")
        return
    _finish(project, report, chosen)


def _title(due: Due) -> str:
    return f"{due.mailing.meeting.title} ({due.mailing.meeting.key}), {due.mailing.name} reminder"


def _dry_run(project: Project, due: Due, now: dt.datetime) -> None:
    from newsletter.dryrun import would_send

    plan = would_send(project, due, now=now)
    click.echo(
        f"Dry run of {_title(due)}: {len(plan.recipients)} member(s) would get it "
        f"({plan.size // 1024} KB in all) via {plan.where}; nothing was sent."
    )
    for line in plan.skipped_lines():
        click.echo(f"  skipped: {line}")


def _finish(project: Project, report: Report, due: Due) -> None:
    from newsletter.send.pipeline import Pipeline

    title = _title(due)
    where = Pipeline.of(project, due.id).describe()
    for problem in report.excluded:
        click.echo(f"left out: {problem}", err=True)
    sent = report.counts["sent"]
    skipped = report.total - sent - report.problems
    click.echo(
        f"{title}: sent {sent} of {report.total} members via {where}"
        + (f" ({skipped} already done or unsubscribed)" if skipped else "")
        + "."
    )
    if project.settings.smtp is None:
        click.echo(
            "This was a try-out in the outbox: it counts for nothing, and members still get the real "
            "reminder when it is due once SMTP_URL is set."
        )
    if report.problems:
        raise DeliveryLeft(
            f"{report.counts['deferred']} deferred, {report.counts['failed']} failed, "
            f"{report.counts['ambiguous']} uncertain — see `newsletter status {report.campaign}`; "
            "run `newsletter send` (or wait for the next tick) to retry the deferred ones"
        )


@click.command()
@click.option("--at", "at", metavar="DATETIME", help="Act as if it were this moment (it does send).")
@click.option("--dry-run", is_flag=True, help="Only show what would go out, and to how many.")
@click.pass_obj
def tick(obj: Obj, at: str | None, dry_run: bool) -> None:
    """Send every reminder and change notice that is due and not yet delivered, then exit (for cron)."""
    from newsletter.jobs import tick as run_tick
    from newsletter.send.pipeline import BUSY
    from newsletter.state.idle import LONGEST, note_for

    idle = note_for(obj.home)  # what this tick's answer depends on, read before it reads anything
    started, before = time.time_ns(), idle.digest() if idle else ""
    if idle:
        idle.forget()
    try:
        project = obj.project(check_subscribers=False, check_articles=False)
    except DataError as err:
        if not dry_run:  # under cron nobody reads this output: the organisers get a mail, once
            from newsletter.organisers import report_unreadable

            report_unreadable(obj.settings(), [str(p) for p in err.problems], now=now_utc())
        raise
    now = parse_moment(at, project.schedule.group.tz)
    if dry_run:
        from newsletter.dryrun import tick_preview

        for line in tick_preview(project, now=now):
            click.echo(line)
        return
    report = run_tick(project, now=now, clock=(lambda: now) if at else now_utc, progress_factory=progress)
    if report.busy:
        click.echo(f"newsletter: {BUSY}")
        return
    for line in report.lines or [_nothing_due(project, now)]:
        click.echo(stamped(line, sys.stdout))
    if idle and not report.lines and not report.problems and project.settings.bounce_mailbox is None:
        from newsletter.timing import quiet_until

        until = quiet_until(project.schedule, now, longest=LONGEST)
        idle.remember(
            before,
            started_ns=started,
            now=now,
            until=until,
            tz=project.schedule.group.tz.key,
            line=_nothing_due(project, now),
        )
    if report.problems:
        raise DeliveryLeft(
            f"{report.problems} member(s) deferred or failed — see `newsletter status`; the next tick "
            "retries the deferred ones while the reminder's window is open"
        )


def _nothing_due(project: Project, now: dt.datetime) -> str:
    from newsletter.timing import next_due

    upcoming = next_due(project.schedule, now)
    if upcoming is None:
        return "Nothing due; no reminder is left in schedule.yaml."
    return f"Nothing due now; next: {upcoming.id}, due {_when(upcoming.at, project)}."
