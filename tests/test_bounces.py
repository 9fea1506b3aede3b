"""Bounces and complaints against real parts: reminders sent through a real SMTP server with VERP, then
real-shaped reports (Postfix, Gmail, Exchange, Exim, a DSN with the original attached, autoreplies, an
ARF complaint, garbage) read from a real dovecot IMAP server and from a Maildir; threshold, reactivation,
kill -9 mid-batch, and the IMAP password never shown."""

from __future__ import annotations

import datetime as dt
import email
import logging
import mailbox
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from newsletter.bounces import BounceReport, process, tell_organisers
from newsletter.bounces.classify import classify
from newsletter.bounces.mailboxes import PROCESSED, UNRECOGNISED
from newsletter.bounces.notices import Notice, organiser_mail, sentence
from newsletter.errors import ConfigError
from newsletter.project import Project, load_project
from newsletter.settings import parse_bounce_mailbox, resolve
from newsletter.state.bounces import BOUNCING_AT, send_time_kind
from newsletter.state.ledger import Ledger
from newsletter.tokens import VERP_TOKEN, message_id, verp_token

from .conftest import BEFORE_FIRST, CliRunner
from .imapd import PASSWORD, Account, Dovecot
from .smtpd import Recorder, Server

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "bounces"
SECRET = "bounce-tests-secret-0123456789"
NOW = dt.datetime(2026, 12, 3, 20, 0, tzinfo=dt.UTC)
DAY1 = dt.datetime(2026, 12, 1, 15, 0, tzinfo=dt.UTC)
LINES = {
    "linda.harper@example.org": 2, "zoe.martin@example.org": 3, "rosa.delgado@example.org": 4,
    "carol.jenkins@example.org": 5, "friend.of.group@example.org": 6,
}  # fmt: skip
LINDA, ZOE, ROSA, CAROL, FRIEND = LINES


@dataclass
class Sent:
    """The sample group after its first reminder went out with VERP through a real SMTP server."""

    group: Path
    smtp: Server
    tokens: dict[str, str]  # member → the VERP token of the reminder they got
    message_ids: dict[str, str]

    def report(self, fixture: str, member: str = LINDA, *, n: int = 1, at: dt.datetime = DAY1) -> bytes:
        """A fixture filled in for ``member``'s reminder; ``n`` makes its own Message-ID."""
        raw = (FIXTURES / f"{fixture}.eml").read_bytes()
        values = {
            "TOKEN": self.tokens[member], "MEMBER": member, "MESSAGE_ID": self.message_ids[member],
            "REPORT": f"{fixture}.{n}.{member.partition('@')[0]}", "DATE": format_datetime(at),
        }  # fmt: skip
        for key, value in values.items():
            raw = raw.replace(f"{{{{{key}}}}}".encode(), value.encode())
        return raw

    def project(self) -> Project:
        return load_project(resolve(self.group), check_subscribers=False)

    def ledger(self) -> Ledger:
        return Ledger(self.group / ".newsletter" / "state.sqlite3")


