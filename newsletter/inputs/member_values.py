"""One member's values, checked alike wherever they come from: a CSV row, `subscribers add`, the sign-up form.

Membership is health information, so no message built here ever repeats an address: it says what is
wrong, and the caller adds the file and line.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache

from email_validator import EmailNotValidError, ValidatedEmail, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT

from newsletter.errors import InvalidValue
from newsletter.inputs.header_text import control_character, header_problem
from newsletter.model import Subscriber

#: What a spreadsheet takes for the start of a formula (OWASP "CSV injection"); a real address
#: never starts with one, while an attack (=HYPERLINK(…)@x.org is a valid address) does.
FORMULA_SIGNS = ("=", "+", "-", "@")


def validate_address(text: str) -> str:
    """Return the normalised address, or raise InvalidValue saying what is wrong (not what it is)."""
    address = text.strip()
    if not address:
        raise InvalidValue("the email cell is empty", "fill in the address or delete the row")
    # Checked before email_validator so the message is plain, and because a line break in an
    # address is a header-injection attempt rather than a typo.
    if found := control_character(address):
        raise InvalidValue(f"the address contains {found}", "type the address again on one line")
    if address.startswith(FORMULA_SIGNS):
        message = f"the address starts with '{address[0]}', which a spreadsheet runs as a formula"
        raise InvalidValue(
            message, "fix the email cell on that row: an address starts with a letter or digit"
        )
    if (usual := _usual_address(address)) is not None:
        return usual
    try:
        result = _validate(address)
    except EmailNotValidError as err:
        reason = _scrub(str(err), address)
        raise InvalidValue(f"the address is not valid ({reason})", _address_hint(address)) from None
    return str(result.ascii_email or result.normalized)


def _validate(address: str) -> ValidatedEmail:
    # SMTPUTF8 is not assumed of the relay: a non-ASCII domain is kept in its ASCII (xn--) form, and
    # a non-ASCII name before the @ is refused with a clear message.
    return validate_email(address, check_deliverability=False, allow_smtputf8=False)


# The usual address (plain ASCII, no quotes, no IDNA) checked in a few microseconds instead of some
# sixty, which a list of a million members feels: the part before the @ by email_validator's own
# dot-atom rule, the domain by email_validator itself, once per domain.  The result is the one
# email_validator gives (tests/test_bad_input.py compares the two); anything else, and every address
# it would refuse, goes through email_validator whole, for its exact message.
_LDH_DOMAIN = re.compile(r"[A-Za-z0-9.-]+")
_MAX_LENGTH = 254  # email_validator's EMAIL_MAX_LENGTH


def _usual_address(address: str) -> str | None:
    local, at, domain = address.rpartition("@")
    if not at or len(address) > _MAX_LENGTH or not DOT_ATOM_TEXT.match(local):
        return None
    if not _LDH_DOMAIN.fullmatch(domain) or "xn--" in domain.lower():
        return None
    ascii_domain = _domain(domain)
    if ascii_domain is None:
        return None
    if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:  # RFC 2142: postmaster, abuse, info …
        local = local.lower()
    usual = f"{local}@{ascii_domain}"
    return usual if len(usual) <= _MAX_LENGTH else None


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str | None:
    """The domain as email_validator normalises it, or None if it refuses it (in any address)."""
    try:
        found = _validate(f"a@{domain}").ascii_domain
    except EmailNotValidError:
        return None
    return str(found) if found and found.isascii() else None


#: What starts a formula in Excel or Sheets: the program never writes a cell starting so (issue 12).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_NEUTRALISED = re.compile("'+[" + re.escape("".join(FORMULA_START)) + "]")


def unneutralise(cell: str) -> str:
    """Undo ``neutralise``: one leading ' off a cell where quotes stand before a formula character."""
    return cell[1:] if _NEUTRALISED.match(cell) else cell


def as_written(member: Subscriber) -> Subscriber:
    """The member as a mail shows them: a cell the program stored as ``'=…`` (so that a spreadsheet
    shows it as text, not a formula) reads as the text itself."""
    if not any(v.startswith("'") for v in (member.name, *member.fields.values())):
        return member
    fields = {k: unneutralise(v) for k, v in member.fields.items()}
    return replace(member, name=unneutralise(member.name), fields=fields)


def validate_name(text: str) -> str:
    """Return the name with surrounding spaces removed, or raise InvalidValue if it could forge headers."""
    name = text.strip()
    if found := header_problem(name):
        raise InvalidValue(f"the name contains {found}", "write the name on one line, as plain text")
    return name


def _scrub(reason: str, address: str) -> str:
    """email_validator's reason, minus any piece of the address it quotes (IDNA errors do)."""
    reason = re.sub(r"\s*\(.*\)", "", reason).strip().rstrip(".")
    local, _, domain = address.rpartition("@")
    pieces = {address, local, domain, *re.split(r"[.@]", address)}
    for piece in sorted((p for p in pieces if len(p) >= 3), key=len, reverse=True):
        reason = re.sub(rf"(?<!\w){re.escape(piece)}(?!\w)", "…", reason, flags=re.IGNORECASE)
    if reason == "An email address must have an @-sign":
        return "missing '@'"
    return reason[:1].lower() + reason[1:]


def _address_hint(address: str) -> str:
    if "<" in address or ">" in address:
        return "put only the address in the email cell and the name in the name column"
    if any(sep in address for sep in (",", ";", " ")) and address.count("@") > 1:
        return "put one address per row"
    return "fix the email cell on that row"
