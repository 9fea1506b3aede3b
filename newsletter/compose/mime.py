"""MIME assembly: everything shared by a mailing is encoded once, each member's message is filled in.

The bytes are put together here rather than with ``email.message.EmailMessage`` because building
and serialising one of those per member costs milliseconds; the result is standard MIME that the
tests parse back with the ``email`` package.  Bodies are quoted-printable encoded line by line, so a
line without member values is encoded once per mailing and only the few lines holding a member value
are encoded per member — and the output is the same as encoding the member's whole body.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from email.header import Header, decode_header, make_header
from email.utils import format_datetime, formataddr, parseaddr
from urllib.parse import quote

from newsletter.compose.templates import Body, MemberValues, RenderedMailing
from newsletter.errors import DeliveryError
from newsletter.links import NO, YES, preferences_token, preferences_url, rsvp_token, rsvp_url
from newsletter.model import Subscriber
from newsletter.state.members import token_hash
from newsletter.tokens import message_id, unsubscribe_token, verp_token

CRLF = b"\r\n"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Envelope:
    """One message ready for the transport: envelope sender, the one recipient, the bytes."""

    sender: str
    recipient: str
    data: bytes
    message_id: str
    key: str  # the member's lower-cased address: the ledger's key
    crlf: bool = False  # built here: every line ends in CRLF (the SMTP transport can skip checking)
    token_hash: str = ""  # SHA-256 (hex) of the member's unsubscribe token, for the ledger; "" if none
    row: int | None = None  # the member's line in subscribers.csv, for messages that must not name them


def check_header_value(name: str, value: str) -> str:
    """Refuse a header value that could start a new header, even hidden in an RFC 2047 encoded word.

    Python 3.11.7 still has CVE-2024-6923 (the email package does not stop newlines in headers);
    this check does not rely on it.
    """
    if "=?" not in value:  # no encoded word: the value is what a mail program shows
        decoded = value
    else:
        try:
            decoded = str(make_header(decode_header(value)))
        except (ValueError, LookupError, UnicodeDecodeError, binascii.Error):
            decoded = value
    if _CONTROL.search(value) or _CONTROL.search(decoded):
        raise DeliveryError(
            f"refused to build a message: the {name} header would contain a line break "
            "or control character — check the names in subscribers.csv and schedule.yaml"
        )
    return value


def encode_header(name: str, value: str) -> bytes:
    check_header_value(name, value)
    if value.isascii() and len(name) + len(value) < 76:
        return f"{name}: {value}".encode("ascii") + CRLF
    if value.isascii() and "=?" not in value and ", <" in value:
        # A list of <URI>s (List-Unsubscribe), per member: fold between them, no Header() machinery.
        return f"{name}: {value.replace(', <', f',{chr(13)}{chr(10)} <')}".encode("ascii") + CRLF
    folded = Header(value, "utf-8" if not value.isascii() else "us-ascii", header_name=name)
    return f"{name}: {folded.encode(linesep=chr(13) + chr(10))}".encode("ascii") + CRLF


def address_header(name: str, display: str, address: str) -> bytes:
    check_header_value(name, display)
    check_header_value(name, address)
    return f"{name}: {formataddr((display, address), charset='utf-8')}".encode() + CRLF


def _qp_line(line: str) -> bytes:
    """One text line, quoted-printable, soft-wrapped at 76 (SMTP dot-stuffing is aiosmtplib's)."""
    encoded = binascii.b2a_qp(line.encode("utf-8"), quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\n", CRLF)


@dataclass(frozen=True)
class _EncodedBody:
    chunks: tuple[bytes | tuple[int, tuple[object, ...]], ...]  # bytes, or (line no., segments) to fill
    body: Body

    @classmethod
    def of(cls, body: Body) -> _EncodedBody:
        chunks: list[bytes | tuple[int, tuple[object, ...]]] = []
        pending: list[bytes] = []
        for number, line in enumerate(body.lines):
            if isinstance(line, str):
                pending.append(_qp_line(line))
                continue
            if pending:
                chunks.append(CRLF.join(pending))
                pending = []
            chunks.append((number, line))
        if pending:
            chunks.append(CRLF.join(pending))
        return cls(tuple(chunks), body)

    def encode(self, values: tuple[str, ...]) -> bytes:
        return CRLF.join(
            chunk if isinstance(chunk, bytes) else _qp_line(self.body.fill(chunk[1], values))  # type: ignore[arg-type]
            for chunk in self.chunks
        )


@dataclass(frozen=True)
class Neutral:
    """Discreet mode's words for one mailing: the From's display name, the Subject, and the
    invitation with the neutral calendar title (None: the mailing has no invitation)."""

    sender: str
    subject: str
    ics: bytes | None
    preheader: str = ""  # the line under the subject in a list of mails or on a lock screen


_PART = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'


@dataclass(frozen=True)
class _Frame:
    """The MIME framing around the bodies: before the text, between text and HTML, after the last."""

    head: bytes  # MIME-Version and the top Content-Type
    before_text: bytes
    before_html: bytes | None  # None: a plain-text message has no HTML part
    tail: bytes


class MessageFactory:
    """Builds each member's message of one mailing from parts prepared once.

    Four forms, each framed once per mailing: HTML and text together (multipart/alternative) or
    text only, each with the group's From and Subject or with discreet mode's neutral ones.
    """

    def __init__(
        self,
        *,
        rendered: RenderedMailing,
        campaign: str,
        sender: str,
        reply_to: str,
        list_id: str,
        ics: bytes | None,
        secret: bytes,
        public_url: str = "",
        ics_method: str = "PUBLISH",
        tz: dt.tzinfo = dt.UTC,
        bounce_address: str = "",
        neutral: Neutral | None = None,
        meeting_key: str = "",
        ask_rsvp: bool = False,
        coming: Collection[str] = frozenset(),
        coming_note: str = "",
        preheader: str = "",
    ) -> None:
        self.tz = tz  # Date headers in the group's time zone, as the members' own clocks show it
        display, self.envelope_from = parseaddr(sender)
        self.domain = self.envelope_from.rpartition("@")[2] or "localhost"
        self.rendered = rendered
        self.campaign = campaign
        self.secret = secret
        self.reply_to = reply_to or self.envelope_from
        self.public_url = public_url.rstrip("/")
        # Her own links: an RSVP for this meeting (when it asks), and her preferences page.
        self.meeting_key, self.ask_rsvp = meeting_key, ask_rsvp and bool(self.public_url)
        self.coming, self.coming_note = coming, coming_note
        self.preheader = preheader
        # VERP: each member's bounces come back to bounces+TOKEN@domain, so a report names its member
        # even when it quotes nothing of the message; the token is signed and holds no address.
        self._verp = bounce_address.rpartition("@")
        # Other renders of this mailing (a personalised template's variants), encoded when first used.
        self._encoded: dict[int, tuple[RenderedMailing, _EncodedBody, _EncodedBody]] = {}
        self._mixed, self._alt = f"=_nl_{secrets.token_hex(8)}_m", f"=_nl_{secrets.token_hex(8)}_a"
        self._ics, self._ics_method = ics, ics_method
        self._list_id = list_id
        self._neutral = neutral
        # Both heads are built (and their values checked) now: a bad one stops the mailing before
        # anything is sent, not at the first member who chose discreet mode.
        head = self._head_of(display, rendered.subject)
        self._heads = {False: head, True: self._head_of(neutral.sender, neutral.subject) if neutral else head}
        self._frames: dict[tuple[bool, bool], _Frame] = {}

    @functools.cached_property
    def _text(self) -> _EncodedBody:
        """The shared render's text, encoded when the first member's message is built."""
        return _EncodedBody.of(self.rendered.text)

    @functools.cached_property
    def _html(self) -> _EncodedBody:
        return _EncodedBody.of(self.rendered.html)

    def _head_of(self, display: str, subject: str) -> bytes:
        return b"".join(
            (
                address_header("From", display, self.envelope_from),
                encode_header("Subject", subject),
                address_header("Reply-To", "", self.reply_to) if self.reply_to != self.envelope_from else b"",
                encode_header("List-Id", self._list_id),
            )
        )

    def _attachment(self, discreet: bool) -> str:
        ics = self._neutral.ics if discreet and self._neutral is not None else self._ics
        if not ics:
            return ""
        encoded = base64.encodebytes(ics).replace(b"\n", CRLF)
        return (
            (
                f'--{self._mixed}\r\nContent-Type: text/calendar; charset="utf-8"; '
                f'method={self._ics_method}; name="meeting.ics"\r\n'
                'Content-Disposition: attachment; filename="meeting.ics"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\n"
            )
            + encoded.decode()
            + f"--{self._mixed}--\r\n"
        )

    def _frame(self, plain: bool, discreet: bool) -> _Frame:
        """The framing of one form (worked out the first time a member needs it)."""
        found = self._frames.get((plain, discreet))
        if found is not None:
            return found
        mixed, alt, ics = self._mixed, self._alt, self._ics is not None

        def top(kind: str, boundary: str) -> bytes:
            return (
                f'MIME-Version: 1.0\r\nContent-Type: {kind}; boundary="{boundary}"\r\n\r\n'
                "This is a message in MIME format.\r\n"
            ).encode()

        if plain and not ics:  # one text/plain part, nothing around it
            frame = _Frame(f"MIME-Version: 1.0\r\n{_PART.format('plain')}".encode(), b"", None, CRLF)
        elif plain:  # the text, then the invitation
            frame = _Frame(
                top("multipart/mixed", mixed),
                f"--{mixed}\r\n{_PART.format('plain')}".encode(),
                None,
                ("\r\n" + self._attachment(discreet)).encode(),
            )
        else:  # text and HTML as alternatives, inside multipart/mixed with the invitation
            inner = f'--{mixed}\r\nContent-Type: multipart/alternative; boundary="{alt}"\r\n\r\n'
            frame = _Frame(
                top("multipart/mixed", mixed) if ics else top("multipart/alternative", alt),
                ((inner if ics else "") + f"--{alt}\r\n" + _PART.format("plain")).encode(),
                (f"\r\n--{alt}\r\n" + _PART.format("html")).encode(),
                (f"\r\n--{alt}--\r\n" + self._attachment(discreet)).encode(),
            )
        self._frames[(plain, discreet)] = frame
        return frame

    def _encoded_bodies(self, rendered: RenderedMailing | None) -> tuple[_EncodedBody, _EncodedBody]:
        if rendered is None or rendered is self.rendered:
            return self._text, self._html
        found = self._encoded.get(id(rendered))
        if found is None:
            found = self._encoded[id(rendered)] = (
                rendered,  # kept, so that its id stays its own
                _EncodedBody.of(rendered.text),
                _EncodedBody.of(rendered.html),
            )
        return found[1], found[2]

    def member_values(self, subscriber: Subscriber, *, discreet: bool = False) -> MemberValues:
        token = unsubscribe_token(self.secret, subscriber.key)
        yes = no = preferences = ""
        if self.public_url:
            preferences = preferences_url(self.public_url, preferences_token(self.secret, subscriber.key))
            if self.ask_rsvp:
                rsvp = rsvp_token(self.secret, self.meeting_key, subscriber.key)
                yes, no = rsvp_url(self.public_url, rsvp, YES), rsvp_url(self.public_url, rsvp, NO)
        return MemberValues(
            greeting=f"Dear {subscriber.name}," if subscriber.name else "Hello,",
            unsubscribe_url=self.unsubscribe_https(token) or self.unsubscribe_mailto(token),
            member={**subscriber.fields, "name": subscriber.name, "email": subscriber.email},
            rsvp_yes_url=yes,
            rsvp_no_url=no,
            preferences_url=preferences,
            rsvp_note=self.coming_note if subscriber.key in self.coming else "",
            preheader=self._neutral.preheader if discreet and self._neutral else self.preheader,
        )

    def unsubscribe_mailto(self, token: str) -> str:
        # Tokens are base64url: quote() would leave them as they are, so only the prefix is quoted.
        return f"mailto:{self.reply_to}?subject={quote('unsubscribe ')}{token}"

    def unsubscribe_https(self, token: str) -> str:
        return f"{self.public_url}/unsubscribe/{token}" if self.public_url else ""

    def build(
        self,
        subscriber: Subscriber,
        *,
        now: dt.datetime,
        bodies: tuple[str, str] | None = None,
        values: MemberValues | None = None,
        plain: bool = False,
        discreet: bool = False,
        rendered: RenderedMailing | None = None,
        slot_values: tuple[str, ...] | None = None,
    ) -> Envelope:
        """The member's message; ``bodies`` (text, html) replaces the filled-in render (slow path);
        ``values`` are the member's values if the caller has worked them out already; ``plain``: text
        only (her preference), no HTML part; ``discreet``: discreet mode's From, Subject and calendar
        title (the bodies are the same); ``rendered``: another render of this mailing to fill in (a
        personalised template's variant, with ``slot_values`` the values of its slots)."""
        values = values or self.member_values(subscriber, discreet=discreet)
        token = unsubscribe_token(self.secret, subscriber.key)
        mid = message_id(self.secret, self.campaign, subscriber.key, self.domain)
        https = self.unsubscribe_https(token)
        unsubscribe = f"<{self.unsubscribe_mailto(token)}>" + (f", <{https}>" if https else "")
        head = [
            self._heads[discreet],
            address_header("To", subscriber.name, subscriber.email),
            f"Date: {format_datetime(now.astimezone(self.tz))}\r\nMessage-ID: {mid}\r\n".encode(),
            encode_header("List-Unsubscribe", unsubscribe),
        ]
        if https:
            head.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        frame = self._frame(plain, discreet)
        if bodies is None:
            text_body, html_body = self._encoded_bodies(rendered)
            vals = slot_values if slot_values is not None else (rendered or self.rendered).values(values)
            text = text_body.encode(vals)
            html = html_body.encode(vals) if frame.before_html is not None else b""
        else:
            text = CRLF.join(_qp_line(line) for line in bodies[0].replace("\r\n", "\n").split("\n"))
            html = CRLF.join(_qp_line(line) for line in bodies[1].replace("\r\n", "\n").split("\n"))
        parts = [*head, frame.head, frame.before_text, text]
        if frame.before_html is not None:
            parts += [frame.before_html, html]
        data = b"".join((*parts, frame.tail))
        local, at, domain = self._verp
        return Envelope(
            f"{local}+{verp_token(self.secret, self.campaign, subscriber.key)}@{domain}"
            if at
            else self.envelope_from,
            subscriber.email,
            data,
            mid,
            subscriber.key,
            crlf=True,
            token_hash=token_hash(token),
            row=subscriber.line,
        )


def small_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    now: dt.datetime,
    tz: dt.tzinfo = dt.UTC,
) -> Envelope:
    """A one-off mail (a notice to organisers, a sign-up confirmation): EmailMessage is fine at this
    volume. Every header value is checked for line breaks first, as for reminders."""
    from email.message import EmailMessage
    from email.utils import make_msgid

    display, address = parseaddr(sender)
    for name, value in (("From", sender), ("To", to), ("Subject", subject)):
        check_header_value(name, value)
    msg = EmailMessage()
    msg["From"] = formataddr((display, address))
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now.astimezone(tz))
    msg["Message-ID"] = make_msgid(domain=address.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    data = msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", CRLF)
    return Envelope(address, to, data, str(msg["Message-ID"]), to.lower(), crlf=True)
