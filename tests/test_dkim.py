"""DKIM: a real reminder signed with a fresh 2048-bit key and verified by dkimpy against the TXT record."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

import dkim
import pytest
from dkim import dknewkey

from newsletter.cli.main import main
from newsletter.compose.dkim import OVERSIGNED, SIGNED_HEADERS, load_signer
from newsletter.errors import ConfigError

from .conftest import BEFORE_FIRST, ROOT, SAMPLE, CliRunner
from .smtpd import Server

SELECTOR, DOMAIN = "newsletter", "example.org"


def openssl(*args: str) -> None:
    subprocess.run([dknewkey.OPENSSL_BINARY, *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 2048-bit RSA key made by dkimpy's keygen (openssl), and the TXT record it writes for DNS."""
    folder = tmp_path_factory.mktemp("dkim")
    key, record = folder / "dkim.pem", folder / "dkim.dns"
    dknewkey.GenRSAKeys(str(key), verbose=False)
    dknewkey.ExtractRSADnsPublicKey(str(key), str(record), verbose=False)
    return key, record.read_text()


def dns(record: str, name: str = f"{SELECTOR}._domainkey.{DOMAIN}.") -> Callable[..., bytes | None]:
    """A resolver that knows only the one TXT record dkim.verify asks for."""

    def lookup(qname: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if qname.decode() == name else None

    return lookup


@pytest.fixture(scope="module")
def reminder(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One real reminder as the outbox holds it, with List-Unsubscribe and List-Unsubscribe-Post."""
    group = tmp_path_factory.mktemp("group")
    for name in SAMPLE:
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, group / name)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NEWSLETTER_PUBLIC_URL", "https://news.example.org")
        env.delenv("SMTP_URL", raising=False)
        assert main(["--dir", str(group), "send", "--at", BEFORE_FIRST]) == 0
    return sorted((group / "outbox").rglob("*.eml"))[0].read_bytes()


def test_a_signed_reminder_verifies_against_the_published_key(
    keys: tuple[Path, str], reminder: bytes
) -> None:
    key, record = keys
    signer = load_signer(key, SELECTOR, DOMAIN)
    # What `check` can tell the deployer to publish: the same public key as openssl extracts.
    assert signer.dns_record().split("p=")[1] == record.split("p=")[1]
    assert signer.dns_name == "newsletter._domainkey.example.org"
    signed = signer.sign(reminder)
    assert signed.startswith(b"DKIM-Signature: ") and signed.endswith(reminder)
    assert dkim.verify(signed, dnsfunc=dns(record))
    msg = message_from_bytes(signed, policy=policy.default)
    tags = dict(
        (k.strip(), v.strip())
        for k, v in (t.split("=", 1) for t in re.sub(r"\s+", "", str(msg["DKIM-Signature"])).split(";") if t)
    )
    assert tags["d"] == DOMAIN and tags["s"] == SELECTOR and tags["c"] == "relaxed/relaxed"
    assert tags["a"] == "rsa-sha256"
    signed_headers = tags["h"].lower().split(":")
    for header in ("from", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"):
        assert header in signed_headers
        assert msg[header], header  # …and the message really has them
    assert signed_headers == [h.lower() for h in (*SIGNED_HEADERS, *OVERSIGNED)]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Subject: ", b"Subject: Re: "),
        (b"https://news.example.org/unsubscribe/", b"https://evil.example.org/unsubscribe/"),
        (b"Copper River Grill", b"Copper River Gri11"),
    ],
)
def test_a_changed_header_or_body_fails_verification(
    keys: tuple[Path, str], reminder: bytes, old: bytes, new: bytes
) -> None:
    key, record = keys
    signed = load_signer(key, SELECTOR, DOMAIN).sign(reminder)
    assert old in signed
    assert not dkim.verify(signed.replace(old, new, 1), dnsfunc=dns(record))


def test_an_added_list_unsubscribe_breaks_the_signature(keys: tuple[Path, str]) -> None:
    # Listing List-Unsubscribe in h= even when absent stops anyone adding one on the way.
    key, record = keys
    plain = b"From: news@example.org\r\nTo: ann@example.org\r\nSubject: Hi\r\n\r\nHello\r\n"
    signed = load_signer(key, SELECTOR, DOMAIN).sign(plain)
    assert dkim.verify(signed, dnsfunc=dns(record))
    forged = signed.replace(b"Subject: Hi", b"List-Unsubscribe: <https://evil.example>\r\nSubject: Hi")
    assert not dkim.verify(forged, dnsfunc=dns(record))


def test_keys_in_both_pem_forms_and_with_windows_line_ends_load(
    keys: tuple[Path, str], tmp_path: Path
) -> None:
    key, record = keys
    traditional = tmp_path / "rsa.pem"
    openssl("rsa", "-in", str(key), "-out", str(traditional), "-traditional")
    assert b"BEGIN RSA PRIVATE KEY" in traditional.read_bytes()
    crlf = tmp_path / "crlf.pem"
    crlf.write_bytes(key.read_bytes().replace(b"\n", b"\r\n"))
    for path in (traditional, crlf):
        signer = load_signer(path, SELECTOR, DOMAIN)
        assert dkim.verify(signer.sign(b"From: a@example.org\r\n\r\nx\r\n"), dnsfunc=dns(record))


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("missing", "file not found"),
        ("garbage", "not an RSA private key in PEM form"),
        ("public", "not an RSA private key in PEM form"),
        ("encrypted", "passphrase"),
        ("short", "only 512 bits"),
    ],
)
def test_a_key_that_cannot_be_used_is_a_config_error_naming_the_file(
    keys: tuple[Path, str], tmp_path: Path, setup: str, says: str
) -> None:
    key, _ = keys
    path = tmp_path / "dkim.pem"
    if setup == "garbage":
        path.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    elif setup == "public":
        openssl("rsa", "-in", str(key), "-pubout", "-out", str(path))
    elif setup == "encrypted":
        openssl("pkey", "-in", str(key), "-out", str(path), "-aes256", "-passout", "pass:secret")
    elif setup == "short":
        openssl("genrsa", "-out", str(path), "512")
    with pytest.raises(ConfigError) as caught:
        load_signer(path, SELECTOR, DOMAIN)
    message = str(caught.value)
    assert says in message and str(path) in message and "NEWSLETTER_DKIM_KEY" in message


@pytest.mark.parametrize(
    ("selector", "domain"), [("bad selector", DOMAIN), (SELECTOR, ""), (SELECTOR, "a..b")]
)
def test_selector_and_domain_must_be_dns_names(keys: tuple[Path, str], selector: str, domain: str) -> None:
    with pytest.raises(ConfigError):
        load_signer(keys[0], selector, domain)


def test_signing_cost_per_message(keys: tuple[Path, str], reminder: bytes) -> None:
    """dkimpy signs in pure Python: keep an eye on what a 2048-bit signature costs per member."""
    signer = load_signer(keys[0], SELECTOR, DOMAIN)
    start = time.perf_counter()
    for _ in range(20):
        signer.sign(reminder)
    per_message = (time.perf_counter() - start) / 20
    print(f"DKIM signing: {per_message * 1000:.1f} ms per message")
    assert per_message < 0.25


def test_with_a_key_configured_every_sent_message_is_signed(
    keys: tuple[Path, str], group: Path, smtp: Server, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, record = keys
    monkeypatch.setenv("SMTP_URL", smtp.url)
    monkeypatch.setenv("NEWSLETTER_PUBLIC_URL", "https://news.example.org")
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY", str(key))
    code, out, err = run(group, "check")
    assert code == 0, err
    assert f"DKIM: signing as d={DOMAIN} s={SELECTOR}" in out
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 0, err
    assert len(smtp.messages) == 5
    for received in smtp.messages:
        assert dkim.verify(received.data, dnsfunc=dns(record))
        signature = message_from_bytes(received.data, policy=policy.default)["DKIM-Signature"]
        signed = {h.strip().lower() for h in re.search(r"h=([^;]+)", str(signature)).group(1).split(":")}  # type: ignore[union-attr]
        assert {
            "from",
            "subject",
            "date",
            "message-id",
            "list-unsubscribe",
            "list-unsubscribe-post",
        } <= signed


def test_check_reports_a_key_that_does_not_load(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    (group / "broken.pem").write_text("not a key\n", encoding="utf-8")
    monkeypatch.setenv("NEWSLETTER_DKIM_KEY", "broken.pem")
    code, out, err = run(group, "check")
    assert code == 1
    assert "NEWSLETTER_DKIM_KEY" in err and "broken.pem" in err
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 1 and not (group / "outbox").exists()


@pytest.mark.parametrize(
    "forge",
    [
        lambda m: m.replace(b"Reply-To: ", b"Reply-To: thief@evil.example\r\nX-Old-Reply-To: ", 1),
        lambda m: m.replace(b"Subject: ", b"Subject: You won a prize\r\nSubject: ", 1),
        lambda m: m.replace(b"From: ", b"From: Support <help@evil.example>\r\nFrom: ", 1),
        lambda m: m.replace(
            b"Content-Type: multipart/mixed", b"Content-Type: text/plain\r\nX-Was: multipart/mixed", 1
        ),
        lambda m: m.replace(b"To: ", b"Cc: other@example.org\r\nTo: ", 1),
    ],
    ids=["reply-to", "second-subject", "second-from", "content-type", "added-cc"],
)
def test_tampering_with_replies_or_adding_a_header_breaks_the_signature(
    keys: tuple[Path, str], forge: Callable[[bytes], bytes]
) -> None:
    key, record = keys
    message = (
        b"From: Group <news@example.org>\r\nReply-To: margaret@example.org\r\nTo: ann@example.org\r\n"
        b"Subject: Hi\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n"
    )
    signed = load_signer(key, SELECTOR, DOMAIN).sign(message)
    assert dkim.verify(signed, dnsfunc=dns(record))
    forged = forge(signed)
    assert forged != signed
    assert not dkim.verify(forged, dnsfunc=dns(record))


def test_organiser_notices_are_signed_too(
    keys: tuple[Path, str], group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .smtpd import Recorder

    key, record = keys
    refuse = Recorder(rcpt_hook=lambda a: "451 4.3.0 later" if a == "linda.harper@example.org" else None)
    with Server(refuse) as smtp:
        monkeypatch.setenv("SMTP_URL", smtp.url)
        monkeypatch.setenv("NEWSLETTER_DKIM_KEY", str(key))
        run(group, "tick", "--at", "2026-12-01T09:05")
        run(group, "tick", "--at", "2026-12-07T09:01")  # the week-before window closed with one left
        notices = [
            m
            for m in smtp.messages
            if m.rcpt_tos[0] in {"margaret@example.org", "vonnie@example.org"}
            and "who is coming" not in str(m.message["Subject"])  # the dinner's answers: signed too
        ]
        assert len(notices) == 2
        assert all(dkim.verify(m.data, dnsfunc=dns(record)) for m in smtp.messages)
