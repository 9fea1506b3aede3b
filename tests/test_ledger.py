"""The state database on real SQLite files: schema versions, upgrades in place, and the schema-2 columns."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from newsletter.errors import ConfigError
from newsletter.model import CampaignState, MailKind
from newsletter.model import DeliveryStatus as Status
from newsletter.state import migrations
from newsletter.state.journal import Header
from newsletter.state.ledger import Campaign, Claim, Delivery, Ledger, Result
from newsletter.state.members import token_hash
from newsletter.state.migrations import LATEST

from .conftest import CliRunner

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
CID = "2026-12-08/week-before"

#: The schema script of the release before schema versions, as it ran on every open (user_version
#: stayed 0).  A fixture of that release: keep it as it was.
OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY,
    meeting TEXT NOT NULL,
    reminder TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'reminder',
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'skipped', 'closed')),
    reason TEXT,
    details TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    campaign TEXT NOT NULL REFERENCES campaigns(id),
    address TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('pending', 'sending', 'sent', 'deferred', 'failed', 'ambiguous', 'suppressed', 'removed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    code INTEGER,
    reply TEXT,
    next_try TEXT,
    message_id TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (campaign, address)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_status ON deliveries (campaign, status);
CREATE TABLE IF NOT EXISTS suppressions (
    address TEXT PRIMARY KEY,
    since TEXT NOT NULL,
    source TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS send_counts (
    period TEXT PRIMARY KEY,
    count INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS told (
    meeting TEXT NOT NULL,
    address TEXT NOT NULL,
    details TEXT NOT NULL,
    campaign TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (meeting, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meetings (
    key TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    details TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
) WITHOUT ROWID;
"""
#: The tables that release created on first use (so a file of it may or may not have them).
OLD_SIGNUP_TABLES = """
CREATE TABLE IF NOT EXISTS signups (token_hash TEXT PRIMARY KEY, key TEXT NOT NULL,
    address TEXT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS signups_key ON signups (key);
CREATE TABLE IF NOT EXISTS resubscriptions (address TEXT NOT NULL, at TEXT NOT NULL, source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS resubscriptions_address ON resubscriptions (address);
"""
OLD_ROWS = """
INSERT INTO campaigns VALUES ('2026-12-08/week-before', '2026-12-08', 'week-before', 'reminder', 'done',
    NULL, NULL, '2026-12-01T14:00:00+00:00', '2026-12-01T14:05:00+00:00');
INSERT INTO deliveries VALUES ('2026-12-08/week-before', 'ann@example.org', 'sent', 1, 250, '2.0.0 Ok',
    NULL, '<a.b@example.org>', '2026-12-01T14:01:00+00:00');
INSERT INTO deliveries VALUES ('2026-12-08/week-before', 'bea@example.org', 'failed', 1, 550,
    '5.1.1 no such user', NULL, '<a.c@example.org>', '2026-12-01T14:01:00+00:00');
INSERT INTO suppressions VALUES ('cy@example.org', '2026-11-20T10:00:00+00:00', 'one-click');
INSERT INTO send_counts VALUES ('2026-12-01', 1);
INSERT INTO told VALUES ('2026-12-08', 'ann@example.org', '{"time": "18:00"}', '2026-12-08/week-before',
    '2026-12-01T14:01:00+00:00');
INSERT INTO meetings VALUES ('2026-12-08', 2, '{"time": "18:00"}');
INSERT INTO meta VALUES ('list:2026-12-08/week-before', 'abc');
"""


