"""What every console page shares: the project (re-read when schedule.yaml changes), the templates,
the clock, the session check, the CSRF token and Origin check on every form, and the headers.

The handlers are methods of the classes built on ``Console`` (``auth``, ``members``, ``imports``,
``meetings``, ``mails``, ``reports``); ``newsletter.web.admin`` puts them together into the app.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, Signer
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from newsletter.errors import ConfigError, DataError, NewsletterError
from newsletter.inputs.members_edit import LOCK_WAIT
from newsletter.model import Organiser
from newsletter.project import Project, load_project
from newsletter.state import console as records
from newsletter.state.console import ConsoleSession
from newsletter.state.ledger import Ledger
from newsletter.state.members import token_hash
from newsletter.web.pages import RequestLimit, origin_of

log = logging.getLogger("newsletter.web.admin")

#: The public pages' policy (web.public.SECURITY_HEADERS, kept equal by a test); no script at all.
CSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
HEADERS = {
    "content-security-policy": CSP,
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}
COOKIE = "newsletter_console"
IDLE = dt.timedelta(hours=12)  # a session unused this long is over
LINK_LIFETIME = dt.timedelta(minutes=15)
#: Every template the console renders, checked when the app starts.
PAGES = (
    "base.html", "admin.css", "sign_in.html", "check_inbox.html", "link.html", "link_gone.html",
    "signed_out.html", "refused.html", "busy.html", "trouble.html", "overview.html", "members.html",
    "member.html", "import_preview.html", "meetings.html", "meeting.html", "rule.html", "confirm.html",
    "mails.html", "mail.html", "deliveries.html", "delivery.html", "activity.html", "sign_in_mail.txt",
)  # fmt: skip
Clock = Callable[[], dt.datetime]
Handler = Callable[[Request], Awaitable[Response]]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def root(request: Request) -> str:
    """Where the console is mounted ('/admin'): every link and the cookie's path start here."""
    return str(request.scope.get("root_path", "")).rstrip("/")


class Console:
    """Everything the console's pages need; the request handlers are the methods of its subclasses."""

    def __init__(
        self,
        project: Project,
        *,
        base_url: str,
        clock: Clock = _now,
        sign_in_limit: RequestLimit | None = None,
        address_limit: RequestLimit | None = None,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        from newsletter.compose.templates import make_environment

        folder = project.home / "templates" / "web" / "admin"
        missing = [name for name in PAGES if not (folder / name).is_file()]
        if missing:
            raise ConfigError(
                f"{folder}: the console's templates are missing ({', '.join(missing)}) — copy "
                "templates/web/admin/ from the newsletter source into the group's folder"
            )
        self.env = make_environment(folder)
        self.css = (folder / "admin.css").read_bytes()
        self.base_url, self.clock, self.lock_wait = base_url.rstrip("/"), clock, lock_wait
        self.origin = origin_of(self.base_url)
        self.secure = self.base_url.lower().startswith("https://")
        self.settings = project.settings
        self.signer = Signer(project.settings.secret, salt="newsletter.console.session")
        # Per client: a few tries an hour; per organiser's address: 3 links per 15 minutes at most.
        self.sign_in_limit = sign_in_limit or RequestLimit(per_client=10, overall=200, window=3600)
        self.address_limit = address_limit or RequestLimit(per_client=3, overall=1000, window=900)
        self._project, self._stamp = project, self._schedule_stamp()
        self.schedule_problems: list[str] = []

    # the group's files -------------------------------------------------------------------------
    def _schedule_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = (self.settings.home / "schedule.yaml").stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    @property
    def project(self) -> Project:
        """The group as schedule.yaml says now; a broken edit keeps the last good one (and says so)."""
        stamp = self._schedule_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._project = load_project(self.settings, check_subscribers=False)
                self.schedule_problems = []
            except DataError as err:
                self.schedule_problems = [str(p) for p in err.problems]
        return self._project

    @property
    def home(self) -> Path:
        return self.settings.home

    def ledger(self) -> Ledger:
        return Ledger(self.settings.state_path)

    def organiser(self, address: str) -> Organiser | None:
        """The organiser in schedule.yaml with this address (capitals ignored); nobody else signs in."""
        key = address.strip().lower()
        if not key or "@" not in key:
            return None
        return next((o for o in self.project.schedule.group.organisers if o.email.lower() == key), None)

    def record(self, who: str, action: str, detail: str = "") -> None:
        with self.ledger() as ledger:
            records.record(ledger, who, action, detail, now=self.clock())

    # pages --------------------------------------------------------------------------------------
    def page(self, request: Request, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        session = getattr(request.state, "session", None)
        html = self.env.get_template(name).render(
            group=self.project.schedule.group,
            admin=root(request),
            session=session,
            csrf=session.csrf if session else "",
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def redirect(self, request: Request, path: str) -> Response:
        return RedirectResponse(root(request) + path, status_code=303, headers=HEADERS)

    async def stylesheet(self, request: Request) -> Response:
        return Response(self.css, media_type="text/css", headers={**HEADERS, "cache-control": "max-age=3600"})

    # the session --------------------------------------------------------------------------------
    def session_id(self, request: Request) -> str | None:
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        try:
            return self.signer.unsign(cookie).decode()
        except BadSignature:
            return None

    def _session(self, sid: str) -> ConsoleSession | None:
        with self.ledger() as ledger:
            return records.find_session(ledger, token_hash(sid), now=self.clock(), idle=IDLE)

    def set_cookie(self, request: Request, response: Response, sid: str) -> None:
        response.set_cookie(
            COOKIE,
            self.signer.sign(sid).decode(),
            path=root(request) or "/",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )

    def from_elsewhere(self, request: Request) -> bool:
        """True (and logged) when a POST's Origin (or, without one, Referer) is not the console's own."""
        sent = request.headers.get("origin") or request.headers.get("referer")
        origin = None if sent is None else origin_of(sent)
        if origin is not None and origin == self.origin:
            return False
        log.warning(
            "refused a console POST from %s: forms are taken only from %s", origin or "nowhere", self.origin
        )
        return True

    def guard(self, handler: Handler) -> Handler:
        """The handler behind the session check; a POST also needs the session's CSRF token and our Origin."""

        async def endpoint(request: Request) -> Response:
            sid = self.session_id(request)
            session = None if sid is None else await run_in_threadpool(self._session, sid)
            if session is None:
                if request.method in ("GET", "HEAD"):
                    return self.redirect(request, "/sign-in" + ("?ended=1" if sid else ""))
                return self.page(request, "refused.html", status=403)
            request.state.session = session
            if request.method == "POST":
                if self.from_elsewhere(request):
                    return self.page(request, "refused.html", status=403)
                form = await request.form(max_files=1, max_fields=60)
                sent = str(form.get("csrf", ""))
                if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
                    log.warning("refused a console POST without the session's CSRF token")
                    return self.page(request, "refused.html", status=403)
            try:
                return await handler(request)
            except NewsletterError as err:  # a setting, the state database, the mail server
                log.error("a console page could not be completed: %s", err)
                return self.page(request, "trouble.html", status=503, message=str(err))

        return endpoint


def who(request: Request) -> str:
    """The signed-in organiser's name, for the activity log."""
    session: ConsoleSession = request.state.session
    return session.name


def private_folder(base: Path) -> Path:
    """A folder only this user can read (uploads and copies hold members' addresses)."""
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o700)
    return base
