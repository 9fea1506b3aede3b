"""What one message in the bounce mailbox is, and which of our messages it is about.

Pure: bytes in, a ``Verdict`` out.  flufl.bounce (Mailman's detectors) finds the failures, in RFC 3464
delivery reports and in the formats seen in the wild; the report's own fields (Action, Status,
Diagnostic-Code) or its text say how bad and why.  RFC 5965 feedback reports are complaints.
Autoreplies are told apart before any heuristic runs: listmonk counted them as bounces and blocked
real members (#1334).  The member is found later, by the VERP token or by our Message-ID quoted
anywhere in the report (an attached original, its headers only, a quote in the text: listmonk #492).
"""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime

from newsletter.state.bounces import enhanced_status, kind_of, reason_of

# flufl.bounce logs every detector it runs at INFO (the daemon's level) and logs a failing detector's
# traceback, which may quote the report; a detector failing is reported here, without the report.
logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)

#: Headers where an MTA records the envelope recipient: the VERP address the report came back to.
RECIPIENT_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "X-Delivered-To", "To")
#: Our Message-IDs: <8 base32>.<24 base32>@domain (see ``newsletter.tokens.message_id``).
OUR_MESSAGE_ID = re.compile(r"<[a-z2-7]{8}\.[a-z2-7]{24}@[^<>\s\"]{1,253}>")
_AUTO_SUBJECT = re.compile(
    r"^\s*(out of (the )?office|automatic reply|auto(matic)?[- ]?(reply|response|antwort|réponse)|auto:|"
    r"autoreply|abwesenheit|r[ée]ponse automatique|away from (my|the) (desk|office)|on vacation|"
    r"vacation (reply|message)|i am away|i'm away)",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"mailer[- ]daemon|postmaster|mail delivery|mail administrator|mailer@", re.IGNORECASE)
_ORIGINAL_FOLLOWS = re.compile(
    r"^\s*-{2,}.*(original message|returned (message|mail)|message follows|below this line)", re.I | re.M
)
#: Feedback types (RFC 5965) that mean a person marked our mail as spam.
COMPLAINT_TYPES = frozenset({"abuse"})


@dataclass(frozen=True)
class Verdict:
    kind: str  # hard | soft | delayed | delivered | refused | complaint | autoreply | unrecognised
    report_id: str  # the report's Message-ID, or a hash of its bytes when it has none
    reason: str = ""  # plain words, never text quoted from the report (it holds addresses)
    tokens: tuple[str, ...] = ()  # VERP tokens found, the envelope recipient's first
    message_ids: tuple[str, ...] = ()  # Message-IDs of ours the report quotes
    date: dt.datetime | None = None  # the report's Date, when it has a readable one


def classify(raw: bytes, *, bounce_local: str = "") -> Verdict:
    """What ``raw`` is; ``bounce_local`` is NEWSLETTER_BOUNCE_ADDRESS's local part ("" if unset)."""
    msg = email.message_from_bytes(raw)
    report_id = _report_id(msg, raw)
    try:
        kind, reason = _kind(msg)
    except Exception:  # a detector choking on a malformed message: a person looks at it
        kind, reason = "unrecognised", ""
    own = str(msg.get("Message-ID", "")).strip()
    try:
        tokens = tuple(dict.fromkeys(_tokens(msg, bounce_local)))
        ids = tuple(m for m in dict.fromkeys(_message_ids(msg)) if m != own)
    except Exception:  # one malformed message must not stop every later run: a person looks at it
        return Verdict("unrecognised", report_id)
    return Verdict(kind, report_id, reason, tokens=tokens, message_ids=ids, date=_date(msg))


def _kind(msg: Message) -> tuple[str, str]:
    if msg.get_content_type() == "multipart/report":
        report_type = str(msg.get_param("report-type", "", header="content-type")).lower()
        if report_type == "feedback-report":
            return ("complaint", "") if _feedback_type(msg) in COMPLAINT_TYPES else ("unrecognised", "")
    is_dsn = any(p.get_content_type() == "message/delivery-status" for p in msg.walk())
    if not is_dsn and _autoreply(msg):
        return "autoreply", ""
    from flufl.bounce import all_failures

    temporary, permanent = all_failures(msg)
    status, text, action = _dsn_fields(msg) if is_dsn else ("", "", "")
    text = text or _notification_text(msg)
    status = status or enhanced_status(text)
    if permanent or action in ("failed", "error"):
        kind = kind_of(status, text, permanent=True)
        return kind, reason_of(status, text)
    if temporary or action == "delayed":
        return "delayed", reason_of(status, text)
    if action in ("delivered", "relayed", "expanded"):
        return "delivered", ""
    return "unrecognised", ""


