"""An unsubscribe finds its member with one ledger lookup (the token a send remembered), over real HTTP."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from newsletter.compose.mime import small_message
from newsletter.inputs import members_edit
from newsletter.inputs.members_edit import find_by_token
from newsletter.model import Subscriber
from newsletter.project import load_project
from newsletter.settings import resolve
from newsletter.state.ledger import Ledger
from newsletter.state.members import token_hash
from newsletter.tokens import unsubscribe_token
from newsletter.web.public import RequestLimit

from .conftest import CliRunner
from .smtpd import Server
from .test_web import STATE, Site, start_site

ROSA = "rosa.delgado@example.org"
ONE_CLICK_HEADERS = {"content-type": "application/x-www-form-urlencoded"}
#: Not a list at all: not UTF-8, no header; neither a scan nor a rewrite can use it.
GARBAGE = b"\x80\x81\x82 this is not a member list \x00\x9f\n"


def token_for(group: Path, address: str) -> str:
    return unsubscribe_token(resolve(group).secret, address)


def remember(group: Path, *addresses: str) -> None:
    """What a send does for each member it mails."""
    with Ledger(group / STATE) as ledger:
        ledger.remember_tokens((token_hash(token_for(group, a)), a) for a in addresses)


@pytest.fixture
def hmacs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address the old scan computed a token for."""
    computed: list[str] = []
    real = members_edit.token_matches

    def counted(secret: bytes, key: str, token: str) -> bool:
        computed.append(key)
        return real(secret, key, token)

    monkeypatch.setattr(members_edit, "token_matches", counted)
    return computed


def one_click(url: str) -> httpx.Response:
    """A mail program's RFC 8058 POST: no cookies, no page visited before, no redirects followed."""
    return httpx.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK_HEADERS)


@pytest.fixture
def site(group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    with start_site(group, smtp, monkeypatch) as started:
        yield started


def test_a_remembered_token_unsubscribes_without_reading_the_list(
    group: Path, site: Site, hmacs: list[str]
) -> None:
    token = token_for(group, ROSA)
    remember(group, ROSA)
    path = group / "subscribers.csv"
    path.write_bytes(GARBAGE)  # and nobody was ever mailed: only the remembered token can name her
    answer = one_click(f"{site.url}/unsubscribe/{token}")
    assert answer.status_code == 200 and "You are unsubscribed" in answer.text
    assert site.suppressed()[ROSA][1] == "one-click"
    assert hmacs == [ROSA]  # one lookup and one HMAC, not one per member
    assert path.read_bytes() == GARBAGE  # a file with problems is not rewritten


def test_a_forged_token_gets_the_same_page_and_changes_nothing(
    group: Path, site: Site, hmacs: list[str]
) -> None:
    token = token_for(group, ROSA)
    remember(group, ROSA)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    answers = [
        site.http.post(f"/unsubscribe/{forged}"),
        site.http.post(f"/unsubscribe/{token_hash(token)}"),  # what the ledger keeps is no token
        site.http.post(f"/unsubscribe/{'x' * len(token)}"),
    ]
    assert site.suppressed() == {}
    assert len(hmacs) > 0  # a token nobody remembered is looked for the old way
    answers.append(site.http.post(f"/unsubscribe/{token}"))
    assert {(a.status_code, a.text) for a in answers} == {(200, answers[-1].text)}
    assert list(site.suppressed()) == [ROSA]


def test_a_token_from_a_mail_sent_before_tokens_were_remembered_still_works(group: Path, site: Site) -> None:
    answer = site.http.post(f"/unsubscribe/{token_for(group, ROSA)}")
    assert answer.status_code == 200
    assert site.suppressed()[ROSA][1] == "link" and ROSA not in site.members()


def test_unsubscribe_posts_are_rate_limited_per_client(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    limit = RequestLimit(per_client=2, overall=100, window=3600, clock=lambda: now[0])
    remember(group, ROSA, "linda.harper@example.org")
    with start_site(group, smtp, monkeypatch, unsubscribe_limit=limit) as site:
        for _ in range(2):
            assert site.http.post(f"/unsubscribe/{'x' * 32}").status_code == 200
        refused = site.http.post(f"/unsubscribe/{token_for(group, ROSA)}")
        assert refused.status_code == 429 and "try again" in refused.text
        assert ROSA not in refused.text.lower()
        assert site.suppressed() == {}  # over the limit: nothing looked up, nothing changed
        assert site.http.get(f"/unsubscribe/{token_for(group, ROSA)}").status_code == 200  # pages still open
        # Another client behind the reverse proxy (X-Forwarded-For from 127.0.0.1 is trusted) may.
        other = {"X-Forwarded-For": "203.0.113.7"}
        linda = site.http.post(f"/unsubscribe/{token_for(group, 'linda.harper@example.org')}", headers=other)
        assert linda.status_code == 200 and list(site.suppressed()) == ["linda.harper@example.org"]
        now[0] += 3600
        assert site.http.post(f"/unsubscribe/{token_for(group, ROSA)}").status_code == 200
        assert ROSA in site.suppressed()


def test_the_mailto_token_removes_a_remembered_member_in_one_lookup(
    group: Path, run: CliRunner, hmacs: list[str]
) -> None:
    gone = "moved.away@example.org"  # no longer in the file, never in a delivery row
    remember(group, gone)
    code, out, err = run(group, "subscribers", "remove", "--", token_for(group, gone))
    assert code == 0, err
    assert "recorded as unsubscribed" in out and hmacs == [gone]
    with Ledger(group / STATE) as ledger:
        assert ledger.suppressed()[gone][1] == "remove"


def test_each_message_carries_its_token_hash_and_row_for_the_ledger(
    group: Path, smtp: Server, monkeypatch: pytest.MonkeyPatch, hmacs: list[str]
) -> None:
    from newsletter.send.pipeline import prepare
    from newsletter.timing import next_due

    now = dt.datetime(2026, 11, 25, 15, tzinfo=dt.UTC)
    with start_site(group, smtp, monkeypatch) as site:  # sets NEWSLETTER_PUBLIC_URL to the site
        project = load_project(resolve(group))
        due = next_due(project.schedule, now)
        assert due is not None
        member = Subscriber(email="Ann.Lee@example.org", name="Ann", line=7)
        envelope = prepare(project, due, now=now).build(member, now=now)
        assert envelope.row == 7 and envelope.key == "ann.lee@example.org"
        assert envelope.token_hash == token_hash(token_for(group, "ann.lee@example.org"))
        # As the send loop will: remember, then the member's mail program clicks.
        with Ledger(group / STATE) as ledger:
            ledger.remember_tokens([(envelope.token_hash, envelope.key)])
        (url,) = re.findall(rb"<(http[^>]+/unsubscribe/[\w-]+)>", envelope.data)
        assert one_click(url.decode()).status_code == 200
        assert site.suppressed()["ann.lee@example.org"][1] == "one-click" and hmacs == ["ann.lee@example.org"]
    small = small_message(
        sender="News <news@example.org>", to="ann@example.org", subject="Hi", text="x", now=now
    )
    assert (small.token_hash, small.row) == ("", None)


def test_a_remembered_token_of_a_replaced_secret_no_longer_works(group: Path) -> None:
    token = token_for(group, ROSA)
    remember(group, ROSA)
    with Ledger(group / STATE) as ledger:
        assert find_by_token(group / "subscribers.csv", ledger, resolve(group).secret, token) == ROSA
        # NEWSLETTER_SECRET changed: links in mails already sent stop working, as the README says.
        assert find_by_token(group / "subscribers.csv", ledger, b"another secret, 16+ chars", token) is None
