"""A no-op `tick` (what cron runs every few minutes) loads only what it needs, and still does all it owes.

The time it takes is a figure of `bench/startup.py`, not a test; here, what it loads and what it does.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.state.ledger import Ledger

from .conftest import CliRunner
from .smtpd import Server

IDLE = "2026-11-20T10:00"  # before the sample's first reminder (2026-12-01 09:00): nothing is due
LINDA = "linda.harper@example.org"  # line 2 of the sample's subscribers.csv

# Run in a fresh interpreter: this one has loaded everything already.
PROBE = """
import sys
from newsletter.cli.main import main

code = main(["--dir", sys.argv[1], "tick", "--at", sys.argv[2]])
heavy = sys.argv[3].split()
print(code, " ".join(sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))))
"""
#: Rendering, MIME, signing, scheduling, SMTP, `.env` reading and the bounce machinery: none of it is
#: needed when nothing is due, no bounce mailbox is set and nothing about bounces is left to tell.
HEAVY = (
    "jinja2 premailer lxml cssutils markdown icalendar dkim aiosmtplib apscheduler dotenv "
    "newsletter.compose newsletter.bounces newsletter.send.loop newsletter.send.transports"
)


def probe(group: Path) -> str:
    found = subprocess.run(
        [sys.executable, "-c", PROBE, str(group), IDLE, HEAVY], capture_output=True, text=True, check=True
    )
    *said, loaded = found.stdout.strip().splitlines()
    assert len(said) == 1 and "Nothing due now; next: 2026-12-08/week-before" in said[0]
    return loaded


def test_a_noop_tick_loads_no_rendering_sending_or_bounce_machinery(sample: Path) -> None:
    assert probe(sample) == "0"  # the first run makes the ledger
    assert (sample / ".newsletter" / "state.sqlite3").is_file()
    assert probe(sample) == "0"
    (sample / ".env").write_text("SMTP_TIMEOUT=20\n", encoding="utf-8")
    assert probe(sample) == "0 dotenv dotenv.main dotenv.parser dotenv.variables"  # a file to read


def test_a_noop_tick_still_tells_the_organisers_of_a_member_now_bouncing(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no bounce mailbox, what a refusal at send time recorded is still told on the next tick."""
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "tick", "--at", IDLE)
    assert (code, smtp.messages) == (0, []) and "Nothing due now" in out, err
    with Ledger(group / ".newsletter" / "state.sqlite3") as ledger:
        for day in (16, 17, 18):
            at = dt.datetime(2026, 11, day, 15, 0, tzinfo=dt.UTC)
            ledger.record_bounce(LINDA, kind="hard", report_id=f"r{day}", at=at, reason="no such user")
        assert [a.address for a in ledger.unannounced()] == [LINDA]
    code, out, err = run(group, "tick", "--at", IDLE)
    assert code == 0, err
    assert "bounces:" in out and "Nothing due now" not in out
    told = [m for m in smtp.messages if m.rcpt_tos[0] == "margaret@example.org"]
    assert len(told) == 1
    body = str(told[0].message.get_body(("plain",)))
    assert "line 2 of subscribers.csv" in body and LINDA not in body
    with Ledger(group / ".newsletter" / "state.sqlite3") as ledger:
        assert ledger.unannounced() == []
    code, out, err = run(group, "tick", "--at", IDLE)  # told once
    assert code == 0 and "Nothing due now" in out, err
    assert len([m for m in smtp.messages if m.rcpt_tos[0] == "margaret@example.org"]) == 1
