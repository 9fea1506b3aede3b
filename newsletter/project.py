"""The group's folder loaded and checked as a whole: settings completed, schedule, articles, list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.errors import DataError, Problem
from newsletter.model import Article, Schedule, Subscriber
from newsletter.settings import Settings

if TYPE_CHECKING:  # the DKIM and CSV readers load only when they are used
    from newsletter.compose.dkim import DkimSigner


@dataclass(frozen=True)
class Project:
    """The group's folder, read and checked: complete settings, the schedule, the articles met so far."""

    settings: Settings
    schedule: Schedule
    articles: dict[str, Article]
    members_count: int | None = None  # when the list was checked: how many
    signer: DkimSigner | None = None
    # From reading the list: merged duplicate rows, then cells a spreadsheet may run as a formula.
    warnings: tuple[Problem, ...] = ()

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def subscribers_path(self) -> Path:
        return self.home / "subscribers.csv"

    def article_for(self, slug: str | None) -> Article | None:
        slug = slug or self.schedule.article
        if slug and slug not in self.articles:  # loaded on demand when the project was read lightly
            from newsletter.inputs.articles import load_article

            self.articles[slug] = load_article(self.home / "content", slug)
        return self.articles.get(slug) if slug else None

    def members(self) -> Iterator[Subscriber]:
        from newsletter.inputs.members import iter_subscribers

        return iter_subscribers(self.subscribers_path)

    def columns(self) -> tuple[str, ...]:
        """The CSV's columns, which templates may use as ``member.<column>``."""
        from newsletter.inputs.members import read_columns

        return tuple(read_columns(self.subscribers_path))


def load_project(
    settings: Settings, *, check_subscribers: bool = True, check_articles: bool = True
) -> Project:
    """Read schedule, articles and (optionally) the whole list; report every problem at once.

    ``check_articles=False`` (a tick with maybe nothing to do) defers the articles to first use.
    """
    from newsletter.inputs.schedule import article_refs, load_schedule
    from newsletter.inputs.sending_list import read_for_sending

    problems: list[Problem] = []
    warnings: list[Problem] = []
    members_count: int | None = None
    home = settings.home
    schedule_path = home / "schedule.yaml"
    schedule = None
    if not schedule_path.is_file():
        problems.append(
            Problem(
                "schedule.yaml",
                None,
                "file not found in " + str(home),
                "run the command in the group's folder, or pass --dir PATH",
            )
        )
    else:
        try:
            schedule = load_schedule(schedule_path)
        except DataError as err:
            problems.extend(err.problems)
    articles: dict[str, Article] = {}
    try:  # articles are checked even when the schedule has mistakes: all problems at once
        refs = article_refs(schedule_path) if schedule_path.is_file() and check_articles else []
    except DataError:
        refs = []
    if refs:
        from newsletter.inputs.articles import load_article

        for slug, line in refs:
            if slug in articles:
                continue
            try:
                articles[slug] = load_article(home / "content", slug, ref_path="schedule.yaml", ref_line=line)
            except DataError as err:
                problems.extend(p for p in err.problems if p not in problems)
    if check_subscribers:
        if not (home / "subscribers.csv").is_file():
            problems.append(
                Problem("subscribers.csv", None, "file not found", "create it with a header row: email,name")
            )
        else:
            try:
                # The same reading a send does, in one pass over the list whatever its length: a
                # row problem is a problem here (check exits 1), a merged duplicate or a cell that
                # looks like a formula only a warning.
                found, rows = read_for_sending(home / "subscribers.csv", formulas=True)
                members_count = sum(1 for _ in found)
                problems.extend(rows.problems)
                warnings.extend(rows.warnings)
                warnings.extend(rows.formulas)
            except DataError as err:
                problems.extend(err.problems)
    if problems or schedule is None:
        raise DataError(problems)
    settings = settings.for_group(sender=schedule.group.sender, reply_to=schedule.group.reply_to)
    return Project(settings, schedule, articles, members_count, signer_for(settings), tuple(warnings))


def signer_for(settings: Settings) -> DkimSigner | None:
    """The DKIM signer when NEWSLETTER_DKIM_KEY is set, built once; an unusable key is a ConfigError."""
    if settings.dkim_key is None:
        return None
    from newsletter.compose.dkim import DkimSigner  # dkimpy loads only when a key is set

    return DkimSigner(
        settings.dkim_key,
        settings.dkim_selector,
        settings.sender_domain if "@" in settings.sender else "",
        where=f"NEWSLETTER_DKIM_KEY ({settings.dkim_key_path})",
    )
