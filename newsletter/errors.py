"""One root exception; every message says where the problem is and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


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


class ConfigError(NewsletterError):
    """A setting in the environment or `.env` is missing or wrong."""


class DataError(NewsletterError):
    """One or more problems in the organisers' files; carries all of them at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line or 0, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))


class TemplateError(DataError):
    """A Jinja2 template does not parse or render."""


class DeliveryError(NewsletterError):
    """Mail could not be handed over (after the inputs were fine)."""

    exit_code = 3


class UsageError(NewsletterError):
    """A command-line argument is wrong."""

    exit_code = 2