@pytest.fixture
def sent(group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sent]:
    with Server(Recorder()) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        monkeypatch.setenv("NEWSLETTER_SECRET", SECRET)
        monkeypatch.setenv("NEWSLETTER_BOUNCE_ADDRESS", "bounces@example.org")
        code, out, err = run(group, "send", "--at", BEFORE_FIRST)
        assert code == 0, err
        tokens = {m.rcpt_tos[0]: m.mail_from.split("+")[1].split("@")[0] for m in smtp.messages}
        ids = {m.rcpt_tos[0]: str(m.message["Message-ID"]) for m in smtp.messages}
        assert set(tokens) == set(LINES)
        smtp.messages.clear()
        yield Sent(group, smtp, tokens, ids)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One real IMAP server for the whole run (each test gets its own account)."""
    with Dovecot() as server:
        yield server


@pytest.fixture
def imap(dovecot: Dovecot) -> Account:
    return dovecot.account()


@pytest.fixture
def with_bounces_command() -> None:
    """`newsletter bounces`, as the lead registers it in cli/main.py."""
    from newsletter.cli.bounces import bounces
    from newsletter.cli.main import cli

    if "bounces" not in cli.commands:
        cli.add_command(bounces)


# --- the reports of one ordinary day, and what they must come to --------------------------------

STANDARD = (
    ("postfix_dsn", LINDA), ("postfix_delayed", LINDA), ("gmail_style", ZOE), ("spam_refusal", ZOE),
    ("exchange_style", ROSA), ("exim_text", ROSA), ("dsn_original_attached", CAROL),
    ("autoreply_out_of_office", CAROL), ("autoreply_exchange", CAROL), ("arf_complaint", FRIEND),
    ("backscatter", LINDA), ("garbage", LINDA),
)  # fmt: skip
#: member → (score, times counted): Rosa's two hard bounces fall on one day and count once.
SCORES = {LINDA: (1.0, 1), ZOE: (1.0, 1), ROSA: (1.0, 1), CAROL: (0.5, 1)}


def standard(sent: Sent) -> list[bytes]:
    return [sent.report(name, member) for name, member in STANDARD]


def signature(sent: Sent) -> tuple[object, ...]:
    """Everything the reports changed in the ledger."""
    with sent.ledger() as ledger:
        runs = {a: (r.score, r.times, r.bouncing) for a, r in ledger.bounce_runs().items()}
        suppressed = {a: source for a, (_, source) in ledger.suppressed().items()}
        return runs, ledger.report_counts(), suppressed


class Box:
    """The bounce mailbox as the test sees it: an IMAP account, or a Maildir in the group's folder."""

    def __init__(self, kind: str, group: Path, account: Account | None = None) -> None:
        self.kind, self.account, self.path = kind, account, group / "bounce-mail"
        if account is None:
            mailbox.Maildir(self.path, create=True)

    @property
    def setting(self) -> str:
        """NEWSLETTER_BOUNCE_MAILBOX for it (a Maildir relative to the group's folder)."""
        return self.account.url() if self.account else "bounce-mail"

    def deliver(self, *messages: bytes) -> None:
        if self.account is not None:
            self.account.deliver(*messages)
            return
        box = mailbox.Maildir(self.path, create=False)
        for raw in messages:
            box.add(raw)

    def counts(self) -> dict[str, int]:
        if self.account is not None:
            found = self.account.folders()
        else:
            box = mailbox.Maildir(self.path, create=False)
            found = {"INBOX": len(box), **{f: len(box.get_folder(f)) for f in box.list_folders()}}
        return {f: found.get(f, 0) for f in ("INBOX", PROCESSED, UNRECOGNISED)}


@pytest.fixture(params=["imap", "maildir"])
def box(request: pytest.FixtureRequest, sent: Sent, monkeypatch: pytest.MonkeyPatch) -> Box:
    account = request.getfixturevalue("imap") if request.param == "imap" else None
    made = Box(request.param, sent.group, account)
    monkeypatch.setenv("NEWSLETTER_BOUNCE_MAILBOX", made.setting)
    return made


# --- VERP ---------------------------------------------------------------------------------------


def test_every_member_message_has_its_own_signed_verp_sender(sent: Sent) -> None:
    assert len(set(sent.tokens.values())) == len(LINES)
    for member, token in sent.tokens.items():
        assert VERP_TOKEN.fullmatch(token)
        assert member.partition("@")[0].replace(".", "") not in token  # no address inside
        assert token == verp_token(SECRET.encode(), "2026-12-08/week-before", member)
        assert token != verp_token(SECRET.encode(), "2026-12-08/day-before", member)  # per mailing
        assert token != verp_token(b"another-group-secret-xyz", "2026-12-08/week-before", member)
    with sent.ledger() as ledger:  # the token finds its delivery with one indexed lookup
        assert ledger.delivery_for_token(sent.tokens[ROSA]) == ("2026-12-08/week-before", ROSA)
        assert ledger.delivery_for_token(sent.tokens[ROSA].upper()) == ("2026-12-08/week-before", ROSA)
        assert ledger.delivery_for_token("a" * 32) is None and ledger.delivery_for_token("x") is None


def test_test_mails_keep_the_plain_sender(sent: Sent, run: CliRunner) -> None:
    code, out, err = run(sent.group, "send", "--to", "margaret@example.org", "--at", BEFORE_FIRST)
    assert code == 0, err
    (test_mail,) = sent.smtp.messages
    assert test_mail.mail_from == "news@example.org"


# --- reading the mailbox ------------------------------------------------------------------------


