"""schedule.yaml: the shipped sample, the seed's own dates, the recurrence, and every mistake's message."""

from __future__ import annotations

import calendar
import datetime as dt
import pathlib

import pytest

from newsletter.errors import DataError, Problem
from newsletter.inputs.schedule import article_refs, load_schedule, parse_schedule
from newsletter.model import Meeting

ROOT = pathlib.Path(__file__).resolve().parents[1]
D = dt.date

# Every case below breaks one line of this valid file; line numbers are found, not hard-coded.
VALID = """\
group:
  name: Test Group
  mission: We help.
  timezone: America/New_York
  sender: Test Group <news@example.org>
  organisers:
    - {name: Margaret, email: margaret@example.org}
reminders:
  - {name: week-before, before: 7 days, at: "09:00"}
  - {name: day-before, before: 1 day, at: "09:00"}
article: second-opinion
meetings:
  every:
    weekday: Tuesday
    week: 2
    months: [February, April, June, August, October, December]
    time: "18:00"
    venue: {name: Community room, address: "Greenville, SC"}
  from: 2018-01-01
  until: 2018-12-31
  dates:
    - date: 2018-12-11
      weekday: Tuesday
      title: Planning dinner
      venue: {name: Copper River Grill, address: "775 Haywood Rd, Greenville, SC 29607"}
"""

SEED_2018 = [D(2018, 2, 13), D(2018, 4, 10), D(2018, 6, 12), D(2018, 8, 14), D(2018, 10, 9), D(2018, 12, 11)]


