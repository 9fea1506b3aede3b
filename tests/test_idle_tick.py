"""The idle note: a `tick` with nothing to do answers from the last full tick's note, and every change a
tick must act on — an edit, a newcomer, another command's write, the time — retires the note first.

(The `run` fixture goes through the same entry point as the installed command, so every other test's
ticks take the note too, whenever it holds.)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsletter.state import idle
from newsletter.state.idle import NAME, IdleNote
from newsletter.state.ledger import Ledger

from .conftest import CliRunner
from .smtpd import Server

IDLE = "2026-11-20T10:00"  # before the sample's first reminder (2026-12-01 09:00): nothing is due
LINDA = "linda.harper@example.org"  # line 2 of the sample's subscribers.csv
NOTHING = "Nothing due now; next: 2026-12-08/week-before, due Tue 2026-12-01 09:00 EST."
EXTRA = """    - date: 2026-11-24
      weekday: Tuesday
      title: Extra meeting
      time: "18:00"
"""

PROBE = """
import sys
from newsletter.cli.entry import main

code = main(["--dir", sys.argv[1], "tick", "--at", sys.argv[2]])
loaded = ("click", "ruamel.yaml", "sqlite3", "newsletter.jobs", "dotenv")
print(code, " ".join(sorted(m for m in loaded if m in sys.modules)))
"""


def note(home: Path) -> Path:
    return home / ".newsletter" / NAME


def idle_ticks(run: CliRunner, home: Path, at: str = IDLE) -> None:
    """Two ticks with nothing to do: the first may make the ledger, the second leaves the note."""
    for _ in range(2):
        code, out, err = run(home, "tick", "--at", at)
        assert code == 0 and "Nothing due now" in out, err
    assert note(home).is_file()


def probe(home: Path, at: str = IDLE) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(home), at], capture_output=True, text=True, check=True
    )
    said, loaded = done.stdout.strip().splitlines()
    return said, loaded


def test_the_third_idle_tick_answers_from_the_note_without_loading_the_program(sample: Path) -> None:
    (sample / ".env").write_text("SMTP_TIMEOUT=20\n", encoding="utf-8")  # read as bytes, not parsed
    everything = "0 click dotenv newsletter.jobs ruamel.yaml sqlite3"
    assert probe(sample)[1] == everything  # makes the ledger
    assert not note(sample).exists()  # that tick wrote the ledger: no note yet
    first = probe(sample)
    assert first[1] == everything and note(sample).is_file()
    again = probe(sample)
    assert again[1] == "0"  # nothing of the program but the note's reader
    assert first[0].endswith(NOTHING) and again[0].endswith(NOTHING)  # the same line, freshly stamped
    assert (note(sample).stat().st_mode & 0o777) == 0o600


def test_the_note_holds_until_the_next_window_opens(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    idle_ticks(run, group, "2026-12-01T08:00")
    held = json.loads(note(group).read_text(encoding="utf-8"))
    assert (held["from"], held["until"]) == ("2026-12-01T08:00:00-05:00", "2026-12-01T09:00:00-05:00")
    answers = [IdleNote(group).answer(f"2026-12-01T{t}") for t in ("07:59", "08:00", "08:59", "09:00")]
    assert answers == [None, held["line"], held["line"], None]
    assert probe(group, "2026-12-01T08:59")[1] == "0"
    code, out, err = run(group, "tick", "--at", "2026-12-01T09:00")  # the week-before's window opens
    assert code == 0 and "2026-12-08/week-before: sent 5" in out, err
    assert len(smtp.messages) == 5


def test_an_edit_to_the_schedule_retires_the_note(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    idle_ticks(run, group)
    schedule = group / "schedule.yaml"
    text = schedule.read_text(encoding="utf-8")
    stat = schedule.stat()
    schedule.write_text(text.replace("  dates:\n", "  dates:\n" + EXTRA, 1), encoding="utf-8")
    os.utime(schedule, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with its old time put back
    code, out, err = run(group, "tick", "--at", IDLE)
    assert code == 0 and "2026-11-24/week-before: sent 5" in out, err


def test_a_newcomer_to_a_reminder_already_sent_retires_the_note(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "tick", "--at", "2026-12-01T09:05")
    assert code == 0 and len(smtp.messages) == 5, err
    idle_ticks(run, group, "2026-12-01T09:10")  # the window is open, and everyone has it
    with (group / "subscribers.csv").open("a", encoding="utf-8") as rows:
        rows.write("newcomer@example.org,Nora\n")
    code, out, err = run(group, "tick", "--at", "2026-12-01T09:15")
    assert code == 0, err
    assert [m.rcpt_tos for m in smtp.messages[5:]] == [["newcomer@example.org"]]


def test_another_commands_write_to_the_ledger_retires_the_note(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    idle_ticks(run, group)
    with Ledger(group / ".newsletter" / "state.sqlite3") as ledger:
        for day in (16, 17, 18):
            at = dt.datetime(2026, 11, day, 15, 0, tzinfo=dt.UTC)
            ledger.record_bounce(LINDA, kind="hard", report_id=f"r{day}", at=at, reason="no such user")
    code, out, err = run(group, "tick", "--at", IDLE)
    assert code == 0 and "bounces:" in out, err
    told = sorted(r for m in smtp.messages for r in m.rcpt_tos)
    assert told == ["margaret@example.org", "vonnie@example.org"]  # the organisers, about line 2


CHANGES = [".env", "environment", "schedule", "subscribers", "same-size-row", "ledger", "ledger-held-open"]
CHANGES += ["journal", "dkim", "secret", "program"]


@pytest.mark.parametrize("change", CHANGES)
def test_each_input_of_the_answer_is_in_the_digest(
    sample: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, change: str
) -> None:
    program = tmp_path / "program"
    shutil.copytree(Path(idle.__file__).parent.parent, program, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(idle, "_PACKAGE", program)
    (sample / "dkim.pem").write_text("key\n", encoding="utf-8")
    (sample / ".env").write_text("NEWSLETTER_DKIM_KEY=dkim.pem\n", encoding="utf-8")
    state = sample / ".newsletter" / "state.sqlite3"
    state.parent.mkdir()
    (state.parent / "secret").write_text("s" * 40, encoding="utf-8")
    with Ledger(state):
        pass
    held = sqlite3.connect(state)  # a console or daemon keeping the database open: writes stay in -wal
    held.execute("SELECT count(*) FROM meta").fetchall()
    before = IdleNote(sample).digest()
    (sample / "schedule.yaml").touch()  # a save without a change is no change
    assert IdleNote(sample).digest() == before
    if change == ".env":
        (sample / ".env").write_text("NEWSLETTER_DKIM_KEY=dkim.pem\nSMTP_TIMEOUT=20\n", encoding="utf-8")
    elif change == "environment":
        monkeypatch.setenv("SMTP_URL", "smtp://127.0.0.1:2525")
    elif change == "schedule":
        with (sample / "schedule.yaml").open("a", encoding="utf-8") as out:
            out.write("\n")
    elif change == "subscribers":
        with (sample / "subscribers.csv").open("a", encoding="utf-8") as out:
            out.write("newcomer@example.org,Nora\n")
    elif change == "same-size-row":  # one letter of one address: the same size, a new stamp
        text = (sample / "subscribers.csv").read_text(encoding="utf-8")
        (sample / "subscribers.csv").write_text(text.replace("linda", "lindb", 1), encoding="utf-8")
    elif change in ("ledger", "ledger-held-open"):
        if change == "ledger":
            held.close()
        with Ledger(state) as ledger:
            ledger.set_meta("test", "written")
    elif change == "journal":
        state.with_name(state.name + "-outcomes").write_bytes(b"newsletter-outcomes 1 ")
    elif change == "secret":
        (state.parent / "secret").write_text("t" * 40, encoding="utf-8")
    elif change == "program":
        with (program / "jobs.py").open("a", encoding="utf-8") as out:
            out.write("# an edit\n")
    else:
        (sample / "dkim.pem").write_text("other\n", encoding="utf-8")
    assert IdleNote(sample).digest() != before
    held.close()


def test_a_state_database_behind_a_symbolic_link_is_watched_where_sqlite_writes(
    sample: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = tmp_path / "var" / "state.sqlite3"
    real.parent.mkdir()
    with Ledger(real):
        pass
    (sample / ".newsletter").mkdir()
    (sample / ".newsletter" / "state.sqlite3").symlink_to(real)
    held = sqlite3.connect(real)
    held.execute("SELECT count(*) FROM meta").fetchall()
    before = IdleNote(sample).digest()
    with Ledger(sample / ".newsletter" / "state.sqlite3") as ledger:
        ledger.set_meta("test", "written")  # into var/state.sqlite3-wal, beside the real file
    assert IdleNote(sample).digest() != before
    held.close()


def test_a_state_folder_named_in_dotenv_keeps_the_note(sample: Path, tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    kept.mkdir()
    (sample / ".env").write_text(f"NEWSLETTER_STATE={kept / 'state.sqlite3'}\n", encoding="utf-8")
    said = [probe(sample) for _ in range(3)]
    assert said[-1][1] == "0 dotenv"  # `.env` read to find the folder, nothing else of the program
    assert all(line.endswith(NOTHING) for line, _ in said)
    assert (kept / NAME).is_file() and not note(sample).exists()


def test_a_stamp_in_whole_seconds_this_recent_leaves_no_note(sample: Path, run: CliRunner) -> None:
    """On a file system that keeps whole seconds, a write in the same second would leave the same
    stamp: the note waits until the stamps are older than that."""
    code, _, err = run(sample, "tick", "--at", IDLE)
    assert code == 0, err
    idle_note = IdleNote(sample)
    started = time.time_ns()
    whole = started // 1_000_000_000 * 1_000_000_000
    os.utime(sample / "subscribers.csv", ns=(whole, whole))
    before = idle_note.digest()
    moment = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
    kept = {"now": moment, "until": moment + dt.timedelta(hours=1), "tz": "UTC", "line": "x"}
    assert not idle_note.remember(before, started_ns=started, **kept)
    old = whole - 5_000_000_000
    os.utime(sample / "subscribers.csv", ns=(old, old))
    assert idle_note.remember(idle_note.digest(), started_ns=started, **kept)


def test_a_note_that_cannot_be_trusted_is_ignored(sample: Path, run: CliRunner) -> None:
    idle_ticks(run, sample)
    for text in ("{", '{"format": 0}', "[]", json.dumps({"format": 1, "digest": "x"})):
        note(sample).write_text(text, encoding="utf-8")
        assert probe(sample)[1] == "0 click newsletter.jobs ruamel.yaml sqlite3"  # the full tick
        assert json.loads(note(sample).read_text(encoding="utf-8"))["line"] == NOTHING  # rewritten


def test_a_group_reading_a_bounce_mailbox_never_skips_it(
    sample: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    box = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    monkeypatch.setenv("NEWSLETTER_BOUNCE_MAILBOX", str(box))
    monkeypatch.setenv("NEWSLETTER_BOUNCE_ADDRESS", "bounces@example.org")
    for _ in range(3):
        code, out, err = run(sample, "tick", "--at", IDLE)
        assert code == 0 and NOTHING in out, err
    assert not note(sample).exists()


def test_a_note_that_cannot_be_written_only_costs_the_note(sample: Path, run: CliRunner) -> None:
    code, _, err = run(sample, "tick", "--at", IDLE)
    assert code == 0, err
    (note(sample) / "in-the-way").mkdir(parents=True)  # a folder where the note would go
    for _ in range(3):
        code, out, err = run(sample, "tick", "--at", IDLE)
        assert code == 0 and NOTHING in out and not err, err
    assert not list(note(sample).parent.glob(f".{NAME}.*"))  # no half-written note left behind
