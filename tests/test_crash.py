"""Exactly once, for real: `kill -9` mid-mailing (from outside at any moment, and from inside at each step
of a batch: after a claim, after a result's journal line, after a fold's commit), two ticks at once,
and the daemon's catch-up and SIGTERM."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from newsletter.state.ledger import Ledger

from .smtpd import Recorder, Server

DUE = "2026-12-01T09:05"
CONNECTIONS = 4


def big_list(group: Path, n: int = 100) -> list[str]:
    addresses = [f"member{i:03d}@example.org" for i in range(n)]
    rows = "".join(f"{a},Member {i}\n" for i, a in enumerate(addresses))
    (group / "subscribers.csv").write_text("email,name\n" + rows, encoding="utf-8")
    return addresses


def slow(delay: float) -> Recorder:
    async def hook(rec: Recorder, server: Any, env: Any) -> None:
        await asyncio.sleep(delay)

    return Recorder(data_hook=hook)


def newsletter(
    group: Path, smtp: Server, *args: str, prefix: Sequence[str] = ("-m", "newsletter"), **env_vars: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "NEWSLETTER_"))}
    env.update(SMTP_URL=smtp.url, SMTP_CONNECTIONS=str(CONNECTIONS), **env_vars)
    return subprocess.Popen(
        [sys.executable, *prefix, "--dir", str(group), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


#: `newsletter ARGS…` that kills itself (SIGKILL, as `kill -9`) right after the COUNT-th time it passes
#: POINT: "claim" (a chunk's claim committed, nothing of it sent), "line" (a result appended to the
#: journal, before its connection takes the next message) or "fold" (a fold committed, before the
#: journal starts again).  Folds come every 10 results here, so a mailing of 100 has several.
KILLED_AT = """
import os, runpy, signal, sys
from newsletter.state import deliveries, journal, recorder
point, count = sys.argv[1], int(sys.argv[2])
recorder.FOLD_EVERY = 10
owner, name = {
    "claim": (deliveries.DeliveryTables, "claim"),
    "fold": (deliveries.DeliveryTables, "fold"),
    "line": (journal.Journal, "append"),
}[point]
real, passed = getattr(owner, name), [0]
def step(*args, **kwargs):
    out = real(*args, **kwargs)
    passed[0] += 1
    if passed[0] == count:
        os.kill(os.getpid(), signal.SIGKILL)
    return out
