"""Every exception of the package: one root, one class per kind, each also the matching built-in.

The CLI catches only ``NewsletterError`` and exits with its ``exit_code``; anything else is a bug and
shows its traceback.  Each message says where the problem is and how to fix it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from newsletter.model import Report


@dataclass(frozen=True, order=True)
class Problem:
    """One organiser-fixable mistake, located in a file."""

    path: str
    line: int | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        text = f"{where}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text


class NewsletterError(Exception):
    """Root of every error the CLI reports without a traceback (exit 1 unless said otherwise)."""

    exit_code = 1


class ConfigError(NewsletterError, ValueError):
    """A setting in the environment or `.env` is missing or wrong."""


class DataError(NewsletterError, ValueError):
    """One or more problems in the organisers' files; carries all of them at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line or 0, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class TemplateError(DataError):
    """A Jinja2 template does not parse or render."""


class InvalidValue(DataError):
    """One rejected value (for `subscribers add` and the like); the message never repeats the value.

    It is a DataError so callers catch it with the file problems, but it knows no place: use
    ``at(path, line)`` for a Problem that names one.
    """

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__([Problem("", None, message, hint)])
        self.args = (f"{message} — {hint}" if hint else message,)  # no ": " prefix for the empty path

    def __str__(self) -> str:
        return str(self.args[0])

    def at(self, path: str, line: int | None) -> Problem:
        return Problem(path, line, self.message, self.hint)


class FieldError(ValueError):
    """One bad value in schedule.yaml: what is wrong and how to fix it (the caller adds file and line)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class FormError(NewsletterError, ValueError):
    """What to tell the person about one field of a web form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


class UsageError(NewsletterError, ValueError):
    """A command-line argument is wrong."""

    exit_code = 2


class EditBusy(NewsletterError, TimeoutError):
    """Another edit of subscribers.csv holds its lock for too long."""


class Unsubscribed(NewsletterError, PermissionError):
    """The address unsubscribed: adding it back needs its owner's word (``--resubscribe``)."""


class DeliveryError(NewsletterError, ConnectionError):
    """Mail could not be handed over (after the inputs were fine)."""

    exit_code = 3


class DailyCapReached(DeliveryError):
    """The day's sending budget is spent: stop now, the rest goes out on the next day's run."""

    def __init__(self, cap: int, day: dt.date) -> None:
        self.cap = cap
        self.day = day
        self.report: Report | None = None  # what the run sent before it stopped (set by the send loop)
        super().__init__(
            f"the daily limit of {cap} messages (SMTP_RATE_LIMIT) is reached for {day.isoformat()} (UTC); "
            "the members not yet sent stay queued and go out after 00:00 UTC — on the next "
            "`newsletter tick`, or run `newsletter send` again then"
        )


class DeliveryLeft(DeliveryError):
    """A run ended with members deferred, failed or uncertain (exit 3); the message says what to run."""
