"""Where messages go: an SMTP relay through aiosmtplib, or the outbox folder of `.eml` files."""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from newsletter.compose.mime import Envelope
from newsletter.errors import DeliveryError
from newsletter.model import DeliveryStatus
from newsletter.settings import SmtpSettings

_ADDRESS = re.compile(r"[\w.+%'-]+@[\w.-]+")
_SAFE_NAME = re.compile(r"[^\w.@+-]")  # what a file name may keep of an address


def redact(text: str) -> str:
    """Server replies often quote the recipient: keep addresses out of logs and terminal output."""
    return _ADDRESS.sub("<address>", text)


@dataclass(frozen=True)
class Outcome:
    """What became of one message: sent, deferred (4xx), failed (5xx) or ambiguous; ``dropped`` when
    the connection was lost before the message was handed over (deferred, worth another try now)."""

    status: DeliveryStatus
    code: int | None = None
    reply: str = ""
    dropped: bool = False

    @property
    def reconnect(self) -> bool:
        """The connection is unusable after this (dropped, timed out, or the server said 421)."""
        return self.dropped or self.status == DeliveryStatus.AMBIGUOUS or self.code == 421


def classify(code: int, reply: str) -> Outcome:
    # RFC 5321: 4xx are temporary; 552 (storage exceeded) is to be treated as temporary too.
    if 400 <= code < 500 or code == 552:
        return Outcome(DeliveryStatus.DEFERRED, code, reply)
    return Outcome(DeliveryStatus.FAILED, code, reply)


def _lost(stage: str, reply: str) -> Outcome:
    """The connection went away: after DATA the message may or may not have arrived."""
    if stage == "data":
        return Outcome(DeliveryStatus.AMBIGUOUS, None, reply)
    return Outcome(DeliveryStatus.DEFERRED, None, reply, dropped=True)


class Connection(Protocol):
    async def send(self, envelope: Envelope) -> Outcome: ...
    async def close(self) -> None: ...


class Transport(Protocol):
    def describe(self) -> str: ...
    async def connect(self) -> Connection: ...


class Outbox:
    """The embedded default: one `.eml` file per message, written atomically."""

    def __init__(self, folder: Path, campaign: str) -> None:
        self.folder = folder / re.sub(r"[^\w.-]+", "_", campaign)

    def describe(self) -> str:
        return f"the outbox folder {self.folder}"

    async def connect(self) -> Connection:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def path_for(self, envelope: Envelope) -> Path:
        """``0003-linda.harper@example.org.eml``: the member's row in subscribers.csv and address, so an
        organiser sees whose mail is whose (the outbox is on the organisers' own disk); a resend
        overwrites the same file."""
        row = f"{envelope.row:04d}-" if envelope.row else ""
        return self.folder / f"{row}{_SAFE_NAME.sub('_', envelope.recipient)}.eml"

    async def send(self, envelope: Envelope) -> Outcome:
        path = self.path_for(envelope)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(envelope.data)
        os.replace(tmp, path)
        return Outcome(DeliveryStatus.SENT, 250, "written to the outbox")

    async def close(self) -> None:
        return None


class Smtp:
    """An SMTP relay. STARTTLS is required when the URL asks for it; certificates are verified."""

    def __init__(
        self, settings: SmtpSettings, *, timeout: float, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.tls_context = tls_context

    def describe(self) -> str:
        return self.settings.describe()

    async def connect(self) -> Connection:
        import aiosmtplib

        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            validate_certs=True,
            tls_context=self.tls_context,
            timeout=self.timeout,
        )
        try:
            await client.connect()
            if s.username:
                # config refuses credentials on plain SMTP unless the relay is on this machine.
                if s.security == "plain" and not s.is_loopback:
                    raise DeliveryError(
                        "refusing to send the SMTP password unencrypted — use smtp+starttls://"
                    )
                await client.login(s.username, s.password)
        except aiosmtplib.SMTPAuthenticationError as err:
            await _quit(client)
            raise DeliveryError(
                f"{self.describe()} refused the user name or password ({err.code}) — check "
                "the credentials in SMTP_URL"
            ) from err
        except DeliveryError:
            await _quit(client)
            raise
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as err:
            await _quit(client)
            raise DeliveryError(
                f"cannot connect to {self.describe()}: {redact(_reason(err))} — check SMTP_URL, "
                "and that the server is up; run the command again to resume"
            ) from err
        return _SmtpConnection(client)


