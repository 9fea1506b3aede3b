"""`newsletter subscribers list|add|remove|import|export` on real files, with sends and edits at once."""

from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from newsletter.errors import DataError, InvalidValue
from newsletter.inputs import members_edit as roster
from newsletter.inputs.members import read_subscribers
from newsletter.inputs.members_edit import (
    Roster,
    add_member,
    atomic_write,
    load,
    locked,
    neutralise,
    unneutralise,
    unsubscribe,
)
from newsletter.model import Subscriber
from newsletter.state.ledger import Ledger
from newsletter.tokens import load_or_create_secret, unsubscribe_token

from .conftest import BEFORE_FIRST, CliRunner
from .smtpd import Recorder, Server

STATE = Path(".newsletter/state.sqlite3")
EARLIER = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)
LATER = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def rows(group: Path) -> list[dict[str, str]]:
    with (group / "subscribers.csv").open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def addresses(group: Path) -> list[str]:
    return [m.key for m in read_subscribers(group / "subscribers.csv")]


def suppressed(group: Path) -> dict[str, tuple[str, str]]:
    with Ledger(group / STATE) as ledger:
        return ledger.suppressed()


def cli(group: Path, *args: str) -> subprocess.Popen[str]:
    """The real command in its own process (another organiser's terminal, or cron)."""
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--dir", str(group), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


# --- list ------------------------------------------------------------------------------------------


def test_list_shows_members_and_who_unsubscribed_since_when(group: Path, run: CliRunner) -> None:
    code, out, err = run(group, "subscribers", "list")
    assert code == 0, err
    assert "5 members, 5 of them get the reminders" in out
    assert "linda.harper@example.org" in out and "Zoë Martin" in out
    assert "Unsubscribed" not in out
    assert run(group, "subscribers", "remove", "zoe.martin@example.org")[0] == 0
    write(group / "subscribers.csv", (group / "subscribers.csv").read_text() + "zoe.martin@example.org,Zoë\n")
    code, out, err = run(group, "subscribers", "list")
    assert code == 0, err
    since = suppressed(group)["zoe.martin@example.org"][0]
    assert "5 members, 4 of them get the reminders" in out
    assert f"unsubscribed since {since[:10]}" in out  # flagged where a spreadsheet put her back
    assert (
        "Unsubscribed (1)" in out and "removed by an organiser" in out and "still in subscribers.csv" in out
    )


# --- add -------------------------------------------------------------------------------------------


def test_add_keeps_the_files_format_columns_and_extra_values(group: Path, run: CliRunner) -> None:
    # As European Excel saves it: BOM, semicolons, CRLF, an extra column.
    write(group / "subscribers.csv", "\ufeffEmail;Name;Phone\r\nann@example.org;Ann;+1 555 0100\r\n")
    code, out, err = run(group, "subscribers", "add", " Bea@Example.ORG ", "--name", " Bea Roy ")
    assert code == 0, err
    assert "Added Bea@example.org to subscribers.csv." in out
    raw = (group / "subscribers.csv").read_bytes()
    assert (
        raw
        == b"\xef\xbb\xbfEmail;Name;Phone\r\nann@example.org;Ann;+1 555 0100\r\nBea@example.org;Bea Roy;\r\n"
    )


def test_add_of_a_listed_address_updates_the_name_case_insensitively(group: Path, run: CliRunner) -> None:
    code, out, err = run(group, "subscribers", "add", "CAROL.Jenkins@example.org", "--name", "Carol Jenkins")
    assert code == 0, err
    assert "Updated the name" in out
    carol = [r for r in rows(group) if r["email"].lower() == "carol.jenkins@example.org"]
    assert carol == [{"email": "carol.jenkins@example.org", "name": "Carol Jenkins", "joined": "2019-10-08"}]
    code, out, err = run(group, "subscribers", "add", "carol.jenkins@example.org")
    assert code == 0 and "nothing changed" in out
    assert len(rows(group)) == 5


