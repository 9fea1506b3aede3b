"""The `newsletter` command: thin wrappers that resolve settings, call the core, and set the exit code."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsletter.cli.common import Obj, now_utc, parse_day, parse_moment, pick
from newsletter.cli.stamp import stamped
from newsletter.errors import DataError, NewsletterError

if TYPE_CHECKING:
    pass

log = logging.getLogger("newsletter")


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

    for line in check_all(obj.settings(), now=now_utc()):
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
    """Render one mail exactly as a member would get it (any meeting, past or future)."""
    from newsletter.errors import UsageError
    from newsletter.reports import preview_message
    from newsletter.timing import Window

    kinds = {".html": "html", ".htm": "html", ".txt": "text", ".eml": "eml", ".png": "png"}
    if out is not None and out.suffix.lower() not in kinds:
        raise UsageError(f"--out {out.name}: write to a .html, .txt, .eml or .png file")
    if out is not None and out.suffix.lower() == ".png":
        screenshot, out = out, None
    # A mistake in one row of subscribers.csv must not stop an organiser from seeing the mail.
    project = obj.project(check_subscribers=False)
    now = parse_moment(at, project.schedule.group.tz)
    if change:
        from newsletter.reports import change_preview

        due = change_preview(project, parse_day(meeting), now=now)
        moment = now
    else:
        due = pick(project, meeting, reminder, now)
        moment = now if due.state(now) == Window.DUE else due.at  # worded as on the day it goes out
    path, body = preview_message(project, due, now=moment, out=out, text=text and screenshot is None)
    if path is None:
        click.echo(body, nl=False)
        return
    when = f"{moment.astimezone(project.schedule.group.tz):%a %Y-%m-%d %H:%M %Z}"
    click.echo(f"Preview of {due.id}, as it reads when sent {when}, written to {path}")
    if screenshot is not None:
        from newsletter.cli.screenshot import capture

        capture(path, screenshot, width=width)
        click.echo(f"Screenshot at {width} px wide saved to {screenshot}")
    if open_:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@cli.command("run")
@click.option(
    "--poll", default=30.0, show_default=True, help="Seconds between checks of schedule.yaml for edits."
)
@click.option("--retry", default=300.0, show_default=True, help="Seconds between catch-up/retry ticks.")
@click.pass_obj
def run_cmd(obj: Obj, poll: float, retry: float) -> None:
    """The daemon: sends each reminder when due, catches up after downtime, stops cleanly on SIGTERM."""
    from newsletter.daemon import run_daemon

    obj.project(check_subscribers=False)  # refuse to start on a broken schedule: the message says what to fix
    run_daemon(lambda: obj.project(check_subscribers=False), poll=poll, retry=retry)


@cli.command()
@click.argument("mailing", required=False)
@click.pass_obj
def status(obj: Obj, mailing: str | None) -> None:
    """Who got what: sent, deferred (next try), failed (server's reply), suppressed."""
    from newsletter.reports import status_lines

    for line in status_lines(obj.settings(), mailing):
        click.echo(line)


from newsletter.cli.bounces import bounces  # noqa: E402
from newsletter.cli.members import serve, subscribers  # noqa: E402  (commands defined beside, kept small)
from newsletter.cli.sending import send, tick  # noqa: E402

cli.add_command(send)
cli.add_command(bounces)
cli.add_command(tick)
cli.add_command(subscribers)
cli.add_command(serve)


def main(argv: list[str] | None = None, prog_name: str = "newsletter") -> int:
    args = sys.argv[1:] if argv is None else argv

    def say(line: str) -> None:
        # `tick` under cron writes to a log file: its error lines are timestamped like its other lines.
        click.echo(stamped(line, sys.stderr) if "tick" in args else line, err=True)

    try:
        cli.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.Abort:
        say("Aborted.")
        return 1
    except click.ClickException as exc:
        exc.show()
        return 2 if isinstance(exc, click.UsageError) else exc.exit_code
    except DataError as exc:
        for problem in exc.problems:
            say(str(problem))
        count = len(exc.problems)
        say(f"{count} problem{'s' if count != 1 else ''} found; nothing was sent.")
        return 1
    except NewsletterError as exc:
        say(f"newsletter: {exc}")
        return exc.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
