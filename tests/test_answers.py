"""Members' answers: signed RSVP and preferences links, `rsvp:`/`discreet:`/`defaults:` in schedule.yaml,
the answers in the state database, and the pages of `newsletter serve` over real HTTP."""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter import links
from newsletter.errors import DataError, Problem
from newsletter.inputs.schedule import load_schedule, parse_schedule
from newsletter.model import Discreet, MemberDefaults, Rsvp, Schedule
from newsletter.settings import resolve
from newsletter.state.answers import (
    Preferences,
    RsvpCounts,
    defaults_of,
    forget_member,
    preferences_for,
    preferences_of,
    record_rsvp,
    rsvp_counts,
    rsvp_of,
    rsvps,
    save_preferences,
    wants,
)
from newsletter.state.ledger import Ledger
from newsletter.state.migrations import LATEST
from newsletter.tokens import unsubscribe_token
from newsletter.web.public import RequestLimit

from .conftest import CliRunner
from .smtpd import Server
from .test_schedule import edit, line_of
from .test_web import STATE, Site, server_logs, start_site

ROOT = Path(__file__).resolve().parents[1]
SECRET = b"s" * 32
DINNER = "2026-12-08"  # the sample's planning dinner: rsvp: {guests: true}
FEBRUARY = "2027-02-09"  # a regular meeting of the sample
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


# --- links -----------------------------------------------------------------------------------------


def test_tokens_are_opaque_signed_and_one_per_purpose() -> None:
    token = links.rsvp_token(SECRET, DINNER, "linda.harper@example.org")
    assert len(token) == links.TOKEN_LENGTH and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    for inside in ("linda", "harper", "example", "2026", "12-08"):
        assert inside not in token.lower()
    # Stable, case-insensitive in the address, different for another meeting, member or secret.
    assert token == links.rsvp_token(SECRET, DINNER, "Linda.Harper@Example.org")
    others = {
        links.rsvp_token(SECRET, FEBRUARY, "linda.harper@example.org"),
        links.rsvp_token(SECRET, DINNER, "rosa.delgado@example.org"),
        links.rsvp_token(b"t" * 32, DINNER, "linda.harper@example.org"),
        links.preferences_token(SECRET, "linda.harper@example.org"),
        unsubscribe_token(SECRET, "linda.harper@example.org"),
    }
    assert token not in others and len(others) == 5
    assert links.rsvp_token_matches(SECRET, DINNER, "linda.harper@example.org", token)
    assert not links.rsvp_token_matches(SECRET, DINNER, "rosa.delgado@example.org", token)
    assert links.rsvp_for_meeting(SECRET, DINNER, token) and not links.rsvp_for_meeting(
        SECRET, FEBRUARY, token
    )
    assert not links.rsvp_for_meeting(SECRET, DINNER, token[:-1])
    prefs = links.preferences_token(SECRET, "linda.harper@example.org")
    assert len(prefs) == links.TOKEN_LENGTH and "linda" not in prefs
    assert links.preferences_token_matches(SECRET, "LINDA.harper@example.org", prefs)
    assert not links.preferences_token_matches(SECRET, "rosa.delgado@example.org", prefs)


def test_link_addresses() -> None:
    assert links.rsvp_url("https://news.example.org/", "T", "yes") == "https://news.example.org/rsvp/T/yes"
    assert links.rsvp_url("https://news.example.org", "T", "no") == "https://news.example.org/rsvp/T/no"
    with pytest.raises(ValueError):
        links.rsvp_url("https://news.example.org", "T", "maybe")
    assert links.preferences_url("https://news.example.org", "P") == "https://news.example.org/preferences/P"
    assert links.calendar_url("https://news.example.org") == "webcal://news.example.org/calendar.ics"
    assert links.calendar_url("http://127.0.0.1:8080/group/") == "webcal://127.0.0.1:8080/group/calendar.ics"
    assert links.calendar_url("https://x.org", discreet=True) == "webcal://x.org/calendar.ics?discreet=1"


# --- schedule.yaml ---------------------------------------------------------------------------------


