"""The organisers' console over real HTTP: uvicorn on 127.0.0.1 in a thread, mounted at /admin as
`newsletter serve` mounts it, the clock passed in; mail to the outbox or a real aiosmtpd."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from newsletter.project import load_project
from newsletter.settings import resolve
from newsletter.web.admin import console_app
from newsletter.web.pages import RequestLimit

from .conftest import BEFORE_FIRST, CliRunner
from .smtpd import Server
from .test_web import Clock, serving

MARGARET = "margaret@example.org"
#: An hour after the first reminder went out (2026-12-01 09:05 New York).
AFTER_FIRST = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
START = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
STATE = Path(".newsletter/state.sqlite3")


@dataclass
class Console:
    url: str  # the site; the console is under url + "/admin"
    group: Path
    clock: Clock
    http: httpx.Client
    smtp: Server | None = None

    @property
    def admin(self) -> str:
        return f"{self.url}/admin"

    def client(self) -> httpx.Client:
        """Another browser: its own cookies, forms sent from the console's pages."""
        return httpx.Client(
            base_url=self.url, headers={"Origin": self.url}, follow_redirects=False, timeout=30
        )

    def mails_to(self, address: str) -> list[bytes]:
        if self.smtp is not None:
            return [m.data for m in self.smtp.messages if m.rcpt_tos == [address]]
        found = self.group / "outbox" / "console-sign-in" / f"{address}.eml"
        return [found.read_bytes()] if found.exists() else []

    def link(self, address: str = MARGARET, *, after: int = 0) -> str:
        """The sign-in link of the newest mail to ``address`` (it is sent just after the answer)."""
        deadline = time.monotonic() + 10
        while True:
            mails = self.mails_to(address)
            fresh = len(mails) > after if self.smtp is not None else after == 0
            if mails and fresh:
                break
            assert time.monotonic() < deadline, "no sign-in mail arrived"
            time.sleep(0.05)
        msg = message_from_bytes(mails[-1], policy=policy.default)
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        match = re.search(r"https?://\S+/admin/sign-in/[\w-]+", text)
        assert match, text
        return match.group(0)

    def ask_link(self, client: httpx.Client, address: str = MARGARET) -> httpx.Response:
        return client.post("/admin/sign-in", data={"email": address})

    def sign_in(self, client: httpx.Client | None = None, address: str = MARGARET) -> httpx.Client:
        client = client or self.http
        before = len(self.mails_to(address)) if self.smtp is not None else 0
        if self.smtp is None:
            (self.group / "outbox" / "console-sign-in" / f"{address}.eml").unlink(missing_ok=True)
        assert self.ask_link(client, address).status_code == 200
        link = self.link(address, after=before)
        done = client.post(link)
        assert done.status_code == 303 and done.headers["location"] == "/admin/", done.text
        return client

    def form(self, client: httpx.Client, path: str) -> dict[str, str]:
        """The hidden fields (csrf, version) of the page at ``path``."""
        page = client.get(path)
        assert page.status_code == 200, page.text
        return hidden(page.text)

    def members_file(self) -> str:
        return (self.group / "subscribers.csv").read_text(encoding="utf-8-sig")

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.group / STATE) as db:
            return db.execute(sql).fetchall()


