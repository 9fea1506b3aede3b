"""Cron and the daemon never fail silently: when a mailing is blocked the organisers get one mail
naming the file and line, no second one for the same problem, a last warning before the window
closes, and an all-clear once it is fixed. Real SMTP on 127.0.0.1, the clock passed in with --at."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import CliRunner
from .smtpd import Received, Server

DUE = "2026-12-01T09:05"
ORGANISERS = {"margaret@example.org", "vonnie@example.org"}


def to_organisers(smtp: Server) -> list[Received]:
    return [m for m in smtp.messages if m.rcpt_tos[0] in ORGANISERS]


def to_members(smtp: Server) -> list[Received]:
    return [m for m in smtp.messages if m.rcpt_tos[0] not in ORGANISERS]


def body(received: Received) -> str:
    part = received.message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_broken_template_blocks_the_mailing_and_tells_the_organisers_once_then_all_clear(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    template = group / "templates" / "reminder.html"
    good = template.read_text(encoding="utf-8")
    template.write_text(good.replace("{{ reminder.when_text }}", "{{ reminder.when_txt }}"), encoding="utf-8")

    code, out, err = run(group, "tick", "--at", DUE)
    assert code == 3, err
    assert "blocked" in out and to_members(smtp) == []
    told = to_organisers(smtp)
    assert sorted(m.rcpt_tos[0] for m in told) == sorted(ORGANISERS)
    assert "templates/reminder.html:" in body(told[0]) and "when_txt" in body(told[0])
    assert "@example.org" not in body(told[0]).replace("margaret@example.org", "")

    run(group, "tick", "--at", "2026-12-01T09:20")  # the same problem: no second mail
    assert len(to_organisers(smtp)) == 2

    template.write_text(good, encoding="utf-8")
    code, out, err = run(group, "tick", "--at", "2026-12-01T09:35")
    assert code == 0, err
    assert len(to_members(smtp)) == 5
    clear = to_organisers(smtp)[2:]
    assert len(clear) == 2 and all("all clear" in str(m.message["Subject"]) for m in clear)


def test_a_blocked_reminder_gets_a_last_warning_before_its_window_closes(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    template = group / "templates" / "reminder.txt"
    template.write_text(template.read_text(encoding="utf-8") + "{% if %}\n", encoding="utf-8")
    run(group, "tick", "--at", "2026-12-07T09:05")  # the day-before reminder falls due, blocked
    first = len(to_organisers(smtp))
    assert first >= 2
    run(group, "tick", "--at", "2026-12-08T16:00")  # two hours before the meeting: last call
    last = [m for m in to_organisers(smtp)[first:] if "Last warning" in str(m.message["Subject"])]
    assert len(last) == 2 and "Tue 2026-12-08 18:00 EST" in body(last[0])
    run(group, "tick", "--at", "2026-12-08T17:00")
    assert not [m for m in to_organisers(smtp)[first + 2 :] if "Last warning" in str(m.message["Subject"])]
    assert to_members(smtp) == []


def test_a_schedule_broken_after_a_good_run_is_reported_to_the_last_known_organisers(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    assert run(group, "tick", "--at", DUE)[0] == 0
    assert len(to_members(smtp)) == 5
    schedule = group / "schedule.yaml"
    good = schedule.read_text(encoding="utf-8")
    schedule.write_text(good + "  oops: [\n", encoding="utf-8")
    code, out, err = run(group, "tick", "--at", "2026-12-01T10:00")
    assert code == 1 and "schedule.yaml:" in err
    told = to_organisers(smtp)
    assert len(told) == 2 and "schedule.yaml:" in body(told[0])
    run(group, "tick", "--at", "2026-12-01T10:15")
    assert len(to_organisers(smtp)) == 2  # once per problem, not every tick
    schedule.write_text(good, encoding="utf-8")
    assert run(group, "tick", "--at", "2026-12-01T10:30")[0] == 0
    clear = to_organisers(smtp)[2:]
    assert len(clear) == 2 and "all clear" in str(clear[0].message["Subject"])


def test_status_keeps_why_a_run_stopped_without_the_password(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A relay that answers every connection with 421 at the greeting (a real TCP server on 127.0.0.1).
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def refuse() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(b"421 4.3.2 mail.example.org too busy, come back later\r\n")
            conn.close()

    threading.Thread(target=refuse, daemon=True).start()
    try:
        monkeypatch.setenv("SMTP_URL", f"smtp://margaret:S3cretPass@127.0.0.1:{port}")
        code, out, err = run(group, "tick", "--at", DUE)
        assert code == 3
        code, out, err = run(group, "status")
        assert "last run stopped" in out and "421" in out and "too busy" in out
        assert "S3cretPass" not in out + err
        code, out, err = run(group, "status", "2026-12-08/week-before")
        assert "421" in out and "S3cretPass" not in out
    finally:
        listener.close()
