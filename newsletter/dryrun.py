"""`send --dry-run` and `tick --dry-run`: what would go out now, to how many, who is skipped and why.

Nothing is sent or recorded, and no state database is created by looking.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from newsletter.inputs.member_values import as_written
from newsletter.inputs.sending_list import read_for_sending
from newsletter.jobs import wanted
from newsletter.model import FINAL, MailKind
from newsletter.project import Project
from newsletter.send.choices import Choices
from newsletter.send.pipeline import ledger_id
from newsletter.state.ledger import Ledger
from newsletter.timing import Due, Window, plan


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
        members, rows = read_for_sending(project.subscribers_path)
        choices = Choices.read(ledger, project, due.mailing) if ledger else None
        for member in map(as_written, members):
            if only is not None and member.key not in only:
                continue
            if choices is not None and not choices.wants(member.key):
                plan.skip("her own choice (fewer reminders, or paused)", member.line)
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
    for line, _ in rows.excluded:
        plan.skip("left out: the row has a problem (`newsletter check` says which)", line)
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
                d for d in plan(project.schedule) if d.state(now) == Window.DUE and wanted(project, ledger, d)
            ]
    else:
        dues = [d for d in plan(project.schedule) if d.state(now) == Window.DUE]
    for due in dues:
        dry = would_send(project, due, now=now)
        lines.append(f"{due.id}: {len(dry.recipients)} member(s) would get it via {dry.where}")
        lines.extend(f"  skipped: {line}" for line in dry.skipped_lines())
    return lines or ["Nothing would go out now."]
