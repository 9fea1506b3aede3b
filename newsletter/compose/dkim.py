"""DKIM signatures (dkimpy): the receiving server can check that mail from the group's domain is real.

The key is an RSA private key in PEM form (NEWSLETTER_DKIM_KEY); the public half is published in DNS
as a TXT record at ``<selector>._domainkey.<domain>`` (``dns_record()`` gives its text).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from newsletter.errors import ConfigError, DeliveryError

#: Signed headers. Listing one a message lacks (Cc, or List-Unsubscribe-Post without a public URL) is
#: deliberate: nobody can add it later without breaking the signature (RFC 6376 §5.4). Reply-To is
#: where members' replies (often about their health) go, so it is signed like From.
SIGNED_HEADERS = (
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)
#: Signed once more than they appear ("oversigned", RFC 6376 §8.15): a second copy added in transit
#: — a second Subject or From above the real one — breaks the signature.
OVERSIGNED = ("From", "Reply-To", "Subject", "To", "List-Unsubscribe")
MIN_BITS = 1024  # receivers ignore shorter keys (RFC 8301); 2048 is what to generate
_RSA_OID = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"  # 1.2.840.113549.1.1.1 rsaEncryption
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_NEW_KEY = "create one with `openssl genrsa -out dkim.pem 2048` (publish `newsletter check`'s TXT record)"


class DkimSigner:
    """Checks the key once (ConfigError naming the setting and the fix) and signs each message."""

    def __init__(self, key: bytes, selector: str, domain: str, *, where: str = "NEWSLETTER_DKIM_KEY") -> None:
        self.key, self.selector, self.domain = key, selector, domain.lower()
        if not all(_LABEL.match(part) for part in selector.split(".")):
            raise ConfigError(
                f"NEWSLETTER_DKIM_SELECTOR={selector!r} is not a DNS name — use letters, digits and "
                "hyphens, e.g. newsletter"
            )
        if not domain or not all(_LABEL.match(part) for part in self.domain.split(".")):
            raise ConfigError(
                "DKIM needs the sender's domain — set NEWSLETTER_FROM to an address like news@example.org"
            )
        if b"ENCRYPTED" in self.key:
            raise ConfigError(
                f"{where}: the key is protected by a passphrase, which a mailer cannot type — "
                "remove it with `openssl rsa -in KEY -out dkim.pem`"
            )
        try:
            parsed = parse_pem_private_key(self.key)
        except (UnparsableKeyError, ValueError, IndexError, TypeError) as err:
            raise ConfigError(
                f"{where}: not an RSA private key in PEM form (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA "
                f"PRIVATE KEY-----) — {_NEW_KEY}"
            ) from err
        self.modulus, self.exponent = int(parsed["modulus"]), int(parsed["publicExponent"])
        if self.modulus.bit_length() < MIN_BITS:
            raise ConfigError(
                f"{where}: the key has only {self.modulus.bit_length()} bits, which receivers ignore — "
                f"{_NEW_KEY}"
            )

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_record(self) -> str:
        """The TXT record to publish at ``dns_name``: the public key, derived from the private one."""
        rsa_public_key = _der(SEQUENCE, _der_int(self.modulus) + _der_int(self.exponent))
        algorithm = _der(SEQUENCE, _der(OBJECT_IDENTIFIER, _RSA_OID) + _der(NULL, b""))
        spki = _der(SEQUENCE, algorithm + _der(BIT_STRING, b"\x00" + rsa_public_key))
        return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header in front."""
        try:
            signature = dkim.sign(
                message,
                self.selector.encode(),
                self.domain.encode(),
                self.key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[h.encode() for h in (*SIGNED_HEADERS, *OVERSIGNED)],
            )
        except dkim.DKIMException as err:
            raise DeliveryError(f"could not DKIM-sign a message: {err}") from err
        return bytes(signature) + message


# DER, just enough for an RSA SubjectPublicKeyInfo (dkimpy's asn1_build knows no INTEGER or BIT STRING).
INTEGER, BIT_STRING, NULL, OBJECT_IDENTIFIER, SEQUENCE = 0x02, 0x03, 0x05, 0x06, 0x30


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + content


def _der_int(value: int) -> bytes:
    return _der(INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))  # a leading 0 keeps it positive


def load_signer(path: Path, selector: str, domain: str) -> DkimSigner:
    """The signer for the key file at ``path``, read as NEWSLETTER_DKIM_KEY is."""
    from newsletter.settings import read_dkim_key

    key = read_dkim_key(path)
    assert key is not None
    return DkimSigner(key, selector, domain, where=f"NEWSLETTER_DKIM_KEY ({path})")
