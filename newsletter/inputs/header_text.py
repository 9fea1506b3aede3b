"""Text that ends up in a mail header (a subject, a sender's name): one line, no control characters.

A line break in a header value lets the text start a header of its own (``Bcc:``), so such a value is
refused where the organiser typed it, never folded into a space. Mail programs decode RFC 2047
encoded words (``=?utf-8?q?…?=``), so a line break hidden in one is refused too (Python 3.11.7's email
package does not stop it: CVE-2024-6923).
"""

from __future__ import annotations

import re
import unicodedata
from email.errors import HeaderParseError
from email.header import decode_header, make_header

_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?]*\?=")
_NAMED = {"\r": "a line break (CR)", "\n": "a line break (LF)", "\t": "a tab"}


#: Every character of the categories Cc (controls), Zl and Zp (line and paragraph separators): one
#: search instead of a lookup per character (tests/test_bad_input.py checks it against unicodedata).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_character(text: str) -> str | None:
    """The first line break or control character in ``text``, in words ("a line break (LF)")."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    char = found.group()
    if unicodedata.category(char) in ("Zl", "Zp") or char == "\x85":
        return f"a line break (U+{ord(char):04X})"
    return _NAMED.get(char, f"a control character (U+{ord(char):04X})")


def header_problem(text: str) -> str | None:
    """What in ``text`` would break a mail header, in words, or None when it is safe."""
    found = control_character(text)
    if found or "=?" not in text:
        return found
    try:
        decoded = str(make_header(decode_header(text)))
    except (LookupError, UnicodeError, HeaderParseError, ValueError):
        if _ENCODED_WORD.search(text):
            return "an encoded word (=?…?=) that cannot be decoded"
        return None
    found = control_character(decoded)
    return f"{found} inside an encoded word (=?…?=)" if found else None
