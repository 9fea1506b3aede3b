"""`newsletter serve` over real HTTP: the app served by uvicorn on 127.0.0.1 in a thread, real mail."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from newsletter.errors import ConfigError
from newsletter.inputs.members import read_subscribers
from newsletter.inputs.members_edit import locked
from newsletter.project import load_project
from newsletter.settings import resolve
from newsletter.state.ledger import Ledger, iso
from newsletter.web.public import RequestLimit, create_app

from .conftest import BEFORE_FIRST, CliRunner
from .smtpd import Recorder, Server

STATE = Path(".newsletter/state.sqlite3")
START = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@contextmanager
def serving(make_app: Callable[[str], Any]) -> Iterator[str]:
    """Serve ``make_app(url)`` with uvicorn on a free port of 127.0.0.1 in a thread; yields the URL.

    The socket is bound first so the app (and NEWSLETTER_PUBLIC_URL) can know its own address.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        make_app(url),
        log_level="warning",
        lifespan="off",
        access_log=False,
        proxy_headers=True,  # as `newsletter serve` runs it: X-Forwarded-For trusted from 127.0.0.1
        forwarded_allow_ips="127.0.0.1",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@dataclass
class Site:
    url: str
    group: Path
    smtp: Server
    clock: Clock
    http: httpx.Client

    def members(self) -> list[str]:
        return [m.key for m in read_subscribers(self.group / "subscribers.csv")]

    def suppressed(self) -> dict[str, tuple[str, str]]:
        with Ledger(self.group / STATE) as ledger:
            return ledger.suppressed()

    def sign_up(self, email: str, name: str = "", **headers: str) -> httpx.Response:
        return self.http.post("/signup", data={"name": name, "email": email, "website": ""}, headers=headers)

    def confirm_link(self, index: int = -1) -> str:
        """The link in a confirmation mail that reached the SMTP server."""
        text = body(self.smtp.messages[index].message, "plain")
        match = re.search(rf"{re.escape(self.url)}/confirm/[\w-]+", text)
        assert match, text
        return match.group(0)

    def footer_link(self, address: str) -> str:
        """The unsubscribe link in the footer of the reminder that reached ``address``."""
        mail = next(m for m in reversed(self.smtp.messages) if m.rcpt_tos == [address])
        hrefs = re.findall(r'href="([^"]+)"', body(mail.message, "html"))
        link = next(h for h in hrefs if "/unsubscribe/" in h)
        assert link.startswith(f"{self.url}/unsubscribe/")
        return link


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None
    return str(part.get_content())


def one_click_url(msg: EmailMessage) -> str:
    """The https target of List-Unsubscribe (RFC 8058 needs List-Unsubscribe-Post beside it)."""
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (url,) = re.findall(r"<(http[^>]+)>", msg["List-Unsubscribe"])
    return str(url)


@contextmanager
def start_site(
    group: Path,
    smtp: Server,
    monkeypatch: pytest.MonkeyPatch,
    *,
    limit: RequestLimit | None = None,
    start: dt.datetime = START,
    public_url: str | None = None,
    **options: Any,
) -> Iterator[Site]:
    """The app on a real port; ``options`` go to create_app (e.g. lock_wait).

    ``public_url``: the address people use, behind a reverse proxy (by default the address served).
    """
    monkeypatch.setenv("SMTP_URL", smtp.url)
    clock = Clock(start)
    limit = limit or RequestLimit(per_client=5, overall=100, window=3600, clock=lambda: clock.now.timestamp())

    def make(url: str) -> Any:
        monkeypatch.setenv("NEWSLETTER_PUBLIC_URL", public_url or url)  # what `newsletter send` puts in mails
        project = load_project(resolve(group), check_subscribers=False)
        return create_app(project, base_url=public_url or url, clock=clock, limit=limit, **options)

    # Like a browser on the site's own pages, the client says where its forms come from (Origin).
    with (
        serving(make) as url,
        httpx.Client(base_url=url, headers={"Origin": url}, follow_redirects=False, timeout=30) as http,
    ):
        yield Site(url, group, smtp, clock, http)


