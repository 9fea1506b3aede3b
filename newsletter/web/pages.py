"""What every public page shares: the project, the templates, the clock, the rate limits, and the check
that a form was sent from one of the site's own pages.

The request handlers are in ``signup`` and ``unsubscribe``; ``public`` puts them together into the app.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse

from newsletter.errors import ConfigError
from newsletter.inputs.members_edit import LOCK_WAIT
from newsletter.project import Project
from newsletter.state.ledger import Ledger

log = logging.getLogger(__name__)

CONFIRM_HOURS = 48
EXPIRES = dt.timedelta(hours=CONFIRM_HOURS)
#: Unsubscribe POSTs per client and in all, per hour: generous, as a mail provider's one-click POSTs
#: for many members come from a few addresses, but a flood of made-up tokens (each a scan of the
#: list, for links from before the ledger kept tokens) is cut short.
UNSUBSCRIBES_PER_CLIENT, UNSUBSCRIBES_OVERALL = 30, 1000
#: The page templates the app renders, checked when it starts rather than when a visitor needs one.
PAGES = (
    "base.html", "busy.html", "check_inbox.html", "confirm.html", "confirmed.html", "refused.html",
    "signup.html", "trouble.html", "unsubscribe.html", "unsubscribed.html", "web.css",
    "confirm_mail.html", "confirm_mail.subject.txt", "confirm_mail.txt",
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}
Clock = Callable[[], dt.datetime]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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


def origin_of(url: str) -> str | None:
    """'https://news.example.org' for any address on that site (RFC 6454: scheme, host and port, the
    default port left out); None for what is not an http(s) address, such as an Origin of 'null'."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def client(request: Request) -> str:
    """Who asks, for the rate limits (X-Forwarded-For counts only from FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


class Pages:
    """Everything the pages need; the request handlers are the methods of the classes built on it."""

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
        missing = [name for name in PAGES if not (folder / name).is_file()]
        if missing:
            raise ConfigError(
                f"{folder}: the web page templates are missing ({', '.join(missing)}) — copy templates/web/ "
                "from the newsletter source into the group's folder"
            )
        from newsletter.compose.templates import make_environment

        self.project, self.base_url, self.clock = project, base_url.rstrip("/"), clock
        self.origin = origin_of(self.base_url)  # the only site whose pages may send our forms
        self.lock_wait = lock_wait  # how long a click waits while an organiser's edit holds the list
        self.env = make_environment(folder)
        self.css = (folder / "web.css").read_bytes()
        self.limit = limit or RequestLimit(per_client=5, overall=100, window=3600)
        self.unsubscribe_limit = unsubscribe_limit or RequestLimit(
            per_client=UNSUBSCRIBES_PER_CLIENT, overall=UNSUBSCRIBES_OVERALL, window=3600
        )
        self.secret = project.settings.secret
        with self.ledger() as ledger:
            # Sign-ups nobody confirmed in time: their addresses are health information, not kept.
            ledger.forget_expired_signups(self.clock() - EXPIRES)

    def ledger(self) -> Ledger:
        return Ledger(self.project.settings.state_path)

    def page(self, name: str, *, root: str = "", status: int = 200, **context: Any) -> HTMLResponse:
        group = self.project.schedule.group
        html = self.env.get_template(name).render(group=group, root=root, hours=CONFIRM_HOURS, **context)
        return HTMLResponse(html, status_code=status)

    def from_elsewhere(self, request: Request, what: str) -> bool:
        """True (and logged) when a POST did not come from one of this site's own pages.

        A page on another site can make a visitor's browser send our forms (cross-site request
        forgery): sign her up with her own address, or press a button she never saw.  Browsers say
        where a form was sent from in Origin (every form POST today), or else in Referer: either must
        be this site (NEWSLETTER_PUBLIC_URL, or the address served).  Neither is refused too, and so
        is Origin 'null' (a sandboxed frame, a data: page).  Our pages' Referrer-Policy 'same-origin'
        lets the browser send the real Origin on their own forms (with 'no-referrer' it sends 'null').
        """
        sent = request.headers.get("origin")
        if sent is None:
            sent = request.headers.get("referer")
        origin = None if sent is None else origin_of(sent)
        if origin is not None and origin == self.origin:
            return False
        # Only the origin is logged, never the rest of a Referer (a path can hold a token): it tells an
        # organiser whose NEWSLETTER_PUBLIC_URL does not match the address people use what to set.
        shown = (
            "no Origin or Referer" if sent is None
            else origin or ("Origin null" if sent.strip() == "null" else "an Origin that is no web address")
        )  # fmt: skip
        log.warning(
            "refused a POST to %s from %s: forms are taken only from %s's own pages (NEWSLETTER_PUBLIC_URL)",
            what,
            shown,
            self.origin,
        )
        return True
