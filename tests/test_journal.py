"""Claims in batches, results through the outcome journal: what a fold writes, what a killed send's
journal becomes, and what members were told, on real SQLite files and real journal files."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.model import DeliveryStatus as Status
from newsletter.model import MailKind
from newsletter.state.journal import Header, Journal, journal_path
from newsletter.state.ledger import Claim, Ledger, Result
from newsletter.state.members import token_hash
from newsletter.state.recorder import recording

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
CID = "2026-12-08/week-before"
MEETING = "2026-12-08"
ANN, BEA, CY = "ann@example.org", "bea@example.org", "cy@example.org"


def sent(address: str, at: dt.datetime = NOW) -> Result:
    return Result(address, Status.SENT, 250, "2.0.0 Ok", None, attempts=1, at=at)


def opened(path: Path) -> Ledger:
    ledger = Ledger(path)
    ledger.open_campaign(CID, meeting=MEETING, reminder="week-before", kind=MailKind.REMINDER, now=NOW)
    return ledger


def claimed(ledger: Ledger, *addresses: str, told: str | None = '{"time": "18:00"}') -> Header:
    """Claim ``addresses`` (new rows, with Message-IDs and tokens) and start a journal run for them."""
    claims = [Claim(a, None, f"<{a}.id@x>", token_hash(f"tok-{a}")) for a in addresses]
    run = ledger.claim(CID, claims, now=NOW, told=(MEETING, told) if told else None)
    return Header(CID, "relay", run)


def journal_of(ledger: Ledger) -> Journal:
    journal = Journal.lock(journal_path(ledger.path), wait=False, mode=0o600)
    assert journal is not None
    return journal


def total_sent(ledger: Ledger) -> int:
    return int(ledger.db.execute("SELECT coalesce(sum(count), 0) FROM send_counts").fetchone()[0])


def test_a_claim_records_the_chunk_before_anything_is_sent(tmp_path: Path) -> None:
    with opened(tmp_path / "state.sqlite3") as ledger:
        ledger.enqueue(CID, [BEA], now=NOW)
        claims = [
            Claim(ANN, None, "<ann.id@x>", token_hash("tok-ann")),
            Claim(BEA, Status.PENDING, "<bea.id@x>"),
        ]
        ledger.claim(CID, claims, now=NOW, suppress=[(CY, None)])
        rows = ledger.statuses(CID, [ANN, BEA, CY])
        assert {a: (d.status, d.message_id) for a, d in rows.items()} == {
            ANN: (Status.SENDING, "<ann.id@x>"),
            BEA: (Status.SENDING, "<bea.id@x>"),
            CY: (Status.SUPPRESSED, None),
        }
        assert ledger.delivery_for_message_id("<ann.id@x>") == (CID, ANN)  # a bounce finds her already
        assert ledger.address_for_token(token_hash("tok-ann")) == ANN  # and so does her unsubscribe link
        # New rows are numbered in the order of the list: one fold's rows sit side by side.
        ids = dict(ledger.db.execute("SELECT address, id FROM deliveries"))
        assert ids[BEA] < ids[ANN] < ids[CY]


def test_a_fold_settles_results_and_returns_what_was_never_handed_over(tmp_path: Path) -> None:
    with opened(tmp_path / "state.sqlite3") as ledger:
        ledger.enqueue(CID, [CY], now=NOW)
        ledger.claim(CID, [Claim(CY, Status.PENDING)], now=NOW)  # a row from before, pending
        run = claimed(ledger, ANN, BEA, "dee@example.org")
        later = NOW + dt.timedelta(minutes=3)
        deferred = Result(BEA, Status.DEFERRED, 451, "4.3.0 try later", later, attempts=2, at=later)
        ledger.fold(
            run, [sent(ANN), deferred], now=later, unclaim={CY: Status.PENDING, "dee@example.org": None}
        )
        rows = ledger.statuses(CID, [ANN, BEA, CY, "dee@example.org"])
        assert (rows[ANN].status, rows[ANN].attempts, rows[ANN].reply) == (Status.SENT, 1, "2.0.0 Ok")
        assert (rows[BEA].status, rows[BEA].attempts, rows[BEA].next_try) == (
            Status.DEFERRED, 2, "2026-11-25T15:03:00+00:00",
        )  # fmt: skip
        assert rows[BEA].updated_at == "2026-11-25T15:03:00+00:00"  # when the server answered
        assert rows[CY].status == rows["dee@example.org"].status == Status.PENDING
        assert ledger.sent_on(NOW.date()) == 1
        assert ledger.told(MEETING) == {ANN: '{"time": "18:00"}'}  # only whom it reached


def test_what_members_were_told_is_the_last_run_that_reached_them(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with opened(path) as ledger:
        # A row of the table the release before schema 6 wrote: it counts until a later run reaches her.
        ledger.db.executemany(
            "INSERT INTO told VALUES (?, ?, '{\"time\": \"17:00\"}', ?, '2026-11-01T10:00:00+00:00')",
            [(MEETING, CY, CID), ("2026-11-03", CY, "2026-11-03/day-before")],
        )
        first = claimed(ledger, ANN, BEA)
        ledger.fold(
            first, [sent(ANN), Result(BEA, Status.FAILED, 550, "5.1.1 no", None, attempts=1)], now=NOW
        )
        assert ledger.told(MEETING) == {ANN: '{"time": "18:00"}', CY: '{"time": "17:00"}'}
        ledger.open_campaign("change-1", meeting=MEETING, reminder="change-1", kind=MailKind.CHANGE, now=NOW)
        ledger.enqueue("change-1", [ANN, CY], now=NOW)
        notice = ledger.claim(
            "change-1", [Claim(ANN, Status.PENDING), Claim(CY, Status.PENDING)], now=NOW,
            told=(MEETING, '{"time": "19:00"}'),
        )  # fmt: skip
        ledger.fold(Header("change-1", "relay", notice), [sent(ANN), sent(CY)], now=NOW)
        assert ledger.told(MEETING) == {ANN: '{"time": "19:00"}', CY: '{"time": "19:00"}'}
        assert ledger.told_meetings(since="2026-11-04") == [MEETING]
        assert ledger.told_meetings(since="2026-11-01") == ["2026-11-03", MEETING]
        # An outbox try-out tells nobody anything.
        outbox = claimed(ledger, "dee@example.org", told=None)
        ledger.fold(outbox, [sent("dee@example.org")], now=NOW)
        assert "dee@example.org" not in ledger.told(MEETING)


def test_a_killed_sends_journal_is_folded_when_the_ledger_opens(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with opened(path) as ledger:
        run = claimed(ledger, ANN, BEA, CY)
        journal = journal_of(ledger)
        journal.start(run)
        journal.append(sent(ANN).dump())
        journal.append(Result(BEA, Status.AMBIGUOUS, None, "lost", NOW, attempts=1, at=NOW).dump())
        journal.close()  # as by kill -9: the lines are in the file, nothing was folded
        assert ledger.counts(CID) == {"sending": 3}
    with Ledger(path) as ledger:
        assert ledger.counts(CID) == {"sent": 1, "ambiguous": 1, "sending": 1}  # cy: sent again next run
        assert ledger.sent_on(NOW.date()) == 1 and ledger.told(MEETING) == {ANN: '{"time": "18:00"}'}
    assert journal_path(path).stat().st_size == 0
    with Ledger(path) as ledger:  # and once only
        assert total_sent(ledger) == 1


def test_a_fold_committed_before_the_journal_was_emptied_counts_once(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with opened(path) as ledger:
        run = claimed(ledger, ANN, BEA, CY)
        journal = journal_of(ledger)
        journal.start(run)
        results = [sent(ANN), sent(BEA)]
        for result in results:
            journal.append(result.dump())
        ledger.fold(run, results, now=NOW, folded=journal.folded)  # committed …
        journal.append(sent(CY).dump())  # … one more line, then killed before the journal restarts
        journal.close()
    with Ledger(path) as ledger:
        assert total_sent(ledger) == 3 and ledger.counts(CID) == {"sent": 3}


def test_a_line_cut_short_ends_what_is_read(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with opened(path) as ledger:
        run = claimed(ledger, ANN, BEA, CY)
        journal = journal_of(ledger)
        journal.start(run)
        journal.append(sent(ANN).dump())
        good = journal.end
        journal.append(sent(BEA).dump())
        journal.append(sent(CY).dump())
        journal.close()
    blob = journal_path(path).read_bytes()
    broken = blob[:good] + blob[good:].replace(b"bea@", b"BEA@", 1)  # its CRC no longer matches
    journal_path(path).write_bytes(broken[:-5])  # and the last line cut short
    with Ledger(path) as ledger:
        assert ledger.counts(CID) == {"sent": 1, "sending": 2}


def test_the_journal_of_a_running_send_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with opened(path) as ledger:
        run = claimed(ledger, ANN)
        journal = journal_of(ledger)  # a send holding it
        journal.start(run)
        journal.append(sent(ANN).dump())
        with Ledger(path) as reader:
            assert reader.counts(CID) == {"sending": 1}
        journal.close()
    with Ledger(path) as reader:
        assert reader.counts(CID) == {"sent": 1}


def test_a_run_folds_in_batches_and_leaves_the_journal_empty(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with opened(path) as ledger:
        os.chmod(path, 0o640)
        with recording(ledger, lambda: NOW) as recorder:
            recorder.begin(claimed(ledger, ANN, BEA))
            recorder.add(sent(ANN))
            assert ledger.counts(CID) == {"sending": 2}  # in the journal, not folded yet
            assert journal_path(path).stat().st_size > 0
            with Ledger(path) as reader:  # nor can anyone else fold it meanwhile
                assert reader.counts(CID) == {"sending": 2}
            assert journal_path(path).stat().st_mode & 0o777 == 0o640  # as private as the database
            recorder.fold({BEA: None}, last=True)
        assert ledger.counts(CID) == {"sent": 1, "pending": 1}
        assert not journal_path(path).exists()  # all folded: nothing is left beside the database


KILLED_AFTER_COMMIT = """
import datetime as dt, os, signal, sys
from pathlib import Path
from newsletter.model import DeliveryStatus as Status
from newsletter.state.ledger import Ledger, Result
from newsletter.state.journal import Header
from newsletter.state.recorder import recording
now = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
with Ledger(Path(sys.argv[1])) as ledger, recording(ledger, lambda: now) as recorder:
    recorder.begin(Header("2026-12-08/week-before", "relay", None))
    for address in ("ann@example.org", "bea@example.org"):
        recorder.add(Result(address, Status.SENT, 250, "Ok", None, attempts=1, at=now))
    ledger.fold(recorder.header, recorder.pending, now=now, folded=recorder.journal.folded)
    os.kill(os.getpid(), signal.SIGKILL)  # after the commit, before the journal starts again
"""


def test_kill_9_between_a_folds_commit_and_the_journal_restarting(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    with opened(path) as ledger:
        claimed(ledger, ANN, BEA, told=None)
    child = subprocess.run([sys.executable, "-c", KILLED_AFTER_COMMIT, str(path)], capture_output=True)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert journal_path(path).stat().st_size > 0  # the lines it folded are still there
    with Ledger(path) as ledger:
        assert total_sent(ledger) == 2 and ledger.counts(CID) == {"sent": 2}
    assert journal_path(path).stat().st_size == 0


@pytest.mark.parametrize("cut", [0, 10, 30])
def test_a_journal_cut_within_its_header_holds_nothing(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "state.sqlite3"
    with opened(path) as ledger:
        journal = journal_of(ledger)
        journal.start(claimed(ledger, ANN))
        journal.close()
    journal_path(path).write_bytes(journal_path(path).read_bytes()[:cut])
    with Ledger(path) as ledger:
        assert ledger.counts(CID) == {"sending": 1}