setattr(owner, name, step)
sys.argv = ["newsletter", *sys.argv[3:]]
runpy.run_module("newsletter", run_name="__main__", alter_sys=True)
"""


def killed_at(group: Path, smtp: Server, point: str, count: int, *args: str) -> subprocess.Popen[bytes]:
    return newsletter(group, smtp, *args, prefix=["-c", KILLED_AT, point, str(count)])


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.mark.parametrize("kill_after", [1, 30, 70, 99])
def test_kill_9_mid_mailing_then_tick_again(kill_after: int, group: Path) -> None:
    addresses = big_list(group)
    with Server(slow(0.02)) as smtp:
        first = newsletter(group, smtp, "tick", "--at", DUE)
        wait_for(lambda: len(smtp.messages) >= kill_after or first.poll() is not None)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        before = len(smtp.messages)
        again = newsletter(group, smtp, "tick", "--at", DUE)
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err.decode()
        received = Counter(m.rcpt_tos[0] for m in smtp.messages)
        assert set(received) == set(addresses)  # nobody skipped
        twice = {a for a, n in received.items() if n > 1}
        assert len(twice) <= CONNECTIONS  # only what was in flight at the kill
        for address in twice:  # and a duplicate is the same message
            ids = {m.message["Message-ID"] for m in smtp.messages if m.rcpt_tos[0] == address}
            assert len(ids) == 1
        assert before <= len(smtp.messages)
        third = newsletter(group, smtp, "tick", "--at", DUE)  # and nothing more afterwards
        third.communicate(timeout=60)
        assert sum(Counter(m.rcpt_tos[0] for m in smtp.messages).values()) == len(smtp.messages)
        assert len(smtp.messages) == sum(received.values())


def check_exactly_once(group: Path, smtp: Server, addresses: list[str]) -> None:
    """Nobody skipped; twice only what was in flight, as the same message; each counted once."""
    received = Counter(m.rcpt_tos[0] for m in smtp.messages)
    assert set(received) == set(addresses)
    twice = {a for a, n in received.items() if n > 1}
    assert max(received.values()) <= 2 and len(twice) <= CONNECTIONS
    for address in twice:
        assert len({m.message["Message-ID"] for m in smtp.messages if m.rcpt_tos[0] == address}) == 1
    with Ledger(group / ".newsletter" / "state.sqlite3") as ledger:
        (campaign,) = [c.id for c in ledger.campaigns()]
        assert ledger.counts(campaign) == {"sent": len(addresses)}
        ids = {d.address: d.message_id for d in ledger.deliveries(campaign)}
        assert ids == {m.rcpt_tos[0]: m.message["Message-ID"] for m in smtp.messages}  # bounces find them
        # The day's budget counts each member once, whatever was folded twice or not at all.
        (counted,) = ledger.db.execute("SELECT sum(count) FROM send_counts").fetchone()
        assert counted == len(addresses)
        assert set(ledger.told("2026-12-08")) == set(addresses)  # what each was told, for change notices
    assert not (group / ".newsletter" / "state.sqlite3-outcomes").exists()  # all folded


@pytest.mark.parametrize(
    "point, count",
    [("claim", 1), ("line", 1), ("line", 37), ("line", 100), ("fold", 1), ("fold", 4)],
)
def test_kill_9_at_each_step_of_a_batch_then_tick_again(point: str, count: int, group: Path) -> None:
    addresses = big_list(group)
    with Server(slow(0.01)) as smtp:
        first = killed_at(group, smtp, point, count, "tick", "--at", DUE)
        first.communicate(timeout=60)
        assert first.returncode == -signal.SIGKILL
        if point == "claim":  # nothing sent yet, and each row already names the Message-ID to come
            assert smtp.messages == []
            with Ledger(group / ".newsletter" / "state.sqlite3") as ledger:
                rows = [d for c in ledger.campaigns() for d in ledger.deliveries(c.id)]
                assert {d.status for d in rows} == {"sending"} and len(rows) == len(addresses)
                claimed = {d.address: d.message_id for d in rows}
        again = newsletter(group, smtp, "tick", "--at", DUE)
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err.decode()
        check_exactly_once(group, smtp, addresses)
        if point == "claim":
            assert claimed == {m.rcpt_tos[0]: m.message["Message-ID"] for m in smtp.messages}


def test_kill_9_while_folding_what_a_killed_send_left(group: Path) -> None:
    addresses = big_list(group)
    with Server(slow(0.01)) as smtp:
        first = killed_at(group, smtp, "line", 50, "tick", "--at", DUE)  # 50 results in the journal
        first.communicate(timeout=60)
        # The next run folds them first, and is killed right after that fold's commit.
        second = killed_at(group, smtp, "fold", 1, "tick", "--at", DUE)
        second.communicate(timeout=60)
        assert second.returncode == -signal.SIGKILL
        third = newsletter(group, smtp, "tick", "--at", DUE)
        out, err = third.communicate(timeout=60)
        assert third.returncode == 0, err.decode()
        check_exactly_once(group, smtp, addresses)


def test_the_daily_cap_holds_across_a_kill_9(group: Path) -> None:
    addresses = big_list(group)
    with Server(slow(0.01)) as smtp:
        cap = {"SMTP_RATE_LIMIT": "40/day"}
        first = newsletter(group, smtp, "tick", "--at", DUE, prefix=["-c", KILLED_AT, "line", "30"], **cap)
        first.communicate(timeout=60)
        assert first.returncode == -signal.SIGKILL
        again = newsletter(group, smtp, "tick", "--at", DUE, **cap)
        again.communicate(timeout=60)
        received = Counter(m.rcpt_tos[0] for m in smtp.messages)
        # 40 recorded in all; at most the messages in flight at the kill went out besides.
        assert 40 <= len(received) <= 40 + CONNECTIONS and len(smtp.messages) <= 40 + CONNECTIONS
        with Ledger(group / ".newsletter" / "state.sqlite3") as ledger:
            (counted,) = ledger.db.execute("SELECT sum(count) FROM send_counts").fetchone()
            assert counted == 40
        assert set(received) <= set(addresses)


def test_two_ticks_at_once_deliver_each_member_once(group: Path) -> None:
    addresses = big_list(group)
    with Server(slow(0.005)) as smtp:
        ticks = [newsletter(group, smtp, "tick", "--at", DUE) for _ in range(2)]
        results = [t.communicate(timeout=60) for t in ticks]
        assert [t.returncode for t in ticks] == [0, 0], results
        received = Counter(m.rcpt_tos[0] for m in smtp.messages)
        assert set(received) == set(addresses)
        assert max(received.values()) == 1
        assert any(b"another newsletter send or tick is running" in out for out, _ in results)


def test_daemon_catches_up_on_start_and_stops_cleanly_on_sigterm(group: Path) -> None:
    # A meeting three days from now: its week-before reminder fell due four days ago, while "down".
    meeting = dt.date.today() + dt.timedelta(days=3)
    schedule = (group / "schedule.yaml").read_text(encoding="utf-8")
    start = schedule.index("meetings:")
    schedule = schedule[:start] + (
        "meetings:\n  dates:\n"
        f"    - {{date: {meeting.isoformat()}, time: '23:30', title: Catch-up meeting,"
        " venue: {name: Room 1}}\n"
    )
    (group / "schedule.yaml").write_text(schedule, encoding="utf-8")
    with Server(Recorder()) as smtp:
        daemon = newsletter(group, smtp, "run", "--poll", "0.2")
        try:
            wait_for(lambda: len(smtp.messages) >= 5 or daemon.poll() is not None)
            assert daemon.poll() is None, daemon.communicate()
            # A bad edit is reported and the last good schedule kept: the daemon keeps running.
            (group / "schedule.yaml").write_text(schedule + "  oops: [\n", encoding="utf-8")
            time.sleep(0.5)
            assert daemon.poll() is None
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=20)
        finally:
            if daemon.poll() is None:
                daemon.kill()
        assert daemon.returncode == 0, err.decode()
        assert len(smtp.messages) == 5
        assert {m.message["Subject"].split(":")[0] for m in smtp.messages} == {"Reminder"}
        log = err.decode()
        assert "week-before: sent 5 now" in log
        assert "keeping the last good schedule" in log
        assert "daemon stopped" in log
        assert "@example.org" not in log
