"""The list read in passes instead of whole (issue 13: a million members in little memory), with the
very output the whole-list code gave: `subscribers list`, `subscribers export`, `check`, the answer
counts, the compact address table.  Each reference below is the code as it was before, on real files.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from newsletter.cli.members import _when
from newsletter.errors import DataError
from newsletter.inputs.members_edit import SOURCES, describe_resubscription, load, render_csv
from newsletter.inputs.members_io import CsvFormat, neutralise, unneutralise
from newsletter.inputs.members_listing import listing
from newsletter.inputs.seen_addresses import SeenAddresses, capacity_for, capacity_of
from newsletter.inputs.sending_list import formula_warnings, read_for_sending
from newsletter.state.ledger import Ledger

from .conftest import CliRunner

STATE = Path(".newsletter/state.sqlite3")
AT = dt.datetime(2026, 10, 1, 12, 0, tzinfo=dt.UTC)

FILES = {
    "varied": (
        "email,name,joined,note\n"
        "linda.harper@example.org,Linda Harper,2019-01-08,\n"
        'Zoe.Martin@Example.ORG,Zoë Martin,2020-02-02,"two\nlines"\n'
        'siobhan@example.org,Siobhán Ó Briain,,"a, b"\n'
        "ann@example.org,=SUM(A1),,'+1 555 0100\n"
        "postmaster@example.org,,2021-03-03,@home\n"
        "\n"
        "a.very.long.address.for.the.width.of.the.column@example.org,Li Mei,,\n"
        "bea@example.org,Bea,,\n"
    ),
    "european-excel": (
        "\ufeffEmail;Name;Phone\r\nann@example.org;Ann;+1 555 0100\r\nbea@example.org;Bea Roy;\r\n"
    ),
    "header-only": "email,name\n",
    "blank": ",,,\r\n\r\n",
    "bom-only": "\ufeff",
}


def marks(group: Path) -> None:
    """An unsubscribed member still listed, one no longer listed, a bouncing one, one back on the list."""
    with Ledger(group / STATE) as ledger:
        ledger.suppress("bea@example.org", source="remove", now=AT)
        ledger.suppress("gone@example.org", source="one-click", now=AT + dt.timedelta(days=1))
        ledger.suppress("siobhan@example.org", source="link", now=AT)
        ledger.resubscribe("siobhan@example.org", source="add", now=AT + dt.timedelta(days=2))
        for day in range(3):
            ledger.record_bounce(
                "zoe.martin@example.org",
                kind="hard",
                report_id=f"report-{day}",
                at=AT + dt.timedelta(days=day),
                reason="the mailbox does not exist",
            )


def list_as_before(group: Path) -> str:
    """`subscribers list` as it was: the whole list loaded, then printed."""
    roster = load(group / "subscribers.csv")
    with Ledger(group / STATE) as ledger:
        suppressed, resubscribed, bouncing = (
            ledger.suppressed(),
            ledger.resubscriptions(),
            ledger.bouncing(),
        )
    listed = {m.key for m in roster.members}
    mailed = [m for m in roster.members if m.key not in suppressed and m.key not in bouncing]
    width = max((len(m.email) for m in roster.members), default=0)
    out = [f"subscribers.csv: {len(roster.members)} members, {len(mailed)} of them get the reminders"]
    for member in roster.members:
        line = f"  {member.email:<{width}}  {member.name}".rstrip()
        if member.key in suppressed:
            line += f"  [unsubscribed since {_when(suppressed[member.key][0])}: not mailed]"
        elif member.key in bouncing:
            line += "  [bouncing: not mailed until checked — `subscribers add ADDRESS --resubscribe`]"
        elif member.key in resubscribed:
            line += f"  [{describe_resubscription(*resubscribed[member.key])}]"
        out.append(line)
    if suppressed:
        out.append(
            f"Unsubscribed ({len(suppressed)}): never mailed, whatever subscribers.csv says, "
            "until `newsletter subscribers add ADDRESS --resubscribe`"
        )
        for address, (since, source) in sorted(suppressed.items(), key=lambda item: item[1][0]):
            note = "" if address not in listed else "  (still in subscribers.csv)"
            out.append(f"  {address}  since {_when(since)}, {SOURCES.get(source, source)}{note}")
    return "\n".join(out) + "\n"


def export_as_before(group: Path, *, bom: bool) -> tuple[str, int]:
    """`subscribers export` as it was: the whole CSV built in memory from the whole list."""
    roster = load(group / "subscribers.csv")
    with Ledger(group / STATE) as ledger:
        suppressed = ledger.suppressed()
    kept = [m for m in roster.members if m.key not in suppressed]

    def cell(value: str) -> str:
        return neutralise(unneutralise(value))

    rows = ([cell(m.fields.get(c, "")) for c in roster.columns] for m in kept)
    fmt = CsvFormat(delimiter=",", bom=bom, newline="\r\n")
    text = render_csv([cell(c) for c in roster.columns], rows, fmt, quote_all=True)
    return text, len(roster.members) - len(kept)


@pytest.mark.parametrize("name", [*FILES, "missing"])
def test_list_and_export_stream_the_same_output_as_before(
    group: Path, run: CliRunner, tmp_path: Path, name: str
) -> None:
    path = group / "subscribers.csv"
    if name == "missing":
        path.unlink()
    else:
        path.write_bytes(FILES[name].encode("utf-8"))
    marks(group)
    code, out, err = run(group, "subscribers", "list")
    assert code == 0, err
    assert out == list_as_before(group)
    code, out, err = run(group, "subscribers", "export")
    assert code == 0, err
    expected, left_out = export_as_before(group, bom=False)
    assert out == expected
    assert err == (f"{left_out} unsubscribed addresses left out.\n" if left_out else "")
    folder = tmp_path / "exports"
    folder.mkdir()
    exported = folder / "for-excel.csv"
    code, out, err = run(group, "subscribers", "export", str(exported))
    assert code == 0, err
    expected, left_out = export_as_before(group, bom=True)
    assert exported.read_bytes() == expected.encode("utf-8")
    kept = len(load(path).members) - left_out
    assert err.startswith(f"Exported {kept} members to {exported}.\n")
    assert [p.name for p in folder.iterdir()] == ["for-excel.csv"]  # no temp file left behind


def test_the_varied_file_is_listed_with_every_mark(group: Path, run: CliRunner) -> None:
    (group / "subscribers.csv").write_text(FILES["varied"], encoding="utf-8")
    marks(group)
    code, out, err = run(group, "subscribers", "list")
    assert code == 0, err
    assert "subscribers.csv: 7 members, 5 of them get the reminders" in out  # Bea out, Zoë bouncing
    assert "[bouncing: not mailed" in out and "[unsubscribed since 2026-10-01 12:00 UTC" in out
    assert "Unsubscribed (2)" in out and "(still in subscribers.csv)" in out


@pytest.mark.parametrize("command", [["list"], ["export"], ["export", "out.csv"]])
def test_a_list_with_a_problem_shows_and_writes_nothing(
    group: Path, run: CliRunner, tmp_path: Path, command: list[str]
) -> None:
    rows = "".join(f"m{n}@example.org,M {n}\n" for n in range(3000))
    (group / "subscribers.csv").write_text(f"email,name\n{rows}M7@example.org,again\nbroken,B\n")
    args = [str(tmp_path / a) if a.endswith(".csv") else a for a in command]
    code, out, err = run(group, "subscribers", *args)
    assert code == 1
    assert out == ""  # the problems come before anything is shown
    assert "subscribers.csv:3002: same address as line 9" in err
    assert "subscribers.csv:3003: the address is not valid (missing '@')" in err
    assert "2 problems in subscribers.csv" in err
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    "content",
    [b"email,name\nann@example.org,Zo\xeb\n", "email\tname\nann@example.org\tAnn\n".encode("utf-16")],
)
def test_a_list_not_in_utf8_is_refused_as_before(group: Path, content: bytes) -> None:
    path = group / "subscribers.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as before:
        load(path)
    with pytest.raises(DataError) as now, listing(path):
        pass
    assert [str(p) for p in now.value.problems] == [str(p) for p in before.value.problems]


def test_the_listing_gives_the_members_load_gives_in_both_passes(group: Path) -> None:
    path = group / "subscribers.csv"
    path.write_text(FILES["varied"], encoding="utf-8")
    visited: list[str] = []
    with listing(path, lambda m: visited.append(m.email)) as found:
        first = list(found.members())
        second = list(found.members())
    whole = load(path)
    assert first == second == whole.members
    assert [m.fields for m in first] == [m.fields for m in whole.members]
    assert visited == [m.email for m in whole.members]
    assert (found.columns, found.count) == (whole.columns, len(whole.members))


# --- check reads the list once ------------------------------------------------------------------------


def test_check_gathers_formula_warnings_in_the_same_pass_as_before(group: Path, run: CliRunner) -> None:
    text = (
        "email,name,phone,note\n"
        'ann@example.org,=HYPERLINK("http://x"),+1 864 555 0100,\n'
        "bea@example.org,Bea,-,@home\n"
        "ANN@example.org,Ann again,,=1+1\n"  # merged into line 2: no formula warning of its own
        "bad,+Bad,,\n"
    )
    path = group / "subscribers.csv"
    path.write_text(text, encoding="utf-8")
    members, found = read_for_sending(path, formulas=True)
    assert [m.line for m in members] == [2, 3]
    assert found.formulas == formula_warnings(path)
    assert [w.line for w in found.formulas] == [2, 3]
    path.write_text(text.replace("bad,+Bad,,\n", ""), encoding="utf-8")
    code, out, err = run(group, "check")
    warnings = [line for line in out.splitlines() if line.startswith("warning: subscribers.csv")]
    assert warnings == [
        "warning: subscribers.csv:4: same address as line 2: mailed once, as on line 2 "
        "— delete one of the rows",
        "warning: subscribers.csv:2: the name cell starts with '=', which a spreadsheet may run as a formula "
        "— remove the sign if it is not needed: Excel and Google Sheets run such cells on opening",
        "warning: subscribers.csv:3: the note cell starts with '@', which a spreadsheet may run as a formula "
        "— remove the sign if it is not needed: Excel and Google Sheets run such cells on opening",
    ]
    assert "subscribers.csv: 2 members" in out


# --- the answer counts' list of members -------------------------------------------------------------


def test_member_keys_hold_the_mailable_addresses_in_digests(group: Path) -> None:
    from newsletter.project import load_project
    from newsletter.send.choices import member_keys
    from newsletter.settings import resolve

    path = group / "subscribers.csv"
    path.write_text(FILES["varied"] + "LINDA.harper@example.org,Linda again\nbroken,B\n", encoding="utf-8")
    project = load_project(resolve(group), check_subscribers=False)
    with Ledger(group / STATE) as ledger:
        ledger.suppress("bea@example.org", source="remove", now=AT)
        keys = member_keys(project, ledger)
    listed = {m.key for m in read_for_sending(path)[0]} - {"bea@example.org"}
    assert len(keys) == len(listed) == 6
    assert all(key in keys for key in listed)
    assert "bea@example.org" not in keys and "broken" not in keys and "nobody@example.org" not in keys


# --- the compact table ----------------------------------------------------------------------------


def test_seen_addresses_membership_and_first_lines_from_a_small_start() -> None:
    assert "ann@example.org" not in SeenAddresses(capacity=10**6)  # made when the first address comes
    seen = SeenAddresses(capacity=1)
    for number in range(3000):
        assert seen.first_line(f"m{number}@example.org", number + 2) is None
    assert len(seen) == 3000
    assert "m2999@example.org" in seen and "m3000@example.org" not in seen and 7 not in seen
    assert seen.first_line("m1500@example.org", 1) == 1502


def test_the_rows_a_file_holds_are_estimated_from_its_first_and_middle_bytes(tmp_path: Path) -> None:
    rows = "".join(f"member{n}@example.org,Member {n}\n" for n in range(20_000))
    path = tmp_path / "subscribers.csv"
    path.write_text("email,name\n" + rows, encoding="utf-8")
    data = path.read_bytes()
    with path.open("rb") as file:
        head = file.read(1 << 16)
        estimate = capacity_of(file, len(data), head)
        assert file.tell() == len(head)  # the position is kept
    assert 20_001 <= estimate <= 21_000  # the first rows are shorter (fewer digits): the middle says so
    assert capacity_for(len(data), data) == 20_002  # the whole file seen: its lines, plus one
    assert capacity_for(10 << 20, b"no line break at all") == 1024
    assert capacity_for(1 << 40, b"a\n" * 10) <= 2_000_000  # a size is never trusted blindly


def test_an_export_read_back_gives_the_same_cells(group: Path, run: CliRunner, tmp_path: Path) -> None:
    (group / "subscribers.csv").write_text(FILES["varied"], encoding="utf-8")
    exported = tmp_path / "x.csv"
    assert run(group, "subscribers", "export", str(exported))[0] == 0
    with exported.open(encoding="utf-8-sig", newline="") as fh:
        back = list(csv.reader(io.StringIO(fh.read())))
    assert back[0] == ["email", "name", "joined", "note"]
    assert back[2][3] == "two\nlines" and back[4][1] == "'=SUM(A1)"