def test_the_sample_dinner_asks_for_a_headcount_and_the_other_meetings_ask_who_comes() -> None:
    schedule = load_schedule(ROOT / "schedule.yaml")
    assert schedule.group.rsvp and schedule.group.discreet is None
    assert schedule.group.defaults == MemberDefaults()
    dinner = schedule.meeting_on(dt.date(2026, 12, 8))
    assert dinner is not None and dinner.rsvp == Rsvp.GUESTS
    assert {m.rsvp for m in schedule.meetings if m.key != DINNER} == {Rsvp.ON}


def test_the_samples_commented_examples_work_when_uncommented() -> None:
    text = (ROOT / "schedule.yaml").read_text(encoding="utf-8")
    for key in ("discreet", "defaults", "rsvp"):
        assert f"\n  # {key}: " in text, key
        text = text.replace(f"\n  # {key}: ", f"\n  {key}: ")
    schedule = parse_schedule(text)
    assert schedule.group.discreet == Discreet("Tuesday group", "Reminder for {date}", default=False)
    assert schedule.group.defaults == MemberDefaults(("day-before",), plain_text=False)
    assert not schedule.group.rsvp and {m.rsvp for m in schedule.meetings} == {Rsvp.OFF}


def test_rsvp_on_the_rule_and_on_a_dated_entry() -> None:
    text = edit('    time: "18:00"\n', '    time: "18:00"\n    rsvp: false\n')
    text = edit(
        "      title: Planning dinner\n", "      title: Planning dinner\n      rsvp: {guests: yes}\n", text
    )
    text += "    - {date: 2018-10-09, rsvp: true}\n"
    schedule = parse_schedule(text)
    by_day = {m.key: m.rsvp for m in schedule.meetings}
    assert by_day["2018-12-11"] == Rsvp.GUESTS and by_day["2018-10-09"] == Rsvp.ON
    assert by_day["2018-02-13"] == Rsvp.OFF


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{guest: true}", "unknown key 'guest' in rsvp:"),
        ("maybe", 'rsvp "maybe" is not true, false or {guests: true}'),
        ("{guests: 2}", "guests 2 is not true or false"),
    ],
)
def test_an_rsvp_mistake_is_named_by_its_line(value: str, message: str) -> None:
    text = edit("      title: Planning dinner\n", f"      title: Planning dinner\n      rsvp: {value}\n")
    (problem,) = _problems(text)
    assert problem.line == line_of(text, "rsvp:") and problem.message == message
    assert "rsvp: {guests: true}" in problem.hint


def test_group_rsvp_false_turns_every_meeting_off() -> None:
    text = edit("  timezone:", "  rsvp: no\n  timezone:")
    text = edit(
        "      title: Planning dinner\n", "      title: Planning dinner\n      rsvp: {guests: true}\n", text
    )
    schedule = parse_schedule(text)
    assert not schedule.group.rsvp and {m.rsvp for m in schedule.meetings} == {Rsvp.OFF}


def test_discreet_words_are_read() -> None:
    text = edit(
        "  timezone:",
        '  discreet: {sender: "Tuesday group", subject: "See you {date}", default: true}\n  timezone:',
    )
    discreet = parse_schedule(text).group.discreet
    assert discreet == Discreet("Tuesday group", "See you {date}", default=True)
    assert discreet.subject_for(dt.date(2026, 12, 8)) == "See you Tuesday, December 8"
    assert discreet.title == "Tuesday group"
    # Left out: the neutral words every group gets.
    partial = parse_schedule(edit("  timezone:", "  discreet: {default: true}\n  timezone:")).group.discreet
    assert partial == Discreet(default=True) and "{date}" in partial.subject


@pytest.mark.parametrize(
    ("sender", "subject", "key", "message"),
    [
        ("Test Group news", "Reminder for {date}", "sender", "contains the group's name"),
        ("Tuesday group", "test group: {date}", "subject", "contains the group's name"),
        ("Tuesday group", "Cancer café {date}", "subject", 'contains the word "cancer"'),
        ("The CANCER circle", "Reminder for {date}", "sender", 'contains the word "cancer"'),
        ("Tuesday <tue@example.org>", "Reminder for {date}", "sender", "should be a name only"),
        ("Tuesday group", "Reminder for {day}", "subject", "has { } other than {date}"),
    ],
)
def test_check_refuses_discreet_words_that_tell(sender: str, subject: str, key: str, message: str) -> None:
    text = edit(
        "  timezone:",
        f'  discreet:\n    sender: "{sender}"\n    subject: "{subject}"\n  timezone:',
    )
    (problem,) = _problems(text)
    assert problem.line == line_of(text, f"    {key}:")
    assert message in problem.message and ('"Tuesday group"' in problem.hint or "{date}" in problem.hint)
    assert str(problem).startswith(f"schedule.yaml:{problem.line}: the discreet {key}")


