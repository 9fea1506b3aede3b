"""``timing.quiet_until``: the first moment a tick could act differently with nothing else changed —
what bounds the idle note of a no-op tick (see ``state.idle``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.inputs.schedule import load_schedule
from newsletter.timing import quiet_until

NY = ZoneInfo("America/New_York")
HOUR = dt.timedelta(hours=1)
SAMPLE = Path(__file__).resolve().parent.parent / "schedule.yaml"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=NY)


@pytest.mark.parametrize(
    ("now", "longest", "until", "why"),
    [
        ("2026-11-20T10:00", HOUR, "2026-11-20T11:00", "an hour at most"),
        ("2026-11-30T23:30", HOUR, "2026-12-01T00:00", "the group's date changes"),
        ("2026-12-01T08:30", HOUR, "2026-12-01T09:00", "the week-before's window opens"),
        ("2026-12-07T08:45", HOUR, "2026-12-07T09:00", "it closes as the day-before's opens"),
        ("2026-12-08T17:30", HOUR, "2026-12-08T18:00", "the dinner starts, the day-before closes"),
        ("2026-12-01T09:00", dt.timedelta(days=2), "2026-12-02T00:00", "at a boundary: the next one"),
        ("2027-03-13T23:30", HOUR, "2027-03-14T00:00", "midnight before a daylight-saving change"),
        ("2027-11-06T23:30", HOUR, "2027-11-07T00:00", "midnight before the clocks go back"),
    ],
)
def test_the_first_moment_a_tick_could_act_differently(
    now: str, longest: dt.timedelta, until: str, why: str
) -> None:
    schedule = load_schedule(SAMPLE)
    assert quiet_until(schedule, at(now), longest=longest) == at(until), why


def test_every_window_edge_and_meeting_start_is_a_boundary() -> None:
    """Walking from boundary to boundary over the year meets every reminder's due time, every end of
    a window and every meeting's start."""
    from newsletter.timing import plan

    schedule = load_schedule(SAMPLE)
    now, end, met = at("2026-11-01T00:00"), at("2027-12-31T00:00"), set()
    while now < end:
        now = quiet_until(schedule, now, longest=dt.timedelta(days=400))
        met.add(now)
    edges = {d.at for d in plan(schedule)} | {d.until for d in plan(schedule)}
    edges |= {m.start(NY) for m in schedule.meetings}
    assert {e for e in edges if e < end} <= met
