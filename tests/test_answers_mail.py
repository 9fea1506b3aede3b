"""Members' answers in the mail itself: each reminder carries her own signed RSVP and preferences links
and the calendar feed; the send loop honours her preferences (which reminders, a pause, plain text,
discreet mode); the organisers see the counts in `upcoming`, `status`, the console and one mail with
the day-before reminder's run.

Real SMTP (aiosmtpd on 127.0.0.1) and, where a member clicks, the real served app (tests/test_web.py);
the links are parsed out of the messages the SMTP server received.
"""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage
from pathlib import Path

import icalendar
import pytest

from newsletter import links
from newsletter.model import Mailing, MailKind, snapshot
from newsletter.project import Project, load_project
from newsletter.reports import status_lines
from newsletter.send.pipeline import prepare
from newsletter.settings import resolve
from newsletter.state.answers import Preferences, record_rsvp, save_preferences
from newsletter.state.ledger import Ledger
from newsletter.timing import Due, find

from . import browser
from .conftest import BEFORE_FIRST, CliRunner
from .smtpd import Received, Server
from .test_fastpath import DINNER_TIME, Mailout, assert_same, reference, write_members
from .test_fastpath import NOW as FASTPATH_NOW
from .test_fastpath import edit as edit_file
from .test_web import STATE, Site, start_site

PUBLIC = "https://news.example.org"
DINNER = "2026-12-08"
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC)
ORGANISERS = {"margaret@example.org", "vonnie@example.org"}
LINDA, ZOE, ROSA, CAROL, FRIEND = (
    "linda.harper@example.org",
    "zoe.martin@example.org",
    "rosa.delgado@example.org",
    "carol.jenkins@example.org",
    "friend.of.group@example.org",
)
WEEK_BEFORE = BEFORE_FIRST  # 2026-12-01T09:05: the dinner's week-before reminder is due
DAY_BEFORE = "2026-12-07T09:05"  # its day-before reminder is due (the week-before's window closed)
DISCREET_LINE = '  # discreet: {sender: "Tuesday group", subject: "Reminder for {date}", default: false}'


def with_public_url(group: Path, url: str = PUBLIC) -> Path:
    (group / ".env").write_text(f"NEWSLETTER_PUBLIC_URL={url}\n", encoding="utf-8")
    return group


def load(group: Path) -> Project:
    return load_project(resolve(group, environ={}))


def dinner_reminder(project: Project, name: str = "week-before") -> Due:
    due = find(project.schedule, dt.date(2026, 12, 8), name, NOW)
    assert due is not None
    return due


def parse(data: bytes) -> EmailMessage:
    from email import message_from_bytes, policy

    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def ics_of(msg: EmailMessage) -> icalendar.Calendar:
    (part,) = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return icalendar.Calendar.from_ical(payload)


def summary_of(msg: EmailMessage) -> str:
    (event,) = ics_of(msg).walk("VEVENT")
    return str(event["summary"])


def link_after(text: str, label: str) -> str:
    """The URL on the line after ``label`` in a plain-text part (each URL stands on its own line)."""
    found = re.search(re.escape(label) + r"\r?\n\s+(\S+)", text)
    assert found, f"no link after {label!r}"
    return found[1]


def to_members(smtp: Server) -> list[Received]:
    return [m for m in smtp.messages if m.rcpt_tos[0] not in ORGANISERS]


def to_organisers(smtp: Server) -> list[Received]:
    return [m for m in smtp.messages if m.rcpt_tos[0] in ORGANISERS]


def received_by(smtp: Server, address: str) -> list[EmailMessage]:
    return [m.message for m in smtp.messages if m.rcpt_tos == [address]]


def choose(group: Path, address: str, prefs: Preferences) -> None:
    project = load(group)
    with Ledger(project.settings.state_path) as ledger:
        save_preferences(ledger, address, prefs, schedule=project.schedule, now=NOW)


# --- the links, as member values ----------------------------------------------------------------------


