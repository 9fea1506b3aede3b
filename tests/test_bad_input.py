"""Every organiser mistake: a message naming the file, the line and the fix, exit 1, and no mail sent."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import BEFORE_FIRST, CliRunner
from .smtpd import Server


@dataclass(frozen=True)
class Case:
    id: str
    file: str  # relative to the group folder
    old: str  # text replaced ("" appends)
    new: str
    expect: str  # a fragment of the message besides the location
    encoding: str = "utf-8"


def line_of(text: str, fragment: str) -> int:
    first = fragment.strip("\n").split("\n")[0]
    for number, line in enumerate(text.split("\n"), start=1):
        if first and first in line:
            return number
    raise AssertionError(f"{fragment!r} not in file")


CASES = [
    # subscribers.csv
    Case("csv-no-email-column", "subscribers.csv", "email,name,joined", "mail,name,joined", "email"),
    Case("csv-not-utf8", "subscribers.csv", "", "zoe2@example.org,Zoë Two,2021-01-01\n", "UTF-8", "cp1252"),
    # schedule.yaml
    Case(
        "yaml-time-not-hhmm",
        "schedule.yaml",
        'time: "18:00"\n    title: Support',
        "time: 6:30\n    title: Support",
        "morning or evening",
    ),
    Case("yaml-impossible-date", "schedule.yaml", "date: 2026-12-08", "date: 2026-02-30", "date"),
    Case(
        "yaml-unknown-timezone",
        "schedule.yaml",
        "timezone: America/New_York",
        "timezone: America/Greenvile",
        "timezone",
    ),
    Case(
        "yaml-wrong-weekday",
        "schedule.yaml",
        "- date: 2026-12-08\n      weekday: Tuesday",
        "- date: 2026-12-09\n      weekday: Tuesday",
        "Tuesday",
    ),
    Case(
        "yaml-unknown-key",
        "schedule.yaml",
        "      venue:\n        name: Copper",
        "      venu:\n        name: Copper",
        "venu",
    ),
    Case("yaml-bad-before", "schedule.yaml", "before: 7 days", "before: 7 dayz", "before"),
    Case(
        "yaml-reminder-after-meeting",
        "schedule.yaml",
        '{name: day-before, before: 1 day, at: "09:00"}',
        '{name: day-before, before: 0 days, at: "20:00"}',
        "after",
    ),
    Case(
        "yaml-missing-article",
        "schedule.yaml",
        "article: second-opinion",
        "article: second-opinon",
        "article",
    ),
    Case(
        "yaml-syntax",
        "schedule.yaml",
        "  timezone: America/New_York",
        "  timezone: America: New_York",
        "YAML",
    ),
    Case(
        "yaml-bad-sender",
        "schedule.yaml",
        "sender: Women's Cancer Support Group <news@example.org>",
        "sender: news at example.org",
        "sender",
    ),
    Case("yaml-bad-month", "schedule.yaml", "months: [February,", "months: [Febuary,", "Febuary"),
    # content/articles
    Case("article-no-title", "content/articles/second-opinion.md", "title: Tips", "titel: Tips", "title"),
    Case(
        "article-bad-date",
        "content/articles/second-opinion.md",
        "date: 2013-10-12",
        "date: 12 October 2013",
        "date",
    ),
    # templates
    Case(
        "template-unknown-variable",
        "templates/partials/meeting.html",
        "{{ meeting.date_text }}<br>",
        "{{ meeting.date_txt }}<br>",
        "date_txt",
    ),
    Case(
        "template-syntax",
        "templates/reminder.txt",
        "",
        "{% if meeting.cancelled %}\nnever closed\n",
        "template",
    ),
]


def apply(group: Path, case: Case) -> int:
    path = group / case.file
    text = path.read_text(encoding="utf-8")
    if case.old:
        assert case.old in text, case.id
        text = text.replace(case.old, case.new, 1)
        path.write_bytes(text.encode(case.encoding))
    else:  # an appended row, in the case's encoding (the rest stays as it was)
        path.write_bytes(text.encode("utf-8") + case.new.encode(case.encoding))
        text = text + case.new
    return line_of(text, case.new)


#: A problem confined to one row of subscribers.csv: that row is left out, everyone else is mailed.
ROW_CASES = [
    Case("csv-bad-address", "subscribers.csv", "", "not-an-address,Ann\n", "address"),
    Case("csv-newline-in-name", "subscribers.csv", "", 'eve@example.org,"Eve\nBcc: x@example.com"\n', "name"),
    Case(
        "csv-encoded-newline",
        "subscribers.csv",
        "",
        "eve@example.org,Eve =?UTF-8?Q?=0A?=Bcc: x@example.com\n",
        "name",
    ),
    Case("csv-too-many-cells", "subscribers.csv", "", "ann@example.org,Ann,2020-01-01,extra,cells\n", "cell"),
]


@pytest.mark.parametrize("case", ROW_CASES, ids=[c.id for c in ROW_CASES])
def test_a_row_problem_leaves_out_that_row_only_and_check_names_it(
    case: Case, group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = apply(group, case)
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 0, (out, err)
    assert len(smtp.messages) == 5  # the five good rows
    assert f"left out: subscribers.csv:{line}:" in err and case.expect.lower() in err.lower()
    code, out, check_err = run(group, "check")
    assert code == 1 and f"subscribers.csv:{line}:" in check_err
    for address in ("eve@example.org", "ann@example.org", "x@example.com", "not-an-address"):
        assert address not in err.lower() and address not in check_err.lower()


def test_a_duplicate_row_in_another_case_is_merged_with_a_warning(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = apply(
        group,
        dup_case := Case(
            "csv-duplicate", "subscribers.csv", "", "LINDA.HARPER@example.org,Linda again\n", "same address"
        ),
    )
    monkeypatch.setenv("SMTP_URL", smtp.url)
    assert run(group, "send", "--at", BEFORE_FIRST)[0] == 0
    assert sorted(m.rcpt_tos[0].lower() for m in smtp.messages).count("linda.harper@example.org") == 1
    code, out, err = run(group, "check")
    assert code == 0, err
    assert f"warning: subscribers.csv:{line}:" in out and dup_case.expect in out


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_mistake_is_named_and_nothing_is_sent(
    case: Case, group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = apply(group, case)
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 1, (out, err)
    assert smtp.messages == []
    assert "nothing was sent" in err
    assert case.expect.lower() in err.lower(), err
    if case.id == "template-syntax":  # an unclosed block is reported where the file ends
        assert f"{case.file}:" in err, err
    else:
        assert f"{case.file}:{line}:" in err, err
    assert " — " in err  # every message carries a hint after the dash
    # The same problems from `check`, and nobody's address in any of it.
    code, out, check_err = run(group, "check")
    assert code == 1
    assert f"{case.file}:" in check_err
    for address in ("linda.harper@example.org", "eve@example.org", "ann@example.org", "x@example.com"):
        assert address not in err.lower() and address not in check_err.lower()


def test_several_mistakes_are_reported_at_once(group: Path, run: CliRunner) -> None:
    apply(group, ROW_CASES[0])
    apply(group, next(c for c in CASES if c.id == "yaml-time-not-hhmm"))
    apply(group, next(c for c in CASES if c.file.startswith("content/")))
    code, out, err = run(group, "check")
    assert code == 1
    assert (
        "subscribers.csv:" in err and "schedule.yaml:" in err and "content/articles/second-opinion.md:" in err
    )
    assert "3 problems found" in err


SETTINGS: list[tuple[str, str, str]] = [
    ("SMTP_URL", "smtpx://mail.example.org", "unknown scheme"),
    ("SMTP_URL", "smtp://user:hunter2secret@mail.example.org:25", "unencrypted"),
    ("SMTP_URL", "smtp+starttls://mail.example.org:port", "port"),
    ("SMTP_CONNECTIONS", "four", "SMTP_CONNECTIONS"),
    ("SMTP_TIMEOUT", "-3", "SMTP_TIMEOUT"),
    ("NEWSLETTER_PUBLIC_URL", "news.example.org", "NEWSLETTER_PUBLIC_URL"),
    ("NEWSLETTER_SECRET", "short", "NEWSLETTER_SECRET"),
]


@pytest.mark.parametrize(("name", "value", "expect"), SETTINGS, ids=[f"{n}={v}" for n, v, _ in SETTINGS])
def test_bad_setting_says_which_and_sends_nothing(
    name: str,
    value: str,
    expect: str,
    group: Path,
    smtp: Server,
    run: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(name, value)
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 1, err
    assert expect in err
    assert "hunter2secret" not in err + out
    assert smtp.messages == [] and not (group / "outbox").exists()


def test_bad_env_file_line_is_named(group: Path, run: CliRunner) -> None:
    (group / ".env").write_text("SMTP_CONNECTIONS=2\nthis is not a setting\n", encoding="utf-8")
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 1
    assert ".env:2:" in err
    assert not (group / "outbox").exists()


def test_env_file_is_read_and_environment_wins(
    group: Path, run: CliRunner, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    (group / ".env").write_text(
        "SMTP_URL=smtp://127.0.0.1:1\nNEWSLETTER_OUTBOX=elsewhere\n", encoding="utf-8"
    )
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 0, err
    assert len(smtp.messages) == 5


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NEWSLETTER_REPLY_TO", "zoë@example.org"),
        ("NEWSLETTER_REPLY_TO", "not an address"),
        ("NEWSLETTER_FROM", "News <news@exämple.org>"),
    ],
)
def test_bad_sender_or_reply_to_setting_is_named(
    name: str, value: str, group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    for command in (["check"], ["send", "--at", BEFORE_FIRST]):
        code, out, err = run(group, *command)
        assert code == 1, err
        assert name in err and "Traceback" not in err
    assert not (group / "outbox").exists()


# --- the quick address check agrees with email_validator ----------------------------------------------

LOCALS = [
    "ann", "Ann.Lee", "o'brien", "a+tag", "x_y-z", "a.b.c", "1", "{weird}|~^`!#$%&*/=?", "POSTMASTER",
    "Abuse", "info", "www", "a..b", ".a", "a.", "ann lee", '"ann"', "zoë", "a" * 64, "a" * 65, "a" * 240,
]  # fmt: skip
DOMAINS = [
    "example.org", "Example.ORG", "mail.example.co.uk", "123.com", "x-y.org", "a.b.c.d.e.f.example.org",
    "xn--bcher-kva.example", "XN--BCHER-KVA.example", "bücher.example", "x.local", "x.test", "localhost",
    "x.123", "x_y.org", "-x.org", "x-.org", "ab--cd.org", "xn--abc.org", "x.org.", ".x.org", "x..org",
    "x.arpa", "x.home.arpa", "x.invalid", "x.onion", "x.internal", "x", "[127.0.0.1]",
    f"{'a' * 63}.org", f"{'a' * 64}.org", ".".join(["abcdefghi"] * 26) + ".org",
]  # fmt: skip


def _by_email_validator(address: str) -> str | None:
    """What validate_address gave before its quick path: email_validator's answer, every time."""
    from email_validator import EmailNotValidError, validate_email

    try:
        found = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return str(found.ascii_email or found.normalized)


