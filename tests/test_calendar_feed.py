"""`GET /calendar.ics` of `newsletter serve`: every meeting with the invitations' UIDs and SEQUENCEs, no
member data, neutral titles in discreet groups; served over real HTTP, read with icalendar."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import icalendar
import pytest

from newsletter.compose.invite import meeting_uid
from newsletter.inputs.schedule import load_schedule
from newsletter.settings import resolve
from newsletter.timing import upcoming

from .conftest import BEFORE_FIRST, CliRunner
from .smtpd import Server
from .test_changes import AFTER, cancel_dinner, edit, event, move_dinner_to_1830
from .test_web import STATE, Site, start_site

DOMAIN = "example.org"  # of the sample's sender, news@example.org
DINNER_UID = f"meeting-2026-12-08@{DOMAIN}"


# The app reads schedule.yaml when it starts: each test edits the file, then starts it (start_site).


def feed(site: Site, query: str = "") -> icalendar.Calendar:
    response = site.http.get(f"/calendar.ics{query}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    return icalendar.Calendar.from_ical(response.content)


def events(calendar: icalendar.Calendar) -> dict[str, icalendar.Event]:
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


def test_the_feed_holds_every_upcoming_meeting_with_the_invitations_uids(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_site(group, smtp, monkeypatch) as site:
        calendar = feed(site)
        now = site.clock.now
    schedule = load_schedule(group / "schedule.yaml")
    found = events(calendar)
    # What `upcoming` and the mails' "later dates" call upcoming: not started, less than a year away.
    assert set(found) == {meeting_uid(m, DOMAIN) for m in upcoming(schedule, now)}
    assert len(found) == 6  # the dinner and five meetings of 2027
    dinner = found[DINNER_UID]
    assert str(dinner["SUMMARY"]) == "Women's Cancer Support Group: Planning dinner"
    assert dinner.decoded("DTSTART") == dt.datetime(2026, 12, 8, 18, 0, tzinfo=schedule.group.tz)
    assert dinner.decoded("DTEND") - dinner.decoded("DTSTART") == dt.timedelta(hours=2)
    assert "Copper River Grill" in str(dinner["LOCATION"]) and str(dinner["STATUS"]) == "CONFIRMED"
    assert int(dinner["SEQUENCE"]) == 0
    assert str(calendar["X-WR-CALNAME"]) == "Women's Cancer Support Group"
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["America/New_York"]


def test_the_feed_holds_no_member_data(group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    members = [line.split(",")[0] for line in (group / "subscribers.csv").read_text().splitlines()[1:]]
    with start_site(group, smtp, monkeypatch) as site:
        text = site.http.get("/calendar.ics").text.lower()
    assert members and all(m.split("@")[0] not in text for m in members)
    assert "rsvp" not in text and "unsubscribe" not in text and "preferences" not in text


def test_uids_and_sequences_equal_the_invitations_and_follow_a_change(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "tick", "--at", BEFORE_FIRST)  # the dinner's week-before reminder
    assert code == 0, err
    _, invited = event(smtp.messages[0])
    with start_site(group, smtp, monkeypatch) as site:
        in_feed = events(feed(site))[str(invited["UID"])]
    assert str(invited["UID"]) == DINNER_UID and int(in_feed["SEQUENCE"]) == int(invited["SEQUENCE"]) == 0

    # The dinner moves to 6:30 pm: the feed announces it at once, with the SEQUENCE the notice will carry.
    move_dinner_to_1830(group)
    with start_site(group, smtp, monkeypatch) as site:
        before_notice = events(feed(site))[DINNER_UID]
        assert int(before_notice["SEQUENCE"]) == 1
        assert before_notice.decoded("DTSTART").time() == dt.time(18, 30)
        sent = len(smtp.messages)
        code, out, err = run(group, "tick", "--at", AFTER)
        assert code == 0, err
        _, notice = event(smtp.messages[sent])
        after_notice = events(feed(site))[DINNER_UID]
    assert str(notice["UID"]) == DINNER_UID
    assert int(notice["SEQUENCE"]) == int(after_notice["SEQUENCE"]) == 1


def test_a_cancelled_meeting_stays_in_the_feed_as_cancelled(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancel_dinner(group)
    with start_site(group, smtp, monkeypatch) as site:
        dinner = events(feed(site))[DINNER_UID]
    assert str(dinner["STATUS"]) == "CANCELLED"
    assert "The restaurant is closed that week" in str(dinner["DESCRIPTION"])


def test_a_meeting_announced_and_then_taken_out_stays_in_the_feed_as_cancelled(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    assert run(group, "tick", "--at", BEFORE_FIRST)[0] == 0
    edit(group, "  from: 2026-12-01", "  from: 2026-12-10")
    edit(group, "    - date: 2026-12-08\n      weekday: Tuesday", "    - date: 2026-12-09")
    with start_site(group, smtp, monkeypatch) as site:
        found = events(feed(site))
    assert str(found[DINNER_UID]["STATUS"]) == "CANCELLED" and int(found[DINNER_UID]["SEQUENCE"]) == 1
    assert f"meeting-2026-12-09@{DOMAIN}" in found


def test_the_feed_keeps_a_month_back_and_a_year_ahead(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_site(group, smtp, monkeypatch, start=dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC)) as site:
        found = set(events(feed(site)))
        site.clock.now = dt.datetime(2027, 3, 20, 12, 0, tzinfo=dt.UTC)
        later = set(events(feed(site)))
    assert f"meeting-2027-02-09@{DOMAIN}" in found and DINNER_UID not in found
    assert f"meeting-2027-02-09@{DOMAIN}" not in later and f"meeting-2027-12-14@{DOMAIN}" in later


@pytest.mark.parametrize("everyone", [True, False], ids=["group-default", "asked-for"])
def test_discreet_titles_tell_nothing(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch, everyone: bool
) -> None:
    example = '  # discreet: {sender: "Tuesday group", subject: "Reminder for {date}", default: false}'
    edit(group, example, example.replace("# ", "").replace("false", "true" if everyone else "false"))
    with start_site(group, smtp, monkeypatch) as site:
        plain = feed(site)
        neutral = feed(site, "?discreet=1")
    assert set(events(neutral)) == set(events(plain))
    for event_ in events(neutral).values():
        assert str(event_["SUMMARY"]) == "Tuesday group"
    assert str(neutral["X-WR-CALNAME"]) == "Tuesday group"
    assert b"cancer" not in neutral.to_ical().lower()
    summaries = {str(e["SUMMARY"]) for e in events(plain).values()}
    if everyone:
        assert summaries == {"Tuesday group"}
    else:
        assert "Women's Cancer Support Group: Planning dinner" in summaries


def test_the_feed_is_served_without_a_state_database(group: Path) -> None:
    from newsletter.project import load_project
    from newsletter.web.calendar_feed import feed as build_feed

    project = load_project(resolve(group), check_subscribers=False)
    body = build_feed(project, None, now=dt.datetime(2026, 11, 25, 15, tzinfo=dt.UTC))
    assert DINNER_UID.encode() in body and not (group / STATE).exists()