def test_the_check_command_refuses_a_telling_discreet_sender(group: Path, run: CliRunner) -> None:
    path = group / "schedule.yaml"
    text = path.read_text(encoding="utf-8").replace(
        '  # discreet: {sender: "Tuesday group"', '  discreet: {sender: "Tuesday cancer group"'
    )
    path.write_text(text, encoding="utf-8")
    code, out, err = run(group, "check")
    line = line_of(text, "  discreet:")
    assert code == 1 and f'schedule.yaml:{line}: the discreet sender "Tuesday cancer group"' in out + err


def test_member_defaults_are_read_and_checked() -> None:
    text = edit("  timezone:", "  defaults: {reminders: [day-before], plain_text: yes}\n  timezone:")
    assert parse_schedule(text).group.defaults == MemberDefaults(("day-before",), plain_text=True)
    assert (
        parse_schedule(edit("  timezone:", "  defaults: {reminders: all}\n  timezone:")).group.defaults
        == MemberDefaults()
    )
    wrong = edit("  timezone:", "  defaults:\n    reminders: [day-befor]\n  timezone:")
    (problem,) = _problems(wrong)
    assert problem.line == line_of(wrong, "    reminders:") and "did you mean day-before?" in problem.hint


def _problems(text: str) -> list[Problem]:
    with pytest.raises(DataError) as info:
        parse_schedule(text)
    return info.value.problems


# --- the state database ----------------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "state.sqlite3") as opened:
        yield opened


def test_an_answer_is_kept_changed_and_counted(ledger: Ledger) -> None:
    assert rsvp_of(ledger, DINNER, "ann@example.org") is None
    record_rsvp(ledger, DINNER, "Ann@Example.org", coming=True, people=3, now=NOW)
    assert rsvp_of(ledger, DINNER, "ann@example.org") == rsvp_of(ledger, DINNER, "ANN@example.org")
    answer = rsvp_of(ledger, DINNER, "ann@example.org")
    assert answer is not None and answer.coming and answer.people == 3
    record_rsvp(ledger, DINNER, "bea@example.org", coming=True, now=NOW)
    record_rsvp(ledger, DINNER, "cy@example.org", coming=False, people=4, now=NOW)
    record_rsvp(ledger, FEBRUARY, "cy@example.org", coming=True, now=NOW)
    counts = rsvp_counts(ledger, DINNER, 10)
    assert counts == RsvpCounts(coming=2, people=4, not_coming=1, no_answer=7)
    assert str(counts) == "2 coming (4 people), 1 can't come, 7 no answer"
    # She changes her mind: one answer per member and meeting, the latest.
    record_rsvp(ledger, DINNER, "ann@example.org", coming=False, now=NOW + dt.timedelta(hours=1))
    assert str(rsvp_counts(ledger, DINNER, 10)) == "1 coming, 2 can't come, 7 no answer"
    assert set(rsvps(ledger, DINNER)) == {"ann@example.org", "bea@example.org", "cy@example.org"}
    # Answers of people no longer on the list can be left out.
    left = rsvp_counts(ledger, DINNER, 2, members={"bea@example.org", "dee@example.org"})
    assert left == RsvpCounts(1, 1, 0, 1)
    forget_member(ledger, "cy@example.org")
    assert (
        rsvp_of(ledger, DINNER, "cy@example.org") is None
        and rsvp_of(ledger, FEBRUARY, "cy@example.org") is None
    )
    with pytest.raises(ValueError):
        record_rsvp(ledger, DINNER, "ann@example.org", coming=True, people=7, now=NOW)


def test_counts_read_like_the_organisers_summary() -> None:
    assert str(RsvpCounts(12, 15, 4, 19)) == "12 coming (15 people), 4 can't come, 19 no answer"
    assert str(RsvpCounts(1, 2, 0, 0)) == "1 coming (2 people), 0 can't come, 0 no answer"
    assert str(RsvpCounts(0, 0, 0, 35)) == "0 coming, 0 can't come, 35 no answer"


