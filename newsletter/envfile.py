"""Where a group's settings come from, read cheaply: the names the program knows, the folder's `.env`
and the environment merged, and a path setting made absolute.

Kept apart from ``settings`` (which validates and builds the full object) so that a no-op `tick`
can find the group's state folder without paying for the rest.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path

KNOWN = (
    "SMTP_URL",
    "SMTP_CONNECTIONS",
    "SMTP_RATE_LIMIT",
    "SMTP_TIMEOUT",
    "NEWSLETTER_FROM",
    "NEWSLETTER_REPLY_TO",
    "NEWSLETTER_STATE",
    "NEWSLETTER_OUTBOX",
    "NEWSLETTER_SECRET",
    "NEWSLETTER_PUBLIC_URL",
    "NEWSLETTER_HOME",
    "NEWSLETTER_DKIM_KEY",
    "NEWSLETTER_DKIM_SELECTOR",
    "NEWSLETTER_BOUNCE_ADDRESS",
    "NEWSLETTER_BOUNCE_MAILBOX",
)
STATE_DEFAULT = ".newsletter/state.sqlite3"


def home_folder(home: Path | str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The group's folder: ``--dir``, else NEWSLETTER_HOME, else the current folder (absolute)."""
    environ = os.environ if environ is None else environ
    return Path(home or environ.get("NEWSLETTER_HOME") or ".").resolve()


def read_env_file(path: Path) -> dict[str, str]:
    """`.env` values; a line python-dotenv cannot parse is an error naming the line, not a warning."""
    if not path.is_file():
        return {}
    # python-dotenv loads only when there is a file to read: a tick under cron pays for no more.
    from dotenv.main import DotEnv
    from dotenv.parser import parse_stream

    text = path.read_text(encoding="utf-8-sig")
    line = 1
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            from newsletter.errors import ConfigError

            raise ConfigError(
                f"{path.name}:{line}: cannot read this line — write it as NAME=value "
                "(quote values with spaces or '#')"
            )
        line += binding.original.string.count("\n")
    values = DotEnv(path, encoding="utf-8-sig", interpolate=False).dict()
    return {k: v for k, v in values.items() if v is not None}


def merged_env(home: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The folder's `.env`, with the environment's values of the known names winning over it."""
    environ = os.environ if environ is None else environ
    return {**read_env_file(home / ".env"), **{k: v for k, v in environ.items() if k in KNOWN}}


def path_setting(env: Mapping[str, str], home: Path, name: str, default: str) -> Path:
    """A path setting: ``~`` expanded, relative to the group's folder."""
    value = Path(env.get(name, "").strip() or default).expanduser()
    return value if value.is_absolute() else home / value