def old_release_file(path: Path, *, signup_tables: bool = False, rows: bool = True) -> Path:
    """A state file as the release before schema versions left it."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(OLD_SCHEMA + (OLD_SIGNUP_TABLES if signup_tables else "") + (OLD_ROWS if rows else ""))
    db.close()
    return path


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    finally:
        db.close()


def columns(path: Path, table: str) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")]
    finally:
        db.close()


def tables(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {str(r[0]) for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        db.close()


#: The tables of migrations 1–3 (later migrations, the console's and the members' answers', add more).
ALL_TABLES = {
    "campaigns", "deliveries", "suppressions", "send_counts", "told", "meetings", "meta", "signups",
    "resubscriptions", "unsubscribe_tokens", "bounce_reports", "bounce_scores", "bounce_reactivations",
}  # fmt: skip


# --- versions and upgrades -------------------------------------------------------------------------


def test_a_new_file_gets_the_latest_schema(tmp_path: Path) -> None:
    path = tmp_path / "state" / "state.sqlite3"
    with Ledger(path) as ledger:
        assert ledger.campaigns() == [] and ledger.suppressed() == {}
    assert user_version(path) == LATEST
    assert tables(path) >= ALL_TABLES
    assert columns(path, "deliveries")[-1] == "via" and columns(path, "campaigns")[-1] == "stopped"
    with Ledger(path):  # opening again changes nothing
        pass
    assert user_version(path) == LATEST and tables(path) >= ALL_TABLES


@pytest.mark.parametrize("signup_tables", [False, True], ids=["signups-never-used", "signups-used"])
def test_a_file_of_the_release_before_versions_is_upgraded_in_place_with_its_rows(
    tmp_path: Path, signup_tables: bool
) -> None:
    path = old_release_file(tmp_path / "state.sqlite3", signup_tables=signup_tables)
    assert user_version(path) == 0
    with Ledger(path) as ledger:
        (campaign,) = ledger.campaigns()
        assert campaign == Campaign(
            CID, "2026-12-08", "week-before", MailKind.REMINDER, CampaignState.DONE, None, None,
            "2026-12-01T14:00:00+00:00", "2026-12-01T14:05:00+00:00", stopped=None,
        )  # fmt: skip
        rows = {d.address: d for d in ledger.deliveries(CID)}
        ann, bea = rows["ann@example.org"], rows["bea@example.org"]
        assert (ann.address, ann.status, ann.code, ann.via) == ("ann@example.org", Status.SENT, 250, "relay")
        assert (bea.status, bea.reply, bea.via) == (Status.FAILED, "5.1.1 no such user", "relay")
        assert ledger.suppressed() == {"cy@example.org": ("2026-11-20T10:00:00+00:00", "one-click")}
        assert ledger.sent_on(dt.date(2026, 12, 1)) == 1
        assert ledger.told("2026-12-08") == {"ann@example.org": '{"time": "18:00"}'}
        assert ledger.sequence("2026-12-08", '{"time": "18:00"}') == 2
        assert ledger.get_meta(f"list:{CID}") == "abc"
        # The tables that came with schema 2, and the sign-up tables of the old release, all work.
        assert ledger.resubscribe("cy@example.org", source="add", now=NOW)
        assert ledger.add_signup("h", address="D@example.org", name="D", now=NOW, expired_before=NOW, most=3)
        ledger.remember_tokens([("t", "ann@example.org")])
        assert ledger.address_for_token("t") == "ann@example.org"
    assert user_version(path) == LATEST and tables(path) >= ALL_TABLES


def test_a_file_from_a_newer_release_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with Ledger(path) as ledger:
        ledger.suppress("ann@example.org", source="remove", now=NOW)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {LATEST + 1}")
    db.close()
    with pytest.raises(ConfigError) as caught:
        Ledger(path)
    message = str(caught.value)
    assert "written by a newer version of newsletter" in message
    assert "upgrade newsletter" in message and "keep the file" in message
    assert user_version(path) == LATEST + 1 and tables(path) >= ALL_TABLES


def test_the_commands_say_so_for_a_newer_file(group: Path, run: CliRunner) -> None:
    state = group / ".newsletter" / "state.sqlite3"
    state.parent.mkdir()
    Ledger(state).close()
    db = sqlite3.connect(state)
    db.execute(f"PRAGMA user_version = {LATEST + 5}")
    db.close()
    code, out, err = run(group, "status")
    assert code == 1 and "newer version of newsletter" in err and "Traceback" not in err


def test_a_database_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY)")
    db.close()
    with pytest.raises(ConfigError, match="not a newsletter state database"):
        Ledger(path)
    assert tables(path) == {"photos"} and user_version(path) == 0


def test_an_upgrade_that_fails_half_way_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = old_release_file(tmp_path / "state.sqlite3")
    broken = (*migrations.MIGRATIONS[:-1], (*migrations.MIGRATIONS[-1], "THIS IS NOT SQL"))
    monkeypatch.setattr(migrations, "MIGRATIONS", broken)
    with pytest.raises(ConfigError, match="cannot open the state database"):
        Ledger(path)
    assert user_version(path) == 0
    assert "via" not in columns(path, "deliveries") and "unsubscribe_tokens" not in tables(path)
    assert "signups" not in tables(path)  # migration 1's part went back too: one transaction
    monkeypatch.undo()
    with Ledger(path) as ledger:
        assert len(ledger.deliveries(CID)) == 2


CHILD = """
import sys, time
from pathlib import Path
from newsletter.state.ledger import Ledger
state, ready, go = map(Path, sys.argv[1:4])
ready.touch()
while not go.exists():
    time.sleep(0.001)