def test_add_starts_a_missing_file_and_adds_a_name_column(group: Path, run: CliRunner) -> None:
    (group / "subscribers.csv").unlink()
    assert run(group, "subscribers", "add", "ann@example.org")[0] == 0
    assert (group / "subscribers.csv").read_text() == "email,name\nann@example.org,\n"
    write(group / "subscribers.csv", "email\nann@example.org\n")
    assert run(group, "subscribers", "add", "bea@example.org", "--name", "Bea")[0] == 0
    assert (group / "subscribers.csv").read_text() == "email,name\nann@example.org,\nbea@example.org,Bea\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["not-an-address"], "missing '@'"),
        (["ann@example.org", "--name", "Ann\nBcc: x@example.org"], "line break"),
        (["ann@example.org", "--name", "=?utf-8?q?Ann=0ABcc=3A_x?="], "encoded word"),
    ],
)
def test_add_refuses_bad_values_as_usage_errors(
    group: Path, run: CliRunner, args: list[str], says: str
) -> None:
    before = (group / "subscribers.csv").read_bytes()
    code, out, err = run(group, "subscribers", "add", *args)
    assert code == 2
    assert says in err
    assert (group / "subscribers.csv").read_bytes() == before


def test_add_to_a_broken_file_names_the_line_and_changes_nothing(group: Path, run: CliRunner) -> None:
    path = write(group / "subscribers.csv", "email,name\nann@example.org,Ann\nbea@example,Bea\n")
    code, out, err = run(group, "subscribers", "add", "cy@example.org")
    assert code == 1
    assert "subscribers.csv:3: the address is not valid" in err and "nothing was changed" in err
    assert "bea@example" not in err  # problems name the line, never the address
    assert path.read_text() == "email,name\nann@example.org,Ann\nbea@example,Bea\n"


def test_an_unsubscribed_address_comes_back_only_with_resubscribe(group: Path, run: CliRunner) -> None:
    assert run(group, "subscribers", "remove", "rosa.delgado@example.org")[0] == 0
    code, out, err = run(group, "subscribers", "add", "Rosa.Delgado@example.org", "--name", "Rosa")
    assert code == 1
    assert "unsubscribed on" in err and "--resubscribe" in err
    assert "rosa.delgado@example.org" not in addresses(group)
    code, out, err = run(
        group, "subscribers", "add", "rosa.delgado@example.org", "--name", "Rosa", "--resubscribe"
    )
    assert code == 0, err
    assert "gets the reminders again" in out
    assert "rosa.delgado@example.org" in addresses(group)
    assert suppressed(group) == {}


# --- remove ----------------------------------------------------------------------------------------


def test_remove_takes_the_row_out_and_records_the_unsubscribe(group: Path, run: CliRunner) -> None:
    code, out, err = run(group, "subscribers", "remove", "ZOE.MARTIN@example.org")
    assert code == 0, err
    assert "Removed zoe.martin@example.org" in out
    assert "zoe.martin@example.org" not in addresses(group)
    assert [r["email"] for r in rows(group)][:1] == ["linda.harper@example.org"]  # order kept
    assert suppressed(group)["zoe.martin@example.org"][1] == "remove"
    # Not on the list: recorded all the same, so it is never mailed.
    code, out, err = run(group, "subscribers", "remove", "stranger@example.org")
    assert code == 0 and "was not in subscribers.csv" in out
    assert "stranger@example.org" in suppressed(group)


def test_remove_takes_the_token_of_a_mailto_unsubscribe(group: Path, run: CliRunner) -> None:
    secret = load_or_create_secret(group / ".newsletter" / "secret")
    token = unsubscribe_token(secret, "rosa.delgado@example.org")
    code, out, err = run(group, "subscribers", "remove", "--", token)  # a token may start with "-"
    assert code == 0, err
    assert "rosa.delgado@example.org" not in addresses(group)
    code, out, err = run(group, "subscribers", "remove", "A" * 32)
    assert code == 1 and "no member has this unsubscribe token" in err


def test_remove_from_a_broken_file_still_stops_the_mail(group: Path, run: CliRunner) -> None:
    path = group / "subscribers.csv"
    write(path, path.read_text() + "oops-no-at,Broken\n")
    code, out, err = run(group, "subscribers", "remove", "linda.harper@example.org")
    assert code == 1
    assert "subscribers.csv:7" in err and "recorded as unsubscribed" in err
    assert "linda.harper@example.org" in suppressed(group)


# --- import ----------------------------------------------------------------------------------------


