"""What the organisers read about bounces and complaints: plain words, a line of subscribers.csv, never
an address (the mail may be forwarded for help, and membership is health information).  Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

RESUBSCRIBE = "`newsletter subscribers add … --resubscribe`"


@dataclass(frozen=True)
class Notice:
    """One thing to tell: a member who is now bouncing, or a complaint."""

    ref: str  # the ledger's key of the report behind it (marks it told)
    kind: str  # bouncing | complaint
    line: int | None  # the member's line in subscribers.csv; None: no longer in the list
    times: int = 0
    since: dt.date | None = None  # the first bounce counted, in the group's time zone
    reason: str = ""


def day_words(day: dt.date, *, today: dt.date) -> str:
    """``3 October``, with the year when it is not this one."""
    return f"{day.day} {day:%B}" + (f" {day.year}" if day.year != today.year else "")


def sentence(notice: Notice, *, today: dt.date) -> str:
    where = f"on line {notice.line} of subscribers.csv" if notice.line else "no longer in subscribers.csv"
    if notice.kind == "complaint":
        if not notice.line:
            return (
                "A member whose address is no longer in subscribers.csv marked a reminder as spam; "
                "they get no more mails. Nothing to do."
            )
        return (
            f"The member {where} marked a reminder as spam, and their mail provider told us: they get no "
            "more mails, as if they had unsubscribed. Nothing to do; if it was a mistake and they ask to be "
            f"back, run {RESUBSCRIBE}."
        )
    times = f"{notice.times} time{'s' if notice.times != 1 else ''}"
    since = f" since {day_words(notice.since, today=today)}" if notice.since else ""
    reason = f": {notice.reason}" if notice.reason else ""
    if not notice.line:
        return (
            f"An address {where} has bounced {times}{since}{reason}. It gets no more mails; nothing to do "
            "unless you add it back."
        )
    return (
        f"The address {where} has bounced {times}{since}{reason}. Check it with the member, then fix the "
        f"row or run {RESUBSCRIBE}. Until then it gets no reminders."
    )


def organiser_mail(notices: Sequence[Notice], *, today: dt.date) -> tuple[str, str]:
    """(subject, body) of the one mail that tells the organisers about ``notices``."""
    bouncing = sum(1 for n in notices if n.kind == "bouncing")
    complaints = len(notices) - bouncing
    parts = []
    if bouncing:
        parts.append("an address on the list no longer works" if bouncing == 1 else f"{bouncing} addresses "
                     "on the list no longer work")  # fmt: skip
    if complaints:
        parts.append("a member marked a reminder as spam" if complaints == 1 else f"{complaints} members "
                     "marked a reminder as spam")  # fmt: skip
    subject = "Newsletter: " + " and ".join(parts)
    body = "\n\n".join(sentence(n, today=today) for n in notices)
    body += (
        "\n\nNobody is removed from subscribers.csv automatically. `newsletter status` shows who is not "
        "being mailed and why."
    )
    return subject, body