def _sample(*, discreet: str = "", defaults: str = "") -> Schedule:
    text = (ROOT / "schedule.yaml").read_text(encoding="utf-8")
    if discreet:
        text = text.replace("\n  # discreet: ", "\n  discreet: ").replace("default: false}", discreet)
    if defaults:
        text = text.replace("\n  # defaults: ", "\n  defaults: ")
    return parse_schedule(text)


def test_preferences_start_as_the_groups_defaults_and_keep_what_she_chose(ledger: Ledger) -> None:
    plain = _sample()
    assert defaults_of(plain) == Preferences()
    strict = _sample(discreet="default: true}", defaults="yes")
    assert defaults_of(strict) == Preferences(reminders=frozenset({"day-before"}), discreet=True)
    book = preferences_of(ledger, strict)
    assert book["anyone@example.org"] == defaults_of(strict) and dict(book) == {}

    chosen = Preferences(frozenset({"week-before"}), plain_text=True, paused_until=dt.date(2027, 4, 13))
    saved = save_preferences(ledger, "Ann@Example.org", chosen, schedule=strict, now=NOW)
    assert saved.chosen == "2026-11-25T15:00:00+00:00"
    book = preferences_of(ledger, strict)
    assert set(book) == {"ann@example.org"}
    mine = book["ann@example.org"]
    assert (mine.reminders, mine.plain_text, mine.paused_until, mine.discreet) == (
        frozenset({"week-before"}), True, dt.date(2027, 4, 13), False,
    )  # fmt: skip
    assert preferences_for(ledger, "ANN@example.org", strict) == mine
    assert preferences_for(ledger, "bea@example.org", strict) == defaults_of(strict)
    # Every reminder chosen is kept as "every reminder", so one added later reaches her too.
    save_preferences(
        ledger,
        "ann@example.org",
        Preferences(frozenset({"week-before", "day-before"})),
        schedule=strict,
        now=NOW,
    )
    assert preferences_for(ledger, "ann@example.org", strict).reminders is None


def test_a_reminder_renamed_since_she_chose_falls_back_to_the_defaults(ledger: Ledger) -> None:
    schedule = _sample(defaults="yes")
    save_preferences(
        ledger, "ann@example.org", Preferences(frozenset({"week-before"})), schedule=schedule, now=NOW
    )
    renamed = parse_schedule(
        (ROOT / "schedule.yaml")
        .read_text(encoding="utf-8")
        .replace("name: week-before", "name: a-week-ahead")
    )
    assert preferences_for(ledger, "ann@example.org", renamed).reminders is None  # every reminder


def test_wants_honours_the_reminders_chosen_and_the_pause() -> None:
    only_day_before = Preferences(frozenset({"day-before"}), paused_until=dt.date(2027, 4, 13))
    assert not wants(only_day_before, "week-before", dt.date(2027, 6, 8))
    assert wants(only_day_before, "day-before", dt.date(2027, 6, 8))
    assert wants(only_day_before, "day-before", dt.date(2027, 4, 13))  # the pause ends on that day
    assert not wants(only_day_before, "day-before", dt.date(2027, 2, 9))
    assert not wants(only_day_before, None, dt.date(2027, 2, 9)) and wants(
        only_day_before, None, dt.date(2027, 6, 8)
    )
    assert wants(Preferences(), "anything", dt.date(2027, 2, 9))


def test_migration_5_adds_the_answer_tables_to_a_version_4_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with Ledger(path):
        pass
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TABLE rsvps")
    db.execute("DROP TABLE preferences")
    db.execute("PRAGMA user_version = 4")
    db.close()
    with Ledger(path) as ledger:
        record_rsvp(ledger, DINNER, "ann@example.org", coming=True, now=NOW)
        save_preferences(ledger, "ann@example.org", Preferences(plain_text=True), schedule=_sample(), now=NOW)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST >= 5
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert {"rsvps", "preferences"} <= tables


# --- the pages, over real HTTP ---------------------------------------------------------------------