def test_each_member_gets_her_own_signed_links_and_the_fast_path_stays_fast(group: Path) -> None:
    project = load(with_public_url(group))
    prep = prepare(project, dinner_reminder(project), now=NOW, columns=project.columns())
    assert prep.renderer.fast  # the links are printed member values: rendered once per mailing
    assert {"rsvp_yes_url", "rsvp_no_url", "preferences_url"} <= set(prep.factory.rendered.slots)
    secret = project.settings.secret
    seen = set()
    for member in project.members():
        msg = parse(prep.build(member, now=NOW).data)
        text, html = text_of(msg), html_of(msg)
        token = links.rsvp_token(secret, DINNER, member.key)
        yes, no = links.rsvp_url(PUBLIC, token, "yes"), links.rsvp_url(PUBLIC, token, "no")
        mine = links.preferences_url(PUBLIC, links.preferences_token(secret, member.key))
        assert link_after(text, "I'll be there:") == yes and link_after(text, "I can't make it:") == no
        assert mine in text and "webcal://news.example.org/calendar.ics" in text
        for href, words in ((yes, "I’ll be there"), (no, "I can’t make it"), (mine, "Your reminder choices")):
            assert re.search(rf'href="{re.escape(href)}"[^>]*>{words}</a>', html), words
        assert 'href="webcal://news.example.org/calendar.ics"' in html
        assert "how many people in all" in text  # the dinner asks for a headcount
        seen.add(yes)
    assert len(seen) == 5  # one link per member: no address in any of them
    tokens = [link.split("/rsvp/")[1].lower() for link in seen]
    assert not any(part in token for token in tokens for part in ("linda", "harper", "example", "2026"))


def test_without_a_public_address_the_mail_has_no_answer_links_and_says_how_to_ask(group: Path) -> None:
    project = load(group)
    assert not project.settings.public_url
    prep = prepare(project, dinner_reminder(project), now=NOW, columns=project.columns())
    member = next(iter(project.members()))
    msg = parse(prep.build(member, now=NOW).data)
    for content in (text_of(msg), html_of(msg)):
        assert "/rsvp/" not in content and "/preferences/" not in content and "webcal:" not in content
        assert "Will you be there?" not in content
        assert "reply to this email and tell us" in " ".join(content.split())
    assert "Unsubscribe from these reminders" in text_of(msg)


def test_rsvp_false_leaves_the_answer_links_out_but_keeps_the_preferences(group: Path) -> None:
    edit_file(group, "schedule.yaml", "  # rsvp: false\n", "  rsvp: false\n")
    project = load(with_public_url(group))
    prep = prepare(project, dinner_reminder(project), now=NOW, columns=project.columns())
    text = text_of(parse(prep.build(next(iter(project.members())), now=NOW).data))
    assert "/rsvp/" not in text and "Will you be there?" not in text
    assert "/preferences/" in text


def test_a_regular_meeting_asks_who_comes_without_a_headcount(group: Path) -> None:
    project = load(with_public_url(group))
    due = find(project.schedule, dt.date(2027, 2, 9), "day-before", NOW)
    assert due is not None
    text = text_of(parse(prepare(project, due, now=NOW).build(next(iter(project.members())), now=NOW).data))
    assert "Will you be there?" in text and "how many people" not in text


def test_fast_path_equals_reference_with_links_and_the_coming_note(group: Path) -> None:
    """The change notice to a member who said she comes: "you told us you'd come", filled in per
    member on the fast path, byte for byte what a full render for her gives."""
    write_members(group)
    with_public_url(group)
    told = load(group).schedule.meeting_on(dt.date(2026, 12, 8))
    assert told is not None
    edit_file(group, "schedule.yaml", *DINNER_TIME)
    project = load(group)
    meeting = project.schedule.meeting_on(dt.date(2026, 12, 8))
    assert meeting is not None
    now = FASTPATH_NOW  # the reference path's invitation is stamped with it
    due = Due(
        Mailing.for_change(meeting, "change-1", snapshot(told)), NOW, meeting.start(project.schedule.group.tz)
    )
    coming = {"linda.harper@example.org", "tom.jerry@example.org"}
    prep = prepare(project, due, now=now, columns=project.columns(), sequence=1, coming=coming)
    assert prep.renderer.fast
    out = Mailout(project, due, 1, prep)
    for i, member in enumerate(project.members()):
        text, html = assert_same(prep.build(member, now=now).data, reference(out, i), member.email)
        said = "You told us you’d come, so please check the new details."
        assert (said in text) == (said in html) == (member.key in coming), member.email
        assert "/rsvp/" in text and "/preferences/" in text


# --- discreet mode and plain text, message by message -----------------------------------------------


def parts_without(msg: EmailMessage, *names: str) -> list[tuple[str, str]]:
    return [(k.lower(), str(v)) for k, v in msg.items() if k.lower() not in names]


