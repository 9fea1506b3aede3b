"""The first mailing, end to end: sample group → real SMTP server on 127.0.0.1 and → the outbox."""

from __future__ import annotations

import csv
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import icalendar
import pytest

from .conftest import BEFORE_FIRST, CliRunner
from .smtpd import Server


def members(group: Path) -> list[dict[str, str]]:
    with (group / "subscribers.csv").open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def parts(msg: EmailMessage) -> tuple[str, str, bytes]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    ics = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert len(ics) == 1
    payload = ics[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return text.get_content(), html.get_content(), payload


def check_message(
    msg: EmailMessage, member: dict[str, str], everyone: list[dict[str, str]], *, public_url: str | None
) -> None:
    address = member["email"]
    # Addressed to that member alone, and nobody else's address anywhere in the message.
    assert [a.addr_spec.lower() for a in msg["To"].addresses] == [address.lower()]
    assert msg["Cc"] is None and msg["Bcc"] is None
    raw = msg.as_string().lower()
    for other in everyone:
        if other["email"].lower() != address.lower():
            assert other["email"].lower() not in raw
    for header in ("From", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
        assert msg[header], header
    assert msg["From"].addresses[0].addr_spec == "news@example.org"
    assert "Planning dinner" in msg["Subject"]
    assert re.fullmatch(r"<[a-z0-9.]+@example\.org>", msg["Message-ID"])
    unsubscribe = msg["List-Unsubscribe"]
    assert "<mailto:" in unsubscribe
    assert address.lower() not in unsubscribe.lower()  # the token does not carry the address in clear
    if public_url:
        assert f"<{public_url}/unsubscribe/" in unsubscribe
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert "https://" not in unsubscribe and msg["List-Unsubscribe-Post"] is None
    assert msg.get_content_type() == "multipart/mixed"
    assert msg.get_payload()[0].get_content_type() == "multipart/alternative"  # type: ignore[index]
    text, html, ics = parts(msg)
    for body in (" ".join(text.split()), " ".join(html.split())):
        assert "Tuesday, December 8, 2026" in body
        assert "6:00 PM" in body
        assert "Copper River Grill" in body
        assert "775 Haywood Rd, Greenville, SC 29607" in body
        assert "private room" in body
        assert "good food and good company" in body
        assert "February 9" in body  # the rest of the year's dates
        assert "Tips for seeking second opinion on cancer care" in body
        assert "Sheryl M. Ness" in body and "October 12, 2013" in body
        assert "Margaret" in body and "vonnie@example.org" in body
        assert "women affected by cancer" in body  # the mission
        assert "google.com/maps" in body
    assert "Unsubscribe" in html and "unsubscribe" in text.lower()
    assert 'style="' in html  # CSS inlined
    name = member.get("name", "")
    greeting = f"Dear {name}," if name else "Hello,"
    assert greeting in text and greeting.replace("&", "&amp;") in html
    event = icalendar.Calendar.from_ical(ics).walk("VEVENT")[0]
    assert str(event["UID"]) == "meeting-2026-12-08@example.org"
    assert event.decoded("DTSTART").isoformat() == "2026-12-08T18:00:00-05:00"
    assert "Copper River Grill" in str(event["LOCATION"])


def test_sample_mailing_reaches_every_member_over_smtp(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    monkeypatch.setenv("NEWSLETTER_PUBLIC_URL", "https://news.example.org")
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 0, err
    everyone = members(group)
    assert len(smtp.messages) == len(everyone) >= 5
    by_rcpt = {m.rcpt_tos[0].lower(): m for m in smtp.messages}
    assert all(len(m.rcpt_tos) == 1 for m in smtp.messages)
    assert set(by_rcpt) == {m["email"].lower() for m in everyone}
    for member in everyone:
        received = by_rcpt[member["email"].lower()]
        assert received.mail_from == "news@example.org"
        check_message(received.message, member, everyone, public_url="https://news.example.org")
    assert len({m.message["Message-ID"] for m in smtp.messages}) == len(everyone)
    assert f"sent {len(everyone)} of {len(everyone)}" in out
    # Run twice: the ledger says everyone has it, nothing more goes out.
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 0, err
    assert len(smtp.messages) == len(everyone)
    assert "sent 0 of" in out


def test_outbox_is_the_default_and_says_where(group: Path, run: CliRunner) -> None:
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 0, err
    folder = group / "outbox" / "2026-12-08_week-before"
    assert str(folder) in out
    files = sorted(folder.glob("*.eml"))
    everyone = members(group)
    assert len(files) == len(everyone)
    seen = set()
    for path in files:
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        to = msg["To"].addresses[0].addr_spec.lower()
        seen.add(to)
        member = next(m for m in everyone if m["email"].lower() == to)
        check_message(msg, member, everyone, public_url=None)
        assert path.name.lower().endswith(f"-{member['email'].lower()}.eml")  # row and address: whose it is
    assert seen == {m["email"].lower() for m in everyone}


def test_test_send_goes_to_one_address_only_and_is_not_recorded(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "send", "--to", "margaret@example.org", "--at", BEFORE_FIRST)
    assert code == 0, err
    assert [m.rcpt_tos for m in smtp.messages] == [["margaret@example.org"]]
    assert "Dear Margaret," in parts(smtp.messages[0].message)[0]
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)  # the real mailing still goes to everyone
    assert code == 0, err
    assert len(smtp.messages) == 1 + len(members(group))


def test_dry_run_sends_nothing(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "send", "--dry-run", "--at", BEFORE_FIRST)
    assert code == 0, err
    assert "nothing was sent" in out
    assert smtp.messages == []
    assert not (group / "outbox").exists()


def test_send_picks_named_meeting_and_reminder(group: Path, run: CliRunner) -> None:
    code, out, err = run(
        group, "send", "--meeting", "2027-02-09", "--reminder", "day-before", "--at", BEFORE_FIRST
    )
    assert code == 0, err
    assert len(list((group / "outbox" / "2027-02-09_day-before").glob("*.eml"))) == len(members(group))


@pytest.mark.parametrize(
    "args", [["--meeting", "2027-02-30"], ["--meeting", "2027-02-10"], ["--reminder", "fortnight"]]
)
def test_send_bad_arguments_are_usage_errors(group: Path, run: CliRunner, args: list[str]) -> None:
    code, out, err = run(group, "send", *args, "--at", BEFORE_FIRST)
    assert code == 2
    assert not (group / "outbox").exists()


def test_preview_writes_the_html_and_text(group: Path, run: CliRunner, tmp_path: Path) -> None:
    code, out, err = run(group, "preview", "--out", str(tmp_path / "p.html"), "--at", BEFORE_FIRST)
    assert code == 0, err
    html = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert "Copper River Grill" in html and 'style="' in html
    code, out, err = run(group, "preview", "--text", "--at", BEFORE_FIRST)
    assert code == 0, err
    assert "Copper River Grill" in out and "<p" not in out
    code, out, err = run(group, "preview", "--out", str(tmp_path / "p.eml"), "--at", BEFORE_FIRST)
    assert code == 0
    assert message_from_bytes((tmp_path / "p.eml").read_bytes())["Subject"]
    assert not (group / "outbox").exists()


def test_check_passes_on_the_sample(sample: Path, run: CliRunner) -> None:
    code, out, err = run(sample, "check")
    assert code == 0, err
    assert "All good (" in out and "placeholder: true" in out  # the sample's example venue is flagged


def test_upcoming_lists_reminders(group: Path, run: CliRunner) -> None:
    code, out, err = run(group, "upcoming", "--at", BEFORE_FIRST)
    assert code == 0, err
    assert "Planning dinner" in out and "week-before" in out and "pending" in out
    run(group, "send", "--at", BEFORE_FIRST)  # a try-out in the outbox: counts for nothing
    code, out, err = run(group, "upcoming", "--at", BEFORE_FIRST)
    assert f"due now (tried out in the outbox: {len(members(group))})" in out


def test_accented_domain_is_sent_in_ascii_form_and_accented_name_before_at_is_refused(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    csv_path = group / "subscribers.csv"
    csv_path.write_text(
        csv_path.read_text(encoding="utf-8") + "ann@exämple.org,Ann,2026-01-01\n", encoding="utf-8"
    )
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 0, err
    assert ["ann@xn--exmple-cua.org"] in [m.rcpt_tos for m in smtp.messages]
    csv_path.write_text(
        csv_path.read_text(encoding="utf-8") + "zoë@example.org,Zoë,2026-01-01\n", encoding="utf-8"
    )
    code, out, err = run(group, "send", "--at", "2026-12-07T09:05")  # the day-before reminder
    assert code == 0 and "left out: subscribers.csv:8:" in err and "zoë@" not in err
    assert not [m for m in smtp.messages if m.rcpt_tos[0].startswith("zoë")]
