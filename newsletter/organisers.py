"""What the organisers are told by mail, once per distinct problem and again when it is fixed.

An unattended run (cron, the daemon) has no one reading its output, so whenever a mailing is blocked,
rows are left out of it or members were not reached, the organisers get a short mail saying what and
how to fix it — file and line only, never a member's address or name.  The same set of problems is
not mailed again every tick; when it clears, an "all clear" follows.  Who to tell (and as whom) is
kept in the state database, so a schedule.yaml broken beyond reading can still be reported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.settings import Settings

if TYPE_CHECKING:
    from newsletter.project import Project
    from newsletter.state.ledger import Ledger

log = logging.getLogger("newsletter.organisers")
CONTACTS = "organisers"  # the ledger's meta key for the last good list of whom to tell


@dataclass(frozen=True)
class Contacts:
    """The group's sender and its organisers' (name, address) pairs, as of the last good schedule."""

    sender: str
    organisers: tuple[tuple[str, str], ...]
    timezone: str

    @classmethod
    def of(cls, project: Project) -> Contacts:
        group = project.schedule.group
        people = tuple((o.name, o.email) for o in group.organisers if o.email)
        return cls(project.settings.sender, people, group.timezone)

    def dump(self) -> str:
        return json.dumps({"sender": self.sender, "organisers": self.organisers, "timezone": self.timezone})

    @classmethod
    def load(cls, text: str | None) -> Contacts | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(data["sender"], tuple(tuple(p) for p in data["organisers"]), data["timezone"])


def remember(ledger: Ledger, project: Project) -> Contacts:
    contacts = Contacts.of(project)
    if ledger.get_meta(CONTACTS) != contacts.dump():
        ledger.set_meta(CONTACTS, contacts.dump())
    return contacts


def mail(
    settings: Settings, contacts: Contacts, *, subject: str, body: str, topic: str, now: dt.datetime
) -> int:
    """Send ``body`` to each organiser through the one pipeline; returns how many took it. A failure
    is logged (without addresses) and never stops the run that is reporting."""
    from zoneinfo import ZoneInfo

    from newsletter.compose.mime import small_message
    from newsletter.project import signer_for
    from newsletter.send.pipeline import Pipeline
    from newsletter.send.transports import redact

    completed = settings.for_group(sender=contacts.sender, reply_to="")
    pipeline = Pipeline(completed, signer_for(completed), f"organisers/{topic}")
    told = 0
    for name, address in contacts.organisers:
        text = f"Hello {name},\n\n{redact(body)}\n\n— the newsletter program on your server\n"
        try:
            envelope = small_message(
                sender=completed.sender,
                to=address,
                subject=subject,
                text=text,
                now=now,
                tz=ZoneInfo(contacts.timezone),
            )
            pipeline.send(envelope)
            told += 1
        except Exception as err:  # telling the organisers must never stop the sending
            log.error("could not notify an organiser: %s", redact(str(err)))
    return told


def tell_once(
    settings: Settings,
    ledger: Ledger,
    contacts: Contacts | None,
    *,
    topic: str,
    problems: Sequence[str],
    subject: str,
    intro: str,
    fix: str,
    now: dt.datetime,
) -> bool:
    """Mail the organisers about ``problems`` under ``topic`` unless this very set was mailed last;
    with no problems left after some were mailed, mail the all-clear. True when a mail went out."""
    key = f"told:{topic}"
    fingerprint = hashlib.sha256("\n".join(sorted(problems)).encode()).hexdigest() if problems else ""
    if (ledger.get_meta(key) or "") == fingerprint:
        return False  # this very set was mailed already (or there was nothing, and there is nothing)
    if contacts is None or not contacts.organisers:
        log.warning("%s: %d problem(s), but no organiser address is known to tell", topic, len(problems))
        return False
    if problems:
        listed = "\n".join(f"- {p}" for p in problems)
        body = f"{intro}\n\n{listed}\n\n{fix}"
    else:
        body = "The problem reported earlier is fixed: nothing more to do."
    mail(settings, contacts, subject=subject, body=body, topic=topic, now=now)
    ledger.set_meta(key, fingerprint)
    return True


FILES_TOPIC = "files"


def all_clear(
    settings: Settings, ledger: Ledger, contacts: Contacts | None, *, topic: str, now: dt.datetime
) -> bool:
    """The problems mailed under ``topic`` are gone: say so, once (nothing if none were mailed)."""
    return tell_once(
        settings,
        ledger,
        contacts,
        topic=topic,
        problems=[],
        subject=f"Newsletter: all clear ({topic})",
        intro="",
        fix="",
        now=now,
    )


def report_unreadable(settings: Settings, problems: Sequence[str], *, now: dt.datetime) -> None:
    """schedule.yaml (or an article) cannot be read at all: tell the organisers known from the last
    good run, once, since nothing at all can be sent until it is fixed."""
    from newsletter.state.ledger import Ledger

    if not settings.state_path.exists():
        return  # never ran: nobody to tell yet, and the command's own message says what to fix
    with Ledger(settings.state_path) as ledger:
        tell_once(
            settings,
            ledger,
            Contacts.load(ledger.get_meta(CONTACTS)),
            topic=FILES_TOPIC,
            problems=problems,
            subject="Newsletter: the group's files have mistakes, so no reminder can go out",
            intro="The newsletter program could not read the group's files, so it sends nothing until "
            "these are fixed:",
            fix="Fix them (each line says the file, the line and how), then run `newsletter check`.",
            now=now,
        )
