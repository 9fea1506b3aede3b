"""A real IMAP server for the tests: Debian's dovecot-imapd on 127.0.0.1, started from a minimal config.

One server per test process (plain IMAP and IMAPS with a trustme certificate, on free ports); each
test gets its own account, so tests never see each other's mail.  A machine without dovecot skips
the tests that need it with one line saying what to install; with NEWSLETTER_REQUIRE_IMAP=1 (as CI
sets it) that is a failure instead, so CI never skips them.
"""

from __future__ import annotations

import grp
import imaplib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
INSTALL = "dovecot is not installed: apt-get install dovecot-imapd"
#: Read once at import: the tests' autouse fixture clears NEWSLETTER_* from the environment.
REQUIRED = os.environ.get("NEWSLETTER_REQUIRE_IMAP", "") not in ("", "0")
#: Special characters a password may hold: each must be %-encoded in the URL and reach the server intact.
PASSWORD = "S3cret#pa/ss@word?"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
listen = 127.0.0.1
protocols = imap
# Loopback tests speak plain IMAP (production uses imaps://, refused in plain to any other host).
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
"""


def require_dovecot() -> str:
    if DOVECOT is None:
        if REQUIRED:
            pytest.fail(INSTALL + " (NEWSLETTER_REQUIRE_IMAP is set)")
        pytest.skip(INSTALL)
    return DOVECOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Account:
    server: Dovecot
    user: str
    password: str

    def url(self, folder: str = "INBOX", *, tls: bool = False) -> str:
        scheme, port = ("imaps", self.server.tls_port) if tls else ("imap", self.server.port)
        userinfo = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"{scheme}://{userinfo}@127.0.0.1:{port}/{folder}"

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.server.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def deliver(self, *messages: bytes, folder: str = "INBOX") -> None:
        """Put messages in a folder as an MTA's delivery would (APPEND, unseen)."""
        client = self.client()
        try:
            for raw in messages:
                typ, data = client.append(folder, None, None, raw)
                assert typ == "OK", data
        finally:
            client.logout()

    def count(self, folder: str) -> int:
        """Messages in ``folder`` (0 when it does not exist)."""
        client = self.client()
        try:
            typ, data = client.select(f'"{folder}"', readonly=True)
            return int(data[0] or 0) if typ == "OK" else 0
        finally:
            client.logout()

    def folders(self) -> dict[str, int]:
        client = self.client()
        try:
            names = [line.decode().rsplit(" ", 1)[-1].strip('"') for line in client.list()[1] if line]
        finally:
            client.logout()
        return {name: self.count(name) for name in names}


class Dovecot:
    """dovecot -F with a config of its own in a fresh folder; stopped (and the folder removed) on exit."""

    def __init__(self) -> None:
        self.binary = require_dovecot()
        self.ca = trustme.CA()
        self.port = self.tls_port = 0
        self._accounts = itertools.count(1)
        self._process: subprocess.Popen[bytes] | None = None
        # Not under pytest's tmp_path: dovecot's unprivileged processes must reach the folder.
        self.root = Path(tempfile.mkdtemp(prefix="newsletter-imapd-"))
        self.root.chmod(0o755)

    def __enter__(self) -> Dovecot:
        for attempt in range(3):  # a free port may be taken in the moment between choosing and binding
            try:
                self._start()
                return self
            except RuntimeError:
                self._stop()
                if attempt == 2:
                    raise
        return self

    def _start(self) -> None:
        self.port, self.tls_port = free_port(), free_port()
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(exist_ok=True)
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "cert.pem"))
        (self.root / "passwd").write_text("")
        (self.root / "passwd").chmod(0o644)
        if os.geteuid() == 0:  # dovecot never runs mail as root: an unprivileged user owns the mail
            mail_user, internal, login = pwd.getpwnam("nobody"), "dovecot", "dovenull"
            shutil.chown(self.root / "mail", mail_user.pw_uid, mail_user.pw_gid)
        else:  # as an ordinary user, every dovecot process runs as that user
            mail_user = pwd.getpwuid(os.geteuid())
            internal = login = mail_user.pw_name
        internal_group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
        (self.root / "dovecot.conf").write_text(
            CONFIG.format(
                root=self.root, port=self.port, tls_port=self.tls_port, uid=mail_user.pw_uid,
                gid=mail_user.pw_gid, internal=internal, internal_group=internal_group, login=login,
            )
        )  # fmt: skip
        self._process = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr.log").open("wb"),
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer on port {self.port}: {self.log()}")

    def log(self) -> str:
        logs = (self.root / "dovecot.log", self.root / "stderr.log")
        return "".join(p.read_text(errors="replace")[-2000:] for p in logs if p.exists())

    def account(self, password: str = PASSWORD) -> Account:
        """A new user with an empty mailbox (passwd-file is read again when it changes)."""
        user = f"bounces{next(self._accounts)}"
        with (self.root / "passwd").open("a") as fh:
            fh.write(f"{user}:{{PLAIN}}{password}\n")
        account = Account(self, user, password)
        # dovecot looks at passwd-file at most once a second: wait until it knows the new user.
        deadline = time.monotonic() + 10
        while True:
            try:
                account.client().logout()
                return account
            except imaplib.IMAP4.error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def trust(self, path: Path) -> Path:
        """The CA that signed the server's certificate, as a bundle for SSL_CERT_FILE."""
        self.ca.cert_pem.write_to_path(str(path))
        return path

    def _stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
        self._process = None

    def __exit__(self, *exc: object) -> None:
        self._stop()
        shutil.rmtree(self.root, ignore_errors=True)