def test_import_what_excel_and_sheets_save_and_report_each_row(
    group: Path, run: CliRunner, tmp_path: Path
) -> None:
    assert run(group, "subscribers", "remove", "rosa.delgado@example.org")[0] == 0
    sheet = write(
        tmp_path / "from-excel.csv",
        "\ufeff Email ;Name; City \r\n"  # BOM, ';', stray spaces
        + "  new.one@example.org ; New One ; Greenville \r\n"  # 2: added
        + "\r\n"  # 3: blank
        + ";;\r\n"  # 4: blank, as spreadsheets write it
        + "LINDA.HARPER@example.org;Linda H.;\r\n"  # 5: updated (case-insensitive)
        + "carol.jenkins@example.org;;\r\n"  # 6: already there, empty cells erase nothing
        + "not-an-address;Nobody;\r\n"  # 7: skipped, invalid
        + "rosa.delgado@example.org;Rosa;\r\n"  # 8: skipped, unsubscribed
        + "new.one@example.org;Again;\r\n",  # 9: skipped, duplicate of line 2
    )
    code, out, err = run(group, "subscribers", "import", str(sheet))
    assert code == 1  # some rows are wrong: said so, after importing the good ones
    assert "1 added, 1 updated, 1 already there, 3 skipped" in out
    assert "added: row 2" in out and "updated: row 5" in out
    assert "from-excel.csv:7: the address is not valid" in out
    assert "from-excel.csv:8: not added: this member unsubscribed on" in out
    assert "from-excel.csv:9: same address as line 2" in out
    assert "2 rows of from-excel.csv were skipped" in err
    table = rows(group)
    assert list(table[0]) == ["email", "name", "joined", "City"]  # columns kept, the new one appended
    assert table[0] == {
        "email": "linda.harper@example.org",
        "name": "Linda H.",
        "joined": "2017-03-14",
        "City": "",
    }
    assert table[2]["name"] == "Carol"
    assert table[-1] == {
        "email": "new.one@example.org",
        "name": "New One",
        "joined": "",
        "City": "Greenville",
    }
    assert "rosa.delgado@example.org" not in addresses(group)
    # Importing the same file again adds nothing twice.
    code, out, err = run(group, "subscribers", "import", str(sheet))
    assert "0 added, 0 updated, 3 already there" in out
    assert len(rows(group)) == 5


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("mail,name\nann@example.org,Ann\n", "rename the column 'mail' to 'email'"),
        ("email,name\nann@example.org,Ann\nbea@example.org,B\xe9a\n".encode("cp1252"), "not saved as UTF-8"),
        ('email,name\nann@example.org,"Ann\nbea@example.org,Bea\n', "never closed"),
    ],
)
def test_import_of_an_unreadable_file_changes_nothing(
    group: Path, run: CliRunner, tmp_path: Path, content: str | bytes, says: str
) -> None:
    before = (group / "subscribers.csv").read_bytes()
    code, out, err = run(group, "subscribers", "import", str(write(tmp_path / "people.csv", content)))
    assert code == 1
    assert says in err and "people.csv" in err and "nothing was changed" in err
    assert (group / "subscribers.csv").read_bytes() == before


# --- export ----------------------------------------------------------------------------------------


def test_export_neutralises_formulas_and_leaves_out_the_unsubscribed(
    group: Path, run: CliRunner, tmp_path: Path
) -> None:
    write(
        group / "subscribers.csv",
        "email,name,note\n"
        'ann@example.org,=HYPERLINK("http://evil.example"),+1 555\n'
        "bea@example.org,@SUM(A1),-2\n"
        "cy@example.org,Cy,plain\n"
        "dee@example.org,Dee,plain\n",
    )
    assert run(group, "subscribers", "remove", "dee@example.org")[0] == 0
    write(group / "subscribers.csv", (group / "subscribers.csv").read_text() + "dee@example.org,Dee,back\n")
    out_file = tmp_path / "list.csv"
    code, out, err = run(group, "subscribers", "export", str(out_file))
    assert code == 0, err
    assert "Exported 3 members" in err and "1 unsubscribed addresses left out" in err
    raw = out_file.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel then reads it as UTF-8
    with out_file.open(encoding="utf-8-sig", newline="") as fh:
        table = list(csv.reader(fh))
    assert table == [
        ["email", "name", "note"],
        ["ann@example.org", '\'=HYPERLINK("http://evil.example")', "'+1 555"],
        ["bea@example.org", "'@SUM(A1)", "'-2"],
        ["cy@example.org", "Cy", "plain"],
    ]
    code, out, err = run(group, "subscribers", "export")
    assert code == 0
    assert out.startswith('"email","name","note"\r\n') and "'@SUM(A1)" in out
    code, out, err = run(group, "subscribers", "export", str(group / "subscribers.csv"))
    assert code == 2