@pytest.fixture
def site(group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    with start_site(group, smtp, monkeypatch) as started:
        yield started


def secret_of(site: Site) -> bytes:
    return resolve(site.group).secret


def rsvp_link(site: Site, address: str, answer: str = "yes", meeting: str = DINNER) -> str:
    return links.rsvp_url(site.url, links.rsvp_token(secret_of(site), meeting, address), answer)


def preferences_link(site: Site, address: str) -> str:
    return links.preferences_url(site.url, links.preferences_token(secret_of(site), address))


def answers(site: Site, meeting: str = DINNER) -> dict[str, tuple[str, int]]:
    if not (site.group / STATE).exists():
        return {}
    with Ledger(site.group / STATE) as ledger:
        return {a: (r.answer, r.people) for a, r in rsvps(ledger, meeting).items()}


def test_the_link_opens_a_page_and_only_its_button_answers(site: Site) -> None:
    link = rsvp_link(site, "linda.harper@example.org", "no")
    for _ in range(3):  # mail scanners: GET and HEAD, as often as they like
        page = site.http.get(link)
        assert page.status_code == 200 and site.http.head(link).status_code == 200
    assert '<form method="post" action="">' in page.text and page.text.count("<button") == 1
    assert "Planning dinner" in page.text and "Tuesday, December 8, 2026 at 6:00 PM" in page.text
    assert "You told us" not in page.text and answers(site) == {}
    done = site.http.post(link)
    assert done.status_code == 200 and "Thank you for telling us" in done.text
    assert answers(site) == {"linda.harper@example.org": ("no", 0)}
    assert "linda" not in done.text.lower()
    # The page says what she answered before, and links to changing it and to her preferences.
    again = site.http.get(link)
    assert "You told us on Wednesday, November 25 that you can’t make it." in again.text
    token = link.split("/")[-2]
    assert f'href="../../rsvp/{token}/yes"' in done.text
    assert 'href="../../preferences/' in done.text


def test_she_can_change_her_mind_and_say_how_many_come_until_the_meeting_starts(site: Site) -> None:
    yes = rsvp_link(site, "rosa.delgado@example.org", "yes")
    page = site.http.get(yes)
    assert "How many people are coming in all, you included?" in page.text
    assert [int(n) for n in re.findall(r'name="people" value="(\d)"', page.text)] == [1, 2, 3, 4, 5, 6]
    assert site.http.post(yes, data={"people": "3"}).status_code == 200
    assert answers(site) == {"rosa.delgado@example.org": ("yes", 3)}
    assert "you’ll be there, 3 people in all" in site.http.get(yes).text
    no = rsvp_link(site, "rosa.delgado@example.org", "no")
    assert "Thank you for telling us" in site.http.post(no).text
    assert answers(site) == {"rosa.delgado@example.org": ("no", 0)}
    site.http.post(yes, data={"people": "2"})
    site.http.post(rsvp_link(site, "carol.jenkins@example.org"), data={"people": "1"})
    site.http.post(rsvp_link(site, "zoe.martin@example.org", "no"))
    with Ledger(site.group / STATE) as ledger:
        assert str(rsvp_counts(ledger, DINNER, 5)) == "2 coming (3 people), 1 can't come, 2 no answer"
    # A regular meeting asks nothing about guests: one button, one person.
    february = rsvp_link(site, "rosa.delgado@example.org", "yes", FEBRUARY)
    page = site.http.get(february)
    assert page.text.count("<button") == 1 and "How many" not in page.text
    site.http.post(february, data={"people": "5"})
    assert answers(site, FEBRUARY) == {"rosa.delgado@example.org": ("yes", 1)}
    # Once the dinner has started, the links answer nothing and the answers stay as they were.
    site.clock.now = dt.datetime(2026, 12, 8, 23, 0, 1, tzinfo=dt.UTC)  # 6:00:01 pm in Greenville
    neutral = site.http.get(rsvp_link(site, "linda.harper@example.org", "no")).text
    assert site.http.get(no).text == neutral and site.http.post(no).text == neutral
    assert answers(site)["rosa.delgado@example.org"] == ("yes", 2)


@pytest.mark.parametrize("people", ["0", "7", "two", "-1", "1.5"])
def test_a_headcount_out_of_range_is_explained_and_changes_nothing(site: Site, people: str) -> None:
    link = rsvp_link(site, "rosa.delgado@example.org", "yes")
    answer = site.http.post(link, data={"people": people})
    assert answer.status_code == 400 and 'role="alert"' in answer.text and "1 to 6" in answer.text
    assert answers(site) == {}


def test_every_link_that_cannot_answer_gets_the_same_page_and_changes_nothing(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = group / "schedule.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "    # - {date: 2027-06-08,", "    - {date: 2027-04-13, rsvp: false}\n    - {date: 2027-06-08,"
    )
    path.write_text(text, encoding="utf-8")
    with start_site(group, smtp, monkeypatch) as site:
        secret = secret_of(site)
        real = links.rsvp_token(secret, DINNER, "linda.harper@example.org")
        with Ledger(site.group / STATE) as ledger:
            ledger.suppress("gone@example.org", source="link", now=NOW)
        (site.group / "subscribers.csv").open("a", encoding="utf-8").write(
            "gone@example.org,Gone,2020-01-01\n"
        )
        tokens = [
            real[:-1] + ("A" if real[-1] != "A" else "B"),  # tampered
            real[:20],  # cut short
            "x" * links.TOKEN_LENGTH,  # made up
            links.preferences_token(secret, "linda.harper@example.org"),  # another purpose
            unsubscribe_token(secret, "linda.harper@example.org"),
            links.rsvp_token(b"another secret", DINNER, "linda.harper@example.org"),
            links.rsvp_token(secret, DINNER, "stranger@example.org"),  # not on the list
            links.rsvp_token(secret, DINNER, "gone@example.org"),  # unsubscribed
            links.rsvp_token(secret, "2027-06-08", "linda.harper@example.org"),  # cancelled
            links.rsvp_token(secret, "2027-04-13", "linda.harper@example.org"),  # rsvp: false
            links.rsvp_token(secret, "2026-10-13", "linda.harper@example.org"),  # no such meeting
        ]
        urls = [links.rsvp_url(site.url, t, "yes") for t in tokens]
        urls += [f"{site.url}/rsvp/{real}/maybe"]
        responses = [site.http.get(u) for u in urls] + [site.http.post(u, data={"people": "2"}) for u in urls]
        assert {(r.status_code, r.text) for r in responses} == {(200, responses[0].text)}
        assert "This link cannot take an answer" in responses[0].text
        assert answers(site) == {} and answers(site, "2027-04-13") == {} and answers(site, "2027-06-08") == {}
        # The real link still works.
        assert "Thank you" in site.http.post(links.rsvp_url(site.url, real, "yes"), data={"people": "1"}).text


def test_a_post_from_another_site_is_refused(site: Site) -> None:
    link = rsvp_link(site, "linda.harper@example.org")
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}):
        assert site.http.post(link, headers=headers).status_code == 403
        prefs = preferences_link(site, "linda.harper@example.org")
        assert site.http.post(prefs, data={"reminder": "day-before"}, headers=headers).status_code == 403
    assert answers(site) == {}
    with Ledger(site.group / STATE) as ledger:
        assert dict(preferences_of(ledger, parse_schedule((site.group / "schedule.yaml").read_text()))) == {}


