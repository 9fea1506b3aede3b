"""Importing a CSV upload: first a preview of exactly what will change, then the write.

The preview is `newsletter subscribers import` itself, run on a private copy of the list: so it shows
what the import will really do (added, updated with each changed value, skipped with the line and
the reason), not a guess.  Pressing "Import" runs it again on the list as it is then, if the list
is still the version the preview was made from; otherwise the preview is made again and shown with
"the list changed since you opened this page".  The upload waits in a private folder of the state
directory (it holds addresses) and is deleted once imported, or after an hour.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from newsletter.errors import DataError, EditBusy
from newsletter.inputs.members import scan_subscribers
from newsletter.inputs.members_edit import Roster, import_file, load, unneutralise
from newsletter.web.admin import roster
from newsletter.web.admin.base import who
from newsletter.web.admin.members import MemberPages, field_text, problems_text

UPLOAD_HOURS = 1
REMADE = (
    f"{roster.CHANGED}. The preview below is made again from the list as it is now: check it, then import."
)
MAX_UPLOAD = 20 * 1024 * 1024
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")


@dataclass
class Preview:
    token: str
    filename: str
    version: str  # of subscribers.csv, as the preview found it
    added: list[tuple[int, str, str]] = field(default_factory=list)  # (line, address, name)
    updated: list[tuple[int, str, str]] = field(default_factory=list)  # (line, address, what changes)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        return bool(self.added or self.updated)


def _safe_name(name: str) -> str:
    base = re.sub(r"[^\w.-]+", "_", Path(name).name)[:80].strip("._")
    return base if base.lower().endswith(".csv") else (base or "upload") + ".csv"


def _differences(before: Roster, after: Roster, key: str) -> str:
    index_before, index_after = before.find(key), after.find(key)
    if index_before is None or index_after is None:
        return ""
    old, new = before.members[index_before].fields, after.members[index_after].fields
    parts = []
    for column in after.columns:
        a, b = unneutralise(old.get(column, "")), unneutralise(new.get(column, ""))
        if a != b:
            parts.append(f"{unneutralise(column)}: “{a}” → “{b}”")
    return "; ".join(parts)


class ImportPages(MemberPages):
    def uploads(self) -> Path:
        folder = self.work() / "uploads"
        folder.mkdir(exist_ok=True)
        return folder

    async def upload(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await self.list_page(
                request, status=400, error="Choose a CSV file to import.", field="file"
            )
        data = await upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            error = f"The file is larger than {MAX_UPLOAD // (1024 * 1024)} MB: is it the right file?"
            return await self.list_page(request, status=400, error=error, field="file")
        token = secrets.token_urlsafe(24)
        await run_in_threadpool(self._keep, token, _safe_name(upload.filename), data)
        return await self.preview_page(request, token)

    def _keep(self, token: str, name: str, data: bytes) -> None:
        folder = self.uploads()
        cutoff = time.time() - UPLOAD_HOURS * 3600
        for old in folder.iterdir():
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        (folder / token).mkdir(mode=0o700)
        (folder / token / name).write_bytes(data)

    def _upload_path(self, token: str) -> Path | None:
        if not _TOKEN.fullmatch(token):
            return None
        folder = self.uploads() / token
        files = list(folder.iterdir()) if folder.is_dir() else []
        found: Path | None = files[0] if files else None
        return found

    async def preview_page(
        self, request: Request, token: str, *, status: int = 200, error: str = ""
    ) -> Response:
        source = self._upload_path(token)
        if source is None:
            return await self.list_page(
                request, status=400, error="That upload is gone: choose the file again."
            )
        try:
            preview = await run_in_threadpool(self._preview, token, source)
        except (DataError, EditBusy) as err:
            shutil.rmtree(source.parent, ignore_errors=True)
            return await self.list_page(request, status=400, error=problems_text(err), field="file")
        return self.page(request, "import_preview.html", status=status, preview=preview, error=error)

    def _preview(self, token: str, source: Path) -> Preview:
        """The import run on a copy of the list: what it would add, update and skip."""
        real = self.members_file
        version = roster.list_version(real)
        with tempfile.TemporaryDirectory(dir=self.work()) as folder:
            copy = Path(folder) / real.name
            if real.exists():
                shutil.copyfile(real, copy)
            before = load(copy)
            with self.ledger() as ledger:
                report = import_file(copy, ledger, source, wait=self.lock_wait)
            after = load(copy)
        rows = {m.line: m for m, _ in scan_subscribers(source) if m is not None}
        out = Preview(token, source.name, version, unchanged=len(report.unchanged))
        out.skipped = [str(p) for p in report.skipped]
        for line in report.added:
            member = rows[line]
            out.added.append((line, member.email, unneutralise(member.name)))
        for line in report.updated:
            member = rows[line]
            out.updated.append((line, member.email, _differences(before, after, member.key)))
        return out

    async def confirm(self, request: Request) -> Response:
        form = await request.form()
        token, version = field_text(form, "upload", 100), field_text(form, "version")
        source = self._upload_path(token)
        if source is None:
            return await self.list_page(
                request, status=400, error="That upload is gone: choose the file again."
            )
        try:
            await run_in_threadpool(self._import, source, version, who(request))
        except roster.ListChanged:
            return await self.preview_page(request, token, status=409, error=REMADE)
        except (DataError, EditBusy) as err:
            return await self.list_page(request, status=400, error=problems_text(err))
        shutil.rmtree(source.parent, ignore_errors=True)
        return self.redirect(request, "/members?done=imported")

    def _import(self, source: Path, version: str, name: str) -> None:
        def change(copy: Any) -> Any:
            with self.ledger() as ledger:
                return import_file(copy, ledger, source, wait=self.lock_wait)

        report = roster.edit(self.members_file, version, self.work(), change, wait=self.lock_wait)
        self.record(
            name,
            "imported a file",
            f"{source.name}: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} already there, {len(report.skipped)} skipped",
        )
