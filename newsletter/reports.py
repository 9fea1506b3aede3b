"""What the read-only commands show: upcoming mailings, a preview, a dry run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.compose.context import date_text, time_text
from newsletter.errors import DataError, NewsletterError, Problem
from newsletter.model import CampaignState, Mailing, MailKind, Meeting, Rsvp, Subscriber
from newsletter.project import Project, load_project
from newsletter.send.pipeline import discreet_by_default, prepare
from newsletter.settings import Settings
from newsletter.timing import Due, Window, plan, reminders_for, upcoming

if TYPE_CHECKING:  # the ledger and the list's readers load only for the commands that use them
    from newsletter.inputs.seen_addresses import SeenAddresses
    from newsletter.state.answers import RsvpCounts
    from newsletter.state.ledger import Campaign, Ledger


def _ledger(project: Project) -> Ledger | None:
    from newsletter.state.ledger import Ledger

    # Reading must not create a state database as a side effect.
    return Ledger(project.settings.state_path) if project.settings.state_path.exists() else None


def reminder_state(due: Due, ledger: Ledger | None, now: dt.datetime) -> str:
    counts = ledger.counts(due.id) if ledger else {}
    campaign = ledger.campaign(due.id) if ledger else None
    total = sum(counts.values())
    if campaign and campaign.state == "skipped":
        return f"skipped: {campaign.reason}"
    if campaign and campaign.state == "done" and not counts:
        return "done: no member wants this reminder (their own choices)"
    if counts:
        sent = counts.get("sent", 0)
        parts = [f"sent {sent}/{total - counts.get('suppressed', 0) - counts.get('removed', 0)}"]
        parts += [f"{counts[k]} {k}" for k in ("sending", "deferred", "ambiguous", "failed") if counts.get(k)]
        return ", ".join(parts)
    state = {"upcoming": "pending", "due": "due now", "closed": "missed (window closed)"}[due.state(now)]
    tried = ledger.counts(f"outbox/{due.id}").get("sent", 0) if ledger else 0
    return f"{state} (tried out in the outbox: {tried})" if tried else state


def upcoming_lines(project: Project, *, now: dt.datetime) -> list[str]:
    schedule = project.schedule
    tz = schedule.group.tz
    meetings = upcoming(schedule, now)
    if not meetings:
        return ["No upcoming meetings in schedule.yaml."]
    ledger = _ledger(project)
    lines = []
    answers = _Answers(project, ledger)
    try:
        for meeting in meetings:
            where = f" — {meeting.venue.name}" if meeting.venue.name else ""
            head = f"{date_text(meeting.date)}, {time_text(meeting.time)}  {meeting.title}{where}"
            if meeting.cancelled:
                lines.append(f"{head}  [CANCELLED{': ' + meeting.note if meeting.note else ''}]")
                lines.extend(change_lines(ledger, meeting))
                continue
            lines.append(head)
            lines.extend(f"    answers: {counts}" for counts in answers.of(meeting))
            lines.extend(change_lines(ledger, meeting))
            for due in reminders_for(schedule, meeting):
                at = due.at.astimezone(tz)
                lines.append(
                    f"    {due.mailing.name:<12} due {at:%a %Y-%m-%d %H:%M %Z}  "
                    f"{reminder_state(due, ledger, now)}"
                )
    finally:
        if ledger:
            ledger.close()
    return lines


class _Answers:
    """The RSVP counts of meetings that asked (the list read once, when first needed)."""

    def __init__(self, project: Project, ledger: Ledger | None) -> None:
        self.project, self.ledger = project, ledger
        self._members: SeenAddresses | None = None

    def members(self) -> SeenAddresses:
        if self._members is None:
            from newsletter.inputs.seen_addresses import SeenAddresses
            from newsletter.send.choices import member_keys

            try:
                self._members = member_keys(self.project, self.ledger) if self.ledger else SeenAddresses()
            except (DataError, OSError):  # `check` says what is wrong with the list
                self._members = SeenAddresses()
        return self._members

    def of(self, meeting: Meeting) -> list[RsvpCounts]:
        """The counts, once a reminder asked or someone answered ([] otherwise)."""
        ledger = self.ledger
        if ledger is None or meeting.rsvp == Rsvp.OFF or meeting.cancelled:
            return []
        from newsletter.state.answers import rsvps

        if not ledger.campaigns_for(meeting.key, MailKind.REMINDER) and not rsvps(ledger, meeting.key):
            return []
        from newsletter.send.choices import answer_counts

        return [answer_counts(ledger, meeting.key, self.members())]


def answer_lines(project: Project, *, now: dt.datetime) -> list[str]:
    """One line per coming meeting that asked who comes, once its reminders went out or someone
    answered: "Planning dinner, Tue Dec 8: 12 coming (15 people), 4 can't come, 19 no answer"."""
    from newsletter.send.choices import answers_line

    ledger = _ledger(project)
    try:
        answers = _Answers(project, ledger)
        return [
            answers_line(meeting, counts)
            for meeting in upcoming(project.schedule, now)
            for counts in answers.of(meeting)
        ]
    finally:
        if ledger:
            ledger.close()


def change_lines(ledger: Ledger | None, meeting: Meeting) -> list[str]:
    """Change notices of a meeting: those sent or going out, and one the next tick will open."""
    if ledger is None:
        return []
    from newsletter.notices import audiences

    lines = []
    for c in ledger.campaigns_for(meeting.key, MailKind.CHANGE):
        counts = ledger.counts(c.id)
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
        lines.append(f"    {c.reminder:<12} change notice {c.state}: {summary}")
    told = ledger.told(meeting.key)
    waiting = sum(len(a) for a in audiences(told, meeting).values()) if told else 0
    if waiting:
        lines.append(
            f"    change notice pending for {waiting} member(s) who were told other details (next tick)"
        )
    return lines


def change_preview(project: Project, day: dt.date | None, *, now: dt.datetime) -> Due:
    """`preview --change`: the notice the members told the most common older details would get."""
    from newsletter.notices import audiences, current

    tz = project.schedule.group.tz
    ledger = _ledger(project)
    try:
        keys = (
            [day.isoformat()]
            if day
            else (ledger.told_meetings(now.astimezone(tz).date().isoformat()) if ledger else [])
        )
        for key in keys:
            told = ledger.told(key) if ledger else {}
            if not told:
                continue
            meeting = current(project.schedule, key, next(iter(told.values())))
            groups = audiences(told, meeting)
            if groups:
                before = max(groups, key=lambda k: len(groups[k]))
                return Due(Mailing.for_change(meeting, "change-preview", before), now, meeting.start(tz))
    finally:
        if ledger:
            ledger.close()
    raise NewsletterError(
        "no change to announce: no member was told details that differ from schedule.yaml"
        + (f" for the meeting on {day}" if day else "")
        + " — a notice goes out only after "
        "a reminder was sent and the meeting was then edited"
    )


def _sample_member(project: Project) -> Subscriber:
    """The list's first member, or a made-up one when the list is empty or has problems."""
    from newsletter.inputs.member_values import as_written

    try:
        first = next(iter(project.members()), None)
    except (DataError, OSError):
        first = None
    return as_written(first) if first else Subscriber(email="member@example.org", name="Member")


