"""Exactly once, for real: `kill -9` mid-mailing, two ticks at once, and the daemon's catch-up and SIGTERM."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

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


def newsletter(group: Path, smtp: Server, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "NEWSLETTER_"))}
    env.update(SMTP_URL=smtp.url, SMTP_CONNECTIONS=str(CONNECTIONS))
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--dir", str(group), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


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
