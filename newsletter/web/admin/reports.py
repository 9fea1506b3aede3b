"""Overview, Deliveries and Activity: what `upcoming`, `check` and `status` say, and who did what.

The facts come from ``newsletter.reports``, the functions behind those commands, so the console and
the command line never disagree.  `check` renders every upcoming mail (seconds), so its answer is
kept until one of the group's files changes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.errors import DataError, NewsletterError
from newsletter.reports import answer_lines, check_all, status_lines, upcoming_lines
from newsletter.state import console as records
from newsletter.web.admin.base import Console

RECENT = 5  # mailings on the overview


def _stamp(home: Path) -> tuple[object, ...]:
    """Changes whenever a file `check` reads changes (the folders' newest entry, each file's time)."""
    parts: list[object] = []
    for name in ("schedule.yaml", "subscribers.csv", ".env"):
        try:
            st = (home / name).stat()
            parts.append((name, st.st_ino, st.st_size, st.st_mtime_ns))
        except OSError:
            parts.append((name, None))
    for folder in ("content", "templates"):
        root = home / folder
        if root.is_dir():
            parts.append(max((p.stat().st_mtime_ns for p in root.rglob("*")), default=0))
    return tuple(parts)


class ReportPages(Console):
    _check: tuple[tuple[object, ...], list[str], list[str]] | None = None

    def _check_lines(self) -> tuple[list[str], list[str]]:
        """(problems, the rest of check's lines), kept while the files and the day stay the same."""
        now = self.clock()
        key = (*_stamp(self.home), now.astimezone(dt.UTC).date())
        if self._check is not None and self._check[0] == key:
            return self._check[1], self._check[2]
        try:
            problems, lines = [], check_all(self.settings, now=now)
        except DataError as err:
            problems, lines = [str(p) for p in err.problems], []
        except NewsletterError as err:
            problems, lines = [str(err)], []
        self._check = (key, problems, lines)
        return problems, lines

    def _overview(self) -> dict[str, Any]:
        project, now = self.project, self.clock()
        problems, lines = self._check_lines()
        told: list[str] = []
        recent: list[str] = []
        answers: list[str] = []
        if self.settings.state_path.exists():
            with self.ledger() as ledger:
                told = records.open_topics(ledger)
            recent = status_lines(self.settings, None, answers=False)[-RECENT:]
            answers = answer_lines(project, now=now)
        return {
            "upcoming": upcoming_lines(project, now=now),
            "problems": self.schedule_problems + problems,
            "check": [line for line in lines if line.startswith("warning: ")],
            "recent": recent,
            "told": told,
            "answers": answers,
        }

    async def overview(self, request: Request) -> Response:
        facts = await run_in_threadpool(self._overview)
        return self.page(request, "overview.html", **facts)

    async def deliveries(self, request: Request) -> Response:
        rows = await run_in_threadpool(self._campaigns)
        return self.page(request, "deliveries.html", rows=rows)

    def _campaigns(self) -> list[tuple[str, str]]:
        """(mailing id, its line from `newsletter status`), newest first."""
        if not self.settings.state_path.exists():
            return []
        with self.ledger() as ledger:
            ids = [c.id for c in ledger.campaigns()]
        lines = status_lines(self.settings, None, answers=False)
        return list(reversed(list(zip(ids, lines, strict=False)))) if ids else []

    async def delivery(self, request: Request) -> Response:
        cid = request.path_params["mailing"]
        try:
            lines = await run_in_threadpool(status_lines, self.settings, cid)
        except NewsletterError:
            return self.redirect(request, "/deliveries")
        return self.page(request, "delivery.html", mailing=cid, head=lines[0], lines=lines[1:])

    async def activity(self, request: Request) -> Response:
        def read() -> list[records.Activity]:
            with self.ledger() as ledger:
                return records.activity(ledger)

        return self.page(request, "activity.html", entries=await run_in_threadpool(read))