def _parts(data: bytes) -> tuple[str, str]:
    from email import message_from_bytes, policy
    from email.message import EmailMessage

    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    return (text.get_content() if text else ""), (html.get_content() if html else "")


def preview_message(
    project: Project, due: Due, *, now: dt.datetime, out: Path | None, text: bool
) -> tuple[Path | None, str]:
    """Writes the first member's mail (HTML, text, or the whole .eml) and returns where."""
    prepared = prepare(project, due, now=now, columns=project.columns())
    envelope = prepared.build(_sample_member(project), now=now, discreet=discreet_by_default(project))
    plain, html = _parts(envelope.data)
    if out is None and text:
        return None, plain
    if out is None:
        out = project.settings.state_dir / "preview" / f"{due.id.replace('/', '_')}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".eml":
        out.write_bytes(envelope.data)
    else:
        out.write_text(plain if text or out.suffix == ".txt" else html, encoding="utf-8")
    return out, ""


def status_lines(
    settings: Settings, campaign: str | None, *, answers: bool = True, now: dt.datetime | None = None
) -> list[str]:
    """`newsletter status`: every mailing with counts (and, with ``answers``, who is coming to the
    meetings ahead), or one mailing member by member."""
    if not settings.state_path.exists():
        return ["Nothing sent yet (no state database)."]
    if campaign is None and answers:
        return status_lines(settings, None, answers=False) + _answers_section(settings, now)
    from newsletter.state.ledger import Ledger

    with Ledger(settings.state_path) as ledger:
        if campaign is None:
            lines = []
            for c in ledger.campaigns():
                counts = ledger.counts(c.id)
                summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "no members"
                reason = f" — {c.reason}" if c.reason else ""
                lines.append(f"{c.id:<28} {c.state:<8} {summary}{reason}{_stopped(c)}")
            bouncing = ledger.bouncing()
            if bouncing:
                lines.append(
                    f"{len(bouncing)} member(s) bouncing: not mailed until an organiser checks the address — "
                    "`newsletter bounces` names their rows; "
                    "`newsletter subscribers add ADDRESS --resubscribe` reactivates one"
                )
            return lines or ["Nothing sent yet."]
        found = ledger.campaign(campaign)
        if found is None:
            known = ", ".join(c.id for c in ledger.campaigns()[-5:]) or "none yet"
            raise NewsletterError(
                f"no mailing {campaign!r} — `newsletter status` lists them (recent: {known})"
            )
        lines = [
            f"{found.id}: {found.state}" + (f" — {found.reason}" if found.reason else "") + _stopped(found)
        ]
        for d in ledger.deliveries(campaign):
            detail = ""
            if d.status in {"deferred", "ambiguous"} and d.next_try:
                detail = f"next try {d.next_try}"
            if d.reply and d.status != "sent":
                detail = f"{detail}; " if detail else ""
                detail += f"server said: {d.code or ''} {d.reply}".strip()
            lines.append(f"  {d.status:<10} {d.address}  (tries: {d.attempts}) {detail}".rstrip())
        suppressed = ledger.suppressed()
        if suppressed:
            lines.append(
                f"  {len(suppressed)} address(es) unsubscribed; `newsletter subscribers list` shows them"
            )
        return lines