def test_answers_are_rate_limited(group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = RequestLimit(per_client=3, overall=100, window=3600)
    with start_site(group, smtp, monkeypatch, answers_limit=limit) as site:
        link = rsvp_link(site, "linda.harper@example.org")
        assert [site.http.get(link).status_code for _ in range(4)] == [200, 200, 200, 429]
        busy = site.http.post(link)
        assert busy.status_code == 429 and "Please try again later" in busy.text
        assert site.http.get(preferences_link(site, "linda.harper@example.org")).status_code == 429
        assert answers(site) == {}


def test_preferences_round_trip(site: Site) -> None:
    link = preferences_link(site, "zoe.martin@example.org")
    page = site.http.get(link)
    assert page.status_code == 200 and "Your reminder choices" in page.text
    assert page.text.count('name="reminder"') == 2 and page.text.count(" checked>") == 2  # the defaults
    assert '<option value="" selected>No, keep them coming</option>' in page.text
    assert "zoe" not in page.text.lower()
    unsubscribe = re.search(r'href="\.\./(unsubscribe/[\w-]+)"', page.text)
    assert unsubscribe and site.http.get(f"{site.url}/{unsubscribe[1]}").status_code == 200
    assert f'href="webcal://{site.url.removeprefix("http://")}/calendar.ics"' in page.text
    assert site.suppressed() == {}

    saved = site.http.post(
        link,
        data={"reminder": "day-before", "plain_text": "1", "discreet": "1", "paused_until": "2027-04-13"},
    )
    assert saved.status_code == 200 and "Your choices are saved" in saved.text
    assert "Reminders: The day before, at 9:00 AM." in saved.text
    assert "no reminders for meetings before Tuesday, April 13, 2027" in saved.text
    schedule = parse_schedule((site.group / "schedule.yaml").read_text(encoding="utf-8"))
    with Ledger(site.group / STATE) as ledger:
        book = preferences_of(ledger, schedule)
    mine = book["zoe.martin@example.org"]
    assert (mine.reminders, mine.plain_text, mine.discreet, mine.paused_until) == (
        frozenset({"day-before"}), True, True, dt.date(2027, 4, 13),
    )  # fmt: skip
    assert book["linda.harper@example.org"] == Preferences()
    again = site.http.get(link).text
    assert 'value="week-before">' in again and 'value="day-before" checked>' in again
    assert '<option value="2027-04-13" selected>' in again
    assert 'id="plain_text" name="plain_text" value="1" checked>' in again
    # She now wants every reminder again, and no pause: kept as "every reminder".
    site.http.post(link, data={"reminder": ["week-before", "day-before"], "paused_until": ""})
    with Ledger(site.group / STATE) as ledger:
        mine = preferences_for(ledger, "zoe.martin@example.org", schedule)
    assert mine.reminders is None and mine.paused_until is None and not mine.plain_text


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"paused_until": ""}, "Please choose at least one reminder"),
        ({"reminder": "no-such-reminder"}, "Please choose at least one reminder"),
        ({"reminder": "day-before", "paused_until": "2031-01-01"}, "within the next two years"),
        ({"reminder": "day-before", "paused_until": "soon"}, "Please choose when the reminders start again"),
    ],
)
def test_preference_mistakes_are_explained_and_change_nothing(
    site: Site, form: dict[str, str], message: str
) -> None:
    answer = site.http.post(preferences_link(site, "zoe.martin@example.org"), data=form)
    assert answer.status_code == 400 and message in answer.text and 'role="alert"' in answer.text
    schedule = parse_schedule((site.group / "schedule.yaml").read_text(encoding="utf-8"))
    with Ledger(site.group / STATE) as ledger:
        assert dict(preferences_of(ledger, schedule)) == {}