def hidden(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if (tag == "input" and a.get("type") not in ("checkbox", "file", "submit")) or (
            tag == "input" and a.get("type") == "checkbox" and "checked" in a
        ):
            self.values[a["name"]] = a.get("value", "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self.values[a["name"]] = ""
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def form_values(html: str) -> dict[str, str]:
    """What a browser would send from the page's (last) form as it is filled in."""
    parser = _Form()
    parser.feed(html[html.find("<main") :])
    return parser.values


@contextmanager
def start_console(
    group: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    smtp: Server | None = None,
    start: dt.datetime = START,
    clock: Clock | None = None,
    public_url: str | None = None,
    **options: Any,
) -> Iterator[Console]:
    """The console mounted at /admin of a Starlette app on a real port (as `newsletter serve` does)."""
    clock = clock or Clock(start)
    if smtp is not None:
        monkeypatch.setenv("SMTP_URL", smtp.url)

    def make(url: str) -> Any:
        monkeypatch.setenv("NEWSLETTER_PUBLIC_URL", public_url or url)
        project = load_project(resolve(group), check_subscribers=False)
        app = console_app(project, base_url=public_url or url, clock=clock, **options)
        return Starlette(routes=[Mount("/admin", app=app)])

    with (
        serving(make) as url,
        httpx.Client(
            base_url=url, headers={"Origin": public_url or url}, follow_redirects=False, timeout=30
        ) as http,
    ):
        yield Console(url, group, clock, http, smtp)


@pytest.fixture
def console(group: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    with start_console(group, monkeypatch) as started:
        yield started


# --- signing in -------------------------------------------------------------------------------------


def test_sign_in_with_the_link_from_the_outbox(console: Console) -> None:
    answer = console.ask_link(console.http)
    assert answer.status_code == 200 and "Check your email" in answer.text
    link = console.link()
    assert "/admin/sign-in/" in link and MARGARET not in link
    for _ in range(2):  # a mail scanner opens the link: a page with a button, nothing used up
        page = console.http.get(link)
        assert page.status_code == 200 and "<button" in page.text and 'action=""' in page.text
        assert "set-cookie" not in page.headers
    done = console.http.post(link)
    assert done.status_code == 303 and done.headers["location"] == "/admin/"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # served over http here
    overview = console.http.get("/admin/")
    assert overview.status_code == 200 and "<h1>Overview</h1>" in overview.text
    assert "Sign out (Margaret)" in overview.text
    # Only a hash of the link is kept.
    ((kept,),) = console.rows("SELECT token_hash FROM console_links")
    assert kept not in link and link.rsplit("/", 1)[1] not in str(console.rows("SELECT * FROM console_links"))


def test_a_non_organiser_gets_the_same_page_and_no_mail(console: Console) -> None:
    answers = [
        console.ask_link(console.client(), a) for a in ("stranger@example.org", "not an address", MARGARET)
    ]
    assert {(a.status_code, a.text) for a in answers} == {(200, answers[0].text)}
    assert "stranger" not in answers[0].text
    console.link()  # Margaret's came
    assert list((console.group / "outbox" / "console-sign-in").iterdir()) == [
        console.group / "outbox" / "console-sign-in" / f"{MARGARET}.eml"
    ]
    assert console.rows("SELECT address FROM console_links") == [(MARGARET,)]
    # Capitals do not matter; the mail goes to the address schedule.yaml has.
    console.ask_link(console.client(), "Vonnie@Example.ORG")
    assert console.link("vonnie@example.org")


def test_a_used_or_expired_link_gets_a_neutral_page(console: Console) -> None:
    console.ask_link(console.http)
    link = console.link()
    assert console.http.post(link).status_code == 303
    again = console.client()
    for answer in (again.post(link), again.get(link)):
        assert answer.status_code == 200 and "cannot be used" in answer.text
        assert "set-cookie" not in answer.headers
    assert again.get("/admin/").status_code == 303
    # A fresh link, 16 minutes later: expired.
    (console.group / "outbox" / "console-sign-in" / f"{MARGARET}.eml").unlink()
    console.ask_link(again)
    late = console.link()
    console.clock.advance(minutes=16)
    assert "cannot be used" in again.get(late).text
    assert "cannot be used" in again.post(late).text and "set-cookie" not in again.post(late).headers
    assert "cannot be used" in again.get(f"{console.admin}/sign-in/made-up-token").text


def test_nothing_under_admin_answers_without_a_session(console: Console) -> None:
    gets = ["/", "/members", "/members/2?v=x", "/members/export", "/meetings", "/meetings/rule",
            "/meetings/2026-12-08", "/mails", "/mails/2026-12-08/week-before",
            "/mails/2026-12-08/week-before/html", "/deliveries", "/deliveries/x/y", "/activity"]  # fmt: skip
    posts = ["/members/add", "/members/search", "/members/import", "/members/import/confirm",
             "/members/2/rename",
             "/members/2/unsubscribe", "/meetings/rule", "/meetings/2026-12-08", "/sign-out",
             "/mails/2026-12-08/week-before/test"]  # fmt: skip
    forged = console.client()
    forged.cookies.set("newsletter_console", "made-up.signature", path="/admin")
    for client in (console.http, forged):
        for path in gets:
            answer = client.get(f"/admin{path}")
            assert answer.status_code == 303 and answer.headers["location"].startswith("/admin/sign-in"), path
        for path in posts:
            answer = client.post(f"/admin{path}", data={"email": "x@example.org", "name": "X"})
            assert answer.status_code == 403 and "was not accepted" in answer.text, path
    assert "x@example.org" not in console.members_file()


def test_forms_need_the_session_token_and_the_console_origin(console: Console) -> None:
    client = console.sign_in()
    fields = console.form(client, "/admin/members")
    before = console.members_file()
    new = {"email": "dana.wells@example.org", "name": "Dana Wells", "version": fields["version"]}
    refused = [
        client.post("/admin/members/add", data=new),
        client.post("/admin/members/add", data={**new, "csrf": "x" * 43}),
        client.post("/admin/members/add", data={**new, "csrf": fields["csrf"]}, headers={"Origin": "https://evil.example"}),
        client.post("/admin/members/add", data={**new, "csrf": fields["csrf"]}, headers={"Origin": "null"}),
    ]  # fmt: skip
    other = console.sign_in(console.client(), "vonnie@example.org")  # another session's token is no good
    refused.append(other.post("/admin/members/add", data={**new, "csrf": fields["csrf"]}))
    no_origin = httpx.post(
        f"{console.admin}/members/add", data={**new, "csrf": fields["csrf"]}, cookies=client.cookies
    )
    refused.append(no_origin)
    for answer in refused:
        assert answer.status_code == 403 and "was not accepted" in answer.text
    assert console.members_file() == before
    # Sign-in forms from elsewhere are refused too (and send nothing).
    elsewhere = {"Origin": "https://evil.example"}
    assert console.http.post("/admin/sign-in", data={"email": MARGARET}, headers=elsewhere).status_code == 403
    done = client.post("/admin/members/add", data={**new, "csrf": fields["csrf"]})
    assert done.status_code == 303 and "dana.wells@example.org,Dana Wells" in console.members_file()


def test_every_answer_is_no_store_with_the_public_pages_policy(console: Console) -> None:
    from newsletter.web.public import SECURITY_HEADERS

    public = dict(SECURITY_HEADERS)[b"content-security-policy"].decode()
    answers = [console.http.get("/admin/sign-in"), console.http.get("/admin/")]
    client = console.sign_in()
    for path in ("/admin/", "/admin/members", "/admin/meetings", "/admin/deliveries", "/admin/activity",
                 "/admin/mails", "/admin/members/export"):  # fmt: skip
        answers.append(client.get(path))
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["content-security-policy"] == public
        assert answer.headers["x-content-type-options"] == "nosniff"
    mail = client.get("/admin/mails/2026-12-08/week-before")
    assert mail.headers["content-security-policy"] == public + "; frame-src 'self'"
    frame = client.get("/admin/mails/2026-12-08/week-before/html")
    policy_ = frame.headers["content-security-policy"]
    assert "sandbox" in policy_ and "script" not in policy_
    assert frame.headers["cache-control"] == "no-store"


def test_the_cookie_is_secure_behind_https(group: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_console(group, monkeypatch, public_url="https://news.example.org") as console:
        console.ask_link(console.http)
        link = console.link().replace("https://news.example.org", console.url)
        done = console.http.post(link)
        assert done.status_code == 303 and "Secure" in done.headers["set-cookie"]


def test_sign_in_is_rate_limited_per_client_and_per_address(
    group: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = RequestLimit(per_client=4, overall=100, window=3600)
    with start_console(group, monkeypatch, sign_in_limit=limit) as console:
        answers = [console.ask_link(console.http, MARGARET) for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
        assert len(console.rows("SELECT * FROM console_links")) == 3  # 3 links per address per 15 minutes
        assert answers[3].text == answers[0].text  # the 4th is answered the same, and mails nothing


def test_a_session_ends_after_12_idle_hours_and_at_sign_out(console: Console) -> None:
    client = console.sign_in()
    console.clock.advance(hours=11, minutes=59)
    assert client.get("/admin/activity").status_code == 200  # use keeps it going
    console.clock.advance(hours=11, minutes=59)
    assert client.get("/admin/members").status_code == 200
    console.clock.advance(hours=12, minutes=1)
    gone = client.get("/admin/activity")
    assert gone.status_code == 303 and gone.headers["location"] == "/admin/sign-in?ended=1"
    client = console.sign_in(console.client())
    kept = dict(client.cookies)
    csrf = console.form(client, "/admin/activity")["csrf"]
    out = client.post("/admin/sign-out", data={"csrf": csrf})
    assert out.status_code == 200 and "You are signed out" in out.text
    replayed = console.client()
    replayed.cookies.update(kept)  # the old cookie, kept by someone: dead everywhere
    assert replayed.get("/admin/activity").status_code == 303
    assert console.rows("SELECT count(*) FROM console_sessions") == [(0,)]


# --- the list ---------------------------------------------------------------------------------------


def test_a_command_line_edit_between_opening_and_saving_is_not_lost(console: Console, run: CliRunner) -> None:
    client = console.sign_in()
    page = client.get("/admin/members")
    fields = hidden(page.text)
    row = re.search(r'href="/admin/members/(\d+)\?v=(\w+)">Change or unsubscribe row \d+', page.text)
    assert row is not None
    code, out, err = run(console.group, "subscribers", "add", "cli.added@example.org", "--name", "From Cli")
    assert code == 0, err
    late = client.post("/admin/members/add", data={**fields, "email": "web.added@example.org", "name": "Web"})
    assert late.status_code == 409 and "The list changed since you opened this page" in late.text
    assert "cli.added@example.org" in late.text  # shown again, as it is now
    assert "cli.added@example.org" in console.members_file() and "web.added" not in console.members_file()
    rename = client.post(f"/admin/members/{row[1]}/rename", data={**fields, "name": "Renamed"})
    assert rename.status_code == 409 and "Renamed" not in console.members_file()
    stale = client.get(f"/admin/members/{row[1]}?v={row[2]}")
    assert stale.status_code == 409 and "The list changed" in stale.text
    fresh = hidden(late.text)
    done = client.post("/admin/members/add", data={**fresh, "email": "web.added@example.org", "name": "Web"})
    assert done.status_code == 303
    assert (
        "cli.added@example.org" in console.members_file()
        and "web.added@example.org" in console.members_file()
    )


def test_re_subscribing_needs_her_consent_noted(console: Console, run: CliRunner) -> None:
    code, out, err = run(console.group, "subscribers", "remove", "linda.harper@example.org")
    assert code == 0, err
    client = console.sign_in()
    back = {"email": "linda.harper@example.org", "name": "Linda Harper"}
    page = client.get("/admin/members")
    assert "linda.harper@example.org (since" in page.text
    refused = client.post("/admin/members/add", data={**hidden(page.text), **back})
    assert refused.status_code == 400 and "asked to be added back" in refused.text
    no_note = client.post("/admin/members/add", data={**hidden(refused.text), **back, "resubscribe": "yes"})
    assert no_note.status_code == 400 and "Write down how she asked" in no_note.text
    note = "She asked me at the April meeting"
    done = client.post(
        "/admin/members/add", data={**hidden(no_note.text), **back, "resubscribe": "yes", "consent": note}
    )
    assert done.status_code == 303 and "linda.harper@example.org" in console.members_file()
    code, out, err = run(console.group, "subscribers", "list")
    assert "re-subscribed by an organiser" in out
    activity = client.get("/admin/activity").text
    assert note in activity and "linda.harper" not in activity


def test_an_import_shows_what_changes_before_writing(
    console: Console, run: CliRunner, tmp_path: Path
) -> None:
    client = console.sign_in()
    fields = console.form(client, "/admin/members")
    upload = (
        b"\xef\xbb\xbfemail,name\r\nnew.one@example.org,New One\r\n"
        b"linda.harper@example.org,Linda H.\r\nbroken,X\r\n"
    )
    preview = client.post("/admin/members/import", data={"csrf": fields["csrf"]},
                          files={"file": ("from excel.csv", upload, "text/csv")})  # fmt: skip
    assert preview.status_code == 200, preview.text
    text = preview.text
    assert "1 to add, 1 to update" in text and "new.one@example.org" in text
    assert "“Linda Harper” → “Linda H.”" in text and "from_excel.csv:4" in text
    assert "new.one" not in console.members_file()  # nothing written yet
    run(console.group, "subscribers", "add", "meanwhile@example.org")  # the list changes before the click
    again = client.post("/admin/members/import/confirm", data=hidden(text))
    assert again.status_code == 409 and "The list changed since you opened this page" in again.text
    done = client.post("/admin/members/import/confirm", data=hidden(again.text))
    assert done.status_code == 303
    listed = console.members_file()
    assert (
        "new.one@example.org,New One" in listed and "Linda H." in listed and "meanwhile@example.org" in listed
    )
    assert not list((console.group / ".newsletter" / "console" / "uploads").iterdir())
    code, out, err = run(console.group, "subscribers", "list")
    assert re.search(r"new\.one@example\.org +New One", out)


# --- meetings, mails, activity ----------------------------------------------------------------------


def test_a_time_changed_in_the_console_is_announced_at_the_next_tick(
    group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_console(group, monkeypatch, smtp=smtp, start=AFTER_FIRST) as console:
        code, out, err = run(group, "send", "--at", BEFORE_FIRST)  # the week-before reminder, over SMTP
        assert code == 0, err
        reminders = len(smtp.messages)
        assert reminders >= 2
        client = console.sign_in()
        original = (group / "schedule.yaml").read_text(encoding="utf-8")
        form = client.get("/admin/meetings/2026-12-08")
        values = form_values(form.text)
        assert values["time"] == "18:00" and values["title"] == "Planning dinner"
        check = client.post("/admin/meetings/2026-12-08", data={**values, "time": "18:30"})
        assert check.status_code == 200, check.text
        assert "Time: “18:00” → “18:30”" in check.text
        assert f"{reminders} members who already had a mail about it will get a change notice" in check.text
        assert "linda.harper@example.org" in check.text
        assert (group / "schedule.yaml").read_text(encoding="utf-8") == original  # not saved yet
        saved = client.post("/admin/meetings/2026-12-08", data=hidden(check.text))
        assert saved.status_code == 303, saved.text
        after = (group / "schedule.yaml").read_text(encoding="utf-8")
        assert after == original.replace('      title: Planning dinner\n      time: "18:00"',
                                          '      title: Planning dinner\n      time: "18:30"')  # fmt: skip
        code, out, err = run(group, "tick", "--at", "2026-12-01T10:00")
        assert code == 0, err
        later = [m for m in smtp.messages[reminders:] if "sign-in link" not in str(m.message["Subject"])]
        assert len(later) == reminders
        assert all(str(m.message["Subject"]).startswith("Changed: Planning dinner") for m in later)
        activity = client.get("/admin/activity").text
        assert "changed schedule.yaml" in activity and "18:30" in activity


def test_a_meeting_edit_is_checked_like_check_and_refused_on_a_stale_page(console: Console) -> None:
    client = console.sign_in()
    form = client.get("/admin/meetings/rule")
    fields = hidden(form.text)
    months = ["February", "April", "June", "August", "October", "December"]
    bad = {**fields, "weekday": "Tuesday", "week": "2", "time": "18:00", "venue_name": "Library",
           "venue_address": "Greenville, SC", "start": "2027-12-31", "until": "2026-12-01"}  # fmt: skip
    answer = client.post("/admin/meetings/rule", data={**bad, "months": months})
    assert answer.status_code == 400
    assert "schedule.yaml:" in answer.text and "is after until" in answer.text  # check's own message
    good = {**bad, "start": "2026-12-01", "until": "2027-12-31"}
    check = client.post("/admin/meetings/rule", data={**good, "months": months})
    assert check.status_code == 200 and "Library" in check.text
    path = console.group / "schedule.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# edited by hand meanwhile\n", encoding="utf-8")
    stale = client.post("/admin/meetings/rule", data={**hidden(check.text), "months": months})
    assert stale.status_code == 409 and "changed since you opened this page" in stale.text
    assert "Library" not in path.read_text(encoding="utf-8")


def test_a_test_mail_and_the_pages_that_report(console: Console, run: CliRunner) -> None:
    client = console.sign_in()
    page = client.get("/admin/mails/2026-12-08/week-before")
    assert page.status_code == 200 and 'width="320"' in page.text and 'width="600"' in page.text
    assert ("Planning dinner" in page.text and "Hello Margaret" in page.text) or "Margaret" in page.text
    html = client.get("/admin/mails/2026-12-08/week-before/html")
    assert html.status_code == 200 and "Copper River Grill" in html.text
    sent = client.post("/admin/mails/2026-12-08/week-before/test", data={"csrf": hidden(page.text)["csrf"]})
    assert sent.status_code == 200 and "A test of this mail was sent to you" in sent.text
    test_mail = console.group / "outbox" / "test_2026-12-08_week-before" / f"{MARGARET}.eml"
    assert str(message_from_bytes(test_mail.read_bytes(), policy=policy.default)["Subject"]).startswith(
        "[Test]"
    )
    run(console.group, "send", "--at", BEFORE_FIRST)  # a try-out to the outbox
    deliveries = client.get("/admin/deliveries")
    assert "outbox/2026-12-08/week-before" in deliveries.text
    one = client.get("/admin/deliveries/outbox/2026-12-08/week-before")
    assert one.status_code == 200 and "linda.harper@example.org" in one.text
    overview = client.get("/admin/")
    assert "Planning dinner" in overview.text and "Problems in the group’s files" in overview.text


class RealClock(Clock):
    """The real time, as the command line's records use it."""

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


def test_the_activity_page_lists_each_action_newest_first(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_console(group, monkeypatch, clock=RealClock(START)) as console:
        check_activity(console, run)


def check_activity(console: Console, run: CliRunner) -> None:
    client = console.sign_in()
    fields = console.form(client, "/admin/members")
    client.post("/admin/members/add", data={**fields, "email": "dana.wells@example.org", "name": "Dana"})
    run(console.group, "subscribers", "add", "cli.added@example.org")
    run(console.group, "subscribers", "remove", "rosa.delgado@example.org")
    page = client.get("/admin/members")
    line = re.search(r"/admin/members/(\d+)\?v=\w+", page.text)
    assert line is not None
    client.post(f"/admin/members/{line[1]}/unsubscribe", data=hidden(page.text))
    client.post("/admin/mails/2026-12-08/week-before/test", data={"csrf": fields["csrf"]})
    text = client.get("/admin/activity").text
    expected = [
        "Margaret sent a test to herself: 2026-12-08/week-before",
        f"Margaret unsubscribed a member: row {line[1]}",
        "command line unsubscribed a member: row",
        "command line added a member: row",
        "Margaret added a member: row",
        "Margaret signed in",
    ]
    places = [text.find(e) for e in expected]
    assert -1 not in places, (expected, text)
    assert places == sorted(places)
    for address in ("dana.wells", "cli.added", "rosa.delgado"):
        assert address not in text


def test_mounted_in_the_public_app_it_takes_an_upload_over_the_public_pages_limit(
    group: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the lead mounts it: inside create_app (16 KB bodies, its security headers), beside the
    members' pages; the console's own limit applies under /admin, the public one elsewhere."""
    from newsletter.web.public import create_app

    clock = Clock(START)

    def make(url: str) -> Any:
        project = load_project(resolve(group), check_subscribers=False)
        app = create_app(project, base_url=url, clock=clock)
        app.router.routes.append(Mount("/admin", app=console_app(project, base_url=url, clock=clock)))
        return app

    with serving(make) as url, httpx.Client(base_url=url, headers={"Origin": url}, timeout=30) as http:
        console = Console(url, group, clock, http)
        client = console.sign_in()
        fields = console.form(client, "/admin/members")
        rows = "".join(f"member{i}@example.org,Member {i}\n" for i in range(1000)).encode()
        assert len(rows) > 16 * 1024
        upload = {"file": ("big.csv", b"email,name\n" + rows, "text/csv")}
        preview = client.post("/admin/members/import", data={"csrf": fields["csrf"]}, files=upload)
        assert preview.status_code == 200 and "1000 to add" in preview.text
        assert http.post("/signup", content=b"x" * (17 * 1024)).status_code == 413
        assert http.get("/signup").status_code == 200
