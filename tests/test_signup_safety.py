"""Issue 12, items 6 and 7: no formula reaches subscribers.csv, sign-ups cannot mail-bomb a mailbox or a
domain, and forms sent from other sites change nothing; against the app served by uvicorn on 127.0.0.1
with a real aiosmtpd, and the real commands.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import httpx
import pytest

from newsletter.inputs.members_edit import FORMULA_START
from newsletter.state.ledger import Ledger
from newsletter.state.members import mailbox
from newsletter.web.pages import origin_of
from newsletter.web.public import PENDING_PER_ADDRESS, PENDING_PER_DOMAIN

from .conftest import CliRunner
from .smtpd import Server
from .test_web import STATE, Site, one_click_url, pending_sign_ups, send_reminder, server_logs, start_site
from .test_web import site as site  # the app on a real port (a fixture)

FORMULA_ADDRESS = "=cmd|'/Ccalc'!A0@evil.example"
FORMULA_NAME = '=HYPERLINK("http://x")'
FOREIGN = "https://evil.example"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"


def table(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def formula_cells(path: Path) -> list[str]:
    """Every cell of the file a spreadsheet would run as a formula."""
    return [cell for row in table(path) for cell in row if cell.startswith(FORMULA_START)]


def row_of(path: Path, address: str) -> dict[str, str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return next(r for r in csv.DictReader(fh) if r["email"].lower() == address)


def pending_keys(group: Path) -> list[str]:
    with Ledger(group / STATE) as ledger:
        return [str(row[0]) for row in ledger.db.execute("SELECT key FROM signups ORDER BY 1")]


# --- spreadsheet safety ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", [FORMULA_ADDRESS, "+cmd@evil.example", "-cmd@evil.example", "'=cmd@evil.example"]
)
def test_a_sign_up_with_a_formula_address_is_refused_and_nothing_is_written(site: Site, address: str) -> None:
    before = (site.group / "subscribers.csv").read_bytes()
    answer = site.sign_up(address, "Ann")
    assert answer.status_code == 400
    assert "Please enter an email address like name@example.org" in answer.text
    assert re.search(r'id="email"[^>]*aria-invalid="true"', answer.text)
    assert site.smtp.messages == [] and pending_sign_ups(site.group) == []
    assert (site.group / "subscribers.csv").read_bytes() == before


def test_a_formula_name_from_sign_up_lands_in_the_list_with_a_quote(site: Site) -> None:
    assert site.sign_up("ann.new@example.org", FORMULA_NAME).status_code == 200
    assert site.http.post(site.confirm_link()).status_code == 200
    path = site.group / "subscribers.csv"
    assert row_of(path, "ann.new@example.org")["name"] == "'" + FORMULA_NAME
    assert formula_cells(path) == []


def test_a_formula_name_from_subscribers_add_lands_with_a_quote(group: Path, run: CliRunner) -> None:
    path = group / "subscribers.csv"
    code, out, err = run(group, "subscribers", "add", "ann.new@example.org", "--name", FORMULA_NAME)
    assert code == 0, err
    assert row_of(path, "ann.new@example.org")["name"] == "'" + FORMULA_NAME
    code, out, err = run(group, "subscribers", "add", "ann.new@example.org", "--name", FORMULA_NAME)
    assert code == 0 and "nothing changed" in out  # the quote is ours, not a change of name
    # The organisers' own cells are left as they typed them; only what the program writes is quoted.
    path.write_text(path.read_text() + "cy@example.org,-Cy-\n", encoding="utf-8")
    assert run(group, "subscribers", "add", "dee@example.org", "--name", "@dee")[0] == 0
    assert formula_cells(path) == ["-Cy-"]
    assert row_of(path, "dee@example.org")["name"] == "'@dee"


def test_subscribers_add_refuses_a_formula_address_without_repeating_it(group: Path, run: CliRunner) -> None:
    before = (group / "subscribers.csv").read_bytes()
    code, out, err = run(group, "subscribers", "add", FORMULA_ADDRESS, "--name", "Evil")
    assert code == 2
    assert "formula" in err and "evil.example" not in err and "cmd" not in err
    assert (group / "subscribers.csv").read_bytes() == before


def test_an_import_names_the_lines_of_formula_addresses_and_writes_nothing_of_them(
    group: Path, run: CliRunner, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(
        "email,name,+phone\n"
        f'ann.new@example.org,"{FORMULA_NAME.replace(chr(34), chr(34) * 2)}",+1 555 0100\n'  # 2
        f"{FORMULA_ADDRESS},Evil,\n"  # 3
        "'=quoted@evil.example,Evil,\n"  # 4: an export's ' comes off, and then it is a formula
        "''-twice@evil.example,Evil,\n"  # 5: still one after that
        "bea.new@example.org,Bea,\n",  # 6
        encoding="utf-8",
    )
    code, out, err = run(group, "subscribers", "import", str(people))
    assert code == 1  # rows were skipped, the good ones are in
    assert "2 added, 0 updated, 0 already there, 3 skipped" in out
    for line in (3, 4, 5):
        assert re.search(rf"people\.csv:{line}: the address .*formula", out), out
    assert "evil.example" not in out + err and "cmd" not in out + err
    path = group / "subscribers.csv"
    assert "evil" not in path.read_text() and formula_cells(path) == []
    assert row_of(path, "ann.new@example.org") == {
        "email": "ann.new@example.org",
        "name": "'" + FORMULA_NAME,
        "joined": "",
        "'+phone": "'+1 555 0100",
    }
    # The same file again: nothing changes, the quotes the import put in included.
    before = path.read_bytes()
    code, out, err = run(group, "subscribers", "import", str(people))
    assert "0 added, 0 updated, 2 already there, 3 skipped" in out
    assert path.read_bytes() == before


# --- caps on outstanding confirmation mails --------------------------------------------------------


def test_mailbox_leaves_out_the_tag_and_the_capitals() -> None:
    assert mailbox("Victim+17@Example.ORG") == "victim@example.org"
    assert mailbox("victim@example.org") == "victim@example.org"
    assert mailbox("a+b+c@x.example") == "a@x.example"


def test_sixty_tagged_sign_ups_for_one_mailbox_send_at_most_the_cap(site: Site) -> None:
    answers = []
    for n in range(60):
        address = f"victim+{n}@example.org" if n % 2 else f"Victim+{n}@EXAMPLE.org"
        # From as many clients as it takes: the per-visitor limit is not what stops this.
        answers.append(site.sign_up(address, "V", **{"X-Forwarded-For": f"198.51.100.{n}"}))
    assert {(a.status_code, a.text) for a in answers} == {(200, answers[0].text)}
    assert len(site.smtp.messages) == PENDING_PER_ADDRESS == 3
    assert pending_keys(site.group) == ["victim@example.org"] * 3  # the mailbox, not the address typed
    # Another mailbox of the same domain is not held up by her cap.
    assert site.sign_up("neighbour@example.org", **{"X-Forwarded-For": "203.0.113.1"}).status_code == 200
    assert len(site.smtp.messages) == 4


def test_one_domain_gets_at_most_its_cap_of_outstanding_confirmations(site: Site) -> None:
    answers = [
        site.sign_up(f"person{n}@example.net", **{"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(25)
    ]
    assert {(a.status_code, a.text) for a in answers} == {(200, answers[0].text)}
    assert len(site.smtp.messages) == PENDING_PER_DOMAIN == 20
    assert all(m.rcpt_tos[0].endswith("@example.net") for m in site.smtp.messages)
    other = site.sign_up("someone@example.com", **{"X-Forwarded-For": "203.0.113.1"})
    assert other.text == answers[0].text and len(site.smtp.messages) == 21  # other domains go on
    # A confirmed sign-up no longer counts; nor, after 48 hours, an unconfirmed one.
    assert site.http.post(site.confirm_link(0)).status_code == 200
    site.sign_up("late@example.net", **{"X-Forwarded-For": "203.0.113.2"})
    assert len(site.smtp.messages) == 22
    site.clock.advance(hours=49)
    site.sign_up("later@example.net", **{"X-Forwarded-For": "203.0.113.3"})
    assert len(site.smtp.messages) == 23


# --- forms sent from other sites -------------------------------------------------------------------


def test_origin_of_compares_scheme_host_and_port() -> None:
    assert origin_of("https://News.Example.org:443/confirm/x?y") == "https://news.example.org"
    assert origin_of("HTTP://127.0.0.1:8025/signup") == "http://127.0.0.1:8025"
    assert origin_of("http://[::1]:80/") == "http://[::1]"
    assert [origin_of(bad) for bad in ("null", "", "file:///x", "https://x.example:99999")] == [None] * 4


def test_a_sign_up_from_another_site_is_refused_and_changes_nothing(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    port = site.url.rsplit(":", 1)[1]
    forged = [
        {"Origin": FOREIGN},
        {"Origin": "null"},  # a sandboxed frame or a data: page
        {"Origin": FOREIGN, "Referer": f"{site.url}/signup"},  # Origin is what counts
        {"Origin": f"https://127.0.0.1:{port}"},
        {"Origin": f"http://localhost:{port}"},
        {"Origin": "http://127.0.0.1:1"},
    ]
    data = {"name": "Ann", "email": "ann@example.org", "website": ""}
    with caplog.at_level(logging.INFO):
        answers = [site.http.post("/signup", data=data, headers=h) for h in forged]
        answers.append(httpx.post(f"{site.url}/signup", data=data))  # neither Origin nor Referer
        answers.append(httpx.post(f"{site.url}/signup", data=data, headers={"Referer": f"{FOREIGN}/x"}))
    assert {a.status_code for a in answers} == {403}
    assert "nothing was changed" in answers[0].text and "ann@" not in answers[0].text
    assert site.smtp.messages == [] and pending_sign_ups(site.group) == []
    logged = server_logs(caplog)
    assert f"refused a POST to /signup from {FOREIGN}" in logged and "no Origin or Referer" in logged
    assert "ann@" not in logged and "/x" not in logged
    # None of them used up the visitor's sign-ups (5 an hour): hers, from the site's page, go through.
    same_site = {"Origin": site.url.upper().replace("HTTP://", "http://")}  # spelt otherwise, same site
    assert site.sign_up("ann@example.org", "Ann", **same_site).status_code == 200
    referer_only = httpx.post(
        f"{site.url}/signup",
        data=data | {"email": "bea@example.org"},
        headers={"Referer": f"{site.url}/signup"},
    )
    assert referer_only.status_code == 200 and len(site.smtp.messages) == 2


def test_a_confirmation_from_another_site_is_refused(site: Site) -> None:
    site.sign_up("ann.new@example.org", "Ann")
    link = site.confirm_link()
    assert site.http.post(link, headers={"Origin": FOREIGN}).status_code == 403
    assert httpx.post(link).status_code == 403  # neither header
    assert "ann.new@example.org" not in site.members()
    assert site.http.post(link).status_code == 200  # the link still works from its own page
    assert "ann.new@example.org" in site.members()


def test_the_unsubscribe_button_from_another_site_is_refused_but_one_click_is_not(
    site: Site, run: CliRunner, caplog: pytest.LogCaptureFixture
) -> None:
    send_reminder(run, site)
    link = site.footer_link("linda.harper@example.org")
    with caplog.at_level(logging.INFO):
        assert site.http.post(link, headers={"Origin": FOREIGN}).status_code == 403
        assert httpx.post(link).status_code == 403  # the button's empty form, with no header at all
    assert site.suppressed() == {} and "linda.harper@example.org" in site.members()
    assert link.rsplit("/", 1)[1] not in server_logs(caplog)
    # RFC 8058: a mail provider's one-click POST comes from its own servers, with its own Origin or
    # none; it only ever unsubscribes, so it is taken as it comes.
    rosa = next(m for m in site.smtp.messages if m.rcpt_tos == ["rosa.delgado@example.org"])
    headers = {"content-type": FORM, "Origin": FOREIGN}
    answer = httpx.post(one_click_url(rosa.message), content=ONE_CLICK, headers=headers)
    assert answer.status_code == 200
    assert site.suppressed()["rosa.delgado@example.org"][1] == "one-click"
    assert site.http.post(link).status_code == 200  # Linda's own click on our page
    assert site.suppressed()["linda.harper@example.org"][1] == "link"


def test_behind_a_proxy_forms_come_from_the_public_url_not_the_address_served(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_site(group, smtp, monkeypatch, public_url="https://news.example.org") as site:
        assert site.sign_up("ann@example.org", **{"Origin": "https://news.example.org"}).status_code == 200
        assert site.sign_up("bea@example.org").status_code == 403  # Origin: the address served
        assert [m.rcpt_tos for m in site.smtp.messages] == [["ann@example.org"]]


def test_a_refused_form_page_is_a_page_of_the_site(site: Site) -> None:
    for path, root in (("/signup", ""), ("/confirm/abc", "../")):
        answer = site.http.post(path, headers={"Origin": FOREIGN})
        assert answer.status_code == 403 and '<html lang="en" dir="ltr">' in answer.text
        assert f'href="{root}signup"' in answer.text and f'href="{root}web.css"' in answer.text
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_a_name_kept_as_text_for_excel_reads_as_itself_in_the_mail(group: Path, run: CliRunner) -> None:
    # The program stores a formula-looking name with a leading ' so a spreadsheet shows it as text;
    # the member's mail shows the name as she wrote it, without the quote.
    assert run(group, "subscribers", "add", "ann.lee@example.org", "--name", "=Ann Lee")[0] == 0
    assert "'=Ann Lee" in (group / "subscribers.csv").read_text(encoding="utf-8")
    code, out, err = run(group, "send", "--at", "2026-12-01T09:05")
    assert code == 0, err
    [mail] = [p for p in (group / "outbox").rglob("*.eml") if "ann.lee@" in p.name]
    text = mail.read_bytes().decode("ascii", "replace")
    assert "Dear =3DAnn Lee," in text or "Dear =Ann Lee," in text
    assert "'=3DAnn" not in text and "'=Ann" not in text
