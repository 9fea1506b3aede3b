"""Settings resolved once: flag → environment → `.env` → default, into a frozen dataclass."""

from __future__ import annotations

import io
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import ConfigError

SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}
DEFAULT_PORTS = {"plain": 25, "starttls": 587, "tls": 465}
KNOWN = (
    "SMTP_URL",
    "SMTP_CONNECTIONS",
    "SMTP_RATE_LIMIT",
    "SMTP_TIMEOUT",
    "NEWSLETTER_FROM",
    "NEWSLETTER_REPLY_TO",
    "NEWSLETTER_STATE",
    "NEWSLETTER_OUTBOX",
    "NEWSLETTER_SECRET",
    "NEWSLETTER_PUBLIC_URL",
    "NEWSLETTER_HOME",
    "NEWSLETTER_DKIM_KEY",
    "NEWSLETTER_DKIM_SELECTOR",
)


@dataclass(frozen=True)
class SmtpSettings:
    security: str  # plain | starttls | tls
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)  # never printed, logged or stored

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def describe(self) -> str:
        """Where mail goes, for messages: never the credentials."""
        scheme = {v: k for k, v in SCHEMES.items()}[self.security]
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


@dataclass(frozen=True)
class Settings:
    home: Path
    smtp: SmtpSettings | None  # None: the outbox folder
    state_path: Path
    outbox: Path
    sender: str  # "" → schedule.yaml's group.sender
    reply_to: str  # "" → the sender
    secret: bytes | None = field(repr=False)  # None → generated once in the state folder
    public_url: str
    connections: int
    rate_limit: str
    timeout: float
    dkim_key: Path | None = None  # PEM private key; None: messages are not DKIM-signed
    dkim_selector: str = "newsletter"

    @property
    def state_dir(self) -> Path:
        return self.state_path.parent

    @property
    def secret_path(self) -> Path:
        return self.state_dir / "secret"


def read_env_file(path: Path) -> dict[str, str]:
    """`.env` values; a line python-dotenv cannot parse is an error naming the line, not a warning."""
    from dotenv.main import DotEnv
    from dotenv.parser import parse_stream

    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8-sig")
    line = 1
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise ConfigError(
                f"{path.name}:{line}: cannot read this line — write it as NAME=value "
                "(quote values with spaces or '#')"
            )
        line += binding.original.string.count("\n")
    values = DotEnv(path, encoding="utf-8-sig", interpolate=False).dict()
    return {k: v for k, v in values.items() if v is not None}


def parse_smtp_url(url: str) -> SmtpSettings:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as err:
        raise ConfigError(
            "SMTP_URL: the port is not a number — e.g. smtp+starttls://user:pass@mail.example.org:587"
        ) from err
    if parts.scheme not in SCHEMES:
        raise ConfigError(
            f"SMTP_URL: unknown scheme {parts.scheme!r} — use smtp:// (plain, local relay), "
            "smtp+starttls:// (port 587) or smtps:// (port 465)"
        )
    if not parts.hostname:
        raise ConfigError("SMTP_URL: no server name — e.g. smtp+starttls://user:pass@mail.example.org:587")
    security = SCHEMES[parts.scheme]
    smtp = SmtpSettings(
        security=security,
        host=parts.hostname,
        port=port or DEFAULT_PORTS[security],
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )
    if smtp.username and security == "plain" and not smtp.is_loopback:
        raise ConfigError(
            f"SMTP_URL: a password would be sent unencrypted to {smtp.host} — use "
            "smtp+starttls:// or smtps://, or a relay on this machine (127.0.0.1)"
        )
    return smtp


def _positive(env: Mapping[str, str], name: str, default: float, *, integer: bool) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError as err:
        raise ConfigError(
            f"{name}={raw!r} is not a {'whole ' if integer else ''}number — e.g. {name}={int(default)}"
        ) from err
    if value <= 0:
        raise ConfigError(f"{name} must be more than 0 — e.g. {name}={int(default)}")
    return value


def resolve(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for the group folder ``home``; ``environ`` wins over the folder's `.env`."""
    environ = os.environ if environ is None else environ
    home = Path(home or environ.get("NEWSLETTER_HOME") or ".").resolve()
    if not home.is_dir():
        raise ConfigError(
            f"{home}: no such folder — pass --dir PATH or set NEWSLETTER_HOME to the group's folder"
        )
    env = {**read_env_file(home / ".env"), **{k: v for k, v in environ.items() if k in KNOWN}}

    def path(name: str, default: str) -> Path:
        value = Path(env.get(name, "").strip() or default).expanduser()
        return value if value.is_absolute() else home / value

    url = env.get("SMTP_URL", "").strip()
    public = env.get("NEWSLETTER_PUBLIC_URL", "").strip().rstrip("/")
    if public and not re.match(r"https?://[^/\s]+", public):
        raise ConfigError("NEWSLETTER_PUBLIC_URL must be a web address — e.g. https://news.example.org")
    from .ratelimit import parse_rate_limit

    parse_rate_limit(env.get("SMTP_RATE_LIMIT", "").strip())  # a wrong value is a ConfigError now
    secret = env.get("NEWSLETTER_SECRET", "").strip()
    if secret and len(secret) < 16:
        raise ConfigError(
            "NEWSLETTER_SECRET is too short — use at least 16 random characters, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    return Settings(
        home=home,
        smtp=parse_smtp_url(url) if url else None,
        state_path=path("NEWSLETTER_STATE", ".newsletter/state.sqlite3"),
        outbox=path("NEWSLETTER_OUTBOX", "outbox"),
        sender=env.get("NEWSLETTER_FROM", "").strip(),
        reply_to=env.get("NEWSLETTER_REPLY_TO", "").strip(),
        secret=secret.encode() if secret else None,
        public_url=public,
        connections=int(_positive(env, "SMTP_CONNECTIONS", 4, integer=True)),
        rate_limit=env.get("SMTP_RATE_LIMIT", "").strip(),
        timeout=_positive(env, "SMTP_TIMEOUT", 30.0, integer=False),
        dkim_key=path("NEWSLETTER_DKIM_KEY", "") if env.get("NEWSLETTER_DKIM_KEY", "").strip() else None,
        dkim_selector=env.get("NEWSLETTER_DKIM_SELECTOR", "").strip() or "newsletter",
    )
