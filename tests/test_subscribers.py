"""subscribers.csv: what organisers' spreadsheets produce, and every mistake named by file and line."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from newsletter.errors import DataError, Problem
from newsletter.inputs import sending_list
from newsletter.inputs.members import (
    InvalidValue,
    check_file,
    file_stamp,
    iter_subscribers,
    read_columns,
    read_subscribers,
    validate_address,
    validate_name,
    validate_row,
)
from newsletter.inputs.seen_addresses import SeenAddresses
from newsletter.inputs.sending_list import formula_warnings, read_for_sending

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str | bytes, name: str = "subscribers.csv") -> Path:
    path = tmp_path / name
    # newline="" so the test controls line endings byte for byte (CRLF cases).
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        with path.open("w", encoding="utf-8", newline="") as file:
            file.write(text)
    return path


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(DataError) as caught:
        read_subscribers(path)
    return caught.value.problems


def only_problem(path: Path, *, secret: str | None = None) -> Problem:
    """The single problem in the file; it must name the file and never repeat ``secret``."""
    problems = problems_of(path)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.path == "subscribers.csv"
    if secret:
        assert secret.casefold() not in str(problem).casefold()
    return problem


# --- happy paths -----------------------------------------------------------------------------------


def test_reads_members_with_extra_columns_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name,joined\nann@example.org,Ann Lee,2019\nbea@example.org,,2020\n")
    members = read_subscribers(path)
    assert [(m.email, m.name, m.line) for m in members] == [
        ("ann@example.org", "Ann Lee", 2),
        ("bea@example.org", "", 3),
    ]
    assert members[0].fields == {"email": "ann@example.org", "name": "Ann Lee", "joined": "2019"}


def test_excel_csv_utf8_with_bom_and_spaced_mixed_case_headers(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeff Email , Name ,Joined\nzoe@example.org, Zoë ,2018\n".encode())
    [member] = read_subscribers(path)
    assert (member.email, member.name) == ("zoe@example.org", "Zoë")
    assert member.fields == {"Email": "zoe@example.org", "Name": "Zoë", "Joined": "2018"}


def test_semicolon_delimiter_from_european_excel(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffemail;name;city\r\nann@example.org;Ann;Greenville, SC\r\n")
    [member] = read_subscribers(path)
    assert member.name == "Ann"
    assert member.fields["city"] == "Greenville, SC"


def test_tab_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path, "name\temail\nAnn\tann@example.org\n")
    assert [m.email for m in read_subscribers(path)] == ["ann@example.org"]


def test_blank_rows_are_skipped_and_lines_stay_physical(tmp_path: Path) -> None:
    text = "\nemail,name\n\nann@example.org,Ann\n,\n  ,  \nbea@example.org,Bea\n\n"
    members = read_subscribers(write(tmp_path, text))
    assert [(m.email, m.line) for m in members] == [("ann@example.org", 4), ("bea@example.org", 7)]


def test_crlf_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\r\nann@example.org,Ann\r\n\r\nbea@example.org,Bea\r\n")
    members = read_subscribers(path)
    assert [(m.name, m.line) for m in members] == [("Ann", 2), ("Bea", 4)]


def test_quoted_cells_with_commas_and_line_breaks(tmp_path: Path) -> None:
    text = (
        "email,name,notes\n"
        'ann@example.org,"Lee, Ann","drives, can take two"\n'
        'bea@example.org,Bea,"first line\r\nsecond line"\n'
        "cat@example.org,Cat,\n"
    )
    members = read_subscribers(write(tmp_path, text))
    assert members[0].name == "Lee, Ann"
    assert members[0].fields["notes"] == "drives, can take two"
    assert members[1].fields["notes"] == "first line\r\nsecond line"  # notes may span lines
    assert [m.line for m in members] == [2, 3, 5]  # line 4 is the second line of a quoted cell


def test_short_rows_and_trailing_empty_cells(tmp_path: Path) -> None:
    text = "email,name,joined,,\nann@example.org\nbea@example.org,Bea,2020,,,\n"
    members = read_subscribers(write(tmp_path, text))
    assert members[0].name == "" and members[0].fields["joined"] == ""
    assert members[1].fields == {"email": "bea@example.org", "name": "Bea", "joined": "2020"}


def test_address_is_normalised_and_keyed_case_insensitively(tmp_path: Path) -> None:
    [member] = read_subscribers(write(tmp_path, "email\n  Ann.Lee@EXAMPLE.Org \n"))
    assert member.email == "Ann.Lee@example.org"
    assert member.key == "ann.lee@example.org"


def test_encoded_word_without_control_characters_is_kept_as_written(tmp_path: Path) -> None:
    [member] = read_subscribers(write(tmp_path, "email,name\nzoe@example.org,=?utf-8?q?Zo=C3=AB?=\n"))
    assert member.name == "=?utf-8?q?Zo=C3=AB?="


def test_iter_subscribers_streams_the_same_members(tmp_path: Path) -> None:
    path = write(tmp_path, "email,name\nann@example.org,Ann\n\nbea@example.org,Bea\n")
    assert list(iter_subscribers(path)) == read_subscribers(path)


def test_iter_subscribers_stops_at_the_first_bad_row(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nann@example.org\nbroken\ncat@example.org\nalso-broken\n")
    seen: list[str] = []
    with pytest.raises(DataError) as caught:
        for member in iter_subscribers(path):
            seen.append(member.email)
    assert seen == ["ann@example.org"]
    assert [(p.line, p.path) for p in caught.value.problems] == [(3, "subscribers.csv")]


def test_display_name_is_used_in_messages(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nnope\n")
    with pytest.raises(DataError) as caught:
        read_subscribers(path, display="group/subscribers.csv")
    assert str(caught.value).startswith("group/subscribers.csv:2: ")


def test_shipped_sample_loads() -> None:
    members = read_subscribers(ROOT / "subscribers.csv")
    assert len(members) == 5
    assert all(m.email.endswith("@example.org") for m in members)
    assert any(not m.name for m in members)
    assert any(not m.name.isascii() for m in members)
    assert all("joined" in m.fields for m in members)


# --- mistakes: each names the file and line and never repeats the address -----------------------------


def test_address_without_at_sign(tmp_path: Path) -> None:
    problem = only_problem(
        write(tmp_path, "email,name\nok@example.org,A\nann.example.org,Ann\n"), secret="ann.example.org"
    )
    assert problem.line == 3
    assert str(problem) == (
        "subscribers.csv:3: the address is not valid (missing '@') — fix the email cell on that row"
    )


@pytest.mark.parametrize(
    "address",
    [
        "zelda@private-domain",
        "zelda@@private-domain.org",
        "zelda smith@private-domain.org",
        "zelda..lee@private-domain.org",
        "zelda@xn--zz-evil.org",  # email_validator quotes the IDNA text in this one
        "zelda@exämple..org",
    ],
)
def test_invalid_addresses_are_not_echoed(tmp_path: Path, address: str) -> None:
    problem = only_problem(write(tmp_path, f"email\n{address}\n"), secret=address)
    assert problem.line == 2
    assert "not valid" in problem.message
    local, _, domain = address.partition("@")
    assert local not in str(problem) and domain not in str(problem)


def test_duplicate_address_in_other_case_names_both_lines(tmp_path: Path) -> None:
    text = "email,name\nann@example.org,Ann\nbea@example.org,Bea\nANN@Example.ORG,Annie\n"
    problem = only_problem(write(tmp_path, text), secret="ann@example.org")
    assert problem.line == 4
    assert "same address as line 2" in problem.message
    assert "delete one of the rows" in problem.hint


def test_empty_email_cell(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "email,name\n,Ann\n"))
    assert (problem.line, problem.message) == (2, "the email cell is empty")


def test_name_and_address_in_one_cell(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "email\nAnn Lee <ann@example.org>\n"), secret="ann@example.org")
    assert problem.line == 2
    assert "name column" in problem.hint


def test_row_with_more_cells_than_headers(tmp_path: Path) -> None:
    problem = only_problem(
        write(tmp_path, "email,name\nann@example.org,Lee, Ann\n"), secret="ann@example.org"
    )
    assert problem.line == 2
    assert "3 cells but the header has 2 columns" in problem.message
    assert "comma in double quotes" in problem.hint


def test_file_saved_as_windows_cp1252(tmp_path: Path) -> None:
    text = "email,name\nann@example.org,Ann\nzoe@example.org,Zoë\n"
    problem = only_problem(write(tmp_path, text.encode("cp1252")), secret="zoe@example.org")
    assert problem.line == 3
    assert "not saved as UTF-8" in problem.message
    assert "CSV UTF-8" in problem.hint


def test_file_saved_as_utf16_unicode_text(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "email\tname\nann@example.org\tAnn\n".encode("utf-16")))
    assert problem.line == 1
    assert "UTF-16" in problem.message


def test_header_without_email_column_says_which_header_is_expected(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "E-mail,Name\nann@example.org,Ann\n"), secret="ann@example.org")
    assert problem.line == 1
    assert "no 'email' column" in problem.message
    assert "rename the column 'E-mail' to 'email'" in problem.hint


def test_missing_header_row_does_not_quote_the_member(tmp_path: Path) -> None:
    problem = only_problem(
        write(tmp_path, "ann@example.org,Ann\nbea@example.org,Bea\n"), secret="ann@example.org"
    )
    assert problem.line == 1
    assert "not a header row" in problem.message


def test_unclosed_quote(tmp_path: Path) -> None:
    text = 'email,name\nann@example.org,Ann\nbea@example.org,"Bea\ncat@example.org,Cat\n'
    problem = only_problem(write(tmp_path, text), secret="bea@example.org")
    assert problem.line == 3
    assert "never closed" in problem.message


def test_text_after_closing_quote(tmp_path: Path) -> None:
    problem = only_problem(
        write(tmp_path, 'email,name\nann@example.org,"Ann" Lee\n'), secret="ann@example.org"
    )
    assert problem.line == 2
    assert "after the closing quote" in problem.message


def test_value_in_a_column_without_header(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "email,,name\nann@example.org,x,Ann\n"), secret="ann@example.org")
    assert problem.line == 2
    assert "column 2 has a value but no header" in problem.message


def test_header_given_twice(tmp_path: Path) -> None:
    problem = only_problem(write(tmp_path, "email,Name,name\nann@example.org,A,B\n"))
    assert problem.line == 1
    assert "appears twice (columns 2 and 3)" in problem.message


@pytest.mark.parametrize("text", ["", "\n\n", " \r\n", ",,\n,,,\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    assert only_problem(write(tmp_path, text)).message == "the file is empty"


def test_missing_file(tmp_path: Path) -> None:
    assert only_problem(tmp_path / "subscribers.csv").message == "file not found"


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = 'email,name\nbad,Ann\nbea@example.org,Bea\n,Cat\nBEA@example.org,B2\nok@example.org,"Eve\rX"\n'
    problems = problems_of(write(tmp_path, text))
    assert [p.line for p in problems] == [2, 4, 5, 6]
    assert all("bea@example.org" not in str(p).casefold() for p in problems)


# --- header injection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Eve =?UTF-8?Q?=0A?=Bcc: x@example.com", "line break (LF) inside an encoded word"),
        ("=?utf-8?b?RXZlCkJjYzogeEBleGFtcGxlLmNvbQ==?=", "line break (LF) inside an encoded word"),
        ("=?utf-8?q?Eve=0D?=", "line break (CR) inside an encoded word"),
        ("=?utf-8?q?Eve=00?=", "control character (U+0000) inside an encoded word"),
        ("=?x-no-such-charset?q?Eve?=", "encoded word (=?…?=) that cannot be decoded"),
        ('"Eve\rBcc: x@example.com"', "line break (CR)"),
        ('"Eve\nBcc: x@example.com"', "line break (LF)"),
        ("Eve\x0bBcc", "control character (U+000B)"),
        ("Eve\u2028Bcc", "line break (U+2028)"),
    ],
)
def test_names_that_could_forge_headers_are_rejected(tmp_path: Path, name: str, expected: str) -> None:
    problem = only_problem(write(tmp_path, f"email,name\neve@example.org,{name}\n"), secret="eve@example.org")
    assert problem.line == 2
    assert expected in problem.message
    assert "Bcc" not in str(problem)


def test_address_with_line_break_is_rejected(tmp_path: Path) -> None:
    text = 'email,name\n"eve@example.org\r\nBcc: x@example.com",Eve\nann@example.org,Ann\n'
    problem = only_problem(write(tmp_path, text), secret="eve@example.org")
    assert problem.line == 2
    assert problem.message == "the address contains a line break (CR)"


# --- the same rules for `newsletter subscribers add` ---------------------------------------------------


def test_validate_address_and_name_directly() -> None:
    assert validate_address(" Ann@Example.org ") == "Ann@example.org"
    assert validate_name("  Zoë  ") == "Zoë"
    with pytest.raises(InvalidValue) as caught:
        validate_address("secret.example.org")
    assert "secret" not in str(caught.value)
    assert caught.value.at("command line", None) == Problem(
        "command line", None, "the address is not valid (missing '@')", "fix the email cell on that row"
    )
    with pytest.raises(InvalidValue):
        validate_name("Eve =?UTF-8?Q?=0A?=Bcc: x@example.com")


def test_validate_row_collects_both_problems() -> None:
    assert validate_row({" EMAIL ": "ann@example.org", "Name": "Ann", "city": " Greenville "}).fields == {
        "EMAIL": "ann@example.org",
        "Name": "Ann",
        "city": "Greenville",
    }
    with pytest.raises(DataError) as caught:
        validate_row({"email": "nope", "name": "a\nb"}, path="subscribers.csv", line=9)
    assert [(p.path, p.line) for p in caught.value.problems] == [("subscribers.csv", 9)] * 2


def test_read_columns_gives_the_header_names() -> None:
    assert read_columns(ROOT / "subscribers.csv") == ["email", "name", "joined"]


def test_read_columns_of_a_header_only_file_and_of_a_broken_one(tmp_path: Path) -> None:
    assert read_columns(write(tmp_path, "\ufeff Email ;Name;;City\n")) == ["Email", "Name", "City"]
    with pytest.raises(DataError) as caught:
        read_columns(write(tmp_path, "Name,Phone\n"))
    assert caught.value.problems[0].line == 1


def test_invalid_value_is_a_data_error_without_a_place() -> None:
    with pytest.raises(DataError) as caught:
        validate_address("nobody")
    assert str(caught.value) == "the address is not valid (missing '@') — fix the email cell on that row"
    assert isinstance(caught.value, ValueError)


# --- reading for a send: one bad row leaves out that row only (issue 12) -----------------------------


def test_read_for_sending_leaves_out_only_the_bad_rows(tmp_path: Path) -> None:
    text = (
        "email,name\n"
        "ann@example.org,Ann\n"
        "not-an-address,Bea\n"  # 3: bad address
        'eve@example.org,"Eve\nBcc: all@example.com"\n'  # 4-5: header injection in the name
        "=HYPERLINK(1)@example.org,Formula\n"  # 6: a spreadsheet formula
        "ANN@Example.ORG,Annie\n"  # 7: Ann again: merged into line 2
        "cat@example.org,Cat\n"
    )
    path = write(tmp_path, text)
    members, found = read_for_sending(path)
    assert not found.finished and found.excluded == []  # nothing is read before the iterator runs
    assert [(m.email, m.name, m.line) for m in members] == [
        ("ann@example.org", "Ann", 2),
        ("cat@example.org", "Cat", 8),
    ]
    assert found.finished
    assert [line for line, _ in found.excluded] == [3, 4, 6]
    assert (found.excluded_rows, found.merged_rows) == (3, 1)
    assert "line break (LF)" in found.problems[1].message
    assert found.problems[2].message == "the address starts with '=', which a spreadsheet runs as a formula"
    ((line, warning),) = found.merged
    assert str(warning) == (
        "subscribers.csv:7: same address as line 2: mailed once, as on line 2 — delete one of the rows"
    )
    for problem in found.problems + found.warnings:
        for secret in ("ann@", "eve@", "all@", "HYPERLINK", "not-an-address"):
            assert secret.casefold() not in str(problem).casefold()
    # `check` stays strict: the same file fails as a whole (exit 1).
    with pytest.raises(DataError) as caught:
        check_file(path)
    assert [p.line for p in caught.value.problems] == [3, 4, 6, 7]


def test_read_for_sending_reports_as_the_iterator_advances(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nann@example.org\nbroken\ncat@example.org\n")
    members, found = read_for_sending(path, "group/subscribers.csv")
    assert next(members).email == "ann@example.org" and found.excluded == []
    assert next(members).email == "cat@example.org"
    assert [str(p) for p in found.problems] == [
        "group/subscribers.csv:3: the address is not valid (missing '@') — fix the email cell on that row"
    ]
    assert not found.finished
    assert list(members) == [] and found.finished
    assert found.stamp == file_stamp(path)


LONG_LIST = "email,name\n" + "".join(f"m{i}@example.org,M\n" for i in range(600)) + "zoe@example.org,Zoë\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("E-mail,Name\nann@example.org,Ann\n", "no 'email' column"),
        ("email,name,name\nann@example.org,A,B\n", "appears twice"),
        ("ann@example.org,Ann\n", "not a header row"),
        ("", "the file is empty"),
        ("email\tname\nann@example.org\tAnn\n".encode("utf-16"), "UTF-16"),
        # The one byte that is not UTF-8 is in the last row: refused before any member is read.
        (LONG_LIST.encode("cp1252"), "not saved as UTF-8"),
    ],
)
def test_read_for_sending_refuses_a_file_it_cannot_use_at_all(
    tmp_path: Path, content: str | bytes, message: str
) -> None:
    with pytest.raises(DataError) as caught:
        read_for_sending(write(tmp_path, content))
    assert message in str(caught.value)
    assert "@example.org" not in str(caught.value)


def test_read_for_sending_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError) as caught:
        read_for_sending(tmp_path / "subscribers.csv")
    assert caught.value.problems[0].message == "file not found"


def test_read_for_sending_keeps_few_problems_and_little_memory_for_a_long_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sending_list, "MAX_LISTED", 50)  # 1,000 in use: the same rule, fewer rows here
    rows = "".join(f"member{i}@example.org,M\nbad{i},B\n" for i in range(2_000))
    path = write(tmp_path, "email,name\n" + rows + "MEMBER7@example.org,again\n")
    members, found = sending_list.read_for_sending(path)
    tracemalloc.start()
    try:
        count = sum(1 for _ in members)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 2_000
    assert (found.excluded_rows, len(found.excluded)) == (2_000, 50)
    assert [line for line, _ in found.merged] == [4_002]
    print(f"peak {peak / 1e6:.2f} MB for 4,000 rows")
    assert peak < 800_000  # one row at a time: what is kept does not grow with the rows read


def test_seen_addresses_find_the_first_line_through_growth() -> None:
    seen = SeenAddresses(capacity=4)
    for number in range(5_000):
        assert seen.first_line(f"m{number}@example.org", number + 2) is None
    assert len(seen) == 5_000
    assert all(seen.first_line(f"m{n}@example.org", 1) == n + 2 for n in range(0, 5_000, 7))
    assert seen.first_line("new@example.org", 9_999) is None


# --- cells a spreadsheet would run as a formula --------------------------------------------------------


def test_formula_like_cells_are_warnings_by_line_and_column(tmp_path: Path) -> None:
    text = (
        "email,name,phone,note\n"
        'ann@example.org,=HYPERLINK("http://x"),+1 864 555 0100,\n'  # 2: the name
        "bea@example.org,Bea,-,@home\n"  # 3: the note (a lone dash is harmless)
        "cat@example.org,Cat,(864) 555-0102,-2+3+cmd|' /C calc'!A0\n"  # 4: the note
        "bad,+Bad,,\n"  # 5: the row is a problem of its own, left to check_file
    )
    warnings = formula_warnings(write(tmp_path, text))
    assert [(w.line, w.message) for w in warnings] == [
        (2, "the name cell starts with '=', which a spreadsheet may run as a formula"),
        (3, "the note cell starts with '@', which a spreadsheet may run as a formula"),
        (4, "the note cell starts with '-', which a spreadsheet may run as a formula"),
    ]
    assert all(w.hint and "HYPERLINK" not in str(w) for w in warnings)
    assert formula_warnings(ROOT / "subscribers.csv") == []


@pytest.mark.parametrize("sign", ["=", "+", "-", "@"])
def test_an_address_starting_with_a_formula_sign_is_a_row_problem(tmp_path: Path, sign: str) -> None:
    problem = only_problem(write(tmp_path, f"email\n{sign}cmd@example.org\n"), secret="cmd@example.org")
    assert (problem.line, problem.message) == (
        2,
        f"the address starts with '{sign}', which a spreadsheet runs as a formula",
    )
