"""Members' own choices applied to one mailing: who wants it, in which form, and who said she comes.

Read once per mailing from the state database (``state.answers``): each member's preferences (the
group's defaults for one who never chose) and the meeting's answers.  A member who does not want a
mailing (she chose other reminders, or paused them) is left out before she is enqueued, so she never
counts as "not reached"; a row of hers already in the ledger (an earlier run, or a change notice
opened for her) is closed as ``suppressed``: not mailed, by her own choice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.inputs.seen_addresses import SeenAddresses
from newsletter.model import DeliveryStatus, Mailing, MailKind, Meeting, Rsvp, Subscriber
from newsletter.state.answers import (
    PreferenceBook,
    Preferences,
    RsvpCounts,
    preferences_of,
    rsvp_counts,
    rsvps,
    wants,
)
from newsletter.state.ledger import Ledger

if TYPE_CHECKING:
    from newsletter.project import Project

__all__ = ["Choices", "answer_counts", "answers_line", "member_keys"]


@dataclass(frozen=True)
class Choices:
    """One mailing's members' preferences, and the addresses of those who said they would come."""

    book: PreferenceBook
    reminder: str | None  # the reminder's name; None for a change notice (only a pause holds it back)
    day: dt.date  # the meeting's
    coming: frozenset[str]

    @classmethod
    def read(cls, ledger: Ledger, project: Project, mailing: Mailing) -> Choices:
        meeting = mailing.meeting
        answers = rsvps(ledger, meeting.key) if meeting.rsvp != Rsvp.OFF else {}
        coming = frozenset(address for address, answer in answers.items() if answer.coming)
        return cls(
            preferences_of(ledger, project.schedule),
            mailing.name if mailing.kind == MailKind.REMINDER else None,
            meeting.date,
            coming,
        )

    def of(self, key: str) -> Preferences:
        return self.book[key]

    def wants(self, key: str) -> bool:
        return wants(self.book[key], self.reminder, self.day)

    def only_wanted(self, members: Iterable[Subscriber]) -> Iterator[Subscriber]:
        return (member for member in members if self.wants(member.key))

    def close_unwanted(self, ledger: Ledger, cid: str, *, now: dt.datetime) -> int:
        """Rows still open for members who no longer want this mailing: ``suppressed`` (final)."""
        unwanted = [key for key in ledger.enqueued(cid) if not self.wants(key)]
        return ledger.mark(cid, unwanted, DeliveryStatus.SUPPRESSED, now=now) if unwanted else 0


def member_keys(project: Project, ledger: Ledger) -> SeenAddresses:
    """The list's addresses (lower-cased) that may still be mailed: not unsubscribed.  A row with a
    problem is left out, as a send leaves it out.  Kept as 12-byte digests (``key in keys``,
    ``len(keys)``), not as strings: 20 to 30 MB for a million members, not hundreds."""
    from newsletter.inputs.sending_list import read_for_sending

    found, rows = read_for_sending(project.subscribers_path, merge=False)
    suppressed = ledger.suppressed()
    keys = SeenAddresses(rows.expected)
    for member in found:
        if member.key not in suppressed:
            keys.first_line(member.key, member.line or 1)
    return keys


def answer_counts(ledger: Ledger, meeting_key: str, members: SeenAddresses) -> RsvpCounts:
    """The answers for one meeting out of ``members`` (``member_keys``): what organisers see."""
    listed = frozenset(address for address in rsvps(ledger, meeting_key) if address in members)
    return rsvp_counts(ledger, meeting_key, len(members), members=listed)


def answers_line(meeting: Meeting, counts: RsvpCounts) -> str:
    """What organisers read: "Planning dinner, Tue Dec 8: 12 coming (15 people), 4 can't come, …"."""
    day = meeting.date
    return f"{meeting.title}, {day:%a} {day:%b} {day.day}: {counts}"
