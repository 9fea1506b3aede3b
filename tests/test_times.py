"""Times of day and time zones in schedule.yaml, as organisers write them (issue 11)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import available_timezones

import pytest

from newsletter.inputs.schedule import parse_schedule
from newsletter.inputs.timezone_names import ABBREVIATIONS, COMMON, LEGACY, place_choices
from newsletter.inputs.timezones import AREAS

from .test_schedule import VALID, edit, line_of, problems

# --- times of day ---------------------------------------------------------------------------------

ACCEPTED = [
    ('"18:30"', dt.time(18, 30)),
    ("18:30", dt.time(18, 30)),
    ("18:00", dt.time(18, 0)),
    ("06:30", dt.time(6, 30)),
    ("0:30", dt.time(0, 30)),
    ("10:15", dt.time(10, 15)),
    ("6:30 pm", dt.time(18, 30)),
    ("6:30PM", dt.time(18, 30)),
    ("6:30pm", dt.time(18, 30)),
    ("6pm", dt.time(18, 0)),
    ("6 PM", dt.time(18, 0)),
    ("6 p.m.", dt.time(18, 0)),
    ('"6.30 pm"', dt.time(18, 30)),
    ("9am", dt.time(9, 0)),
    ("11:45 a.m.", dt.time(11, 45)),
    ("12pm", dt.time(12, 0)),  # noon
    ("12:30 pm", dt.time(12, 30)),
    ("12am", dt.time(0, 0)),  # midnight
    ("12:15 am", dt.time(0, 15)),
    ("noon", dt.time(12, 0)),
]


@pytest.mark.parametrize(("written", "expected"), ACCEPTED, ids=[w for w, _ in ACCEPTED])
def test_meeting_time_as_written(written: str, expected: dt.time) -> None:
    schedule = parse_schedule(edit('time: "18:00"', f"time: {written}"))
    assert {m.time for m in schedule.meetings} == {expected}


@pytest.mark.parametrize(("written", "expected"), ACCEPTED[:12], ids=[w for w, _ in ACCEPTED[:12]])
def test_reminder_at_as_written(written: str, expected: dt.time) -> None:
    text = edit(
        '{name: week-before, before: 7 days, at: "09:00"}',
        f"{{name: week-before, before: 7 days, at: {written}}}",
    )
    assert parse_schedule(text).reminders[0].at == expected


@pytest.mark.parametrize(
    ("written", "shown", "fix"),
    [
        ("6:30", "6:30", '"6:30 pm" or "06:30"'),
        ('"6:30"', "6:30", '"6:30 pm" or "06:30"'),
        ("9:00", "9:00", '"9:00 pm" or "09:00"'),
        ("1:05", "1:05", '"1:05 pm" or "01:05"'),
        ('"6.30"', "6.30", '"6:30 pm" or "06:30"'),
    ],
)
def test_an_ambiguous_time_is_refused_with_both_readings(written: str, shown: str, fix: str) -> None:
    text = edit('time: "18:00"', f"time: {written}")
    (problem,) = problems(text)
    line = line_of(text, f"time: {written}")
    assert str(problem) == f'schedule.yaml:{line}: "{shown}" could be morning or evening — write {fix}'


def test_an_ambiguous_reminder_time_is_refused_too() -> None:
    text = edit('before: 1 day, at: "09:00"', "before: 1 day, at: 9:00")
    (problem,) = problems(text)
    line = line_of(text, "at: 9:00")
    assert (
        str(problem)
        == f'schedule.yaml:{line}: "9:00" could be morning or evening — write "9:00 pm" or "09:00"'
    )


@pytest.mark.parametrize(
    ("written", "message", "hint"),
    [
        ("13pm", 'time "13pm" is not a time of day', '"13:00"'),
        ("18:00 pm", 'time "18:00 pm" is not a time of day', '"18:00"'),
        ("6:75 pm", 'time "6:75 pm" is not a time of day', '"6:30 pm"'),
        ("24:00", 'time "24:00" is not a time of day', '"18:30"'),
        ("half past six", 'time "half past six" is not a time of day', '"18:30" or "6:30 pm"'),
        ('"18h30"', 'time "18h30" is not a time of day', 'colon: "18:30"'),
        ("1830", "time 1830 is a number, not a time of day", 'quotes as "18:30"'),
        ("630", "time 630 is a number, not a time of day", '"6:30 pm" or "06:30"'),
        ("18", "time 18 is a number, not a time of day", '"18:00"'),
        ("true", "time true is not a time of day", '"18:30"'),
    ],
)
def test_other_times_are_refused_with_the_fix(written: str, message: str, hint: str) -> None:
    text = edit('time: "18:00"', f"time: {written}")
    (problem,) = problems(text)
    assert problem.line == line_of(text, f"time: {written}")
    assert problem.message == message
    assert hint in problem.hint


# --- time zones -----------------------------------------------------------------------------------


# VALID with venues that say nothing of where they are.
NOWHERE = VALID.replace('"Greenville, SC"', '"Main Street"').replace(
    '"775 Haywood Rd, Greenville, SC 29607"', "Main St"
)


def zone_problem(written: str, text: str = VALID) -> str:
    """str() of the one problem that ``timezone: <written>`` gives, checked to be on its line."""
    text = edit("timezone: America/New_York", f"timezone: {written}", text)
    (problem,) = problems(text)
    assert problem.line == line_of(text, "timezone:")
    assert problem.hint
    return str(problem)


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Europe/London", "America/Indiana/Indianapolis", "Australia/Sydney"]
)
def test_region_names_are_accepted(zone: str) -> None:
    assert parse_schedule(edit("timezone: America/New_York", f"timezone: {zone}")).group.timezone == zone


@pytest.mark.parametrize(
    ("written", "region"),
    [
        ("EST", "America/New_York"),
        ("EDT", "America/New_York"),
        ("est", "America/New_York"),
        ("CST", "America/Chicago"),
        ("MST", "America/Denver"),
        ("PST", "America/Los_Angeles"),
        ("PDT", "America/Los_Angeles"),
        ("HST", "Pacific/Honolulu"),
        ("AKST", "America/Anchorage"),
        ("CET", "Europe/Paris"),
        ("GMT", "Europe/London"),
        ("BST", "Europe/London"),
        ("AEST", "Australia/Sydney"),
        ("IST", "Asia/Kolkata"),
        ("EST5EDT", "America/New_York"),
    ],
)
def test_abbreviations_are_refused_with_the_region_to_write(written: str, region: str) -> None:
    shown = zone_problem(written)
    assert f'timezone "{written}" is an abbreviation, which does not follow daylight saving' in shown
    assert f'"{region}"' in shown


@pytest.mark.parametrize(
    ("written", "region"),
    [
        ("UTC+5", "Asia/Karachi"),
        ("GMT+5", "Asia/Karachi"),
        ('"UTC-05:00"', "America/New_York"),
        ("UTC-8", "America/Los_Angeles"),
        ("Etc/GMT+5", "America/New_York"),  # POSIX sign: five hours behind UTC
        ('"-0500"', "America/New_York"),
    ],
)
def test_fixed_offsets_are_refused_with_regions_of_that_offset(written: str, region: str) -> None:
    shown = zone_problem(written, NOWHERE)
    assert "is a fixed offset, which does not follow daylight saving" in shown
    assert f'"{region}"' in shown


@pytest.mark.parametrize("written", ["UTC", "Etc/UTC", "Zulu", "Universal"])
def test_utc_is_refused_for_the_groups_region(written: str) -> None:
    shown = zone_problem(written)
    assert f'timezone "{written}" has no daylight saving' in shown
    # VALID's venue is in Greenville, SC: that is the region to write.
    assert '"America/New_York" for South Carolina, where the venue is' in shown


@pytest.mark.parametrize(
    ("written", "region"),
    [("US/Eastern", "America/New_York"), ("US/Pacific", "America/Los_Angeles"), ("Japan", "Asia/Tokyo")],
)
def test_legacy_names_are_refused_with_the_region_that_replaced_them(written: str, region: str) -> None:
    assert zone_problem(written).endswith(f'is an old name for a time zone — write "{region}"')


@pytest.mark.parametrize(
    ("written", "place", "region"),
    [
        ("South Carolina", "South Carolina", "America/New_York"),
        ('"Greenville, SC"', "South Carolina", "America/New_York"),
        ("America/South_Carolina", "South Carolina", "America/New_York"),
        ('"Austin, TX 78701"', "Texas", "America/Chicago"),
        ("Arizona", "Arizona", "America/Phoenix"),
        ("UK", "UK", "Europe/London"),
        ("Ireland", "Ireland", "Europe/Dublin"),
        ("Canada", "Canada", "America/Toronto"),
        ("Australia", "Australia", "Australia/Sydney"),
        ("New Zealand", "New Zealand", "Pacific/Auckland"),
        ("Germany", "Germany", "Europe/Berlin"),
        ("France", "France", "Europe/Paris"),
        ("Spain", "Spain", "Europe/Madrid"),
        ("Italy", "Italy", "Europe/Rome"),
        ("Netherlands", "Netherlands", "Europe/Amsterdam"),
        ("India", "India", "Asia/Kolkata"),
        ("Mexico", "Mexico", "America/Mexico_City"),
    ],
)
def test_a_place_that_is_not_a_zone_gets_its_region(written: str, place: str, region: str) -> None:
    shown = zone_problem(written, NOWHERE)
    assert "is not a known time zone" in shown
    assert f'for {place}, write "{region}"' in shown


def test_a_city_that_is_not_a_zone_gets_the_region_of_the_venue_never_a_lookalike() -> None:
    shown = zone_problem("America/Greenville")
    assert shown.endswith('write "America/New_York" for South Carolina, where the venue is')
    assert "Recife" not in shown  # the nearest spelling, in Brazil
    texan = NOWHERE.replace('"Main Street"', '"El Paso, TX 79901"')
    assert '"America/Chicago" (most of the state) or "America/Denver"' in zone_problem("Greenville", texan)
    general = zone_problem("Greenville", NOWHERE)
    assert '"America/New_York" (Eastern), "America/Chicago" (Central)' in general


@pytest.mark.parametrize(
    ("written", "fix"),
    [
        ("America/NewYork", 'write it exactly as "America/New_York"'),
        ("america/new_york", 'write it exactly as "America/New_York"'),
        ('"America/New York"', 'write it exactly as "America/New_York"'),
        ("Chicago", 'did you mean "America/Chicago"?'),
        ("Europe/Londres", 'write a region name, like "America/New_York"'),
    ],
)
def test_near_misses_get_the_exact_name_only_when_it_is_the_same_name(written: str, fix: str) -> None:
    assert fix in zone_problem(written, NOWHERE)


US_STATES_AND_DC = [
    "Alabama",
    "Alaska",
    "Arizona",
    "Arkansas",
    "California",
    "Colorado",
    "Connecticut",
    "Delaware",
    "Florida",
    "Georgia",
    "Hawaii",
    "Idaho",
    "Illinois",
    "Indiana",
    "Iowa",
    "Kansas",
    "Kentucky",
    "Louisiana",
    "Maine",
    "Maryland",
    "Massachusetts",
    "Michigan",
    "Minnesota",
    "Mississippi",
    "Missouri",
    "Montana",
    "Nebraska",
    "Nevada",
    "New Hampshire",
    "New Jersey",
    "New Mexico",
    "New York",
    "North Carolina",
    "North Dakota",
    "Ohio",
    "Oklahoma",
    "Oregon",
    "Pennsylvania",
    "Rhode Island",
    "South Carolina",
    "South Dakota",
    "Tennessee",
    "Texas",
    "Utah",
    "Vermont",
    "Virginia",
    "Washington",
    "West Virginia",
    "Wisconsin",
    "Wyoming",
    "District of Columbia",
]


def test_every_state_and_every_suggestion_is_a_real_region() -> None:
    assert len(US_STATES_AND_DC) == 51
    suggested: set[str] = set(COMMON) | set(LEGACY.values())
    for choices in ABBREVIATIONS.values():
        suggested |= {zone for zone, _ in choices}
    for place in (*US_STATES_AND_DC, "UK", "Ireland", "Canada", "Australia", "Spain", "Mexico", "Brazil"):
        found = place_choices(place)
        assert found is not None, place
        suggested |= {zone for zone, _ in found[1]}
    zones = available_timezones()
    assert sorted(zone for zone in suggested if zone not in zones or zone.split("/")[0] not in AREAS) == []


def test_a_region_is_told_from_its_own_zone_file_exactly_as_from_the_list_of_every_zone() -> None:
    """The quick answer (one file read) agrees with the full list for every zone and near-misses."""
    from zoneinfo import available_timezones

    from newsletter.inputs.timezones import _is_region, _regions

    odd = ["america/new_york", "America/New_York/", "America//New_York", "America/../Europe/Paris"]
    odd += ["Etc/GMT+5", "US/Eastern", "America", "America/", "Europe/Kiev", "posixrules", "EST", ""]
    for name in [*sorted(available_timezones()), *odd]:
        assert _is_region(name) == (name in _regions()), name
