"""The Members page: search, add, change a name, unsubscribe, re-subscribe with consent, export.

Members are named in links by their row in subscribers.csv and the version of the file the page
showed (``roster``), never by address; a search is sent as a form, so no address is ever in an
address bar, a log or the browser's history.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from newsletter.errors import DataError, EditBusy, InvalidValue, Unsubscribed
from newsletter.inputs.members_edit import add_member, export, load, unsubscribe
from newsletter.web.admin import roster
from newsletter.web.admin.base import HEADERS, Console, private_folder, who

DONE = {
    "added": "The member was added to subscribers.csv.",
    "updated": "The member's name was changed in subscribers.csv.",
    "unchanged": "That member is already on the list as given: nothing changed.",
    "unsubscribed": "The member was unsubscribed and taken off subscribers.csv: she gets no more mail.",
    "imported": "The import was written to subscribers.csv.",
}
AGAIN = ". Here it is as it is now: please make your change again."


def field_text(form: Any, name: str, most: int = 500) -> str:
    return str(form.get(name, "")).strip()[:most]


class MemberPages(Console):
    @property
    def members_file(self) -> Path:
        return self.project.subscribers_path

    def work(self) -> Path:
        return private_folder(self.settings.state_dir / "console")

    def _view(self) -> roster.ListView:
        with self.ledger() as ledger:
            return roster.view(self.members_file, ledger)

    async def list_page(self, request: Request, *, status: int = 200, **context: Any) -> Response:
        view = await run_in_threadpool(self._view)
        query = context.pop("query", "")
        context.setdefault("values", {})
        context.setdefault("error", "")
        context.setdefault("field", "")
        done = DONE.get(request.query_params.get("done", ""), "")
        return self.page(request, "members.html", status=status, view=view, rows=view.matching(query),
                         query=query, done=context.pop("done", done), **context)  # fmt: skip

    async def members_page(self, request: Request) -> Response:
        return await self.list_page(request)

    async def search(self, request: Request) -> Response:
        form = await request.form()
        return await self.list_page(request, query=field_text(form, "q", 200))

    # add -----------------------------------------------------------------------------------------
    async def add(self, request: Request) -> Response:
        form = await request.form()
        values = {k: field_text(form, k) for k in ("email", "name", "consent")}
        values["resubscribe"] = "yes" if form.get("resubscribe") == "yes" else ""
        if values["resubscribe"] and not values["consent"]:
            error = "Write down how she asked to be added back (when, and how she told you)."
            return await self.list_page(request, status=400, values=values, error=error, field="consent")
        try:
            outcome = await run_in_threadpool(self._add, values, field_text(form, "version"), who(request))
        except roster.ListChanged:
            return await self.list_page(request, status=409, error=roster.CHANGED + AGAIN)
        except Unsubscribed:
            error = (
                "This address unsubscribed and gets no mail. Add it back only if she asked you to: tick "
                "“She asked to be added back” and write down how she asked."
            )
            return await self.list_page(request, status=400, values=values, error=error, field="resubscribe")
        except InvalidValue as err:
            return await self.list_page(request, status=400, values=values, error=str(err), field="email")
        except (DataError, EditBusy) as err:
            return await self.list_page(
                request, status=400, values=values, error=problems_text(err), field=""
            )
        return self.redirect(request, f"/members?done={outcome}")

    def _add(self, values: dict[str, str], version: str, name: str) -> str:
        def change(copy: Any) -> tuple[str, bool, int | None]:
            with self.ledger() as ledger:
                done = add_member(copy, ledger, values["email"], name=values["name"] or None,
                                  resubscribe=bool(values["resubscribe"]), source="add", now=self.clock(),
                                  wait=self.lock_wait)  # fmt: skip
            member = load(copy).find(done.address)
            line = load(copy).members[member].line if member is not None else None
            return done.outcome, done.resubscribed, line

        outcome, back, line = roster.edit(
            self.members_file, version, self.work(), change, wait=self.lock_wait
        )
        if outcome != "unchanged" or back:
            action = {"added": "added a member", "updated": "changed a member's name"}.get(outcome, "")
            detail = f"row {line}"
            if back:
                action = action or "re-subscribed a member"
                detail += f"; re-subscribed with her consent: {values['consent']}"
            self.record(name, action, detail)
        return outcome

    # one row -------------------------------------------------------------------------------------
    async def member_page(
        self, request: Request, *, status: int = 200, error: str = "", version: str | None = None
    ) -> Response:
        line = request.path_params["line"]
        version = request.query_params.get("v", "") if version is None else version
        try:
            member = await run_in_threadpool(roster.member_on, self.members_file, line)
        except (roster.RowGone, DataError):
            member = None
        if member is None or version != roster.list_version(self.members_file):
            return await self.list_page(request, status=409, error=roster.CHANGED + AGAIN)
        return self.page(request, "member.html", status=status, member=member, line=line, version=version,
                         error=error)  # fmt: skip

    async def rename(self, request: Request) -> Response:
        form = await request.form()
        line, new = request.path_params["line"], field_text(form, "name", 200)
        if not new:
            error = "Write the name she should be greeted by."
            return await self.member_page(
                request, status=400, error=error, version=field_text(form, "version")
            )

        def change(copy: Any, ledger: Any) -> str:
            email = roster.member_on(copy, line).email
            done = add_member(
                copy, ledger, email, name=new, source="add", now=self.clock(), wait=self.lock_wait
            )
            return done.outcome

        return await self._row_edit(request, form, change, "changed a member's name")

    async def remove(self, request: Request) -> Response:
        form = await request.form()
        line = request.path_params["line"]

        def change(copy: Any, ledger: Any) -> str:
            key = roster.member_on(copy, line).key
            unsubscribe(copy, ledger, key, source="remove", now=self.clock(), wait=self.lock_wait)
            return "unsubscribed"

        return await self._row_edit(request, form, change, "unsubscribed a member")

    async def _row_edit(self, request: Request, form: Any, change: Any, action: str) -> Response:
        line, version, name = request.path_params["line"], field_text(form, "version"), who(request)

        def run() -> str:
            def on_copy(copy: Any) -> str:
                with self.ledger() as ledger:
                    return str(change(copy, ledger))

            outcome = roster.edit(self.members_file, version, self.work(), on_copy, wait=self.lock_wait)
            if outcome != "unchanged":
                self.record(name, action, f"row {line}")
            return outcome

        try:
            outcome = await run_in_threadpool(run)
        except (roster.ListChanged, roster.RowGone):
            return await self.list_page(request, status=409, error=roster.CHANGED + AGAIN)
        except (DataError, EditBusy, Unsubscribed) as err:
            return await self.list_page(request, status=400, error=problems_text(err))
        return self.redirect(request, f"/members?done={outcome}")

    # export --------------------------------------------------------------------------------------
    async def export(self, request: Request) -> Response:
        try:
            data, name = await run_in_threadpool(self._export, who(request))
        except DataError as err:
            return await self.list_page(request, status=400, error=problems_text(err))
        headers = {**HEADERS, "content-disposition": f'attachment; filename="{name}"'}
        return Response(data, media_type="text/csv; charset=utf-8", headers=headers)

    def _export(self, name: str) -> tuple[bytes, str]:
        members = load(self.members_file)
        with self.ledger() as ledger:
            out = io.StringIO()
            export(members, ledger.suppressed(), out, bom=True)  # the BOM tells Excel it is UTF-8
        self.record(name, "exported the list", f"{len(members.members)} rows")
        return out.getvalue().encode("utf-8"), f"subscribers-{self.clock():%Y-%m-%d}.csv"


def problems_text(err: Exception) -> str:
    if isinstance(err, DataError) and not isinstance(err, InvalidValue):
        lines = [str(p) for p in err.problems]
        return "subscribers.csv has problems to fix first: " + "; ".join(lines)
    return str(err)
