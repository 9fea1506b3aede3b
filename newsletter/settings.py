"""Settings resolved once: flag → environment → `.env` → default, into one frozen, complete object.

Everything a command needs to know about where mail goes and how is worked out here, and every
mistake names the setting to fix: the sender and reply-to (falling back to schedule.yaml's, see
``Settings.for_group``), the secret, the DKIM key (read once), the parsed rate limit, connections and
timeouts.  Credentials are never part of a message, a log line or ``repr``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote

from newsletter.envfile import STATE_DEFAULT, home_folder, merged_env, path_setting
from newsletter.errors import ConfigError
from newsletter.rate import SendRate, parse_rate_limit
from newsletter.tokens import load_or_create_secret

SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "tls"}
DEFAULT_PORTS = {"plain": 25, "starttls": 587, "tls": 465}
IMAP_PORTS = {"imaps": 993, "imap": 143}
BOX = "NEWSLETTER_BOUNCE_MAILBOX"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_ENCODE_HINT = (
    "SMTP_URL: %-encode special characters in the password (# as %23, / as %2F, ? as %3F, @ as %40) — "
    "e.g. smtp+starttls://user:p%23ss@mail.example.org:587"
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
class BounceMailbox:
    """NEWSLETTER_BOUNCE_MAILBOX: an IMAP folder (TLS; plain only on this machine) or a local Maildir."""

    maildir: Path | None = None  # set: a Maildir, and the rest is unused
    tls: bool = True
    host: str = ""
    port: int = 0
    username: str = ""
    password: str = field(default="", repr=False)  # never printed, logged or stored
    folder: str = "INBOX"

    def describe(self) -> str:  # for messages: never the password
        if self.maildir is not None:
            return f"the Maildir {self.maildir}"
        return f"{'imaps' if self.tls else 'imap'}://{self.username}@{self.host}:{self.port}/{self.folder}"


@dataclass(frozen=True)
class Settings:
    home: Path
    smtp: SmtpSettings | None  # None: the outbox folder
    state_path: Path
    outbox: Path
    sender: str  # "Name <address>"; "" until ``for_group`` fills in schedule.yaml's
    reply_to: str  # the bare address; "" until ``for_group`` falls back to the group's or the sender's
    secret: bytes = field(repr=False)  # NEWSLETTER_SECRET, or generated once in the state folder
    public_url: str
    connections: int  # parallel connections (1 for the outbox)
    rate: SendRate
    timeout: float
    dkim_key: bytes | None = field(default=None, repr=False)  # the PEM, read once; None: not signed
    dkim_key_path: Path | None = None  # where it was read from, for messages
    dkim_selector: str = "newsletter"
    bounce_address: str = ""  # the bare VERP base address; "": members' mail keeps the plain sender
    bounce_mailbox: BounceMailbox | None = None  # None: no bounce processing

    @property
    def state_dir(self) -> Path:
        return self.state_path.parent

    @property
    def secret_path(self) -> Path:
        return self.state_dir / "secret"

    @property
    def sender_address(self) -> str:
        return parseaddr(self.sender)[1]

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rpartition("@")[2] or "localhost"

    def for_group(self, *, sender: str, reply_to: str) -> Settings:
        """These settings with schedule.yaml's sender and reply-to where `.env` sets none."""
        chosen = self.sender or sender
        return dataclasses.replace(
            self, sender=chosen, reply_to=parseaddr(self.reply_to or reply_to or chosen)[1]
        )


