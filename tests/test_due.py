"""When reminders fall due: the seed's 2018 dates, the 2017 dinner, both DST changes, a missed window."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from newsletter.inputs.schedule import parse_schedule
from newsletter.timing import due_now, local_instant, next_due, plan, reminders_for

NY = ZoneInfo("America/New_York")

SEED = """
group:
  name: Women's Cancer Support Group
  mission: Support.
  timezone: America/New_York
  sender: Group <news@example.org>
reminders:
  - {name: week-before, before: 7 days, at: "09:00"}
  - {name: day-before, before: 1 day, at: "09:00"}
meetings:
  dates:
    - {date: 2017-12-12, weekday: Tuesday, title: Planning dinner, time: "18:00",
       venue: {name: Copper River Grill, address: "775 Haywood Rd, Greenville, SC 29607"}}
    - {date: 2018-02-13, weekday: Tuesday, time: "18:00", venue: {name: Room}}
    - {date: 2018-04-10, weekday: Tuesday, time: "18:00", venue: {name: Room}}
    - {date: 2018-06-12, weekday: Tuesday, time: "18:00", venue: {name: Room}}
    - {date: 2018-08-14, weekday: Tuesday, time: "18:00", venue: {name: Room}}
    - {date: 2018-10-09, weekday: Tuesday, time: "18:00", venue: {name: Room}}
    - {date: 2018-12-11, weekday: Tuesday, time: "18:00", venue: {name: Room}}
"""


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NY)


def test_seed_reminders_fall_due_at_nine_local_time() -> None:
    schedule = parse_schedule(SEED)
    dues = plan(schedule)
    assert len(dues) == 14
    got = [(d.id, d.at.astimezone(NY).replace(tzinfo=None).isoformat()) for d in dues[:4]]
    assert got == [
        ("2017-12-12/week-before", "2017-12-05T09:00:00"),
        ("2017-12-12/day-before", "2017-12-11T09:00:00"),
        ("2018-02-13/week-before", "2018-02-06T09:00:00"),
        ("2018-02-13/day-before", "2018-02-12T09:00:00"),
    ]
    for due in dues:  # every one at 09:00 local, whatever the UTC offset of the day
        assert due.at.astimezone(NY).time() == dt.time(9, 0)


def test_windows_end_at_the_next_reminder_or_the_meeting() -> None:
    schedule = parse_schedule(SEED)
    dinner = schedule.meetings[0]
    week, day = reminders_for(schedule, dinner)
    assert week.until == day.at == at(2017, 12, 11, 9)
    assert day.until == at(2017, 12, 12, 18)
    assert week.state(at(2017, 12, 5, 8, 59)) == "upcoming"
    assert week.state(at(2017, 12, 5, 9)) == "due"
    assert week.state(at(2017, 12, 11, 8, 59)) == "due"
    assert week.state(at(2017, 12, 11, 9)) == "closed"  # never a "next week" mail the day before
    assert day.state(at(2017, 12, 12, 18)) == "closed"  # never after the meeting started


def test_across_both_dst_changes_offsets_follow_the_date() -> None:
    schedule = parse_schedule(SEED)
    april = reminders_for(schedule, schedule.meeting_on(dt.date(2018, 4, 10)))  # type: ignore[arg-type]
    assert april[0].at.utcoffset() == dt.timedelta(hours=-4)  # EDT after 2018-03-11
    december = reminders_for(schedule, schedule.meeting_on(dt.date(2018, 12, 11)))  # type: ignore[arg-type]
    assert december[0].at.utcoffset() == dt.timedelta(hours=-5)  # EST after 2018-11-04


def test_nonexistent_and_repeated_local_times_give_exactly_one_instant() -> None:
    spring = local_instant(dt.date(2018, 3, 11), dt.time(2, 30), NY)  # skipped: clocks jump 02:00 → 03:00
    assert spring.astimezone(dt.UTC) == dt.datetime(2018, 3, 11, 7, 30, tzinfo=dt.UTC)
    autumn = local_instant(dt.date(2018, 11, 4), dt.time(1, 30), NY)  # happens twice
    assert autumn.astimezone(dt.UTC) == dt.datetime(2018, 11, 4, 5, 30, tzinfo=dt.UTC)  # the first one


@pytest.mark.parametrize(("day", "clock"), [(dt.date(2018, 3, 11), "02:30"), (dt.date(2018, 11, 4), "01:30")])
def test_reminder_at_a_dst_edge_is_due_once(day: dt.date, clock: str) -> None:
    meeting = day + dt.timedelta(days=2)
    text = SEED.replace(
        '{name: day-before, before: 1 day, at: "09:00"}', f'{{name: early, before: 2 days, at: "{clock}"}}'
    )
    text += f'    - {{date: {meeting.isoformat()}, time: "18:00", venue: {{name: Room}}}}\n'
    schedule = parse_schedule(text)
    early = [d for d in plan(schedule) if d.id == f"{meeting.isoformat()}/early"]
    assert len(early) == 1
    # Walk the night in 5-minute steps: it becomes due exactly once and stays due.
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=NY).astimezone(dt.UTC)
    states = [early[0].state(start + dt.timedelta(minutes=5 * i)) for i in range(60)]
    assert states.count("upcoming") > 0 and "closed" not in states
    first_due = states.index("due")
    assert all(s == "due" for s in states[first_due:])


def test_missed_entirely_is_closed_not_late() -> None:
    schedule = parse_schedule(SEED)
    # The machine was off from Dec 4 until the meeting began: nothing is due any more.
    assert due_now(schedule, at(2017, 12, 12, 18, 1)) == []
    # Back on the morning of the meeting: the day-before reminder is still useful, the week-before is not.
    assert [d.id for d in due_now(schedule, at(2017, 12, 12, 10))] == ["2017-12-12/day-before"]
    assert [d.id for d in due_now(schedule, at(2017, 12, 11, 10))] == ["2017-12-12/day-before"]


def test_next_due_is_the_next_meetings_current_or_next_reminder() -> None:
    schedule = parse_schedule(SEED)
    first = next_due(schedule, at(2017, 11, 1))
    assert first is not None and first.id == "2017-12-12/week-before"
    during = next_due(schedule, at(2017, 12, 11, 12))
    assert during is not None and during.id == "2017-12-12/day-before"
    assert next_due(schedule, at(2019, 1, 1)) is None


def test_cancelled_meeting_has_no_reminders() -> None:
    text = SEED.replace(
        "- {date: 2018-02-13, weekday: Tuesday,", "- {date: 2018-02-13, cancelled: true, weekday: Tuesday,"
    )
    schedule = parse_schedule(text)
    assert not [d for d in plan(schedule) if d.id.startswith("2018-02-13")]
