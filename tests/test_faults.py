"""SMTP faults, per member, against a real aiosmtpd: the ledger, `status`, and the exit code."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from newsletter.state.ledger import Ledger

from .conftest import CliRunner
from .smtpd import Recorder, Server

DUE = "2026-12-01T09:05"  # the sample's first reminder is due
LATER = "2026-12-01T11:00"  # past any backoff, still inside the week-before window
CAMPAIGN = "2026-12-08/week-before"
VICTIM = "linda.harper@example.org"


def statuses(group: Path) -> dict[str, tuple[str, int | None, str | None]]:
    with Ledger(group / ".newsletter" / "state.sqlite3") as ledger:
        return {d.address: (d.status, d.code, d.reply) for d in ledger.deliveries(CAMPAIGN)}


def only(address: str, reply: str, times: int = 1_000) -> Callable[[str], str | None]:
    left = [times]

    def hook(rcpt: str) -> str | None:
        if rcpt.lower() == address and left[0] > 0:
            left[0] -= 1
            return reply
        return None

    return hook


@pytest.mark.parametrize(
    "reply",
    [
        "421 4.3.2 Service shutting down",
        "450 4.2.1 Mailbox busy",
        "451 4.3.0 Local error",
        "452 4.2.2 Mailbox full",
        "552 5.2.2 Mailbox over quota",
    ],
)
def test_temporary_refusal_defers_that_member_only_and_is_retried(
    reply: str, group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Server(Recorder(rcpt_hook=only(VICTIM, reply, times=1))) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        code, out, err = run(group, "tick", "--at", DUE)
        assert code == 3, err
        assert "1 member(s) deferred or failed" in err
        state = statuses(group)
        assert state[VICTIM][:2] == ("deferred", int(reply[:3]))
        assert sum(s == "sent" for s, _, _ in state.values()) == 4
        assert len(smtp.messages) == 4
        code, out, err = run(group, "status", CAMPAIGN)
        assert f"deferred   {VICTIM}" in out and "next try" in out and reply[:3] in out
        code, out, err = run(group, "tick", "--at", DUE)  # too early for the retry: nothing happens
        assert code == 3 and len(smtp.messages) == 4
        code, out, err = run(group, "tick", "--at", LATER)
        assert code == 0, err
        assert statuses(group)[VICTIM][0] == "sent"
        assert len(smtp.messages) == 5


@pytest.mark.parametrize(
    ("where", "reply"),
    [
        ("rcpt", "550 5.1.1 <linda.harper@example.org>: no such user"),
        ("data", "554 5.7.1 Message rejected as spam"),
    ],
)
def test_permanent_refusal_fails_once_with_the_servers_text(
    where: str, reply: str, group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder()
    if where == "rcpt":
        recorder.rcpt_hook = only(VICTIM, reply)
    else:
        recorder.data_hook = lambda rec, server, env: reply if env.rcpt_tos[0].lower() == VICTIM else None
    with Server(recorder) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        code, out, err = run(group, "tick", "--at", DUE)
        assert code == 3
        assert VICTIM not in err + out  # addresses stay out of the log
        status, code_, text = statuses(group)[VICTIM]
        assert status == "failed" and code_ == int(reply[:3]) and reply[4:] in (text or "")
        assert len(smtp.messages) == 4
        code, out, err = run(group, "status", CAMPAIGN)
        assert f"failed     {VICTIM}" in out and reply[4:] in out
        code, out, err = run(group, "tick", "--at", LATER)  # failed is final: never retried
        assert len(smtp.messages) == 4 and statuses(group)[VICTIM][0] == "failed"


def test_connection_dropped_before_data_is_reopened_and_the_run_goes_on(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Server(Recorder(rcpt_hook=only(VICTIM, "DROP", times=1))) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        code, out, err = run(group, "tick", "--at", DUE)
        assert code == 0, err
        assert len(smtp.messages) == 5
        assert {s for s, _, _ in statuses(group).values()} == {"sent"}


def test_drop_after_data_is_recorded_as_ambiguous_then_resent(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropped: list[bytes] = []

    def hook(rec: Recorder, server: Any, env: Any) -> str | None:
        if env.rcpt_tos[0].lower() == VICTIM and not dropped:
            dropped.append(env.original_content)  # the server had the message when the line died
            return "DROP"
        return None

    with Server(Recorder(data_hook=hook)) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        code, out, err = run(group, "tick", "--at", DUE)
        assert code == 3
        assert statuses(group)[VICTIM][0] == "ambiguous"
        code, out, err = run(group, "status", CAMPAIGN)
        assert f"ambiguous  {VICTIM}" in out
        code, out, err = run(group, "tick", "--at", LATER)
        assert code == 0
        assert statuses(group)[VICTIM][0] == "sent"
        assert len(smtp.messages) == 5


def test_stalled_server_times_out_and_the_others_still_go(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stall(rec: Recorder, server: Any, env: Any) -> str | None:
        if env.rcpt_tos[0].lower() == VICTIM:
            await asyncio.sleep(2.5)
            return "451 too late"
        return None

    with Server(Recorder(data_hook=stall)) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        monkeypatch.setenv("SMTP_TIMEOUT", "1")
        code, out, err = run(group, "tick", "--at", DUE)
        assert code == 3
        assert statuses(group)[VICTIM][0] == "ambiguous"
        assert len(smtp.messages) == 4


def test_relay_down_stops_with_exit_3_and_resumes_later(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Server(Recorder()) as smtp:
        port = smtp.port
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{port}")  # nobody listens there now
    code, out, err = run(group, "tick", "--at", DUE)
    assert code == 3 and "cannot connect" in err
    with Server(Recorder()) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        code, out, err = run(group, "tick", "--at", DUE)
        assert code == 0, err
        assert len(smtp.messages) == 5


def test_window_closing_with_members_left_tells_the_organisers(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Server(Recorder(rcpt_hook=only(VICTIM, "451 4.3.0 try later"))) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        run(group, "tick", "--at", DUE)
        code, out, err = run(group, "tick", "--at", "2026-12-07T09:01")  # the day-before is due: week closed
        organisers = [
            m
            for m in smtp.messages
            if m.rcpt_tos[0] in {"margaret@example.org", "vonnie@example.org"}
            and "who is coming" not in str(m.message["Subject"])  # the dinner's answers: another mail
        ]
        assert len(organisers) == 2
        body = organisers[0].message.get_body(("plain",))
        assert body is not None and "1 member(s) not reached" in body.get_content()
        assert VICTIM not in organisers[0].data.decode()
        code, out, err = run(group, "status")
        assert "2026-12-08/week-before" in out and "closed" in out
        code, out, err = run(group, "upcoming", "--at", "2026-12-07T09:01")
        assert "week-before" in out


def test_missed_window_is_recorded_as_skipped_with_the_reason(group: Path, run: CliRunner) -> None:
    code, out, err = run(group, "tick", "--at", "2026-12-07T10:00")  # off for the whole week-before window
    assert "2026-12-08/week-before: skipped" in out
    assert not list((group / "outbox").glob("2026-12-08_week-before/*"))
    assert len(list((group / "outbox").glob("2026-12-08_day-before/*.eml"))) == 5
    code, out, err = run(group, "upcoming", "--at", "2026-12-07T10:00")
    assert "skipped: not sent: its window closed" in out


def test_a_member_added_while_the_reminder_is_due_gets_it_at_the_next_tick(
    group: Path, run: CliRunner, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    run(group, "tick", "--at", DUE)
    assert len(smtp.messages) == 5
    code, out, err = run(group, "tick", "--at", LATER)  # the list did not change: nothing
    assert code == 0 and len(smtp.messages) == 5 and "Nothing due now; next: " in out
    code, out, err = run(group, "subscribers", "add", "newcomer@example.org", "--name", "New Member")
    assert code == 0, err
    code, out, err = run(group, "tick", "--at", LATER)
    assert code == 0, err
    assert [m.rcpt_tos for m in smtp.messages[5:]] == [["newcomer@example.org"]]
    assert "Reminder: Planning dinner next week" in smtp.messages[5].message["Subject"]
    run(group, "tick", "--at", LATER)
    assert len(smtp.messages) == 6


def test_a_bad_row_past_the_first_chunk_is_left_out_and_everyone_else_is_mailed(
    group: Path, run: CliRunner, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    csv_path = group / "subscribers.csv"
    # Past the first chunk the send reads (500 rows): the row is left out whenever it is met.
    many = "".join(f"m{i}@example.org,M {i},\n" for i in range(600))
    csv_path.write_text(
        csv_path.read_text(encoding="utf-8") + many + "not-an-address,Broken\n", encoding="utf-8"
    )
    code, out, err = run(group, "tick", "--at", DUE)
    assert code == 0, err
    members = [
        m for m in smtp.messages if m.rcpt_tos[0] not in {"margaret@example.org", "vonnie@example.org"}
    ]
    assert len(members) == 605
    told = [m for m in smtp.messages if m.rcpt_tos[0] == "margaret@example.org"]
    assert len(told) == 1 and "subscribers.csv:607:" in str(told[0].message.get_body(("plain",)))
