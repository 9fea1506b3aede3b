"""What every command shares: the group folder's options resolved, `--at` and `--meeting` read, the
mailing a command names picked, progress shown."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from newsletter.errors import NewsletterError
from newsletter.moments import read_moment

if TYPE_CHECKING:
    from newsletter.project import Project
    from newsletter.send.progress import Progress
    from newsletter.settings import Settings
    from newsletter.timing import Due


def now_utc() -> dt.datetime:
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
        return now_utc()
    try:
        return read_moment(value, tz)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not a date and time — write e.g. 2026-12-01T09:00") from err


def parse_day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as err:
        raise click.BadParameter(
            f"{value!r} is not a date — write it as YYYY-MM-DD, e.g. 2026-12-08"
        ) from err


def pick(project: Project, meeting: str | None, reminder: str | None, now: dt.datetime) -> Due:
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


def progress() -> Progress:
    """A bar on a terminal, periodic log lines under cron or systemd."""
    from newsletter.send.progress import for_terminal

    return for_terminal()