def test_each_kind_of_report_is_read_counted_and_moved(box: Box, sent: Sent) -> None:
    box.deliver(*standard(sent))
    report = process(sent.project(), now=NOW)
    assert (report.hard, report.soft, report.delayed, report.refused) == (4, 1, 1, 1)
    assert (report.complaints, report.autoreplies, report.unrecognised) == (1, 2, 2)
    assert (report.processed, report.read, report.repeated) == (10, 12, 0)
    assert box.counts() == {"INBOX": 0, PROCESSED: 10, UNRECOGNISED: 2}  # moved, none deleted
    runs, kinds, suppressed = signature(sent)
    assert runs == {a: (*score, False) for a, score in SCORES.items()}
    assert kinds == {"hard": 4, "soft": 1, "delayed": 1, "refused": 1, "complaint": 1, "autoreply": 2,
                     "unrecognised": 2}  # fmt: skip
    assert suppressed == {FRIEND: "complaint"}  # the complaint unsubscribes, like a click would
    # The complaint is news for the organisers, by line; nobody is bouncing yet.
    assert [(n.kind, n.line) for n in report.notices] == [("complaint", LINES[FRIEND])]
    assert not any(member in "\n".join(report.lines(today=NOW.date())) for member in LINES)

    again = process(sent.project(), now=NOW)  # nothing new
    assert (
        again.read == 0 and again.notices == report.notices and signature(sent) == (runs, kinds, suppressed)
    )
    box.deliver(*standard(sent))  # the very same reports delivered twice: counted once
    third = process(sent.project(), now=NOW)
    assert third.read == 12 and third.repeated == 12 and third.hard == 0
    assert signature(sent) == (runs, kinds, suppressed)


