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
    from newsletter.checked import Checked
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
    known_columns: tuple[str, ...] | None = None  # the list's header, when `check` kept it

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
        if self.known_columns is not None:
            return self.known_columns
        from newsletter.inputs.members import read_columns

        return tuple(read_columns(self.subscribers_path))


def load_project(
    settings: Settings, *, check_subscribers: bool = True, check_articles: bool = True, reuse: bool = False
) -> Project:
    """Read schedule, articles and (optionally) the whole list; report every problem at once.

    ``check_articles=False`` (a tick with maybe nothing to do) defers the articles to first use;
    ``reuse`` (`check` alone): what an earlier `check` found in the same bytes is taken as found.
    """
    kept = None
    if reuse:
        from newsletter.checked import Checked  # with the render cache: only `check` loads it

        kept = Checked(settings.state_dir)
    problems: list[Problem] = []
    warnings: list[Problem] = []
    members_count: int | None = None
    columns: tuple[str, ...] | None = None
    home = settings.home
    schedule_path = home / "schedule.yaml"
    schedule: Schedule | None = None
    refs: list[tuple[str, int | None]] = []
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
        schedule, refs = _schedule(schedule_path, problems, kept)
    articles: dict[str, Article] = {}
    refs = refs if check_articles else []
    for slug, line in refs:
        if slug not in articles:
            _article(home / "content", slug, line, articles, problems, kept)
    if check_subscribers:
        if not (home / "subscribers.csv").is_file():
            problems.append(
                Problem("subscribers.csv", None, "file not found", "create it with a header row: email,name")
            )
        else:
            members_count, columns = _members(home / "subscribers.csv", problems, warnings, kept)
    if problems or schedule is None:
        raise DataError(problems)
    settings = settings.for_group(sender=schedule.group.sender, reply_to=schedule.group.reply_to)
    signer = signer_for(settings)
    return Project(settings, schedule, articles, members_count, signer, tuple(warnings), columns)


def _schedule(
    path: Path, problems: list[Problem], kept: Checked | None
) -> tuple[Schedule | None, list[tuple[str, int | None]]]:
    """The schedule (None, its problems added) and the articles it names, each with its line."""
    before = kept.key_of_schedule(path) if kept else None  # the file's bytes, read once to look up
    found = kept.schedule(before) if kept else None
    if found is not None:
        return found
    from newsletter.inputs.schedule import article_refs, load_schedule

    schedule = None
    try:
        schedule = load_schedule(path)
    except DataError as err:
        problems.extend(err.problems)
    try:  # articles are checked even when the schedule has mistakes: all problems at once
        refs = article_refs(path)
    except DataError:
        refs = []
    if kept and schedule is not None and before is not None and kept.key_of_schedule(path) == before:
        kept.keep_schedule(before, schedule, refs)
    return schedule, refs


def _article(
    content: Path,
    slug: str,
    line: int | None,
    articles: dict[str, Article],
    problems: list[Problem],
    kept: Checked | None,
) -> None:
    """The article ``slug`` (named at ``line`` of schedule.yaml) added, or its problems."""
    before = kept.key_of_article(content, slug) if kept else None
    found = kept.article(before) if kept else None
    if found is not None:
        articles[slug] = found
        return
    from newsletter.inputs.articles import load_article

    try:
        articles[slug] = load_article(content, slug, ref_path="schedule.yaml", ref_line=line)
    except DataError as err:
        problems.extend(p for p in err.problems if p not in problems)
        return
    if kept and before is not None and kept.key_of_article(content, slug) == before:
        kept.keep_article(before, articles[slug])


def _members(
    path: Path, problems: list[Problem], warnings: list[Problem], kept: Checked | None
) -> tuple[int | None, tuple[str, ...] | None]:
    """How many members the list has (its problems and warnings added) and, when `check` keeps
    its answers, its columns.  The reading a send does, in one pass over the list: a row problem
    is a problem, a merged duplicate or a cell that looks like a formula a warning."""
    before = kept.key_of_members(path) if kept else None  # the list's bytes, read once to look up
    found = kept.members(before) if kept else None
    if found is not None:
        count, more_problems, more_warnings, columns = found
        problems.extend(more_problems)
        warnings.extend(more_warnings)
        return count, columns
    from newsletter.inputs.members import read_columns
    from newsletter.inputs.sending_list import read_for_sending

    try:
        rows_found, rows = read_for_sending(path, formulas=True)
        count = sum(1 for _ in rows_found)
    except DataError as err:
        problems.extend(err.problems)
        return None, None
    found_warnings = [*rows.warnings, *rows.formulas]
    problems.extend(rows.problems)
    warnings.extend(found_warnings)
    if kept is None or before is None:
        return count, None
    columns = tuple(read_columns(path))
    if kept.key_of_members(path) == before:
        kept.keep_members(before, count, list(rows.problems), found_warnings, columns)
    return count, columns


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
