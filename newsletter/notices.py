"""Change notices: what members were told about a meeting, against what the schedule says now.

Pure functions of plain data. The ledger keeps, per member and meeting, the details of the last
message that reached them (`told`); a notice goes to exactly those whose details differ from the
meeting's current ones, grouped by what they were told so each notice says "from what to what".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from newsletter.model import Mailing, Meeting, Schedule, rebuild, same, snapshot
from newsletter.timing import Due

REMOVED_NOTE = "This meeting is no longer on the schedule."


def current(schedule: Schedule, key: str, told: str) -> Meeting:
    """The meeting now; one that was removed from schedule.yaml counts as cancelled, and a cancelled
    one keeps the time, place and title members were told."""
    found = schedule.meeting_on(dt.date.fromisoformat(key))
    if found is not None and found.cancelled:
        # A cancellation moves nothing: whatever the entry says (often just a date and a note), the
        # notice names the meeting as members were told it, with no example venue of the rule's.
        was = rebuild(told)
        return dataclasses.replace(
            found, time=was.time, venue=was.venue, duration=was.duration, title=was.title, placeholders=()
        )
    if found is not None:
        return found
    return dataclasses.replace(rebuild(told), cancelled=True, note=REMOVED_NOTE)


def audiences(told: Mapping[str, str], now: Meeting) -> dict[str, set[str]]:
    """Members to notify, grouped by what they were told (details JSON → addresses)."""
    latest = snapshot(now)
    groups: dict[str, set[str]] = defaultdict(set)
    for address, details in told.items():
        if not same(details, latest):
            groups[details].add(address)
    return dict(groups)


@dataclass(frozen=True)
class NoticeCampaign:
    """A change notice as the ledger holds it."""

    id: str
    name: str
    open: bool
    now: str  # the meeting's details the notice announces (JSON)
    before: str  # what its members were told before (JSON)
    members: frozenset[str]
    created: dt.datetime


@dataclass(frozen=True)
class NewNotice:
    id: str
    name: str
    now: str
    before: str
    members: frozenset[str]


@dataclass
class NoticePlan:
    """What the tick must record and send for one meeting's change notices."""

    close: list[tuple[str, str]] = field(default_factory=list)  # (campaign id, reason)
    open: list[NewNotice] = field(default_factory=list)
    send: list[Due] = field(default_factory=list)


def needs_notice(told: Mapping[str, str], meeting: Meeting, *, start: dt.datetime, now: dt.datetime) -> bool:
    return now < start and bool(audiences(told, meeting))


def plan(
    meeting: Meeting,
    told: Mapping[str, str],
    campaigns: list[NoticeCampaign],
    *,
    start: dt.datetime,
    now: dt.datetime,
    sequence: int,
) -> NoticePlan:
    """Which change notices of ``meeting`` to close, open and send.

    Members are grouped by what they were told, so each notice says what changed for its readers.
    A notice still going out for an older state of the meeting is superseded by the new one;
    once the meeting has begun, a correction would come too late and nothing is sent.
    """
    out = NoticePlan()
    opened = [c for c in campaigns if c.open]
    if start <= now:
        out.close = [(c.id, "the meeting had started") for c in opened]
        return out
    latest = snapshot(meeting)
    live = [c for c in opened if same(c.now, latest)]
    out.close = [(c.id, "superseded by a later change") for c in opened if c not in live]
    waiting = frozenset().union(*(c.members for c in live))
    known = {c.id: c for c in campaigns}
    sends: dict[str, tuple[str, dt.datetime]] = {c.id: (c.before, c.created) for c in live}
    for before, addresses in sorted(audiences(told, meeting).items()):
        fresh = frozenset(addresses) - waiting
        if not fresh:
            continue
        name = f"change-{sequence}"
        existing = known.get(f"{meeting.key}/{name}")
        if existing is not None and existing.before != before:
            # Members told different things get different notices ("from what to what").
            name += "-" + hashlib.sha256(before.encode()).hexdigest()[:6]
        cid = f"{meeting.key}/{name}"
        out.open.append(NewNotice(cid, name, latest, before, fresh))
        sends.setdefault(cid, (before, known[cid].created if cid in known else now))
    for cid, (before, created) in sends.items():
        name = cid.partition("/")[2]
        out.send.append(Due(Mailing.for_change(meeting, name, before), created, start))
    return out
