"""The `newsletter` command: thin wrappers that resolve settings, call the core, and set the exit code."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from newsletter.errors import DataError, DeliveryLeft, NewsletterError

if TYPE_CHECKING:
    from newsletter.model import Report
    from newsletter.project import Project
    from newsletter.send.progress import Progress
    from newsletter.settings import Settings
    from newsletter.timing import Due

log = logging.getLogger("newsletter")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Obj:
    """What the group options resolve to; settings and files are read lazily, per command."""

    def __init__(self, home: Path | None) -> None:
        self.home = home

    def settings(self) -> Settings:
        from newsletter.settings import resolve

        return resolve(self.home)

    def project(self, *, check_subscribers: bool = True, check_articles: bool = True) -> Project:
        from newsletter.project import load_project

        return load_project(
            self.settings(), check_subscribers=check_subscribers, check_articles=check_articles
        )


def parse_moment(value: str | None, tz: ZoneInfo) -> dt.datetime:
    """``--at``: ISO date and time; without an offset it is the group's local time."""
    if not value:
        return _now()
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not a date and time — write e.g. 2026-12-01T09:00") from err
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


def parse_day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as err:
        raise click.BadParameter(
            f"{value!r} is not a date — write it as YYYY-MM-DD, e.g. 2026-12-08"
        ) from err


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--dir",
    "home",
    type=click.Path(path_type=Path),
    envvar="NEWSLETTER_HOME",
    help="The group's folder (default: the current one; or set NEWSLETTER_HOME).",
)
@click.option("-v", "--verbose", count=True, help="More detail in the log (-vv for debugging).")
@click.version_option(package_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, home: Path | None, verbose: int) -> None:
    """Meeting reminders for the group: one private message per member."""
    # The daemon's normal lines (started, sent, stopped) are INFO: its log is the only report it has.
    base = logging.INFO if ctx.invoked_subcommand == "run" else logging.WARNING
    level = min(base, logging.WARNING - 10 * min(verbose, 2))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    ctx.obj = Obj(home)


@cli.command()
@click.pass_obj
def check(obj: Obj) -> None:
    """Validate settings, schedule, subscribers, articles and templates (renders every upcoming mail)."""
    from newsletter.reports import check_all

    for line in check_all(obj.settings(), now=_now()):
        click.echo(line)


@cli.command()
@click.option("--at", "at", metavar="DATETIME", help="Show the state as of this moment (default: now).")
@click.pass_obj
def upcoming(obj: Obj, at: str | None) -> None:
    """The next meetings, each reminder's due time and state."""
    from newsletter.reports import upcoming_lines

    project = obj.project(check_subscribers=False)
    for line in upcoming_lines(project, now=parse_moment(at, project.schedule.group.tz)):
        click.echo(line)


def _pick(project: Project, meeting: str | None, reminder: str | None, now: dt.datetime) -> Due:
    from newsletter.timing import find

    day = parse_day(meeting)
    if reminder and project.schedule.reminder(reminder) is None:
        names = ", ".join(r.name for r in project.schedule.reminders)
        raise click.BadParameter(
            f"no reminder named {reminder!r} in schedule.yaml — use one of: {names}", param_hint="--reminder"
        )
    if day and project.schedule.meeting_on(day) is None:
        raise click.BadParameter(
            f"no meeting on {day} in schedule.yaml — `newsletter upcoming` lists them", param_hint="--meeting"
        )
    due = find(project.schedule, day, reminder, now)
    if due is None:
        found = project.schedule.meeting_on(day) if day else None
        if found is not None and found.cancelled:
            raise NewsletterError(f"the meeting on {day} is cancelled in schedule.yaml: no reminder to send")
        raise NewsletterError("no upcoming meeting with a reminder to send — add meetings to schedule.yaml")
    return due


@cli.command()
@click.option("--meeting", metavar="DATE", help="The meeting's date, YYYY-MM-DD (default: the next one).")
@click.option("--reminder", metavar="NAME", help="Which reminder, e.g. week-before (default: the next one).")
@click.option("--out", type=click.Path(path_type=Path), help="Write to this file (.html, .txt or .eml).")
@click.option("--text", is_flag=True, help="The plain-text version instead of the HTML.")
@click.option("--change", is_flag=True, help="The change notice for an edited meeting instead of a reminder.")
@click.option("--open", "open_", is_flag=True, help="Open the result in the web browser.")
@click.option(
    "--screenshot", type=click.Path(path_type=Path), help="Save a PNG of the mail as a browser shows it."
)
@click.option(
    "--width", type=int, default=320, show_default=True, help="Screen width for --screenshot, in px."
)
@click.option("--at", "at", metavar="DATETIME", help="Act as if it were this moment (default: now).")
@click.pass_obj
def preview(
    obj: Obj,
    meeting: str | None,
    reminder: str | None,
    out: Path | None,
    text: bool,
    change: bool,
    open_: bool,
    screenshot: Path | None,
    width: int,
    at: str | None,
) -> None:
    """Render one mail exactly as a member would get it."""
    from newsletter.reports import preview_message

    project = obj.project()
    now = parse_moment(at, project.schedule.group.tz)
    if change:
        from newsletter.reports import change_preview

        due = change_preview(project, parse_day(meeting), now=now)
    else:
        due = _pick(project, meeting, reminder, now)
    path, body = preview_message(project, due, now=now, out=out, text=text)
    if path is None:
        click.echo(body, nl=False)
        return
    click.echo(f"Preview of {due.id} written to {path}")
    if screenshot is not None:
        from newsletter.cli.screenshot import capture

        capture(path, screenshot, width=width)
        click.echo(f"Screenshot at {width} px wide saved to {screenshot}")
    if open_:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@cli.command()
