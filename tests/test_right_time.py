"""Members only ever get the right mail at the right time, against a real SMTP server on 127.0.0.1.

The sample's first meeting is the planning dinner, Tuesday 2026-12-08 at 18:00 New York time; its
week-before reminder is due 2026-12-01 09:00 and its day-before 2026-12-07 09:00.
"""

from __future__ import annotations

import datetime as dt
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from newsletter.jobs import send_one
from newsletter.project import load_project
from newsletter.settings import resolve
from newsletter.timing import find

from .conftest import CliRunner
from .smtpd import Server

DUE = "2026-12-01T09:05"
AFTER_START = "2026-12-08T18:01"


def subjects(smtp: Server) -> list[str]:
    return [str(m.message["Subject"]) for m in smtp.messages]


def test_a_named_reminder_after_the_meeting_started_reaches_nobody(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    for reminder in ("week-before", "day-before"):
        code, out, err = run(
            group, "send", "--meeting", "2026-12-08", "--reminder", reminder, "--at", AFTER_START
        )
        assert code == 1, out
        assert "started at Tue 2026-12-08 18:00 EST" in err and "no reminder about it goes out" in err
    assert smtp.messages == []


def test_a_named_reminder_whose_window_closed_is_refused(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    # The week-before window closes when the day-before one opens (Mon 2026-12-07 09:00).
    code, out, err = run(
        group, "send", "--meeting", "2026-12-08", "--reminder", "week-before", "--at", "2026-12-07T10:00"
    )
    assert code == 1
    assert "could be sent until Mon 2026-12-07 09:00 EST" in err and "organisers are told" in err
    assert smtp.messages == []


def test_send_to_a_relay_with_nothing_due_says_what_is_next_and_sends_nothing(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "send", "--at", "2026-11-30T12:00")
    assert code == 0, err
    assert "Nothing is due now" in out and "due Tue 2026-12-01 09:00 EST" in out
    assert smtp.messages == []
    code, out, err = run(group, "send", "--at", DUE)
    assert code == 0, err
    assert len(smtp.messages) == 5
    assert all("next week" in s for s in subjects(smtp))


def test_a_reminder_sent_early_says_how_far_off_the_meeting_really_is(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "send", "--meeting", "2027-02-09", "--at", "2026-11-30T12:00")
    assert code == 0, err
    assert "Sending it now, as asked" in out and "from now" in out
    assert len(smtp.messages) == 5
    assert all("in 71 days" in s and "next week" not in s for s in subjects(smtp))
    # It went early as asked; the real due date finds it done, not owed again and not "missed".
    code, out, err = run(group, "upcoming", "--at", "2026-11-30T12:00")
    assert "sent 5/5" in out


def test_the_day_before_reminder_sent_on_the_meetings_morning_says_tonight(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "tick", "--at", "2026-12-08T09:00")
    assert code == 0, err
    # The organisers also hear that the week-before reminder's window closed unsent.
    to_members = [
        m.message
        for m in smtp.messages
        if "@example.org" in m.rcpt_tos[0] and "Reminder" in str(m.message["Subject"])
    ]
    assert len(to_members) == 5
    for message in to_members:
        assert "tonight" in str(message["Subject"]) and "tomorrow" not in str(message["Subject"])
        text = message.get_body(("plain",))
        assert text is not None and "we meet tonight" in text.get_content()
        assert "tomorrow" not in text.get_content()
        # The Date header is in the group's time zone, as the members' clocks show it.
        assert parsedate_to_datetime(str(message["Date"])).utcoffset() == dt.timedelta(hours=-5)


def test_a_send_that_would_cross_the_start_stops_before_it(group: Path, smtp: Server) -> None:
    settings = resolve(group, environ={"SMTP_URL": smtp.url, "SMTP_CONNECTIONS": "1"})
    project = load_project(settings)
    tz = project.schedule.group.tz
    start = dt.datetime(2026, 12, 8, 18, 0, tzinfo=tz)
    due = find(project.schedule, dt.date(2026, 12, 8), "day-before", start)
    assert due is not None
    moments = iter(start - dt.timedelta(seconds=40) + dt.timedelta(seconds=2 * i) for i in range(10_000))
    report = send_one(project, due, clock=lambda: next(moments))
    # Each message moves the clock on: the first few go, then the start passes and nothing more does.
    assert 0 < len(smtp.messages) < 5
    assert report.counts["sent"] == len(smtp.messages)


def test_an_outbox_try_out_never_uses_up_the_real_reminder(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(group, "send", "--at", "2026-11-30T12:00")  # the README's first command
    assert code == 0, err
    assert "try-out" in out and len(list((group / "outbox").rglob("*.eml"))) == 5
    code, out, err = run(group, "upcoming", "--at", "2026-11-30T12:00")
    assert "pending (tried out in the outbox: 5)" in out
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "tick", "--at", DUE)
    assert code == 0, err
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == sorted(
        line.split(",")[0] for line in (group / "subscribers.csv").read_text().splitlines()[1:]
    )


def test_tick_dry_run_shows_what_would_go_out_and_sends_nothing(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "tick", "--dry-run", "--at", DUE)
    assert code == 0, err
    assert "2026-12-08/week-before: 5 member(s) would get it" in out
    assert smtp.messages == [] and not (group / ".newsletter" / "state.sqlite3").exists()
    run(group, "subscribers", "remove", "zoe.martin@example.org")
    run(group, "tick", "--at", DUE)
    assert len(smtp.messages) == 4
    code, out, err = run(group, "send", "--dry-run", "--at", DUE)
    assert "0 member(s) would get it" in out
    assert "4 already sent (subscribers.csv line 2, 3, 4, 5)" in out


def test_a_test_mail_says_so_in_the_subject_and_at_the_top_of_both_parts(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "send", "--to", "margaret@example.org", "--at", DUE)
    assert code == 0, err
    [received] = smtp.messages
    assert str(received.message["Subject"]).startswith("[Test] Reminder:")
    text, html = received.message.get_body(("plain",)), received.message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().lstrip().startswith("TEST MAIL.")
    assert "Test mail." in html.get_content()


def test_outbox_files_are_named_after_the_members_row_and_address(group: Path, run: CliRunner) -> None:
    code, out, err = run(group, "send", "--at", DUE)
    assert code == 0, err
    names = sorted(p.name for p in (group / "outbox" / "2026-12-08_week-before").glob("*.eml"))
    assert names[0] == "0002-linda.harper@example.org.eml" and len(names) == 5


def test_preview_any_meeting_past_or_future_even_with_a_bad_row(group: Path, run: CliRunner) -> None:
    with (group / "subscribers.csv").open("a", encoding="utf-8") as fh:
        fh.write("not-an-address,Someone\n")
    out_file = group / "past.html"
    code, out, err = run(
        group, "preview", "--meeting", "2026-12-08", "--out", str(out_file), "--at", "2027-01-05T10:00"
    )
    assert code == 0, err
    assert "Planning dinner" in out_file.read_text(encoding="utf-8")
    code, out, err = run(group, "preview", "--out", str(group / "mail.pdf"))
    assert code == 2 and ".html, .txt, .eml or .png" in err


def test_check_upcoming_and_the_mail_agree_on_what_is_upcoming(group: Path, run: CliRunner) -> None:
    code, out, err = run(group, "check")
    meetings = int(out.split("schedule.yaml: ")[1].split(" upcoming")[0])
    code, out, err = run(group, "upcoming")
    assert sum(1 for line in out.splitlines() if not line.startswith(" ")) == meetings
    code, out, err = run(group, "preview", "--text")
    assert code == 0, err
    rest = out.split("The rest of the year")[1].split("\n\n\n")[0]
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    dated = [line for line in rest.splitlines() if line.startswith(days)]
    assert len(dated) == meetings - 1  # every upcoming meeting but the one this mail is about


def test_a_placeholder_blocks_a_relay_send_but_not_the_outbox_try_out(
    sample: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = sample
    code, out, err = run(group, "send", "--meeting", "2027-02-09", "--at", "2026-11-30T12:00")
    assert code == 0 and len(list((group / "outbox").rglob("*.eml"))) == 5  # the outbox still works
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "send", "--meeting", "2027-02-09", "--at", "2026-11-30T12:00")
    lines = (group / "schedule.yaml").read_text(encoding="utf-8").splitlines()
    mark = next(n for n, line in enumerate(lines, 1) if line.strip().startswith("placeholder: true"))
    assert code == 1 and f"schedule.yaml:{mark}:" in err and "placeholder: true" in err
    assert smtp.messages == []
    # The dinner's own venue is real, but its mail lists the later dates at the example venue.
    code, out, err = run(group, "send", "--at", "2026-12-01T09:05")
    assert code == 1 and f"schedule.yaml:{mark}:" in err and smtp.messages == []
    path = group / "schedule.yaml"
    path.write_text("\n".join(ln for n, ln in enumerate(lines, 1) if n != mark) + "\n", encoding="utf-8")
    assert run(group, "send", "--meeting", "2027-02-09", "--at", "2026-11-30T12:00")[0] == 0
    assert len(smtp.messages) == 5