def _autoreply(msg: Message) -> bool:
    """An out-of-office or other automatic answer (RFC 3834 and what mail programs really send)."""
    if any(h in msg for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return True
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    if _AUTO_SUBJECT.match(_header_text(msg.get("Subject", ""))):
        return True
    # Auto-Submitted: auto-replied is on autoreplies, but some MTAs put it on their bounces too: from
    # a mailer daemon it is a bounce (flufl.bounce decides), from anyone else an autoreply.
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    return auto.startswith("auto-replied") and not _DAEMON.search(_header_text(msg.get("From", "")))


def _dsn_fields(msg: Message) -> tuple[str, str, str]:
    """(status, diagnostic, action) of the first recipient that failed (else the first delayed, else
    the first at all) in the report's message/delivery-status parts."""
    blocks: list[Message] = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status" and part.is_multipart():
            payload = part.get_payload()
            blocks.extend(b for b in payload if isinstance(b, Message) and "Action" in b)
    rank = {"failed": 0, "error": 0, "delayed": 1}
    blocks.sort(key=lambda b: rank.get(_action(b), 2))
    if not blocks:
        return "", "", ""
    first = blocks[0]
    diagnostic = _header_text(first.get("Diagnostic-Code", "")).partition(";")[2].strip()
    status = str(first.get("Status", "")).strip()
    found = enhanced_status(status) or enhanced_status(diagnostic)
    return found, diagnostic, _action(first)


def _action(block: Message) -> str:
    return str(block.get("Action", "")).strip().lower().split(" ")[0].rstrip(";")


def _feedback_type(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            fields = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(fields, Message):
                return str(fields.get("Feedback-Type", "")).strip().lower()
            found = re.search(r"^Feedback-Type:\s*(\S+)", str(payload), re.I | re.M)
            return found.group(1).lower() if found else ""
    return ""


def _notification_text(msg: Message) -> str:
    """The report's own words: its text parts, without any attached original, cut where a quoted
    original begins (words in the original must not decide anything)."""
    text = "\n".join(_own_texts(msg))
    cut = _ORIGINAL_FOLLOWS.search(text)
    return text[: cut.start()] if cut else text


def _own_texts(part: Message) -> Iterator[str]:
    if part.is_multipart():
        for sub in part.get_payload():
            if not isinstance(sub, Message):
                continue
            if sub.get_content_maintype() != "message" and sub.get_content_type() != "text/rfc822-headers":
                yield from _own_texts(sub)
    elif part.get_content_maintype() == "text":
        yield _decoded(part)


def _decoded(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(part.get_payload())
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


def _all_text(msg: Message) -> Iterator[str]:
    """Every header and text of the report and of anything attached to it, in order."""
    for part in msg.walk():
        yield "\n".join(f"{name}: {_header_text(value)}" for name, value in part.items())
        if not part.is_multipart():
            yield _decoded(part)


def _tokens(msg: Message, bounce_local: str) -> Iterator[str]:
    local = re.escape(bounce_local) if bounce_local else r"[A-Za-z0-9._=-]{1,64}"
    pattern = re.compile(rf"(?<![\w.+=-]){local}\+([A-Za-z2-7]{{32}})@", re.IGNORECASE)
    for name in RECIPIENT_HEADERS:
        for value in msg.get_all(name, []):
            yield from (t.lower() for t in pattern.findall(_header_text(value)))
    for text in _all_text(msg):
        yield from (t.lower() for t in pattern.findall(text))


def _message_ids(msg: Message) -> Iterator[str]:
    for text in _all_text(msg):
        yield from OUR_MESSAGE_ID.findall(text)


def _report_id(msg: Message, raw: bytes) -> str:
    mid = str(msg.get("Message-ID", "")).strip()
    if re.fullmatch(r"<[^<>\s]{1,250}>", mid):
        return f"mid:{mid}"
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"  # the same bytes read again: the same key


def _date(msg: Message) -> dt.datetime | None:
    try:
        moment = parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _header_text(value: object) -> str:
    """A header as text whatever the parser made of it (str, or a Header for undecodable bytes)."""
    try:
        return str(value)
    except (UnicodeError, LookupError):
        return ""
