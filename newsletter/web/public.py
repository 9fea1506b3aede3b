"""`newsletter serve`: the public pages behind NEWSLETTER_PUBLIC_URL (Starlette, served by uvicorn).

One-click unsubscribe (RFC 8058), the footer's unsubscribe page (``unsubscribe``), a double opt-in
sign-up (``signup``), members' answers: RSVP and preferences (``answers``), and the calendar feed
(``calendar_feed``), on what every page shares (``pages``).  A GET never changes anything, because
mail scanners follow links; a POST from another site's page is refused (``Pages.from_elsewhere``).
Every answer about a token or an address is the same whatever the list holds, so the pages never
tell whether someone is a member, and nothing here logs an address or a token.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.project import Project
from newsletter.web.admin import console_app
from newsletter.web.answers import AnswerPages
from newsletter.web.calendar_feed import CalendarPages
from newsletter.web.pages import CONFIRM_HOURS, EXPIRES, RequestLimit
from newsletter.web.signup import PENDING_PER_ADDRESS, PENDING_PER_DOMAIN, SignupPages
from newsletter.web.unsubscribe import UnsubscribePages

__all__ = [
    "CONFIRM_HOURS",
    "EXPIRES",
    "PENDING_PER_ADDRESS",
    "PENDING_PER_DOMAIN",
    "RequestLimit",
    "SecurityHeaders",
    "Site",
    "create_app",
    "serve",
]

log = logging.getLogger(__name__)

SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    # The token in a page's address must not travel to other sites; 'same-origin' rather than
    # 'no-referrer' because with that a browser sends "Origin: null" on our own forms, and the
    # same-site check (Pages.from_elsewhere) could not tell them from a forged one.
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
]


class Site(SignupPages, UnsubscribePages, AnswerPages, CalendarPages):
    """Everything the pages need; the request handlers are its methods."""

    async def stylesheet(self, request: Request) -> Response:
        return Response(self.css, media_type="text/css", headers={"cache-control": "max-age=3600"})

    async def home(self, request: Request) -> Response:
        return RedirectResponse("signup", status_code=303)

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")


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
    """The Starlette app: the members' pages, and the organisers' console under /admin; ``options`` go to
    Site (base_url, clock, limit, unsubscribe_limit, answers_limit, lock_wait)."""
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
        Route("/rsvp/{token}/{answer}", site.rsvp_page, methods=["GET"]),
        Route("/rsvp/{token}/{answer}", site.rsvp, methods=["POST"]),
        Route("/preferences/{token}", site.preferences_page, methods=["GET"]),
        Route("/preferences/{token}", site.preferences, methods=["POST"]),
        Route("/preferences.css", site.answers_stylesheet),
        Route("/calendar.ics", site.calendar, methods=["GET"]),
        # The organisers' console: its own sessions, CSRF, headers and (for CSV uploads) body limit.
        Mount(
            "/admin",
            app=console_app(
                project,
                base_url=site.base_url,
                **{k: options[k] for k in ("clock", "lock_wait") if k in options},
            ),
        ),
    ]
    app = Starlette(routes=routes, max_body_size=16 * 1024)
    app.add_middleware(SecurityHeaders)
    return app


def serve(project: Project, *, host: str, port: int) -> None:
    """Run the app until Ctrl+C or SIGTERM; X-Forwarded-For is trusted from FORWARDED_ALLOW_IPS only.

    Forms are taken only from pages of NEWSLETTER_PUBLIC_URL or, without it, of the address served.
    """
    import uvicorn

    base_url = project.settings.public_url or f"http://{host}:{port}"
    app = create_app(project, base_url=base_url)
    uvicorn.run(app, host=host, port=port, proxy_headers=True, access_log=False, log_level="info")