def test_threshold_crossing_tells_the_organisers_once(box: Box, sent: Sent) -> None:
    days = [DAY1 + dt.timedelta(days=n) for n in range(3)]
    box.deliver(*(sent.report("postfix_dsn", LINDA, n=n, at=day) for n, day in enumerate(days)))
    box.deliver(sent.report("gmail_style", LINDA, n=9, at=days[2]))  # same day again: not counted
    report = process(sent.project(), now=NOW)
    assert report.hard == 4
    with sent.ledger() as ledger:
        assert ledger.bouncing() == {LINDA}  # the send loop skips these
        run = ledger.bounce_runs()[LINDA]
        assert (run.score, run.times) == (BOUNCING_AT, 3)
    (notice,) = report.notices
    assert (notice.kind, notice.line, notice.times, notice.since) == ("bouncing", 2, 3, dt.date(2026, 12, 1))

    assert tell_organisers(sent.project(), report, now=NOW) == 2
    mails = sent.smtp.messages
    assert sorted(m.rcpt_tos[0] for m in mails) == ["margaret@example.org", "vonnie@example.org"]
    assert {m.mail_from for m in mails} == {"news@example.org"}  # organiser mail: the plain sender
    body = mails[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert (
        "The address on line 2 of subscribers.csv has bounced 3 times since 1 December: the mailbox "
        "does not exist. Check it with the member, then fix the row or run `newsletter subscribers add "
        "… --resubscribe`."
    ) in " ".join(body.split())
    assert not any(member in m.data.decode() for m in mails for member in LINES)
    # Told once: the next runs have nothing to say, even with more bounces of the same member.
    box.deliver(sent.report("postfix_dsn", LINDA, n=7, at=NOW - dt.timedelta(hours=1)))
    later = process(sent.project(), now=NOW)
    assert later.hard == 1 and later.notices == []


def test_reactivation_starts_the_count_over(sent: Sent, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_BOUNCE_MAILBOX", "bounce-mail")
    mailbox.Maildir(sent.group / "bounce-mail", create=True)
    with sent.ledger() as ledger:
        for n in range(3):
            at = DAY1 + dt.timedelta(days=n)
            ledger.record_bounce(LINDA, kind="hard", report_id=f"r{n}", at=at, reason="gone")
        assert ledger.bouncing() == {LINDA}
        assert not ledger.reactivate(ZOE, source="organiser", now=NOW)  # was not bouncing
        assert ledger.reactivate(LINDA.upper(), source="organiser", now=NOW)
        assert ledger.bouncing() == set() and LINDA not in ledger.bounce_runs()
        assert ledger.reactivations() == {LINDA: ("2026-12-03T20:00:00+00:00", "organiser")}
        assert ledger.unannounced() == []  # nothing left to tell
        count = ledger.record_bounce(LINDA, kind="hard", report_id="r9", at=NOW, reason="gone")
        assert count.run is not None and (count.run.score, count.run.times, count.crossed) == (1.0, 1, False)
        # A report already read stays read: it cannot bring the old count back.
        assert not ledger.record_bounce(LINDA, kind="hard", report_id="r1", at=NOW, reason="gone").new


def test_scoring_as_mailman(tmp_path: Path) -> None:
    with Ledger(tmp_path / "state.sqlite3") as ledger:
        day = DAY1
        first = ledger.record_bounce(ZOE, kind="soft", report_id="a", at=day, reason="the mailbox is full")
        same_day = ledger.record_bounce(
            ZOE, kind="hard", report_id="b", at=day, reason="the mailbox does not exist"
        )
        assert (first.counted, same_day.counted, same_day.new) == (0.5, 0.0, True)
        for n in range(1, 5):  # soft ones: 0.5 a day
            ledger.record_bounce(
                ZOE, kind="soft", report_id=f"s{n}", at=day + dt.timedelta(days=n), reason="full"
            )
        crossing = ledger.record_bounce(
            ZOE, kind="soft", report_id="s5", at=day + dt.timedelta(days=5), reason="f"
        )
        assert crossing.crossed and crossing.run is not None and crossing.run.score == 3.0
        # Ninety quiet days start the count over (for a member not yet bouncing).
        ledger.record_bounce(ROSA, kind="hard", report_id="q1", at=day, reason="gone")
        ledger.record_bounce(ROSA, kind="hard", report_id="q2", at=day + dt.timedelta(days=1), reason="gone")
        after = ledger.record_bounce(
            ROSA, kind="hard", report_id="q3", at=day + dt.timedelta(days=92), reason="g"
        )
        assert after.run is not None and (after.run.score, after.run.times, after.crossed) == (1.0, 1, False)
        # A permanent 5xx at send time counts as hard; a spam or size refusal is not the address's fault.
        kind = send_time_kind(550, "5.1.1 <rosa.delgado@example.org>: Recipient address rejected")
        assert kind == "hard" and send_time_kind(554, "5.7.1 rejected as spam") is None
        assert send_time_kind(451, "4.3.0 try later") is None
        ledger.record_bounce(
            ROSA, kind="hard", report_id="<mid@example.org>", at=day + dt.timedelta(days=93), reason=""
        )
        assert ledger.bounce_runs()[ROSA].score == 2.0
        with pytest.raises(ValueError):
            ledger.record_bounce(ROSA, kind="complaint", report_id="x", at=day, reason="")
        assert ledger.bouncing() == {ZOE}
        (told,) = ledger.unannounced()
        assert (told.kind, told.address, told.ref, told.times) == ("bouncing", ZOE, "s5", 6)
        ledger.mark_announced([told.ref], now=NOW)
        assert ledger.unannounced() == []


CHILD = """
import datetime as dt, os, signal, sys
from pathlib import Path
import newsletter.bounces.mailboxes as mailboxes
import newsletter.bounces.processing as processing
from newsletter.project import load_project
from newsletter.settings import resolve

mailboxes.BATCH = 2  # several batches: the kill lands between commits and moves
kill_after, done = int(sys.argv[2]), 0
real = processing.handle

def handle(*args, **kwargs):
    global done
    folder = real(*args, **kwargs)  # this report's count is committed
    done += 1
    if done == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)
    return folder

processing.handle = handle
project = load_project(resolve(Path(sys.argv[1])), check_subscribers=False)
processing.process(project, now=dt.datetime.fromisoformat(sys.argv[3]))
"""


@pytest.mark.parametrize(
    ("kind", "kill_after"),
    [("imap", 1), ("imap", 4), ("imap", 7), ("imap", 11), ("maildir", 1), ("maildir", 8)],
)
def test_kill_9_mid_batch_then_a_rerun_gives_the_same_counts(
    kind: str, kill_after: int, sent: Sent, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reference: a copy of the group that reads the same reports in one uninterrupted run.
    reference = Sent(sent.group.parent / "reference", sent.smtp, sent.tokens, sent.message_ids)
    shutil.copytree(sent.group, reference.group)
    server: Dovecot | None = request.getfixturevalue("dovecot") if kind == "imap" else None
    calm, killed = (Box(kind, g.group, server.account() if server else None) for g in (reference, sent))
    calm.deliver(*standard(sent))
    killed.deliver(*standard(sent))
    monkeypatch.setenv("NEWSLETTER_BOUNCE_MAILBOX", calm.setting)
    process(reference.project(), now=NOW)

    monkeypatch.setenv("NEWSLETTER_BOUNCE_MAILBOX", killed.setting)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(sent.group), str(kill_after), NOW.isoformat()],
        cwd=ROOT, capture_output=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert sum(killed.counts().values()) == 12  # nothing lost, whatever was moved already
    assert killed.counts()["INBOX"] > 0
    rerun = process(sent.project(), now=NOW)
    assert rerun.repeated >= 1  # the report committed just before the kill was read again...
    assert signature(sent) == signature(reference)  # ...and counted once
    assert killed.counts() == calm.counts() == {"INBOX": 0, PROCESSED: 10, UNRECOGNISED: 2}


# --- credentials --------------------------------------------------------------------------------


def test_the_imap_password_never_shows(
    sent: Sent,
    dovecot: Dovecot,
    run: CliRunner,
    with_bounces_command: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    account = dovecot.account()
    account.deliver(*standard(sent))
    secrets = (PASSWORD, quote(PASSWORD, safe=""))
    seen: list[str] = []

    def bounces(url: str) -> tuple[int, str]:
        monkeypatch.setenv("NEWSLETTER_BOUNCE_MAILBOX", url)
        code, out, err = run(sent.group, "bounces")
        seen.extend([out, err, repr(resolve(sent.group))])
        return code, out + err

    code, out = bounces(account.url())
    assert code == 0, out
    assert "Read 12 new messages from imap://bounces" in out and "4 hard bounces" in out
    assert "line 6 of subscribers.csv marked a reminder as spam" in out
    assert not any(member in out for member in LINES)
    code, out = bounces(account.url().replace(quote(PASSWORD, safe=""), "wrong%23password"))
    assert code == 1 and "refused the user name or password" in out
    code, out = bounces(account.url("Nowhere"))
    assert code == 1 and "the folder 'Nowhere' cannot be opened" in out
    code, out = bounces(account.url(tls=True))  # imaps with a certificate nobody trusts
    assert code == 1 and "certificate" in out.lower()
    monkeypatch.setenv("SSL_CERT_FILE", str(dovecot.trust(tmp_path / "ca.pem")))
    account.deliver(sent.report("postfix_dsn", ZOE, n=5))
    code, out = bounces(account.url(tls=True))  # and with it trusted, as a deployer would
    assert code == 0 and "1 hard bounce" in out, out
    state = (sent.group / ".newsletter" / "state.sqlite3").read_bytes()
    wal = sent.group / ".newsletter" / "state.sqlite3-wal"
    stored = state + (wal.read_bytes() if wal.exists() else b"")
    for secret in secrets:
        assert not any(secret in text for text in seen)
        assert secret not in caplog.text
        assert secret.encode() not in stored


# --- settings -----------------------------------------------------------------------------------


def test_bounce_mailbox_setting_is_read_strictly(tmp_path: Path) -> None:
    box = parse_bounce_mailbox("imaps://bounces:p%23ss%2Fw%40rd@mail.example.org/Bounces", tmp_path)
    assert (box.host, box.port, box.username, box.password, box.folder) == (
        "mail.example.org", 993, "bounces", "p#ss/w@rd", "Bounces",
    )  # fmt: skip
    assert "p#ss" not in repr(box) and "p#ss" not in box.describe()
    assert parse_bounce_mailbox("imaps://u:p@[::1]:1993", tmp_path).folder == "INBOX"
    assert parse_bounce_mailbox("imap://u:p@127.0.0.1:1143/INBOX", tmp_path).tls is False
    assert parse_bounce_mailbox("bounce-mail", tmp_path).maildir == tmp_path / "bounce-mail"
    assert parse_bounce_mailbox("/var/mail/bounces", tmp_path).maildir == Path("/var/mail/bounces")
    refused = {
        "imap://u:s3cr3t@mail.example.org/INBOX": "unencrypted to mail.example.org",
        "imaps://u:s3#cr3t@mail.example.org/INBOX": "%-encode",
        "imaps://u:s3@cr3t@mail.example.org/INBOX": "%-encode",
        "imaps://u:s3/cr3t@mail.example.org/INBOX": "%-encode",
        "imaps://mail.example.org/INBOX": "user name and password",
        "imaps://u:s3cr3t@mail.example.org:99999/INBOX": "port",
        "pop3://u:s3cr3t@mail.example.org": "unknown scheme 'pop3'",
        "imaps://u:s3cr3t@mail.example.org/IN BOX": "one line",
    }
    for value, words in refused.items():
        with pytest.raises(ConfigError) as caught:
            parse_bounce_mailbox(value, tmp_path)
        assert words in str(caught.value) and "cr3t" not in str(caught.value), value


@pytest.mark.parametrize(
    "value", ["Bounces <bounces@example.org>", "bounces+x@example.org", "b" * 32 + "@example.org", "bounces"]
)
def test_bounce_address_must_be_bare_with_room_for_the_token(group: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_BOUNCE_ADDRESS"):
        resolve(group, {"NEWSLETTER_BOUNCE_ADDRESS": value})
    assert resolve(group, {"NEWSLETTER_BOUNCE_ADDRESS": "bounces@example.org"}).bounce_address


# --- reading one report (pure) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "kind", "reason"),
    [
        ("postfix_dsn", "hard", "the mailbox does not exist"),
        ("gmail_style", "hard", "the mailbox does not exist"),
        ("exchange_style", "hard", "the mailbox does not exist"),
        ("exim_text", "hard", "the mailbox does not exist"),  # Auto-Submitted, yet from a mailer daemon
        ("dsn_original_attached", "soft", "the mailbox is full"),
        ("postfix_delayed", "delayed", "the member's mail server could not be reached"),
        ("spam_refusal", "refused", "the member's mail provider refused it as spam or by its rules"),
        ("arf_complaint", "complaint", ""),
        ("autoreply_out_of_office", "autoreply", ""),
        ("autoreply_exchange", "autoreply", ""),
        ("garbage", "unrecognised", ""),
    ],
)
def test_each_fixture_is_read_for_what_it_is(fixture: str, kind: str, reason: str) -> None:
    mid = message_id(SECRET.encode(), "2026-12-08/week-before", CAROL, "example.org")
    token = verp_token(SECRET.encode(), "2026-12-08/week-before", CAROL)
    raw = (FIXTURES / f"{fixture}.eml").read_bytes()
    for key, value in {
        "TOKEN": token,
        "MEMBER": CAROL,
        "MESSAGE_ID": mid,
        "REPORT": "r1",
        "DATE": "x",
    }.items():
        raw = raw.replace(f"{{{{{key}}}}}".encode(), value.encode())
    verdict = classify(raw, bounce_local="bounces")
    assert (verdict.kind, verdict.reason) == (kind, reason)
    if fixture != "garbage":
        assert verdict.message_ids == (mid,)
        assert verdict.tokens == (() if fixture == "dsn_original_attached" else (token,))
    assert CAROL not in verdict.reason


def test_an_autoreply_that_looks_like_a_bounce_to_the_heuristics_is_not_one() -> None:
    from flufl.bounce import all_failures

    raw = (FIXTURES / "autoreply_exchange.eml").read_bytes().replace(b"{{MEMBER}}", CAROL.encode())
    assert all_failures(email.message_from_bytes(raw))[1]  # flufl.bounce alone would count it (#1334)
    assert classify(raw).kind == "autoreply"


# --- the organisers' words ----------------------------------------------------------------------


def test_the_notice_names_the_line_never_the_address() -> None:
    today = dt.date(2026, 12, 3)
    bouncing = Notice("r", "bouncing", 14, 3, dt.date(2026, 10, 3), "the mailbox does not exist")
    assert sentence(bouncing, today=today) == (
        "The address on line 14 of subscribers.csv has bounced 3 times since 3 October: the mailbox does "
        "not exist. Check it with the member, then fix the row or run `newsletter subscribers add … "
        "--resubscribe`. Until then it gets no reminders."
    )
    last_year = Notice("r", "bouncing", 14, 1, dt.date(2025, 10, 3), "")
    assert "1 time since 3 October 2025." in sentence(last_year, today=today)
    subject, body = organiser_mail([bouncing, Notice("c", "complaint", 9)], today=today)
    assert (
        subject == "Newsletter: an address on the list no longer works and a member marked a reminder as spam"
    )
    assert "The member on line 9 of subscribers.csv marked a reminder as spam" in body
    assert "@" not in subject + body


def test_bounces_without_a_mailbox_says_what_to_set(
    group: Path, run: CliRunner, with_bounces_command: None
) -> None:
    code, out, err = run(group, "bounces")
    assert code == 1 and "NEWSLETTER_BOUNCE_MAILBOX is not set" in err


def test_a_report_object_prints_plain_figures() -> None:
    report = BounceReport(
        source="the Maildir /srv/bounces", processed=3, unrecognised=1, hard=2, autoreplies=1
    )
    lines = report.lines(today=dt.date(2026, 12, 3))
    assert lines[0] == "Read 4 new messages from the Maildir /srv/bounces:"
    assert lines[1] == "  2 hard bounces, 1 autoreply (not a bounce)"
    assert "moved to newsletter-unrecognised" in lines[2]


def test_uids_are_read_before_or_after_the_message_bytes() -> None:
    from newsletter.bounces.mailboxes import _fetched

    answer = [
        (b"1 (UID 41 BODY[] {5}", b"first"), b")",
        (b"2 (BODY[] {6}", b"second"), b" UID 42)",  # some servers name the UID after the literal
    ]  # fmt: skip
    assert list(_fetched(("OK", answer))) == [("41", b"first"), ("42", b"second")]


def test_without_dovecot_the_imap_tests_skip_saying_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from . import imapd

    monkeypatch.setattr(imapd, "DOVECOT", None)
    monkeypatch.setattr(imapd, "REQUIRED", False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install dovecot-imapd"):
        imapd.require_dovecot()
    monkeypatch.setattr(imapd, "REQUIRED", True)  # NEWSLETTER_REQUIRE_IMAP=1, as CI sets it
    with pytest.raises(pytest.fail.Exception, match="apt-get install dovecot-imapd"):
        imapd.require_dovecot()


# --- wired into tick, send and the list commands ---------------------------------------------------


def test_tick_reads_bounces_skips_a_bouncing_member_and_tells_the_organisers_once(
    sent: Sent, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = Box("maildir", sent.group)
    monkeypatch.setenv("NEWSLETTER_BOUNCE_MAILBOX", box.setting)
    days = [dt.datetime(2026, 12, d, 15, 0, tzinfo=dt.UTC) for d in (2, 3, 4)]
    box.deliver(*(sent.report("postfix_dsn", LINDA, n=n, at=day) for n, day in enumerate(days)))
    code, out, err = run(sent.group, "tick", "--at", "2026-12-07T09:05")  # the day-before reminder
    assert code == 0, err
    members = {m.rcpt_tos[0] for m in sent.smtp.messages} - {"margaret@example.org", "vonnie@example.org"}
    assert members == set(LINES) - {LINDA}  # bouncing: not mailed
    # (Not counting the mail with who is coming to the dinner, which the day-before's run brings.)
    told = [
        m
        for m in sent.smtp.messages
        if m.rcpt_tos[0] == "margaret@example.org" and "who is coming" not in str(m.message["Subject"])
    ]
    assert len(told) == 1 and "line 2 of subscribers.csv" in str(told[0].message.get_body(("plain",)))
    assert LINDA not in str(told[0].message.get_body(("plain",)))
    assert box.counts()["INBOX"] == 0
    code, out, err = run(sent.group, "status")
    assert "1 member(s) bouncing" in out
    code, out, err = run(sent.group, "subscribers", "list")
    assert "4 of them get the reminders" in out and "[bouncing: not mailed" in out
    run(sent.group, "tick", "--at", "2026-12-07T10:05")  # nothing new: no second mail to organisers
    assert len([m for m in sent.smtp.messages if m.rcpt_tos[0] == "margaret@example.org"]) == 2
    # An organiser checked the address with Linda and reactivates it: she gets the next reminder.
    code, out, err = run(sent.group, "subscribers", "add", LINDA, "--resubscribe")
    assert code == 0, err
    with sent.ledger() as ledger:
        assert LINDA not in ledger.bouncing()


def test_a_permanent_refusal_at_send_time_counts_as_a_hard_bounce(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(address: str) -> str | None:
        unknown = "550 5.1.1 <zoe.martin@example.org>: Recipient address rejected: User unknown"
        return unknown if address.startswith("zoe.") else None

    with Server(Recorder(rcpt_hook=refuse)) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 3
    with Ledger(group / ".newsletter" / "state.sqlite3") as ledger:
        runs = ledger.bounce_runs()
    assert runs[ZOE].score == 1.0 and not runs[ZOE].bouncing