@pytest.fixture
def site(group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    with start_site(group, smtp, monkeypatch) as started:
        yield started


def server_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What the app logged: not the test's own HTTP client and SMTP server, which log what they see."""
    ours = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore", "mail.log"))]
    return "\n".join(r.getMessage() for r in ours)


def send_reminder(run: CliRunner, site: Site) -> None:
    code, out, err = run(site.group, "send", "--at", BEFORE_FIRST)
    assert code == 0, err


# --- unsubscribe -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("urlencoded", {"content": b"List-Unsubscribe=One-Click"}),
        ("multipart", {"files": {"List-Unsubscribe": (None, b"One-Click")}}),
    ],
)
def test_one_click_post_unsubscribes_with_200_no_redirect_no_cookie(
    site: Site, run: CliRunner, kind: str, payload: dict[str, Any]
) -> None:
    send_reminder(run, site)
    mail = next(m for m in site.smtp.messages if m.rcpt_tos == ["rosa.delgado@example.org"])
    url = one_click_url(mail.message)
    headers = {"content-type": "application/x-www-form-urlencoded"} if kind == "urlencoded" else {}
    # A mail program's POST: no cookies, no page visited before, no redirects followed.
    response = httpx.post(url, headers=headers, follow_redirects=False, **payload)
    assert response.status_code == 200
    assert "set-cookie" not in response.headers
    assert "rosa" not in response.text.lower()
    assert site.suppressed()["rosa.delgado@example.org"][1] == "one-click"
    assert "rosa.delgado@example.org" not in site.members()
    # Sending again (the next reminder) skips her.
    code, out, err = run(site.group, "send", "--at", BEFORE_FIRST, "--reminder", "day-before")
    assert code == 0, err
    later = site.smtp.messages[5:]
    assert len(later) == 4 and all(m.rcpt_tos != ["rosa.delgado@example.org"] for m in later)


def test_the_footer_link_opens_a_page_and_only_its_button_unsubscribes(site: Site, run: CliRunner) -> None:
    send_reminder(run, site)
    link = site.footer_link("linda.harper@example.org")
    before = (site.group / "subscribers.csv").read_bytes()
    for _ in range(3):  # link scanners: GET and HEAD, as often as they like
        page = site.http.get(link)
        assert page.status_code == 200 and site.http.head(link).status_code == 200
    assert '<form method="post" action="">' in page.text and "<button" in page.text
    assert (site.group / "subscribers.csv").read_bytes() == before and site.suppressed() == {}
    done = site.http.post(link)  # the button posts an empty form to the same address
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert site.suppressed()["linda.harper@example.org"][1] == "link"
    assert "linda.harper@example.org" not in site.members()


def test_every_unsubscribe_answer_is_the_same(site: Site, run: CliRunner) -> None:
    send_reminder(run, site)
    link = site.footer_link("carol.jenkins@example.org")
    token = link.rsplit("/", 1)[1]
    tampered = link[:-1] + ("A" if link[-1] != "A" else "B")
    answers = [
        site.http.post(link),  # valid
        site.http.post(link),  # already unsubscribed
        site.http.post(tampered),
        site.http.post(f"{site.url}/unsubscribe/{'x' * len(token)}"),  # unknown
        site.http.post(f"{site.url}/unsubscribe/short"),
    ]
    assert {(a.status_code, a.text) for a in answers} == {(200, answers[0].text)}
    pages = {site.http.get(u).text for u in (link, tampered, f"{site.url}/unsubscribe/short")}
    assert len(pages) == 1
    assert list(site.suppressed()) == ["carol.jenkins@example.org"]


