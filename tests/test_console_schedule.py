"""The console's edits of schedule.yaml: comments, order and layout kept; checked like `check`; atomic."""

from __future__ import annotations

import datetime as dt
import difflib
from pathlib import Path

import pytest

from newsletter.errors import DataError
from newsletter.inputs import schedule_edit as edits
from newsletter.inputs.schedule import parse_schedule
from newsletter.model import Venue

DINNER = dt.date(2026, 12, 8)
FEBRUARY = dt.date(2027, 2, 9)


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def edit_of(meeting: object, **changes: object) -> edits.MeetingEdit:
    m = meeting
    base = {"date": m.date, "time": m.time, "title": m.title, "venue": m.venue, "details": m.details,  # type: ignore[attr-defined]
            "cancelled": m.cancelled, "note": m.note}  # type: ignore[attr-defined]  # fmt: skip
    return edits.MeetingEdit(**{**base, **changes})  # type: ignore[arg-type]


@pytest.fixture
def text(group: Path) -> str:
    return (group / "schedule.yaml").read_text(encoding="utf-8")


def test_an_edit_changes_only_its_lines(text: str, group: Path) -> None:
    schedule = edits.validate(text, group)
    dinner = schedule.meeting_on(DINNER)
    assert dinner is not None
    after = edits.edit_meeting(text, dinner, edit_of(dinner, time=dt.time(18, 30)))
    assert changed_lines(text, after) == ['-      time: "18:00"', '+      time: "18:30"']
    assert edits.validate(after, group).meeting_on(DINNER).time == dt.time(18, 30)  # type: ignore[union-attr]
    # A meeting of the regular rule gets a dated entry with only what differs.
    february = schedule.meeting_on(FEBRUARY)
    assert february is not None
    after = edits.edit_meeting(text, february, edit_of(february, cancelled=True, note="Snow."))
    assert changed_lines(text, after) == [
        "+    - date: 2027-02-09", "+      cancelled: true", "+      note: Snow.",
    ]  # fmt: skip
    assert edits.validate(after, group).meeting_on(FEBRUARY).cancelled  # type: ignore[union-attr]


def test_a_moved_rule_meeting_is_cancelled_on_its_old_date(text: str, group: Path) -> None:
    schedule = edits.validate(text, group)
    february = schedule.meeting_on(FEBRUARY)
    assert february is not None
    moved = edits.edit_meeting(text, february, edit_of(february, date=dt.date(2027, 2, 16)))
    moved = edits.cancel_if_still_there(moved, edits.validate(moved, group), FEBRUARY, dt.date(2027, 2, 16))
    after = edits.validate(moved, group)
    assert after.meeting_on(FEBRUARY).cancelled  # type: ignore[union-attr]
    assert "Moved to Tuesday, February 16." in after.meeting_on(FEBRUARY).note  # type: ignore[union-attr]
    assert not after.meeting_on(dt.date(2027, 2, 16)).cancelled  # type: ignore[union-attr]


def test_the_rule_keeps_its_comments_and_loses_the_example_mark(text: str, group: Path) -> None:
    rule = edits.current_rule(text)
    assert rule is not None and rule.weekday == 1 and rule.week == 2 and rule.months == (2, 4, 6, 8, 10, 12)
    new = edits.RuleEdit(1, 2, (2, 4, 6, 8, 10, 12), dt.time(18, 0), "Library", "1 Main St, Greenville, SC",
                         rule.start, rule.until)  # fmt: skip
    after = edits.edit_rule(text, new)
    removed = [line for line in changed_lines(text, after) if line.startswith("-")]
    assert all("name:" in line or "address:" in line or "placeholder" in line for line in removed), removed
    assert [c for c in text.splitlines() if c.strip().startswith("#") and "placeholder" not in c] == [
        c for c in after.splitlines() if c.strip().startswith("#") and "placeholder" not in c
    ]
    assert edits.validate(after, group).placeholders == ()
    # Months keep their one-line list.
    fewer = edits.edit_rule(text, edits.RuleEdit(1, 2, (3, 9), rule.time, rule.venue_name, rule.venue_address,
                                                 rule.start, rule.until))  # fmt: skip
    assert "    months: [March, September]\n" in fewer


def test_a_mistake_gets_checks_message_and_nothing_is_written(text: str, group: Path) -> None:
    rule = edits.current_rule(text)
    assert rule is not None
    swapped = edits.RuleEdit(
        1,
        2,
        rule.months,
        rule.time,
        rule.venue_name,
        rule.venue_address,
        dt.date(2028, 1, 1),
        dt.date(2027, 1, 1),
    )
    bad = edits.edit_rule(text, swapped)
    with pytest.raises(DataError) as caught:
        edits.validate(bad, group)
    with pytest.raises(DataError) as direct:
        parse_schedule(bad)
    assert [str(p) for p in caught.value.problems] == [str(p) for p in direct.value.problems]
    assert "is after until" in str(caught.value)


def test_a_write_needs_the_file_it_was_made_from(text: str, group: Path) -> None:
    path = group / "schedule.yaml"
    version = edits.version(text)
    path.write_text(text + "# a hand edit\n", encoding="utf-8")
    with pytest.raises(edits.ScheduleChanged):
        edits.write(path, text.replace('"18:00"', '"19:00"'), expected=version)
    assert path.read_text(encoding="utf-8").endswith("# a hand edit\n")
    now = path.read_text(encoding="utf-8")
    edits.write(path, now.replace("# a hand edit", "# kept"), expected=edits.version(now))
    assert path.read_text(encoding="utf-8").endswith("# kept\n")
    assert not list(group.glob(".schedule.yaml.*.tmp"))


def test_a_venue_is_written_in_place(text: str, group: Path) -> None:
    dinner = edits.validate(text, group).meeting_on(DINNER)
    assert dinner is not None
    venue = Venue("Copper River Grill", "775 Haywood Rd, Greenville, SC 29607", "Upstairs room.")
    after = edits.edit_meeting(text, dinner, edit_of(dinner, venue=venue))
    assert changed_lines(text, after) == [
        "-        note: We have a private room reserved.", "+        note: Upstairs room.",
    ]  # fmt: skip
