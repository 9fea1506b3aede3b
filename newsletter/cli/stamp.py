"""Under cron a command's output goes to a log file: there each line carries the moment it was written."""

from __future__ import annotations

import datetime as dt
from typing import TextIO


def stamped(line: str, stream: TextIO) -> str:
    """``line`` as written to ``stream``: as it is on a terminal, after the local time elsewhere."""
    if stream.isatty():
        return line
    return f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M:%S %z} {line}"