def test_unsubscribed_by_link_gets_nothing_after_a_reimport_that_contains_it(
    site: Site, run: CliRunner, tmp_path: Path
) -> None:
    send_reminder(run, site)
    assert site.http.post(one_click_url(site.smtp.messages[0].message), content=b"List-Unsubscribe=One-Click")
    gone = site.smtp.messages[0].rcpt_tos[0]
    backup = tmp_path / "backup.csv"
    backup.write_text(f"email,name\n{gone},Back Again\nnew.member@example.org,New\n", encoding="utf-8")
    code, out, err = run(site.group, "subscribers", "import", str(backup))
    assert code == 0 and "1 added" in out and "unsubscribed" in out
    code, out, err = run(site.group, "send", "--at", BEFORE_FIRST, "--reminder", "day-before")
    assert code == 0, err
    later = [m.rcpt_tos[0] for m in site.smtp.messages[5:]]
    assert len(later) == 5 and gone not in later and "new.member@example.org" in later


def test_an_unsubscribe_holds_even_when_the_file_is_broken(
    site: Site, run: CliRunner, caplog: pytest.LogCaptureFixture
) -> None:
    send_reminder(run, site)
    link = site.footer_link("friend.of.group@example.org")
    path = site.group / "subscribers.csv"
    path.write_text(path.read_text() + "no-at-sign,Broken\n", encoding="utf-8")
    with caplog.at_level(logging.INFO):
        assert site.http.post(link).status_code == 200
    assert "friend.of.group@example.org" in site.suppressed()
    assert "no-at-sign" in path.read_text()  # a file with problems is not rewritten
    logged = server_logs(caplog)
    assert "subscribers.csv has problems" in logged
    assert "friend.of.group" not in logged and link.rsplit("/", 1)[1] not in logged


# --- sign-up ---------------------------------------------------------------------------------------


def test_sign_up_needs_the_click_in_the_confirmation_mail(site: Site) -> None:
    form = site.http.get("/signup")
    assert form.status_code == 200
    assert '<label for="email">' in form.text and 'type="email"' in form.text
    answer = site.sign_up("Nina.Ross@example.org", "Nina Ross")
    assert answer.status_code == 200 and "Please check your email" in answer.text
    assert "nina" not in answer.text.lower()
    (mail,) = site.smtp.messages
    assert mail.rcpt_tos == ["Nina.Ross@example.org"] and mail.mail_from == "news@example.org"
    msg = mail.message
    assert str(msg["To"]) == "Nina.Ross@example.org"  # the typed name goes only into the list
    assert body(msg, "plain").splitlines()[0] == "Hello," and "Nina" not in body(msg, "plain")
    assert "Please confirm" in msg["Subject"] and msg["Auto-Submitted"] == "auto-generated"
    link = site.confirm_link()
    assert link in body(msg, "html") and "48 hours" in body(msg, "plain")
    assert "nina.ross@example.org" not in site.members()  # not before the click
    page = site.http.get(link)
    assert page.status_code == 200 and "<button" in page.text
    assert "nina.ross@example.org" not in site.members()  # nor after a GET
    done = site.http.post(link)
    assert done.status_code == 200 and "Thank you" in done.text
    assert "nina.ross@example.org" in site.members()
    row = next(
        m for m in read_subscribers(site.group / "subscribers.csv") if m.key == "nina.ross@example.org"
    )
    assert (row.email, row.name) == ("Nina.Ross@example.org", "Nina Ross")


def test_a_confirmation_that_cannot_be_written_can_be_clicked_again(site: Site) -> None:
    site.sign_up("patient@example.org", "Pat")
    link = site.confirm_link()
    path = site.group / "subscribers.csv"
    good = path.read_text()
    path.write_text(good + "broken-row,X\n", encoding="utf-8")
    trouble = site.http.post(link)
    assert trouble.status_code == 503 and "try again" in trouble.text
    path.write_text(good, encoding="utf-8")  # an organiser fixes the file
    assert site.http.post(link).status_code == 200
    assert "patient@example.org" in site.members()


