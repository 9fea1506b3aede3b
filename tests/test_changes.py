"""Change notices: an edit after a reminder went out reaches exactly the members who had it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import icalendar
import pytest

from .conftest import CliRunner
from .smtpd import Received, Recorder, Server

DUE = "2026-12-01T09:05"  # the dinner's week-before reminder goes out
AFTER = "2026-12-01T10:00"  # an hour later, the organiser has edited schedule.yaml
VICTIM = "linda.harper@example.org"
EVERYONE = 5


def edit(group: Path, old: str, new: str) -> None:
    path = group / "schedule.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


DINNER_TIME = '      title: Planning dinner\n      time: "18:00"'


def move_dinner_to_1830(group: Path) -> None:
    edit(group, DINNER_TIME, '      title: Planning dinner\n      time: "18:30"')


def move_dinner_venue(group: Path) -> None:
    edit(
        group,
        "        name: Copper River Grill\n        address: 775 Haywood Rd, Greenville, SC 29607",
        "        name: Soby's\n        address: 207 S Main St, Greenville, SC 29601",
    )


def cancel_dinner(group: Path) -> None:
    edit(
        group,
        "      title: Planning dinner\n",
        "      title: Planning dinner\n      cancelled: true\n"
        "      note: The restaurant is closed that week; we will plan by email.\n",
    )


def event(received: Received) -> tuple[icalendar.Calendar, icalendar.Event]:
    parts = [p for p in received.message.walk() if p.get_content_type() == "text/calendar"]
    payload = parts[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    calendar = icalendar.Calendar.from_ical(payload)
    return calendar, calendar.walk("VEVENT")[0]


def text_of(received: Received) -> str:
    body = received.message.get_body(("plain",))
    assert body is not None
    return " ".join(body.get_content().split())


@pytest.fixture
def reminded(group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch) -> Server:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "tick", "--at", DUE)
    assert code == 0, err
    assert len(smtp.messages) == EVERYONE
    return smtp


@pytest.mark.parametrize(
    ("change", "subject", "says"),
    [
        (
            move_dinner_to_1830,
            "Changed: Planning dinner on Tuesday, December 8 — now at 6:30 PM",
            "Time: was 6:00 PM, now 6:30 PM",
        ),
        (
            move_dinner_venue,
            "Changed: Planning dinner on Tuesday, December 8 — now at Soby's",
            "Place: was Copper River Grill, now Soby's",
        ),
        (
            cancel_dinner,
            "Cancelled: Planning dinner on Tuesday, December 8",
            "Status: was going ahead, now cancelled",
        ),
    ],
    ids=["time", "venue", "cancel"],
)
def test_edit_sends_one_notice_to_each_reminded_member(
    change: Callable[[Path], None], subject: str, says: str, group: Path, reminded: Server, run: CliRunner
) -> None:
    first = {m.rcpt_tos[0]: m for m in reminded.messages}
    change(group)
    code, out, err = run(group, "tick", "--at", AFTER)
    assert code == 0, err
    notices = reminded.messages[EVERYONE:]
    assert sorted(m.rcpt_tos[0] for m in notices) == sorted(first)
    for notice in notices:
        assert notice.message["Subject"] == subject
        assert says in text_of(notice)
        calendar, updated = event(notice)
        _, original = event(first[notice.rcpt_tos[0]])
        assert updated["UID"] == original["UID"] == "meeting-2026-12-08@example.org"
        assert int(updated["SEQUENCE"]) > int(original["SEQUENCE"])
        if change is cancel_dinner:
            assert str(calendar["METHOD"]) == "CANCEL" and str(updated["STATUS"]) == "CANCELLED"
        else:
            assert str(calendar["METHOD"]) == "PUBLISH" and str(updated["STATUS"]) == "CONFIRMED"
    code, out, err = run(group, "tick", "--at", "2026-12-01T10:05")  # a second tick sends nothing more
    assert code == 0 and len(reminded.messages) == 2 * EVERYONE


def test_only_members_who_had_the_reminder_get_the_notice(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse = Recorder(rcpt_hook=lambda a: "550 5.1.1 no such user" if a == VICTIM else None)
    with Server(refuse) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        run(group, "tick", "--at", DUE)
        assert len(smtp.messages) == EVERYONE - 1
        (group / "subscribers.csv").write_text(
            (group / "subscribers.csv").read_text(encoding="utf-8")
            + "newcomer@example.org,New Member,2026-12-01\n",
            encoding="utf-8",
        )
        move_dinner_to_1830(group)
        code, out, err = run(group, "tick", "--at", AFTER)
        later = smtp.messages[EVERYONE - 1 :]
        notices = [m for m in later if m.message["Subject"].startswith("Changed:")]
        got = {m.rcpt_tos[0] for m in notices}
        assert len(notices) == EVERYONE - 1
        assert VICTIM not in got and "newcomer@example.org" not in got
        # The newcomer, added while the week-before reminder is due, gets it with the new time.
        [welcome] = [m for m in later if m.rcpt_tos[0] == "newcomer@example.org"]
        assert welcome.message["Subject"].startswith("Reminder:") and "6:30 PM" in welcome.message["Subject"]
        # The newcomer simply gets the current details in the next reminder.
        refuse.rcpt_hook = None
        code, out, err = run(group, "tick", "--at", "2026-12-07T09:05")
        day_before = [
            m
            for m in smtp.messages
            if "Reminder" in m.message["Subject"] and "tomorrow" in m.message["Subject"]
        ]
        assert "newcomer@example.org" in {m.rcpt_tos[0] for m in day_before}
        assert all("6:30 PM" in m.message["Subject"] for m in day_before)


def test_several_edits_before_the_tick_make_one_notice_with_the_final_state(
    group: Path, reminded: Server, run: CliRunner
) -> None:
    move_dinner_to_1830(group)
    move_dinner_venue(group)
    edit(group, '      time: "18:30"', '      time: "19:00"')
    code, out, err = run(group, "tick", "--at", AFTER)
    assert code == 0, err
    notices = reminded.messages[EVERYONE:]
    assert len(notices) == EVERYONE
    text = text_of(notices[0])
    assert "Time: was 6:00 PM, now 7:00 PM" in text and "Place: was Copper River Grill, now Soby's" in text
    assert "6:30" not in text


def test_an_edit_then_another_after_the_notice_sends_a_second_notice(
    group: Path, reminded: Server, run: CliRunner
) -> None:
    move_dinner_to_1830(group)
    run(group, "tick", "--at", AFTER)
    edit(group, '      time: "18:30"', '      time: "18:00"')
    run(group, "tick", "--at", "2026-12-01T11:00")
    second = reminded.messages[2 * EVERYONE :]
    assert len(second) == EVERYONE
    assert "Time: was 6:30 PM, now 6:00 PM" in text_of(second[0])
    assert int(event(second[0])[1]["SEQUENCE"]) == 2


@pytest.mark.parametrize(
    "noop",
    [
        lambda g: edit(g, 'time: "18:00"\n    title: Support', "time: 18:00\n    title: Support"),
        lambda g: edit(g, "meetings:\n", "# reformatted by an organiser\nmeetings:\n"),
        lambda g: edit(
            g,
            "        Join us for good food and good company.",
            "        Join us for good food, good company and dessert.",
        ),
        lambda g: (
            (g / "content" / "articles" / "other.md").write_text(
                "---\ntitle: Other\nauthor: Someone\ndate: 2020-01-01\n---\nText.\n", encoding="utf-8"
            )
            or edit(g, "article: second-opinion", "article: other")
        ),
        lambda g: (g / "subscribers.csv").write_text(
            (g / "subscribers.csv").read_text(encoding="utf-8") + "new@example.org,New,2026-12-01\n",
            encoding="utf-8",
        ),
    ],
    ids=["unquoted-time", "comment", "details-wording", "article", "new-subscriber"],
)
def test_edits_that_change_nothing_members_were_told_send_nothing(
    noop: Callable[[Path], object], group: Path, reminded: Server, run: CliRunner
) -> None:
    noop(group)
    code, out, err = run(group, "tick", "--at", AFTER)
    assert code == 0, err
    later = reminded.messages[EVERYONE:]
    assert not [m for m in later if m.message["Subject"].startswith(("Changed", "Cancelled"))]
    # A new member simply gets the reminder that is due; nobody else gets anything.
    newcomer = "new@example.org" in (group / "subscribers.csv").read_text(encoding="utf-8")
    assert [m.rcpt_tos[0] for m in later] == (["new@example.org"] if newcomer else [])


def test_unsubscribed_member_gets_no_notice(group: Path, reminded: Server, run: CliRunner) -> None:
    code, out, err = run(group, "subscribers", "remove", VICTIM)
    assert code == 0, err
    move_dinner_to_1830(group)
    run(group, "tick", "--at", AFTER)
    assert VICTIM not in {m.rcpt_tos[0] for m in reminded.messages[EVERYONE:]}
    assert len(reminded.messages) == 2 * EVERYONE - 1


def test_a_meeting_removed_from_the_schedule_counts_as_cancelled(
    group: Path, reminded: Server, run: CliRunner
) -> None:
    # The dinner moved to the Wednesday, and the rule now starts after it: December 8 is gone.
    edit(group, "  from: 2026-12-01", "  from: 2026-12-10")
    edit(group, "    - date: 2026-12-08\n      weekday: Tuesday", "    - date: 2026-12-09")
    run(group, "tick", "--at", AFTER)
    notices = reminded.messages[EVERYONE:]
    assert len(notices) == EVERYONE
    assert notices[0].message["Subject"].startswith("Cancelled: Planning dinner on Tuesday, December 8")
    assert "no longer on the schedule" in text_of(notices[0])
    assert str(event(notices[0])[0]["METHOD"]) == "CANCEL"


def test_upcoming_status_and_preview_show_change_notices(
    group: Path, reminded: Server, run: CliRunner
) -> None:
    code, out, err = run(group, "preview", "--change", "--text", "--at", AFTER)
    assert code == 1 and "no change to announce" in err
    move_dinner_to_1830(group)
    code, out, err = run(group, "upcoming", "--at", AFTER)
    assert "change notice pending for 5 member(s)" in out
    code, out, err = run(group, "preview", "--change", "--text", "--at", AFTER)
    assert code == 0, err
    assert "Changed: Planning dinner" in out and "was 6:00 PM, now 6:30 PM" in " ".join(out.split())
    run(group, "tick", "--at", AFTER)
    code, out, err = run(group, "upcoming", "--at", AFTER)
    assert "change-1" in out and "change notice done: 5 sent" in out and "change notice pending" not in out
    code, out, err = run(group, "status")
    assert "2026-12-08/change-1" in out
    code, out, err = run(group, "status", "2026-12-08/change-1")
    assert out.count("sent       ") == 5


def test_a_cancellation_written_as_just_a_date_and_a_note_tells_what_members_were_told(
    group: Path, reminded: Server, run: CliRunner
) -> None:
    # The organiser replaces the dinner's whole entry with one line: no time, no venue.
    path = group / "schedule.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("    - date: 2026-12-08")
    end = text.index("\n\n", start)  # the entry ends at the blank line after it
    short = "    - {date: 2026-12-08, cancelled: true, note: Room unavailable}\n"
    path.write_text(text[:start] + short + text[end + 1 :], encoding="utf-8")
    code, out, err = run(group, "tick", "--at", AFTER)
    assert code == 0, err
    notices = reminded.messages[EVERYONE:]
    assert len(notices) == EVERYONE
    body = text_of(notices[0])
    assert "Cancelled: Planning dinner" in str(notices[0].message["Subject"]) or "Cancelled" in body
    assert "Room unavailable" in body and "12:00 AM" not in body
    _, vevent = event(notices[0])
    assert str(vevent["STATUS"]) == "CANCELLED" and vevent.decoded("DTSTART").hour == 18


def test_a_line_break_in_the_subject_template_is_reported_with_its_line(group: Path, run: CliRunner) -> None:
    path = group / "templates" / "reminder.subject.txt"
    path.write_text("Reminder:\n{{ meeting.title }} {{ reminder.when_text }}\n", encoding="utf-8")
    code, out, err = run(group, "check")
    assert code == 1 and "templates/reminder.subject.txt:1: the subject would contain a line break" in err