def _reason(err: BaseException) -> str:
    message = getattr(err, "message", "") or str(err) or type(err).__name__
    code = getattr(err, "code", None)
    return f"{code} {message}" if isinstance(code, int) and code > 0 else message


async def _quit(client: object) -> None:
    try:
        await client.quit()  # type: ignore[attr-defined]
    except Exception:
        close = getattr(client, "close", None)
        if close is not None:
            close()


def wire_data(data: bytes, *, crlf: bool = False) -> bytes | None:
    """The message as DATA carries it, the bytes aiosmtplib's ``data()`` would write (dot-stuffed,
    ending in CRLF.CRLF), or None when its line ends are not all CRLF (``data()`` then normalises
    them). aiosmtplib runs two regular expressions over every byte (about 1.4 ms for 30 KB); on
    CRLF-only bytes a "." opening a line always follows "\\n", so one ``bytes.replace`` does the same."""
    if not crlf:  # not known to be clean: check (three byte counts over the message)
        pairs = data.count(b"\r\n")
        if data.count(b"\n") != pairs or data.count(b"\r") != pairs or not data.endswith(b"\r\n"):
            return None
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\n.", b"\n..") + b".\r\n"


class _SmtpConnection:
    def __init__(self, client: object) -> None:
        self.client = client
        self.stage = "envelope"

    async def _transaction(self, envelope: Envelope) -> tuple[int, str]:
        """MAIL, RCPT, DATA: (code, reply) of the last step reached; ``self.stage`` says which.

        The fast path that pays its way (bench/README.md, "What the fast path buys"): plain ASCII
        envelopes go as raw commands (the addresses were validated when the list was read; aiosmtplib's
        ``mail()``/``rcpt()`` parse each again), and the body as ``wire_data`` builds it. Anything else
        goes through aiosmtplib's own ``mail()``, ``rcpt()`` and ``data()``."""
        import aiosmtplib

        client = self.client
        assert isinstance(client, aiosmtplib.SMTP)
        self.stage = "envelope"
        if envelope.sender.isascii() and envelope.recipient.isascii():
            if client.is_ehlo_or_helo_needed:  # raw commands below: greet first
                await client.ehlo()
            reply = await client.execute_command(b"MAIL", b"FROM:<" + envelope.sender.encode() + b">")
            if reply.code != 250:
                return reply.code, reply.message
            reply = await client.execute_command(b"RCPT", b"TO:<" + envelope.recipient.encode() + b">")
            if reply.code not in (250, 251):
                return reply.code, reply.message
        else:
            await client.mail(envelope.sender)
            await client.rcpt(envelope.recipient)
        self.stage = "data"  # from here on, a lost connection leaves the outcome unknown
        wire = wire_data(envelope.data, crlf=envelope.crlf)
        if wire is None:
            reply = await client.data(envelope.data)
            return reply.code, reply.message
        reply = await client.execute_command(b"DATA")
        if reply.code != 354:
            return reply.code, reply.message
        protocol = client.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        # write() then read_response() with no await between them, as aiosmtplib's own data() does.
        protocol.write(wire)
        reply = await protocol.read_response(timeout=client.timeout)
        return reply.code, reply.message

    async def send(self, envelope: Envelope) -> Outcome:
        import aiosmtplib

        client = self.client
        assert isinstance(client, aiosmtplib.SMTP)
        self.stage = "envelope"
        try:
            code, reply = await self._transaction(envelope)
            if code == 250:
                return Outcome(DeliveryStatus.SENT, code, reply)
            err = aiosmtplib.SMTPResponseException(code, reply)
        except aiosmtplib.SMTPResponseException as exc:
            err = exc
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            # Lost after the message was handed over: it may or may not have been delivered.
            client.close()
            return _lost(self.stage, _reason(exc))
        if err.code < 0:  # aiosmtplib's own code for a connection lost mid-reply
            return _lost(self.stage, err.message)
        outcome = classify(err.code, err.message)
        if err.code != 421:
            try:
                await client.rset()
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                return Outcome(outcome.status, outcome.code, outcome.reply + " (connection lost after)")
        return outcome

    async def close(self) -> None:
        await _quit(self.client)
