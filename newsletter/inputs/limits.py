"""How big an organiser's file may be: reading stays bounded in memory and time whatever is saved.

A schedule or an article is a few kilobytes; a file of megabytes is a wrong file (a pasted export,
a log) or a mistake, and is refused with the cap named before anything is parsed.
"""

from __future__ import annotations

from pathlib import Path

from newsletter.errors import DataError, Problem

MB = 1024 * 1024
SCHEDULE_MAX_BYTES = 5 * MB
ARTICLE_MAX_BYTES = 5 * MB
SUBSCRIBERS_MAX_BYTES = 200 * MB


def too_large(display: str, cap: int, what: str) -> Problem:
    """The problem for a file over ``cap`` bytes; ``what`` says what the file should hold."""
    return Problem(
        display,
        None,
        f"the file is larger than {cap // MB} MB, the most this program reads",
        f"{what}: check that this is the right file, or remove what does not belong in it",
    )


def read_capped(path: Path, display: str, cap: int, what: str) -> bytes:
    """The file's bytes, or DataError when it holds more than ``cap`` (OSError is the caller's).

    It reads at most ``cap + 1`` bytes, so a huge file (or an endless one, like a device) costs no
    more than a file at the cap.
    """
    with path.open("rb") as file:
        data = file.read(cap + 1)
    if len(data) > cap:
        raise DataError([too_large(display, cap, what)])
    return data