def test_a_preferences_link_that_opens_nothing_gets_the_same_page(site: Site) -> None:
    secret = secret_of(site)
    real = links.preferences_token(secret, "carol.jenkins@example.org")
    wrong = [
        real[:-1] + ("A" if real[-1] != "A" else "B"),
        real[:10],
        links.preferences_token(secret, "stranger@example.org"),
        links.rsvp_token(secret, DINNER, "carol.jenkins@example.org"),
        links.preferences_token(b"another secret", "carol.jenkins@example.org"),
    ]
    urls = [links.preferences_url(site.url, t) for t in wrong]
    responses = [site.http.get(u) for u in urls] + [
        site.http.post(u, data={"reminder": "day-before"}) for u in urls
    ]
    assert {(r.status_code, r.text) for r in responses} == {(200, responses[0].text)}
    assert "This link does not open any choices" in responses[0].text


def test_nothing_the_answer_pages_log_holds_an_address_or_a_token(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    rsvp = rsvp_link(site, "rosa.delgado@example.org", "yes")
    prefs = preferences_link(site, "rosa.delgado@example.org")
    with caplog.at_level(logging.INFO):
        site.http.get(rsvp)
        site.http.post(rsvp, data={"people": "2"})
        site.http.post(rsvp, data={"people": "2"}, headers={"Origin": "https://evil.example"})
        site.http.get(prefs)
        site.http.post(prefs, data={"reminder": "day-before"})
    logged = server_logs(caplog)
    assert "POST /rsvp/… 200" in logged and "GET /preferences/… 200" in logged
    for secret in ("rosa", rsvp.split("/")[-2], prefs.rsplit("/", 1)[1]):
        assert secret not in logged