def test_every_sign_up_and_confirm_answer_is_the_same(site: Site, run: CliRunner) -> None:
    assert run(site.group, "subscribers", "remove", "zoe.martin@example.org")[0] == 0
    answers = [
        site.sign_up("new.person@example.org", "New"),
        site.sign_up("linda.harper@example.org", "Linda"),  # already a member
        site.sign_up("zoe.martin@example.org", "Zoë"),  # unsubscribed
    ]
    assert {(a.status_code, a.text) for a in answers} == {(200, answers[0].text)}
    assert len(site.smtp.messages) == 3  # everyone gets the mail; only the owner of the address reads it
    links = [site.confirm_link(i) for i in range(3)]
    tampered = links[0][:-2] + "xy"
    confirmations = [
        site.http.post(tampered),
        site.http.post(links[0]),  # valid
        site.http.post(links[0]),  # used
        site.http.post(f"{site.url}/confirm/nonsense"),
    ]
    assert {(a.status_code, a.text) for a in confirmations} == {(200, confirmations[0].text)}
    # Confirming is the address owner's own opt-in: it lifts her earlier unsubscribe, and the
    # state database keeps the history of how she came back.
    assert site.http.post(links[2]).status_code == 200
    assert "zoe.martin@example.org" in site.members() and site.suppressed() == {}
    with Ledger(site.group / STATE) as ledger:
        assert ledger.resubscriptions() == {"zoe.martin@example.org": (iso(START), "sign-up")}
    code, out, err = run(site.group, "subscribers", "list")
    assert code == 0, err
    zoe = next(line for line in out.splitlines() if "zoe.martin@example.org" in line)
    assert "re-subscribed by sign-up on 2026-11-25" in zoe


def test_a_confirmation_link_expires_after_48_hours(site: Site) -> None:
    site.sign_up("late@example.org")
    site.sign_up("prompt@example.org")
    late, prompt = site.confirm_link(0), site.confirm_link(1)
    site.clock.advance(hours=47)
    site.http.post(prompt)
    site.clock.advance(hours=2)
    site.http.post(late)
    assert "prompt@example.org" in site.members() and "late@example.org" not in site.members()


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"email": "not-an-address", "name": "Ann"}, "email", "Please enter an email address"),
        ({"email": "", "name": "Ann"}, "email", "Please enter an email address"),
        ({"email": "ann@example.org", "name": "Ann\r\nBcc: all@example.org"}, "name", "on one line"),
        ({"email": "=cmd|'/Ccalc'!A0@evil.example", "name": "Ann"}, "email", "like name@example.org"),
        ({"email": "ann@example.org", "name": "A" * 101}, "name", "under 100 characters"),
    ],
)
def test_sign_up_mistakes_are_explained_beside_the_field(
    site: Site, fields: dict[str, str], field: str, says: str
) -> None:
    answer = site.http.post("/signup", data=fields)
    assert answer.status_code == 400
    assert says in answer.text and 'role="alert"' in answer.text
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true" aria-describedby="error"', answer.text)
    assert site.smtp.messages == []


def test_the_honeypot_gets_the_usual_answer_and_no_mail(site: Site) -> None:
    answer = site.http.post(
        "/signup", data={"email": "bot@example.org", "name": "Bot", "website": "http://spam"}
    )
    assert answer.status_code == 200 and "Please check your email" in answer.text
    assert site.smtp.messages == []