def preheader_of(msg: EmailMessage) -> str:
    found = re.search(r'<div class="preheader"[^>]*>([^<]*)</div>', html_of(msg))
    assert found is not None
    return found.group(1)


def test_discreet_mode_changes_from_subject_summary_and_preview_line_and_nothing_else(group: Path) -> None:
    project = load(with_public_url(group))
    for due in (dinner_reminder(project), dinner_reminder(project, "day-before")):
        prep = prepare(project, due, now=NOW, columns=project.columns())
        member = next(iter(project.members()))
        usual = parse(prep.build(member, now=NOW).data)
        discreet = parse(prep.build(member, now=NOW, discreet=True).data)
        assert str(usual["From"]) == "Women's Cancer Support Group <news@example.org>"
        assert str(discreet["From"]) == "Meeting reminder <news@example.org>"  # Discreet()'s words
        assert str(usual["Subject"]).startswith("Reminder: Planning dinner")
        assert str(discreet["Subject"]) == "Reminder for Tuesday, December 8"
        assert summary_of(usual) == "Women's Cancer Support Group: Planning dinner"
        assert summary_of(discreet) == "Meeting reminder"
        # Nothing else: the other headers, the structure, both bodies, and the rest of the invitation.
        names = ("from", "subject", "content-type")
        assert parts_without(usual, *names) == parts_without(discreet, *names)
        assert [p.get_content_type() for p in usual.walk()] == [p.get_content_type() for p in discreet.walk()]
        assert text_of(usual) == text_of(discreet)
        # In the HTML only the preview line a lock screen shows: the neutral subject, then invisible
        # characters, so that nothing of the mail's first lines (the meeting, the place) shows either.
        shown, hidden = preheader_of(usual), preheader_of(discreet)
        assert shown.startswith("Planning dinner") and "Copper River Grill" in shown
        assert hidden.split(" ", 4)[:4] == ["Reminder", "for", "Tuesday,", "December"]
        assert hidden.rstrip("\u034f\u200c\u00a0") == "Reminder for Tuesday, December 8 "
        assert html_of(usual).replace(shown, hidden, 1) == html_of(discreet)
        (a,), (b,) = ics_of(usual).walk("VEVENT"), ics_of(discreet).walk("VEVENT")
        assert {k: v for k, v in a.items() if k != "SUMMARY"} == {
            k: v for k, v in b.items() if k != "SUMMARY"
        }
        for msg in (usual, discreet):
            assert "cancer" not in str(discreet["From"]).lower() + str(discreet["Subject"]).lower()
            assert not msg.defects


def test_the_groups_own_discreet_words(group: Path) -> None:
    edit_file(group, "schedule.yaml", DISCREET_LINE, DISCREET_LINE.replace("# discreet", "discreet"))
    project = load(group)
    prep = prepare(project, dinner_reminder(project), now=NOW, columns=project.columns())
    msg = parse(prep.build(next(iter(project.members())), now=NOW, discreet=True).data)
    assert str(msg["From"]) == "Tuesday group <news@example.org>"
    assert str(msg["Subject"]) == "Reminder for Tuesday, December 8"
    assert summary_of(msg) == "Tuesday group"


def test_a_plain_text_member_gets_text_and_the_invitation_only(group: Path) -> None:
    project = load(with_public_url(group))
    prep = prepare(project, dinner_reminder(project), now=NOW, columns=project.columns())
    member = next(iter(project.members()))
    usual = parse(prep.build(member, now=NOW).data)
    plain = parse(prep.build(member, now=NOW, plain=True).data)
    assert [p.get_content_type() for p in plain.walk()] == ["multipart/mixed", "text/plain", "text/calendar"]
    assert plain.get_body(("html",)) is None and not plain.defects
    assert text_of(plain) == text_of(usual)
    assert ics_of(plain).to_ical() == ics_of(usual).to_ical()
    assert parts_without(plain, "content-type") == parts_without(usual, "content-type")
    both = parse(prep.build(member, now=NOW, plain=True, discreet=True).data)
    assert str(both["From"]) == "Meeting reminder <news@example.org>" and both.get_body(("html",)) is None


# --- the send loop honours her preferences ---------------------------------------------------------