def line_of(text: str, marker: str) -> int:
    """1-based line of the first line containing ``marker``."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if marker in line)


def edit(old: str, new: str, text: str = VALID) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def problems(text: str, path: str = "schedule.yaml") -> list[Problem]:
    with pytest.raises(DataError) as info:
        parse_schedule(text, path)
    return info.value.problems


def with_meetings(meetings: str) -> str:
    """VALID with its meetings: section replaced."""
    return VALID[: VALID.index("meetings:")] + meetings


def dates_of(text: str) -> list[dt.date]:
    return [meeting.date for meeting in parse_schedule(text).meetings]


def meeting_on(text: str, day: dt.date) -> Meeting:
    meeting = parse_schedule(text).meeting_on(day)
    assert meeting is not None, day
    return meeting


# --- the shipped sample -------------------------------------------------------------------------


def test_sample_parses_with_the_dinner_first() -> None:
    schedule = load_schedule(ROOT / "schedule.yaml")
    group = schedule.group
    assert group.name == "Women's Cancer Support Group"
    assert group.timezone == "America/New_York"
    assert group.sender == "Women's Cancer Support Group <news@example.org>"
    assert group.mission.startswith("Our mission is to provide support and assistance to women affected")
    assert group.mission.endswith("to live as long as possible with the best quality of life.")
    assert (
        "years beyond diagnosis. We are also here for your family, friends and caregivers." in group.mission
    )
    assert [(o.name, o.email) for o in group.organisers] == [
        ("Margaret", "margaret@example.org"),
        ("Vonnie", "vonnie@example.org"),
    ]
    assert [(r.name, r.days_before, r.at) for r in schedule.reminders] == [
        ("week-before", 7, dt.time(9)),
        ("day-before", 1, dt.time(9)),
    ]
    assert schedule.article == "second-opinion"

    dinner = schedule.meetings[0]
    assert dinner.date == D(2026, 12, 8)
    assert dinner.time == dt.time(18, 0)
    assert dinner.title == "Planning dinner"
    assert dinner.venue.name == "Copper River Grill"
    assert dinner.venue.address == "775 Haywood Rd, Greenville, SC 29607"
    assert dinner.venue.note == "We have a private room reserved."
    assert dinner.details.startswith("Join us for good food and good company.")
    assert not dinner.cancelled


def test_sample_then_meets_on_every_second_tuesday_of_2027s_even_months() -> None:
    schedule = load_schedule(ROOT / "schedule.yaml")
    expected = [
        D(2027, 2, 9),
        D(2027, 4, 13),
        D(2027, 6, 8),
        D(2027, 8, 10),
        D(2027, 10, 12),
        D(2027, 12, 14),
    ]
    # Cross-check the literal list with the calendar: the second Tuesday of each even month.
    by_calendar = [
        [week[calendar.TUESDAY] for week in calendar.monthcalendar(2027, month) if week[calendar.TUESDAY]][1]
        for month in range(2, 13, 2)
    ]
    assert [day.day for day in expected] == by_calendar
    rest = schedule.meetings[1:]
    assert [m.date for m in rest] == expected
    assert all(m.time == dt.time(18) and m.venue.address == "Greenville, SC" for m in rest)
    assert all(m.line == schedule.meetings[1].line for m in rest)  # the every: line
    assert list(schedule.meetings) == sorted(schedule.meetings, key=lambda m: m.date)


def test_sample_article_reference_keeps_its_line() -> None:
    text = (ROOT / "schedule.yaml").read_text(encoding="utf-8")
    assert article_refs(text) == [("second-opinion", line_of(text, "article: second-opinion"))]


def test_article_refs_of_a_file_with_their_lines(tmp_path: pathlib.Path) -> None:
    text = (
        VALID + "    - {date: 2018-06-12, article: staying-active}\n    - {date: 2018-08-14, article: x.md}\n"
    )
    path = tmp_path / "schedule.yaml"
    path.write_text(text, encoding="utf-8")
    expected = [
        ("second-opinion", line_of(text, "article: second")),
        ("staying-active", line_of(text, "staying")),
    ]
    assert article_refs(path) == expected  # the bad "x.md" is parse_schedule's to report
    assert article_refs(text) == expected
    text = text.replace("    - {date: 2018-08-14, article: x.md}\n", "")
    assert meeting_on(text, D(2018, 6, 12)).article == "staying-active"
    assert meeting_on(text, D(2018, 8, 14)).article is None  # the default applies


def test_sample_venue_is_marked_as_a_placeholder() -> None:
    schedule = load_schedule(ROOT / "schedule.yaml")
    venue = schedule.meetings[1].venue
    assert "example" in venue.name.lower()
    text = (ROOT / "schedule.yaml").read_text(encoding="utf-8")
    line = line_of(text, "placeholder: true  ")
    # The organiser reads what to do right there, and the loader sees the same mark.
    assert "replace the name and address" in text.splitlines()[line - 1]
    assert schedule.placeholders == ((line, f'the venue "{venue.name}"'),)
    assert schedule.meetings[0].placeholders == ()  # the dinner has a real venue of its own
    assert all(m.placeholders == (line,) for m in schedule.meetings[1:])


def test_placeholders_lists_only_the_marks_a_meeting_uses() -> None:
    marked = 'venue: {name: Community room, address: "Greenville, SC", placeholder: true}'
    text = edit('venue: {name: Community room, address: "Greenville, SC"}', marked)
    line = line_of(text, "placeholder: true")
    schedule = parse_schedule(text)
    assert schedule.placeholders == ((line, 'the venue "Community room"'),)
    assert [m.date for m in schedule.meetings if m.placeholders == (line,)] == SEED_2018[:-1]
    assert schedule.meeting_on(D(2018, 12, 11)).placeholders == ()  # type: ignore[union-attr]
    # A dated entry that only adds a note still meets at the example venue.
    noted = parse_schedule(text + "    - {date: 2018-04-10, venue: {note: Use the side door.}}\n")
    assert noted.meeting_on(D(2018, 4, 10)).placeholders == (line,)  # type: ignore[union-attr]
    # Once every meeting has a venue of its own, the example is no longer used.
    own = "".join(f"    - {{date: {day}, venue: Hall}}\n" for day in SEED_2018[:-1])
    assert parse_schedule(text + own).placeholders == ()
    assert parse_schedule(text.replace("placeholder: true", "placeholder: false")).placeholders == ()
    (problem,) = problems(text.replace("placeholder: true", "placeholder: maybe"))
    assert (problem.line, problem.message) == (line, 'placeholder "maybe" is not true or false')


def test_a_placeholder_on_a_dated_entry() -> None:
    text = VALID.replace(
        'address: "775 Haywood Rd, Greenville, SC 29607"}', 'address: "775 Haywood Rd", placeholder: yes}'
    )
    line = line_of(text, "placeholder: yes")
    schedule = parse_schedule(text)
    assert schedule.placeholders == ((line, 'the venue "Copper River Grill"'),)
    assert [m.date for m in schedule.meetings if m.placeholders] == [D(2018, 12, 11)]


# --- the seed's own dates, and the rule that reproduces them ------------------------------------


def test_seed_dates_alone_with_the_2017_dinner() -> None:
    entries = "".join(
        f'    - {{date: {day}, weekday: Tuesday, time: "18:00", venue: Community room}}\n'
        for day in SEED_2018
    )
    text = with_meetings(
        "meetings:\n"
        "  dates:\n"
        "    - date: 2017-12-12\n"
        "      weekday: Tuesday\n"
        "      title: Planning dinner\n"
        '      time: "18:00"\n'
        "      venue:\n"
        "        name: Copper River Grill\n"
        "        address: 775 Haywood Rd, Greenville, SC 29607\n"
        "        note: We have a private room reserved.\n" + entries
    )
    schedule = parse_schedule(text)
    assert [m.date for m in schedule.meetings] == [D(2017, 12, 12), *SEED_2018]
    dinner = schedule.meetings[0]
    assert (dinner.title, dinner.time, dinner.venue.name) == (
        "Planning dinner",
        dt.time(18),
        "Copper River Grill",
    )
    assert dinner.line == line_of(text, "date: 2017-12-12")
    assert schedule.meetings[1].venue.name == "Community room"
    assert schedule.meetings[1].title == "Support group meeting"


def test_rule_second_tuesday_of_even_months_reproduces_the_seed() -> None:
    assert dates_of(VALID[: VALID.index("  dates:")]) == SEED_2018


def test_rule_last_week_of_the_month() -> None:
    text = edit("week: 2", "week: -1")
    text = edit("months: [February, April, June, August, October, December]", "months: [jan, 3, Sept]", text)
    assert dates_of(text) == [D(2018, 1, 30), D(2018, 3, 27), D(2018, 9, 25), D(2018, 12, 11)]
    assert dates_of(edit("week: -1", "week: last", text))[:3] == [
        D(2018, 1, 30),
        D(2018, 3, 27),
        D(2018, 9, 25),
    ]


def test_rule_without_months_meets_every_month() -> None:
    text = edit("    months: [February, April, June, August, October, December]\n", "")
    assert len(dates_of(text)) == 12


def test_override_keeps_what_it_does_not_say() -> None:
    schedule = parse_schedule(VALID)
    dinner = schedule.meeting_on(D(2018, 12, 11))
    assert dinner is not None
    assert dinner.title == "Planning dinner"
    assert dinner.time == dt.time(18)  # from the rule
    assert dinner.venue.name == "Copper River Grill"
    assert dinner.venue.address == "775 Haywood Rd, Greenville, SC 29607"  # nothing of the rule's venue
    assert dinner.line == line_of(VALID, "date: 2018-12-11")

    text = VALID + "    - {date: 2018-04-10, title: Guest speaker, venue: {note: Use the side door.}}\n"
    april = parse_schedule(text).meeting_on(D(2018, 4, 10))
    assert april is not None
    assert april.title == "Guest speaker"
    assert (april.venue.name, april.venue.address) == ("Community room", "Greenville, SC")
    assert april.venue.note == "Use the side door."
    assert april.time == dt.time(18)


def test_dated_entry_off_the_rule_adds_a_meeting() -> None:
    text = VALID + '    - {date: 2018-05-15, title: Summer picnic, time: "12:00", duration: 3 hours}\n'
    schedule = parse_schedule(text)
    assert len(schedule.meetings) == 7
    picnic = schedule.meeting_on(D(2018, 5, 15))
    assert picnic is not None
    assert (picnic.title, picnic.time, picnic.venue.name) == ("Summer picnic", dt.time(12), "Community room")
    assert picnic.duration == dt.timedelta(hours=3)
    assert picnic.line == line_of(text, "2018-05-15")


def test_cancelled_meeting_stays_listed_with_its_note() -> None:
    text = VALID + "    - {date: 2018-06-12, cancelled: true, note: Room unavailable; see you in August.}\n"
    june = parse_schedule(text).meeting_on(D(2018, 6, 12))
    assert june is not None
    assert june.cancelled
    assert june.note == "Room unavailable; see you in August."
    assert june.venue.name == "Community room"
    # YAML 1.2 keeps yes/no as text; organisers write them anyway.
    assert meeting_on(VALID + "    - {date: 2018-06-12, cancelled: yes}\n", D(2018, 6, 12)).cancelled
    assert not meeting_on(VALID + "    - {date: 2018-06-12, cancelled: no}\n", D(2018, 6, 12)).cancelled


def test_a_cancelled_dated_entry_needs_no_time_nor_venue() -> None:
    cancelled = "    - {date: 2018-02-13, cancelled: true, note: Room unavailable}\n"
    text = with_meetings("meetings:\n  dates:\n" + cancelled)
    (meeting,) = parse_schedule(text).meetings
    assert (meeting.date, meeting.cancelled, meeting.note) == (D(2018, 2, 13), True, "Room unavailable")
    assert meeting.line == line_of(text, "2018-02-13")
    # Among other dated entries it takes their usual time (what a cancellation notice shows).
    others = '    - {date: 2018-04-10, time: "18:30", venue: Hall}\n    - {date: 2018-06-12, time: 6:30 pm}\n'
    text = with_meetings("meetings:\n  dates:\n" + cancelled + others)
    (problem,) = problems(text)  # a meeting that goes ahead still needs its venue
    assert (problem.line, "no venue" in problem.message) == (line_of(text, "2018-06-12"), True)
    schedule = parse_schedule(text.replace("time: 6:30 pm}", "time: 6:30 pm, venue: Hall}"))
    february = schedule.meeting_on(D(2018, 2, 13))
    assert february is not None and february.cancelled
    assert february.time == dt.time(18, 30)
    going_ahead = text.replace("cancelled: true, ", "")
    assert "has no time" in problems(going_ahead)[0].message
    assert problems(going_ahead)[0].line == line_of(text, "2018-02-13")


def test_unquoted_times_are_read_as_clock_times() -> None:
    text = edit('time: "18:00"', "time: 18:30")
    text = edit('at: "09:00"}', "at: 09:00}", text)
    schedule = parse_schedule(text)
    assert {m.time for m in schedule.meetings} == {dt.time(18, 30)}
    assert schedule.reminders[0].at == dt.time(9, 0)


def test_times_as_organisers_write_them() -> None:
    text = edit('time: "18:00"', "time: 6:30 pm")
    text = edit('before: 7 days, at: "09:00"}', "before: 7 days, at: 9am}", text)
    text = edit('before: 1 day, at: "09:00"}', "before: 1 day, at: 12pm}", text)
    schedule = parse_schedule(text)
    assert {m.time for m in schedule.meetings} == {dt.time(18, 30)}
    assert [r.at for r in schedule.reminders] == [dt.time(9), dt.time(12)]


HEADER_BOUND = [
    # (id, old, new, marker, in the message)
    (
        "group-name-lf",
        "name: Test Group",
        'name: "Test\\nGroup"',
        'name: "Test',
        "name contains a line break (LF)",
    ),
    (
        "title-literal-block",
        "      title: Planning dinner\n",
        "      title: |\n        Planning\n        dinner\n",
        "title: |",
        "title contains a line break (LF)",
    ),
    ("title-tab", "title: Planning dinner", 'title: "Planning\\tdinner"', "title:", "title contains a tab"),
    (
        "title-u2028",
        "title: Planning dinner",
        'title: "Planning\\u2028dinner"',
        "title:",
        "title contains a line break (U+2028)",
    ),
    (
        "rule-title-bell",
        '    time: "18:00"\n',
        '    time: "18:00"\n    title: "Meeting\\a"\n',
        'title: "Meeting',
        "control character (U+0007)",
    ),
    (
        "venue-name-encoded-lf",
        "{name: Community room,",
        '{name: "=?utf-8?q?Hall=0ABcc:_all@example.com?=",',
        "=?utf-8?q?Hall",
        "name contains a line break (LF) inside an encoded word",
    ),
    (
        "venue-bare-text-cr",
        '      venue: {name: Copper River Grill, address: "775 Haywood Rd, Greenville, SC 29607"}',
        '      venue: "Copper River Grill\\rBcc: all@example.com"',
        "Copper River Grill",
        "venue contains a line break (CR)",
    ),
    (
        "organiser-name",
        "{name: Margaret,",
        '{name: "Margaret=?utf-8?b?DQpCY2M6IHg=?=",',
        "Margaret=?",
        "name contains a line break (CR) inside an encoded word",
    ),
    (
        "sender-encoded-lf",
        "sender: Test Group <news@example.org>",
        'sender: "=?utf-8?q?Test=0ABcc:_all@example.com?= <news@example.org>"',
        "sender:",
        "sender contains a line break (LF) inside an encoded word",
    ),
    (
        "sender-bad-encoded-word",
        "sender: Test Group <news@example.org>",
        'sender: "=?x-unknown?q?Test?= <news@example.org>"',
        "sender:",
        "sender contains an encoded word (=?…?=) that cannot be decoded",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "marker", "message"), [c[1:] for c in HEADER_BOUND], ids=[c[0] for c in HEADER_BOUND]
)
def test_values_that_reach_a_header_refuse_line_breaks(old: str, new: str, marker: str, message: str) -> None:
    text = edit(old, new)
    (problem,) = problems(text)  # refused, never folded into a space
    assert problem.line == line_of(text, marker)
    assert message in problem.message
    assert "one line" in problem.hint
    assert "all@example.com" not in str(problem) and "Bcc" not in str(problem)


def test_a_raw_control_character_in_the_file_is_located() -> None:
    text = edit("title: Planning dinner", "title: Planning\x07dinner")
    (problem,) = problems(text)
    assert problem.line == line_of(text, "title: Planning")
    assert problem.message == "the line contains an invisible control character (U+0007)"


def test_a_title_on_two_plain_lines_is_one_line_to_yaml() -> None:
    text = edit("      title: Planning dinner\n", "      title: Planning\n        dinner\n")
    assert meeting_on(text, D(2018, 12, 11)).title == "Planning dinner"


def test_addresses_are_kept_readable() -> None:
    text = edit("sender: Test Group <news@example.org>", "sender: Café des Femmes <news@Example.ORG>")
    text = edit(
        "  organisers:",
        "  reply_to: margaret@example.org\n  website: https://example.org\n  organisers:",
        text,
    )
    text = edit("email: margaret@example.org}", 'email: margaret@example.org, phone: "864-555-0100"}', text)
    group = parse_schedule(text).group
    assert group.sender == "Café des Femmes <news@example.org>"  # the header layer encodes, not us
    assert (group.reply_to, group.website) == ("margaret@example.org", "https://example.org")
    assert group.organisers[0].phone == "864-555-0100"


def test_default_reminders_and_durations() -> None:
    text = edit(VALID[VALID.index("reminders:") : VALID.index("article:")], "")
    schedule = parse_schedule(text)
    assert [(r.name, r.days_before, r.at) for r in schedule.reminders] == [
        ("week-before", 7, dt.time(9)),
        ("day-before", 1, dt.time(9)),
    ]
    assert schedule.meetings[0].duration == dt.timedelta(hours=2)
    text = edit('time: "18:00"', 'time: "18:00"\n    duration: 1 hour 30 minutes')
    assert parse_schedule(text).meetings[0].duration == dt.timedelta(minutes=90)
    text = edit("- {name: day-before, before: 1 day,", "- {name: fortnight, before: 2 weeks,")
    assert [r.days_before for r in parse_schedule(text).reminders] == [7, 14]


def test_open_ended_rule_is_finite_and_sorted() -> None:
    text = edit("  until: 2018-12-31\n", "")
    meetings = parse_schedule(text).meetings
    assert meetings[0].date == D(2018, 2, 13)
    assert meetings[-1].date == D(2021, 12, 14)  # three years on
    assert list(meetings) == sorted(meetings, key=lambda m: m.date)
    no_bounds = edit("  from: 2018-01-01\n", "", text)
    later = parse_schedule(no_bounds, today=D(2026, 11, 25)).meetings
    assert later[0].date == D(2018, 12, 11)  # starts at the earliest dated entry
    assert later[-1].date == D(2029, 12, 11)


def test_load_schedule_reads_utf8_with_bom(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_bytes("\ufeff".encode() + edit("name: Test Group", "name: Café des Femmes").encode())
    assert load_schedule(path).group.name == "Café des Femmes"


def test_load_schedule_names_the_file_in_messages(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "schedule.yaml"
    path.write_text(edit('time: "18:00"', "time: half past six"), encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_schedule(path, "group/schedule.yaml")
    assert str(info.value).startswith("group/schedule.yaml:")
    with pytest.raises(DataError) as info:
        load_schedule(tmp_path / "missing.yaml")
    assert info.value.problems[0].path == "missing.yaml"
    path.write_bytes("name: caf\xe9".encode("latin-1"))
    with pytest.raises(DataError) as info:
        load_schedule(path)
    assert "UTF-8" in info.value.problems[0].hint


# --- one mistake, one message with the line and the fix -----------------------------------------

BAD = [
    # (id, old, new, marker for the line, in the message, in the hint)
    (
        "time-ambiguous",
        'time: "18:00"',
        "time: 6:30",
        "time: 6:30",
        '"6:30" could be morning or evening',
        '"6:30 pm" or "06:30"',
    ),
    ("time-words", 'time: "18:00"', "time: six", "time: six", 'time "six" is not a time of day', '"6:30 pm"'),
    ("time-dotted", 'time: "18:00"', 'time: "18.30"', "18.30", "not a time of day", 'colon: "18:30"'),
    ("time-13pm", 'time: "18:00"', "time: 18:00 pm", "time: 18:00", "not a time of day", '"18:00"'),
    ("time-number", 'time: "18:00"', "time: 1830", "time: 1830", "is a number", 'quotes as "18:30"'),
    ("group-name-empty", "name: Test Group", 'name: ""', 'name: ""', "missing 'name:'", "add name:"),
    (
        "timezone",
        "America/New_York",
        "America/NewYork",
        "timezone:",
        "not a known time zone",
        "America/New_York",
    ),
    ("sender-no-name", "Test Group <news@example.org>", "news@example.org", "sender:", "Name <address>", "<"),
    ("sender-bad", "<news@example.org>", "<news@example>", "sender:", "invalid address", "write it as"),
    (
        "sender-newline",
        "sender: Test Group <news@example.org>",
        'sender: "Test Group <news@example.org>\\nBcc: all@example.org"',
        "sender:",
        "line break",
        "one line",
    ),
    (
        "sender-two",
        "<news@example.org>",
        "<news@example.org>, Other <bcc@example.org>",
        "sender:",
        "Name <address>",
        "Test Group <news@example.org>",
    ),
    ("organiser-no-name", "{name: Margaret, email:", "{email:", "margaret@", "missing 'name:'", "add name"),
    (
        "organiser-email",
        "margaret@example.org",
        "margaret(at)example",
        "margaret(at)",
        "not a valid email",
        "address",
    ),
    (
        "reminder-no-name",
        "{name: week-before, before",
        "{before",
        "before: 7 days",
        "missing 'name:'",
        "week-before",
    ),
    (
        "reminder-twin",
        "name: day-before",
        "name: week-before",
        "before: 1 day",
        "two reminders",
        "its own name",
    ),
    ("before-words", "before: 7 days", "before: a week", "a week", "not a number of days", '"7 days"'),
    ("before-number", "before: 7 days", "before: 7", "before: 7,", "not a number of days", '"7 days"'),
    (
        "at-9-ambiguous",
        'before: 1 day, at: "09:00"',
        "before: 1 day, at: 9:00",
        "at: 9:00",
        "morning",
        '"09:00"',
    ),
    (
        "weekday-typo",
        "weekday: Tuesday\n    week",
        "weekday: Tusday\n    week",
        "Tusday",
        "not a day",
        "Tuesday",
    ),
    ("week-6", "week: 2", "week: 6", "week: 6", "not 1 to 5 or -1", "-1 for the last"),
    ("month-typo", "[February, April", "[Febuary, April", "Febuary", "not a month", "February"),
    ("from-after-until", "from: 2018-01-01", "from: 2019-01-01", "from:", "is after until", "swap"),
    (
        "venue-typo",
        "    venue: {name: Community",
        "    venu: {name: Community",
        "venu:",
        "unknown key 'venu'",
        "'venue'",
    ),
    (
        "venue-key-typo",
        "{name: Community room",
        "{nam: Community room",
        "nam:",
        "unknown key 'nam'",
        "'name'",
    ),
    (
        "venue-no-name",
        "{name: Community room, address",
        "{address",
        "venue:",
        "venue has no name",
        "add name:",
    ),
    ("top-typo", "article: second-opinion", "articel: second-opinion", "articel", "unknown key", "'article'"),
    (
        "comma-in-flow",
        'address: "Greenville, SC"}',
        "address: Greenville, SC}",
        "Greenville, SC}",
        "'SC'",
        "quotes",
    ),
    (
        "article-md",
        "article: second-opinion",
        "article: second-opinion.md",
        "article:",
        "name only",
        "second-opinion",
    ),
    (
        "date-not-iso",
        "date: 2018-12-11",
        "date: December 11",
        "December 11",
        "not written as YYYY-MM-DD",
        "2018-12-11",
    ),
    ("date-impossible", "date: 2018-12-11", 'date: "2018-02-30"', "2018-02-30", "does not exist", "28 days"),
    (
        "weekday-mismatch",
        "date: 2018-12-11",
        "date: 2018-12-12",
        "2018-12-12",
        "is a Wednesday, but weekday: says Tuesday",
        "2018-12-11",
    ),
    ("duration", 'time: "18:00"', 'time: "18:00"\n    duration: 2', "duration", "length of time", "2 hours"),
    ("no-time", 'time: "18:00"', "title: Meeting", "every:", "missing 'time:'", '"18:00"'),
]


@pytest.mark.parametrize(
    ("old", "new", "marker", "message", "hint"), [case[1:] for case in BAD], ids=[c[0] for c in BAD]
)
def test_each_mistake_names_path_line_and_fix(
    old: str, new: str, marker: str, message: str, hint: str
) -> None:
    text = edit(old, new)
    found = problems(text, "club/schedule.yaml")
    assert len(found) == 1, found
    problem = found[0]
    assert problem.path == "club/schedule.yaml"
    assert problem.line == line_of(text, marker), problem
    assert message in problem.message
    assert hint in problem.hint
    assert str(problem).startswith(f"club/schedule.yaml:{problem.line}: ")


EXTRA = [
    # Dated entries appended to VALID: (id, entry, in the message, in the hint)
    ("same-date-twice", "- {date: 2018-12-11, note: again}", "has two entries", "line 22"),
    ("cancel-off-rule", "- {date: 2018-06-13, cancelled: true}", "not a meeting day", "2018-06-12"),
    ("cancelled-maybe", "- {date: 2018-06-12, cancelled: maybe}", "not true or false", "cancelled: true"),
    ("entry-typo", "- {date: 2018-06-12, titel: Picnic}", "unknown key 'titel'", "'title'"),
]


@pytest.mark.parametrize(("entry", "message", "hint"), [c[1:] for c in EXTRA], ids=[c[0] for c in EXTRA])
def test_dated_entry_mistakes(entry: str, message: str, hint: str) -> None:
    text = VALID + f"    {entry}\n"
    (problem,) = problems(text)
    assert problem.line == len(text.splitlines())
    assert message in problem.message
    assert hint in problem.hint


def test_impossible_unquoted_dates_are_all_located() -> None:
    # ruamel fails on these while parsing, before any line is known to it.
    text = edit("date: 2018-12-11", "date: 2018-02-30")
    text = edit("until: 2018-12-31", "until: 2018-12-32", text)
    found = problems(text)
    assert [p.line for p in found] == [line_of(text, "2018-12-32"), line_of(text, "2018-02-30")]
    assert "December 2018 has 31 days" in found[0].hint
    assert "February 2018 has 28 days" in found[1].hint


def test_meeting_without_any_venue() -> None:
    text = with_meetings('meetings:\n  dates:\n    - {date: 2018-02-13, time: "18:00"}\n')
    (problem,) = problems(text)
    assert problem.line == line_of(text, "2018-02-13")
    assert "no venue" in problem.message
    assert "add venue:" in problem.hint


def test_same_day_reminder_after_the_meeting() -> None:
    text = edit(
        '- {name: day-before, before: 1 day, at: "09:00"}', '- {name: same-day, before: 0 days, at: "19:00"}'
    )
    (problem,) = problems(text)
    assert problem.line == line_of(text, "same-day")
    assert "after it starts" in problem.message
    assert '"18:00"' in problem.hint
    earlier = edit('at: "19:00"', 'at: "12:00"', text)
    assert [r.days_before for r in parse_schedule(earlier).reminders] == [7, 0]


def test_bounds_without_a_rule() -> None:
    text = with_meetings(
        'meetings:\n  from: 2018-01-01\n  dates:\n    - {date: 2018-02-13, time: "18:00", venue: Hall}\n'
    )
    (problem,) = problems(text)
    assert problem.line == line_of(text, "from:")
    assert "every:" in problem.hint


def test_missing_sections_and_empty_file() -> None:
    assert problems("")[0].message == "the file is empty"
    found = problems("article: x\n")
    assert {p.message for p in found} == {"there is no group: section", "there is no meetings: section"}


def test_yaml_syntax_error_keeps_its_line() -> None:
    text = edit("  timezone: America/New_York", "  timezone: America/New_York\n bad: [")
    (problem,) = problems(text)
    assert problem.line is not None
    assert problem.message.startswith("YAML syntax")


def test_many_mistakes_are_reported_at_once() -> None:
    text = VALID
    text = edit("America/New_York", "Mars/Olympus", text)
    text = edit("margaret@example.org", "margaret", text)
    text = edit('time: "18:00"', "time: 6:30", text)
    text = edit("weekday: Tuesday\n    week", "weekday: Tusday\n    week", text)
    text = edit("date: 2018-12-11", 'date: "2018-13-01"', text)
    text = edit("title: Planning dinner", "titel: Planning dinner", text)
    found = problems(text)
    lines = {p.line for p in found}
    for marker in ("Mars/Olympus", "margaret", "time: 6:30", "Tusday", "2018-13-01", "titel"):
        assert line_of(text, marker) in lines, (marker, found)
    assert len(found) == 6
    assert all(p.hint for p in found)
    assert found == sorted(found, key=lambda p: (p.path, p.line or 0, p.message))
