"""`newsletter serve`: the public pages behind NEWSLETTER_PUBLIC_URL (Starlette, served by uvicorn).

One-click unsubscribe (RFC 8058), the footer's unsubscribe page and a double opt-in sign-up.  A GET
never changes anything, because mail scanners follow links.  Every answer about a token or an
address is the same whatever the list holds, so the pages never tell whether someone is a member,
and nothing here logs an address or a token.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.compose.mime import Envelope, check_header_value, small_message
from newsletter.errors import ConfigError, DataError, EditBusy, FormError, NewsletterError
from newsletter.inputs.members import validate_address, validate_name
from newsletter.inputs.members_edit import FORMULA_START, LOCK_WAIT, find_by_token, unsubscribe
from newsletter.inputs.members_edit import add_member as add_to_list
from newsletter.project import Project
from newsletter.send.pipeline import Pipeline
from newsletter.state.ledger import Ledger
from newsletter.state.members import token_hash

log = logging.getLogger(__name__)

CONFIRM_HOURS = 48
EXPIRES = dt.timedelta(hours=CONFIRM_HOURS)
PENDING_PER_ADDRESS = 3  # confirmation mails one address can have outstanding (no mail-bombing)
#: Unsubscribe POSTs per client and in all, per hour: generous, as a mail provider's one-click POSTs
#: for many members come from a few addresses, but a flood of made-up tokens (each a scan of the
#: list, for links from before the ledger kept tokens) is cut short.
UNSUBSCRIBES_PER_CLIENT, UNSUBSCRIBES_OVERALL = 30, 1000
MAX_NAME = 100
MAX_FIELDS = 10  # the form has three; more is not a person filling it in
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"referrer-policy", b"no-referrer"),  # the token in the address must not travel on
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]
Clock = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- pending sign-ups (in the state database) ------------------------------------------------------
# Kept until confirmed or for CONFIRM_HOURS at most: the address of someone who never confirmed is
# health information we have no reason to keep.


def add_pending(ledger: Ledger, address: str, name: str, *, now: dt.datetime) -> str | None:
    """A new confirmation token, stored hashed; None when the address has enough outstanding."""
    token = secrets.token_urlsafe(32)
    kept = ledger.add_signup(
        token_hash(token),
        address=address,
        name=name,
        now=now,
        expired_before=now - EXPIRES,
        most=PENDING_PER_ADDRESS,
    )
    return token if kept else None


def find_pending(ledger: Ledger, token: str, *, now: dt.datetime) -> tuple[str, str] | None:
    """(address, name) for a valid, unexpired token; None for anything else."""
    return ledger.signup(token_hash(token), expired_before=now - EXPIRES)


def forget_pending(ledger: Ledger, token: str) -> None:
    ledger.forget_signup(token_hash(token))


def forget_expired(ledger: Ledger, *, now: dt.datetime) -> None:
    ledger.forget_expired_signups(now - EXPIRES)


# --- rate limit ------------------------------------------------------------------------------------


class RequestLimit:
    """Sliding window, in memory: at most ``per_client`` per client and ``overall`` in all."""

    def __init__(
        self, *, per_client: int, overall: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_client, self.overall, self.window, self.clock = per_client, overall, window, clock
        self.hits: dict[str, deque[float]] = {}
        self.all: deque[float] = deque()

    def allow(self, client: str) -> bool:
        now = self.clock()
        for key in list(self.hits):
            self._prune(self.hits[key], now)
            if not self.hits[key]:
                del self.hits[key]
        self._prune(self.all, now)
        mine = self.hits.setdefault(client, deque())
        if len(mine) >= self.per_client or len(self.all) >= self.overall:
            return False
        mine.append(now)
        self.all.append(now)
        return True

    def _prune(self, hits: deque[float], now: float) -> None:
        while hits and hits[0] <= now - self.window:
            hits.popleft()


# --- the app ---------------------------------------------------------------------------------------


class Site:
    """Everything the pages need; the request handlers are its methods."""

    def __init__(
        self,
        project: Project,
        *,
        base_url: str,
        clock: Clock = _now,
        limit: RequestLimit | None = None,
        unsubscribe_limit: RequestLimit | None = None,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        folder = project.home / "templates" / "web"
        if not (folder / "base.html").is_file():
            raise ConfigError(
                f"{folder}: the web page templates are missing — copy templates/web/ from the newsletter "
                "source into the group's folder"
            )
        from newsletter.compose.templates import make_environment

        self.project, self.base_url, self.clock = project, base_url.rstrip("/"), clock
        self.lock_wait = lock_wait  # how long a click waits while an organiser's edit holds the list
        self.env = make_environment(folder)
        self.css = (folder / "web.css").read_bytes()
        self.limit = limit or RequestLimit(per_client=5, overall=100, window=3600)
        self.unsubscribe_limit = unsubscribe_limit or RequestLimit(
            per_client=UNSUBSCRIBES_PER_CLIENT, overall=UNSUBSCRIBES_OVERALL, window=3600
        )
        self.secret = project.settings.secret
        with self.ledger() as ledger:
            forget_expired(ledger, now=self.clock())

    def ledger(self) -> Ledger:
        return Ledger(self.project.settings.state_path)

    def page(self, name: str, *, root: str = "", status: int = 200, **context: Any) -> HTMLResponse:
        group = self.project.schedule.group
        html = self.env.get_template(name).render(group=group, root=root, hours=CONFIRM_HOURS, **context)
        return HTMLResponse(html, status_code=status)

    # unsubscribe ---------------------------------------------------------------------------------
    async def unsubscribe_page(self, request: Request) -> Response:
        return self.page("unsubscribe.html", root="../")

    async def unsubscribe(self, request: Request) -> Response:
        if not self.unsubscribe_limit.allow(_client(request)):  # nothing is looked up or changed
            return self.page("trouble.html", root="../", status=429)
        body = await request.body()
        # RFC 8058: the mail program POSTs List-Unsubscribe=One-Click (urlencoded or multipart); the
        # page's button posts nothing.
        source = "one-click" if b"One-Click" in body else "link"
        token = request.path_params["token"]
        try:
            await run_in_threadpool(self._unsubscribe, token, source)
        except NewsletterError as err:  # the address is never in these messages
            log.error("an unsubscribe could not be recorded: %s", err)
            return self.page("trouble.html", root="../", status=503)
        return self.page("unsubscribed.html", root="../")

    def _unsubscribe(self, token: str, source: str) -> None:
        path = self.project.subscribers_path
        with self.ledger() as ledger:
            address = find_by_token(path, ledger, self.secret, token)
            if address is None:
                return  # tampered, unknown or long gone: the same answer
            try:
                unsubscribe(path, ledger, address, source=source, now=self.clock(), wait=self.lock_wait)
            except (DataError, OSError) as err:  # EditBusy is an OSError too
                why = (
                    "has problems (run `newsletter check`)" if isinstance(err, DataError)
                    else "was busy with another edit" if isinstance(err, EditBusy)
                    else f"could not be rewritten ({err.strerror or type(err).__name__})"
                )  # fmt: skip
                log.warning(
                    "an unsubscribe is recorded and the member gets no mail, but subscribers.csv %s: the row "
                    "stays in the file for now",
                    why,
                )

    # sign-up ------------------------------------------------------------------------------------
    async def signup_page(self, request: Request) -> Response:
        return self.page("signup.html", values={}, error="", field="")

    async def signup(self, request: Request) -> Response:
        if not self.limit.allow(_client(request)):
            return self.page("busy.html", status=429)
        try:
            form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=MAX_FIELDS)
        except ValueError:  # more fields than the form has
            error = "Something went wrong with the form. Please fill it in again."
            return self.page("signup.html", status=400, values={}, error=error, field="")
        values = {k: v[0] for k, v in form.items() if k in ("name", "email", "website")}
        if values.get("website"):  # the honeypot: people never see this field, robots fill it in
            return self.page("check_inbox.html")
        try:
            address, name = _clean(values.get("email", ""), values.get("name", ""))
        except FormError as err:
            return self.page("signup.html", status=400, values=values, error=err.message, field=err.field)
        token = await run_in_threadpool(self._pending, address, name)
        if token is not None:
            try:
                await self._send_confirmation(address, token)
            except NewsletterError as err:
                log.error("a sign-up confirmation could not be sent: %s", err)
                return self.page("trouble.html", status=503)
        return self.page("check_inbox.html")

    def _pending(self, address: str, name: str) -> str | None:
        with self.ledger() as ledger:
            return add_pending(ledger, address, name, now=self.clock())

    async def _send_confirmation(self, address: str, token: str) -> None:
        envelope = self.confirmation(address, f"{self.base_url}/confirm/{token}")
        outcome = await Pipeline.of(self.project, "signup").send_async(envelope)
        if outcome.status != "sent":
            raise NewsletterError(f"the mail server answered {outcome.code or ''} ({outcome.status})")

    def confirmation(self, address: str, url: str) -> Envelope:
        """The confirmation mail; small and rare, so the standard library builds it.

        Nothing the form's sender typed goes into it but the address it is sent to: anyone can fill
        in the form, so a name there would be their text, mailed anywhere under the group's name.
        """
        context = {"group": self.project.schedule.group, "confirm_url": url, "hours": CONFIRM_HOURS}
        envelope = small_message(
            sender=self.project.settings.sender,
            to=address,
            subject=self.env.get_template("confirm_mail.subject.txt").render(context).strip(),
            text=self.env.get_template("confirm_mail.txt").render(context),
            html=self.env.get_template("confirm_mail.html").render(context),
            now=self.clock(),
            tz=self.project.schedule.group.tz,
        )
        return envelope

    # confirm -------------------------------------------------------------------------------------
    async def confirm_page(self, request: Request) -> Response:
        return self.page("confirm.html", root="../")

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            await run_in_threadpool(self._confirm, token)
        except NewsletterError as err:
            log.error("a sign-up could not be confirmed: %s", err)
            return self.page("trouble.html", root="../", status=503)
        return self.page("confirmed.html", root="../")

    def _confirm(self, token: str) -> None:
        now = self.clock()
        with self.ledger() as ledger:
            forget_expired(ledger, now=now)
            pending = find_pending(ledger, token, now=now)
            if pending is None:
                return  # tampered, expired or used: the same answer
            address, name = pending
            # Clicking the link is the address owner's own opt-in, so it also lifts an earlier
            # unsubscribe; the ledger keeps a line saying so, shown by `subscribers list`.
            add_to_list(
                self.project.subscribers_path,
                ledger,
                address,
                name=name or None,
                resubscribe=True,
                source="sign-up",
                now=now,
                wait=self.lock_wait,
            )
            forget_pending(ledger, token)  # only now: if adding failed, the link still works later

    # the rest ------------------------------------------------------------------------------------
    async def stylesheet(self, request: Request) -> Response:
        return Response(self.css, media_type="text/css", headers={"cache-control": "max-age=3600"})

    async def home(self, request: Request) -> Response:
        return RedirectResponse("signup", status_code=303)

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")


def _client(request: Request) -> str:
    """Who asks, for the rate limits (X-Forwarded-For counts only from FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


def _clean(email: str, name: str) -> tuple[str, str]:
    """Validated (address, name), or FormError saying what to correct."""
    if not email.strip().rpartition("@")[0].isascii():
        # Letters like ë before the @ need SMTPUTF8 all the way, which the reminders cannot count on
        # yet; a domain like exämple.org is fine (it is kept in its xn-- form).
        raise FormError(
            "email",
            "Sorry, we cannot yet send to an address with accented or non-Latin letters. "
            "Please use another address.",
        )
    try:
        address = validate_address(email[:320])
    except DataError:
        raise FormError("email", "Please enter an email address like name@example.org.") from None
    name = name.strip()
    if len(name) > MAX_NAME:
        raise FormError("name", f"Please keep your name under {MAX_NAME} characters.")
    # Organisers open subscribers.csv in a spreadsheet, where a cell starting with = runs as a formula.
    if name.startswith(FORMULA_START):
        raise FormError("name", "Please start your name with a letter.")
    try:
        name = validate_name(name)
        check_header_value("To", name)
    except NewsletterError:
        raise FormError("name", "Please write your name on one line, as plain text.") from None
    return address, name


class SecurityHeaders:
    """Adds the headers above to every answer and logs each request with its token cut out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                message["headers"] = headers + [h for h in SECURITY_HEADERS if h[0] not in present]
                parts = scope["path"].split("/")
                path = "/".join(parts[:2]) + ("/…" if len(parts) > 2 else "")
                log.info("%s %s %s", scope["method"], path, message["status"])
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(project: Project, **options: Any) -> Starlette:
    """The Starlette app; ``options`` go to Site (base_url, clock, limit, unsubscribe_limit, lock_wait)."""
    site = Site(project, **options)
    routes = [
        Route("/", site.home),
        Route("/healthz", site.health),
        Route("/web.css", site.stylesheet),
        Route("/unsubscribe/{token}", site.unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe/{token}", site.unsubscribe, methods=["POST"]),
        Route("/signup", site.signup_page, methods=["GET"]),
        Route("/signup", site.signup, methods=["POST"]),
        Route("/confirm/{token}", site.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", site.confirm, methods=["POST"]),
    ]
    app = Starlette(routes=routes, max_body_size=16 * 1024)
    app.add_middleware(SecurityHeaders)
    return app


def serve(project: Project, *, host: str, port: int) -> None:
    """Run the app until Ctrl+C or SIGTERM; X-Forwarded-For is trusted from FORWARDED_ALLOW_IPS only."""
    import uvicorn

    base_url = project.settings.public_url or f"http://{host}:{port}"
    app = create_app(project, base_url=base_url)
    uvicorn.run(app, host=host, port=port, proxy_headers=True, access_log=False, log_level="info")