@click.option("--meeting", metavar="DATE", help="The meeting's date, YYYY-MM-DD (default: the next one).")
@click.option("--reminder", metavar="NAME", help="Which reminder, e.g. week-before (default: the next one).")
@click.option("--to", "to", metavar="ADDRESS", help="Send one test mail to this address only.")
@click.option("--dry-run", is_flag=True, help="Build every message, send nothing.")
@click.option("--at", "at", metavar="DATETIME", help="Act as if it were this moment (default: now).")
@click.pass_obj
def send(
    obj: Obj, meeting: str | None, reminder: str | None, to: str | None, dry_run: bool, at: str | None
) -> None:
    """Send one mailing now; members already delivered are skipped."""
    from newsletter.jobs import send_one
    from newsletter.send.pipeline import BUSY, send_test

    project = obj.project()
    now = parse_moment(at, project.schedule.group.tz)
    clock = (lambda: now) if at else _now
    due = _pick(project, meeting, reminder, now)
    title = f"{due.mailing.meeting.title} ({due.mailing.meeting.key}), {due.mailing.name} reminder"
    if to:
        where = send_test(project, due, to, now=now)
        click.echo(f"Test mail of {title} sent to the given address via {where}.")
        return
    if dry_run:
        from newsletter.reports import dry_run as build_all

        count, size = build_all(project, due, now=now)
        click.echo(
            f"Dry run: built {count} messages of {title} ({size // 1024} KB in all); nothing was sent."
        )
        return
    report = send_one(project, due, clock=clock, progress=_progress())
    if report is None:
        click.echo(f"newsletter: {BUSY}")
        return
    _finish(project, report, title)


def _progress() -> Progress:
    from newsletter.send.progress import for_terminal

    return for_terminal()


def _finish(project: Project, report: Report, title: str) -> None:
    from newsletter.send.pipeline import transport_for

    where = transport_for(project.settings, report.campaign).describe()
    sent = report.counts["sent"]
    click.echo(
        f"{title}: sent {sent} of {report.total} members via {where}"
        + (
            f" ({report.total - sent - report.problems} already done or unsubscribed)"
            if report.total - sent - report.problems
            else ""
        )
        + "."
    )
    if report.problems:
        raise DeliveryLeft(
            f"{report.counts['deferred']} deferred, {report.counts['failed']} failed, "
            f"{report.counts['ambiguous']} uncertain — see `newsletter status {report.campaign}`; "
            "run `newsletter send` (or wait for the next tick) to retry the deferred ones"
        )


@cli.command()
@click.option("--at", "at", metavar="DATETIME", help="Act as if it were this moment: what would go out then.")
@click.pass_obj
def tick(obj: Obj, at: str | None) -> None:
    """Send every reminder that is due and not yet delivered, then exit (for cron)."""
    from newsletter.jobs import tick as run_tick
    from newsletter.send.pipeline import BUSY

    project = obj.project(check_subscribers=False, check_articles=False)
    now = parse_moment(at, project.schedule.group.tz)
    report = run_tick(project, now=now, clock=(lambda: now) if at else _now, progress_factory=_progress)
    if report.busy:
        click.echo(f"newsletter: {BUSY}")
        return
    for line in report.lines:
        click.echo(line)
    if report.problems:
        raise DeliveryLeft(
            f"{report.problems} member(s) deferred or failed — see `newsletter status`; the next tick "
            "retries the deferred ones while the reminder's window is open"
        )


@cli.command("run")
@click.option(
    "--poll", default=30.0, show_default=True, help="Seconds between checks of schedule.yaml for edits."
)
@click.option("--retry", default=300.0, show_default=True, help="Seconds between catch-up/retry ticks.")
@click.pass_obj
def run_cmd(obj: Obj, poll: float, retry: float) -> None:
    """The daemon: sends each reminder when due, catches up after downtime, stops cleanly on SIGTERM."""
    from newsletter.daemon import run_daemon

    obj.project()  # refuse to start on a broken folder: the message says what to fix
    run_daemon(lambda: obj.project(check_subscribers=False), poll=poll, retry=retry)


@cli.command()
@click.argument("mailing", required=False)
@click.pass_obj
def status(obj: Obj, mailing: str | None) -> None:
    """Who got what: sent, deferred (next try), failed (server's reply), suppressed."""
    from newsletter.reports import status_lines

    for line in status_lines(obj.settings(), mailing):
        click.echo(line)


from newsletter.cli.members import serve, subscribers  # noqa: E402  (commands defined beside, kept small)

cli.add_command(subscribers)
cli.add_command(serve)


def main(argv: list[str] | None = None, prog_name: str = "newsletter") -> int:
    try:
        cli.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except DataError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        count = len(exc.problems)
        click.echo(f"{count} problem{'s' if count != 1 else ''} found; nothing was sent.", err=True)
        return 1
    except NewsletterError as exc:
        click.echo(f"newsletter: {exc}", err=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