def parse_smtp_url(url: str) -> SmtpSettings:
    """``SMTP_URL`` read strictly: a password with an un-encoded ``#``, ``?``, ``/`` or ``@`` is refused,
    never guessed at, and no part of the user name or password is ever echoed."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        shown = scheme if sep and not _CONTROL.search(scheme) and "@" not in scheme else ""
        raise ConfigError(
            f"SMTP_URL: unknown scheme {shown!r} — use smtp:// (plain, local relay), "
            "smtp+starttls:// (port 587) or smtps:// (port 465)"
        )
    userinfo, at, hostport = rest.rpartition("@")
    if not at:
        hostport = rest
    if hostport.endswith("/"):
        hostport = hostport[:-1]
    if (at and any(c in userinfo for c in "#?/@")) or any(c in hostport for c in "#?/@"):
        raise ConfigError(_ENCODE_HINT)
    if _CONTROL.search(url) or " " in url:
        raise ConfigError("SMTP_URL: contains a space or line break — write it on one line, %-encoded")
    host, port_text = hostport, ""
    if hostport.startswith("["):
        host, _, tail = hostport[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else tail
    elif ":" in hostport:
        host, _, port_text = hostport.rpartition(":")
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ConfigError(
            "SMTP_URL: the port is not a number from 1 to 65535 — e.g. smtp+starttls://user:pass@mail.example.org:587"
            + (" (a password with special characters must be %-encoded)" if at else "")
        )
    if not host:
        raise ConfigError("SMTP_URL: no server name — e.g. smtp+starttls://user:pass@mail.example.org:587")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.fullmatch(host):
            raise ConfigError(
                "SMTP_URL: the server name is not a host name or IP address — "
                + (
                    "%-encode special characters in the password (# as %23, / as %2F, ? as %3F, @ as %40)"
                    if at
                    else "e.g. mail.example.org"
                )
            ) from None
    username, _, password = userinfo.partition(":")
    security = SCHEMES[scheme.lower()]
    smtp = SmtpSettings(
        security=security,
        host=host.lower(),
        port=int(port_text) if port_text else DEFAULT_PORTS[security],
        username=unquote(username),
        password=unquote(password),
    )
    if smtp.username and security == "plain" and not smtp.is_loopback:
        raise ConfigError(
            f"SMTP_URL: a password would be sent unencrypted to {smtp.host} — use "
            "smtp+starttls:// or smtps://, or a relay on this machine (127.0.0.1)"
        )
    return smtp


def parse_bounce_mailbox(value: str, home: Path) -> BounceMailbox:
    """NEWSLETTER_BOUNCE_MAILBOX read as strictly as SMTP_URL (nothing of the user name or password is
    echoed); a value without ``://`` is a Maildir's path, relative to the group's folder."""
    name, example = "NEWSLETTER_BOUNCE_MAILBOX", "imaps://bounces:pass@mail.example.org/INBOX"
    encode = "%-encode special characters in the password (# as %23, / as %2F, ? as %3F, @ as %40)"
    value = value.strip()
    scheme, sep, rest = value.partition("://")
    if not sep:
        path = Path(value).expanduser()
        return BounceMailbox(maildir=path if path.is_absolute() else home / path)
    if scheme.lower() not in IMAP_PORTS:
        shown = scheme if not _CONTROL.search(scheme) and not any(c in scheme for c in "@:") else ""
        raise ConfigError(f"{name}: unknown scheme {shown!r} — use {example} or a Maildir folder's path")
    if _CONTROL.search(value) or " " in value:
        raise ConfigError(f"{name}: contains a space or line break — write it on one line, %-encoded")
    authority, _, folder = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    user, _, password = userinfo.partition(":")
    if "#" in rest or "?" in rest or "@" in userinfo + folder or not (at and user and password):
        raise ConfigError(f"{name}: write the mailbox's user name and password as in {example} — {encode}")
    host, port_text = hostport, ""
    if ":" in hostport and not hostport.endswith("]"):
        host, _, port_text = hostport.rpartition(":")
    host = host.removeprefix("[").removesuffix("]").lower()
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ConfigError(f"{name}: the port is not a number from 1 to 65535 — e.g. {example}")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
        if not _HOSTNAME.fullmatch(host):
            raise ConfigError(f"{name}: the server name is not a host name or IP address; {encode}") from None
    tls = scheme.lower() == "imaps"
    if not tls and not loopback:
        raise ConfigError(
            f"{name}: the password would be sent unencrypted to {host} — use imaps://, or imap:// only "
            "to a server on this machine (127.0.0.1)"
        )
    return BounceMailbox(
        None, tls, host, int(port_text or IMAP_PORTS[scheme.lower()]), unquote(user), unquote(password),
        unquote(folder.rstrip("/")) or "INBOX",
    )  # fmt: skip


def _bounce_address(env: Mapping[str, str]) -> str:
    """NEWSLETTER_BOUNCE_ADDRESS: a bare address whose local part leaves room for ``+TOKEN`` (64 at most)."""
    name = "NEWSLETTER_BOUNCE_ADDRESS"
    value = _plain_address(name, _one_line(env, name), "bounces@example.org")
    local = value.rpartition("@")[0]
    if value and (parseaddr(value)[1] != value or "+" in local or len(local) > 31):
        raise ConfigError(
            f"{name} must be a bare address with no '+' and a local part of 31 characters at most — e.g. "
            f"{name}=bounces@example.org (members' bounces come back to bounces+TOKEN@example.org)"
        )
    return value


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


