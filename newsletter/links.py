"""The links a reminder carries for one member: her RSVP for one meeting, her preferences page, and the
group's calendar feed.

A token is an HMAC-SHA256 with the group's secret (``Settings.secret``): opaque, no address and no date
in it, and nobody without the secret can make one.  An RSVP token is two MACs: one of the meeting
alone (its first 8 characters, so the server finds the meeting among the few upcoming ones) and one of
the meeting and the member together.  Each purpose has its own MAC, so a preferences token is no RSVP
token and an unsubscribe token is neither.  Checks compare in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "ANSWERS",
    "CALENDAR_PATH",
    "NO",
    "TOKEN_LENGTH",
    "YES",
    "calendar_url",
    "preferences_token",
    "preferences_token_matches",
    "preferences_url",
    "rsvp_for_meeting",
    "rsvp_token",
    "rsvp_token_matches",
    "rsvp_url",
]

TOKEN_LENGTH = 32  # base64url characters
_MEETING_PART = 8  # 48 bits: which meeting (among a handful); the member part's 144 bits do the signing
YES, NO = "yes", "no"
ANSWERS = (YES, NO)  # the last part of an RSVP link: /rsvp/TOKEN/yes
CALENDAR_PATH = "/calendar.ics"


def _mac(secret: bytes, purpose: str, *values: str) -> str:
    message = "\0".join((purpose, *values)).encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _meeting_part(secret: bytes, meeting_key: str) -> str:
    return _mac(secret, "rsvp-meeting", meeting_key)[:_MEETING_PART]


def rsvp_token(secret: bytes, meeting_key: str, address_key: str) -> str:
    """The member's token for answering about one meeting (``Meeting.key``, ``Subscriber.key``)."""
    member = _mac(secret, "rsvp", meeting_key, address_key.lower())[: TOKEN_LENGTH - _MEETING_PART]
    return _meeting_part(secret, meeting_key) + member


def rsvp_for_meeting(secret: bytes, meeting_key: str, token: str) -> bool:
    """Whether ``token`` is about this meeting (cheap: say which meeting before checking whose it is)."""
    return len(token) == TOKEN_LENGTH and hmac.compare_digest(
        _meeting_part(secret, meeting_key), token[:_MEETING_PART]
    )


def rsvp_token_matches(secret: bytes, meeting_key: str, address_key: str, token: str) -> bool:
    return hmac.compare_digest(rsvp_token(secret, meeting_key, address_key), token)


def preferences_token(secret: bytes, address_key: str) -> str:
    """The member's token for her preferences page."""
    return _mac(secret, "preferences", address_key.lower())[:TOKEN_LENGTH]


def preferences_token_matches(secret: bytes, address_key: str, token: str) -> bool:
    return hmac.compare_digest(preferences_token(secret, address_key), token)


def _base(public_url: str) -> str:
    return public_url.rstrip("/")


def rsvp_url(public_url: str, token: str, answer: str) -> str:
    """``https://news.example.org/rsvp/TOKEN/yes`` (or ``/no``): opens a page with one button."""
    if answer not in ANSWERS:
        raise ValueError(f"answer must be one of {ANSWERS}, not {answer!r}")
    return f"{_base(public_url)}/rsvp/{token}/{answer}"


def preferences_url(public_url: str, token: str) -> str:
    return f"{_base(public_url)}/preferences/{token}"


def calendar_url(public_url: str, *, discreet: bool = False) -> str:
    """``webcal://news.example.org/calendar.ics``: a calendar program subscribes to it.

    ``discreet``: the feed with neutral titles (group.discreet), for a member in discreet mode whose
    group does not make it everyone's default.
    """
    parts = urlsplit(_base(public_url))
    path = parts.path + CALENDAR_PATH
    return urlunsplit(("webcal", parts.netloc, path, "discreet=1" if discreet else "", ""))