def test_neutralise_leaves_ordinary_cells_alone() -> None:
    cells = ("Ann", "", "a=b", " =x", "=x", "+x", "-x", "@x", "\tx", "\rx", "\nx")
    assert [neutralise(c) for c in cells] == ["Ann", "", "a=b", " =x", *(f"'{c}" for c in cells[4:])]


# --- the roster itself -----------------------------------------------------------------------------


def test_put_never_erases_with_empty_values() -> None:
    roster = Roster(["email", "name", "city"], [])
    assert roster.put("ann@example.org", name="Ann", extra={"city": "Greenville"}) == "added"
    assert roster.put("ANN@example.org", name=None, extra={"city": ""}) == "unchanged"
    assert roster.put("ann@example.org", name="Ann Lee", extra={"City": "Easley"}) == "updated"
    (ann,) = roster.members
    assert (ann.name, ann.fields) == (
        "Ann Lee",
        {"email": "ann@example.org", "name": "Ann Lee", "city": "Easley"},
    )


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(
    group: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = group / "subscribers.csv"
    path.chmod(0o640)
    before = path.read_bytes()

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError), Ledger(group / STATE) as ledger:
        add_member(path, ledger, "ann@example.org")
    assert path.read_bytes() == before
    assert sorted(p.name for p in group.iterdir() if p.name.startswith(".subscribers")) == []
    monkeypatch.undo()
    atomic_write(path, b"email\n")
    assert path.stat().st_mode & 0o777 == 0o640  # the owner's permissions survive the rewrite


# --- edits and sends at the same time --------------------------------------------------------------


def test_edits_in_parallel_threads_lose_nothing(group: Path) -> None:
    path = group / "subscribers.csv"
    count = 24
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def add(n: int) -> None:
        with Ledger(group / STATE) as ledger:
            start.wait()
            try:
                add_member(path, ledger, f"member{n}@example.org", name=f"Member {n}")
            except BaseException as err:  # pragma: no cover - reported below
                errors.append(err)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(addresses(group)) == 5 + count
    assert {f"member{n}@example.org" for n in range(count)} <= set(addresses(group))


def test_two_commands_editing_at_once_both_land(group: Path, tmp_path: Path) -> None:
    sheet = write(
        tmp_path / "more.csv", "email,name\n" + "".join(f"imp{n}@example.org,Imp {n}\n" for n in range(50))
    )
    # Hold the lock while all three start, so they really contend for it.
    with locked(group / "subscribers.csv"):
        procs = [
            cli(group, "subscribers", "import", str(sheet)),
            cli(group, "subscribers", "add", "solo@example.org", "--name", "Solo"),
            cli(group, "subscribers", "remove", "carol.jenkins@example.org"),
        ]
        for proc in procs:
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)  # waiting for the lock, not failing
    results = [finished(proc) for proc in procs]
    assert [code for code, _, _ in results] == [0, 0, 0], results
    listed = set(addresses(group))
    assert {f"imp{n}@example.org" for n in range(50)} | {"solo@example.org"} <= listed
    assert "carol.jenkins@example.org" not in listed
    assert len(listed) == 5 + 50 + 1 - 1


