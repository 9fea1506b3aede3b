"""Signed, opaque per-member values: unsubscribe tokens and Message-IDs never show the address."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

TOKEN_LENGTH = 32  # base64url characters: 192 bits of HMAC-SHA256


def _mac(secret: bytes, purpose: str, value: str) -> bytes:
    return hmac.new(secret, f"{purpose}\0{value}".encode(), hashlib.sha256).digest()


def unsubscribe_token(secret: bytes, address_key: str) -> str:
    """The member's unsubscribe token: an HMAC of the lower-cased address, not the address itself."""
    return base64.urlsafe_b64encode(_mac(secret, "unsubscribe", address_key)).decode()[:TOKEN_LENGTH]


def token_matches(secret: bytes, address_key: str, token: str) -> bool:
    return hmac.compare_digest(unsubscribe_token(secret, address_key), token)


def message_id(secret: bytes, campaign: str, address_key: str, domain: str) -> str:
    """Stable per (campaign, member), so a message resent after a crash keeps its Message-ID."""
    digest = base64.b32encode(_mac(secret, "message-id", f"{campaign}\0{address_key}")[:15]).decode().lower()
    return f"<{_campaign_part(secret, campaign)}.{digest}@{domain}>"


#: A VERP token: the two signed parts of a member's Message-ID, lower-case base32 (8 + 24 characters).
VERP_TOKEN = re.compile(r"[a-z2-7]{32}")


def verp_token(secret: bytes, campaign: str, address_key: str) -> str:
    """The tag of the member's envelope sender for one mailing (``bounces+TOKEN@domain``).

    It is the signed part of the member's Message-ID for that mailing (HMACs of the mailing and of the
    mailing and member), so a bounce finds its delivery with the same indexed lookup as a report that
    quotes the Message-ID, and never shows the address.  Lower-case base32, because mail systems may
    change the case of a local part and some treat "=" or "/" specially.
    """
    mid = message_id(secret, campaign, address_key, "x")
    return mid[1:].partition("@")[0].replace(".", "")


def verp_message_id_prefix(token: str) -> str | None:
    """``<campaignpart.digest@``: how every Message-ID the token stands for begins (its domain is the
    sender's at the time); None when ``token`` does not have a token's shape."""
    token = token.lower()
    if not VERP_TOKEN.fullmatch(token):
        return None
    return f"<{token[:8]}.{token[8:]}@"


@functools.lru_cache(maxsize=64)
def _campaign_part(secret: bytes, campaign: str) -> str:
    return base64.b32encode(_mac(secret, "campaign", campaign)[:5]).decode().lower()


def load_or_create_secret(path: Path) -> bytes:
    """The generated secret kept in the state folder, so a new user needs no `.env`."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32).encode()
    # O_EXCL: two processes starting at once must not end up with two different secrets.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as fh:
        fh.write(value + b"\n")
    return value