def test_sign_ups_are_rate_limited_per_client(site: Site) -> None:
    for n in range(5):
        assert site.sign_up(f"a{n}@example.org").status_code == 200
    refused = site.sign_up("a5@example.org")
    assert refused.status_code == 429 and "try again" in refused.text
    assert len(site.smtp.messages) == 5
    # Another client behind the reverse proxy (X-Forwarded-For from 127.0.0.1 is trusted) may.
    assert site.sign_up("b@example.org", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 200
    site.clock.advance(hours=1)
    assert site.sign_up("a6@example.org").status_code == 200


def test_one_address_gets_at_most_three_outstanding_confirmations(site: Site) -> None:
    for n in range(5):
        answer = site.sign_up("target@example.org", **{"X-Forwarded-For": f"198.51.100.{n}"})
        assert answer.status_code == 200 and "Please check your email" in answer.text
    assert len(site.smtp.messages) == 3


def test_the_overall_limit_counts_every_client() -> None:
    now = [0.0]
    limit = RequestLimit(per_client=2, overall=3, window=60, clock=lambda: now[0])
    assert [limit.allow(c) for c in ("a", "a", "a", "b", "c")] == [True, True, False, True, False]
    now[0] = 60.0
    assert limit.allow("c") and limit.hits.keys() == {"c"}  # old clients are forgotten


def test_when_the_mail_cannot_go_out_the_page_says_try_later(
    group: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusing = Recorder(rcpt_hook=lambda address: "550 no such user here")
    with Server(refusing) as smtp, start_site(group, smtp, monkeypatch) as site:
        answer = site.sign_up("ann@example.org")
        assert answer.status_code == 503 and "try again" in answer.text
        assert "ann@" not in answer.text


# --- the pages themselves --------------------------------------------------------------------------


def test_pages_send_no_cookies_and_strict_headers(site: Site) -> None:
    for path in ("/signup", "/unsubscribe/abc", "/confirm/abc", "/web.css", "/healthz"):
        response = site.http.get(path)
        assert response.status_code == 200, path
        assert "set-cookie" not in response.headers
        # The token must not travel to other sites, while our own forms still carry their Origin.
        assert response.headers["referrer-policy"] == "same-origin"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert len(response.headers.get_list("cache-control")) == 1
    page = site.http.get("/signup").text
    assert '<html lang="en" dir="ltr">' in page and 'name="viewport"' in page
    home = site.http.get("/")
    assert home.status_code == 303 and home.headers["location"] == "signup"


def test_nothing_the_app_logs_holds_an_address_or_a_token(
    site: Site, run: CliRunner, caplog: pytest.LogCaptureFixture
) -> None:
    send_reminder(run, site)
    with caplog.at_level(logging.INFO):  # `newsletter -v serve`
        site.sign_up("private.person@example.org", "Private")
        link = site.confirm_link()
        site.http.post(link)
        footer = site.footer_link("rosa.delgado@example.org")
        site.http.post(footer)
    logged = server_logs(caplog)
    assert "POST /unsubscribe/… 200" in logged  # requests are logged, without their token
    for secret in ("private.person", "rosa.delgado", link.rsplit("/", 1)[1], footer.rsplit("/", 1)[1]):
        assert secret not in logged


def test_missing_page_templates_are_a_config_error(group: Path) -> None:
    import shutil

    shutil.rmtree(group / "templates" / "web")
    with pytest.raises(ConfigError, match="templates/web"):
        create_app(load_project(resolve(group), check_subscribers=False), base_url="http://x")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_serve_command_runs_uvicorn_and_warns_without_a_public_url(group: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SMTP_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--dir", str(group), "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/signup", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.05)
        assert response.status_code == 200 and "Get the meeting reminders" in response.text
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert f"Serving on http://127.0.0.1:{port}" in out
    assert "NEWSLETTER_PUBLIC_URL is not set" in err and "mailto:" in err


# --- review fixes ----------------------------------------------------------------------------------


def test_an_accented_domain_is_kept_in_its_ascii_form(site: Site) -> None:
    answer = site.sign_up("ann@exämple.org", "Ann")
    assert answer.status_code == 200
    assert [m.rcpt_tos for m in site.smtp.messages] == [["ann@xn--exmple-cua.org"]]


@pytest.mark.parametrize("address", ["zoë@example.org", "李@example.org"])
def test_an_address_with_accents_is_refused_with_a_message_not_a_crash(site: Site, address: str) -> None:
    # The mail cannot be addressed without SMTPUTF8, and the reminders could not go out to it either.
    answer = site.sign_up(address, "Zoë")
    assert answer.status_code == 400
    assert "accented" in answer.text and 'role="alert"' in answer.text
    assert re.search(r'id="email"[^>]*aria-invalid="true"', answer.text)
    assert site.smtp.messages == []


def test_a_form_with_too_many_fields_is_a_bad_request_not_a_crash(site: Site) -> None:
    data = {f"extra{n}": "x" for n in range(12)} | {"email": "ann@example.org"}
    answer = site.http.post("/signup", data=data)
    assert answer.status_code == 400 and 'role="alert"' in answer.text
    assert site.smtp.messages == []


@pytest.mark.parametrize(
    "name",
    [
        'Ann "x" <evil@example.net>, bob@example.net',
        "Cheap pills at https://spam.example/buy",
        "Zoë from www.spam.example",
    ],
)
def test_the_confirmation_mail_never_repeats_the_typed_name(site: Site, name: str) -> None:
    """Anyone can type anything in the form and have the group's server mail it to any address."""
    assert site.sign_up("ann@example.org", name).status_code == 200
    (mail,) = site.smtp.messages
    assert mail.rcpt_tos == ["ann@example.org"]
    msg = mail.message
    assert str(msg["To"]) == "ann@example.org" and msg["To"].addresses[0].display_name == ""
    text, html = body(msg, "plain"), body(msg, "html")
    assert text.splitlines()[0] == "Hello," and ">Hello,</p>" in html
    for piece in ("evil", "bob@", "spam.example", "pills", "Zoë"):
        assert piece not in text and piece not in html and piece.encode() not in mail.data
    # The name she typed is kept for the list, and used once she has confirmed.
    site.http.post(site.confirm_link())
    row = next(m for m in read_subscribers(site.group / "subscribers.csv") if m.key == "ann@example.org")
    assert row.name == name


def test_an_unsubscribe_while_the_list_is_busy_still_answers_unsubscribed(
    group: Path,
    smtp: Server,
    run: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with start_site(group, smtp, monkeypatch, lock_wait=0.2) as site:
        send_reminder(run, site)
        link = site.footer_link("linda.harper@example.org")
        with locked(group / "subscribers.csv"), caplog.at_level(logging.INFO):  # an import runs
            answer = site.http.post(link)
        assert answer.status_code == 200 and "You are unsubscribed" in answer.text
        assert site.suppressed()["linda.harper@example.org"][1] == "link"  # no mail from now on
        logged = server_logs(caplog)
        assert "busy" in logged and "linda" not in logged and link.rsplit("/", 1)[1] not in logged
        # The row leaves the file with the next edit: the same click again, or any later one.
        assert site.http.post(link).status_code == 200
        assert "linda.harper@example.org" not in site.members()


def pending_sign_ups(group: Path) -> list[str]:
    with Ledger(group / STATE) as ledger:
        return [str(row[0]) for row in ledger.db.execute("SELECT address FROM signups ORDER BY 1")]


def test_unconfirmed_sign_ups_are_forgotten_after_48_hours(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Health information: the address of someone who never confirmed is not kept longer than the link.
    with start_site(group, smtp, monkeypatch) as site:
        site.sign_up("never@example.org", "Never")
        site.clock.advance(hours=47)
        site.sign_up("prompt@example.org", "Prompt")
        site.sign_up("later@example.org", "Later")
        assert pending_sign_ups(group) == ["later@example.org", "never@example.org", "prompt@example.org"]
        site.clock.advance(hours=2)
        site.http.post(site.confirm_link(1))  # any confirmation sweeps the expired ones
        assert pending_sign_ups(group) == ["later@example.org"]
    with start_site(group, smtp, monkeypatch, start=START + dt.timedelta(hours=96)):
        assert pending_sign_ups(group) == []  # and so does starting the server