def read_position(path: Path) -> int | None:
    """How far this process has read ``path`` if it has it open now (Linux: /proc/self/fdinfo)."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                info = Path(f"/proc/self/fdinfo/{fd}").read_text()
                return int(info.split("pos:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return None


def test_a_send_keeps_its_recipients_while_add_and_import_edit_the_file(
    group: Path, run: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 2500  # more than the send's first chunk of members (send/loop.py's CHUNKS)
    last = f"member{size - 1}@example.org"
    note = "x" * 100  # long rows: the send's first chunk of members leaves most of the file unread
    header = "email,name,joined,note\n"
    body = "".join(f"member{n}@example.org,Member {n},2020-01-01,{note}\n" for n in range(size))
    write(group / "subscribers.csv", header + body)
    last_row_at = len(header + body) - len(body.splitlines(keepends=True)[-1])
    extra = write(tmp_path / "extra.csv", f"email,name\n{last},Renamed\nlate2@example.org,Late Two\n")
    edits: list[tuple[int, str, str]] = []
    positions: list[int | None] = []

    def edit_once(recorder: Recorder, server: object, envelope: object) -> None:
        # Runs inside the SMTP server while the first message is being handed over, so the send (this
        # same process) is in the middle of reading the file.
        if not edits:
            positions.append(read_position(group / "subscribers.csv"))
            edits.append(finished(cli(group, "subscribers", "add", "late1@example.org", "--name", "Late")))
            edits.append(finished(cli(group, "subscribers", "import", str(extra))))

    with Server(Recorder(data_hook=edit_once)) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        code, out, err = run(group, "send", "--at", BEFORE_FIRST)
        assert code == 0, err
        assert [e[0] for e in edits] == [0, 0], edits
        (position,) = positions
        assert position is not None and position < last_row_at, "the edits must come while the send reads"
        received = {m.rcpt_tos[0]: m for m in smtp.messages}
        # Exactly the list as it was when the send started: nobody added halfway, nobody twice.
        assert len(smtp.messages) == size
        assert set(received) == {f"member{n}@example.org" for n in range(size)}
        text = received[last].message.get_body(("plain",))
        assert text is not None and f"Dear Member {size - 1}," in text.get_content()  # read after the edit
        # The file is valid and holds every edit.
        listed = read_subscribers(group / "subscribers.csv")
        assert len(listed) == size + 2
        assert {"late1@example.org", "late2@example.org"} <= {m.key for m in listed}
        assert next(m.name for m in listed if m.key == last) == "Renamed"
        # The next run of the mailing reaches the two who joined meanwhile, and only them.
        code, out, err = run(group, "send", "--at", BEFORE_FIRST)
        assert code == 0, err
        assert sorted(m.rcpt_tos[0] for m in smtp.messages[size:]) == [
            "late1@example.org",
            "late2@example.org",
        ]


def test_an_unsubscribed_address_gets_nothing_after_a_reimport_that_contains_it(
    group: Path, run: CliRunner, smtp: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", smtp.url)
    assert run(group, "subscribers", "remove", "zoe.martin@example.org")[0] == 0
    backup = write(tmp_path / "backup.csv", "email,name\nzoe.martin@example.org,Zoë Martin\n")
    code, out, err = run(group, "subscribers", "import", str(backup))
    assert code == 0 and "0 added" in out and "unsubscribed" in out
    # An organiser pastes her back in with a spreadsheet, too.
    write(group / "subscribers.csv", (group / "subscribers.csv").read_text() + "Zoe.Martin@example.org,Zoë\n")
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 0, err
    sent_to = {m.rcpt_tos[0].lower() for m in smtp.messages}
    assert len(sent_to) == 4 and "zoe.martin@example.org" not in sent_to
    with Ledger(group / STATE) as ledger:
        (campaign,) = ledger.campaigns()
        statuses = {d.address: d.status for d in ledger.deliveries(campaign.id)}
    assert statuses["zoe.martin@example.org"] == "suppressed"


def test_load_reports_problems_of_the_file(group: Path) -> None:
    write(group / "subscribers.csv", "email\nann@example.org\nann@example.org\n")
    with pytest.raises(DataError) as caught:
        load(group / "subscribers.csv")
    assert "subscribers.csv:3: same address as line 2" in str(caught.value)


# --- review fixes: races, history, round trips, size ---------------------------------------------


def test_an_unsubscribe_while_an_organiser_resubscribes_is_not_lost(
    group: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The click lands between the organiser's rewrite of the file and the lifting of the old
    unsubscribe: it must still count (the latest word is hers), not vanish with the old one."""
    path = group / "subscribers.csv"
    address = "rosa.delgado@example.org"
    with Ledger(group / STATE) as ledger:
        unsubscribe(path, ledger, address, source="remove", now=EARLIER)
    recorded = threading.Event()
    clicks: list[bool] = []

    class Watched(Ledger):
        def suppress(self, address: str, *, source: str, now: dt.datetime) -> bool:
            done = super().suppress(address, source=source, now=now)
            recorded.set()
            return done

    def click() -> None:  # the web app's one-click unsubscribe: its own thread and connection
        with Watched(group / STATE) as ledger:
            clicks.append(unsubscribe(path, ledger, address, source="one-click", now=LATER))

    thread = threading.Thread(target=click)
    real_save = roster.save

    def save_then_click(target: Path, members: Roster) -> None:
        real_save(target, members)
        if not thread.is_alive() and not clicks:  # the organiser's save: the click comes now
            thread.start()
            assert recorded.wait(10), "the click did not record its unsubscribe"

    monkeypatch.setattr(roster, "save", save_then_click)
    with Ledger(group / STATE) as ledger:
        done = add_member(path, ledger, address, name="Rosa", resubscribe=True, now=LATER)
    thread.join(10)
    assert done.resubscribed and clicks == [True]
    assert address not in addresses(group)
    assert suppressed(group)[address][1] == "one-click"


