"""Header injection is impossible, even on a Python with CVE-2024-6923 (3.11.7 here)."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy

import pytest

from newsletter.compose.mime import address_header, check_header_value, encode_header
from newsletter.errors import DeliveryError
from newsletter.model import Subscriber

EVIL = [
    "Eve =?UTF-8?Q?=0A?=Bcc: x@example.com",
    "Eve\r\nBcc: x@example.com",
    "Eve\nBcc: x@example.com",
    "Eve\rBcc: x@example.com",
    "=?utf-8?b?RXZlCkJjYzogeEBleGFtcGxlLmNvbQ==?=",  # "Eve\nBcc: x@example.com" in base64
    "Eve\x00",
]


@pytest.mark.parametrize("name", EVIL)
def test_builder_refuses_line_breaks_even_encoded(name: str) -> None:
    with pytest.raises(DeliveryError):
        check_header_value("To", name)
    with pytest.raises(DeliveryError):
        address_header("To", name, "eve@example.org")
    with pytest.raises(DeliveryError):
        encode_header("Subject", name)


def test_non_ascii_and_specials_are_encoded_not_injected() -> None:
    line = address_header("To", 'Zoë "Z" O\'Brien, Jr.', "zoe@example.org")
    assert line.endswith(b"\r\n") and line.count(b"\r\n") == 1
    msg = message_from_bytes(line + b"\r\n", policy=policy.default)
    assert msg["To"].addresses[0].display_name == 'Zoë "Z" O\'Brien, Jr.'
    long_subject = encode_header("Subject", "Réunion " * 20)
    parsed = message_from_bytes(long_subject + b"\r\n", policy=policy.default)
    assert parsed["Subject"] == "Réunion " * 20
    assert all(len(line) <= 78 for line in long_subject.split(b"\r\n"))


@pytest.mark.parametrize("name", EVIL)
def test_a_whole_message_for_an_evil_name_is_never_built(name: str, group: object) -> None:
    from pathlib import Path

    from newsletter.project import load_project
    from newsletter.send.pipeline import prepare
    from newsletter.settings import resolve
    from newsletter.timing import next_due

    assert isinstance(group, Path)
    now = dt.datetime(2026, 11, 25, 15, tzinfo=dt.UTC)
    project = load_project(resolve(group, environ={}))
    due = next_due(project.schedule, now)
    assert due is not None
    prepared = prepare(project, due, now=now)
    ok = prepared.build(Subscriber(email="ann@example.org", name="Ann"), now=now)
    parsed = message_from_bytes(ok.data, policy=policy.default)
    assert parsed["To"] == "Ann <ann@example.org>" and parsed["Bcc"] is None
    # Even if a bad name got past the CSV checks, the builder stops it.
    with pytest.raises(DeliveryError):
        prepared.build(Subscriber(email="eve@example.org", name=name), now=now)