with Ledger(state) as ledger:
    print(len(ledger.deliveries("2026-12-08/week-before")))
"""


def test_processes_opening_an_old_file_at_once_upgrade_it_once(tmp_path: Path) -> None:
    path = old_release_file(tmp_path / "state.sqlite3")
    go = tmp_path / "go"
    children = []
    for n in range(4):
        ready = tmp_path / f"ready-{n}"
        command = [sys.executable, "-c", CHILD, str(path), str(ready), str(go)]
        children.append(
            (ready, subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        )
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in children):
        assert time.monotonic() < deadline, "the processes did not start"
        time.sleep(0.01)
    go.touch()  # all four open the file now
    for _, child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err.decode()
        assert out.decode().strip() == "2"
    assert user_version(path) == LATEST and tables(path) >= ALL_TABLES
    assert columns(path, "deliveries").count("via") == 1


def test_opening_an_up_to_date_file_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    Ledger(path).close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a send run in the middle of a transaction
    try:
        started = time.monotonic()
        with Ledger(path) as ledger:
            assert ledger.campaigns() == []
        assert time.monotonic() - started < 5
    finally:
        writer.execute("ROLLBACK")
        writer.close()


# --- what schema 2 records -------------------------------------------------------------------------


def sent(address: str) -> Result:
    return Result(address, Status.SENT, 250, "2.0.0 Ok", None)


def test_claims_and_results_record_which_transport_took_each_message(tmp_path: Path) -> None:
    with Ledger(tmp_path / "state.sqlite3") as ledger:
        ledger.open_campaign(
            CID, meeting="2026-12-08", reminder="week-before", kind=MailKind.REMINDER, now=NOW
        )
        ledger.enqueue(CID, ["ann@example.org", "bea@example.org", "cy@example.org"], now=NOW)
        ledger.claim(CID, [Claim("ann@example.org", Status.PENDING, "<1@x>")], now=NOW, via="outbox")
        assert ledger.statuses(CID, ["ann@example.org"])["ann@example.org"].via == "outbox"
        ledger.fold(Header(CID, "outbox", None), [sent("ann@example.org")], now=NOW)
        ledger.claim(CID, [Claim("bea@example.org", Status.PENDING, "<2@x>")], now=NOW)
        ledger.fold(Header(CID, "relay", None), [sent("bea@example.org")], now=NOW)
        found = ledger.statuses(CID, ["ann@example.org", "bea@example.org", "cy@example.org"])
        assert {a: (d.status, d.via) for a, d in found.items()} == {
            "ann@example.org": (Status.SENT, "outbox"),
            "bea@example.org": (Status.SENT, "relay"),
            "cy@example.org": (Status.PENDING, "relay"),  # never tried: NULL reads as the relay
        }
        with pytest.raises(ValueError, match="via"):
            ledger.claim(CID, [], now=NOW, via="pigeon")


#: Schema 5's deliveries table, as files of that release have it (schema 6 rebuilds it).
V5_DELIVERIES = """
CREATE TABLE deliveries (
    campaign TEXT NOT NULL REFERENCES campaigns(id),
    address TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('pending', 'sending', 'sent', 'deferred', 'failed', 'ambiguous', 'suppressed', 'removed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    code INTEGER,
    reply TEXT,
    next_try TEXT,
    message_id TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (campaign, address)
) WITHOUT ROWID;
CREATE INDEX deliveries_status ON deliveries (campaign, status);
ALTER TABLE deliveries ADD COLUMN via TEXT CHECK (via IN ('relay', 'outbox'));
CREATE INDEX deliveries_message_id ON deliveries (message_id);
"""


V5_ROWS = """
INSERT INTO deliveries VALUES ('2026-12-08/week-before', 'bea@example.org', 'failed', 1, 550,
    '5.1.1 no such user', NULL, '<a.c@example.org>', '2026-12-01T14:01:00+00:00', 'relay');
INSERT INTO deliveries VALUES ('2026-12-08/week-before', 'ann@example.org', 'sent', 1, 250, '2.0.0 Ok',
    NULL, '<a.b@example.org>', '2026-12-01T14:01:00+00:00', 'relay');
"""


def test_a_schema_5_file_gets_its_deliveries_numbered_in_place(tmp_path: Path) -> None:
    path = old_release_file(tmp_path / "state.sqlite3")
    with Ledger(path) as ledger:
        pass
    db = sqlite3.connect(path, isolation_level=None)  # back to schema 5's deliveries, rows and all
    db.executescript("DROP TABLE deliveries; DROP TABLE told_runs;" + V5_DELIVERIES + V5_ROWS)
    db.execute("PRAGMA user_version = 5")
    db.close()
    assert "id" not in columns(path, "deliveries")
    with Ledger(path) as ledger:
        rows = {d.address: d for d in ledger.deliveries(CID)}
        assert (rows["ann@example.org"].status, rows["ann@example.org"].message_id) == (
            Status.SENT,
            "<a.b@example.org>",
        )
        assert rows["bea@example.org"].reply == "5.1.1 no such user"
        assert ledger.delivery_for_message_id("<a.c@example.org>") == (CID, "bea@example.org")
        assert ledger.told("2026-12-08") == {"ann@example.org": '{"time": "18:00"}'}  # the rows of before
        ledger.enqueue(CID, ["ann@example.org", "dee@example.org"], now=NOW)  # still one row per member
        assert ledger.counts(CID) == {"sent": 1, "failed": 1, "pending": 1}
        plan = " ".join(
            str(r[-1])
            for r in ledger.db.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM deliveries WHERE campaign = ? AND address = ?", (CID, "x")
            )
        )
        assert "deliveries_key" in plan
    assert user_version(path) == LATEST
    assert columns(path, "deliveries")[:2] == ["id", "campaign"] and columns(path, "deliveries")[-1] == "via"


def test_unsubscribe_tokens_are_kept_hashed_and_found_in_one_lookup(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with Ledger(path) as ledger:
        ledger.remember_tokens(
            [(token_hash("tok-ann"), "Ann@Example.org"), (token_hash("tok-bea"), "bea@example.org")]
        )
        ledger.remember_tokens([(token_hash("tok-ann"), "someone.else@example.org")])  # kept as it was
        ledger.remember_tokens([])
        assert ledger.address_for_token(token_hash("tok-ann")) == "ann@example.org"
        assert ledger.address_for_token(token_hash("tok-bea")) == "bea@example.org"
        assert ledger.address_for_token(token_hash("tok-cy")) is None
        plan = " ".join(
            str(r[-1])
            for r in ledger.db.execute(
                "EXPLAIN QUERY PLAN SELECT address FROM unsubscribe_tokens WHERE token_hash = ?", ("x",)
            )
        )
        assert "USING PRIMARY KEY" in plan
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert "tok-ann" not in dump and token_hash("tok-ann") == hashlib.sha256(b"tok-ann").hexdigest()


def test_why_a_run_stopped_is_kept_without_credentials(tmp_path: Path) -> None:
    with Ledger(tmp_path / "state.sqlite3") as ledger:
        ledger.open_campaign(
            CID, meeting="2026-12-08", reminder="week-before", kind=MailKind.REMINDER, now=NOW
        )
        campaign = ledger.campaign(CID)
        assert campaign is not None and campaign.stopped is None
        later = NOW + dt.timedelta(minutes=5)
        ledger.set_stopped(
            CID, "cannot reach smtp+starttls://margaret:s3c@ret@mail.example.org:587 (timed out)", later
        )
        campaign = ledger.campaign(CID)
        assert campaign is not None
        assert campaign.stopped == "cannot reach smtp+starttls://mail.example.org:587 (timed out)"
        assert campaign.updated_at == "2026-11-25T15:05:00+00:00"
        ledger.set_stopped(CID, None, now=later)
        assert [c.stopped for c in ledger.campaigns()] == [None]


def test_rows_are_read_by_column_name_so_a_later_column_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with Ledger(path) as ledger:
        ledger.open_campaign(
            CID, meeting="2026-12-08", reminder="week-before", kind=MailKind.REMINDER, now=NOW
        )
        ledger.enqueue(CID, ["ann@example.org"], now=NOW)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE campaigns ADD COLUMN later TEXT DEFAULT 'x'")  # as a migration 3 might
    db.execute("ALTER TABLE deliveries ADD COLUMN later TEXT DEFAULT 'x'")
    db.commit()
    db.close()
    with Ledger(path) as ledger:
        (campaign,) = ledger.campaigns_for("2026-12-08", MailKind.REMINDER)
        assert campaign.id == CID and campaign.stopped is None
        (delivery,) = ledger.deliveries(CID)
        assert delivery == Delivery(
            CID, "ann@example.org", Status.PENDING, 0, None, None, None, None, delivery.updated_at
        )