def _answers_section(settings: Settings, now: dt.datetime | None) -> list[str]:
    try:
        project = load_project(settings, check_subscribers=False, check_articles=False)
    except NewsletterError:  # a broken schedule.yaml: `check` says what to fix; the mailings still show
        return []
    found = answer_lines(project, now=now or dt.datetime.now(dt.UTC))
    return ["Who is coming (answers to the reminders):", *(f"  {line}" for line in found)] if found else []


def _stopped(campaign: Campaign) -> str:
    """Why the last run of a mailing stopped early (the relay's answer, a timeout), and what next."""
    if not campaign.stopped or campaign.state != CampaignState.OPEN:
        return ""
    when = campaign.updated_at[:16].replace("T", " ")
    return f"\n    last run stopped {when} UTC: {campaign.stopped} — the next tick or send tries again"


def check_all(settings: Settings, *, now: dt.datetime) -> list[str]:
    project = load_project(settings, reuse=True)
    columns = project.columns()
    problems: list[Problem] = []
    dues = [d for d in plan(project.schedule) if d.state(now) != Window.CLOSED]
    rendered = 0
    for due in dues:
        try:
            prepare(project, due, now=now, columns=columns, check_only=True)
            rendered += 1
        except DataError as err:
            problems.extend(p for p in err.problems if p not in problems)
    if problems:
        raise DataError(problems)
    coming = upcoming(project.schedule, now)
    signer = project.signer
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
    warnings = [
        *(str(w) for w in project.warnings),  # the list's: merged rows, then formula-like cells
        *(
            f"schedule.yaml:{line}: {what} is an example still marked `placeholder: true` — write the "
            "group's real details and delete that line (until then only the outbox try-out works)"
            for line, what in project.schedule.placeholders
        ),
        *example_addresses(project),
    ]
    return [
        *(f"warning: {w}" for w in warnings),
        f"schedule.yaml: {len(coming)} upcoming meetings in the next year "
        f"({sum(m.cancelled for m in coming)} cancelled), {len(project.schedule.reminders)} reminders each",
        f"subscribers.csv: {project.members_count} members",
        f"content: {len(project.articles)} article(s)",
        f"templates: {rendered} upcoming mails render",
        f"mail goes to {where}",
        dkim,
        f"All good ({len(warnings)} warning{'s' if len(warnings) != 1 else ''} above)."
        if warnings
        else "All good.",
    ]


#: Domains reserved for examples (RFC 2606): mail to them goes nowhere.
EXAMPLE_DOMAINS = ("example.org", "example.com", "example.net")


def example_addresses(project: Project) -> list[str]:
    """The sender and organiser addresses still at an example domain, with their schedule.yaml line."""
    group = project.schedule.group
    found = [("the sender", project.settings.sender_address)]
    found += [(f"organiser {o.name}", o.email) for o in group.organisers if o.email]
    text = (project.home / "schedule.yaml").read_text(encoding="utf-8-sig").splitlines()
    out = []
    for who, address in found:
        if address.rpartition("@")[2].lower() not in EXAMPLE_DOMAINS:
            continue
        line = next((n for n, raw in enumerate(text, 1) if address in raw), None)
        where = f"schedule.yaml:{line}" if line else "NEWSLETTER_FROM"
        out.append(
            f"{where}: {who}'s address is at a reserved example domain, so mail to or from it goes nowhere "
            "— write the real address"
        )
    return out
