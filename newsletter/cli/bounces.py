"""`newsletter bounces`: read the bounce mailbox once, say what changed, tell the organisers what they
must know (a member now bouncing, a complaint) — by line of subscribers.csv, never by address."""

from __future__ import annotations

import click

from newsletter.cli.common import Obj, now_utc
from newsletter.errors import ConfigError


@click.command("bounces")
@click.pass_obj
def bounces(obj: Obj) -> None:
    """Read new bounce and complaint reports from the bounce mailbox once and say what changed."""
    from newsletter.bounces import process, tell_organisers

    project = obj.project(check_subscribers=False)  # a bad row must not stop the reading of reports
    if project.settings.bounce_mailbox is None:
        raise ConfigError(
            "NEWSLETTER_BOUNCE_MAILBOX is not set, so there is no bounce mailbox to read — set it in .env to "
            "imaps://user:pass@mail.example.org/INBOX or to a Maildir folder's path, and "
            "NEWSLETTER_BOUNCE_ADDRESS to the address whose mail arrives there"
        )
    now = now_utc()
    report = process(project, now=now)
    for line in report.lines(today=now.astimezone(project.schedule.group.tz).date()):
        click.echo(line)
    if report.notices:
        told = tell_organisers(project, report, now=now)
        click.echo(
            "\nThe organisers were told by mail."
            if told
            else "\nThe organisers could not be told by mail (see the log); the next run tries again."
        )