def test_a_member_who_wants_only_the_day_before_reminder_gets_only_that(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    choose(group, ZOE, Preferences(reminders=frozenset({"day-before"})))
    code, out, err = run(group, "tick", "--at", WEEK_BEFORE)
    assert code == 0, err
    assert sorted(m.rcpt_tos[0] for m in to_members(smtp)) == sorted({LINDA, ROSA, CAROL, FRIEND})
    assert "2026-12-08/week-before: sent 4 now, 4/4 in all" in out  # she is no one "not reached"
    # The week-before's window closes with the next tick: nothing left, no organiser mail about it.
    smtp.handler.messages.clear()
    code, out, err = run(group, "tick", "--at", DAY_BEFORE)
    assert code == 0, err
    assert "not reached" not in out
    assert sorted(m.rcpt_tos[0] for m in to_members(smtp)) == sorted({LINDA, ZOE, ROSA, CAROL, FRIEND})
    assert not [m for m in to_organisers(smtp) if "needs a look" in str(m.message["Subject"])]
    with Ledger(group / STATE) as ledger:
        assert ledger.campaign("2026-12-08/week-before").state == "done"  # type: ignore[union-attr]
        assert ledger.counts("2026-12-08/week-before") == {"sent": 4}
    code, out, err = run(group, "upcoming", "--at", DAY_BEFORE)
    assert "week-before  due Tue 2026-12-01 09:00 EST  sent 4/4" in out


def test_a_paused_member_gets_nothing_until_her_pause_ends(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    choose(group, ROSA, Preferences(paused_until=dt.date(2027, 1, 1)))
    for moment in (WEEK_BEFORE, DAY_BEFORE):
        assert run(group, "tick", "--at", moment)[0] == 0
    assert received_by(smtp, ROSA) == []
    assert len(received_by(smtp, LINDA)) == 2
    # February's meeting is after her pause: she gets its reminders.
    assert run(group, "tick", "--at", "2027-02-02T09:05")[0] == 0
    assert [str(m["Subject"]).split(" —")[0] for m in received_by(smtp, ROSA)] == [
        "Reminder: Support group meeting next week"
    ]


def test_a_paused_member_gets_no_change_notice_and_is_no_one_not_reached(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    assert run(group, "tick", "--at", WEEK_BEFORE)[0] == 0
    choose(group, ROSA, Preferences(paused_until=dt.date(2027, 1, 1)))  # after the reminder reached her
    edit_file(group, "schedule.yaml", *DINNER_TIME)
    smtp.handler.messages.clear()
    code, out, err = run(group, "tick", "--at", "2026-12-02T10:00")
    assert code == 0, err
    notices = to_members(smtp)
    assert {m.rcpt_tos[0] for m in notices} == {LINDA, ZOE, CAROL, FRIEND}
    assert all(str(m.message["Subject"]).startswith("Changed: Planning dinner") for m in notices)
    with Ledger(group / STATE) as ledger:
        (notice,) = ledger.campaigns_for(DINNER, MailKind.CHANGE)
        assert ledger.counts(notice.id) == {"sent": 4, "suppressed": 1}
        assert notice.state == "done"


def test_plain_text_and_discreet_members_get_theirs_through_the_relay(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    with_public_url(group)
    choose(group, LINDA, Preferences(plain_text=True))
    choose(group, ZOE, Preferences(discreet=True))
    assert run(group, "tick", "--at", WEEK_BEFORE)[0] == 0
    (linda,) = received_by(smtp, LINDA)
    (zoe,) = received_by(smtp, ZOE)
    (rosa,) = received_by(smtp, ROSA)
    assert [p.get_content_type() for p in linda.walk()] == ["multipart/mixed", "text/plain", "text/calendar"]
    assert "I'll be there:" in text_of(linda)  # her links are in the text too
    assert str(zoe["From"]) == "Meeting reminder <news@example.org>"
    assert str(zoe["Subject"]) == "Reminder for Tuesday, December 8" and summary_of(zoe) == "Meeting reminder"
    assert str(rosa["From"]).startswith("Women's Cancer Support Group")
    assert "Women's Cancer Support Group" not in str(zoe["From"]) + str(zoe["Subject"]) + summary_of(zoe)
    assert "Planning dinner" in text_of(zoe)  # the body is as everyone's


def test_everyone_is_discreet_when_the_group_says_so_unless_she_turns_it_off(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    edit_file(
        group,
        "schedule.yaml",
        DISCREET_LINE,
        '  discreet: {sender: "Tuesday group", subject: "Reminder for {date}", default: true}',
    )
    choose(group, CAROL, Preferences(discreet=False))
    assert run(group, "tick", "--at", WEEK_BEFORE)[0] == 0
    for address in (LINDA, ZOE, ROSA, FRIEND):
        (msg,) = received_by(smtp, address)
        assert str(msg["From"]) == "Tuesday group <news@example.org>" and summary_of(msg) == "Tuesday group"
    (carol,) = received_by(smtp, CAROL)
    assert str(carol["Subject"]).startswith("Reminder: Planning dinner")
    # A change notice, then the cancellation, keep the neutral words too.
    edit_file(group, "schedule.yaml", *DINNER_TIME)
    smtp.handler.messages.clear()
    assert run(group, "tick", "--at", "2026-12-02T10:00")[0] == 0
    (notice,) = received_by(smtp, LINDA)
    assert str(notice["Subject"]) == "Reminder for Tuesday, December 8"
    assert "Changed: Planning dinner" in text_of(notice) and summary_of(notice) == "Tuesday group"
    edit_file(
        group,
        "schedule.yaml",
        "      title: Planning dinner\n",
        "      title: Planning dinner\n      cancelled: true\n",
    )
    smtp.handler.messages.clear()
    assert run(group, "tick", "--at", "2026-12-03T10:00")[0] == 0
    (cancel,) = received_by(smtp, LINDA)
    assert str(cancel["From"]) == "Tuesday group <news@example.org>"
    assert "Cancelled: Planning dinner" in text_of(cancel) and summary_of(cancel) == "Tuesday group"
    assert ics_of(cancel)["method"] == "CANCEL"
    (carols,) = received_by(smtp, CAROL)
    assert str(carols["Subject"]).startswith("Cancelled: Planning dinner")


# --- answering from the mail; the counts and the organisers' summary --------------------------------


def answer_from_mail(site: Site, msg: EmailMessage, label: str, people: str = "") -> str:
    """What a member does: open the link in her mail (a page with one button), press the button."""
    link = link_after(text_of(msg), label)
    assert link.startswith(site.url + "/rsvp/")
    page = site.http.get(link)
    assert page.status_code == 200 and "<button" in page.text
    done = site.http.post(link, data={"people": people} if people else {})
    assert done.status_code == 200
    return done.text


def test_members_answer_from_their_mail_and_the_organisers_see_the_counts(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_site(group, smtp, monkeypatch) as site:
        code, out, err = run(group, "tick", "--at", WEEK_BEFORE)
        assert code == 0, err
        (rosa,) = received_by(smtp, ROSA)
        assert "Thank you, see you there" in answer_from_mail(site, rosa, "I'll be there:", "3")
        # She changes her mind, then comes after all, with one guest.
        assert "Thank you for telling us" in answer_from_mail(site, rosa, "I can't make it:")
        answer_from_mail(site, rosa, "I'll be there:", "2")
        (linda,) = received_by(smtp, LINDA)
        answer_from_mail(site, linda, "I'll be there:", "1")
        (carol,) = received_by(smtp, CAROL)
        answer_from_mail(site, carol, "I can't make it:")
        # A link from someone else's mail answers for that member only; a forged one for nobody.
        forged = link_after(text_of(rosa), "I can't make it:")[:-7] + "AAAA/no"
        assert "This link cannot take an answer" in site.http.post(forged).text

        expected = "2 coming (3 people), 1 can't come, 2 no answer"
        code, out, err = run(group, "upcoming", "--at", "2026-12-02T10:00")
        assert f"    answers: {expected}" in out
        status = status_lines(resolve(group), None, now=dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC))
        assert status[-2:] == [
            "Who is coming (answers to the reminders):",
            f"  Planning dinner, Tue Dec 8: {expected}",
        ]

        # With the day-before reminder's run, one short mail to the organisers, once.
        smtp.handler.messages.clear()
        code, out, err = run(group, "tick", "--at", DAY_BEFORE)
        assert code == 0, err
        summaries = [m for m in to_organisers(smtp) if "who is coming" in str(m.message["Subject"])]
        assert sorted(m.rcpt_tos[0] for m in summaries) == sorted(ORGANISERS)
        assert f"Planning dinner, Tue Dec 8: {expected}" in text_of(summaries[0].message)
        for m in summaries:
            assert not any(a in text_of(m.message) for a in (ROSA, LINDA, CAROL, "rosa", "Linda"))
        assert f"answers: Planning dinner, Tue Dec 8: {expected}" in out
        smtp.handler.messages.clear()
        assert run(group, "tick", "--at", "2026-12-07T10:05")[0] == 0
        assert to_organisers(smtp) == []


def test_a_change_notice_tells_those_who_said_they_would_come(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    with_public_url(group)
    assert run(group, "tick", "--at", WEEK_BEFORE)[0] == 0
    with Ledger(group / STATE) as ledger:
        record_rsvp(ledger, DINNER, ROSA, coming=True, people=2, now=NOW)
        record_rsvp(ledger, DINNER, CAROL, coming=False, now=NOW)
    edit_file(group, "schedule.yaml", *DINNER_TIME)
    smtp.handler.messages.clear()
    assert run(group, "tick", "--at", "2026-12-02T10:00")[0] == 0
    (rosa,) = received_by(smtp, ROSA)
    (carol,) = received_by(smtp, CAROL)
    said = "You told us you’d come, so please check the new details."
    assert said in text_of(rosa) and said in html_of(rosa)
    assert "you’d come" not in text_of(carol) and "you’d come" not in html_of(carol)
    assert "Time: was 6:00 PM, now 6:30 PM" in " ".join(text_of(rosa).split())
    assert "I can't make it:" in text_of(rosa)  # she can say so if the new time does not suit her


def test_the_console_overview_shows_who_is_coming(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_console import start_console

    assert run(group, "send", "--at", WEEK_BEFORE)[0] == 0  # the outbox try-out opens the mailing
    with Ledger(group / STATE) as ledger:
        record_rsvp(ledger, DINNER, ROSA, coming=True, people=4, now=NOW)
    with start_console(group, monkeypatch) as console:
        overview = console.sign_in().get("/admin/")
    assert overview.status_code == 200 and "<h2>Who is coming</h2>" in overview.text
    shown = overview.text.replace("&#39;", "'")
    assert "<li>Planning dinner, Tue Dec 8: 1 coming (4 people), 0 can't come, 4 no answer</li>" in shown
    assert "    answers: 1 coming (4 people)" in shown  # in the coming meetings, as `upcoming` says
    assert ROSA not in shown


# --- accessibility of the mail with its links ----------------------------------------------------


@pytest.mark.browser
def test_the_mail_with_its_answer_links_passes_axe_and_our_checks(
    driver: browser.Driver, group: Path, run: CliRunner, tmp_path: Path
) -> None:
    with_public_url(group)
    html = tmp_path / "mail.html"
    code, out, err = run(group, "preview", "--at", WEEK_BEFORE, "--out", str(html))
    assert code == 0, err
    assert "I’ll be there" in html.read_text(encoding="utf-8")
    problems = browser.check_mail(driver, html)
    assert not problems, "\n".join(problems)
    browser.open_html(driver, html, width=320)
    assert browser.scroll_width(driver) <= 320
    _, link_texts = browser.text_without_css(driver)
    for words in (
        "I’ll be there",
        "I can’t make it",
        "Your reminder choices",
        "Subscribe to the meetings calendar",
    ):
        assert words in link_texts


driver = browser.driver  # the session's headless Chromium (a fixture)


@pytest.mark.browser
def test_a_member_clicks_i_will_be_there_in_her_mail_in_a_browser(
    group: Path,
    smtp: Server,
    run: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    driver: browser.Driver,
    tmp_path: Path,
) -> None:
    """The HTML part of the mail she received, opened in Chromium at 320 px: she taps the button in the
    mail, then says how many come on the page it opens; the answer is hers alone."""
    from selenium.webdriver.common.by import By

    from .test_answers_e2e import answers, click
    from .test_signup_e2e import heading, page_problems

    with start_site(group, smtp, monkeypatch) as site:
        assert run(group, "tick", "--at", WEEK_BEFORE)[0] == 0
        (rosa,) = received_by(smtp, ROSA)
        mail = tmp_path / "rosa.html"
        mail.write_text(html_of(rosa), encoding="utf-8")
        browser.open_html(driver, mail, width=browser.NARROW)
        (button,) = [
            a for a in driver.find_elements(By.CSS_SELECTOR, "a.button") if a.text == "I’ll be there"
        ]
        button.click()
        heading(driver, "Will you be there?")
        assert page_problems(driver) == []
        click(driver, "main form button", "2 people")
        heading(driver, "Thank you, see you there")
        assert answers(site) == {ROSA: ("yes", 2)}