def test_the_quick_address_check_gives_what_email_validator_gives() -> None:
    from newsletter.errors import InvalidValue
    from newsletter.inputs.member_values import validate_address

    addresses = [f"{local}@{domain}" for local in LOCALS for domain in DOMAINS]
    addresses += ["ann@", "@example.org", "ann@@example.org", "a@b@example.org", "Ann Lee <ann@example.org>"]
    assert len(addresses) > 600
    for address in addresses:
        expected = _by_email_validator(address)
        if address.startswith(("=", "+", "-", "@")):
            continue  # refused before email_validator is asked (tested elsewhere)
        try:
            got: str | None = validate_address(address)
        except InvalidValue:
            got = None
        assert got == expected, address
    # Asked twice, the domain's verdict comes from the cache: the same answers.
    for address in addresses[:50]:
        try:
            again: str | None = validate_address(address)
        except InvalidValue:
            again = None
        assert again == _by_email_validator(address), address


def test_a_refused_address_gets_email_validators_message_whatever_the_path() -> None:
    from newsletter.errors import InvalidValue
    from newsletter.inputs.member_values import validate_address

    validate_address("someone@x.local.example.org")  # the domain's verdict may be cached first
    for address, reason in [
        ("ann@x.local", "special-use or reserved name"),
        ("ann@x..org", "two periods in a row"),
        ("a..b@example.org", "two periods in a row"),
        ("ann@x_y.org", "invalid characters"),
        ("ann@" + "a" * 250 + ".org", "too long"),
    ]:
        with pytest.raises(InvalidValue) as caught:
            validate_address(address)
        assert reason in caught.value.message, (address, caught.value.message)


def test_control_characters_are_found_as_unicodedata_classifies_them() -> None:
    import sys
    import unicodedata

    from newsletter.inputs.header_text import _CONTROL, control_character

    for code in range(sys.maxunicode + 1):
        char = chr(code)
        expected = unicodedata.category(char) in ("Cc", "Zl", "Zp")
        assert bool(_CONTROL.fullmatch(char)) == expected, hex(code)
    assert control_character("Zoë\u2028Bcc") == "a line break (U+2028)"
    assert control_character("ann\x85") == "a line break (U+0085)"
    assert control_character("a\tb\nc") == "a tab"
    assert control_character("a\x7fb") == "a control character (U+007F)"
    assert control_character("Siobhán Ólafsdóttir") is None
