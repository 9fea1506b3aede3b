"""Change notices: what members were told about a meeting, against what the schedule says now.

Pure functions of plain data. The ledger keeps, per member and meeting, the details of the last
message that reached them (`told`); a notice goes to exactly those whose details differ from the
meeting's current ones, grouped by what they were told so each notice says "from what to what".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from .mailing import time_text
from .model import Meeting, Schedule, Venue

#: What a member was told that matters: an edit elsewhere (article, wording, a title) sends nothing.
COMPARED = ("time", "venue", "address", "venue_note", "cancelled")
REMOVED_NOTE = "This meeting is no longer on the schedule."


def snapshot(meeting: Meeting) -> str:
    """The details a message about ``meeting`` carries, as canonical JSON (stored in the ledger)."""
    return json.dumps(
        {
            "date": meeting.key,
            "time": meeting.time.strftime("%H:%M"),
            "title": meeting.title,
            "venue": meeting.venue.name,
            "address": meeting.venue.address,
            "venue_note": meeting.venue.note,
            "cancelled": meeting.cancelled,
            "minutes": int(meeting.duration.total_seconds() // 60),
        },
        sort_keys=True,
        ensure_ascii=False,
    )


def same(told: str, current: str) -> bool:
    a, b = json.loads(told), json.loads(current)
    return all(a.get(k) == b.get(k) for k in COMPARED)


def rebuild(details: str) -> Meeting:
    """The meeting as a member was told it (for a meeting that has vanished from the schedule)."""
    d = json.loads(details)
    return Meeting(
        date=dt.date.fromisoformat(d["date"]),
        time=dt.time.fromisoformat(d["time"]),
        title=d["title"],
        venue=Venue(d["venue"], d["address"], d["venue_note"]),
        cancelled=bool(d["cancelled"]),
        duration=dt.timedelta(minutes=int(d.get("minutes", 120))),
    )


def current(schedule: Schedule, key: str, told: str) -> Meeting:
    """The meeting now; one that was removed from schedule.yaml counts as cancelled."""
    found = schedule.meeting_on(dt.date.fromisoformat(key))
    if found is not None:
        return found
    return dataclasses.replace(rebuild(told), cancelled=True, note=REMOVED_NOTE)


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


def differences(told: str, now: Meeting) -> list[Change]:
    """Human words for what changed, in the order a member cares about."""
    before = json.loads(told)
    after = json.loads(snapshot(now))
    out: list[Change] = []
    if before["cancelled"] != after["cancelled"]:
        out.append(
            Change(
                "Status",
                "going ahead" if not before["cancelled"] else "cancelled",
                "cancelled" if after["cancelled"] else "going ahead again",
            )
        )
    if before["time"] != after["time"]:
        out.append(Change("Time", time_text(dt.time.fromisoformat(before["time"])), time_text(now.time)))
    if before["venue"] != after["venue"]:
        out.append(Change("Place", before["venue"], after["venue"]))
    if before["address"] != after["address"]:
        out.append(Change("Address", before["address"] or "(none)", after["address"] or "(none)"))
    if before["venue_note"] != after["venue_note"]:
        out.append(Change("Note", before["venue_note"] or "(none)", after["venue_note"] or "(none)"))
    return out


def headline(changes: list[Change], now: Meeting) -> str:
    """The subject's end: "now at 6:30 PM", "now at Copper River Grill", "new time and place"."""
    labels = {c.label for c in changes}
    if now.cancelled:
        return "cancelled"
    if labels == {"Time"}:
        return f"now at {time_text(now.time)}"
    if labels <= {"Place", "Address", "Note"} and "Place" in labels:
        return f"now at {now.venue.name}"
    if labels <= {"Address", "Note"}:
        return "venue details updated"
    if "Status" in labels:
        return "going ahead after all"
    return "new time and place" if {"Time", "Place"} <= labels else "details changed"


def audiences(told: Mapping[str, str], now: Meeting) -> dict[str, set[str]]:
    """Members to notify, grouped by what they were told (details JSON → addresses)."""
    latest = snapshot(now)
    groups: dict[str, set[str]] = defaultdict(set)
    for address, details in told.items():
        if not same(details, latest):
            groups[details].add(address)
    return dict(groups)