def test_a_resubscribe_is_kept_in_the_history_and_shown_by_list(group: Path, run: CliRunner) -> None:
    assert run(group, "subscribers", "remove", "rosa.delgado@example.org")[0] == 0
    assert run(group, "subscribers", "add", "rosa.delgado@example.org", "--resubscribe")[0] == 0
    with Ledger(group / STATE) as ledger:
        ((at, source),) = [v for k, v in ledger.resubscriptions().items() if k == "rosa.delgado@example.org"]
    assert source == "add"
    code, out, err = run(group, "subscribers", "list")
    assert code == 0, err
    rosa = next(line for line in out.splitlines() if "rosa.delgado@example.org" in line)
    assert f"re-subscribed by an organiser on {at[:10]}" in rosa
    assert "Unsubscribed" not in out


def test_export_then_import_gives_the_same_list_back(group: Path, run: CliRunner, tmp_path: Path) -> None:
    original = (
        "email,name,phone,note,-tags\n"
        'dash@example.org,=Ann Lee,+1 555 0100,"775 Haywood Rd, Greenville, SC 29607",@home\n'
        "plus@example.org,-,-2,@ann.example on Facebook,=SUM(A1)\n"
        "eq@example.org,Cy,+1 555 0102,'quoted' already,'=kept as typed\n"
    )
    write(group / "subscribers.csv", original)
    exported = tmp_path / "for-excel.csv"
    code, out, err = run(group, "subscribers", "export", str(exported))
    assert code == 0, err
    assert "'+1 555 0100" in exported.read_text(encoding="utf-8-sig")  # neutralised on the way out
    # Importing the export over the list it came from changes nothing: each value is the same once
    # the export's ' is off, and the organisers' cells stay as they typed them.
    code, out, err = run(group, "subscribers", "import", str(exported))
    assert code == 0 and "0 added, 0 updated, 3 already there" in out
    assert (group / "subscribers.csv").read_text() == original
    # Into an empty list: every value comes back, and as the program writes them now, none is a formula.
    (group / "subscribers.csv").unlink()
    code, out, err = run(group, "subscribers", "import", str(exported))
    assert code == 0, err
    assert "3 added, 0 updated, 0 already there, 0 skipped" in out
    assert rows(group) == [
        {
            "email": "dash@example.org",
            "name": "'=Ann Lee",
            "phone": "'+1 555 0100",
            "note": "775 Haywood Rd, Greenville, SC 29607",
            "'-tags": "'@home",
        },
        {
            "email": "plus@example.org",
            "name": "'-",
            "phone": "'-2",
            "note": "'@ann.example on Facebook",
            "'-tags": "'=SUM(A1)",
        },
        {
            "email": "eq@example.org",
            "name": "Cy",
            "phone": "'+1 555 0102",
            "note": "'quoted' already",
            "'-tags": "'=kept as typed",
        },
    ]
    assert [m.name for m in load(group / "subscribers.csv").members] == ["'=Ann Lee", "'-", "Cy"]
    # Exported and imported again, the list stays exactly as it is: no quote is added each time.
    before = (group / "subscribers.csv").read_bytes()
    assert run(group, "subscribers", "export", str(exported))[0] == 0
    code, out, err = run(group, "subscribers", "import", str(exported))
    assert code == 0 and "0 added, 0 updated, 3 already there" in out
    assert (group / "subscribers.csv").read_bytes() == before


