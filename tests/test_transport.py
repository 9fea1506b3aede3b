"""TLS and AUTH against a real aiosmtpd: STARTTLS required when asked, certificates verified,
credentials never sent in clear to another host and never shown."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from .conftest import BEFORE_FIRST, CliRunner
from .smtpd import Recorder, Server

PASSWORD = "s3cret-Pa55word"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"organiser" and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[Server]:
    with Server(
        Recorder(),
        tls_context=server_tls(ca),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    ) as server:
        yield server


@pytest.fixture
def trusted(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust the test CA the way a deployer would: SSL_CERT_FILE."""
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))


@pytest.mark.usefixtures("trusted")
def test_starttls_and_auth_with_a_verified_certificate(
    tls_server: Server,
    group: Path,
    run: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_URL", f"smtp+starttls://organiser:{PASSWORD}@127.0.0.1:{tls_server.port}")
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 0, err
    assert len(tls_server.messages) == 5
    assert PASSWORD not in out + err
    assert "organiser@127.0.0.1" in out  # where it went, without the password


def test_unverified_certificate_is_refused(
    tls_server: Server, group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_URL", f"smtp+starttls://organiser:{PASSWORD}@127.0.0.1:{tls_server.port}")
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 3
    assert "cannot connect" in err and "CERTIFICATE" in err.upper()
    assert PASSWORD not in out + err
    assert tls_server.messages == []


def test_starttls_is_required_when_the_url_asks_for_it(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Server(Recorder()) as plain:  # offers no STARTTLS
        monkeypatch.setenv("SMTP_URL", f"smtp+starttls://organiser:{PASSWORD}@127.0.0.1:{plain.port}")
        code, out, err = run(group, "send", "--at", BEFORE_FIRST)
        assert code == 3
        assert "STARTTLS" in err.upper()
        assert PASSWORD not in out + err
        assert plain.messages == []


@pytest.mark.usefixtures("trusted")
def test_wrong_password_is_reported_without_it(
    tls_server: Server,
    group: Path,
    run: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_URL", f"smtp+starttls://organiser:wrong-{PASSWORD}@127.0.0.1:{tls_server.port}")
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 3
    assert "user name or password" in err
    assert PASSWORD not in out + err
    assert tls_server.messages == []


def test_auth_over_plain_smtp_only_to_loopback(
    group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Server(Recorder(), authenticator=authenticator, auth_require_tls=False) as local:
        monkeypatch.setenv("SMTP_URL", f"smtp://organiser:{PASSWORD}@127.0.0.1:{local.port}")
        code, out, err = run(group, "send", "--at", BEFORE_FIRST)
        assert code == 0, err
        assert len(local.messages) == 5
    monkeypatch.setenv("SMTP_URL", f"smtp://organiser:{PASSWORD}@mail.example.org:25")
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 1 and "unencrypted" in err and PASSWORD not in err


def test_settings_repr_hides_the_password() -> None:
    from newsletter.settings import parse_smtp_url

    smtp = parse_smtp_url(f"smtps://organiser:{PASSWORD}@mail.example.org")
    assert PASSWORD not in repr(smtp) and PASSWORD not in smtp.describe()
    assert smtp.port == 465 and smtp.security == "tls"


WIRE_CASES = [
    b"a\r\n.b\r\n",
    b".x\r\n",
    b"..\r\n.\r\n...\r\n",
    b"no dots\r\nat all\r\n",
    b"Subject: x\r\n\r\n.wrapper {\r\n  color: red;\r\n}\r\n.\r\n",
    b"=2E\r\n.=\r\n.\r\n",
]


@pytest.mark.parametrize("data", WIRE_CASES)
def test_wire_data_is_what_aiosmtplib_data_would_write(data: bytes) -> None:
    # The one piece of the SMTP conversation not left to aiosmtplib: the same bytes, cheaper.
    from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

    from newsletter.send.transports import wire_data

    reference = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data)) + b".\r\n"
    assert wire_data(data) == reference
    assert wire_data(data, crlf=True) == reference


def test_wire_data_leaves_bare_line_feeds_to_aiosmtplib() -> None:
    from newsletter.send.transports import wire_data

    assert wire_data(b"a\nb\r\n") is None
    assert wire_data(b"a\rb\r\n") is None
    assert wire_data(b"no end") is None


def test_lines_starting_with_a_dot_arrive_intact(
    group: Path, run: CliRunner, smtp: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stylesheet has lines like ".wrapper {", and a body line of dots: aiosmtplib dot-stuffs
    # them on the way out and they arrive as written.
    text = group / "templates" / "reminder.txt"
    text.write_text(
        text.read_text(encoding="utf-8").replace(
            "{% block content %}", "{% block content %}\n.\n..two dots\n", 1
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("SMTP_URL", smtp.url)
    code, out, err = run(group, "send", "--at", BEFORE_FIRST)
    assert code == 0, err
    message = smtp.messages[0]
    assert b"\r\n..two dots\r\n" in message.data  # unstuffed by the server, as written
    body = message.message.get_body(("plain",))
    assert body is not None and ".\r\n..two dots\r\n" in body.get_content()
    html = message.message.get_body(("html",))
    assert html is not None and ".wrapper" in html.get_content()