def _one_line(env: Mapping[str, str], name: str) -> str:
    """A value that goes into mail headers: a line break there is refused, never cut or folded."""
    raw = env.get(name, "")
    if _CONTROL.search(raw.strip()) or "=?" in raw:
        raise ConfigError(
            f"{name} has a line break or an encoded word in it — write it on one line, as plain text"
        )
    return raw.strip()


def _plain_address(name: str, value: str, example: str) -> str:
    """NEWSLETTER_FROM / NEWSLETTER_REPLY_TO: the address goes into headers and mailto: links as it is."""
    if not value:
        return value
    address = parseaddr(value)[1]
    ok = bool(address) and address.isascii()
    if ok:
        from email_validator import EmailNotValidError, validate_email  # only when the setting is used

        try:
            ok = validate_email(address, check_deliverability=False).normalized == address
        except EmailNotValidError:
            ok = False
    if not ok:
        raise ConfigError(
            f"{name} is not a valid plain address — write it as {name}={example} (no accented letters)"
        )
    return value


def read_dkim_key(path: Path | None) -> bytes | None:
    if path is None:
        return None
    where = f"NEWSLETTER_DKIM_KEY ({path})"
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{where}: file not found — fix the path (relative to the group's folder) or create one with "
            "`openssl genrsa -out dkim.pem 2048` (publish `newsletter check`'s TXT record)"
        ) from None
    except OSError as err:
        raise ConfigError(f"{where}: cannot be read ({err.strerror}) — check its permissions") from None
    # dkimpy's PEM reader wants LF line ends; a key saved on Windows has CRLF.
    return pem.replace(b"\r\n", b"\n").strip() + b"\n"


def resolve(home: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings for the group folder ``home``; ``environ`` wins over the folder's `.env`."""
    home = home_folder(home, environ)
    if not home.is_dir():
        raise ConfigError(
            f"{home}: no such folder — pass --dir PATH or set NEWSLETTER_HOME to the group's folder"
        )
    env = merged_env(home, environ)

    def path(name: str, default: str) -> Path:
        return path_setting(env, home, name, default)

    url = env.get("SMTP_URL", "").strip()
    smtp = parse_smtp_url(url) if url else None
    public = env.get("NEWSLETTER_PUBLIC_URL", "").strip().rstrip("/")
    if public and not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", public):
        raise ConfigError("NEWSLETTER_PUBLIC_URL must be a web address — e.g. https://news.example.org")
    rate = parse_rate_limit(env.get("SMTP_RATE_LIMIT", "").strip())
    secret = env.get("NEWSLETTER_SECRET", "").strip()
    if secret and len(secret) < 16:
        raise ConfigError(
            "NEWSLETTER_SECRET is too short — use at least 16 random characters, e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    state_path = path("NEWSLETTER_STATE", STATE_DEFAULT)
    connections = int(_positive(env, "SMTP_CONNECTIONS", 4, integer=True))
    dkim_path = path("NEWSLETTER_DKIM_KEY", "") if env.get("NEWSLETTER_DKIM_KEY", "").strip() else None
    sender = _plain_address(
        "NEWSLETTER_FROM", _one_line(env, "NEWSLETTER_FROM"), "Group name <news@example.org>"
    )
    reply_to = _plain_address(
        "NEWSLETTER_REPLY_TO", _one_line(env, "NEWSLETTER_REPLY_TO"), "margaret@example.org"
    )
    return Settings(
        home=home,
        smtp=smtp,
        state_path=state_path,
        outbox=path("NEWSLETTER_OUTBOX", "outbox"),
        sender=sender,
        reply_to=reply_to,
        secret=secret.encode() if secret else load_or_create_secret(state_path.parent / "secret"),
        public_url=public,
        connections=connections if smtp else 1,  # the outbox is one folder: one writer
        rate=rate,
        timeout=_positive(env, "SMTP_TIMEOUT", 30.0, integer=False),
        dkim_key=read_dkim_key(dkim_path),
        dkim_key_path=dkim_path,
        dkim_selector=env.get("NEWSLETTER_DKIM_SELECTOR", "").strip() or "newsletter",
        bounce_address=_bounce_address(env),
        bounce_mailbox=parse_bounce_mailbox(box, home) if (box := env.get(BOX, "").strip()) else None,
    )
