"""Settings resolved once, strictly: a mistake names the setting and the fix and echoes no secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.errors import ConfigError
from newsletter.settings import parse_smtp_url, resolve

from .conftest import CliRunner


@pytest.mark.parametrize(
    "url",
    [
        "smtp+starttls://mkent:7319#Spring@127.0.0.1:2525",
        "smtp+starttls://mkent:73?19@127.0.0.1:2525",
        "smtp+starttls://mkent:73/19@127.0.0.1:2525",
        "smtp+starttls://mkent:73@19@127.0.0.1:2525",
    ],
)
def test_an_unencoded_special_character_in_the_password_is_refused_and_never_echoed(
    url: str, group: Path, run: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_smtp_url(url)
    assert "%-encode special characters in the password (# as %23" in str(caught.value)
    monkeypatch.setenv("SMTP_URL", url)
    code, out, err = run(group, "send")
    assert code == 1
    assert "%-encode" in err and "73" not in err and "19" not in err and "mkent" not in err
    assert not (group / "outbox").exists()


def test_an_encoded_password_is_read_whole() -> None:
    smtp = parse_smtp_url("smtp+starttls://user:2024%23Spring%2F%3F%40@mail.example.org:587")
    assert (smtp.host, smtp.port, smtp.username, smtp.password) == (
        "mail.example.org",
        587,
        "user",
        "2024#Spring/?@",
    )
    assert "2024" not in repr(smtp) and "2024" not in smtp.describe()


@pytest.mark.parametrize("name", ["NEWSLETTER_FROM", "NEWSLETTER_REPLY_TO"])
@pytest.mark.parametrize(
    "value", ["News <news@example.org>\r\nBcc: x@evil.example", "=?utf-8?q?News=0A?= <a@b.org>"]
)
def test_a_line_break_in_a_header_setting_is_an_error_not_cut(name: str, value: str, group: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(group, environ={name: value})
    assert name in str(caught.value) and "line break" in str(caught.value)


def test_settings_are_complete_once_the_group_is_known(group: Path) -> None:
    settings = resolve(group, environ={"SMTP_RATE_LIMIT": "100/min, 500/day"})
    assert settings.rate.daily == 500 and settings.connections == 1  # the outbox: one writer
    assert len(settings.secret) >= 32 and (group / ".newsletter" / "secret").exists()
    assert resolve(group, environ={}).secret == settings.secret  # generated once, then kept
    done = settings.for_group(sender="Group <news@example.org>", reply_to="")
    assert (done.sender, done.reply_to, done.sender_domain) == (
        "Group <news@example.org>",
        "news@example.org",
        "example.org",
    )