def test_put_writes_what_it_is_given_neutralised_and_keeps_the_organisers_cells() -> None:
    organisers = Subscriber(
        email="ann@example.org",
        name="Ann",
        fields={"email": "ann@example.org", "name": "Ann", "note": "=SUM(A1)"},
    )
    roster = Roster(["email", "name", "note"], [organisers])
    assert roster.put("ann@example.org", extra={"note": "=SUM(A1)"}) == "unchanged"  # kept as typed
    assert roster.put("ann@example.org", name="=HYPERLINK(1)") == "updated"
    assert roster.put("ann@example.org", name="=HYPERLINK(1)") == "unchanged"
    assert roster.put("bea@example.org", name="@bea", extra={"-tags": "+x", "note": "plain"}) == "added"
    assert roster.put("bea@example.org", extra={"-tags": "+x"}) == "unchanged"  # one column, not two
    ann, bea = roster.members
    assert ann.name == "'=HYPERLINK(1)" and ann.fields["note"] == "=SUM(A1)"
    assert roster.columns == ["email", "name", "note", "'-tags"]
    assert bea.name == "'@bea" and bea.fields == {
        "email": "bea@example.org",
        "name": "'@bea",
        "note": "plain",
        "'-tags": "'+x",
    }
    with pytest.raises(InvalidValue, match="formula"):  # an address cannot be quoted: never written
        roster.put("=cmd@evil.example", name="Evil")
    assert len(roster.members) == 2


def test_unneutralise_strips_exactly_one_quote_before_a_formula_character() -> None:
    cells = ("'=x", "''=x", "'+1 555", "'-", "'@x", "'\tx", "'plain", "'", "=x", "Ann", "''plain")
    assert [unneutralise(c) for c in cells] == [
        *("=x", "'=x", "+1 555", "-", "@x", "\tx"),
        *("'plain", "'", "=x", "Ann", "''plain"),  # no formula after the quote: left as it is
    ]
    # A cell that already starts with quotes before a formula character gets one more, so every
    # cell comes back exactly as it was.
    assert neutralise("'=x") == "''=x"
    raw = ("=x", "'=x", "''-1", "'plain", "'", "Ann", "+1 555 0100", "\tx", "", "a=b")
    assert [unneutralise(neutralise(c)) for c in raw] == list(raw)


def test_a_large_import_is_linear_and_reports_rows_as_ranges(
    group: Path, run: CliRunner, tmp_path: Path
) -> None:
    lines = [f"bulk{n}@example.org,Bulk {n}" for n in range(5000)]
    lines[5] = "not-an-address,Broken"  # line 7 of the file
    sheet = write(tmp_path / "bulk.csv", "email,name\n" + "\n".join(lines) + "\n")
    code, out, err = run(group, "subscribers", "import", str(sheet))
    assert code == 1  # the broken row is reported; the others are in
    assert "4999 added" in out and "  added: rows 2–6, 8–5001\n" in out
    assert len(addresses(group)) == 5 + 4999


def test_roster_edits_look_members_up_by_address_not_by_scanning(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = [0]

    def counted(self: Subscriber) -> str:
        reads[0] += 1
        return self.email.lower()

    monkeypatch.setattr(Subscriber, "key", property(counted))
    members = Roster(["email", "name"], [])
    count = 1000
    for n in range(count):
        assert members.put(f"m{n}@example.org", name=f"M {n}") == "added"
    for n in range(count):
        assert members.put(f"M{n}@Example.org", name=f"M {n}") == "unchanged"
    assert members.remove("m500@example.org") and members.find("m501@example.org") == 500
    assert members.find("m500@example.org") is None
    assert reads[0] < 10 * count  # a scan per row would read it about count² times


def test_load_reads_the_file_once(group: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = group / "subscribers.csv"
    opened: list[object] = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == path:
            opened.append(args)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    members = load(path)
    assert [m.key for m in members.members][:1] == ["linda.harper@example.org"]
    assert members.columns == ["email", "name", "joined"] and len(members.members) == 5
    assert len(opened) == 1
