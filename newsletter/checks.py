"""`newsletter check`: every input and every upcoming mail, all problems reported at once."""

from __future__ import annotations

import datetime as dt

from .app import load_project, prepare
from .config import Settings
from .due import plan
from .errors import DataError, Problem


def check_all(settings: Settings, *, now: dt.datetime) -> list[str]:
    project = load_project(settings)
    from .subscribers import read_columns

    columns = tuple(read_columns(project.subscribers_path))
    problems: list[Problem] = []
    dues = [d for d in plan(project.schedule) if d.state(now) != "closed"]
    rendered = 0
    for due in dues:
        try:
            prepare(project, due, now=now, columns=columns)
            rendered += 1
        except DataError as err:
            problems.extend(p for p in err.problems if p not in problems)
    if problems:
        raise DataError(problems)
    upcoming = [m for m in project.schedule.meetings if m.start(project.schedule.group.tz) > now]
    signer = project.dkim_signer()
    dkim = (
        f"DKIM: signing as d={signer.domain} s={signer.selector}; publish TXT {signer.dns_name}: "
        f"{signer.dns_record()}"
        if signer
        else "DKIM: not signing (NEWSLETTER_DKIM_KEY not set)"
    )
    where = (
        settings.smtp.describe()
        if settings.smtp
        else f"the outbox folder {settings.outbox} (SMTP_URL not set)"
    )
    return [
        f"schedule.yaml: {len(upcoming)} upcoming meetings "
        f"({sum(m.cancelled for m in upcoming)} cancelled), {len(project.schedule.reminders)} reminders each",
        f"subscribers.csv: {project.members_count} members",
        f"content: {len(project.articles)} article(s)",
        f"templates: {rendered} upcoming mails render",
        f"mail goes to {where}",
        dkim,
        "All good.",
    ]
